//! The wire: generated protobuf types, conversions between them and the engine's
//! domain types, and the one mapping from engine errors to gRPC statuses.

mod convert;
pub mod methods;
pub mod paging;
mod status;
mod value;

pub use convert::*;
pub use status::{OrStatus, map_transport_status, status_from};
pub use value::fields_to_struct;

/// The largest request message DocumentService accepts (a document, a message of
/// an import).
pub const MAX_DECODING_MESSAGE_BYTES: usize = 16 << 20;
/// The largest request message the other services accept: a search, a schema. A
/// search of up to 1 MiB is always accepted.
pub const MAX_QUERY_MESSAGE_BYTES: usize = 4 << 20;
/// The largest response message sent (a page of up to 1000 documents).
pub const MAX_ENCODING_MESSAGE_BYTES: usize = 256 << 20;

/// Generated types and service stubs of package `trove.v1`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("trove.v1");
}

/// The encoded descriptor set of `proto/` with its imports, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("trove_descriptor");
