//! `google.protobuf.Struct` as the server's own messages hold it (`build.rs`
//! maps the type here): decoded, as requests bring it, or already encoded, as
//! a response carries a document's fields that were encoded once and kept
//! beside the document cache's entry. Both are the same bytes on the wire.

use bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType};
use prost::{DecodeError, Message};
use prost_types::Struct;

/// A `google.protobuf.Struct`, decoded or as its encoded bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum WireStruct {
    Decoded(Struct),
    /// The encoding of a `Struct` (its fields, without a tag or length).
    Encoded(Bytes),
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
    /// The decoded `Struct` (encoded bytes are decoded; the server decodes
    /// only what a client sent, which is never held encoded).
    pub fn into_struct(self) -> Result<Struct, DecodeError> {
        match self {
            WireStruct::Decoded(s) => Ok(s),
            WireStruct::Encoded(bytes) => Struct::decode(bytes),
        }
    }

    /// `s` encoded once, to send as it is.
    pub fn encode(s: &Struct) -> Bytes {
        Bytes::from(s.encode_to_vec())
    }
}

impl Message for WireStruct {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        match self {
            WireStruct::Decoded(s) => s.encode_raw(buf),
            WireStruct::Encoded(bytes) => buf.put_slice(bytes),
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
            WireStruct::Encoded(bytes) => {
                let mut s = Struct::decode(bytes.clone())?;
                s.merge_field(tag, wire_type, buf, ctx)?;
                *self = WireStruct::Decoded(s);
                Ok(())
            }
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            WireStruct::Decoded(s) => s.encoded_len(),
            WireStruct::Encoded(bytes) => bytes.len(),
        }
    }

    fn clear(&mut self) {
        *self = WireStruct::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::value::Kind;

    fn sample() -> Struct {
        let text = |s: &str| prost_types::Value {
            kind: Some(Kind::StringValue(s.into())),
        };
        Struct {
            fields: [
                ("title".to_string(), text("Rust")),
                ("body".into(), text("é")),
            ]
            .into_iter()
            .collect(),
        }
    }

    /// A document's fields encoded once go out as the same bytes as decoded
    /// ones, and read back as the same `Struct`.
    #[test]
    fn encoded_and_decoded_fields_are_the_same_bytes() {
        let document = |fields: WireStruct| crate::api::served::Document {
            id: "a".into(),
            fields: Some(fields),
            version: 3,
            ..Default::default()
        };
        let decoded = document(WireStruct::Decoded(sample())).encode_to_vec();
        let encoded = document(WireStruct::Encoded(WireStruct::encode(&sample()))).encode_to_vec();
        assert_eq!(decoded, encoded);
        let back = crate::api::served::Document::decode(encoded.as_slice()).unwrap();
        assert_eq!(back.fields.unwrap().into_struct().unwrap(), sample());
        // What a client with prost's own `Struct` reads.
        let client = trove_client::pb::Document::decode(decoded.as_slice()).unwrap();
        assert_eq!(client.fields.unwrap(), sample());
    }
}
