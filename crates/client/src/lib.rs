//! trove's gRPC API for Rust: the wire types and the tonic clients (and the
//! server stubs the trove server implements) of package `trove.v1`, generated
//! from the workspace's `proto/`. A service that calls trove depends on this
//! crate alone: tonic's client side and prost, no server, no search engine.
//!
//! ```no_run
//! use trove_client::pb;
//! use trove_client::pb::search_service_client::SearchServiceClient;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let mut search = SearchServiceClient::connect("http://127.0.0.1:50051").await?;
//! let request = pb::SearchRequest {
//!     collection: "news".into(),
//!     query: "embassy".into(),
//!     ..Default::default()
//! };
//! let found = search.search(request).await?.into_inner();
//! println!("{} matches", found.total_size);
//! # Ok(())
//! # }
//! ```

/// Generated types, clients and server stubs of package `trove.v1`.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("trove.v1");
}

/// The encoded descriptor set of `proto/` with its imports, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("trove_descriptor");
