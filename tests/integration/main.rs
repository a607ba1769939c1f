//! Integration tests: each test starts the real server on an ephemeral port and
//! drives it through the generated tonic clients.

mod collections;
mod documents;
mod harness;
mod import;
mod inspect;
mod paging;
mod query;
mod search;
mod wire;
