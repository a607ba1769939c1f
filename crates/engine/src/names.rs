//! Validated names: collection names, field names and document ids.
//!
//! Each is a newtype with a private field, so a value of the type is always valid.

use std::fmt;

use crate::error::{EngineError, Result};

/// The longest document id, in bytes.
pub const MAX_ID_BYTES: usize = 512;

/// A collection name: `[a-z][a-z0-9_-]{0,62}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CollectionName(String);

impl CollectionName {
    /// Checks `name`; `field` names the request field for the error.
    pub fn parse(name: &str, field: &str) -> Result<Self> {
        let mut chars = name.chars();
        let valid = matches!(chars.next(), Some('a'..='z'))
            && name.len() <= 63
            && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'));
        if valid {
            Ok(CollectionName(name.to_owned()))
        } else if name.is_empty() {
            Err(EngineError::invalid(field, "a collection name is required"))
        } else {
            Err(EngineError::invalid(
                field,
                format!("invalid collection name {name:?}: expected [a-z][a-z0-9_-]{{0,62}}"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CollectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A declared field name: `[A-Za-z_][A-Za-z0-9_]{0,127}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldName(String);

impl FieldName {
    /// Checks `name`; `field` names the request field for the error.
    pub fn parse(name: &str, field: &str) -> Result<Self> {
        let mut chars = name.chars();
        let valid = matches!(chars.next(), Some('A'..='Z' | 'a'..='z' | '_'))
            && name.len() <= 128
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(EngineError::invalid(
                field,
                format!("invalid field name {name:?}: expected [A-Za-z_][A-Za-z0-9_]{{0,127}}"),
            ));
        }
        if name.starts_with('_') {
            return Err(EngineError::invalid(
                field,
                format!("field name {name:?} is reserved: names starting with '_' are internal"),
            ));
        }
        Ok(FieldName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A document id: 1 to 512 bytes of UTF-8 without control characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocId(String);

impl DocId {
    /// Checks `id`; `field` names the request field for the error.
    pub fn parse(id: &str, field: &str) -> Result<Self> {
        if id.is_empty() {
            return Err(EngineError::invalid(field, "a document id is required"));
        }
        if id.len() > MAX_ID_BYTES {
            return Err(EngineError::invalid(
                field,
                format!(
                    "document id is {} bytes long; the limit is {MAX_ID_BYTES}",
                    id.len()
                ),
            ));
        }
        if let Some(pos) = id.chars().position(char::is_control) {
            return Err(EngineError::invalid(
                field,
                format!("document id contains a control character at position {pos}"),
            ));
        }
        Ok(DocId(id.to_owned()))
    }

    /// A fresh server-generated id (a random UUID).
    pub fn generate() -> Self {
        DocId(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names() {
        let check = |name: &str, ok: bool| {
            assert_eq!(CollectionName::parse(name, "name").is_ok(), ok, "{name:?}");
        };
        check("news", true);
        check("a", true);
        check("a-b_c9", true);
        check(&format!("a{}", "b".repeat(62)), true);
        check(&format!("a{}", "b".repeat(63)), false);
        check("", false);
        check("News", false);
        check("9news", false);
        check("-news", false);
        check("new s", false);
        check("névs", false);
    }

    #[test]
    fn field_names() {
        let check = |name: &str, ok: bool| {
            assert_eq!(FieldName::parse(name, "name").is_ok(), ok, "{name:?}");
        };
        check("title", true);
        check("Title_2", true);
        check(&format!("a{}", "b".repeat(127)), true);
        check(&format!("a{}", "b".repeat(128)), false);
        check("_id", false);
        check("", false);
        check("2x", false);
        check("a-b", false);
        check("a.b", false);
    }

    #[test]
    fn doc_ids() {
        let check = |id: &str, ok: bool| {
            assert_eq!(DocId::parse(id, "id").is_ok(), ok, "{id:?}");
        };
        check("a", true);
        check("with space/and:punct", true);
        check("ünïcödé ✓", true);
        check(&"x".repeat(512), true);
        check(&"x".repeat(513), false);
        check("", false);
        check("tab\there", false);
        check("nul\0", false);
        check("del\u{7f}", false);
    }
}
