//! The server's background tasks.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::engine::Engine;
use crate::storage::Store;

/// A collection's index writer (and its threads) is closed after this long
/// without a write.
pub const WRITER_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often pending asynchronous writes are made visible.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// A collection's segments are merged (see `Engine::merge_idle_collections`)
/// once nobody wrote to it for this long.
pub const IDLE_MERGE_AFTER: Duration = Duration::from_secs(2);

/// Every [`REFRESH_INTERVAL`]: makes pending asynchronous writes visible (and
/// merged segments), samples the metrics gauges if asked, starts the merges of
/// idle collections' segments, and starts a checkpoint if the log has grown
/// enough.
pub(super) fn spawn_refresher(
    engine: Arc<Engine>,
    store: Option<Arc<Store>>,
    sample_metrics: bool,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH_INTERVAL);
        loop {
            tick.tick().await;
            engine.refresh_all().await;
            if sample_metrics {
                crate::middleware::metrics::sample(&engine);
            }
            // In the background: a merge takes seconds, and each collection
            // starts one per idle period. Only when one is due: a blocking
            // thread kept busy every second would never end, and each keeps
            // its zstd contexts and its allocator pages (docs/decisions.md).
            if engine.idle_merge_due(IDLE_MERGE_AFTER) {
                let idle = engine.clone();
                tokio::task::spawn_blocking(move || idle.merge_idle_collections(IDLE_MERGE_AFTER));
            }
            // In the background: at most one runs, and refreshes go on meanwhile.
            if let Some(store) = &store {
                let (store, engine) = (store.clone(), engine.clone());
                tokio::task::spawn_blocking(move || {
                    if let Err(err) = store.maybe_checkpoint(&engine) {
                        tracing::error!(%err, "checkpoint failed");
                    }
                });
            }
        }
    })
}

/// Closes the index writers (and their threads) of collections nobody writes
/// to; blocking, since a writer's merges must end first.
pub(super) fn spawn_writer_closer(engine: Arc<Engine>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WRITER_IDLE_TIMEOUT / 4);
        loop {
            tick.tick().await;
            let engine = engine.clone();
            let closed =
                tokio::task::spawn_blocking(move || engine.close_idle_writers(WRITER_IDLE_TIMEOUT));
            let _ = closed.await;
        }
    })
}
