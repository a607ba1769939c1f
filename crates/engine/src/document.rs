//! Documents: checking field values against a schema, the compact stored form,
//! and the tantivy document built for indexing.

use std::cell::RefCell;
#[cfg(feature = "body-heap")]
use std::ptr::NonNull;
use std::sync::Arc;
#[cfg(feature = "body-heap")]
use std::sync::LazyLock;

use serde_json::Value;
use tantivy::TantivyDocument;
use tantivy::schema::Field;

use super::error::{EngineError, Result};
use super::names::DocId;
use super::schema::{CollectionSchema, FieldType};
use super::timestamp;

/// A document's fields: a JSON object.
pub type Fields = serde_json::Map<String, Value>;

/// The largest whole number an INTEGER field accepts, in magnitude (2^53).
pub const MAX_SAFE_INTEGER: i64 = 1 << 53;

/// zstd level for stored documents: fast to write, about 2–3× smaller than the JSON.
const ZSTD_LEVEL: i32 = 3;

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
    pub fields: Fields,
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

    /// The whole document, decompressed.
    pub fn to_document(&self, id: &DocId) -> Result<Document> {
        Ok(Document {
            id: id.clone(),
            fields: self.fields()?,
            version: self.version,
            create_time: self.create_time,
            update_time: self.update_time,
        })
    }

    /// Bytes this document holds in memory (the compressed body and the header).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.body.len()
    }
}

/// A compressed body, in a heap of its own when the `body-heap` feature is on.
///
/// Bodies are the one allocation per document that lives as long as the
/// document; the buffers of the request that made it (its text, the JSON, the
/// index's copy) are freed at once. Allocated side by side, each freed buffer
/// left a hole in a page a body kept, and pages whose thread had exited were
/// not reused; a mimalloc heap of their own packs bodies together (see
/// docs/decisions.md). Without the feature a body is a boxed slice.
#[cfg(feature = "body-heap")]
pub(crate) struct Body {
    ptr: NonNull<u8>,
    len: usize,
}

#[cfg(not(feature = "body-heap"))]
#[derive(Clone)]
pub(crate) struct Body(Box<[u8]>);

#[cfg(not(feature = "body-heap"))]
impl Body {
    fn copy_of(bytes: &[u8]) -> Body {
        Body(bytes.into())
    }
}

#[cfg(not(feature = "body-heap"))]
impl std::ops::Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

// SAFETY: a body is an immutable byte buffer, and mimalloc allocates in and
// frees from a heap on any thread.
#[cfg(feature = "body-heap")]
unsafe impl Send for Body {}
#[cfg(feature = "body-heap")]
unsafe impl Sync for Body {}

/// The heap holding every body (a pointer, to be shared between threads).
#[cfg(feature = "body-heap")]
struct BodyHeap(NonNull<libmimalloc_sys::mi_heap_t>);

// SAFETY: mimalloc's first-class heaps allocate from any thread (mimalloc 3).
#[cfg(feature = "body-heap")]
unsafe impl Send for BodyHeap {}
#[cfg(feature = "body-heap")]
unsafe impl Sync for BodyHeap {}

#[cfg(feature = "body-heap")]
static BODY_HEAP: LazyLock<Option<BodyHeap>> = LazyLock::new(|| {
    // SAFETY: creating a heap has no preconditions; it lives for the process.
    NonNull::new(unsafe { libmimalloc_sys::mi_heap_new() }).map(BodyHeap)
});

#[cfg(feature = "body-heap")]
impl Body {
    fn copy_of(bytes: &[u8]) -> Body {
        let len = bytes.len();
        // SAFETY: the heap is live; a null return is handled below.
        let raw = match &*BODY_HEAP {
            Some(heap) => unsafe { libmimalloc_sys::mi_heap_malloc(heap.0.as_ptr(), len.max(1)) },
            None => unsafe { libmimalloc_sys::mi_malloc(len.max(1)) },
        };
        let Some(ptr) = NonNull::new(raw.cast::<u8>()) else {
            let layout = std::alloc::Layout::from_size_align(len.max(1), 1);
            std::alloc::handle_alloc_error(layout.unwrap_or(std::alloc::Layout::new::<u8>()))
        };
        // SAFETY: `ptr` is a fresh block of at least `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.as_ptr(), len) };
        Body { ptr, len }
    }
}

