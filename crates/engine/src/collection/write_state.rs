//! The writer side of a collection: the tantivy `IndexWriter` (opened at the
//! first write, closed when idle), the waiting segment of writes that wait to
//! be searchable, and the deletes since the last commit.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tantivy::indexer::{AddOperation, IndexWriterOptions, SegmentWriter};
use tantivy::{Index, IndexWriter, Segment, TantivyDocument, Term};

use crate::error::Result;
use crate::index::merging::{InMerge, SmallFirst};
use crate::names::DocId;

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

pub(super) struct WriteState {
    /// Opened by the first write and closed once the collection has been idle
    /// for a while (see [`Collection::close_idle_writer`]): a writer runs
    /// threads of its own, and a collection nobody writes to needs none.
    pub(super) writer: Option<IndexWriter>,
    /// The index, to open the writer on.
    pub(super) index: Index,
    /// When the last write was applied.
    pub(super) last_write: Instant,
    /// Whether this idle period's merge has started (see
    /// [`Collection::merge_if_idle`]); a write clears it.
    pub(super) idle_merge_started: bool,
    /// The segments the writer's merge policy handed to background merges.
    pub(super) in_merge: Arc<InMerge>,
    /// Merges stopped (tests): a writer opened later stops them too.
    #[cfg(test)]
    pub(super) merges_stopped: bool,
    /// The documents of writes that wait to be searchable, indexed by the
    /// writing thread into a segment of their own (see [`WriteState::add`]).
    pub(super) waiting: Option<WaitingSegment>,
    /// The documents deleted from the index since the last commit.
    pub(super) deleted: HashSet<DocId>,
    /// Writes applied so far.
    pub(super) seq: u64,
    /// Writes covered by the last commit.
    pub(super) committed_seq: u64,
    /// Sum of the stored documents' memory.
    pub(super) doc_bytes: usize,
    /// The log record of the last write (0 without a log).
    pub(super) log_seq: u64,
}

/// The memory budget of the segment that writes waiting to be searchable are
/// indexed into: tantivy sizes a new segment's term hash table from its budget,
/// so this one starts with 2^13 slots (64 KiB) and grows as terms arrive. The
/// writer's indexing threads (tantivy's minimum budget is 15 MB) start each
/// segment with 2^19 slots, 4 MB to fill and scan back for one document.
const WAITING_SEGMENT_BUDGET_BYTES: usize = 256 << 10;

/// A segment being written by the threads of writes that wait to be searchable.
pub(super) struct WaitingSegment {
    pub(super) writer: SegmentWriter,
    pub(super) segment: Segment,
    /// The ids of its documents.
    pub(super) ids: HashSet<DocId>,
}

impl WriteState {
    /// The writer, opened if it is closed.
    pub(super) fn writer(&mut self) -> Result<&mut IndexWriter> {
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
                writer.set_merge_policy(Box::new(SmallFirst::recording(self.in_merge.clone())));
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
    pub(super) fn add(&mut self, id: &DocId, doc: TantivyDocument, waited: bool) -> Result<()> {
        self.last_write = Instant::now();
        self.idle_merge_started = false;
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
    pub(super) fn delete(&mut self, id: &DocId, term: Term) -> Result<()> {
        if self.waiting.as_ref().is_some_and(|w| w.ids.contains(id)) {
            self.add_waiting_segment()?;
        }
        self.last_write = Instant::now();
        self.idle_merge_started = false;
        self.writer()?.delete_term(term);
        self.deleted.insert(id.clone());
        Ok(())
    }

    /// Commits every write applied so far.
    pub(super) fn commit(&mut self) -> Result<()> {
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
    pub(super) fn add_waiting_segment(&mut self) -> Result<()> {
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
    pub(super) fn close_writer_if_idle(&mut self, idle: Duration) -> Result<bool> {
        let pending = self.waiting.is_some() || self.seq > self.committed_seq;
        if self.writer.is_none() || pending || self.last_write.elapsed() < idle {
            return Ok(false);
        }
        if let Some(writer) = self.writer.take() {
            writer.wait_merging_threads()?;
        }
        // No merge runs without a writer; one that ended in failure would
        // otherwise stay recorded.
        self.in_merge = Arc::default();
        // Every delete was applied by the last commit; a new writer starts
        // with an empty delete queue.
        self.deleted.clear();
        Ok(true)
    }
}
