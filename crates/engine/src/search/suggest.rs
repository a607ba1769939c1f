//! Suggest: completions of a prefix from the words of a collection, most frequent
//! first, read from the term dictionaries of the words as written.

use std::collections::HashMap;

use crate::collection::Collection;
use crate::error::{EngineError, Result};
use crate::schema::FieldType;

/// The default number of suggestions.
pub const DEFAULT_LIMIT: usize = 10;
/// The most suggestions one request may ask for.
pub const MAX_LIMIT: usize = 100;
/// How many index words are read for one prefix at most; the most frequent of them win.
const SCAN_LIMIT: usize = 10_000;

/// Completes the last word of `prefix` from `field` (empty: every TEXT field).
/// Returns `(text, document frequency)`, most frequent first, ties by text.
pub fn suggest(
    collection: &Collection,
    prefix: &str,
    field: &str,
    limit: i32,
) -> Result<Vec<(String, u64)>> {
    let limit = match limit {
        0 => DEFAULT_LIMIT,
        n if n < 0 => {
            return Err(EngineError::invalid(
                "limit",
                format!("limit must not be negative, got {n}"),
            ));
        }
        n => (n as usize).min(MAX_LIMIT),
    };
    let schema = collection.schema();
    let fields: Vec<_> = if field.is_empty() {
        schema
            .iter()
            .filter(|(def, _)| def.ty == FieldType::Text)
            .map(|(d, f)| (d.ty, f))
            .collect()
    } else {
        let (def, f) = schema
            .field(field)
            .ok_or_else(|| EngineError::invalid("field", format!("unknown field {field:?}")))?;
        if !matches!(def.ty, FieldType::Text | FieldType::Keyword) {
            return Err(EngineError::invalid(
                "field",
                format!(
                    "field {field:?} is {}: suggestions come from TEXT and KEYWORD fields",
                    def.ty.name()
                ),
            ));
        }
        vec![(def.ty, f)]
    };
    // The words before the last are kept as typed; the last is completed.
    let (head, last) = match prefix.trim_end().rsplit_once(char::is_whitespace) {
        Some((head, last)) if !prefix.ends_with(char::is_whitespace) => {
            (format!("{head} "), last.to_owned())
        }
        _ if prefix.ends_with(char::is_whitespace) || prefix.is_empty() => return Ok(Vec::new()),
        _ => (String::new(), prefix.to_owned()),
    };
    let view = collection.view();
    let mut counts: HashMap<String, u64> = HashMap::new();
    for (ty, field) in fields {
        let (source, normalized) = if ty == FieldType::Keyword {
            (field, last.clone())
        } else {
            let raw = schema.raw_field(field);
            let mut analyzer = collection.index().tokenizer_for_field(raw)?;
            let mut stream = analyzer.token_stream(&last);
            let Some(token) = stream.next().map(|t| t.text.clone()) else {
                continue;
            };
            (raw, token)
        };
        let mut scanned = 0;
        for segment in view.searcher.segment_readers() {
            let inverted = segment.inverted_index(source)?;
            let mut stream = inverted
                .terms()
                .range()
                .ge(normalized.as_bytes())
                .into_stream()
                .map_err(|e| EngineError::Internal(format!("reading the term dictionary: {e}")))?;
            while stream.advance() && scanned < SCAN_LIMIT {
                if !stream.key().starts_with(normalized.as_bytes()) {
                    break;
                }
                scanned += 1;
                if let Ok(word) = std::str::from_utf8(stream.key()) {
                    *counts.entry(word.to_owned()).or_default() +=
                        u64::from(stream.value().doc_freq);
                }
            }
        }
    }
    let mut suggestions: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(w, c)| (format!("{head}{w}"), c))
        .collect();
    suggestions.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    suggestions.truncate(limit);
    Ok(suggestions)
}
