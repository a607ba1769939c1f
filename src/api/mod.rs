//! The wire: generated protobuf types, conversions between them and the engine's
//! domain types, and the one mapping from engine errors to gRPC statuses.

pub mod codec;
mod convert;
mod limits;
pub mod methods;
pub mod paging;
mod status;
mod value;
pub mod wire;

pub use convert::*;
pub use limits::{MAX_DECODING_MESSAGE_BYTES, MAX_ENCODING_MESSAGE_BYTES, MAX_QUERY_MESSAGE_BYTES};
pub use status::{OrStatus, map_transport_status, status_from, within_status};
pub use value::fields_to_struct;

/// Generated types, clients and service stubs of package `trove.v1`, and the
/// descriptor set for reflection: from `trove-client`, which a calling service
/// depends on alone.
pub use trove_client::{FILE_DESCRIPTOR_SET, pb};

/// The server's own generated stubs and types of package `trove.v1` (see
/// `build.rs`): the same messages as [`pb`], with `google.protobuf.Struct` as
/// [`wire::WireStruct`].
#[allow(clippy::all, missing_docs)]
pub mod served {
    tonic::include_proto!("trove.v1");
}
