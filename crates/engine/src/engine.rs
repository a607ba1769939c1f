//! The engine: every collection by name, the writes that create and delete
//! them, and the pools and pins that searches share.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

use crate::collection::{Collection, Shared};
use crate::document::DocumentCache;
use crate::error::{EngineError, Result};
use crate::names::CollectionName;
use crate::persist::{Appended, Condition, Entry, LogOp, MemoryLog, WriteLog};
use crate::requests::{self, Outcome, RequestTag};
use crate::schema::CollectionSchema;
use crate::search::page_token::PageTokens;
use crate::search::pins::{self, Pins};
use crate::search::{self, SearchRequest, SearchResults};
use crate::search::{pool as search_pool, suggest};
use crate::text::analysis;
use crate::text::analysis::Token;

/// All collections, by name.
pub struct Engine {
    /// A parking_lot (std-like) lock: held only to look up, insert or remove an
    /// entry, never across an `.await`.
    pub(crate) collections: RwLock<BTreeMap<CollectionName, Arc<Collection>>>,
    pub(crate) tokens: Arc<PageTokens>,
    pub(crate) pins: Arc<Pins>,
    /// Where every write is appended before it is applied: set at the start,
    /// or by [`persist::Replay::finish`] once persistence has been replayed.
    pub(crate) log: OnceLock<Arc<dyn WriteLog>>,
    /// Held by a restore while it logs and registers its collections, and by
    /// a checkpoint's capture: a checkpoint holds all of a restore or none.
    pub(crate) restoring: Mutex<()>,
    /// Outcomes of writes that carried a request id.
    pub(crate) requests: Arc<requests::Requests>,
    /// Documents read often, kept decoded.
    pub(crate) documents: Arc<DocumentCache>,
    /// Where searches run: one niced thread per core.
    pub(crate) search_pool: search_pool::SearchPool,
    /// False until a replay has finished (see [`Engine::recovering`]):
    /// requests are refused meanwhile.
    pub(crate) ready: AtomicBool,
    /// The most collections (created or restored; a replay loads what exists).
    pub(crate) max_collections: usize,
}

/// The most collections by default.
pub const DEFAULT_MAX_COLLECTIONS: usize = 1000;

impl Default for Engine {
    fn default() -> Self {
        Engine::new(pins::DEFAULT_TTL, pins::DEFAULT_CAPACITY)
    }
}

impl Engine {
    /// An engine whose search page tokens pin views for `pin_ttl` after their
    /// last use, at most `max_pins` at once.
    /// Its writes go to a [`MemoryLog`].
    pub fn new(pin_ttl: std::time::Duration, max_pins: usize) -> Self {
        let engine = Engine::recovering(pin_ttl, max_pins);
        engine.start(Arc::new(MemoryLog::default()));
        engine
    }

    /// An empty engine that refuses requests until a replay (see
    /// [`Engine::replay`]) has loaded it and given it its log.
    pub fn recovering(pin_ttl: std::time::Duration, max_pins: usize) -> Self {
        Engine {
            collections: RwLock::default(),
            tokens: Arc::default(),
            pins: Arc::new(Pins::new(pin_ttl, max_pins)),
            log: OnceLock::new(),
            restoring: Mutex::new(()),
            requests: Arc::default(),
            documents: Arc::default(),
            search_pool: search_pool::SearchPool::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            ready: AtomicBool::new(false),
            max_collections: DEFAULT_MAX_COLLECTIONS,
        }
    }

    /// What this engine's collections share.
    pub(crate) fn shared(&self) -> Shared {
        Shared {
            requests: self.requests.clone(),
            documents: self.documents.clone(),
        }
    }

    /// Keeps up to about `bytes` of decoded documents for reads that come
    /// again (0: none; [`crate::DEFAULT_DOCUMENT_CACHE_BYTES`] by default).
    pub fn set_document_cache_bytes(&self, bytes: u64) {
        self.documents.set_capacity(bytes);
    }

    /// The estimated bytes of decoded documents kept for reads.
    pub fn document_cache_bytes(&self) -> u64 {
        self.documents.bytes()
    }

    /// Takes `log` for every write from now on and starts serving.
    pub(crate) fn start(&self, log: Arc<dyn WriteLog>) {
        let _ = self.log.set(log);
        self.ready.store(true, Ordering::Release);
    }

    /// The log writes go to; unavailable until the engine has started.
    pub(crate) fn log(&self) -> Result<&Arc<dyn WriteLog>> {
        self.log.get().ok_or_else(|| {
            EngineError::StorageUnavailable(
                "the server is recovering its data directory; retry shortly".into(),
            )
        })
    }

    /// This engine with at most `max` collections.
    pub fn with_max_collections(mut self, max: usize) -> Self {
        self.max_collections = max;
        self
    }

