//! Document ids by segment ordinal, cached per segment.
//!
//! Search finds documents by segment and doc id and must name them by their id.
//! tantivy keeps ids in a compressed term dictionary where turning one ordinal
//! into its text decompresses a block (and creates a zstd context): measured,
//! that was a third of a query's CPU. A segment never changes, so its ids are
//! read once, in order, and kept as a vector; the cache follows the segments of
//! the latest commit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;
use tantivy::SegmentReader;
use tantivy::index::SegmentId;

use super::schema::ID_FIELD;

/// The ids of one segment, by term ordinal.
pub type SegmentIds = Arc<[Box<str>]>;

#[derive(Default)]
pub struct IdCache {
    segments: RwLock<HashMap<SegmentId, SegmentIds>>,
}

impl IdCache {
    /// The ids of `reader`'s segment, read on first use.
    pub fn ids(&self, reader: &SegmentReader) -> tantivy::Result<SegmentIds> {
        if let Some(ids) = self.segments.read().get(&reader.segment_id()) {
            return Ok(ids.clone());
        }
        let ids: SegmentIds = match reader.fast_fields().str(ID_FIELD)? {
            Some(column) => {
                let mut ids = Vec::with_capacity(column.num_terms());
                let mut stream = column.dictionary().stream()?;
                while stream.advance() {
                    ids.push(String::from_utf8_lossy(stream.key()).into());
                }
                ids.into()
            }
            None => Arc::from(Vec::new()),
        };
        self.segments
            .write()
            .insert(reader.segment_id(), ids.clone());
        Ok(ids)
    }

    /// Forgets every segment not in `live`.
    pub fn retain(&self, live: &HashSet<SegmentId>) {
        self.segments.write().retain(|id, _| live.contains(id));
    }
}
