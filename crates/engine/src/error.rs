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

    /// Something else the request names does not exist (a snapshot).
    #[error("{0}")]
    NotFound(String),

    /// Something else the request names exists already (a snapshot).
    #[error("{0}")]
    AlreadyExists(String),

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

    /// The write was decided against a state of its target that the log no
    /// longer holds (another server wrote it meanwhile): nothing was applied,
    /// and a retry decides again.
    #[error("{0}")]
    Conflict(String),

    /// A page token that the server no longer honours (it outlived the snapshot
    /// or the server restarted).
    #[error("page token expired: {0}")]
    PageTokenExpired(String),

    /// A configured limit of the server is reached (the number of collections,
    /// the bytes of one response): the request was not applied.
    #[error("{0}")]
    LimitExceeded(String),

    /// The data directory's file system is full: the write was not applied.
    #[error("storage full: {0}")]
    StorageFull(String),

    /// Storage failed otherwise (an I/O error): the write was not acknowledged.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),

    /// The data directory holds something this server cannot read: a damaged
    /// file (named, with the offset) or an unknown format version. Start-up stops.
    #[error("{0}")]
    DataDamaged(String),

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

impl EngineError {
    /// This error with its field named inside `parent`: the engine names a
    /// location in the value it was given (`fields[2].name` of a schema),
    /// the caller says where that value came from (`collection`).
    pub fn within(self, parent: &str) -> Self {
        match self {
            EngineError::InvalidArgument { field, message } => EngineError::InvalidArgument {
                field: if field.is_empty() {
                    parent.to_owned()
                } else {
                    format!("{parent}.{field}")
                },
                message,
            },
            other => other,
        }
    }
}

impl From<tantivy::TantivyError> for EngineError {
    fn from(err: tantivy::TantivyError) -> Self {
        EngineError::Internal(format!("index: {err}"))
    }
}

impl EngineError {
    /// The error a failed write to the data directory reports: a full file
    /// system is [`EngineError::StorageFull`], anything else
    /// [`EngineError::StorageUnavailable`].
    pub fn storage(context: &str, err: &std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::StorageFull {
            EngineError::StorageFull(format!("{context}: {err}"))
        } else {
            EngineError::StorageUnavailable(format!("{context}: {err}"))
        }
    }
}

/// `text` quoted for an error message, cut after 40 characters: messages
/// travel in headers, and a quote of a whole request hides the reason.
pub fn quote(text: &str) -> String {
    const MAX_CHARS: usize = 40;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// The engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
