//! `google.protobuf.Struct` as the server's own messages hold it (`build.rs`
//! maps the type here): decoded, as requests bring it, or a document's JSON
//! fields, encoded straight from the JSON when the response is written. The
//! second skips building a `Struct` (a copy of every string and a map) for
//! each document a response carries; both are the same message on the wire.
//! Hand-written because prost has no message type backed by other data.

use std::sync::Arc;

use bytes::{Buf, BufMut};
use prost::encoding::{DecodeContext, WireType, encode_key, encode_varint, encoded_len_varint};
use prost::{DecodeError, Message};
use prost_types::Struct;
use serde_json::Value;

use crate::engine::Fields;

/// A `google.protobuf.Struct`, decoded or as JSON fields to encode.
#[derive(Clone, Debug, PartialEq)]
pub enum WireStruct {
    Decoded(Struct),
    /// Encoded as the `Struct` the JSON object makes: numbers as doubles,
    /// `null` as `NullValue`, arrays as `ListValue`. `len` is that encoding's
    /// length, counted once: prost asks for it at every level of nesting.
    Json {
        fields: Arc<Fields>,
        len: usize,
    },
}

impl Default for WireStruct {
    fn default() -> Self {
        WireStruct::Decoded(Struct::default())
    }
}

impl From<Struct> for WireStruct {
    fn from(s: Struct) -> Self {
        WireStruct::Decoded(s)
    }
}

impl WireStruct {
    /// JSON fields to encode as a `Struct`.
    pub fn json(fields: Arc<Fields>) -> Self {
        let len = object_len(&fields);
        WireStruct::Json { fields, len }
    }

    /// The decoded `Struct` (JSON fields are encoded and decoded back; the
    /// server decodes only what a client sent, which is never JSON).
    pub fn into_struct(self) -> Result<Struct, DecodeError> {
        match self {
            WireStruct::Decoded(s) => Ok(s),
            json => Struct::decode(json.encode_to_vec().as_slice()),
        }
    }
}

impl Message for WireStruct {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        match self {
            WireStruct::Decoded(s) => s.encode_raw(buf),
            WireStruct::Json { fields, .. } => encode_object(fields, buf),
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match self {
            WireStruct::Decoded(s) => s.merge_field(tag, wire_type, buf, ctx),
            WireStruct::Json { .. } => {
                let mut s = Struct::decode(self.encode_to_vec().as_slice())?;
                s.merge_field(tag, wire_type, buf, ctx)?;
                *self = WireStruct::Decoded(s);
                Ok(())
            }
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            WireStruct::Decoded(s) => s.encoded_len(),
            WireStruct::Json { len, .. } => *len,
        }
    }

    fn clear(&mut self) {
        *self = WireStruct::default();
    }
}

// Field numbers of google/protobuf/struct.proto.
/// `Struct.fields` (a map: each entry a message of `key = 1`, `value = 2`).
const STRUCT_FIELDS: u32 = 1;
const ENTRY_KEY: u32 = 1;
const ENTRY_VALUE: u32 = 2;
const NULL_VALUE: u32 = 1;
const NUMBER_VALUE: u32 = 2;
const STRING_VALUE: u32 = 3;
const BOOL_VALUE: u32 = 4;
const STRUCT_VALUE: u32 = 5;
const LIST_VALUE: u32 = 6;
/// `ListValue.values`.
const LIST_VALUES: u32 = 1;

/// The length of a length-delimited field of `len` bytes with a one-byte key
/// (every field number here is below 16).
fn delimited_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

fn encode_delimited_header(tag: u32, len: usize, buf: &mut impl BufMut) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

/// A map entry's length: its key (left out when empty, as prost does) and its
/// value (a `Value` message, always present).
fn entry_len(key: &str, value: &Value) -> usize {
    let key_len = if key.is_empty() {
        0
    } else {
        delimited_len(key.len())
    };
    key_len + delimited_len(value_len(value))
}

