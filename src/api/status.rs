//! Engine errors to gRPC statuses, and the rewriting of tonic's own statuses for
//! bad input into the codes clients expect.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::engine::EngineError;

/// The message of every INTERNAL status trove's own handlers answer (the cause
/// goes to the log). An INTERNAL status with another message comes from tonic's
/// transport, which reports every request it cannot read as INTERNAL.
pub const INTERNAL_MESSAGE: &str = "internal error; see the server log";

/// gRPC's compression spec requires INTERNAL for a message whose compressed
/// flag is set on a call without `grpc-encoding`; tonic's text for it.
const SPEC_INTERNAL: &str = "received message with compressed-flag but no grpc-encoding";

/// The status for an engine error. Every variant is matched, so a new one must
/// choose its code here.
pub fn status_from(err: EngineError) -> Status {
    let message = bounded(err.to_string());
    match err {
        EngineError::InvalidArgument { field, message } => {
            let message = bounded(message);
            Status::with_error_details(
                Code::InvalidArgument,
                message.clone(),
                ErrorDetails::with_bad_request_violation(bounded(field), message),
            )
        }
        EngineError::Syntax {
            field,
            position,
            message: description,
        } => Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request_violation(
                field,
                bounded(format!("{description} at position {position}")),
            ),
        ),
        EngineError::CollectionNotFound(_)
        | EngineError::DocumentNotFound { .. }
        | EngineError::NotFound(_) => Status::not_found(message),
        EngineError::CollectionExists(_)
        | EngineError::DocumentExists { .. }
        | EngineError::AlreadyExists(_) => Status::already_exists(message),
        EngineError::VersionMismatch { .. } | EngineError::Conflict(_) => Status::aborted(message),
        EngineError::PageTokenExpired(_) => {
            // One reason for every token the server can no longer serve, with
            // the field named as for any other bad argument.
            let mut details = ErrorDetails::with_error_info("PAGE_TOKEN_EXPIRED", "trove", []);
            details.add_bad_request_violation("page_token", message.clone());
            Status::with_error_details(Code::InvalidArgument, message.clone(), details)
        }
        EngineError::LimitExceeded(_) => Status::resource_exhausted(message),
        EngineError::StorageFull(cause) => {
            tracing::warn!(%cause, "write refused");
            Status::resource_exhausted(message)
        }
        EngineError::StorageUnavailable(cause) => {
            tracing::error!(%cause, "write failed");
            Status::unavailable(message)
        }
        EngineError::DataDamaged(cause) => {
            tracing::error!(%cause, "damaged data");
            Status::data_loss(message)
        }
        EngineError::Internal(cause) => {
            tracing::error!(%cause, "internal error");
            Status::internal(INTERNAL_MESSAGE)
        }
    }
}

/// The longest message (and detail) a status carries, in bytes. Messages may
/// quote the request, and travel in HTTP/2 headers, percent-encoded: a long
/// quote would pass the client's header size limit, which then sees a
/// protocol error instead of the status.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// `message` cut to [`MAX_MESSAGE_BYTES`] at a character boundary, with `…`.
fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES - '…'.len_utf8();
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// An invalid-argument status naming the request field, for checks made at the
/// wire layer.
pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Status {
    status_from(EngineError::invalid(field, message))
}

/// `status` with the fields its `BadRequest` names placed inside `parent`
/// (`filter` → `searches[2].filter`); any other status as it is.
pub fn within_status(status: Status, parent: &str) -> Status {
    let Some(bad) = status.get_error_details().bad_request().cloned() else {
        return status;
    };
    let mut details = ErrorDetails::new();
    for violation in bad.field_violations {
        details.add_bad_request_violation(
            format!("{parent}.{}", violation.field),
            violation.description,
        );
    }
    Status::with_error_details(status.code(), status.message(), details)
}

