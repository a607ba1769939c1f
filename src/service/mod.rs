//! Handlers: one type per gRPC service. Each handler validates, converts, calls
//! the engine and converts back; none holds domain logic.

use crate::api::OrStatus as _;

mod collection;
mod document;
mod search;
mod snapshot;

pub use collection::CollectionHandler;
pub use document::DocumentHandler;
pub use search::SearchHandler;
pub use snapshot::SnapshotHandler;

use crate::engine::{CollectionName, DocId};
use tonic::Status;

/// A collection name from a request field.
fn collection_name(name: &str, field: &str) -> Result<CollectionName, Status> {
    CollectionName::parse(name, field).or_status()
}

/// A document id from a request field.
fn doc_id(id: &str, field: &str) -> Result<DocId, Status> {
    DocId::parse(id, field).or_status()
}
