//! Names from request fields, checked.

use tonic::Status;

use crate::api::OrStatus as _;
use crate::engine::{CollectionName, DocId};

/// A collection name from a request field.
pub(super) fn collection_name(name: &str, field: &str) -> Result<CollectionName, Status> {
    CollectionName::parse(name, field).or_status()
}

/// A document id from a request field.
pub(super) fn doc_id(id: &str, field: &str) -> Result<DocId, Status> {
    DocId::parse(id, field).or_status()
}
