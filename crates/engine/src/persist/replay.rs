//! Rebuilding an engine from persistence: the collections of a checkpoint,
//! its remembered request ids, then the log's records after it, applied as
//! the engine applies its own writes. The engine refuses requests until the
//! replay has finished and handed it the log to append to.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::capture::Loaded;
use super::log::WriteLog;
use super::record::LogOp;
use crate::collection::Collection;
use crate::document::{Dictionary, StoredDoc};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::names::DocId;
use crate::requests::{Outcome, RequestTag};

/// A replay in progress (see [`Engine::replay`]).
pub struct Replay<'a> {
    engine: &'a Engine,
    /// Collections whose restore began in the log and has not ended yet.
    restoring: HashMap<u64, Arc<Collection>>,
    applied: u64,
}

/// What a replay rebuilt.
#[derive(Debug)]
pub struct Replayed {
    pub collections: usize,
    pub documents: u64,
    /// Records applied after the checkpoint.
    pub applied: u64,
}

impl Engine {
    /// Starts rebuilding this engine, which must not have started serving
    /// (see [`Engine::recovering`]).
    pub fn replay(&self) -> Result<Replay<'_>> {
        if self.ready.load(Ordering::Acquire) {
            return Err(EngineError::Internal(
                "a replay into an engine that is serving".into(),
            ));
        }
        Ok(Replay {
            engine: self,
            restoring: HashMap::new(),
            applied: 0,
        })
    }
}

impl Replay<'_> {
    /// Adds a collection read back from a checkpoint.
    pub fn load(&mut self, loaded: Loaded) -> Result<()> {
        let collection = Collection::restore(loaded, self.engine.shared())?;
        let mut collections = self.engine.collections.write();
        collections.insert(collection.name().clone(), collection);
        Ok(())
    }

    /// Remembers what the write of a request id did (from a checkpoint).
    pub fn remember(&mut self, tag: RequestTag, outcome: Outcome) {
        self.engine.requests.insert(tag, outcome);
    }

    /// Whether the replay holds collection incarnation `uid` now (registered,
    /// or being restored).
    pub fn holds(&self, uid: u64) -> bool {
        self.collection(uid).is_some()
    }

    /// The document `id` of collection incarnation `uid`, as loaded so far.
    pub fn document(&self, uid: u64, id: &DocId) -> Option<Arc<StoredDoc>> {
        self.collection(uid)
            .and_then(|c| c.live_docs().get(id).cloned())
    }

    /// The dictionary `id` of collection incarnation `uid`, for decoding a
    /// document of the log: the collection's, loaded or applied so far.
    pub fn dictionary(&self, uid: u64, id: u32) -> Option<Arc<Dictionary>> {
        self.collection(uid)
            .and_then(|c| c.dictionary().cloned())
            .filter(|d| d.id() == id)
    }

    fn collection(&self, uid: u64) -> Option<Arc<Collection>> {
        let registered = self
            .engine
            .collections
            .read()
            .values()
            .find(|c| c.uid() == uid)
            .cloned();
        registered.or_else(|| self.restoring.get(&uid).cloned())
    }

    /// Applies one record of the log. Records may repeat what the checkpoint
    /// holds: each sets a state (a document, a collection) rather than
    /// changing one, and names its collection's incarnation.
    pub fn apply(&mut self, op: LogOp) -> Result<()> {
        self.applied += 1;
        let engine = self.engine;
        match op {
            LogOp::CreateCollection {
                definition,
                request,
            } => {
                let uid = definition.uid;
                if let Some(tag) = request {
                    engine
                        .requests
                        .insert(tag, Outcome::CollectionCreated { uid });
                }
                let mut collections = engine.collections.write();
                if collections
                    .get(&definition.name)
                    .is_some_and(|c| c.uid() == uid)
                {
                    return Ok(());
                }
                let name = definition.name.clone();
                let collection = Collection::from_definition(definition, engine.shared())?;
                collections.insert(name, collection);
            }
            LogOp::DeleteCollection { name, uid, request } => {
                if let Some(tag) = request {
                    engine.requests.insert(tag, Outcome::CollectionDeleted);
                }
                let mut collections = engine.collections.write();
                if collections.get(&name).is_some_and(|c| c.uid() == uid) {
                    collections.remove(&name);
                }
            }
            LogOp::Restoring { definition } => {
                // A checkpoint taken after the restore holds it already.
                if self.collection(definition.uid).is_none() {
                    let uid = definition.uid;
                    let collection = Collection::from_definition(definition, engine.shared())?;
                    self.restoring.insert(uid, collection);
                }
            }
            LogOp::Restored { uids } => {
                let mut collections = engine.collections.write();
                for uid in uids {
                    if let Some(collection) = self.restoring.remove(&uid) {
                        collections.insert(collection.name().clone(), collection);
                    }
                }
            }
            LogOp::Put { uid, .. } | LogOp::Delete { uid, .. } | LogOp::Dictionary { uid, .. } => {
                // A write to a collection deleted later in the log.
                if let Some(collection) = self.collection(uid) {
                    collection.apply_replayed(op)?;
                }
            }
        }
        Ok(())
    }

    /// Publishes every collection, hands the engine the log its writes go to
    /// from now on, and opens it to requests. Collections whose restore had
    /// not ended are dropped.
    pub fn finish(self, log: Arc<dyn WriteLog>) -> Result<Replayed> {
        for collection in self.restoring.values() {
            tracing::warn!(
                collection = %collection.name(),
                "a restore that did not finish before the server stopped was dropped"
            );
        }
        let collections: Vec<Arc<Collection>> =
            self.engine.collections.read().values().cloned().collect();
        let mut documents = 0;
        for collection in &collections {
            collection.publish()?;
            collection.attach(log.clone());
            documents += collection.stats().document_count;
        }
        self.engine.start(log);
        Ok(Replayed {
            collections: collections.len(),
            documents,
            applied: self.applied,
        })
    }
}
