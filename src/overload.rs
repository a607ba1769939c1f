//! Overload protection: a bound on the requests in progress across all
//! connections ([`ShedLayer`]), and a memory limit for writes ([`MemoryLimit`]).
//!
//! Past the bound a request is answered RESOURCE_EXHAUSTED at once instead of
//! queueing, so that under overload the requests admitted keep a bounded
//! latency and clients back off (gRPC's guidance for overload). Health is never
//! shed, so that a load balancer still sees the server alive. tower's
//! `ConcurrencyLimit` queues and `LoadShed` answers UNAVAILABLE (which clients
//! treat as "try another server at once"), hence this small layer.

use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Semaphore;
use tonic::Status;

use crate::server::BoxFuture;

/// Sheds requests beyond `limit` in progress.
#[derive(Clone)]
pub struct ShedLayer {
    permits: Arc<Semaphore>,
    limit: usize,
    memory: Option<Arc<MemoryLimit>>,
}

impl ShedLayer {
    /// At most `limit` requests in progress; writes refused at `memory`.
    pub fn new(limit: usize, memory: Option<MemoryLimit>) -> Self {
        ShedLayer {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            memory: memory.map(Arc::new),
        }
    }
}

impl<S> tower::Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`ShedLayer`] makes.
#[derive(Clone)]
pub struct Shed<S> {
    inner: S,
    layer: ShedLayer,
}

impl<S, B> tower::Service<http::Request<B>> for Shed<S>
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

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if request.uri().path().starts_with("/grpc.health.") {
            return Box::pin(self.inner.call(request));
        }
        if let Some(memory) = &self.layer.memory
            && let Err(status) = memory.admit(&mut request)
        {
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let Ok(permit) = self.layer.permits.clone().try_acquire_owned() else {
            let status = Status::resource_exhausted(format!(
                "the server is at its limit of {} requests in progress; retry with backoff",
                self.layer.limit
            ));
            crate::metrics::shed();
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(permit);
            response
        })
    }
}

/// The methods that add data, refused at the memory limit. Deletes free memory
/// and reads add none: they go on.
const WRITES: &[&str] = &[
    "/trove.v1.DocumentService/CreateDocument",
    "/trove.v1.DocumentService/UpdateDocument",
    "/trove.v1.DocumentService/ImportDocuments",
    "/trove.v1.CollectionService/CreateCollection",
    "/trove.v1.SnapshotService/RestoreSnapshot",
];

/// `--max-memory`: writes are refused with RESOURCE_EXHAUSTED while the
/// resident memory of the process is within `headroom` of the limit, so that
/// the write itself (its documents, index growth) stays under it.
#[derive(Debug)]
pub struct MemoryLimit {
    limit: u64,
    headroom: u64,
}

impl MemoryLimit {
    pub fn new(limit: u64) -> Self {
        MemoryLimit {
            limit,
            // A write's own growth: an import batch and the index it builds.
            headroom: (limit / 8).min(64 << 20),
        }
    }

    /// Refuses a write if memory is too close to the limit.
    pub fn check(&self) -> Result<(), Status> {
        let Some(resident) = resident_bytes() else {
            return Ok(());
        };
        if resident.saturating_add(self.headroom) > self.limit {
            return Err(Status::resource_exhausted(format!(
                "the server is at its memory limit (--max-memory {} MiB, {} MiB resident): \
                 writes are refused until memory is freed; reads and deletes go on",
                self.limit >> 20,
                resident >> 20
            )));
        }
        Ok(())
    }

    /// Refuses a write method at the limit; handlers of streams call
    /// [`MemoryLimit::check`] again as data arrives (it is in the request
    /// extensions).
    fn admit<B>(self: &Arc<Self>, request: &mut http::Request<B>) -> Result<(), Status> {
        if WRITES.contains(&request.uri().path()) {
            self.check()?;
            request.extensions_mut().insert(self.clone());
        }
        Ok(())
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
