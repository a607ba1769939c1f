//! Document ids by segment ordinal, cached per segment.
//!
//! Search finds documents by segment and doc id and must name them by their id.
//! tantivy keeps ids in a compressed term dictionary where turning one ordinal
//! into its text decompresses a block (and creates a zstd context), a large
//! part of a query's CPU when done per hit. A segment never changes, so its ids
//! are read once, in order, and kept as a vector, beside the opened id column
//! that maps a document to its ordinal (opening a column parses its header,
//! which is worth doing once per segment rather than per hit). The cache follows the
//! segments of the latest commit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;
use tantivy::columnar::StrColumn;
use tantivy::index::SegmentId;
use tantivy::{DocId, SegmentReader};

use crate::schema::ID_FIELD;

/// The ids of one segment.
pub struct SegmentIds {
    /// Document → term ordinal; `None` in a segment without documents.
    column: Option<StrColumn>,
    /// The ids by term ordinal.
    texts: Box<[Box<str>]>,
}

impl SegmentIds {
    /// The term ordinal of `doc`'s id; ids sort as their ordinals do.
    pub fn ord(&self, doc: DocId) -> Option<u64> {
        self.column.as_ref()?.term_ords(doc).next()
    }

    /// The id with term ordinal `ord`.
    pub fn text(&self, ord: u64) -> Option<&str> {
        self.texts.get(usize::try_from(ord).ok()?).map(|id| &**id)
    }
}

#[derive(Default)]
pub struct IdCache {
    segments: RwLock<HashMap<SegmentId, Arc<SegmentIds>>>,
}

impl IdCache {
    /// The ids of `reader`'s segment, read on first use.
    pub fn ids(&self, reader: &SegmentReader) -> tantivy::Result<Arc<SegmentIds>> {
        if let Some(ids) = self.segments.read().get(&reader.segment_id()) {
            return Ok(ids.clone());
        }
        let column = reader.fast_fields().str(ID_FIELD)?;
        let mut texts = Vec::new();
        if let Some(column) = &column {
            texts.reserve_exact(column.num_terms());
            let mut stream = column.dictionary().stream()?;
            while stream.advance() {
                texts.push(String::from_utf8_lossy(stream.key()).into());
            }
        }
        let ids = Arc::new(SegmentIds {
            column,
            texts: texts.into(),
        });
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
