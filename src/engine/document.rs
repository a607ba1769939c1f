//! Documents: checking field values against a schema, the compact stored form,
//! and the tantivy document built for indexing.

use std::cell::RefCell;

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
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Compresses `data` into an allocation of exactly its compressed size.
///
/// zstd needs room for the worst case (a little more than the input); a body
/// shrunk from such a buffer would keep its block, because allocators shrink in
/// place: measured, that nearly doubled the memory of the stored documents. So
/// each thread compresses into one reused buffer and the body is copied out.
fn compress(data: &[u8]) -> std::io::Result<Box<[u8]>> {
    COMPRESSOR.with(|cell| {
        let (compressor, buffer) = &mut *cell.borrow_mut();
        let compressor = match compressor {
            Some(compressor) => compressor,
            empty => empty.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
        };
        buffer.clear();
        buffer.reserve(zstd::zstd_safe::compress_bound(data.len()));
        compressor.compress_to_buffer(data, buffer)?;
        Ok(Box::from(buffer.as_slice()))
    })
}

/// `body` as an exact allocation (see `compress`).
fn exact(body: Vec<u8>) -> Box<[u8]> {
    if body.capacity() == body.len() {
        body.into_boxed_slice()
    } else {
        Box::from(body.as_slice())
    }
}

fn decompress(body: &[u8]) -> std::io::Result<Vec<u8>> {
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
        let decompressor = match &mut *cell {
            Some(decompressor) => decompressor,
            empty => empty.insert(zstd::bulk::Decompressor::new()?),
        };
        decompressor.decompress(body, size)
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
    body: Box<[u8]>,
}

impl StoredDoc {
    /// Compresses `fields` into a stored document.
    pub fn new(fields: &Fields, version: u64, create_time: i64, update_time: i64) -> Result<Self> {
        let json = serde_json::to_vec(fields)
            .map_err(|e| EngineError::Internal(format!("encoding a document: {e}")))?;
        let body = compress(&json)
            .map_err(|e| EngineError::Internal(format!("compressing a document: {e}")))?;
        Ok(StoredDoc {
            version,
            create_time,
            update_time,
            body,
        })
    }

    /// A stored document from its parts (as a log record or checkpoint has them).
    pub fn from_parts(version: u64, create_time: i64, update_time: i64, body: Vec<u8>) -> Self {
        StoredDoc {
            version,
            create_time,
            update_time,
            body: exact(body),
        }
    }

    /// The fields as zstd-compressed JSON.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Decompresses the fields.
    pub fn fields(&self) -> Result<Fields> {
        let json = decompress(&self.body)
            .map_err(|e| EngineError::Internal(format!("decompressing a document: {e}")))?;
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
        let path = || format!("document.fields.{}", def.name);
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
                path().trim_start_matches("document.fields."),
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
                            path().trim_start_matches("document.fields.")
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
                        path().trim_start_matches("document.fields.")
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
    use crate::engine::schema::FieldSpec;

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
        check(json!({"title": 1}), Err("document.fields.title"));
        check(json!({"tags": ["a", 1]}), Err("document.fields.tags"));
        check(json!({"n": 1.5}), Err("document.fields.n"));
        check(json!({"n": 9007199254740993i64}), Err("document.fields.n"));
        check(json!({"n": 1e300}), Err("document.fields.n"));
        check(json!({"n": "1"}), Err("document.fields.n"));
        check(json!({"x": "1.5"}), Err("document.fields.x"));
        check(json!({"b": "true"}), Err("document.fields.b"));
        check(json!({"date": "yesterday"}), Err("document.fields.date"));
        check(json!({"date": "2021-02-30"}), Err("document.fields.date"));
        check(json!({"title": ["a"]}), Err("document.fields.title"));
    }

    #[test]
    fn stored_doc_round_trips() {
        let fields = json!({"title": "hello", "n": 1})
            .as_object()
            .unwrap()
            .clone();
        let stored = StoredDoc::new(&fields, 2, 10, 20).unwrap();
        assert_eq!(stored.fields().unwrap(), fields);
        assert!(stored.memory_bytes() > 0);
    }
}
