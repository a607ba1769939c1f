//! `google.protobuf.Struct` ↔ JSON values.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};
use serde_json::{Map, Number};
use tonic::Status;

use super::status::invalid;
use crate::engine::{Fields, MAX_SAFE_INTEGER};

/// How deep a document's values may nest.
const MAX_DEPTH: usize = 64;

/// A Struct to JSON fields. Whole numbers within ±2^53 become JSON integers;
/// NaN and infinities are refused.
pub fn struct_to_fields(s: Struct, path: &str) -> Result<Fields, Status> {
    let mut out = Map::with_capacity(s.fields.len());
    for (key, value) in s.fields {
        let v = value_to_json(value, &format!("{path}.{key}"), 0)?;
        out.insert(key, v);
    }
    Ok(out)
}

fn value_to_json(value: Value, path: &str, depth: usize) -> Result<serde_json::Value, Status> {
    if depth > MAX_DEPTH {
        return Err(invalid(
            path,
            format!("value nests deeper than {MAX_DEPTH} levels"),
        ));
    }
    Ok(match value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(b),
        Some(Kind::NumberValue(n)) => {
            if !n.is_finite() {
                return Err(invalid(path, format!("{n} is not a finite number")));
            }
            if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER as f64 {
                serde_json::Value::Number(Number::from(n as i64))
            } else {
                Number::from_f64(n)
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| invalid(path, format!("{n} is not a finite number")))?
            }
        }
        Some(Kind::StringValue(s)) => serde_json::Value::String(s),
        Some(Kind::ListValue(list)) => serde_json::Value::Array(
            list.values
                .into_iter()
                .enumerate()
                .map(|(i, v)| value_to_json(v, &format!("{path}[{i}]"), depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Some(Kind::StructValue(s)) => {
            let mut out = Map::with_capacity(s.fields.len());
            for (key, v) in s.fields {
                let v = value_to_json(v, &format!("{path}.{key}"), depth + 1)?;
                out.insert(key, v);
            }
            serde_json::Value::Object(out)
        }
    })
}

/// JSON fields to a Struct.
pub fn fields_to_struct(fields: Fields) -> Struct {
    Struct {
        fields: fields
            .into_iter()
            .map(|(k, v)| (k, json_to_value(v)))
            .collect(),
    }
}

fn json_to_value(value: serde_json::Value) -> Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(fields_to_struct(map)),
    };
    Value { kind: Some(kind) }
}
