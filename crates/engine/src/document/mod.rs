//! Documents: checking field values against a schema, the compact stored form,
//! and the tantivy document built for indexing.

mod body;
mod cache;
mod dictionary;
mod prepare;
mod stored;

pub use cache::{DEFAULT_DOCUMENT_CACHE_BYTES, DocumentCache};
pub use dictionary::Dictionary;
pub use prepare::prepare;
pub use stored::{Document, StoredDoc};

/// A document's fields: a JSON object.
pub type Fields = serde_json::Map<String, serde_json::Value>;

/// zstd level for stored documents: fast to write, about 2–3× smaller than the JSON.
const ZSTD_LEVEL: i32 = 3;

/// The largest whole number an INTEGER field accepts, in magnitude (2^53).
pub const MAX_SAFE_INTEGER: i64 = 1 << 53;

#[cfg(test)]
mod tests;
