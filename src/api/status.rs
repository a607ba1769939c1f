//! Engine errors to gRPC statuses, and the rewriting of tonic's own statuses for
//! bad input into the codes clients expect.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::engine::EngineError;

/// The status for an engine error. Every variant is matched, so a new one must
/// choose its code here.
pub fn status_from(err: EngineError) -> Status {
    let message = err.to_string();
    match err {
        EngineError::InvalidArgument { field, message } => Status::with_error_details(
            Code::InvalidArgument,
            message.clone(),
            ErrorDetails::with_bad_request_violation(field, message),
        ),
        EngineError::Syntax {
            field,
            position,
            message: description,
        } => Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request_violation(
                field,
                format!("{description} at position {position}"),
            ),
        ),
        EngineError::CollectionNotFound(_)
        | EngineError::DocumentNotFound { .. }
        | EngineError::NotFound(_) => Status::not_found(message),
        EngineError::CollectionExists(_)
        | EngineError::DocumentExists { .. }
        | EngineError::AlreadyExists(_) => Status::already_exists(message),
        EngineError::VersionMismatch { .. } => Status::aborted(message),
        EngineError::PageTokenExpired(_) => Status::with_error_details(
            Code::InvalidArgument,
            message.clone(),
            ErrorDetails::with_error_info("PAGE_TOKEN_EXPIRED", "trove", []),
        ),
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
            Status::internal("internal error; see the server log")
        }
    }
}

/// An invalid-argument status naming the request field, for checks made at the
/// wire layer.
pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Status {
    status_from(EngineError::invalid(field, message))
}

/// Rewrites the codes tonic itself gives to bad input: an oversized message is
/// OUT_OF_RANGE there and RESOURCE_EXHAUSTED here; a message that does not decode
/// is INTERNAL there and INVALID_ARGUMENT here. Returns `None` for any other status.
pub fn map_transport_status(code: Code, message: &str) -> Option<(Code, String)> {
    match code {
        Code::OutOfRange if message.contains("message length too large") => {
            Some((Code::ResourceExhausted, message.to_owned()))
        }
        Code::Internal if message.contains("failed to decode Protobuf message") => Some((
            Code::InvalidArgument,
            format!("request does not decode: {message}"),
        )),
        _ => None,
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
        check(EngineError::Internal("x".into()), Code::Internal);
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        check(EngineError::storage("log", &full), Code::ResourceExhausted);
        let other = std::io::Error::other("bad disk");
        check(EngineError::storage("log", &other), Code::Unavailable);
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
        assert!(map_transport_status(Code::Internal, "internal error").is_none());
    }
}
