//! `trove.v1.SnapshotService`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::collection_name;
use crate::api::OrStatus as _;
use crate::api::served as pb;
use crate::api::served::snapshot_service_server::SnapshotService;
use crate::engine::{CollectionName, Engine, EngineError};
use crate::middleware::auth::{Access, check_collection};
use crate::storage::{SnapshotInfo, Snapshots};

/// Serves `SnapshotService` from the engine and a snapshot directory.
pub struct SnapshotHandler {
    pub engine: Arc<Engine>,
    pub snapshots: Arc<Snapshots>,
}

fn names(collections: &[String]) -> Result<Vec<CollectionName>, Status> {
    collections
        .iter()
        .enumerate()
        .map(|(i, name)| collection_name(name, &format!("collections[{i}]")))
        .collect()
}

/// A key limited to some collections must name them, all within its limit
/// (an empty list means every collection).
fn check_scope<T>(request: &Request<T>, collections: &[String]) -> Result<(), Status> {
    let limited = request
        .extensions()
        .get::<Access>()
        .is_some_and(|access| access.collections.is_some());
    if limited && collections.is_empty() {
        return Err(Status::permission_denied(
            "this key is limited to some collections: name them in `collections`",
        ));
    }
    collections
        .iter()
        .try_for_each(|name| check_collection(request, name))
}

/// What a key limited to some collections may see of a snapshot: the
/// collections within its limit, and the snapshot only if it holds one.
fn visible(mut info: SnapshotInfo, access: Option<&Access>) -> Option<SnapshotInfo> {
    let Some(access) = access else {
        return Some(info);
    };
    if access.collections.is_none() {
        return Some(info);
    }
    info.collections.retain(|(name, _)| access.allows(name));
    (!info.collections.is_empty()).then_some(info)
}

fn wire(info: SnapshotInfo) -> pb::Snapshot {
    pb::Snapshot {
        name: info.name,
        collections: info
            .collections
            .into_iter()
            .map(|(name, count)| pb::SnapshotCollection {
                name,
                document_count: i64::try_from(count).unwrap_or(i64::MAX),
            })
            .collect(),
    }
}

/// Runs blocking snapshot work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EngineError::Internal(format!("snapshot task failed: {e}")))
        .or_status()?
        .or_status()
}

#[tonic::async_trait]
impl SnapshotService for SnapshotHandler {
    async fn create_snapshot(
        &self,
        request: Request<pb::CreateSnapshotRequest>,
    ) -> Result<Response<pb::Snapshot>, Status> {
        check_scope(&request, &request.get_ref().collections)?;
        let pb::CreateSnapshotRequest { name, collections } = request.into_inner();
        let collections = names(&collections)?;
        let (engine, snapshots) = (self.engine.clone(), self.snapshots.clone());
        let info = blocking(move || snapshots.create(&engine, &name, &collections)).await?;
        Ok(Response::new(wire(info)))
    }

    async fn list_snapshots(
        &self,
        request: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        let access = request.extensions().get::<Access>().cloned();
        let snapshots = self.snapshots.clone();
        let found = blocking(move || snapshots.list()).await?;
        Ok(Response::new(pb::ListSnapshotsResponse {
            snapshots: found
                .into_iter()
                .filter_map(|info| visible(info, access.as_ref()))
                .map(wire)
                .collect(),
        }))
    }

    async fn restore_snapshot(
        &self,
        request: Request<pb::RestoreSnapshotRequest>,
    ) -> Result<Response<pb::Snapshot>, Status> {
        check_scope(&request, &request.get_ref().collections)?;
        let pb::RestoreSnapshotRequest { name, collections } = request.into_inner();
        let collections = names(&collections)?;
        let (engine, snapshots) = (self.engine.clone(), self.snapshots.clone());
        let info = blocking(move || snapshots.restore(&engine, &name, &collections)).await?;
        Ok(Response::new(wire(info)))
    }
}
