//! One collection: its schema, the live document map, the tantivy index, and the
//! group commit that makes writes visible to search.
//!
//! Writes go to two places under one lock: the live document map (so a Get right
//! after a write sees it) and the tantivy `IndexWriter`. A write then waits until
//! a commit covers it. Commits are shared: the first waiter becomes the committer
//! and commits everything written so far; the others wait on a watch channel.
//! Each commit publishes a [`View`]: a tantivy searcher and the document map as of
//! that commit, so a search reads documents exactly as the index saw them.
//!
//! The index gets a write one of two ways. Imports and writes that do not wait
//! go to the `IndexWriter`'s indexing threads, which batch them into large
//! segments. A write that waits to be searchable is indexed on the writing
//! thread into the waiting segment, a `SegmentWriter` of its own with a small
//! memory budget, which the commit hands to the writer whole: a commit of a
//! few documents costs mostly tantivy's per-segment work, and the indexing
//! threads start every segment with a term hash table sized for their budget.

use std::collections::HashSet;
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use imbl::OrdMap;
use parking_lot::{Mutex, RwLock};
use tantivy::directory::error::OpenReadError;
use tantivy::directory::{Directory, OwnedBytes, RamDirectory};
use tantivy::indexer::{AddOperation, IndexWriterOptions, SegmentWriter};
use tantivy::{
    Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, Segment, TantivyDocument, Term,
};
use tokio::sync::watch;

use super::analysis;
use super::budget::ResponseBudget;
use super::directory::IndexDirectory;
use super::document::{self, Dictionary, Document, Fields, StoredDoc};
use super::durable::{Captured, CollectionRecord, DocRecord, Journal, Op, tag_record};
use super::error::{EngineError, Result};
use super::ids::IdCache;
use super::merging::SmallFirst;
use super::names::{CollectionName, DocId};
use super::requests::{Outcome, RequestTag, Requests};
use super::schema::{CollectionSchema, FieldSpec};
use super::timestamp::now_micros;

/// The documents of a collection by id: a persistent map, so a snapshot is an O(1) clone.
pub(crate) type DocMap = OrdMap<DocId, Arc<StoredDoc>>;

/// Memory budget of each indexing thread of a collection's `IndexWriter`
/// (tantivy's minimum is 15 MB).
const WRITER_MEMORY_BYTES_PER_THREAD: usize = 24 << 20;
/// The most indexing threads a collection's writer uses. Indexing (tokenising,
/// stemming, building postings) is what limits imports and log replay: one
/// thread per core, up to this.
const MAX_WRITER_THREADS: usize = 4;
/// The merge threads of a collection's writer (tantivy's default is 4, each an
/// OS thread per collection): merges of one collection run one at a time.
const MERGE_THREADS: usize = 1;

/// A collection trains its zstd dictionary once it holds this many documents,
/// on these documents; later ones are compressed with it (earlier ones stay as
/// they are). Fewer make too few samples for a dictionary worth its size.
pub const TRAIN_AFTER_DOCUMENTS: usize = 1000;

/// Training reads at most this many bytes of documents.
const TRAIN_SAMPLE_BYTES: usize = 16 << 20;

/// The largest dictionary trained (zstd's own default size).
pub const DICTIONARY_BYTES: usize = 112_640;

/// How an update treats the fields it is given.
#[derive(Clone, Debug, PartialEq)]
pub enum Patch {
    /// Replace every field.
    Replace,
    /// Set or remove exactly these keys.
    Keys(Vec<String>),
    /// JSON merge-patch at the top level: given keys replace, null removes.
    Merge,
}

/// An update of one document.
#[derive(Clone, Debug)]
pub struct Update {
    pub id: DocId,
    pub fields: Fields,
    pub patch: Patch,
    /// Create the document if it does not exist.
    pub allow_missing: bool,
    /// 0 means don't check.
    pub expected_version: u64,
}

/// What one item of an import did.
pub type ImportResult = Result<Document>;

/// A consistent read view: the searcher and the documents as of one commit.
pub struct View {
    /// Unique across the process: page tokens name the view they page through.
    pub(crate) id: u64,
    /// The incarnation of the collection it shows (see [`Collection::uid`]): a
    /// page token must not walk a deleted collection's view into a new
    /// collection of the same name.
    pub(crate) collection: u64,
    pub(crate) searcher: Searcher,
    pub(crate) docs: DocMap,
}

impl View {
    fn new(collection: u64, searcher: Searcher, docs: DocMap) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        View {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            collection,
            searcher,
            docs,
        }
    }
}

/// Collection statistics.
#[derive(Clone, Debug)]
pub struct Stats {
    pub document_count: u64,
    pub memory_bytes: u64,
}

/// A collection of documents with its index.
pub struct Collection {
    name: CollectionName,
    /// Unique per incarnation: logged writes name it.
    uid: u64,
    /// The log, in the durable mode: every write is appended before it is applied.
    journal: OnceLock<Arc<Journal>>,
    /// The engine's remembered request ids.
    requests: Arc<Requests>,
    /// Document ids by segment, for search.
    id_cache: Arc<IdCache>,
    schema: CollectionSchema,
    create_time: i64,
    index: Index,
    /// The index's files, read raw (with their footers) for checkpoints.
    directory: RamDirectory,
    reader: IndexReader,
    /// The writer side. A parking_lot (std-like) mutex: it is never held across an
    /// `.await`, and is held only by blocking code (apply a write, commit).
    write: Mutex<WriteState>,
    /// The live documents: what Get and List see. Updated under `write`.
    docs: RwLock<DocMap>,
    /// The latest published view: what Search sees.
    view: RwLock<Arc<View>>,
    /// The sequence number of the last write a published view covers.
    visible: watch::Sender<u64>,
    /// Whether some task is committing now.
    committing: AtomicBool,
    /// The zstd dictionary for new documents: unset until trained (or loaded),
    /// `None` once training failed.
    dictionary: OnceLock<Option<Arc<Dictionary>>>,
}

