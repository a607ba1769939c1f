//! Documents as requests carry them and as the engine keeps them: JSON fields,
//! compressed with zstd (and a collection's dictionary, once trained).

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::body::Body;
use super::cache::DocumentCache;
use super::dictionary::Dictionary;
use super::{Fields, ZSTD_LEVEL};
use crate::error::{EngineError, Result};
use crate::names::DocId;

/// The serial the next stored document gets.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

fn next_serial() -> u64 {
    NEXT_SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// The largest decompressed document accepted (a stored body names its size).
const MAX_DECOMPRESSED_BYTES: u64 = 256 << 20;

thread_local! {
    // A zstd context costs more to create than a small document costs to
    // (de)compress: each thread keeps one of each.
    static COMPRESSOR: RefCell<(Option<zstd::bulk::Compressor<'static>>, Vec<u8>)> = const { RefCell::new((None, Vec::new())) };
    static DECOMPRESSOR: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> = const { RefCell::new(None) };
}

/// Compresses `data` into an allocation of exactly its compressed size.
///
/// zstd needs room for the worst case (a little more than the input); a body
/// shrunk from such a buffer would keep its block, because allocators shrink in
/// place: measured, that nearly doubled the memory of the stored documents. So
/// each thread compresses into one reused buffer and the body is copied out.
fn compress(data: &[u8], dictionary: Option<&Dictionary>) -> std::io::Result<Body> {
    COMPRESSOR.with(|cell| {
        let (compressor, buffer) = &mut *cell.borrow_mut();
        let compressor = match compressor {
            Some(compressor) => compressor,
            empty => empty.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
        };
        buffer.clear();
        buffer.reserve(zstd::zstd_safe::compress_bound(data.len()));
        match dictionary {
            None => {
                compressor.compress_to_buffer(data, buffer)?;
            }
            Some(dictionary) => {
                compressor
                    .context_mut()
                    .compress_using_cdict(buffer, data, dictionary.encoder.as_cdict())
                    .map_err(zstd_error)?;
            }
        }
        Ok(Body::copy_of(buffer))
    })
}

fn zstd_error(code: usize) -> std::io::Error {
    std::io::Error::other(zstd::zstd_safe::get_error_name(code))
}

fn decompress(body: &[u8], dictionary: Option<&Dictionary>) -> std::io::Result<Vec<u8>> {
    let size = match zstd::zstd_safe::get_frame_content_size(body) {
        Ok(Some(size)) if size <= MAX_DECOMPRESSED_BYTES => size as usize,
        _ => {
            return Err(std::io::Error::other(
                "the frame does not state a usable size",
            ));
        }
    };
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let context = match &mut *cell {
            Some(context) => context,
            empty => empty.insert(
                zstd::zstd_safe::DCtx::try_create()
                    .ok_or_else(|| std::io::Error::other("cannot create a zstd context"))?,
            ),
        };
        let mut out = Vec::with_capacity(size);
        match dictionary {
            None => context.decompress(&mut out, body),
            Some(dictionary) => {
                context.decompress_using_ddict(&mut out, body, dictionary.decoder.as_ddict())
            }
        }
        .map_err(zstd_error)?;
        Ok(out)
    })
}

/// A document as the engine hands it out.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub id: DocId,
    /// Shared with the document cache when it was read from there.
    pub fields: Arc<Fields>,
    /// 1 on create, +1 on every write.
    pub version: u64,
    /// Microseconds since the Unix epoch.
    pub create_time: i64,
    /// Microseconds since the Unix epoch.
    pub update_time: i64,
}

/// The one in-memory copy of a document: its metadata and its fields as
/// zstd-compressed JSON.
#[derive(Debug)]
pub struct StoredDoc {
    pub version: u64,
    pub create_time: i64,
    pub update_time: i64,
    body: Body,
    /// The dictionary `body` was compressed with, if any.
    dictionary: Option<Arc<Dictionary>>,
    /// This stored document's own number, shared with no other in the
    /// process: the document cache's key.
    serial: u64,
}

