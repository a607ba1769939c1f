//! Prometheus metrics, served on their own HTTP listener (`--metrics-listen`).
//!
//! Recorded through the `metrics` facade: without `--metrics-listen` no
//! recorder is installed and every call is a no-op. The engine records its
//! commit and visibility histograms through the facade itself (it knows no
//! tonic); this module describes them.
//!
//! | metric | labels | |
//! |---|---|---|
//! | `trove_requests_total` | method, code | requests answered, by gRPC status |
//! | `trove_request_duration_seconds` | method | histogram, to the end of the response |
//! | `trove_shed_requests_total` | | refused because too many were in progress |
//! | `trove_commit_duration_seconds` | | histogram of commits that publish a view |
//! | `trove_write_visibility_seconds` | | histogram: a write applied until searchable |
//! | `trove_collection_documents` | collection | gauge |
//! | `trove_collection_memory_bytes` | collection | gauge (documents and index) |
//! | `trove_resident_memory_bytes` | | gauge: the process's resident set |
//! | `trove_document_cache_bytes` | | gauge: decoded documents kept for reads (estimated) |
//! | `trove_document_cache_hits_total` | | documents read from the cache |
//! | `trove_document_cache_misses_total` | | documents decoded for a read |

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::PrometheusBuilder;
use tonic::Code;
use tonic::body::Body;

use super::BoxFuture;

use crate::engine::Engine;

/// Latency buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the recorder and serves `/metrics` on `addr`.
pub fn install(addr: SocketAddr) -> anyhow::Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets(BUCKETS)?
        .install()
        .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
    metrics::describe_counter!(
        "trove_requests_total",
        "Requests answered, by method and gRPC status"
    );
    metrics::describe_histogram!(
        "trove_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from receiving a request to the end of its response"
    );
    metrics::describe_counter!(
        "trove_shed_requests_total",
        "Requests refused with RESOURCE_EXHAUSTED because too many were in progress"
    );
    metrics::describe_histogram!(
        "trove_commit_duration_seconds",
        metrics::Unit::Seconds,
        "Commits that make writes searchable"
    );
    metrics::describe_histogram!(
        "trove_write_visibility_seconds",
        metrics::Unit::Seconds,
        "From a write being applied to it being searchable, for writes that wait for it"
    );
    metrics::describe_gauge!("trove_collection_documents", "Documents per collection");
    metrics::describe_gauge!(
        "trove_collection_memory_bytes",
        metrics::Unit::Bytes,
        "Memory a collection holds: documents and index"
    );
    metrics::describe_gauge!(
        "trove_document_cache_bytes",
        metrics::Unit::Bytes,
        "Decoded documents kept for reads, estimated"
    );
    metrics::describe_counter!(
        "trove_document_cache_hits_total",
        "Documents a read or search hit found decoded"
    );
    metrics::describe_counter!(
        "trove_document_cache_misses_total",
        "Documents a read or search hit decoded"
    );
    metrics::describe_gauge!(
        "trove_resident_memory_bytes",
        metrics::Unit::Bytes,
        "Resident memory of the process"
    );
    Ok(())
}

/// A request refused by load shedding.
pub fn shed() {
    counter!("trove_shed_requests_total").increment(1);
}

/// Sets the per-collection and process gauges.
pub fn sample(engine: &Engine) {
    for collection in engine
        .list_collections(None, usize::MAX)
        .unwrap_or_default()
    {
        let stats = collection.stats();
        let name = collection.name().to_string();
        gauge!("trove_collection_documents", "collection" => name.clone())
            .set(stats.document_count as f64);
        gauge!("trove_collection_memory_bytes", "collection" => name)
            .set(stats.memory_bytes as f64);
    }
    gauge!("trove_document_cache_bytes").set(engine.document_cache_bytes() as f64);
    if let Some(bytes) = resident_bytes() {
        gauge!("trove_resident_memory_bytes").set(bytes as f64);
    }
}

/// The method's path, or `other` for a path the method table does not name,
/// so that a client cannot make up label values.
fn method_label(path: &str) -> &'static str {
    crate::api::methods::method(path).map_or("other", |m| m.path)
}

fn record(method: &'static str, code: &str, started: Instant) {
    counter!("trove_requests_total", "method" => method, "code" => code.to_string()).increment(1);
    histogram!("trove_request_duration_seconds", "method" => method)
        .record(started.elapsed().as_secs_f64());
}

fn code_name(value: &http::HeaderValue) -> String {
    let code = value
        .to_str()
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
        .map_or(Code::Unknown, Code::from_i32);
    format!("{code:?}")
}

/// Counts requests by method and status and times them.
#[derive(Clone, Copy, Debug, Default)]
pub struct MetricsLayer;

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = Measured<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Measured { inner }
    }
}

/// The service [`MetricsLayer`] makes.
#[derive(Clone, Debug)]
pub struct Measured<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for Measured<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = method_label(request.uri().path());
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            // An error answered at once carries its status in the headers
            // (trailers-only); otherwise it comes in the trailers.
            if let Some(status) = response.headers().get("grpc-status") {
                record(method, &code_name(status), started);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(Observed {
                    inner: body,
                    method,
                    started,
                    code: None,
                    recorded: false,
                })
            }))
        })
    }
}

/// A response body that records its request when its trailers pass (or when
/// it is dropped unfinished: the client went away, counted as Cancelled).
struct Observed {
    inner: Body,
    method: &'static str,
    started: Instant,
    code: Option<String>,
    recorded: bool,
}

impl Observed {
    fn finish(&mut self) {
        if !self.recorded {
            self.recorded = true;
            let code = self.code.take().unwrap_or_else(|| "Cancelled".into());
            record(self.method, &code, self.started);
        }
    }
}

impl http_body::Body for Observed {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(status) = frame.trailers_ref().and_then(|t| t.get("grpc-status")) {
                    this.code = Some(code_name(status));
                    this.finish();
                }
            }
            Poll::Ready(Some(Err(status))) => {
                this.code = Some(format!("{:?}", status.code()));
                this.finish();
            }
            Poll::Ready(None) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The resident set of this process, from `/proc/self/statm` (Linux).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no memory effects.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}