#[cfg(feature = "body-heap")]
impl std::ops::Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` holds `len` initialised bytes until the body is dropped.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(feature = "body-heap")]
impl Clone for Body {
    fn clone(&self) -> Body {
        Body::copy_of(self)
    }
}

#[cfg(feature = "body-heap")]
impl Drop for Body {
    fn drop(&mut self) {
        // SAFETY: the block came from mimalloc and is freed once.
        unsafe { libmimalloc_sys::mi_free(self.ptr.as_ptr().cast()) }
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Body({} bytes)", self.len())
    }
}

/// A zstd dictionary trained on a collection's first documents. News-like
/// JSON documents of a few KB compress about a quarter smaller with one than
/// alone (see BENCHMARKS.md), since each document then needn't spell out the
/// field names and common words it shares with the others.
pub struct Dictionary {
    id: u32,
    bytes: Vec<u8>,
    encoder: zstd::dict::EncoderDictionary<'static>,
    decoder: zstd::dict::DecoderDictionary<'static>,
}

impl Dictionary {
    /// Trains a dictionary of at most `max_bytes` on `samples` (JSON texts),
    /// giving it `id` (zstd leaves ids below 32768 and from 2^31 reserved).
    pub fn train(samples: &[Vec<u8>], max_bytes: usize, id: u32) -> Result<Dictionary> {
        let mut bytes = zstd::dict::from_samples(samples, max_bytes)
            .map_err(|e| EngineError::Internal(format!("training a dictionary: {e}")))?;
        // A zstd dictionary starts with its magic number and its id.
        if bytes.len() < 8 || bytes[..4] != 0xEC30_A437u32.to_le_bytes() {
            return Err(EngineError::Internal(
                "training a dictionary: no dictionary header".into(),
            ));
        }
        bytes[4..8].copy_from_slice(&id.to_le_bytes());
        Dictionary::from_bytes(bytes)
    }

    /// A dictionary as [`Dictionary::bytes`] gave it.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Dictionary> {
        let id = zstd::zstd_safe::get_dict_id_from_dict(&bytes)
            .ok_or_else(|| EngineError::DataDamaged("a dictionary without an id".into()))?
            .get();
        Ok(Dictionary {
            id,
            encoder: zstd::dict::EncoderDictionary::copy(&bytes, ZSTD_LEVEL),
            decoder: zstd::dict::DecoderDictionary::copy(&bytes),
            bytes,
        })
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Bytes this dictionary holds in memory: itself and zstd's prepared forms.
    pub fn memory_bytes(&self) -> usize {
        self.bytes.len() + self.encoder.as_cdict().sizeof() + self.decoder.as_ddict().sizeof()
    }
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dictionary({}, {} bytes)", self.id, self.bytes.len())
    }
}

/// Checks every declared field of `fields` against `schema`, normalises values
/// in place (timestamps to RFC 3339 UTC) and builds the tantivy document.
/// Undeclared fields pass through unchecked and unindexed.
pub fn prepare(
    schema: &CollectionSchema,
    id: &DocId,
    fields: &mut Fields,
) -> Result<TantivyDocument> {
    let mut doc = TantivyDocument::default();
    doc.add_text(schema.id_field(), id.as_str());
    for (def, field, raw) in schema.iter_with_raw() {
        let Some(value) = fields.get_mut(def.name.as_str()) else {
            continue;
        };
        let path = || format!("fields.{}", def.name);
        index_value(&mut doc, field, def.ty, value, &path)?;
        if let (Some(raw), Value::String(text)) = (raw, &*value) {
            doc.add_text(raw, text);
        }
    }
    Ok(doc)
}

fn index_value(
    doc: &mut TantivyDocument,
    field: Field,
    ty: FieldType,
    value: &mut Value,
    path: &dyn Fn() -> String,
) -> Result<()> {
    let wrong = |value: &Value| {
        EngineError::invalid(
            path(),
            format!(
                "field {} is {} but the value is {}",
                path().trim_start_matches("fields."),
                describe_type(ty),
                describe_value(value)
            ),
        )
    };
    match (ty, &mut *value) {
        (_, Value::Null) => {}
        (FieldType::Text | FieldType::Keyword, Value::String(s)) => doc.add_text(field, s),
        (FieldType::Keyword, Value::Array(items)) => {
            for item in items.iter() {
                match item {
                    Value::String(s) => doc.add_text(field, s),
                    other => return Err(wrong(other)),
                }
            }
        }
        (FieldType::Integer, Value::Number(n)) => {
            let int = n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .filter(|i| {
                    i.abs() <= MAX_SAFE_INTEGER
                        && n.as_f64()
                            .is_some_and(|f| f.abs() <= MAX_SAFE_INTEGER as f64)
                })
                .ok_or_else(|| {
                    EngineError::invalid(
                        path(),
                        format!(
                            "field {} is INTEGER: {n} is not a whole number within ±2^53",
                            path().trim_start_matches("fields.")
                        ),
                    )
                })?;
            *value = Value::from(int);
            doc.add_i64(field, int);
        }
        (FieldType::Float, Value::Number(n)) => {
            let f = n
                .as_f64()
                .filter(|f| f.is_finite())
                .ok_or_else(|| wrong(&Value::Number(n.clone())))?;
            doc.add_f64(field, f);
        }
        (FieldType::Boolean, Value::Bool(b)) => doc.add_bool(field, *b),
        (FieldType::Timestamp, Value::String(s)) => {
            let micros = timestamp::parse(s).map_err(|message| {
                EngineError::invalid(
                    path(),
                    format!(
                        "field {} is TIMESTAMP: {message}",
                        path().trim_start_matches("fields.")
                    ),
                )
            })?;
            *s = timestamp::format(micros);
            doc.add_date(field, timestamp::to_tantivy(micros));
        }
        (_, other) => return Err(wrong(other)),
    }
    Ok(())
}

fn describe_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Text => "TEXT (a string)",
        FieldType::Keyword => "KEYWORD (a string or a list of strings)",
        FieldType::Integer => "INTEGER (a whole number)",
        FieldType::Float => "FLOAT (a number)",
        FieldType::Boolean => "BOOLEAN (true or false)",
        FieldType::Timestamp => "TIMESTAMP (an RFC 3339 string or YYYY-MM-DD)",
    }
}

/// A short description of a JSON value for error messages.
pub(crate) fn describe_value(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 40 => {
            format!("the string {:?}…", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::FieldSpec;

    fn schema() -> CollectionSchema {
        let spec = |name: &str, ty| FieldSpec {
            name: name.into(),
            ty: Some(ty),
            analyzer: String::new(),
            filterable: true,
            sortable: false,
            facetable: false,
            boost: 0.0,
        };
        CollectionSchema::new(&[
            spec("title", FieldType::Text),
            spec("tags", FieldType::Keyword),
            spec("n", FieldType::Integer),
            spec("x", FieldType::Float),
            spec("b", FieldType::Boolean),
            spec("date", FieldType::Timestamp),
        ])
        .unwrap()
    }

    fn check(fields: serde_json::Value, expected: Result<serde_json::Value, &str>) {
        let mut fields = fields.as_object().unwrap().clone();
        let id = DocId::parse("d", "id").unwrap();
        match (prepare(&schema(), &id, &mut fields), expected) {
            (Ok(_), Ok(want)) => assert_eq!(Value::Object(fields), want),
            (Err(EngineError::InvalidArgument { field, .. }), Err(want)) => assert_eq!(field, want),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn values_are_checked_and_normalised() {
        check(
            json!({"title": "t", "tags": ["a", "b"], "n": 3.0, "x": 1.5, "b": true, "extra": {"any": [1]}}),
            Ok(
                json!({"title": "t", "tags": ["a", "b"], "n": 3, "x": 1.5, "b": true, "extra": {"any": [1]}}),
            ),
        );
        check(json!({"tags": "one"}), Ok(json!({"tags": "one"})));
        check(
            json!({"date": "2021-08-07"}),
            Ok(json!({"date": "2021-08-07T00:00:00Z"})),
        );
        check(
            json!({"date": "2021-08-07T10:00:00.1234567+02:00"}),
            Ok(json!({"date": "2021-08-07T08:00:00.123456Z"})),
        );
        check(json!({"n": null}), Ok(json!({"n": null})));
        check(
            json!({"n": 9007199254740992i64}),
            Ok(json!({"n": 9007199254740992i64})),
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        check(json!({"title": 1}), Err("fields.title"));
        check(json!({"tags": ["a", 1]}), Err("fields.tags"));
        check(json!({"n": 1.5}), Err("fields.n"));
        check(json!({"n": 9007199254740993i64}), Err("fields.n"));
        check(json!({"n": 1e300}), Err("fields.n"));
        check(json!({"n": "1"}), Err("fields.n"));
        check(json!({"x": "1.5"}), Err("fields.x"));
        check(json!({"b": "true"}), Err("fields.b"));
        check(json!({"date": "yesterday"}), Err("fields.date"));
        check(json!({"date": "2021-02-30"}), Err("fields.date"));
        check(json!({"title": ["a"]}), Err("fields.title"));
    }

    #[test]
    fn stored_doc_round_trips() {
        let fields = json!({"title": "hello", "n": 1})
            .as_object()
            .unwrap()
            .clone();
        let stored = StoredDoc::new(&fields, 2, 10, 20, None).unwrap();
        assert_eq!(stored.fields().unwrap(), fields);
        assert!(stored.memory_bytes() > 0);
    }

    #[test]
    fn a_dictionary_compresses_and_is_required_to_read_back() {
        let fields = |i: usize| {
            json!({"title": format!("story {i} about the harbour"), "body": format!("the harbour board met on day {i} and the ferries ran late again")})
                .as_object()
                .unwrap()
                .clone()
        };
        let samples: Vec<Vec<u8>> = (0..1000)
            .map(|i| serde_json::to_vec(&fields(i)).unwrap())
            .collect();
        let dictionary = Arc::new(Dictionary::train(&samples, 16 << 10, 40_000).unwrap());
        assert_eq!(dictionary.id(), 40_000);
        assert!(dictionary.memory_bytes() > dictionary.bytes().len());
        let again = Dictionary::from_bytes(dictionary.bytes().to_vec()).unwrap();
        assert_eq!(again.id(), 40_000);

        let plain = StoredDoc::new(&fields(7), 1, 0, 0, None).unwrap();
        let packed = StoredDoc::new(&fields(7), 1, 0, 0, Some(&dictionary)).unwrap();
        assert!(packed.body().len() < plain.body().len());
        assert_eq!(packed.fields().unwrap(), fields(7));

        // Read back from its parts: the body names the dictionary it needs.
        let found = |id: u32| (id == 40_000).then(|| dictionary.clone());
        let back = StoredDoc::from_parts(1, 0, 0, packed.body().to_vec(), found).unwrap();
        assert_eq!(back.fields().unwrap(), fields(7));
        let missing = StoredDoc::from_parts(1, 0, 0, packed.body().to_vec(), |_| None);
        assert!(matches!(missing, Err(EngineError::DataDamaged(_))));
        let no_need = StoredDoc::from_parts(1, 0, 0, plain.body().to_vec(), |_| None).unwrap();
        assert_eq!(no_need.fields().unwrap(), fields(7));

        let unpacked = packed.without_dictionary().unwrap();
        let alone = StoredDoc::from_parts(1, 0, 0, unpacked.body().to_vec(), |_| None).unwrap();
        assert_eq!(alone.fields().unwrap(), fields(7));
    }

    #[test]
    fn a_body_holds_its_bytes() {
        let bytes: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
        let body = Body::copy_of(&bytes);
        let copy = body.clone();
        drop(body);
        assert_eq!(&*copy, bytes.as_slice());
        assert!(Body::copy_of(&[]).is_empty());
    }
}