struct WriteState {
    /// Opened by the first write and closed once the collection has been idle
    /// for a while (see [`Collection::close_idle_writer`]): a writer runs
    /// threads of its own, and a collection nobody writes to needs none.
    writer: Option<IndexWriter>,
    /// The index, to open the writer on.
    index: Index,
    /// When the last write was applied.
    last_write: Instant,
    /// Merges stopped (tests): a writer opened later stops them too.
    #[cfg(test)]
    merges_stopped: bool,
    /// The documents of writes that wait to be searchable, indexed by the
    /// writing thread into a segment of their own (see [`WriteState::add`]).
    waiting: Option<WaitingSegment>,
    /// The documents deleted from the index since the last commit.
    deleted: HashSet<DocId>,
    /// Writes applied so far.
    seq: u64,
    /// Writes covered by the last commit.
    committed_seq: u64,
    /// Sum of the stored documents' memory.
    doc_bytes: usize,
    /// The log record of the last write (0 without a log).
    log_seq: u64,
}

/// The memory budget of the segment that writes waiting to be searchable are
/// indexed into: tantivy sizes a new segment's term hash table from its budget,
/// so this one starts with 2^13 slots (64 KiB) and grows as terms arrive. The
/// writer's indexing threads (tantivy's minimum budget is 15 MB) start each
/// segment with 2^19 slots, 4 MB to fill and scan back for one document.
const WAITING_SEGMENT_BUDGET_BYTES: usize = 256 << 10;

/// A segment being written by the threads of writes that wait to be searchable.
struct WaitingSegment {
    writer: SegmentWriter,
    segment: Segment,
    /// The ids of its documents.
    ids: HashSet<DocId>,
}

impl WriteState {
    /// The writer, opened if it is closed.
    fn writer(&mut self) -> Result<&mut IndexWriter> {
        let writer = match &mut self.writer {
            Some(writer) => writer,
            closed => {
                let threads = std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .min(MAX_WRITER_THREADS);
                let options = IndexWriterOptions::builder()
                    .num_worker_threads(threads)
                    .memory_budget_per_thread(WRITER_MEMORY_BYTES_PER_THREAD)
                    .num_merge_threads(MERGE_THREADS)
                    .build();
                let writer = self.index.writer_with_options(options)?;
                writer.set_merge_policy(Box::<SmallFirst>::default());
                #[cfg(test)]
                if self.merges_stopped {
                    writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
                }
                closed.insert(writer)
            }
        };
        Ok(writer)
    }

    /// Indexes document `id`: into the segment of writes that wait to be
    /// searchable when `waited`, on this thread; otherwise through the writer's
    /// indexing threads, which batch documents into large segments.
    ///
    /// A commit of a few documents costs mostly what tantivy does once per
    /// segment, and its indexing threads start each segment with a term hash
    /// table sized for their budget (2^19 slots, 4 MB to fill and scan back for
    /// one document); the waiting segment's budget starts it at 2^13.
    ///
    /// A document deleted since the last commit goes to the indexing threads
    /// (see `add_waiting_segment`).
    fn add(&mut self, id: &DocId, doc: TantivyDocument, waited: bool) -> Result<()> {
        self.last_write = Instant::now();
        if !waited || self.deleted.contains(id) {
            self.writer()?.add_document(doc)?;
            return Ok(());
        }
        self.writer()?;
        let waiting = match &mut self.waiting {
            Some(waiting) => waiting,
            empty => {
                let segment = self.index.new_segment();
                empty.insert(WaitingSegment {
                    writer: SegmentWriter::for_segment(
                        WAITING_SEGMENT_BUDGET_BYTES,
                        segment.clone(),
                    )?,
                    segment,
                    ids: HashSet::new(),
                })
            }
        };
        // An operation stamp orders a segment's documents against the deletes
        // applied to it; a segment that joins the index whole has no use for it.
        waiting.writer.add_document(AddOperation {
            opstamp: 0,
            document: doc,
        })?;
        waiting.ids.insert(id.clone());
        if waiting.writer.mem_usage() >= WRITER_MEMORY_BYTES_PER_THREAD {
            self.add_waiting_segment()?;
        }
        Ok(())
    }

    /// Deletes document `id` from the index. If the waiting segment holds it,
    /// that segment joins the index first, so that the delete applies to it.
    fn delete(&mut self, id: &DocId, term: Term) -> Result<()> {
        if self.waiting.as_ref().is_some_and(|w| w.ids.contains(id)) {
            self.add_waiting_segment()?;
        }
        self.last_write = Instant::now();
        self.writer()?.delete_term(term);
        self.deleted.insert(id.clone());
        Ok(())
    }

