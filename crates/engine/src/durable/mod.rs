//! Durable mode: a write-ahead log ([`journal`]) of every acknowledged write and
//! periodic checkpoints ([`checkpoint`]) that keep the log bounded, in a data
//! directory:
//!
//! ```text
//! DATA/FORMAT                   the layout version, checked at start-up
//! DATA/LOCK                     held (flock) by the one server using DATA; its pid
//! DATA/wal/<first seq>.log      log segments
//! DATA/checkpoints/<seq>/       the latest checkpoint: state before record <seq>
//! ```
//!
//! Recovery loads the latest checkpoint, replays the log from its position and
//! cuts a torn tail. Replay is idempotent (a put sets a document, a delete
//! removes one, writes name their collection's incarnation), which lets a
//! checkpoint capture each collection at any moment after its log position.

mod checkpoint;
mod frame;
mod journal;
mod record;
mod snapshot;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;

use super::Engine;
use super::collection::Collection;
use super::document::StoredDoc;
use super::error::{EngineError, Result};
use super::names::{CollectionName, DocId};

pub(crate) use checkpoint::{Captured, Loaded};
pub use journal::Fsync;
pub(crate) use journal::Journal;
pub(crate) use record::{CollectionRecord, DocRecord, Op, tag_record};
use record::{OutcomeRecord, RequestRecord};
pub use snapshot::{SnapshotInfo, snapshot_dir};

use super::requests::{Outcome, RequestTag};

/// The first line of `DATA/FORMAT`.
const FORMAT_LINE: &str = "trove data directory format 1";

/// The lock file: a second server on the same directory would append to the
/// same log and overwrite its checkpoints.
const LOCK_FILE: &str = "LOCK";

/// Where and how durably to keep the data.
#[derive(Clone, Debug)]
pub struct DataDir {
    pub path: PathBuf,
    pub fsync: Fsync,
    /// Log bytes after which a checkpoint starts.
    pub checkpoint_bytes: u64,
}

/// The durable side of an engine.
pub(crate) struct Durable {
    dir: DataDir,
    /// The locked `DATA/LOCK`, held open for the life of the engine.
    lock: OnceLock<fs::File>,
    journal: OnceLock<Arc<Journal>>,
    /// Held by the one checkpoint running.
    checkpointing: Mutex<()>,
}

impl Durable {
    pub fn new(dir: DataDir) -> Self {
        Durable {
            dir,
            lock: OnceLock::new(),
            journal: OnceLock::new(),
            checkpointing: Mutex::new(()),
        }
    }

    pub fn journal(&self) -> Option<&Arc<Journal>> {
        self.journal.get()
    }

    /// Waits for a running checkpoint and keeps new ones from starting while
    /// the guard lives: a restore logs its records and adds its collections
    /// under it, so a checkpoint holds either all of a restore or none.
    pub fn hold_checkpoints(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.checkpointing.lock()
    }
}

/// What recovery did.
#[derive(Debug)]
pub struct Recovery {
    pub collections: usize,
    pub documents: u64,
    /// Log records replayed after the checkpoint.
    pub replayed: u64,
    pub seconds: f64,
}

impl Engine {
    /// Loads the data directory: the latest checkpoint, then the log after it.
    /// Blocking; the engine refuses requests until it returns.
    pub fn recover(&self) -> Result<Option<Recovery>> {
        let Some(durable) = &self.durable else {
            self.ready.store(true, Ordering::Release);
            return Ok(None);
        };
        let started = Instant::now();
        let root = &durable.dir.path;
        check_format(root)?;
        let _ = durable.lock.set(lock(root)?);
        let checkpoints = root.join("checkpoints");
        fs::create_dir_all(&checkpoints).map_err(|e| io("creating", &checkpoints, &e))?;
        let mut seq = 1;
        if let Some(latest) = latest_checkpoint(&checkpoints)? {
            let (mut manifest, loaded) = checkpoint::read(&latest, |_| true)?;
            seq = manifest.seq;
            let requests = checkpoint::read_requests(&latest, &mut manifest)?;
            let mut collections = self.collections.write();
            let mut by_uid = HashMap::new();
            for loaded in loaded {
                let collection = Collection::restore(loaded, self.requests.clone())?;
                by_uid.insert(collection.uid(), collection.clone());
                collections.insert(collection.name().clone(), collection);
            }
            for RequestRecord { tag, outcome } in requests {
                let tag = RequestTag::from(tag);
                let outcome = match outcome {
                    OutcomeRecord::Written(doc) => {
                        // Written without a dictionary (see `checkpoint`).
                        let (id, stored) = doc.into_stored(None)?;
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
                        let id = DocId::parse(&id, "id")?;
                        let stored = by_uid
                            .get(&uid)
                            .and_then(|c| c.live_docs().get(&id).cloned())
                            .filter(|d| d.version == version && body_digest(d) == digest);
                        match stored {
                            Some(stored) => Outcome::Written {
                                collection: uid,
                                id,
                                stored,
                            },
                            None => {
                                return Err(EngineError::DataDamaged(format!(
                                    "{} remembers request {:?} as version {version} of document \
                                     {id}, which it does not hold",
                                    latest.display(),
                                    tag.id
                                )));
                            }
                        }
                    }
                    OutcomeRecord::Deleted => Outcome::Deleted,
                    OutcomeRecord::CollectionCreated(uid) => Outcome::CollectionCreated { uid },
                    OutcomeRecord::CollectionDeleted => Outcome::CollectionDeleted,
                };
                self.requests.insert(tag, outcome);
            }
        }
        // Collections whose restore began in the log and has not ended yet.
        let mut restoring = HashMap::new();
        let recovered = Journal::recover(&root.join("wal"), durable.dir.fsync, seq, |record| {
            self.replay(record.op, &mut restoring)
        })?;
        for collection in restoring.values() {
            tracing::warn!(
                collection = %collection.name(),
                "a restore that did not finish before the server stopped was dropped"
            );
        }
        let collections: Vec<Arc<Collection>> = self.collections.read().values().cloned().collect();
        let mut documents = 0;
        for collection in &collections {
            collection.publish()?;
            collection.attach(recovered.journal.clone());
            documents += collection.stats().document_count;
        }
        let _ = durable.journal.set(recovered.journal);
        self.ready.store(true, Ordering::Release);
        Ok(Some(Recovery {
            collections: collections.len(),
            documents,
            replayed: recovered.replayed,
            seconds: started.elapsed().as_secs_f64(),
        }))
    }

