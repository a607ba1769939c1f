//! Integration tests: each test starts the real server on an ephemeral port and
//! drives it through the generated tonic clients.

mod auth;
mod bad_input;
mod collections;
mod crash;
mod documents;
mod durable;
mod harness;
mod hostile;
mod import;
mod inspect;
mod overload;
mod paging;
mod process;
mod query;
mod search;
mod snapshots;
mod tls;
mod wire;
