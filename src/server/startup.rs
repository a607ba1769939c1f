//! What a server loads before it serves: the data directory replayed into the
//! engine, then (into an empty server) the snapshot of `--from-snapshot`.

use std::sync::Arc;

use crate::config::Config;
use crate::engine::Engine;
use crate::storage::{DataDir, Store};

/// Loads the data directory and the snapshot `config` names into `engine`;
/// the store the engine's writes go to from then on, in the durable mode.
pub(super) async fn load(
    engine: &Arc<Engine>,
    config: &Config,
) -> anyhow::Result<Option<Arc<Store>>> {
    let store = tokio::task::spawn_blocking({
        let (engine, config) = (engine.clone(), config.clone());
        move || open_store(&engine, &config)
    })
    .await??
    .map(Arc::new);
    if let Some(dir) = &config.from_snapshot {
        let (engine, dir) = (engine.clone(), dir.clone());
        let loaded = tokio::task::spawn_blocking(move || {
            if engine.collection_count() > 0 {
                return Ok(None);
            }
            crate::storage::restore_dir(&engine, &dir, &[]).map(Some)
        })
        .await?;
        match loaded {
            Ok(Some(info)) => {
                tracing::info!(collections = info.collections.len(), "snapshot loaded")
            }
            Ok(None) => tracing::info!("the server has collections: snapshot not loaded"),
            Err(err) => return Err(anyhow::anyhow!("loading the snapshot: {err}")),
        }
    }
    Ok(store)
}

/// Opens the data directory of `config`, if it names one, and replays it
/// into `engine`. Blocking.
fn open_store(engine: &Engine, config: &Config) -> anyhow::Result<Option<Store>> {
    let Some(path) = &config.data_dir else {
        return Ok(None);
    };
    let dir = DataDir {
        path: path.clone(),
        fsync: config.fsync,
        checkpoint_bytes: config.checkpoint_bytes,
    };
    let (store, r) = Store::open(engine, dir)
        .map_err(|err| anyhow::anyhow!("recovering the data directory: {err}"))?;
    tracing::info!(
        collections = r.collections,
        documents = r.documents,
        replayed = r.replayed,
        seconds = r.seconds,
        "recovered"
    );
    Ok(Some(store))
}