    /// Commits every write applied so far.
    fn commit(&mut self) -> Result<()> {
        self.add_waiting_segment()?;
        self.writer()?.commit()?;
        // The commit brought every segment's deletes up to date, which moves
        // tantivy's delete queue past the deletes made so far; with no segment
        // at all nothing did, so they stay remembered.
        if !self.deleted.is_empty() && !self.index.searchable_segment_ids()?.is_empty() {
            self.deleted.clear();
        }
        Ok(())
    }

    /// Writes the waiting segment's files and hands it to the writer, which
    /// makes it part of the next commit.
    ///
    /// tantivy applies to a segment it is handed every delete made after the
    /// oldest delete its queue had not yet moved past, which can be older than
    /// the segment's documents: a replaced document's new version would be
    /// deleted with the old one. So a document deleted since the last commit
    /// never enters the waiting segment (see `add`), and one deleted while in it
    /// makes the segment join the index first (see `delete`).
    fn add_waiting_segment(&mut self) -> Result<()> {
        let Some(WaitingSegment {
            writer, segment, ..
        }) = self.waiting.take()
        else {
            return Ok(());
        };
        let max_doc = writer.max_doc();
        writer.finalize()?;
        let meta = segment.with_max_doc(max_doc).meta().clone();
        // Lets the garbage collector delete the temporary store file, as
        // tantivy's own indexing threads do once a segment is written.
        meta.untrack_temp_docstore();
        // `add_segment` is public but hidden from tantivy's documentation: it is
        // what tantivy's indexing threads call through the segment updater.
        self.writer()?.add_segment(meta)?;
        Ok(())
    }

    /// Closes the writer if nothing is pending and no write came for `idle`,
    /// after its merges end. Returns whether it closed it.
    fn close_writer_if_idle(&mut self, idle: Duration) -> Result<bool> {
        let pending = self.waiting.is_some() || self.seq > self.committed_seq;
        if self.writer.is_none() || pending || self.last_write.elapsed() < idle {
            return Ok(false);
        }
        if let Some(writer) = self.writer.take() {
            writer.wait_merging_threads()?;
        }
        // Every delete was applied by the last commit; a new writer starts
        // with an empty delete queue.
        self.deleted.clear();
        Ok(true)
    }
}

impl Collection {
    /// A new, empty collection.
    pub fn new(
        name: CollectionName,
        schema: CollectionSchema,
        requests: Arc<Requests>,
    ) -> Result<Arc<Self>> {
        let uid = uuid::Uuid::new_v4().as_u64_pair().0;
        let index = empty_index(&schema)?;
        let docs = DocMap::new();
        Collection::build(
            name,
            schema,
            uid,
            now_micros(),
            index,
            (docs, None),
            requests,
        )
    }

    /// An empty collection as a log record defines it.
    pub(crate) fn from_record(
        record: CollectionRecord,
        requests: Arc<Requests>,
    ) -> Result<Arc<Self>> {
        let (name, schema) = definition(&record)?;
        let index = empty_index(&schema)?;
        let (uid, time, docs) = (record.uid, record.create_time, DocMap::new());
        Collection::build(name, schema, uid, time, index, (docs, None), requests)
    }

    /// A collection read back from a checkpoint or snapshot.
    pub(crate) fn restore(
        loaded: super::durable::Loaded,
        requests: Arc<Requests>,
    ) -> Result<Arc<Self>> {
        let (name, schema) = definition(&loaded.record)?;
        let index = Index::open(IndexDirectory::new(loaded.index.clone()))?;
        if index.schema() != *schema.tantivy() {
            return Err(EngineError::DataDamaged(format!(
                "the index of collection {name} does not match its definition"
            )));
        }
        let (uid, time) = (loaded.record.uid, loaded.record.create_time);
        let index = (index, loaded.index);
        let docs = (loaded.docs, loaded.dictionary);
        Collection::build(name, schema, uid, time, index, docs, requests)
    }

    fn build(
        name: CollectionName,
        schema: CollectionSchema,
        uid: u64,
        create_time: i64,
        (index, directory): (Index, RamDirectory),
        (docs, dictionary): (DocMap, Option<Arc<Dictionary>>),
        requests: Arc<Requests>,
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
            journal: OnceLock::new(),
            requests,
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

    pub(crate) fn uid(&self) -> u64 {
        self.uid
    }

    /// The definition, as logged.
    pub(crate) fn record(&self) -> CollectionRecord {
        CollectionRecord {
            name: self.name.to_string(),
            uid: self.uid,
            create_time: self.create_time,
            fields: self
                .schema
                .fields()
                .iter()
                .map(|f| (&f.to_spec()).into())
                .collect(),
            synonyms: self.schema.synonyms().sets().to_vec(),
        }
    }

    /// The zstd dictionary new documents are compressed with.
    pub(crate) fn dictionary(&self) -> Option<&Arc<Dictionary>> {
        self.dictionary.get().and_then(Option::as_ref)
    }

    /// The dictionary for a new document, trained first if it is due (see
    /// [`TRAIN_AFTER_DOCUMENTS`]). A failed training leaves documents
    /// compressed without one.
    fn dictionary_for_write(&self, state: &mut WriteState) -> Result<Option<Arc<Dictionary>>> {
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
            self.log(state, || Op::Dictionary {
                uid: self.uid,
                bytes: dictionary.bytes().to_vec(),
            })?;
            tracing::info!(
                collection = %self.name,
                bytes = dictionary.bytes().len(),
                samples = samples.len(),
                ms = started.elapsed().as_millis() as u64,
                "trained a compression dictionary"
            );
        }
        let _ = self.dictionary.set(trained.clone());
        Ok(trained)
    }