    fn replay(&self, op: Op, restoring: &mut HashMap<u64, Arc<Collection>>) -> Result<()> {
        let by_uid = |uid: u64| {
            let registered = self
                .collections
                .read()
                .values()
                .find(|c| c.uid() == uid)
                .cloned();
            registered.or_else(|| restoring.get(&uid).cloned())
        };
        match op {
            Op::CreateCollection { record, request } => {
                let request = request.map(RequestTag::from);
                if let Some(tag) = request {
                    let uid = record.uid;
                    self.requests
                        .insert(tag, Outcome::CollectionCreated { uid });
                }
                let name = CollectionName::parse(&record.name, "collection.name")?;
                let mut collections = self.collections.write();
                if collections
                    .get(&name)
                    .is_some_and(|c| c.uid() == record.uid)
                {
                    return Ok(());
                }
                let collection = Collection::from_record(record, self.requests.clone())?;
                collections.insert(name, collection);
            }
            Op::DeleteCollection { name, uid, request } => {
                let request = request.map(RequestTag::from);
                if let Some(tag) = request {
                    self.requests.insert(tag, Outcome::CollectionDeleted);
                }
                let name = CollectionName::parse(&name, "collection.name")?;
                let mut collections = self.collections.write();
                if collections.get(&name).is_some_and(|c| c.uid() == uid) {
                    collections.remove(&name);
                }
            }
            Op::Put { uid, doc, request } => {
                let request = request.map(RequestTag::from);
                if let Some(collection) = by_uid(uid) {
                    collection.replay_put(doc, request)?;
                }
            }
            Op::Delete { uid, id, request } => {
                let request = request.map(RequestTag::from);
                if let Some(collection) = by_uid(uid) {
                    collection.replay_delete(&id, request)?;
                }
            }
            Op::Dictionary { uid, bytes } => {
                if let Some(collection) = by_uid(uid) {
                    collection.replay_dictionary(bytes)?;
                }
            }
            Op::Restoring { record } => {
                // A checkpoint taken after the restore holds it already.
                if by_uid(record.uid).is_none() {
                    let uid = record.uid;
                    restoring.insert(uid, Collection::from_record(record, self.requests.clone())?);
                }
            }
            Op::Restored { uids } => {
                let mut collections = self.collections.write();
                for uid in uids {
                    if let Some(collection) = restoring.remove(&uid) {
                        collections.insert(collection.name().clone(), collection);
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes a checkpoint if the log has grown past [`DataDir::checkpoint_bytes`].
    pub fn maybe_checkpoint(&self) -> Result<()> {
        let due = self.durable.as_ref().is_some_and(|d| {
            d.journal()
                .is_some_and(|j| j.appended() >= d.dir.checkpoint_bytes)
        });
        if due {
            self.checkpoint().map(|_| ())
        } else {
            Ok(())
        }
    }

    /// Writes a checkpoint of every collection and drops the log before it.
    /// Returns false without doing anything when not durable or when another
    /// checkpoint is running. Writes go on meanwhile. Blocking.
    pub fn checkpoint(&self) -> Result<bool> {
        let Some(durable) = &self.durable else {
            return Ok(false);
        };
        let Some(journal) = durable.journal() else {
            return Ok(false);
        };
        let Some(_one) = durable.checkpointing.try_lock() else {
            return Ok(false);
        };
        let started = Instant::now();
        // Every record before `seq` has been applied to its collection (records
        // are appended and applied under the collection's lock), so a capture
        // taken after this point contains it.
        let seq = journal.rotate()?;
        let collections: Vec<Arc<Collection>> = self.collections.read().values().cloned().collect();
        let captured = collections
            .iter()
            .map(|c| c.capture())
            .collect::<Result<Vec<_>>>()?;
        let dir = durable.dir.path.join("checkpoints");
        let previous = latest_checkpoint(&dir)?;
        // A written outcome whose document is the version the checkpoint holds
        // is a reference to it; any other is written whole, one frame each.
        let in_checkpoint: HashMap<u64, &Captured> =
            captured.iter().map(|c| (c.record.uid, c)).collect();
        let mut requests = self.requests.entries().into_iter().map(|(tag, outcome)| {
            Ok(RequestRecord {
                tag: (&tag).into(),
                outcome: match outcome {
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
                            // Its collection, and with it the dictionary, may be
                            // gone by the time a retry reads it back.
                            OutcomeRecord::Written(DocRecord::of(
                                &id,
                                &stored.without_dictionary()?,
                            ))
                        }
                    }
                    Outcome::Deleted => OutcomeRecord::Deleted,
                    Outcome::CollectionCreated { uid } => OutcomeRecord::CollectionCreated(uid),
                    Outcome::CollectionDeleted => OutcomeRecord::CollectionDeleted,
                },
            })
        });
        checkpoint::write(
            &dir.join(format!("{seq:020}")),
            previous.as_deref(),
            seq,
            &captured,
            &mut requests,
        )?;
        for old in list_checkpoints(&dir)? {
            if old.0 < seq {
                fs::remove_dir_all(&old.1).map_err(|e| io("removing", &old.1, &e))?;
            }
        }
        journal.remove_before(seq)?;
        tracing::info!(
            seq,
            collections = captured.len(),
            seconds = started.elapsed().as_secs_f64(),
            "checkpoint written"
        );
        Ok(true)
    }
}

/// The CRC-32 of a stored document's body: a remembered outcome read back from
/// a checkpoint's documents is checked against it.
fn body_digest(stored: &StoredDoc) -> u32 {
    crc32fast::hash(stored.body())
}

/// Checks `DATA/FORMAT`, writing it into a new data directory.
fn check_format(root: &Path) -> Result<()> {
    fs::create_dir_all(root).map_err(|e| io("creating", root, &e))?;
    let path = root.join("FORMAT");
    match fs::read_to_string(&path) {
        Ok(text) if text.lines().next() == Some(FORMAT_LINE) => Ok(()),
        Ok(text) => Err(EngineError::DataDamaged(format!(
            "{} says {:?}; this trove reads {FORMAT_LINE:?} and will not touch the directory",
            path.display(),
            text.lines().next().unwrap_or_default()
        ))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let occupied = fs::read_dir(root)
                .map_err(|e| io("listing", root, &e))?
                .any(|entry| entry.is_ok_and(|e| e.file_name() != LOCK_FILE));
            if occupied {
                return Err(EngineError::DataDamaged(format!(
                    "{} is not empty and has no FORMAT file: not a trove data directory",
                    root.display()
                )));
            }
            fs::write(&path, format!("{FORMAT_LINE}\n")).map_err(|e| io("writing", &path, &e))?;
            fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| io("syncing", &path, &e))?;
            sync_dir(root)
        }
        Err(err) => Err(io("reading", &path, &err)),
    }
}

/// Takes `DATA/LOCK` for as long as the returned file stays open (an flock,
/// which the kernel releases when the process ends, however it ends), and
/// writes this process's id into it. Refuses when another process holds it.
fn lock(root: &Path) -> Result<fs::File> {
    use std::io::Write as _;
    use std::os::fd::AsRawFd as _;

    fs::create_dir_all(root).map_err(|e| io("creating", root, &e))?;
    let path = root.join(LOCK_FILE);
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io("opening", &path, &e))?;
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(io("locking", &path, &err));
        }
        let holder = fs::read_to_string(&path).unwrap_or_default();
        let holder = match holder.trim() {
            "" => "another process".to_owned(),
            pid => format!("another trove server (pid {pid})"),
        };
        return Err(EngineError::StorageUnavailable(format!(
            "{} is in use by {holder}: one server per data directory",
            root.display()
        )));
    }
    file.set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(|e| io("writing", &path, &e))?;
    Ok(file)
}

/// Complete checkpoints by log position; removes unfinished ones.
fn list_checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io("listing", dir, &e))? {
        let path = entry.map_err(|e| io("listing", dir, &e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".tmp") {
            fs::remove_dir_all(&path).map_err(|e| io("removing", &path, &e))?;
        } else if let Ok(seq) = name.parse::<u64>() {
            found.push((seq, path));
        }
    }
    found.sort();
    Ok(found)
}

fn latest_checkpoint(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list_checkpoints(dir)?.pop().map(|(_, path)| path))
}

/// Fsyncs a directory, making the files created or renamed in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing", dir, &e))
}

/// A failed file operation on `path`: StorageFull or StorageUnavailable.
fn io(action: &str, path: &Path, err: &std::io::Error) -> EngineError {
    EngineError::storage(&format!("{action} {}", path.display()), err)
}

/// Damage found in `path` at `offset`: start-up stops.
fn damaged(path: &Path, offset: usize, what: &str) -> EngineError {
    EngineError::DataDamaged(format!(
        "{} is damaged at offset {offset}: {what}",
        path.display()
    ))
}
