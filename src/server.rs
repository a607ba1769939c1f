//! Builds and runs the tonic server: the three trove services, health, reflection
//! (v1 and v1alpha), compression, message limits and the status-mapping layer.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::api;
use crate::api::served::collection_service_server::CollectionServiceServer;
use crate::api::served::document_service_server::DocumentServiceServer;
use crate::api::served::search_service_server::SearchServiceServer;
use crate::api::served::snapshot_service_server::SnapshotServiceServer;
use crate::config::Config;
use crate::engine::Engine;
use crate::middleware::WireStatusLayer;
use crate::middleware::auth::{AuthLayer, Keys};
use crate::middleware::metrics::MetricsLayer;
use crate::middleware::request_id::RequestIdLayer;
use crate::middleware::shed::{MemoryLimit, ShedLayer};
use crate::seeds;
use crate::service::{CollectionHandler, DocumentHandler, SearchHandler, SnapshotHandler};
use crate::storage::Snapshots;

pub use crate::api::{
    MAX_DECODING_MESSAGE_BYTES, MAX_ENCODING_MESSAGE_BYTES, MAX_QUERY_MESSAGE_BYTES,
};
pub use tasks::{REFRESH_INTERVAL, WRITER_IDLE_TIMEOUT};

mod startup;
mod tasks;
mod tls;

/// HTTP/2 pings on idle connections find dead peers.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// How long a ping may go unanswered before the connection is closed.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves a new engine configured by `config` on `listener` until `shutdown`
/// completes. Health reports NOT_SERVING until the seeds are loaded.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve(engine_for(&config), config, listener, shutdown).await
}

/// The engine `config` describes: in memory, or durable on `--data-dir` (then
/// empty, and refusing requests, until [`serve`] has replayed the directory).
pub fn engine_for(config: &Config) -> Arc<Engine> {
    let ttl = Duration::from_secs(config.snapshot_ttl);
    let engine = match &config.data_dir {
        None => Engine::new(ttl, config.max_snapshots),
        Some(_) => Engine::recovering(ttl, config.max_snapshots),
    };
    engine.set_document_cache_bytes(config.document_cache);
    Arc::new(engine.with_max_collections(config.max_collections))
}

