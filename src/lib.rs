//! trove: a document store and full-text search service that speaks gRPC.
//!
//! The layers, from the wire inwards (`service → api → engine`):
//! - [`server`] builds the tonic server: services, health, reflection, layers.
//! - [`middleware`] holds the tower layers: API keys, shedding and timeouts,
//!   metrics, the rewriting of tonic's own statuses.
//! - [`service`] holds the handlers, one per gRPC service, each thin.
//! - [`api`] is the wire: generated types, conversions, the one error mapping.
//! - [`engine`] is the domain: collections, documents, the tantivy index, the
//!   query, filter and order languages. It knows nothing about tonic or prost.
//! - [`seeds`] loads the sample articles; [`config`] is the command line;
//!   [`import`] is `trove import`, a gRPC client for bulk loads.

pub mod api;
pub mod config;
pub use trove_engine as engine;
pub use trove_storage as storage;
pub mod import;
pub mod middleware;
pub mod seeds;
pub mod server;
pub mod service;
