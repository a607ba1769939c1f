//! Making writes searchable: the shared commit (the first waiter commits for
//! everyone), the views it publishes, and the views of merges that ended after
//! the last commit.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::core::blocking;
use super::{Collection, View};
use crate::error::{EngineError, Result};
use crate::index::merging::idle_merge_candidates;

impl Collection {
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

    /// Merges the segments an idle collection leaves apart
    /// ([`idle_merge_candidates`]) into one, once per idle period: when no
    /// write came for `idle` and none is pending. Returns whether it merged;
    /// the next refresh publishes the merged segment. After a merge, or when
    /// there is nothing to merge, the writer is closed unless a write came
    /// meanwhile. Blocking: waits for the merge, which runs on the writer's
    /// merge thread. Gives up at once when a commit holds the write state, and
    /// waits for a later call while a background merge holds one of the
    /// segments ([`InMerge`]).
    ///
    /// [`InMerge`]: crate::index::merging::InMerge
    pub fn merge_if_idle(&self, idle: Duration) -> Result<bool> {
        let merge = {
            let Some(mut state) = self.write.try_lock() else {
                return Ok(false);
            };
            let pending = state.waiting.is_some() || state.seq > state.committed_seq;
            #[cfg(test)]
            if state.merges_stopped {
                return Ok(false);
            }
            if pending || state.idle_merge_started || state.last_write.elapsed() < idle {
                return Ok(false);
            }
            let segments = {
                let metas = self.index.searchable_segment_metas()?;
                if state.in_merge.holds_any(&metas) {
                    return Ok(false);
                }
                idle_merge_candidates(&metas)
            };
            state.idle_merge_started = true;
            if segments.is_empty() {
                // No merge runs (none holds a segment): closing waits for nothing.
                state.close_writer_if_idle(idle)?;
                return Ok(false);
            }
            state.writer()?.merge(&segments)
        };
        if merge.wait().is_err() {
            self.write.lock().idle_merge_started = false;
            self.collect_garbage()?;
            return Ok(false);
        }
        // The writer's work is done until the next write: closing it now
        // rather than after a minute ends its indexing threads, and the
        // allocator can then return the pages of the segments the merge
        // replaced, which were those threads' (docs/decisions.md).
        self.write.lock().close_writer_if_idle(idle)?;
        Ok(true)
    }

    /// Whether [`Collection::merge_if_idle`] has something to decide: no write
    /// came for `idle` and this idle period's merge has not started. False
    /// while a write or commit holds the write state.
    pub fn idle_merge_due(&self, idle: Duration) -> bool {
        self.write
            .try_lock()
            .is_some_and(|state| !state.idle_merge_started && state.last_write.elapsed() >= idle)
    }

    /// Deletes the index files no segment needs any more, if the writer is
    /// open. tantivy does so after each commit and each merge that succeeds;
    /// a merge that fails (another merge took one of its segments first)
    /// leaves its output, and the inputs it held while the other ended, until
    /// the next of those.
    pub(super) fn collect_garbage(&self) -> Result<()> {
        let collected = self
            .write
            .lock()
            .writer
            .as_ref()
            .map(|writer| writer.garbage_collect_files());
        if let Some(collected) = collected {
            collected.wait()?;
        }
        Ok(())
    }

    /// Whether the index writer is open (tests).
    #[cfg(test)]
    pub(super) fn writer_open(&self) -> bool {
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

    /// Waits until a published view covers write `seq`, committing if no one else is.
    pub(super) async fn wait_visible(self: &Arc<Self>, seq: u64) -> Result<()> {
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
    pub(super) fn commit(&self) -> Result<()> {
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

    pub(super) fn commit_inner(&self) -> Result<u64> {
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
        tracing::debug!(
            collection = %self.name,
            segments = searcher.segment_readers().len(),
            documents = searcher.num_docs(),
            "published a view"
        );
        let view = View::new(self.uid, searcher, self.docs.read().clone());
        *self.view.write() = Arc::new(view);
        Ok(seq)
    }
}
