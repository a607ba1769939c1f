//! tantivy plumbing: the in-memory directory that keeps index files as shared
//! buffers, the merge policy, and the cache of document ids by segment.

pub(crate) mod directory;
pub(crate) mod ids;
pub(crate) mod merging;
