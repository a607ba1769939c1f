//! The tower layers every request passes, outermost first: the request id,
//! tracing (only when DEBUG events can be recorded), metrics (only when they are
//! served), shedding (the in-progress bound, the memory limit, receive and send
//! timeouts), the wire status rewriting, the compression policy, and API keys.
//! Each reads what it needs of a method from the one method table (`api::methods`).

pub mod auth;
pub mod compression;
pub mod metrics;
pub mod request_id;
mod retry;
pub mod shed;
mod wire_status;

use std::future::Future;
use std::pin::Pin;

pub(crate) use wire_status::parse_grpc_timeout;
pub use wire_status::{WireStatus, WireStatusLayer};

/// The future of the layers' services.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
