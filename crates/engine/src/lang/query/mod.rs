//! The free-text query language: two syntaxes parsed to one syntax tree
//! ([`parse`]), then built into a tantivy query against a collection's schema and
//! index ([`build`]).
//!
//! Parsed by hand because tantivy's query parser reports no error positions, has no
//! simple syntax that never fails, and expands prefix and fuzzy terms without a
//! limit a service can report.

mod build;
mod lex;
mod parse;
mod stats;
mod synonyms;

pub use build::{Builder, MarkKind, QueryOptions, text_query};

pub use parse::{Operator, Syntax, parse};
pub use stats::BlendedStatistics;
pub use synonyms::Synonyms;

/// The longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;
/// The most words, phrases and other leaves a query may have.
pub const MAX_CLAUSES: usize = 1024;
/// The deepest nesting of parentheses accepted.
pub const MAX_DEPTH: usize = 32;
/// The most index terms one prefix or fuzzy term may expand to.
pub const MAX_EXPANSIONS: usize = 1024;
/// The longest fuzzy term, in characters (typo tolerance skips longer words).
pub const MAX_FUZZY_CHARS: usize = 32;
