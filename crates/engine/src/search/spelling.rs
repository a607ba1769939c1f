//! The spelling a facet value or a suggestion shows for a normalized KEYWORD
//! field: its values are indexed normalized (`sony`), and shown as most of the
//! first documents holding the value write it (`Sony`), read from the field's
//! column of values as written.

use std::collections::HashMap;

use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocSet, Searcher, TERMINATED, Term};

use crate::error::{EngineError, Result};
use crate::schema::CollectionSchema;

/// How many documents holding a value are read for its spelling at most.
const SAMPLE: usize = 64;

/// Replaces each normalized value of `field` in `values` by its most frequent
/// spelling among the first [`SAMPLE`] live documents that hold it (ties: the
/// smallest in byte order). A field without a normalizer is left alone, and so
/// is a value no live document holds.
pub(crate) fn spell<'a>(
    searcher: &Searcher,
    schema: &CollectionSchema,
    field: Field,
    values: impl Iterator<Item = &'a mut String>,
) -> Result<()> {
    let Some(written) = schema.written_field(field) else {
        return Ok(());
    };
    let normalizer = schema.normalizer(field);
    let written_name = schema.tantivy().get_field_name(written);
    let mut columns = Vec::with_capacity(searcher.segment_readers().len());
    for segment in searcher.segment_readers() {
        columns.push(
            segment
                .fast_fields()
                .str(written_name)
                .map_err(|e| EngineError::Internal(format!("reading a column: {e}")))?,
        );
    }
    let mut text = String::new();
    for value in values {
        let term = Term::from_field_text(field, value);
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut read = 0;
        'segments: for (segment, column) in searcher.segment_readers().iter().zip(&columns) {
            let Some(column) = column else { continue };
            let inverted = segment.inverted_index(field)?;
            let postings = inverted
                .read_postings(&term, IndexRecordOption::Basic)
                .map_err(|e| EngineError::Internal(format!("reading postings: {e}")))?;
            let Some(mut postings) = postings else {
                continue;
            };
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if !segment.is_deleted(doc) {
                    for ord in column.term_ords(doc) {
                        text.clear();
                        if !column.ord_to_str(ord, &mut text).unwrap_or(false) {
                            continue;
                        }
                        // A spelling seen once is known to be this value's.
                        if let Some(count) = seen.get_mut(&text) {
                            *count += 1;
                        } else if normalizer.apply(&text) == *value {
                            seen.insert(text.clone(), 1);
                        }
                    }
                    read += 1;
                    if read == SAMPLE {
                        break 'segments;
                    }
                }
                doc = postings.advance();
            }
        }
        if let Some((spelling, _)) = seen
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
        {
            *value = spelling;
        }
    }
    Ok(())
}
