//! The writes that cross the port, in the engine's own types. A log encodes
//! them as it likes (`trove-storage` has on-disk types of its own, versioned);
//! the engine applies them the same way whether it just appended them or
//! reads them back.

use std::sync::Arc;

use crate::document::{Dictionary, StoredDoc};
use crate::names::{CollectionName, DocId};
use crate::requests::RequestTag;
use crate::schema::FieldSpec;

/// A collection's definition.
#[derive(Clone, Debug)]
pub struct CollectionDef {
    pub name: CollectionName,
    /// Unique per incarnation: a collection deleted and created again under
    /// the same name gets a new one, so a replayed write never lands in the
    /// wrong incarnation.
    pub uid: u64,
    /// Microseconds since the epoch.
    pub create_time: i64,
    pub fields: Vec<FieldSpec>,
    pub synonyms: Vec<String>,
}

/// A write. Collections are named by uid (see [`CollectionDef::uid`]).
#[derive(Clone, Debug)]
pub enum LogOp {
    CreateCollection {
        definition: CollectionDef,
        request: Option<RequestTag>,
    },
    DeleteCollection {
        name: CollectionName,
        uid: u64,
        request: Option<RequestTag>,
    },
    /// Sets a document: created, replaced or patched, as the write left it.
    Put {
        uid: u64,
        id: DocId,
        doc: Arc<StoredDoc>,
        request: Option<RequestTag>,
    },
    Delete {
        uid: u64,
        id: DocId,
        request: Option<RequestTag>,
    },
    /// The collection's documents from here on are compressed with this
    /// dictionary.
    Dictionary {
        uid: u64,
        dictionary: Arc<Dictionary>,
    },
    /// A collection restored from a snapshot: its dictionary and documents
    /// follow, then [`LogOp::Restored`] naming it. A replay adds it only at
    /// that record, so a restore cut short leaves no partial collection.
    Restoring { definition: CollectionDef },
    /// The restore of these collections is complete: one record for all the
    /// collections of one restore, which therefore all come back or none.
    Restored { uids: Vec<u64> },
}

impl LogOp {
    /// The request id the write carries, if any.
    pub fn request(&self) -> Option<&RequestTag> {
        match self {
            LogOp::CreateCollection { request, .. }
            | LogOp::DeleteCollection { request, .. }
            | LogOp::Put { request, .. }
            | LogOp::Delete { request, .. } => request.as_ref(),
            LogOp::Dictionary { .. } | LogOp::Restoring { .. } | LogOp::Restored { .. } => None,
        }
    }
}