impl StoredDoc {
    /// Compresses `fields` into a stored document, with `dictionary` if given.
    pub fn new(
        fields: &Fields,
        version: u64,
        create_time: i64,
        update_time: i64,
        dictionary: Option<&Arc<Dictionary>>,
    ) -> Result<Self> {
        let json = serde_json::to_vec(fields)
            .map_err(|e| EngineError::Internal(format!("encoding a document: {e}")))?;
        let body = compress(&json, dictionary.map(|d| &**d))
            .map_err(|e| EngineError::Internal(format!("compressing a document: {e}")))?;
        Ok(StoredDoc {
            version,
            create_time,
            update_time,
            body,
            dictionary: dictionary.cloned(),
            serial: next_serial(),
        })
    }

    /// A stored document from its parts (as a log record or checkpoint has them).
    /// A body compressed with a dictionary names it; `dictionaries` finds it by
    /// id, and the body is refused if it cannot.
    pub fn from_parts(
        version: u64,
        create_time: i64,
        update_time: i64,
        body: Vec<u8>,
        dictionaries: impl Fn(u32) -> Option<Arc<Dictionary>>,
    ) -> Result<Self> {
        let dictionary = match zstd::zstd_safe::get_dict_id_from_frame(&body) {
            None => None,
            Some(id) => Some(dictionaries(id.get()).ok_or_else(|| {
                EngineError::DataDamaged(format!(
                    "a document is compressed with dictionary {id}, which its collection lacks"
                ))
            })?),
        };
        Ok(StoredDoc {
            version,
            create_time,
            update_time,
            body: Body::copy_of(&body),
            dictionary,
            serial: next_serial(),
        })
    }

    /// The same document compressed without a dictionary, for a record read
    /// back where the dictionary may be gone (a remembered write's outcome).
    pub fn without_dictionary(&self) -> Result<StoredDoc> {
        if self.dictionary.is_none() {
            return Ok(StoredDoc {
                version: self.version,
                create_time: self.create_time,
                update_time: self.update_time,
                body: self.body.clone(),
                dictionary: None,
                serial: next_serial(),
            });
        }
        StoredDoc::new(
            &self.fields()?,
            self.version,
            self.create_time,
            self.update_time,
            None,
        )
    }

    /// The fields as JSON text.
    pub fn json(&self) -> Result<Vec<u8>> {
        decompress(&self.body, self.dictionary.as_deref())
            .map_err(|e| EngineError::Internal(format!("decompressing a document: {e}")))
    }

    /// The size of the JSON `body` decompresses to, as its zstd frame states it
    /// (every body trove writes states it; one that does not counts as too
    /// large to read).
    pub fn json_len(&self) -> u64 {
        match zstd::zstd_safe::get_frame_content_size(&self.body) {
            Ok(Some(size)) => size,
            _ => u64::MAX,
        }
    }

    /// The fields as zstd-compressed JSON.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Decompresses the fields.
    pub fn fields(&self) -> Result<Fields> {
        let json = self.json()?;
        serde_json::from_slice(&json)
            .map_err(|e| EngineError::Internal(format!("decoding a document: {e}")))
    }

    /// The number no other stored document in the process has.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The whole document, decompressed.
    pub fn to_document(&self, id: &DocId) -> Result<Document> {
        Ok(self.with_fields(id, Arc::new(self.fields()?)))
    }

    /// The document with `fields`, decoded from this one.
    pub(crate) fn with_fields(&self, id: &DocId, fields: Arc<Fields>) -> Document {
        Document {
            id: id.clone(),
            fields,
            version: self.version,
            create_time: self.create_time,
            update_time: self.update_time,
        }
    }

    /// The whole document, from `cache` if it holds it.
    pub fn to_document_cached(&self, id: &DocId, cache: &DocumentCache) -> Result<Document> {
        Ok(self.with_fields(id, cache.fields(self)?))
    }

    /// The document's id and metadata, with no fields: nothing is decompressed.
    pub fn to_document_without_fields(&self, id: &DocId) -> Document {
        Document {
            id: id.clone(),
            fields: Arc::default(),
            version: self.version,
            create_time: self.create_time,
            update_time: self.update_time,
        }
    }

    /// Bytes this document holds in memory (the compressed body and the header).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.body.len()
    }
}
