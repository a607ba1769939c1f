//! The statuses clients see for what tonic itself answers: bad input rewritten
//! to the codes trove promises, and DEADLINE_EXCEEDED when a client's
//! `grpc-timeout` passes (tonic would answer CANCELLED).

use std::task::{Context, Poll};
use std::time::Duration;

use tonic::{Code, Status};

use super::BoxFuture;
use crate::api::map_transport_status;

/// Rewrites tonic's own statuses for bad input (see [`map_transport_status`]) and
/// answers DEADLINE_EXCEEDED when a client's `grpc-timeout` passes; tonic itself
/// would answer CANCELLED.
#[derive(Clone, Copy, Debug)]
pub struct WireStatusLayer;

impl<S> tower::Layer<S> for WireStatusLayer {
    type Service = WireStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WireStatus { inner }
    }
}

/// The service [`WireStatusLayer`] makes.
#[derive(Clone, Debug)]
pub struct WireStatus<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for WireStatus<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        // Created before tonic's own timer (which wraps this service), so it fires
        // first and the client gets DEADLINE_EXCEEDED rather than CANCELLED.
        let sleep = timeout.map(tokio::time::sleep);
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = match sleep {
                Some(sleep) => tokio::select! {
                    biased;
                    response = response => response?,
                    () = sleep => return Ok(Status::deadline_exceeded("deadline exceeded before the request completed").into_http()),
                },
                None => response.await?,
            };
            Ok(remap(response))
        })
    }
}

fn remap(mut response: http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body> {
    let Some(status) = Status::from_header_map(response.headers()) else {
        return response;
    };
    if status.code() == Code::Ok {
        return response;
    }
    if let Some((code, message)) = map_transport_status(status.code(), status.message()) {
        let headers = response.headers_mut();
        headers.remove("grpc-status");
        headers.remove("grpc-message");
        if let Err(err) = Status::new(code, message).add_header(headers) {
            tracing::warn!(%err, "could not rewrite a status");
        }
    }
    response
}

/// Parses a `grpc-timeout` header value: digits then a unit (H M S m u n).
pub(crate) fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if !value.is_ascii() {
        return None;
    }
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use tower::{Layer, Service, ServiceExt};

    use super::*;

    fn status_of(response: &http::Response<tonic::body::Body>) -> (Code, String) {
        let status = Status::from_header_map(response.headers()).expect("a grpc-status header");
        (status.code(), status.message().to_owned())
    }

    #[tokio::test]
    async fn a_passed_deadline_is_deadline_exceeded() {
        let never = tower::service_fn(|_: http::Request<()>| {
            std::future::pending::<
                Result<http::Response<tonic::body::Body>, std::convert::Infallible>,
            >()
        });
        let mut service = WireStatusLayer.layer(never);
        let request = http::Request::builder()
            .header("grpc-timeout", "10m")
            .body(())
            .unwrap();
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(status_of(&response).0, Code::DeadlineExceeded);
    }

    #[tokio::test]
    async fn transport_statuses_are_rewritten_and_others_kept() {
        for (given, want) in [
            (
                Status::out_of_range(
                    "Error, decoded message length too large: found 9 bytes, the limit is: 4 bytes",
                ),
                Code::ResourceExhausted,
            ),
            (
                Status::internal("failed to decode Protobuf message: buffer underflow"),
                Code::InvalidArgument,
            ),
            (
                Status::internal("internal error; see the server log"),
                Code::Internal,
            ),
            (Status::not_found("x"), Code::NotFound),
        ] {
            let inner = tower::service_fn(move |_: http::Request<()>| {
                let status = Status::new(given.code(), given.message().to_owned());
                async move { Ok::<_, std::convert::Infallible>(status.into_http()) }
            });
            let mut service = WireStatusLayer.layer(inner);
            let response = service
                .ready()
                .await
                .unwrap()
                .call(http::Request::new(()))
                .await
                .unwrap();
            assert_eq!(status_of(&response).0, want);
        }
    }

    #[test]
    fn grpc_timeouts() {
        let check =
            |v: &str, want: Option<Duration>| assert_eq!(parse_grpc_timeout(v), want, "{v:?}");
        check("5S", Some(Duration::from_secs(5)));
        check("100m", Some(Duration::from_millis(100)));
        check("2H", Some(Duration::from_secs(7200)));
        check("1u", Some(Duration::from_micros(1)));
        check("", None);
        check("S", None);
        check("5x", None);
        check("123456789S", None);
        check("é", None);
    }
}
