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
        let CheckpointState {
            position: seq,
            collections,
            requests,
        } = engine.capture_all(|| self.journal.rotate())?;
        let dir = self.dir.path.join("checkpoints");
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
            &dir.join(format!("{seq:020}")),
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
        Ok(true)
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
