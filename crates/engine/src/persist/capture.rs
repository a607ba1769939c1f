//! The state a checkpoint or snapshot holds, captured from a running engine
//! and loaded back into one.

use std::path::PathBuf;
use std::sync::Arc;

use tantivy::directory::{OwnedBytes, RamDirectory};

use super::log::{Condition, Entry, WriteLog};
use super::record::{CollectionDef, LogOp};
use crate::collection::{Collection, DocMap};
use crate::document::Dictionary;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::names::CollectionName;
use crate::requests::{Outcome, RequestTag};

/// One collection as captured under its write lock: documents and index files
/// of the same state.
pub struct Captured {
    pub definition: CollectionDef,
    pub docs: DocMap,
    /// Index files by name, `meta.json` included.
    pub index_files: Vec<(PathBuf, OwnedBytes)>,
    pub dictionary: Option<Arc<Dictionary>>,
}

/// One collection read back from a checkpoint or snapshot.
pub struct Loaded {
    pub definition: CollectionDef,
    pub docs: DocMap,
    pub index: RamDirectory,
    pub dictionary: Option<Arc<Dictionary>>,
}

/// Everything a checkpoint holds.
pub struct CheckpointState {
    /// What the log answered when asked to mark the checkpoint: every write
    /// before it is in `collections`.
    pub position: u64,
    pub collections: Vec<Captured>,
    /// The remembered request ids and what their writes did.
    pub requests: Vec<(RequestTag, Outcome)>,
}

impl Engine {
    /// Captures every collection for a checkpoint. `mark` runs first and
    /// answers a log position before which every write has been applied (a
    /// write is appended and applied under its collection's lock, so a capture
    /// taken after `mark` contains it). No restore runs meanwhile: a
    /// checkpoint holds all of one or none of it.
    pub fn capture_all(&self, mark: impl FnOnce() -> Result<u64>) -> Result<CheckpointState> {
        let _no_restore = self.restoring.lock();
        let position = mark()?;
        let collections: Vec<Arc<Collection>> = self.collections.read().values().cloned().collect();
        let collections = collections
            .iter()
            .map(|c| c.capture())
            .collect::<Result<Vec<_>>>()?;
        Ok(CheckpointState {
            position,
            collections,
            requests: self.requests.entries(),
        })
    }

    /// Captures the collections `names` (every one when empty), for a snapshot.
    pub fn capture(&self, names: &[CollectionName]) -> Result<Vec<Captured>> {
        self.check_ready()?;
        let chosen: Vec<Arc<Collection>> = if names.is_empty() {
            self.collections.read().values().cloned().collect()
        } else {
            names
                .iter()
                .map(|name| self.collection(name))
                .collect::<Result<_>>()?
        };
        chosen.iter().map(|c| c.capture()).collect()
    }

    /// Refuses, before anything is read, a restore of `names` that could not
    /// be registered: a name taken, or too many collections.
    pub fn check_restorable(&self, names: &[CollectionName]) -> Result<()> {
        self.check_ready()?;
        let registry = self.collections.read();
        if let Some(taken) = names.iter().find(|name| registry.contains_key(name)) {
            return Err(EngineError::CollectionExists(taken.to_string()));
        }
        self.check_room(registry.len(), names.len())
    }

    /// Adds collections read back from a snapshot, each as a new incarnation
    /// (restoring the same snapshot twice makes two), all or none. Each is
    /// logged with its dictionary and documents, then one record ends the
    /// restore of them all. Blocking. Returns each collection's name and
    /// document count.
    pub fn restore(&self, loaded: Vec<Loaded>) -> Result<Vec<(CollectionName, u64)>> {
        self.check_ready()?;
        let log = self.log()?;
        // No checkpoint starts while the restore is logged and registered: it
        // would hold the log's records without the collections, or the other
        // way round.
        let _no_checkpoint = self.restoring.lock();
        let mut restored = Vec::new();
        for mut loaded in loaded {
            loaded.definition.uid = uuid::Uuid::new_v4().as_u64_pair().0;
            let collection = Collection::restore(loaded, self.shared())?;
            collection.publish()?;
            log_restore(log.as_ref(), &collection)?;
            collection.attach(log.clone());
            restored.push(collection);
        }
        // All or none: the names are checked again, and one record ends the
        // restore of every collection. Until it, a replay drops the records.
        let mut registry = self.collections.write();
        if let Some(taken) = restored.iter().find(|c| registry.contains_key(c.name())) {
            return Err(EngineError::CollectionExists(taken.name().to_string()));
        }
        self.check_room(registry.len(), restored.len())?;
        // Registered before the record is durable, as a create is: a write to
        // a restored collection is acknowledged only once the log is durable
        // past its own record, and so past this one.
        let uids = restored.iter().map(|c| c.uid()).collect();
        let last = append_any(log.as_ref(), &LogOp::Restored { uids })?;
        let restored: Vec<(CollectionName, u64)> = restored
            .into_iter()
            .map(|collection| {
                let info = (collection.name().clone(), collection.stats().document_count);
                registry.insert(collection.name().clone(), collection);
                info
            })
            .collect();
        drop(registry);
        log.sync(last)?;
        Ok(restored)
    }
}

/// Logs a restored collection as [`LogOp::Restoring`], its dictionary (before
/// the documents compressed with it) and a put per document. A replay adds the
/// collection only once it reads the [`LogOp::Restored`] that the caller
/// appends after these.
fn log_restore(log: &dyn WriteLog, collection: &Collection) -> Result<u64> {
    let uid = collection.uid();
    let mut last = append_any(
        log,
        &LogOp::Restoring {
            definition: collection.definition(),
        },
    )?;
    if let Some(dictionary) = collection.dictionary() {
        let dictionary = dictionary.clone();
        last = append_any(log, &LogOp::Dictionary { uid, dictionary })?;
    }
    for (id, doc) in collection.live_docs().iter() {
        let op = LogOp::Put {
            uid,
            id: id.clone(),
            doc: doc.clone(),
            request: None,
        };
        last = append_any(log, &op)?;
    }
    Ok(last)
}

/// Appends a write that has no condition; a log must give it a position.
pub(crate) fn append_any(log: &dyn WriteLog, op: &LogOp) -> Result<u64> {
    match log.append(Entry {
        op,
        condition: Condition::Any,
    })? {
        super::Appended::At(position) => Ok(position),
        other => Err(EngineError::Internal(format!(
            "the log answered {other:?} to a write without a condition"
        ))),
    }
}