fn object_len(fields: &Fields) -> usize {
    fields
        .iter()
        .map(|(key, value)| delimited_len(entry_len(key, value)))
        .sum()
}

fn encode_object(fields: &Fields, buf: &mut impl BufMut) {
    for (key, value) in fields {
        encode_delimited_header(STRUCT_FIELDS, entry_len(key, value), buf);
        if !key.is_empty() {
            encode_delimited_header(ENTRY_KEY, key.len(), buf);
            buf.put_slice(key.as_bytes());
        }
        encode_delimited_header(ENTRY_VALUE, value_len(value), buf);
        encode_value(value, buf);
    }
}

/// A `Value` message's length: its one field of the `kind` oneof, which is
/// written even when it holds its type's default.
fn value_len(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 2,
        Value::Number(_) => 9,
        Value::String(s) => delimited_len(s.len()),
        Value::Array(items) => delimited_len(list_len(items)),
        Value::Object(map) => delimited_len(object_len(map)),
    }
}

fn list_len(items: &[Value]) -> usize {
    items.iter().map(|v| delimited_len(value_len(v))).sum()
}

fn encode_value(value: &Value, buf: &mut impl BufMut) {
    match value {
        Value::Null => {
            encode_key(NULL_VALUE, WireType::Varint, buf);
            encode_varint(0, buf);
        }
        Value::Bool(b) => {
            encode_key(BOOL_VALUE, WireType::Varint, buf);
            encode_varint(u64::from(*b), buf);
        }
        Value::Number(n) => {
            encode_key(NUMBER_VALUE, WireType::SixtyFourBit, buf);
            buf.put_f64_le(n.as_f64().unwrap_or(0.0));
        }
        Value::String(s) => {
            encode_delimited_header(STRING_VALUE, s.len(), buf);
            buf.put_slice(s.as_bytes());
        }
        Value::Array(items) => {
            encode_delimited_header(LIST_VALUE, list_len(items), buf);
            for item in items {
                encode_delimited_header(LIST_VALUES, value_len(item), buf);
                encode_value(item, buf);
            }
        }
        Value::Object(map) => {
            encode_delimited_header(STRUCT_VALUE, object_len(map), buf);
            encode_object(map, buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: serde_json::Value) -> Fields {
        value.as_object().unwrap().clone()
    }

    /// JSON fields encoded directly are the bytes prost writes for the
    /// `Struct` the server built from them before, and read back as it.
    #[test]
    fn json_fields_encode_as_the_struct_they_make() {
        let long = "x".repeat(300);
        let samples = [
            json!({}),
            json!({"title": "Rust", "body": "é ✓ 𝄞", "": "empty key", "empty": ""}),
            json!({"n": 3, "price": 39.5, "zero": 0, "neg": -1.25e300, "big": 9007199254740993u64}),
            json!({"live": true, "dead": false, "nothing": null}),
            json!({"tags": ["rust", "", null, 1, false, [], {}], "none": []}),
            json!({"nested": {"a": {"b": [{"c": long.clone()}]}, "": {}}, "long": long}),
        ];
        for sample in samples {
            let object = fields(sample.clone());
            let built = crate::api::fields_to_struct(object.clone());
            let json = WireStruct::json(Arc::new(object));
            assert_eq!(json.encoded_len(), built.encoded_len(), "{sample}");
            assert_eq!(json.encode_to_vec(), built.encode_to_vec(), "{sample}");
            // Inside a document, as a client with prost's own types reads it.
            let document = crate::api::served::Document {
                id: "a".into(),
                fields: Some(json),
                version: 3,
                ..Default::default()
            };
            let client =
                trove_client::pb::Document::decode(document.encode_to_vec().as_slice()).unwrap();
            assert_eq!(client.fields.unwrap(), built, "{sample}");
            assert_eq!(client.version, 3);
        }
    }
}