    /// RESOURCE_EXHAUSTED unless `adding` more collections fit beside `existing`.
    pub(crate) fn check_room(&self, existing: usize, adding: usize) -> Result<()> {
        if existing + adding > self.max_collections {
            return Err(EngineError::LimitExceeded(format!(
                "the server holds {existing} collections and its limit is {} \
                 (--max-collections); delete one first",
                self.max_collections
            )));
        }
        Ok(())
    }

    pub(crate) fn check_ready(&self) -> Result<()> {
        if self.ready.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(EngineError::StorageUnavailable(
                "the server is recovering its data directory; retry shortly".into(),
            ))
        }
    }

    /// How many collections there are.
    pub fn collection_count(&self) -> usize {
        self.collections.read().len()
    }

    /// How many views page tokens pin now.
    pub fn pinned_views(&self) -> usize {
        self.pins.len()
    }

    /// Creates an empty collection. A non-empty `request_id` makes a retry return
    /// the first outcome (see [`requests`]); so for delete.
    pub async fn create_collection(
        &self,
        name: CollectionName,
        schema: CollectionSchema,
        request_id: &str,
    ) -> Result<Arc<Collection>> {
        self.check_ready()?;
        let log = self.log()?;
        let tag = RequestTag::new(request_id, format!("create collection {name}"))?;
        let (collection, position) = {
            let mut collections = self.collections.write();
            if let Some(outcome) = self.remembered(&tag)? {
                let Outcome::CollectionCreated { uid } = outcome else {
                    return Err(EngineError::Internal(
                        "a remembered outcome of another kind".into(),
                    ));
                };
                let collection = match collections.get(&name) {
                    Some(c) if c.uid() == uid => c.clone(),
                    _ => {
                        return Err(EngineError::CollectionNotFound(format!(
                            "{name} (created by this request_id, deleted since)"
                        )));
                    }
                };
                (collection, log.last_position())
            } else {
                if collections.contains_key(&name) {
                    return Err(EngineError::CollectionExists(name.to_string()));
                }
                self.check_room(collections.len(), 1)?;
                let collection = Collection::new(name.clone(), schema, self.shared())?;
                let op = LogOp::CreateCollection {
                    definition: collection.definition(),
                    request: tag,
                };
                let position = match append(log.as_ref(), &op, Condition::Absent)? {
                    Ok(position) => position,
                    Err(_) => return Err(EngineError::CollectionExists(name.to_string())),
                };
                collection.attach(log.clone());
                collections.insert(name, collection.clone());
                if let LogOp::CreateCollection {
                    request: Some(tag), ..
                } = op
                {
                    let uid = collection.uid();
                    self.requests
                        .insert(tag, Outcome::CollectionCreated { uid });
                }
                (collection, position)
            }
        };
        self.sync(position).await?;
        Ok(collection)
    }

    /// The first outcome of a retried write, if `tag` names one.
    fn remembered(&self, tag: &Option<RequestTag>) -> Result<Option<Outcome>> {
        match tag {
            Some(tag) => self.requests.get(tag),
            None => Ok(None),
        }
    }

    /// Waits until the write at `position` is durable.
    async fn sync(&self, position: u64) -> Result<()> {
        let log = self.log()?.clone();
        tokio::task::spawn_blocking(move || log.sync(position))
            .await
            .map_err(|e| EngineError::Internal(format!("log sync failed: {e}")))?
    }

    /// The collection `name`.
    pub fn collection(&self, name: &CollectionName) -> Result<Arc<Collection>> {
        self.check_ready()?;
        self.collections
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::CollectionNotFound(name.to_string()))
    }

    /// Up to `limit` collections in name order, after `after`.
    pub fn list_collections(
        &self,
        after: Option<&CollectionName>,
        limit: usize,
    ) -> Result<Vec<Arc<Collection>>> {
        self.check_ready()?;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .collections
            .read()
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(_, c)| c.clone())
            .collect())
    }

    /// Deletes the collection `name` and its documents.
    pub async fn delete_collection(&self, name: &CollectionName, request_id: &str) -> Result<()> {
        self.check_ready()?;
        let log = self.log()?;
        let tag = RequestTag::new(request_id, format!("delete collection {name}"))?;
        let position = {
            let mut collections = self.collections.write();
            if self.remembered(&tag)?.is_some() {
                log.last_position()
            } else {
                let Some(collection) = collections.get(name) else {
                    return Err(EngineError::CollectionNotFound(name.to_string()));
                };
                let op = LogOp::DeleteCollection {
                    name: name.clone(),
                    uid: collection.uid(),
                    request: tag,
                };
                let position = match append(log.as_ref(), &op, Condition::Present)? {
                    Ok(position) => position,
                    Err(_) => return Err(EngineError::CollectionNotFound(name.to_string())),
                };
                collections.remove(name);
                if let LogOp::DeleteCollection {
                    request: Some(tag), ..
                } = op
                {
                    self.requests.insert(tag, Outcome::CollectionDeleted);
                }
                position
            }
        };
        self.sync(position).await
    }

    /// Searches the collection `name`.
    pub async fn search(
        &self,
        name: &CollectionName,
        request: SearchRequest,
    ) -> Result<SearchResults> {
        let collection = self.collection(name)?;
        let (tokens, pins) = (self.tokens.clone(), self.pins.clone());
        self.search_pool
            .run(move || search::search(&collection, &tokens, &pins, &request))
            .await
    }

    /// Runs `requests` on one view of the collection `name` (see
    /// [`search::search_batch`]).
    pub async fn search_batch(
        &self,
        name: &CollectionName,
        requests: Vec<SearchRequest>,
    ) -> Result<Vec<SearchResults>> {
        let collection = self.collection(name)?;
        let (tokens, pins) = (self.tokens.clone(), self.pins.clone());
        self.search_pool
            .run(move || search::search_batch(&collection, &tokens, &pins, &requests))
            .await
    }

    /// Completes the last word of `prefix` from the collection `name`.
    pub async fn suggest(
        &self,
        name: &CollectionName,
        prefix: String,
        field: String,
        limit: i32,
    ) -> Result<Vec<(String, u64)>> {
        let collection = self.collection(name)?;
        self.search_pool
            .run(move || suggest::suggest(&collection, &prefix, &field, limit))
            .await
    }

    /// The tokens the analyzer of `field` in collection `name` makes of `text`.
    pub fn analyze_field(
        &self,
        name: &CollectionName,
        field: &str,
        text: &str,
    ) -> Result<Vec<Token>> {
        let collection = self.collection(name)?;
        let (_, tantivy_field) = collection
            .schema()
            .field(field)
            .ok_or_else(|| EngineError::invalid("field", format!("unknown field {field:?}")))?;
        let mut analyzer = collection.index().tokenizer_for_field(tantivy_field)?;
        Ok(analysis::tokens_of(&mut analyzer, text))
    }

    /// Closes the index writers of collections nobody wrote to for `idle`,
    /// and with them their threads. Blocking: waits for their merges.
    pub fn close_idle_writers(&self, idle: std::time::Duration) {
        let collections: Vec<Arc<Collection>> = self.collections.read().values().cloned().collect();
        for collection in collections {
            match collection.close_idle_writer(idle) {
                Ok(true) => tracing::debug!(collection = %collection.name(), "idle writer closed"),
                Ok(false) => {}
                Err(err) => {
                    tracing::error!(collection = %collection.name(), %err, "closing an idle writer failed")
                }
            }
        }
    }

    /// Whether some collection's idle merge is due: nobody wrote to it for
    /// `idle` and this idle period's merge has not started. Cheap, and never
    /// waits: the caller starts a blocking thread only when it is.
    pub fn idle_merge_due(&self, idle: std::time::Duration) -> bool {
        self.collections
            .read()
            .values()
            .any(|collection| collection.idle_merge_due(idle))
    }

    /// Merges the segments that collections nobody wrote to for `idle` left
    /// apart (see [`Collection::merge_if_idle`]). Blocking: waits for the
    /// merges it starts.
    pub fn merge_idle_collections(&self, idle: std::time::Duration) {
        let collections: Vec<Arc<Collection>> = self.collections.read().values().cloned().collect();
        for collection in collections {
            match collection.merge_if_idle(idle) {
                Ok(true) => {
                    tracing::debug!(collection = %collection.name(), "idle segments merged")
                }
                Ok(false) => {}
                Err(err) => {
                    tracing::error!(collection = %collection.name(), %err, "merging an idle collection's segments failed")
                }
            }
        }
    }

    /// Makes every collection's pending asynchronous writes visible, and publishes
    /// the segments of merges that ended after the last commit. A collection that
    /// fails is logged and does not hold back the others.
    pub async fn refresh_all(&self) {
        self.requests.expire();
        let collections: Vec<Arc<Collection>> = self.collections.read().values().cloned().collect();
        for collection in collections {
            let refreshed = if collection.has_pending_writes() {
                collection.refresh().await
            } else {
                match collection.is_merged_since_view() {
                    Ok(true) => collection.publish_merged().await,
                    other => other.map(|_| ()),
                }
            };
            if let Err(err) = refreshed {
                tracing::error!(collection = %collection.name(), %err, "refresh failed");
            }
        }
    }
}

/// Appends `op` with `condition`: its position, or the target's version in
/// the log when the condition does not hold there. A log that holds the
/// request id already is UNAVAILABLE: this server has not applied that write
/// yet, and a retry finds its outcome once it has.
pub(crate) fn append(
    log: &dyn WriteLog,
    op: &LogOp,
    condition: Condition,
) -> Result<std::result::Result<u64, u64>> {
    match log.append(Entry { op, condition })? {
        Appended::At(position) => Ok(Ok(position)),
        Appended::Conflict { actual } => Ok(Err(actual)),
        Appended::Repeated { position } => Err(EngineError::StorageUnavailable(format!(
            "the log holds a write with this request_id at position {position}, which this \
             server has not applied yet; retry shortly"
        ))),
    }
}
