//! The local store: a write-ahead log ([`super::journal`]) of every
//! acknowledged write and periodic checkpoints ([`super::checkpoint`]) that
//! keep the log bounded, in a data directory:
//!
//! ```text
//! DATA/FORMAT                   the layout version, checked at start-up
//! DATA/LOCK                     held (flock) by the one server using DATA; its pid
//! DATA/wal/<first seq>.log      log segments
//! DATA/checkpoints/<seq>/       the latest checkpoint: state before record <seq>
//! ```
//!
//! Opening the store replays it into an engine: the latest checkpoint, then
//! the log from its position, cutting a torn tail. Replay is idempotent (a put
//! sets a document, a delete removes one, writes name their collection's
//! incarnation), which lets a checkpoint capture each collection at any moment
//! after its log position.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use trove_engine::persist::{Captured, CheckpointState, Replay};
use trove_engine::requests::{Outcome, RequestTag};
use trove_engine::{DocId, Engine, EngineError, Result, StoredDoc};

use super::checkpoint;
use super::files::{check_format, io, latest_checkpoint, list_checkpoints, lock};
use super::journal::{Fsync, Journal};
use super::record::{DocRecord, OutcomeRecord, RequestRecord};

/// Where and how durably to keep the data.
#[derive(Clone, Debug)]
pub struct DataDir {
    pub path: PathBuf,
    pub fsync: Fsync,
    /// Log bytes after which a checkpoint starts.
    pub checkpoint_bytes: u64,
}

/// An open data directory, whose log an engine writes to.
pub struct Store {
    dir: DataDir,
    /// The locked `DATA/LOCK`, held open for the life of the store.
    _lock: fs::File,
    journal: Arc<Journal>,
    /// Held by the one checkpoint running.
    checkpointing: Mutex<()>,
}

/// What opening a store replayed.
#[derive(Debug)]
pub struct Recovery {
    pub collections: usize,
    pub documents: u64,
    /// Log records replayed after the checkpoint.
    pub replayed: u64,
    pub seconds: f64,
}

impl Store {
    /// Opens the data directory and replays it into `engine`, which must be
    /// recovering (see [`Engine::recovering`]): the latest checkpoint, then
    /// the log after it. From then on the engine's writes go to this store's
    /// log. Blocking.
    pub fn open(engine: &Engine, dir: DataDir) -> Result<(Store, Recovery)> {
        let started = Instant::now();
        let root = &dir.path;
        check_format(root)?;
        let lock = lock(root)?;
        let checkpoints = root.join("checkpoints");
        fs::create_dir_all(&checkpoints).map_err(|e| io("creating", &checkpoints, &e))?;
        let mut replay = engine.replay()?;
        let mut seq = 1;
        if let Some(latest) = latest_checkpoint(&checkpoints)? {
            let (mut manifest, loaded) = checkpoint::read(&latest, |_| true)?;
            seq = manifest.seq;
            let requests = checkpoint::read_requests(&latest, &mut manifest)?;
            for loaded in loaded {
                replay.load(loaded)?;
            }
            for RequestRecord { tag, outcome } in requests {
                let tag = RequestTag::from(tag);
                let outcome = outcome_of(outcome, &replay).map_err(|what| {
                    EngineError::DataDamaged(format!(
                        "{} remembers request {:?} as {what}",
                        latest.display(),
                        tag.id
                    ))
                })?;
                replay.remember(tag, outcome);
            }
        }
        let recovered = Journal::recover(&root.join("wal"), dir.fsync, seq, |record| match record
            .op
            .into_log_op(&replay)?
        {
            Some(op) => replay.apply(op),
            None => Ok(()),
        })?;
        let replayed = replay.finish(recovered.journal.clone())?;
        let recovery = Recovery {
            collections: replayed.collections,
            documents: replayed.documents,
            replayed: recovered.replayed,
            seconds: started.elapsed().as_secs_f64(),
        };
        let store = Store {
            dir,
            _lock: lock,
            journal: recovered.journal,
            checkpointing: Mutex::new(()),
        };
        Ok((store, recovery))
    }

