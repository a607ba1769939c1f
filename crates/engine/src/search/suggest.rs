//! Suggest: completions of a prefix from the words of a collection, most frequent
//! first, read from the term dictionaries of the words as written.

use std::collections::HashMap;

use tantivy::Searcher;
use tantivy::schema::Field;

use crate::collection::Collection;
use crate::error::{EngineError, Result};
use crate::schema::FieldType;
use crate::search::spelling;

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
    let view = collection.view();
    // A KEYWORD field completes whole values: the prefix is their beginning.
    if let [(FieldType::Keyword, field)] = fields[..] {
        if prefix.is_empty() {
            return Ok(Vec::new());
        }
        let normalized = schema.normalizer(field).apply(prefix);
        let mut suggestions = complete(&view.searcher, field, &normalized)?;
        rank(&mut suggestions, limit);
        spelling::spell(
            &view.searcher,
            schema,
            field,
            suggestions.iter_mut().map(|(w, _)| w),
        )?;
        return Ok(suggestions);
    }
    // The words before the last are kept as typed; the last is completed.
    let (head, last) = match prefix.trim_end().rsplit_once(char::is_whitespace) {
        Some((head, last)) if !prefix.ends_with(char::is_whitespace) => {
            (format!("{head} "), last.to_owned())
        }
        _ if prefix.ends_with(char::is_whitespace) || prefix.is_empty() => return Ok(Vec::new()),
        _ => (String::new(), prefix.to_owned()),
    };
    let mut counts: HashMap<String, u64> = HashMap::new();
    for (_, field) in fields {
        let raw = schema.raw_field(field);
        let mut analyzer = collection.index().tokenizer_for_field(raw)?;
        let mut stream = analyzer.token_stream(&last);
        let Some(token) = stream.next().map(|t| t.text.clone()) else {
            continue;
        };
        for (word, count) in complete(&view.searcher, raw, &token)? {
            *counts.entry(word).or_default() += count;
        }
    }
    let mut suggestions: Vec<(String, u64)> = counts
        .into_iter()
        .map(|(w, c)| (format!("{head}{w}"), c))
        .collect();
    rank(&mut suggestions, limit);
    Ok(suggestions)
}

/// The words of `field` that start with `prefix`, with their document
/// frequencies summed over the segments; at most [`SCAN_LIMIT`] read.
fn complete(searcher: &Searcher, field: Field, prefix: &str) -> Result<Vec<(String, u64)>> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut scanned = 0;
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(field)?;
        let mut stream = inverted
            .terms()
            .range()
            .ge(prefix.as_bytes())
            .into_stream()
            .map_err(|e| EngineError::Internal(format!("reading the term dictionary: {e}")))?;
        while stream.advance() && scanned < SCAN_LIMIT {
            if !stream.key().starts_with(prefix.as_bytes()) {
                break;
            }
            scanned += 1;
            if let Ok(word) = std::str::from_utf8(stream.key()) {
                *counts.entry(word.to_owned()).or_default() += u64::from(stream.value().doc_freq);
            }
        }
    }
    Ok(counts.into_iter().collect())
}

/// Most frequent first, ties by text; the first `limit` kept.
fn rank(suggestions: &mut Vec<(String, u64)>, limit: usize) {
    suggestions.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    suggestions.truncate(limit);
}
