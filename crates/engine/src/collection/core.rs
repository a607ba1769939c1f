//! A collection: its schema, index, live documents and dictionary, built new,
//! from a definition or from a checkpoint, and read by id.

use std::collections::HashSet;
use std::ops::Bound;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use imbl::OrdMap;
use parking_lot::{Mutex, RwLock};
use tantivy::directory::RamDirectory;
use tantivy::{Index, IndexReader, ReloadPolicy, Term};
use tokio::sync::watch;

use crate::budget::ResponseBudget;
use crate::document::{Dictionary, Document, DocumentCache, StoredDoc};
use crate::error::{EngineError, Result};
use crate::index::directory::IndexDirectory;
use crate::index::ids::IdCache;
use crate::names::{CollectionName, DocId};
use crate::persist::{CollectionDef, Condition, Loaded, LogOp, WriteLog};
use crate::requests::{Outcome, Requests};
use crate::schema::CollectionSchema;
use crate::text::analysis;
use crate::timestamp::now_micros;

use super::view::View;
use super::write_state::WriteState;

/// The documents of a collection by id: a persistent map, so a snapshot is an O(1) clone.
pub type DocMap = OrdMap<DocId, Arc<StoredDoc>>;

/// A collection trains its zstd dictionary once it holds this many documents,
/// on these documents; later ones are compressed with it (earlier ones stay as
/// they are). Fewer make too few samples for a dictionary worth its size.
pub const TRAIN_AFTER_DOCUMENTS: usize = 1000;

/// Training reads at most this many bytes of documents.
const TRAIN_SAMPLE_BYTES: usize = 16 << 20;

/// The largest dictionary trained (zstd's own default size).
pub const DICTIONARY_BYTES: usize = 112_640;

/// Collection statistics.
#[derive(Clone, Debug)]
pub struct Stats {
    pub document_count: u64,
    pub memory_bytes: u64,
}

/// A collection of documents with its index.
pub struct Collection {
    pub(super) name: CollectionName,
    /// Unique per incarnation: logged writes name it.
    pub(super) uid: u64,
    /// Where every write is appended before it is applied; set when the
    /// collection is registered (see [`Collection::attach`]).
    pub(super) log: OnceLock<Arc<dyn WriteLog>>,
    /// The engine's remembered request ids.
    pub(super) requests: Arc<Requests>,
    /// The engine's decoded documents.
    pub(crate) documents: Arc<DocumentCache>,
    /// Document ids by segment, for search.
    pub(super) id_cache: Arc<IdCache>,
    pub(super) schema: CollectionSchema,
    pub(super) create_time: i64,
    pub(super) index: Index,
    /// The index's files, read raw (with their footers) for checkpoints.
    pub(super) directory: RamDirectory,
    pub(super) reader: IndexReader,
    /// The writer side. A parking_lot (std-like) mutex: it is never held across an
    /// `.await`, and is held only by blocking code (apply a write, commit).
    pub(super) write: Mutex<WriteState>,
    /// The live documents: what Get and List see. Updated under `write`.
    pub(super) docs: RwLock<DocMap>,
    /// The latest published view: what Search sees.
    pub(super) view: RwLock<Arc<View>>,
    /// The sequence number of the last write a published view covers.
    pub(super) visible: watch::Sender<u64>,
    /// Whether some task is committing now.
    pub(super) committing: AtomicBool,
    /// The zstd dictionary for new documents: unset until trained (or loaded),
    /// `None` once training failed.
    pub(super) dictionary: OnceLock<Option<Arc<Dictionary>>>,
}

/// What an engine's collections share.
#[derive(Clone, Default)]
pub(crate) struct Shared {
    pub(crate) requests: Arc<Requests>,
    pub(crate) documents: Arc<DocumentCache>,
}

impl Collection {
    /// A new, empty collection.
    pub(crate) fn new(
        name: CollectionName,
        schema: CollectionSchema,
        shared: Shared,
    ) -> Result<Arc<Self>> {
        let uid = uuid::Uuid::new_v4().as_u64_pair().0;
        let index = empty_index(&schema)?;
        let docs = DocMap::new();
        Collection::build(name, schema, uid, now_micros(), index, (docs, None), shared)
    }

    /// A new, empty collection of its own, outside any engine: its writes go
    /// to a [`crate::persist::MemoryLog`] (fuzzing, tests).
    pub(crate) fn standalone(name: CollectionName, schema: CollectionSchema) -> Result<Arc<Self>> {
        let collection = Collection::new(name, schema, Shared::default())?;
        collection.attach(Arc::new(crate::persist::MemoryLog::default()));
        Ok(collection)
    }

    /// An empty collection as a log record defines it.
    pub(crate) fn from_definition(definition: CollectionDef, shared: Shared) -> Result<Arc<Self>> {
        let schema = schema_of(&definition)?;
        let index = empty_index(&schema)?;
        let CollectionDef {
            name,
            uid,
            create_time,
            ..
        } = definition;
        let docs = (DocMap::new(), None);
        Collection::build(name, schema, uid, create_time, index, docs, shared)
    }

