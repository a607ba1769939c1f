//! The domain: collections, schemas, documents, the tantivy index, and the query,
//! filter and order languages. Knows nothing about tonic, prost or the wire types.

mod budget;
mod collection;
mod document;
mod engine;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod index;
mod lang;
mod names;
pub mod persist;
pub mod requests;
#[cfg(test)]
mod robustness;
mod scheduling;
mod schema;
mod search;
mod text;
pub mod timestamp;

pub use budget::{MAX_RESPONSE_DOCUMENT_BYTES, ResponseBudget};
pub use collection::{
    Collection, DICTIONARY_BYTES, DocMap, ImportResult, Patch, Stats, TRAIN_AFTER_DOCUMENTS, Update,
};
pub use document::{
    DEFAULT_DOCUMENT_CACHE_BYTES, Dictionary, Document, DocumentCache, Fields, MAX_SAFE_INTEGER,
    StoredDoc,
};
pub use error::{EngineError, Result};
pub use lang::query::{Operator, QueryOptions, Syntax};
pub use names::{CollectionName, DocId, FieldName};
pub use scheduling::shorten_time_slice;
pub use schema::{CollectionSchema, FieldDef, FieldSpec, FieldType};
pub use search::facet::{FacetCounts, FacetRequest};
pub use search::highlight::{FieldHighlight, MAX_ANALYZED_CHARS as MAX_HIGHLIGHT_CHARS};
pub use search::{
    DEFAULT_FRAGMENT_SIZE, DEFAULT_PAGE_SIZE, Explanation, Highlight, Hit, MAX_BATCH_SEARCHES,
    MAX_FRAGMENT_SIZE, MAX_FRAGMENTS, MAX_PAGE_SIZE, SearchRequest, SearchResults,
};
pub use text::analysis::{Analyzer, Normalizer, Token, analyze};
pub use text::stem::forget_stems;

pub use engine::{DEFAULT_MAX_COLLECTIONS, Engine};