    /// Sets the dictionary as a log record has it (recovery). A log may repeat
    /// what the checkpoint before it holds.
    pub(crate) fn replay_dictionary(&self, bytes: Vec<u8>) -> Result<()> {
        let dictionary = Dictionary::from_bytes(bytes)?;
        match self.dictionary() {
            Some(current) if current.id() == dictionary.id() => Ok(()),
            Some(current) => Err(EngineError::DataDamaged(format!(
                "collection {} has dictionary {} and the log names {}",
                self.name,
                current.id(),
                dictionary.id()
            ))),
            None => {
                let _ = self.dictionary.set(Some(Arc::new(dictionary)));
                Ok(())
            }
        }
    }

    /// From now on, every write is logged to `journal` before it is applied.
    pub(crate) fn attach(&self, journal: Arc<Journal>) {
        let _ = self.journal.set(journal);
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
    pub(crate) fn live_docs(&self) -> DocMap {
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
                stored.to_document(id)
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
                stored.to_document(id)
            })
            .collect()
    }

    /// Creates a document; `None` generates an id. Returns once visible to search
    /// unless `wait` is false.
    ///
    /// A non-empty `request_id` makes a retry return the first outcome (see
    /// [`super::requests`]); so for update and delete.
    pub async fn create(
        self: &Arc<Self>,
        id: Option<DocId>,
        fields: Fields,
        wait: bool,
        request_id: &str,
    ) -> Result<Document> {
        let target = id.as_ref().map_or("", |id| id.as_str());
        let tag = RequestTag::new(request_id, format!("CreateDocument {}/{target}", self.name))?;
        let this = self.clone();
        let (doc, seq, log_seq) = blocking(move || {
            let mut state = this.write.lock();
            if let Some(outcome) = this.remembered(&tag)? {
                return Ok((outcome_document(outcome)?, state.seq, state.log_seq));
            }
            let doc = this.apply_create(&mut state, id, fields, tag, wait)?;
            Ok((doc, state.seq, state.log_seq))
        })
        .await?;
        self.finish(seq, log_seq, wait).await?;
        Ok(doc)
    }

    /// Replaces or patches a document (see [`Update`]).
    pub async fn update(
        self: &Arc<Self>,
        update: Update,
        wait: bool,
        request_id: &str,
    ) -> Result<Document> {
        let fingerprint = format!("UpdateDocument {}/{}", self.name, update.id);
        let tag = RequestTag::new(request_id, fingerprint)?;
        let this = self.clone();
        let (doc, seq, log_seq) = blocking(move || {
            let mut state = this.write.lock();
            if let Some(outcome) = this.remembered(&tag)? {
                return Ok((outcome_document(outcome)?, state.seq, state.log_seq));
            }
            let doc = this.apply_update(&mut state, update, tag, wait)?;
            Ok((doc, state.seq, state.log_seq))
        })
        .await?;
        self.finish(seq, log_seq, wait).await?;
        Ok(doc)
    }

    /// Deletes a document; `expected_version` 0 means don't check.
    pub async fn delete(
        self: &Arc<Self>,
        id: DocId,
        expected_version: u64,
        wait: bool,
        request_id: &str,
    ) -> Result<()> {
        let tag = RequestTag::new(request_id, format!("DeleteDocument {}/{id}", self.name))?;
        let this = self.clone();
        let (seq, log_seq) = blocking(move || {
            let mut state = this.write.lock();
            if this.remembered(&tag)?.is_none() {
                this.apply_delete(&mut state, &id, expected_version, tag)?;
            }
            Ok((state.seq, state.log_seq))
        })
        .await?;
        self.finish(seq, log_seq, wait).await
    }

    /// Applies a batch of imports under one lock: each item creates or replaces
    /// its document. One failure does not stop the others. Returns once the batch
    /// is durable, but does not wait for visibility: call [`Collection::refresh`]
    /// after the last batch.
    pub async fn import(
        self: &Arc<Self>,
        items: Vec<(Option<DocId>, Fields)>,
    ) -> Result<Vec<ImportResult>> {
        let this = self.clone();
        let (results, log_seq) = blocking(move || {
            let mut state = this.write.lock();
            let results = items
                .into_iter()
                .map(|(id, fields)| match id {
                    None => this.apply_create(&mut state, None, fields, None, false),
                    Some(id) => this.apply_update(
                        &mut state,
                        Update {
                            id,
                            fields,
                            patch: Patch::Replace,
                            allow_missing: true,
                            expected_version: 0,
                        },
                        None,
                        false,
                    ),
                })
                .collect();
            Ok((results, state.log_seq))
        })
        .await?;
        self.durable(log_seq).await?;
        Ok(results)
    }

    /// Returns once every write applied so far is visible to search.
    pub async fn refresh(self: &Arc<Self>) -> Result<()> {
        let seq = self.write.lock().seq;
        self.wait_visible(seq).await
    }

    /// Closes the index writer, and with it its threads, if no write came for
    /// `idle` and nothing is pending; the next write opens it again. Waits
    /// for the writer's merges to end, holding the write lock. Blocking.
    pub fn close_idle_writer(&self, idle: Duration) -> Result<bool> {
        self.write.lock().close_writer_if_idle(idle)
    }

    /// Whether the index writer is open (tests).
    #[cfg(test)]
    fn writer_open(&self) -> bool {
        self.write.lock().writer.is_some()
    }

    /// Whether some applied writes are not yet visible to search.
    pub fn has_pending_writes(&self) -> bool {
        let state = self.write.lock();
        state.seq > state.committed_seq
    }

    /// Whether the index's segments differ from the published view's: a background
    /// merge has ended since the last commit.
    pub fn is_merged_since_view(&self) -> Result<bool> {
        let mut current = self.index.searchable_segment_ids()?;
        let view = self.view();
        let mut published: Vec<_> = view
            .searcher
            .segment_readers()
            .iter()
            .map(|r| r.segment_id())
            .collect();
        current.sort_unstable();
        published.sort_unstable();
        Ok(current != published)
    }

    /// Publishes a view of the index's current segments, unless a commit (which
    /// publishes one) is under way. A merge that ends after the last commit
    /// replaces its segments only in the index: until a view names the merged
    /// segment, the published one holds the segments it replaced, which doubles
    /// their memory.
    pub async fn publish_merged(self: &Arc<Self>) -> Result<()> {
        if self.committing.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let this = self.clone();
        blocking(move || this.commit()).await
    }

    async fn finish(self: &Arc<Self>, seq: u64, log_seq: u64, wait: bool) -> Result<()> {
        self.durable(log_seq).await?;
        if wait {
            self.wait_visible(seq).await
        } else {
            Ok(())
        }
    }

    /// Waits until log record `log_seq` is on disk.
    async fn durable(&self, log_seq: u64) -> Result<()> {
        match self.journal.get() {
            Some(journal) if log_seq > 0 => {
                let journal = journal.clone();
                blocking(move || journal.sync(log_seq)).await
            }
            _ => Ok(()),
        }
    }

    /// Appends the write `op` makes to the log, before it is applied.
    fn log(&self, state: &mut WriteState, op: impl FnOnce() -> Op) -> Result<()> {
        if let Some(journal) = self.journal.get() {
            state.log_seq = journal.append(op())?;
        }
        Ok(())
    }

    /// The first outcome of a retried write, if `tag` names one.
    fn remembered(&self, tag: &Option<RequestTag>) -> Result<Option<Outcome>> {
        match tag {
            Some(tag) => self.requests.get(tag),
            None => Ok(None),
        }
    }

    fn apply_create(
        &self,
        state: &mut WriteState,
        id: Option<DocId>,
        mut fields: Fields,
        request: Option<RequestTag>,
        waited: bool,
    ) -> Result<Document> {
        let id = match id {
            Some(id) => {
                if self.docs.read().contains_key(&id) {
                    return Err(EngineError::DocumentExists {
                        collection: self.name.to_string(),
                        id: id.to_string(),
                    });
                }
                id
            }
            None => DocId::generate(),
        };
        let tantivy_doc = document::prepare(&self.schema, &id, &mut fields)?;
        let now = now_micros();
        let dictionary = self.dictionary_for_write(state)?;
        let stored = StoredDoc::new(&fields, 1, now, now, dictionary.as_ref())?;
        self.log(state, || Op::Put {
            uid: self.uid,
            doc: DocRecord::of(&id, &stored),
            request: tag_record(&request),
        })?;
        state.add(&id, tantivy_doc, waited)?;
        let stored = self.put(state, &id, stored, None);
        self.remember(request, &id, stored);
        Ok(Document {
            id,
            fields,
            version: 1,
            create_time: now,
            update_time: now,
        })
    }

    fn apply_update(
        &self,
        state: &mut WriteState,
        update: Update,
        request: Option<RequestTag>,
        waited: bool,
    ) -> Result<Document> {
        let Update {
            id,
            fields,
            patch,
            allow_missing,
            expected_version,
        } = update;
        let current = self.docs.read().get(&id).cloned();
        match (&current, expected_version) {
            (None, 0) if allow_missing => {}
            (None, 0) => return Err(self.not_found(&id)),
            (None, expected) => {
                return Err(EngineError::VersionMismatch {
                    id: id.to_string(),
                    expected,
                    actual: 0,
                });
            }
            (Some(stored), expected) if expected != 0 && stored.version != expected => {
                return Err(EngineError::VersionMismatch {
                    id: id.to_string(),
                    expected,
                    actual: stored.version,
                });
            }
            (Some(_), _) => {}
        }
        let mut new_fields = match (&patch, &current) {
            (Patch::Replace, _) => Fields::new(),
            (_, Some(stored)) => stored.fields()?,
            (_, None) => Fields::new(),
        };
        match patch {
            Patch::Replace => new_fields = fields,
            Patch::Keys(keys) => {
                let mut fields = fields;
                for key in keys {
                    match fields.remove(&key) {
                        Some(value) => new_fields.insert(key, value),
                        None => new_fields.remove(&key),
                    };
                }
            }
            Patch::Merge => {
                for (key, value) in fields {
                    if value.is_null() {
                        new_fields.remove(&key);
                    } else {
                        new_fields.insert(key, value);
                    }
                }
            }
        }
        let tantivy_doc = document::prepare(&self.schema, &id, &mut new_fields)?;
        let now = now_micros();
        let (version, create_time) = match &current {
            Some(stored) => (stored.version + 1, stored.create_time),
            None => (1, now),
        };
        let dictionary = self.dictionary_for_write(state)?;
        let stored = StoredDoc::new(&new_fields, version, create_time, now, dictionary.as_ref())?;
        self.log(state, || Op::Put {
            uid: self.uid,
            doc: DocRecord::of(&id, &stored),
            request: tag_record(&request),
        })?;
        if current.is_some() {
            state.delete(&id, self.id_term(&id))?;
        }
        state.add(&id, tantivy_doc, waited)?;
        let stored = self.put(state, &id, stored, current.as_deref());
        self.remember(request, &id, stored);
        Ok(Document {
            id,
            fields: new_fields,
            version,
            create_time,
            update_time: now,
        })
    }

    fn apply_delete(
        &self,
        state: &mut WriteState,
        id: &DocId,
        expected_version: u64,
        request: Option<RequestTag>,
    ) -> Result<()> {
        let current = self.docs.read().get(id).cloned();
        let Some(current) = current else {
            return Err(self.not_found(id));
        };
        if expected_version != 0 && current.version != expected_version {
            return Err(EngineError::VersionMismatch {
                id: id.to_string(),
                expected: expected_version,
                actual: current.version,
            });
        }
        self.log(state, || Op::Delete {
            uid: self.uid,
            id: id.to_string(),
            request: tag_record(&request),
        })?;
        state.delete(id, self.id_term(id))?;
        self.docs.write().remove(id);
        state.doc_bytes -= current.memory_bytes();
        state.seq += 1;
        if let Some(tag) = request {
            self.requests.insert(tag, Outcome::Deleted);
        }
        Ok(())
    }

    fn remember(&self, request: Option<RequestTag>, id: &DocId, stored: Arc<StoredDoc>) {
        if let Some(tag) = request {
            let outcome = Outcome::Written {
                collection: self.uid,
                id: id.clone(),
                stored,
            };
            self.requests.insert(tag, outcome);
        }
    }

    /// Sets a document as a log record has it (recovery: no checks, no log).
    pub(crate) fn replay_put(&self, doc: DocRecord, request: Option<RequestTag>) -> Result<()> {
        let (id, stored) = doc.into_stored(self.dictionary())?;
        let mut fields = stored.fields()?;
        let tantivy_doc = document::prepare(&self.schema, &id, &mut fields)?;
        let mut state = self.write.lock();
        let current = self.docs.read().get(&id).cloned();
        state.delete(&id, self.id_term(&id))?;
        state.add(&id, tantivy_doc, false)?;
        let stored = self.put(&mut state, &id, stored, current.as_deref());
        self.remember(request, &id, stored);
        Ok(())
    }

    /// Removes a document as a log record says (recovery).
    pub(crate) fn replay_delete(&self, id: &str, request: Option<RequestTag>) -> Result<()> {
        let id = DocId::parse(id, "id")?;
        let mut state = self.write.lock();
        state.delete(&id, self.id_term(&id))?;
        if let Some(current) = self.docs.write().remove(&id) {
            state.doc_bytes -= current.memory_bytes();
        }
        state.seq += 1;
        if let Some(tag) = request {
            self.requests.insert(tag, Outcome::Deleted);
        }
        Ok(())
    }

    /// Commits and publishes a view of everything applied (recovery).
    pub(crate) fn publish(&self) -> Result<()> {
        let seq = self.commit_inner()?;
        self.visible.send_replace(seq);
        Ok(())
    }

    /// The documents and index files of one state, for a checkpoint or snapshot:
    /// commits what is pending and reads the files of that commit under the write
    /// lock. Index files are shared in-memory buffers: no copy is made.
    pub(crate) fn capture(&self) -> Result<Captured> {
        let mut state = self.write.lock();
        if state.seq > state.committed_seq {
            state.commit()?;
            state.committed_seq = state.seq;
        }
        let docs = self.docs.read().clone();
        // A background merge may replace segments (and delete their files) while
        // the files are read: read again until the metadata stayed the same.
        for _ in 0..100 {
            let metas = self.index.load_metas()?;
            let directory = &self.directory;
            let mut files = Vec::new();
            let mut complete = true;
            for path in metas.list_segment_files() {
                match directory.open_read(&path) {
                    Ok(slice) => files.push((path, read_all(&slice)?)),
                    Err(OpenReadError::FileDoesNotExist(_)) => {}
                    Err(err) => {
                        return Err(EngineError::Internal(format!("reading the index: {err}")));
                    }
                }
            }
            let again = self.index.load_metas()?;
            let same = |a: &tantivy::IndexMeta, b: &tantivy::IndexMeta| {
                a.opstamp == b.opstamp
                    && a.segments
                        .iter()
                        .map(|s| (s.id(), s.delete_opstamp()))
                        .eq(b.segments.iter().map(|s| (s.id(), s.delete_opstamp())))
            };
            if !same(&metas, &again) {
                complete = false;
            }
            if complete {
                let meta_json = serde_json::to_vec_pretty(&metas)
                    .map_err(|e| EngineError::Internal(format!("encoding index metadata: {e}")))?;
                files.push((PathBuf::from("meta.json"), OwnedBytes::new(meta_json)));
                if let Ok(managed) = directory.atomic_read(std::path::Path::new(".managed.json")) {
                    files.push((PathBuf::from(".managed.json"), OwnedBytes::new(managed)));
                }
                drop(state);
                return Ok(Captured {
                    record: self.record(),
                    docs,
                    index_files: files,
                    dictionary: self.dictionary().cloned(),
                });
            }
        }
        Err(EngineError::Internal(
            "the index kept changing while a checkpoint read it".into(),
        ))
    }

    fn put(
        &self,
        state: &mut WriteState,
        id: &DocId,
        stored: StoredDoc,
        old: Option<&StoredDoc>,
    ) -> Arc<StoredDoc> {
        state.doc_bytes += stored.memory_bytes();
        if let Some(old) = old {
            state.doc_bytes -= old.memory_bytes();
        }
        let stored = Arc::new(stored);
        self.docs.write().insert(id.clone(), stored.clone());
        state.seq += 1;
        stored
    }

    fn id_term(&self, id: &DocId) -> Term {
        Term::from_field_text(self.schema.id_field(), id.as_str())
    }

    fn not_found(&self, id: &DocId) -> EngineError {
        EngineError::DocumentNotFound {
            collection: self.name.to_string(),
            id: id.to_string(),
        }
    }

    /// Waits until a published view covers write `seq`, committing if no one else is.
    async fn wait_visible(self: &Arc<Self>, seq: u64) -> Result<()> {
        let started = Instant::now();
        let mut visible = self.visible.subscribe();
        loop {
            if *visible.borrow_and_update() >= seq {
                metrics::histogram!("trove_write_visibility_seconds")
                    .record(started.elapsed().as_secs_f64());
                return Ok(());
            }
            if !self.committing.swap(true, Ordering::AcqRel) {
                let this = self.clone();
                // The blocking commit clears `committing` and notifies waiters
                // itself, so a cancelled caller cannot leave the flag set.
                blocking(move || this.commit()).await?;
                continue;
            }
            if visible.changed().await.is_err() {
                return Err(EngineError::Internal("collection closed".into()));
            }
        }
    }

    /// Commits every applied write and publishes a new view. Must be called with
    /// `committing` set; clears it.
    fn commit(&self) -> Result<()> {
        let started = Instant::now();
        let result = self.commit_inner();
        metrics::histogram!("trove_commit_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        self.committing.store(false, Ordering::Release);
        match &result {
            Ok(seq) => {
                self.visible.send_if_modified(|visible| {
                    let changed = *visible < *seq;
                    *visible = (*visible).max(*seq);
                    changed
                });
            }
            // Wake the waiters so one of them retries.
            Err(err) => {
                tracing::error!(collection = %self.name, %err, "commit failed");
                self.visible.send_modify(|_| {});
            }
        }
        result.map(|_| ())
    }

    fn commit_inner(&self) -> Result<u64> {
        let mut state = self.write.lock();
        let seq = state.seq;
        if seq > state.committed_seq {
            state.commit()?;
            state.committed_seq = seq;
        }
        // Reload and snapshot under the lock, so the view's searcher and document
        // map describe the same commit.
        self.reader.reload()?;
        let searcher = self.reader.searcher();
        let live = searcher
            .segment_readers()
            .iter()
            .map(|r| r.segment_id())
            .collect();
        self.id_cache.retain(&live);
        let view = View::new(self.uid, searcher, self.docs.read().clone());
        *self.view.write() = Arc::new(view);
        Ok(seq)
    }
}

