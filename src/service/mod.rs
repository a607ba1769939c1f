//! Handlers: one type per gRPC service. Each handler validates, converts, calls
//! the engine and converts back; none holds domain logic.

mod collection;
mod document;
mod names;
mod search;
mod snapshot;

pub use collection::CollectionHandler;
pub use document::DocumentHandler;
pub use search::SearchHandler;
pub use snapshot::SnapshotHandler;

use names::{collection_name, doc_id};
