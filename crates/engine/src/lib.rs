//! The domain: collections, schemas, documents, the tantivy index, and the query,
//! filter and order languages. Knows nothing about tonic, prost or the wire types.

mod analysis;
mod budget;
mod collection;
mod directory;
mod document;
mod engine;
mod error;
mod facet;
mod filter;
#[doc(hidden)]
pub mod fuzz;
mod highlight;
mod ids;
mod merging;
mod names;
mod order;
mod page_token;
pub mod persist;
mod pins;
mod query;
pub mod requests;
#[cfg(test)]
mod robustness;
mod scheduling;
mod schema;
mod search;
mod search_pool;
mod stem;
mod suggest;
pub mod timestamp;

pub use analysis::{Analyzer, Token, analyze};
pub use budget::{MAX_RESPONSE_DOCUMENT_BYTES, ResponseBudget};
pub use collection::{
    Collection, DICTIONARY_BYTES, DocMap, ImportResult, Patch, Stats, TRAIN_AFTER_DOCUMENTS, Update,
};
pub use document::{Dictionary, Document, Fields, MAX_SAFE_INTEGER, StoredDoc};
pub use error::{EngineError, Result};
pub use facet::{FacetCounts, FacetRequest};
pub use highlight::{FieldHighlight, MAX_ANALYZED_CHARS as MAX_HIGHLIGHT_CHARS};
pub use names::{CollectionName, DocId, FieldName};
pub use query::{Operator, QueryOptions, Syntax};
pub use scheduling::shorten_time_slice;
pub use schema::{CollectionSchema, FieldDef, FieldSpec, FieldType};
pub use search::{
    DEFAULT_FRAGMENT_SIZE, DEFAULT_PAGE_SIZE, Explanation, Highlight, Hit, MAX_FRAGMENT_SIZE,
    MAX_FRAGMENTS, MAX_PAGE_SIZE, SearchRequest, SearchResults,
};

pub use engine::{DEFAULT_MAX_COLLECTIONS, Engine};