/// Rewrites the codes tonic itself gives to bad input: an oversized message is
/// OUT_OF_RANGE there and RESOURCE_EXHAUSTED here; a request that cannot be read
/// (truncated, an unknown compression flag, corrupt compressed data, no message
/// at all, bytes that are not the message) is INTERNAL there and
/// INVALID_ARGUMENT here. tonic gives these no kind of their own, so they are
/// told apart by origin: every INTERNAL status of trove's own handlers carries
/// [`INTERNAL_MESSAGE`], and any other INTERNAL status in a response's headers
/// was made by the transport before the handler ran. Returns `None` for any
/// other status.
pub fn map_transport_status(code: Code, message: &str) -> Option<(Code, String)> {
    match code {
        Code::OutOfRange if message.contains("message length too large") => {
            Some((Code::ResourceExhausted, message.to_owned()))
        }
        Code::Internal if message != INTERNAL_MESSAGE && !message.contains(SPEC_INTERNAL) => {
            Some((
                Code::InvalidArgument,
                format!("request does not decode: {message}"),
            ))
        }
        _ => None,
    }
}

/// Engine results as wire results: `engine_call().or_status()?` in a handler.
/// (The one mapping is [`status_from`]; the engine's error type and tonic's
/// status both live in other crates, so `?` cannot convert by itself.)
pub trait OrStatus<T> {
    fn or_status(self) -> Result<T, Status>;
}

impl<T> OrStatus<T> for Result<T, EngineError> {
    fn or_status(self) -> Result<T, Status> {
        self.map_err(status_from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_code() {
        let check = |err: EngineError, code: Code| assert_eq!(status_from(err).code(), code);
        check(EngineError::invalid("f", "m"), Code::InvalidArgument);
        check(
            EngineError::Syntax {
                field: "query",
                position: 3,
                message: "m".into(),
            },
            Code::InvalidArgument,
        );
        check(EngineError::CollectionNotFound("c".into()), Code::NotFound);
        check(
            EngineError::DocumentNotFound {
                collection: "c".into(),
                id: "d".into(),
            },
            Code::NotFound,
        );
        check(
            EngineError::CollectionExists("c".into()),
            Code::AlreadyExists,
        );
        check(
            EngineError::DocumentExists {
                collection: "c".into(),
                id: "d".into(),
            },
            Code::AlreadyExists,
        );
        check(
            EngineError::VersionMismatch {
                id: "d".into(),
                expected: 1,
                actual: 2,
            },
            Code::Aborted,
        );
        check(
            EngineError::PageTokenExpired("x".into()),
            Code::InvalidArgument,
        );
        check(EngineError::Conflict("x".into()), Code::Aborted);
        check(EngineError::Internal("x".into()), Code::Internal);
        check(
            EngineError::LimitExceeded("x".into()),
            Code::ResourceExhausted,
        );
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        check(EngineError::storage("log", &full), Code::ResourceExhausted);
        let other = std::io::Error::other("bad disk");
        check(EngineError::storage("log", &other), Code::Unavailable);
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let status = status_from(EngineError::invalid("query", "語".repeat(2000)));
        assert!(status.message().len() <= MAX_MESSAGE_BYTES);
        assert!(status.message().ends_with('…'));
        let details = status.get_error_details();
        let description = &details.bad_request().unwrap().field_violations[0].description;
        assert!(description.len() <= MAX_MESSAGE_BYTES);
    }

    #[test]
    fn bad_request_detail_names_the_field() {
        let status = status_from(EngineError::invalid("document.fields.n", "bad"));
        let details = status.get_error_details();
        let bad = details.bad_request().expect("a BadRequest detail");
        assert_eq!(bad.field_violations[0].field, "document.fields.n");
    }

    #[test]
    fn transport_statuses() {
        assert_eq!(
            map_transport_status(
                Code::OutOfRange,
                "Error, decoded message length too large: found 5 bytes"
            )
            .unwrap()
            .0,
            Code::ResourceExhausted
        );
        assert_eq!(
            map_transport_status(Code::Internal, "failed to decode Protobuf message: x")
                .unwrap()
                .0,
            Code::InvalidArgument
        );
        for unreadable in [
            "Unexpected EOF decoding stream.",
            "protocol error: received message with invalid compression flag: 2 (valid flags are 0 and 1), while sending request",
            "Error decompressing: corrupt deflate stream, while sending request",
            "Missing request message.",
        ] {
            assert_eq!(
                map_transport_status(Code::Internal, unreadable).unwrap().0,
                Code::InvalidArgument,
                "{unreadable}"
            );
        }
        assert!(map_transport_status(Code::Internal, INTERNAL_MESSAGE).is_none());
        assert!(
            map_transport_status(
                Code::Internal,
                "protocol error: received message with compressed-flag but no grpc-encoding was specified"
            )
            .is_none()
        );
    }
}
