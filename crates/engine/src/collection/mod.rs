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

mod apply;
mod capture;
mod core;
mod view;
mod visibility;
mod write_state;
mod writes;

pub(crate) use core::Shared;
pub use core::{Collection, DICTIONARY_BYTES, DocMap, Stats, TRAIN_AFTER_DOCUMENTS};
pub use view::View;
pub use writes::{ImportResult, Patch, Update};

#[cfg(test)]
mod tests;
