//! The bytes of documents one response may carry.
//!
//! Documents are stored compressed, and a highly compressible one (megabytes
//! of one letter) costs almost nothing to store: a page of them decompressed
//! would be gigabytes of memory and of response. Every read that returns
//! documents charges their decompressed size here (which each compressed body
//! states) before decompressing them.

use crate::document::StoredDoc;
use crate::error::{EngineError, Result};

/// The most bytes of document JSON one response carries: four of the largest
/// documents a request may write (16 MiB).
pub const MAX_RESPONSE_DOCUMENT_BYTES: u64 = 64 << 20;

/// What is left of one response's document bytes.
pub struct ResponseBudget {
    left: u64,
    /// The request field that asks for fewer documents (`page_size`, `ids`).
    fewer: &'static str,
}

impl ResponseBudget {
    /// A full budget; an error names `fewer` as the way to stay within it.
    pub fn new(fewer: &'static str) -> Self {
        ResponseBudget {
            left: MAX_RESPONSE_DOCUMENT_BYTES,
            fewer,
        }
    }

    /// Takes `stored`'s decompressed size from the budget, or fails with
    /// RESOURCE_EXHAUSTED once the response would pass it.
    pub fn charge(&mut self, stored: &StoredDoc) -> Result<()> {
        let size = stored.json_len();
        if size > self.left {
            return Err(EngineError::LimitExceeded(format!(
                "the documents of this response hold more than {} MiB of JSON, the most one \
                 response carries: ask for fewer documents with `{}`",
                MAX_RESPONSE_DOCUMENT_BYTES >> 20,
                self.fewer
            )));
        }
        self.left -= size;
        Ok(())
    }
}