    /// Writes a checkpoint if the log has grown past [`DataDir::checkpoint_bytes`].
    pub fn maybe_checkpoint(&self, engine: &Engine) -> Result<()> {
        if self.journal.appended() >= self.dir.checkpoint_bytes {
            self.checkpoint(engine).map(|_| ())
        } else {
            Ok(())
        }
    }

    /// Writes a checkpoint of every collection of `engine` and drops the log
    /// before it. Returns false without doing anything when another
    /// checkpoint is running. Writes go on meanwhile. Blocking.
    pub fn checkpoint(&self, engine: &Engine) -> Result<bool> {
        let Some(_one) = self.checkpointing.try_lock() else {
            return Ok(false);
        };
        let started = Instant::now();
        let state = engine.capture_all(|| self.journal.rotate())?;
        self.write_checkpoint(state, started)?;
        Ok(true)
    }

    /// Writes `state` as the latest checkpoint, removes the older ones and
    /// the log segments before its position.
    fn write_checkpoint(&self, state: CheckpointState, started: Instant) -> Result<()> {
        let CheckpointState {
            position: seq,
            collections,
            requests,
        } = state;
        let dir = self.dir.path.join("checkpoints");
        let target = dir.join(format!("{seq:020}"));
        if target.exists() {
            // No write since that checkpoint (a restart and a stop): it holds
            // this state already.
            return Ok(());
        }
        let previous = latest_checkpoint(&dir)?;
        // A written outcome whose document is the version the checkpoint holds
        // is a reference to it; any other is written whole, one frame each.
        let in_checkpoint: HashMap<u64, &Captured> =
            collections.iter().map(|c| (c.definition.uid, c)).collect();
        let mut requests = requests.into_iter().map(|(tag, outcome)| {
            Ok(RequestRecord {
                tag: (&tag).into(),
                outcome: outcome_record(outcome, &in_checkpoint)?,
            })
        });
        checkpoint::write(
            &target,
            previous.as_deref(),
            seq,
            &collections,
            &mut requests,
        )?;
        for old in list_checkpoints(&dir)? {
            if old.0 < seq {
                fs::remove_dir_all(&old.1).map_err(|e| io("removing", &old.1, &e))?;
            }
        }
        self.journal.remove_before(seq)?;
        tracing::info!(
            seq,
            collections = collections.len(),
            seconds = started.elapsed().as_secs_f64(),
            "checkpoint written"
        );
        Ok(())
    }
}

/// A remembered outcome as a checkpoint holds it.
fn outcome_record(
    outcome: Outcome,
    in_checkpoint: &HashMap<u64, &Captured>,
) -> Result<OutcomeRecord> {
    Ok(match outcome {
        Outcome::Written {
            collection,
            id,
            stored,
        } => {
            let held = in_checkpoint
                .get(&collection)
                .and_then(|c| c.docs.get(&id))
                .is_some_and(|doc| Arc::ptr_eq(doc, &stored));
            if held {
                OutcomeRecord::Current {
                    uid: collection,
                    id: id.to_string(),
                    version: stored.version,
                    digest: body_digest(&stored),
                }
            } else {
                // Its collection, and with it the dictionary, may be gone by
                // the time a retry reads it back.
                OutcomeRecord::Written(DocRecord::of(&id, &stored.without_dictionary()?))
            }
        }
        Outcome::Deleted => OutcomeRecord::Deleted,
        Outcome::CollectionCreated { uid } => OutcomeRecord::CollectionCreated(uid),
        Outcome::CollectionDeleted => OutcomeRecord::CollectionDeleted,
    })
}

