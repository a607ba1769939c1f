//! Documents read again and again (the hits of popular searches, hot ids)
//! kept decoded, so that a read does not decompress and parse them each time.
//!
//! Entries are keyed by a stored document's serial, which no other stored
//! document in the process shares: a write makes a new stored document, so an
//! entry never answers for a newer version, and an entry nobody can reach any
//! more (its document was replaced or deleted) is evicted in its turn.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use super::{Fields, StoredDoc};
use crate::error::Result;

/// The default capacity, in estimated bytes of decoded documents.
pub const DEFAULT_DOCUMENT_CACHE_BYTES: u64 = 64 << 20;

/// A decoded document and its estimated size.
#[derive(Clone)]
struct Entry {
    fields: Arc<Fields>,
    bytes: u64,
}

#[derive(Clone)]
struct BySize;

impl Weighter<u64, Entry> for BySize {
    fn weight(&self, _serial: &u64, entry: &Entry) -> u64 {
        entry.bytes
    }
}

/// A bounded cache of decoded documents, shared by an engine's collections.
pub struct DocumentCache {
    entries: Cache<u64, Entry, BySize>,
    /// 0: nothing is kept.
    capacity: AtomicU64,
}

impl DocumentCache {
    /// A cache holding up to about `capacity` bytes of decoded documents.
    pub fn new(capacity: u64) -> Self {
        DocumentCache {
            // The estimate of entries only sizes the cache's tables.
            entries: Cache::with_weighter(
                (capacity / 4096).clamp(16, 1 << 20) as usize,
                capacity.max(1),
                BySize,
            ),
            capacity: AtomicU64::new(capacity),
        }
    }

    /// Keeps up to about `capacity` bytes from now on (0: none).
    pub fn set_capacity(&self, capacity: u64) {
        self.capacity.store(capacity, Ordering::Relaxed);
        if capacity == 0 {
            self.entries.clear();
        } else {
            self.entries.set_capacity(capacity);
        }
    }

    /// The estimated bytes of the documents held.
    pub fn bytes(&self) -> u64 {
        self.entries.weight()
    }

    /// `doc`'s fields, decoded now unless they are held.
    pub fn fields(&self, doc: &StoredDoc) -> Result<Arc<Fields>> {
        if self.capacity.load(Ordering::Relaxed) == 0 {
            return Ok(Arc::new(doc.fields()?));
        }
        if let Some(entry) = self.entries.get(&doc.serial()) {
            metrics::counter!("trove_document_cache_hits_total").increment(1);
            return Ok(entry.fields);
        }
        metrics::counter!("trove_document_cache_misses_total").increment(1);
        let fields = Arc::new(doc.fields()?);
        let bytes = estimate_object(&fields);
        self.entries.insert(
            doc.serial(),
            Entry {
                fields: fields.clone(),
                bytes,
            },
        );
        Ok(fields)
    }
}

impl Default for DocumentCache {
    fn default() -> Self {
        DocumentCache::new(DEFAULT_DOCUMENT_CACHE_BYTES)
    }
}

/// Heap bytes a decoded JSON object holds, approximately: its map's entries,
/// its keys and each value's own allocations.
fn estimate_object(fields: &Fields) -> u64 {
    // A map entry: the key's String, the Value and the map's own overhead.
    const ENTRY: u64 = 24 + 32 + 16;
    64 + fields
        .iter()
        .map(|(key, value)| ENTRY + key.len() as u64 + estimate_value(value))
        .sum::<u64>()
}

fn estimate_value(value: &serde_json::Value) -> u64 {
    match value {
        serde_json::Value::String(s) => s.len() as u64,
        serde_json::Value::Array(items) => items.iter().map(|v| 32 + estimate_value(v)).sum(),
        serde_json::Value::Object(map) => estimate_object(map),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(title: &str) -> StoredDoc {
        let fields = json!({ "title": title }).as_object().unwrap().clone();
        StoredDoc::new(&fields, 1, 0, 0, None).unwrap()
    }

    #[test]
    fn a_held_document_is_answered_from_the_cache() {
        let cache = DocumentCache::new(1 << 20);
        let doc = stored("one");
        let first = cache.fields(&doc).unwrap();
        let second = cache.fields(&doc).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(second["title"], "one");
        assert!(cache.bytes() > 0);
    }

    #[test]
    fn a_newer_stored_document_is_never_answered_by_an_older_entry() {
        let cache = DocumentCache::new(1 << 20);
        let (old, new) = (stored("old"), stored("new"));
        assert_eq!(cache.fields(&old).unwrap()["title"], "old");
        assert_eq!(cache.fields(&new).unwrap()["title"], "new");
        assert_ne!(old.serial(), new.serial());
    }

    #[test]
    fn a_cache_of_no_capacity_holds_nothing() {
        let cache = DocumentCache::new(1 << 20);
        cache.set_capacity(0);
        let doc = stored("one");
        let first = cache.fields(&doc).unwrap();
        let second = cache.fields(&doc).unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn the_cache_keeps_within_its_capacity() {
        let cache = DocumentCache::new(64 << 10);
        let text = "x".repeat(4000);
        let docs: Vec<_> = (0..100).map(|_| stored(&text)).collect();
        for doc in &docs {
            cache.fields(doc).unwrap();
        }
        assert!(cache.bytes() <= 64 << 10, "{}", cache.bytes());
        assert!(cache.bytes() >= 4000);
    }
}