/// Serves `engine` on `listener` until `shutdown` completes (see [`run`]).
pub async fn serve(
    engine: Arc<Engine>,
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let keys = match &config.api_keys {
        Some(path) => Some(Arc::new(Keys::load(path)?)),
        None if !addr.ip().is_loopback() && !config.insecure => anyhow::bail!(
            "refusing to serve {addr} without API keys: anyone who can reach it could read and \
             change every collection. Give --api-keys FILE, listen on a loopback address, or \
             pass --insecure to accept this"
        ),
        None => None,
    };
    if let Some(keys) = &keys {
        tracing::info!(keys = keys.len(), "API keys loaded");
        keys.clone().reload_on_hangup()?;
    }
    let (reporter, health) = tonic_health::server::health_reporter();
    set_status(&reporter, ServingStatus::NotServing).await;

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(api::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    macro_rules! configure {
        ($server:expr, $max_request:expr) => {
            $server
                .max_decoding_message_size($max_request)
                .max_encoding_message_size(MAX_ENCODING_MESSAGE_BYTES)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .send_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Zstd)
        };
    }
    let collections = configure!(
        CollectionServiceServer::new(CollectionHandler {
            engine: engine.clone()
        }),
        MAX_QUERY_MESSAGE_BYTES
    );
    let documents = configure!(
        DocumentServiceServer::new(DocumentHandler {
            engine: engine.clone()
        }),
        MAX_DECODING_MESSAGE_BYTES
    );
    let search = configure!(
        SearchServiceServer::new(SearchHandler {
            engine: engine.clone()
        }),
        MAX_QUERY_MESSAGE_BYTES
    );

    let snapshots = configure!(
        SnapshotServiceServer::new(SnapshotHandler {
            engine: engine.clone(),
            snapshots: Arc::new(Snapshots::new(config.snapshot_root())),
        }),
        MAX_QUERY_MESSAGE_BYTES
    );

    // TCP_NODELAY: without it, a response larger than one segment waits for the
    // client's delayed ACK (tens of milliseconds per call).
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    if let Some(metrics_addr) = config.metrics_listen {
        crate::middleware::metrics::install(metrics_addr)?;
        tracing::info!(addr = %metrics_addr, "serving metrics");
    }
    let mut builder = transport(config.max_concurrent_streams);
    if let Some(age) = config.max_connection_age {
        builder = builder.max_connection_age(age);
    }
    if let Some(tls) = tls::tls_config(&config)? {
        builder = builder.tls_config(tls)?;
    }
    let server = builder
        .layer(RequestIdLayer)
        .layer(tower::util::option_layer(tracing_requests().then(|| {
            tower::ServiceBuilder::new()
                .map_response(as_tonic_body)
                .layer(
                    TraceLayer::new_for_grpc()
                        .make_span_with(request_span)
                        .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
                )
        })))
        .layer(tower::util::option_layer(
            config.metrics_listen.is_some().then_some(MetricsLayer),
        ))
        .layer(ShedLayer::new(
            config.max_concurrent_requests,
            config.max_memory.map(MemoryLimit::new),
            config.receive_timeout,
            config.send_timeout,
        ))
        .layer(WireStatusLayer)
        .layer(crate::middleware::compression::layer(
            config.compress_responses,
        ))
        .layer(AuthLayer::new(keys))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(collections)
        .add_service(documents)
        .add_service(search)
        .add_service(snapshots)
        .serve_with_incoming_shutdown(incoming, shutdown);
    tracing::info!(%addr, "listening");
    let server = tokio::spawn(server);

    let store = match startup::load(&engine, &config).await {
        Ok(store) => store,
        Err(err) => {
            server.abort();
            return Err(err);
        }
    };
    if !config.no_seeds {
        // The outcome is logged by `load`; only a failure is left here.
        if let Err(err) = seeds::load(&engine, &config.seeds).await {
            tracing::error!(%err, "loading seeds failed");
        }
    }
    set_status(&reporter, ServingStatus::Serving).await;
    tracing::info!("serving");

    let refresher = tasks::spawn_refresher(
        engine.clone(),
        store.clone(),
        config.metrics_listen.is_some(),
    );
    let closer = tasks::spawn_writer_closer(engine.clone());
    let result = server.await;
    refresher.abort();
    closer.abort();
    result??;
    // A checkpoint at shutdown makes the next start read no log.
    if let Some(store) = store {
        match tokio::task::spawn_blocking(move || store.checkpoint(&engine)).await? {
            Ok(_) => {}
            Err(err) => tracing::error!(%err, "final checkpoint failed"),
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// A server builder with trove's HTTP/2 settings: at most
/// `max_concurrent_streams` streams per connection, and keep-alive pings that
/// find dead peers. (The benchmark's bare server is built with it too.)
pub fn transport(max_concurrent_streams: u32) -> Server {
    Server::builder()
        .max_concurrent_streams(Some(max_concurrent_streams))
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
}

/// Whether the request spans and their events can be recorded: they are at
/// DEBUG level, and below it the trace layer would only cost time (its body
/// wrapper, clock reads and status classification on every response).
fn tracing_requests() -> bool {
    tracing::level_filters::LevelFilter::current() >= tracing::Level::DEBUG
}

fn as_tonic_body<B>(response: http::Response<B>) -> http::Response<tonic::body::Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    response.map(tonic::body::Body::new)
}

/// Each request's span names its method and request id (the client's
/// `x-request-id`, or a generated UUID; either is echoed in the response). At
/// DEBUG level: an INFO span per request cost a measurable share of GetDocument
/// throughput, since the log formatter renders its fields at creation.
fn request_span<B>(request: &http::Request<B>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::debug_span!("request", method = %request.uri().path(), request_id = %id)
}

async fn set_status(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in crate::api::methods::trove_services() {
        reporter.set_service_status(name, status).await;
    }
}