/// A remembered outcome read back, or what it names that the checkpoint does
/// not hold.
fn outcome_of(record: OutcomeRecord, replay: &Replay<'_>) -> std::result::Result<Outcome, String> {
    Ok(match record {
        OutcomeRecord::Written(doc) => {
            // Written without a dictionary (see `outcome_record`).
            let (id, stored) = doc.into_stored(|_| None).map_err(|e| e.to_string())?;
            Outcome::Written {
                collection: 0,
                id,
                stored: Arc::new(stored),
            }
        }
        OutcomeRecord::Current {
            uid,
            id,
            version,
            digest,
        } => {
            let missing = || format!("version {version} of document {id}, which it does not hold");
            let doc_id = DocId::parse(&id, "id").map_err(|_| missing())?;
            let stored = replay
                .document(uid, &doc_id)
                .filter(|d| d.version == version && body_digest(d) == digest)
                .ok_or_else(missing)?;
            Outcome::Written {
                collection: uid,
                id: doc_id,
                stored,
            }
        }
        OutcomeRecord::Deleted => Outcome::Deleted,
        OutcomeRecord::CollectionCreated(uid) => Outcome::CollectionCreated { uid },
        OutcomeRecord::CollectionDeleted => Outcome::CollectionDeleted,
    })
}

/// The CRC-32 of a stored document's body: a remembered outcome read back from
/// a checkpoint's documents is checked against it.
fn body_digest(stored: &StoredDoc) -> u32 {
    crc32fast::hash(stored.body())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use trove_engine::{CollectionName, DocId, Fields, Patch, SearchRequest, Update};

    use super::*;
    use crate::journal::Fsync;

    fn open(path: &std::path::Path) -> (Engine, Store) {
        let engine = Engine::recovering(Duration::from_secs(60), 16);
        let dir = DataDir {
            path: path.to_owned(),
            fsync: Fsync::Always,
            checkpoint_bytes: u64::MAX,
        };
        let (store, _) = Store::open(&engine, dir).unwrap();
        (engine, store)
    }

    fn fields(title: &str) -> Fields {
        json!({ "title": title }).as_object().unwrap().clone()
    }

    fn id(text: &str) -> DocId {
        DocId::parse(text, "id").unwrap()
    }

    use crate::testing::title_schema as schema;

    /// Every record of the log replayed over a checkpoint that already holds
    /// its effect leaves the same state: puts set, deletes remove, a deleted
    /// collection stays deleted, remembered outcomes stay the first ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replaying_records_a_checkpoint_holds_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let name = CollectionName::parse("c", "name").unwrap();
        {
            let (engine, store) = open(tmp.path());
            let c = engine
                .create_collection(name.clone(), schema(), "")
                .await
                .unwrap();
            c.create(Some(id("a")), fields("one"), true, "")
                .await
                .unwrap();
            c.create(Some(id("b")), fields("two"), true, "")
                .await
                .unwrap();
            let update = Update {
                id: id("a"),
                fields: fields("three"),
                patch: Patch::Merge,
                allow_missing: false,
                expected_version: 0,
            };
            c.update(update, true, "req-a").await.unwrap();
            c.delete(id("b"), 0, true, "").await.unwrap();
            let gone = CollectionName::parse("gone", "name").unwrap();
            engine
                .create_collection(gone.clone(), schema(), "")
                .await
                .unwrap();
            engine.delete_collection(&gone, "").await.unwrap();
            // A checkpoint that claims to hold nothing of the log, taken
            // after every write: a restart replays all of them over it.
            let state = engine.capture_all(|| Ok(1)).unwrap();
            assert_eq!(state.collections.len(), 1);
            store.write_checkpoint(state, Instant::now()).unwrap();
        }
        for _ in 0..2 {
            let (engine, store) = open(tmp.path());
            assert_eq!(engine.collection_count(), 1);
            let c = engine.collection(&name).unwrap();
            let a = c.get(&id("a")).unwrap();
            assert_eq!((a.version, a.fields["title"].as_str()), (2, Some("three")));
            assert!(c.get(&id("b")).is_err());
            assert_eq!(c.stats().document_count, 1);
            let request = SearchRequest {
                query: "three OR two OR one".into(),
                ..Default::default()
            };
            let found = engine.search(&name, request).await.unwrap();
            assert_eq!(found.total_size, 1, "the index holds a once");
            let retried = Update {
                id: id("a"),
                fields: fields("three"),
                patch: Patch::Merge,
                allow_missing: false,
                expected_version: 0,
            };
            assert_eq!(c.update(retried, true, "req-a").await.unwrap().version, 2);
            // The second round starts from a checkpoint of the replayed state.
            store.checkpoint(&engine).unwrap();
        }
    }
}