/// An empty in-memory index for `schema`, with its directory.
fn empty_index(schema: &CollectionSchema) -> Result<(Index, RamDirectory)> {
    let directory = RamDirectory::create();
    let index = Index::create(
        IndexDirectory::new(directory.clone()),
        schema.tantivy().clone(),
        Default::default(),
    )?;
    Ok((index, directory))
}

/// The document a remembered write returned.
fn outcome_document(outcome: Outcome) -> Result<Document> {
    match outcome {
        Outcome::Written { id, stored, .. } => stored.to_document(&id),
        _ => Err(EngineError::Internal(
            "a remembered write of another kind answered a document write".into(),
        )),
    }
}

/// The name and schema a record defines.
fn definition(record: &CollectionRecord) -> Result<(CollectionName, CollectionSchema)> {
    let name = CollectionName::parse(&record.name, "collection.name")?;
    let specs: Vec<FieldSpec> = record.fields.iter().map(FieldSpec::from).collect();
    let schema = CollectionSchema::new(&specs)?.with_synonyms(&record.synonyms)?;
    Ok((name, schema))
}

fn read_all(slice: &tantivy::directory::FileSlice) -> Result<OwnedBytes> {
    slice
        .read_bytes()
        .map_err(|e| EngineError::Internal(format!("reading the index: {e}")))
}

