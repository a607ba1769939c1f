//! RESOURCE_EXHAUSTED answers that say when to retry: a `google.rpc.RetryInfo`
//! with the delay after which the same request may succeed.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Retrying sooner than this only adds load to a server that refused it.
pub const SHED_RETRY_DELAY: Duration = Duration::from_millis(100);
/// Memory and unread responses free up in about this time.
pub const SLOW_RETRY_DELAY: Duration = Duration::from_secs(1);

/// RESOURCE_EXHAUSTED with `message` and a RetryInfo of `delay`.
pub fn exhausted(message: String, delay: Duration) -> Status {
    Status::with_error_details(
        Code::ResourceExhausted,
        message,
        ErrorDetails::with_retry_info(Some(delay)),
    )
}
