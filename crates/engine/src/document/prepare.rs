//! Checking a document's field values against a schema, and the tantivy
//! document built for indexing.

use serde_json::Value;
use tantivy::TantivyDocument;
use tantivy::schema::Field;

use super::{Fields, MAX_SAFE_INTEGER};
use crate::error::{EngineError, Result};
use crate::names::DocId;
use crate::schema::{CollectionSchema, FieldType};
use crate::timestamp;

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
    for (def, field, raw, written) in schema.iter_with_shadows() {
        let Some(value) = fields.get_mut(def.name.as_str()) else {
            continue;
        };
        let path = || format!("fields.{}", def.name);
        index_value(&mut doc, field, def.ty, value, &path)?;
        if let (Some(raw), Value::String(text)) = (raw, &*value) {
            doc.add_text(raw, text);
        }
        if let Some(written) = written {
            // Checked above: a string or a list of strings.
            match &*value {
                Value::String(text) => doc.add_text(written, text),
                Value::Array(items) => {
                    for text in items.iter().filter_map(Value::as_str) {
                        doc.add_text(written, text);
                    }
                }
                _ => {}
            }
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
