//! The engine's one error type.

use thiserror::Error;

/// Everything the engine can refuse or fail at. `api::status` maps each variant to
/// exactly one gRPC status code.
#[derive(Debug, Error)]
pub enum EngineError {
    /// A request value is malformed or not allowed. `field` names the request field
    /// (e.g. `collection.fields[1].type`, `document.fields.date`, `page_size`).
    #[error("{message}")]
    InvalidArgument { field: String, message: String },

    /// A query or filter expression does not parse. `position` counts characters
    /// (Unicode code points) from 0.
    #[error("{field}: {message} at position {position}")]
    Syntax {
        field: &'static str,
        position: usize,
        message: String,
    },

    /// The named collection does not exist.
    #[error("collection {0:?} not found")]
    CollectionNotFound(String),

    /// A collection of that name already exists.
    #[error("collection {0:?} already exists")]
    CollectionExists(String),

    /// The named document does not exist in the collection.
    #[error("document {id:?} not found in collection {collection:?}")]
    DocumentNotFound { collection: String, id: String },

    /// A document with that id already exists in the collection.
    #[error("document {id:?} already exists in collection {collection:?}")]
    DocumentExists { collection: String, id: String },

    /// `expected_version` does not match the document's current version.
    #[error("document {id:?} is at version {actual}, not the expected version {expected}")]
    VersionMismatch {
        id: String,
        expected: u64,
        actual: u64,
    },

    /// A page token that the server no longer honours (it outlived the snapshot
    /// or the server restarted).
    #[error("page token expired: {0}")]
    PageTokenExpired(String),

    /// A failure inside the engine that the request did not cause (index I/O, a
    /// bug). The message goes to the log; clients see a generic description.
    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    /// An [`EngineError::InvalidArgument`] for the request field `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        EngineError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<tantivy::TantivyError> for EngineError {
    fn from(err: tantivy::TantivyError) -> Self {
        EngineError::Internal(format!("index: {err}"))
    }
}

/// The engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