    /// A collection read back from a checkpoint or snapshot.
    pub(crate) fn restore(loaded: Loaded, shared: Shared) -> Result<Arc<Self>> {
        let schema = schema_of(&loaded.definition)?;
        let name = loaded.definition.name.clone();
        let index = Index::open(IndexDirectory::new(loaded.index.clone()))?;
        if index.schema() != *schema.tantivy() {
            return Err(EngineError::DataDamaged(format!(
                "the index of collection {name} does not match its definition"
            )));
        }
        let (uid, time) = (loaded.definition.uid, loaded.definition.create_time);
        let index = (index, loaded.index);
        let docs = (loaded.docs, loaded.dictionary);
        Collection::build(name, schema, uid, time, index, docs, shared)
    }

    fn build(
        name: CollectionName,
        schema: CollectionSchema,
        uid: u64,
        create_time: i64,
        (index, directory): (Index, RamDirectory),
        (docs, dictionary): (DocMap, Option<Arc<Dictionary>>),
        Shared {
            requests,
            documents,
        }: Shared,
    ) -> Result<Arc<Self>> {
        analysis::register(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let doc_bytes = docs.values().map(|d| d.memory_bytes()).sum();
        let writer_index = index.clone();
        let view = View::new(uid, reader.searcher(), docs.clone());
        Ok(Arc::new(Collection {
            name,
            uid,
            log: OnceLock::new(),
            requests,
            documents,
            id_cache: Arc::default(),
            schema,
            create_time,
            index,
            directory,
            reader,
            write: Mutex::new(WriteState {
                writer: None,
                index: writer_index,
                last_write: Instant::now(),
                idle_merge_started: false,
                in_merge: Arc::default(),
                #[cfg(test)]
                merges_stopped: false,
                waiting: None,
                deleted: HashSet::new(),
                seq: 0,
                committed_seq: 0,
                doc_bytes,
                log_seq: 0,
            }),
            docs: RwLock::new(docs),
            view: RwLock::new(Arc::new(view)),
            visible: watch::Sender::new(0),
            committing: AtomicBool::new(false),
            dictionary: match dictionary {
                Some(dictionary) => OnceLock::from(Some(dictionary)),
                None => OnceLock::new(),
            },
        }))
    }

    pub fn uid(&self) -> u64 {
        self.uid
    }

    /// The definition, as logged.
    pub fn definition(&self) -> CollectionDef {
        CollectionDef {
            name: self.name.clone(),
            uid: self.uid,
            create_time: self.create_time,
            fields: self.schema.fields().iter().map(|f| f.to_spec()).collect(),
            synonyms: self.schema.synonyms().sets().to_vec(),
        }
    }

    /// The zstd dictionary new documents are compressed with.
    pub fn dictionary(&self) -> Option<&Arc<Dictionary>> {
        self.dictionary.get().and_then(Option::as_ref)
    }

    /// The dictionary for a new document, trained first if it is due (see
    /// [`TRAIN_AFTER_DOCUMENTS`]). A failed training leaves documents
    /// compressed without one.
    pub(super) fn dictionary_for_write(
        &self,
        state: &mut WriteState,
    ) -> Result<Option<Arc<Dictionary>>> {
        if let Some(dictionary) = self.dictionary.get() {
            return Ok(dictionary.clone());
        }
        // Every write to a small collection asks: no snapshot of the map for that.
        if self.docs.read().len() < TRAIN_AFTER_DOCUMENTS {
            return Ok(None);
        }
        let docs = self.docs.read().clone();
        let started = Instant::now();
        // As many documents as it takes, up to a bound on their bytes (a
        // collection restored from an older data directory may hold millions).
        let mut samples = Vec::new();
        let mut sample_bytes = 0;
        for stored in docs.values().take(TRAIN_AFTER_DOCUMENTS) {
            let json = stored.json()?;
            sample_bytes += json.len();
            samples.push(json);
            if sample_bytes >= TRAIN_SAMPLE_BYTES {
                break;
            }
        }
        // zstd reserves ids below 2^15 and from 2^31.
        let id =
            (1 << 15) + (uuid::Uuid::new_v4().as_u64_pair().0 % ((1 << 31) - (1 << 15))) as u32;
        let trained = match Dictionary::train(&samples, DICTIONARY_BYTES, id) {
            Ok(dictionary) => Some(Arc::new(dictionary)),
            Err(err) => {
                tracing::warn!(collection = %self.name, %err, "documents stay compressed without a dictionary");
                None
            }
        };
        if let Some(dictionary) = &trained {
            let op = LogOp::Dictionary {
                uid: self.uid,
                dictionary: dictionary.clone(),
            };
            self.append(state, &op, Condition::Any, |_| {
                EngineError::Internal("the log refused a dictionary".into())
            })?;
            self.apply(state, op, None, false)?;
            tracing::info!(
                collection = %self.name,
                bytes = dictionary.bytes().len(),
                samples = samples.len(),
                ms = started.elapsed().as_millis() as u64,
                "trained a compression dictionary"
            );
        }
        if trained.is_none() {
            let _ = self.dictionary.set(None);
        }
        Ok(trained)
    }

    /// From now on, every write is appended to `log` before it is applied.
    pub(crate) fn attach(&self, log: Arc<dyn WriteLog>) {
        let _ = self.log.set(log);
    }

    /// The log writes go to: unset until the collection is registered.
    pub(super) fn log(&self) -> Result<&Arc<dyn WriteLog>> {
        self.log.get().ok_or_else(|| {
            EngineError::Internal(format!("collection {} has no log yet", self.name))
        })
    }

    pub fn name(&self) -> &CollectionName {
        &self.name
    }

    pub fn schema(&self) -> &CollectionSchema {
        &self.schema
    }

    /// Microseconds since the epoch.
    pub fn create_time(&self) -> i64 {
        self.create_time
    }

    /// Document ids by segment.
    pub(crate) fn id_cache(&self) -> Arc<IdCache> {
        self.id_cache.clone()
    }

    pub(crate) fn index(&self) -> &Index {
        &self.index
    }

    /// Stops merging segments, so that a test sees every commit's segments.
    #[cfg(test)]
    pub(crate) fn stop_merges(&self) {
        let mut state = self.write.lock();
        state.merges_stopped = true;
        if let Some(writer) = &state.writer {
            writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
        }
    }

    /// Merges every segment into one, as the merge policy does in the background,
    /// and returns once the merge has ended. Publishes no view.
    #[cfg(test)]
    pub(crate) fn merge_all(&self) -> Result<()> {
        let merged = {
            let mut state = self.write.lock();
            let ids = self.index.searchable_segment_ids()?;
            state.writer()?.merge(&ids)
        };
        merged.wait()?;
        Ok(())
    }

    /// The latest published view, for search.
    pub(crate) fn view(&self) -> Arc<View> {
        self.view.read().clone()
    }

    /// Document count and memory estimate.
    pub fn stats(&self) -> Stats {
        let document_count = self.docs.read().len() as u64;
        let doc_bytes = self.write.lock().doc_bytes;
        // Every file the index holds in memory, including those of older
        // commits still pinned by a view. (tantivy's `space_usage` fails on some
        // segments and would report a partial figure.)
        let index_bytes = self.directory.total_mem_usage() as u64;
        let dictionary_bytes = self.dictionary().map_or(0, |d| d.memory_bytes()) as u64;
        Stats {
            document_count,
            memory_bytes: doc_bytes as u64 + index_bytes + dictionary_bytes,
        }
    }

    /// The live documents (an O(1) snapshot of the map).
    pub fn live_docs(&self) -> DocMap {
        self.docs.read().clone()
    }

    /// The live document `id`.
    pub fn get(&self, id: &DocId) -> Result<Document> {
        self.get_within(id, &mut ResponseBudget::new("ids"))
    }

    /// The live document `id`, charged to `budget` before it is decompressed.
    pub fn get_within(&self, id: &DocId, budget: &mut ResponseBudget) -> Result<Document> {
        let stored = self.docs.read().get(id).cloned();
        match stored {
            Some(stored) => {
                budget.charge(&stored)?;
                stored.to_document_cached(id, &self.documents)
            }
            None => Err(self.not_found(id)),
        }
    }

    /// Up to `limit` live documents in id order, starting after `after`.
    pub fn list(&self, after: Option<&DocId>, limit: usize) -> Result<Vec<Document>> {
        let docs = self.docs.read().clone();
        let lower = match after {
            Some(id) => Bound::Excluded(id),
            None => Bound::Unbounded,
        };
        let mut budget = ResponseBudget::new("page_size");
        docs.range::<_, DocId>((lower, Bound::Unbounded))
            .take(limit)
            .map(|(id, stored)| {
                budget.charge(stored)?;
                stored.to_document_cached(id, &self.documents)
            })
            .collect()
    }

    pub(super) fn id_term(&self, id: &DocId) -> Term {
        Term::from_field_text(self.schema.id_field(), id.as_str())
    }

    pub(super) fn not_found(&self, id: &DocId) -> EngineError {
        EngineError::DocumentNotFound {
            collection: self.name.to_string(),
            id: id.to_string(),
        }
    }
}

/// An empty in-memory index for `schema`, with its directory.
pub(super) fn empty_index(schema: &CollectionSchema) -> Result<(Index, RamDirectory)> {
    let directory = RamDirectory::create();
    let index = Index::create(
        IndexDirectory::new(directory.clone()),
        schema.tantivy().clone(),
        Default::default(),
    )?;
    Ok((index, directory))
}

/// The document a remembered write returned.
pub(super) fn outcome_document(outcome: Outcome) -> Result<Document> {
    match outcome {
        Outcome::Written { id, stored, .. } => stored.to_document(&id),
        _ => Err(EngineError::Internal(
            "a remembered write of another kind answered a document write".into(),
        )),
    }
}

/// The schema a definition describes.
pub(super) fn schema_of(definition: &CollectionDef) -> Result<CollectionSchema> {
    CollectionSchema::new(&definition.fields)?.with_synonyms(&definition.synonyms)
}

/// Runs blocking engine work (locks, tantivy, compression) off the async workers.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("blocking task failed: {e}")))?
}