/// Runs blocking engine work (locks, tantivy, compression) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("blocking task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A merge that ends after the last commit changes the index, not the view;
    /// `publish_merged` then publishes a view of the merged segment, so the view
    /// no longer holds the segments it replaced.
    #[tokio::test]
    async fn a_merge_ended_after_the_last_commit_is_published() {
        let name = CollectionName::parse("merging", "name").unwrap();
        let collection = Collection::new(name, super::super::fuzz::schema(), Default::default())
            .expect("a collection");
        collection.stop_merges();
        for i in 0..4 {
            let fields = json!({"title": format!("rust {i}")});
            let id = DocId::parse(&format!("d{i}"), "id").unwrap();
            let fields = fields.as_object().unwrap().clone();
            collection.create(Some(id), fields, true, "").await.unwrap();
        }
        let segments = |c: &Collection| c.view().searcher.segment_readers().len();
        assert_eq!(segments(&collection), 4, "one segment per visible write");
        assert!(!collection.is_merged_since_view().unwrap());

        collection.merge_all().unwrap();
        assert!(collection.is_merged_since_view().unwrap());
        assert_eq!(segments(&collection), 4, "the view is the last commit's");

        let before = collection.view().id;
        collection.publish_merged().await.unwrap();
        let view = collection.view();
        assert_ne!(view.id, before, "a new view");
        assert_eq!(segments(&collection), 1);
        assert_eq!(view.searcher.num_docs(), 4);
        assert_eq!(view.docs.len(), 4);
        assert!(!collection.is_merged_since_view().unwrap());
    }

    /// The documents of `view` holding `term`.
    fn documents_holding(view: &View, term: Term) -> usize {
        let query = tantivy::query::TermQuery::new(term, tantivy::schema::IndexRecordOption::Basic);
        view.searcher
            .search(&query, &tantivy::collector::Count)
            .unwrap()
    }

    /// Writes that wait to be searchable are indexed into a segment of their
    /// own, the others by the writer's threads. Replacing or deleting a document
    /// before a commit leaves only its last version in the index, whichever way
    /// each write went.
    #[tokio::test]
    async fn the_waiting_segment_keeps_only_the_last_version_of_a_document() {
        let name = CollectionName::parse("waiting", "name").unwrap();
        let collection = Collection::new(name, super::super::fuzz::schema(), Default::default())
            .expect("a collection");
        let id = |s: &str| DocId::parse(s, "id").unwrap();
        let fields = |title: &str| json!({"title": title}).as_object().unwrap().clone();
        let replace = |i: &str, title: &str| Update {
            id: id(i),
            fields: fields(title),
            patch: Patch::Replace,
            allow_missing: false,
            expected_version: 0,
        };
        {
            let c = &collection;
            let mut state = c.write.lock();
            // (first write waited, second write waited) for a, b, c; d deleted.
            for (i, first, second) in [("a", true, true), ("b", true, false), ("c", false, true)] {
                c.apply_create(&mut state, Some(id(i)), fields("first"), None, first)
                    .unwrap();
                c.apply_update(&mut state, replace(i, "second"), None, second)
                    .unwrap();
            }
            c.apply_create(&mut state, Some(id("d")), fields("first"), None, true)
                .unwrap();
            c.apply_delete(&mut state, &id("d"), 0, None).unwrap();
            c.apply_create(&mut state, Some(id("e")), fields("second"), None, true)
                .unwrap();
            assert!(state.waiting.is_some(), "waited writes are pending");
        }
        collection.refresh().await.unwrap();

        let view = collection.view();
        let count = |term: Term| documents_holding(&view, term);
        for (i, expected) in [("a", 1), ("b", 1), ("c", 1), ("d", 0), ("e", 1)] {
            assert_eq!(count(collection.id_term(&id(i))), expected, "document {i}");
        }
        let (_, title) = collection.schema.field("title").unwrap();
        assert_eq!(
            count(Term::from_field_text(title, "first")),
            0,
            "no first version left"
        );
        assert_eq!(count(Term::from_field_text(title, "second")), 4);
        assert_eq!(view.searcher.num_docs(), 4);

        // After a commit: a document deleted before it, created again.
        for (i, title) in [("d", "third"), ("f", "third")] {
            collection
                .create(Some(id(i)), fields(title), true, "")
                .await
                .unwrap();
        }
        collection
            .update(replace("e", "third"), true, "")
            .await
            .unwrap();
        let view = collection.view();
        let count = |term: Term| documents_holding(&view, term);
        for i in ["a", "b", "c", "d", "e", "f"] {
            assert_eq!(count(collection.id_term(&id(i))), 1, "document {i}");
        }
        assert_eq!(count(Term::from_field_text(title, "third")), 3);
        assert_eq!(view.searcher.num_docs(), 6);
    }

    /// A collection opens its writer (and its threads) at the first write and
    /// closes it when idle; writes after that open it again, and replacing a
    /// document then still leaves one version of it.
    #[tokio::test]
    async fn the_writer_opens_at_the_first_write_and_closes_when_idle() {
        let name = CollectionName::parse("idle", "name").unwrap();
        let collection = Collection::new(name, super::super::fuzz::schema(), Default::default())
            .expect("a collection");
        assert!(
            !collection.writer_open(),
            "an empty collection has no writer"
        );
        let id = DocId::parse("a", "id").unwrap();
        let fields = |title: &str| json!({"title": title}).as_object().unwrap().clone();
        collection
            .create(Some(id.clone()), fields("first"), true, "")
            .await
            .unwrap();
        assert!(collection.writer_open());
        assert!(
            !collection
                .close_idle_writer(Duration::from_secs(3600))
                .unwrap()
        );
        assert!(collection.close_idle_writer(Duration::ZERO).unwrap());
        assert!(!collection.writer_open());

        let update = Update {
            id: id.clone(),
            fields: fields("second"),
            patch: Patch::Replace,
            allow_missing: false,
            expected_version: 0,
        };
        collection.update(update, true, "").await.unwrap();
        assert!(collection.writer_open());
        let view = collection.view();
        assert_eq!(documents_holding(&view, collection.id_term(&id)), 1);
        assert_eq!(view.searcher.num_docs(), 1);
        collection.delete(id.clone(), 0, true, "").await.unwrap();
        assert!(collection.close_idle_writer(Duration::ZERO).unwrap());
        assert_eq!(collection.view().searcher.num_docs(), 0);
    }
}
