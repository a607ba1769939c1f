//! A consistent read view of a collection.

use std::sync::atomic::{AtomicU64, Ordering};

use tantivy::Searcher;

use super::DocMap;

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
    pub(super) fn new(collection: u64, searcher: Searcher, docs: DocMap) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        View {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            collection,
            searcher,
            docs,
        }
    }
}
