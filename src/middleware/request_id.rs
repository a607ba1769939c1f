//! `x-request-id`: the client's, or a generated UUID, set on the request for
//! the layers inside (the trace span names it) and echoed in the response.
//!
//! One layer with an unboxed future in place of tower-http's pair
//! (`SetRequestId` and `PropagateRequestId`), which also store the id in the
//! request's extensions (a map allocated per request) that nothing here reads.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::HeaderValue;
use http::header::HeaderName;
use pin_project_lite::pin_project;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Sets and echoes `x-request-id`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestIdLayer;

impl<S> tower::Layer<S> for RequestIdLayer {
    type Service = RequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestId { inner }
    }
}

/// The service [`RequestIdLayer`] makes.
#[derive(Clone, Debug)]
pub struct RequestId<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for RequestId<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Echo<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let id = match request.headers().get(&X_REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = generate();
                request
                    .headers_mut()
                    .insert(X_REQUEST_ID.clone(), id.clone());
                id
            }
        };
        Echo {
            inner: self.inner.call(request),
            id: Some(id),
        }
    }
}

pin_project! {
    /// The response future of [`RequestId`]: adds the id to the response's
    /// headers (or to a trailers-only error's) unless the service set one.
    pub struct Echo<F> {
        #[pin]
        inner: F,
        // Taken when the response is ready.
        id: Option<HeaderValue>,
    }
}

impl<F, R, E> Future for Echo<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(mut id) = this.id.take() {
            // Never indexed by HPACK: a new value on every response would
            // otherwise take a place in the connection's header table and push
            // out the entries every response repeats (`content-type`,
            // `grpc-status`), which then travel in full again.
            id.set_sensitive(true);
            response
                .headers_mut()
                .entry(X_REQUEST_ID.clone())
                .or_insert(id);
        }
        Poll::Ready(Ok(response))
    }
}

/// A new UUID (version 4) as a header value.
fn generate() -> HeaderValue {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("unnamed"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    async fn echo(request: http::Request<()>) -> (Option<HeaderValue>, Option<HeaderValue>) {
        let service = tower::service_fn(|request: http::Request<()>| async move {
            let seen = request.headers().get(&X_REQUEST_ID).cloned();
            Ok::<_, std::convert::Infallible>(http::Response::new(seen))
        });
        let mut service = RequestIdLayer.layer(service);
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        let echoed = response.headers().get(&X_REQUEST_ID).cloned();
        (response.into_body(), echoed)
    }

    #[tokio::test]
    async fn keeps_the_clients_id_and_makes_one_otherwise() {
        let mut request = http::Request::new(());
        request
            .headers_mut()
            .insert(&X_REQUEST_ID, HeaderValue::from_static("client-7"));
        let (seen, echoed) = echo(request).await;
        assert_eq!(seen.unwrap(), "client-7");
        assert_eq!(echoed.unwrap(), "client-7");

        let (seen, echoed) = echo(http::Request::new(())).await;
        let seen = seen.unwrap();
        assert_eq!(echoed.as_ref(), Some(&seen));
        assert!(
            uuid::Uuid::parse_str(seen.to_str().unwrap()).is_ok(),
            "{seen:?}"
        );
        let (other, _) = echo(http::Request::new(())).await;
        assert_ne!(other.unwrap(), seen);
    }
}
