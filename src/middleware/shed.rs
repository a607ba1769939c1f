//! Overload protection: a bound on the requests in progress across all
//! connections ([`ShedLayer`]), and a memory limit for writes ([`MemoryLimit`]).
//!
//! Past the bound a request is answered RESOURCE_EXHAUSTED at once instead of
//! queueing, so that under overload the requests admitted keep a bounded
//! latency and clients back off (gRPC's guidance for overload). Health is never
//! shed, so that a load balancer still sees the server alive. tower's
//! `ConcurrencyLimit` queues and `LoadShed` answers UNAVAILABLE (which clients
//! treat as "try another server at once"), hence this small layer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body::{Body as _, Frame, SizeHint};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::BoxFuture;
use super::metrics::resident_bytes;
use crate::api::MAX_DECODING_MESSAGE_BYTES;
use crate::api::methods;

/// The most bytes of a request received before a permit: the largest message
/// any service accepts, with its gRPC frame header. Past it the request is
/// RESOURCE_EXHAUSTED, as tonic would answer.
const MAX_RECEIVED_BYTES: usize = MAX_DECODING_MESSAGE_BYTES + 5;

/// Responses are handed to HTTP/2 in pieces of this size, so that a response
/// is not done (and keeps its permit) until the client has taken all but its
/// last window of it.
const SEND_CHUNK_BYTES: usize = 64 << 10;

/// The most bytes of responses one connection may have waiting for its
/// client to read them; past it, its new requests are RESOURCE_EXHAUSTED.
pub const MAX_UNREAD_BYTES_PER_CONNECTION: u64 = 64 << 20;

/// Sheds requests beyond `limit` in progress, and bounds how long a request
/// may take to arrive and a response to be read.
#[derive(Clone)]
pub struct ShedLayer {
    permits: Arc<Semaphore>,
    limit: usize,
    memory: Option<Arc<MemoryLimit>>,
    receive_timeout: Duration,
    sending: Arc<Sending>,
}

impl ShedLayer {
    /// At most `limit` requests in progress; writes refused at `memory`; a
    /// request message must arrive within `receive_timeout` and a response be
    /// read within `send_timeout`. Must be made inside a tokio runtime: it
    /// starts the task that ends responses past their send timeout.
    pub fn new(
        limit: usize,
        memory: Option<MemoryLimit>,
        receive_timeout: Duration,
        send_timeout: Duration,
    ) -> Self {
        let sending = Arc::new(Sending {
            timeout: send_timeout,
            next_id: AtomicU64::new(0),
            stalled: Mutex::default(),
            connections: RwLock::default(),
        });
        tokio::spawn(end_stalled_responses(Arc::downgrade(&sending)));
        ShedLayer {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            memory: memory.map(Arc::new),
            receive_timeout,
            sending,
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

impl<S> tower::Service<http::Request<Body>> for Shed<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // Health is never refused; a path the method table does not name is
        // refused by the authentication layer, inside this one.
        let Some(method) = methods::method(request.uri().path()).filter(|m| m.shed) else {
            return Box::pin(self.inner.call(request));
        };
        if let Some(memory) = &self.layer.memory
            && method.adds_data
        {
            if let Err(status) = memory.check() {
                return Box::pin(async move { Ok(status.into_http()) });
            }
            // Streams check again as data arrives.
            request.extensions_mut().insert(memory.clone());
        }
        // The service made ready by `poll_ready` is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let streaming = method.client_streaming;
            let connection = connection_of(&request);
            // The client's own deadline, if sooner, ends the wait (as
            // DEADLINE_EXCEEDED all the same).
            let deadline = request
                .headers()
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .and_then(super::parse_grpc_timeout)
                .map_or(layer.receive_timeout, |d| d.min(layer.receive_timeout));
            let (parts, body) = request.into_parts();
            // No permit until the request has arrived: a client that sends
            // headers and no message holds nothing others need.
            let received =
                tokio::time::timeout(deadline, receive(body, streaming, layer.receive_timeout))
                    .await;
            let body = match received {
                Ok(Ok(body)) => body,
                Ok(Err(status)) => return Ok(status.into_http()),
                Err(_) => {
                    return Ok(Status::deadline_exceeded(format!(
                        "the request message did not arrive within {} (--receive-timeout)",
                        humantime::format_duration(layer.receive_timeout)
                    ))
                    .into_http());
                }
            };
            let waiting = layer.sending.unread_of(connection);
            if waiting > MAX_UNREAD_BYTES_PER_CONNECTION {
                return Ok(super::retry::exhausted(
                    format!(
                        "this connection has {} MiB of responses its client has not read; read \
                         them before sending more requests",
                        waiting >> 20
                    ),
                    super::retry::SLOW_RETRY_DELAY,
                )
                .into_http());
            }
            let Ok(permit) = layer.permits.clone().try_acquire_owned() else {
                crate::middleware::metrics::shed();
                return Ok(super::retry::exhausted(
                    format!(
                        "the server is at its limit of {} requests in progress; retry with backoff",
                        layer.limit
                    ),
                    super::retry::SHED_RETRY_DELAY,
                )
                .into_http());
            };
            let response = inner.call(http::Request::from_parts(parts, body)).await?;
            // The permit lives until the response has been read.
            let sending = layer.sending.clone();
            Ok(response.map(|body| Body::new(Response::new(body, permit, connection, sending))))
        })
    }
}

/// The peer address of the connection a request came on (with or without TLS).
fn connection_of<B>(request: &http::Request<B>) -> Option<SocketAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|tls| tls.get_ref().remote_addr())
        })
}

/// Receives a request body: a unary request whole, a stream up to its first
/// message (the rest then follows with `idle` between messages at most).
async fn receive(mut body: Body, streaming: bool, idle: Duration) -> Result<Body, Status> {
    // Most requests arrive in one frame: it is kept as it is, not copied.
    let mut first: Option<Bytes> = None;
    let mut more = BytesMut::new();
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => break,
            Some(Err(status)) => return Err(status),
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    // Trailers end a request; gRPC clients send none.
                    break;
                };
                let received = first.as_ref().map_or(0, Bytes::len) + more.len();
                if received + data.len() > MAX_RECEIVED_BYTES {
                    return Err(Status::resource_exhausted(format!(
                        "the request is larger than {} MiB, the largest message accepted",
                        MAX_DECODING_MESSAGE_BYTES >> 20
                    )));
                }
                match &first {
                    None => first = Some(data),
                    Some(_) => more.extend_from_slice(&data),
                }
                if streaming && first.as_ref().is_some_and(|f| !f.is_empty()) {
                    let first = joined(first, more);
                    return Ok(Body::new(Resumed {
                        first: Some(first),
                        rest: body,
                        idle,
                        timer: Box::pin(tokio::time::sleep(idle)),
                    }));
                }
            }
        }
    }
    Ok(Body::new(http_body_util::Full::new(joined(first, more))))
}

/// The bytes of `first` followed by `more`.
fn joined(first: Option<Bytes>, more: BytesMut) -> Bytes {
    match first {
        None => Bytes::new(),
        Some(first) if more.is_empty() => first,
        Some(first) => {
            let mut all = BytesMut::with_capacity(first.len() + more.len());
            all.extend_from_slice(&first);
            all.extend_from_slice(&more);
            all.freeze()
        }
    }
}

/// A streamed request: its first received bytes, then the rest, each frame
/// within `idle` of the one before.
struct Resumed {
    first: Option<Bytes>,
    rest: Body,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for Resumed {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        match Pin::new(&mut self.rest).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + self.idle;
                self.timer.as_mut().reset(next);
                Poll::Ready(frame)
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Status::deadline_exceeded(format!(
                    "no request message arrived for {} (--receive-timeout)",
                    humantime::format_duration(self.idle)
                ))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }
}

/// The responses being sent: those that wait for their client to read them,
/// and the unread bytes of each connection.
struct Sending {
    timeout: Duration,
    next_id: AtomicU64,
    /// Responses with data not yet handed to HTTP/2, by id. A std-like lock,
    /// held only to insert, remove or scan.
    stalled: Mutex<HashMap<u64, Weak<Stalled>>>,
    /// Unread response bytes per connection, for the connections that have
    /// had a response wait for their client. A std-like lock, held only to
    /// look up, insert or scan.
    connections: RwLock<HashMap<SocketAddr, Weak<AtomicU64>>>,
}

impl Sending {
    /// The bytes of responses `connection`'s client has not read.
    fn unread_of(&self, connection: Option<SocketAddr>) -> u64 {
        connection
            .and_then(|addr| self.connections.read().get(&addr).and_then(Weak::upgrade))
            .map_or(0, |counter| counter.load(Ordering::Relaxed))
    }

    /// The unread-bytes counter of `connection` (a counter of its own for a
    /// connection without an address).
    fn unread(&self, connection: Option<SocketAddr>) -> Arc<AtomicU64> {
        let Some(addr) = connection else {
            return Arc::default();
        };
        if let Some(counter) = self.connections.read().get(&addr).and_then(Weak::upgrade) {
            return counter;
        }
        let mut connections = self.connections.write();
        if let Some(counter) = connections.get(&addr).and_then(Weak::upgrade) {
            return counter;
        }
        let counter = Arc::new(AtomicU64::new(0));
        connections.insert(addr, Arc::downgrade(&counter));
        counter
    }
}

/// The part of a response that waits for its client, shared with the task
/// that ends it past the send timeout.
struct Stalled {
    since: Instant,
    /// Data not yet handed to HTTP/2.
    data: Mutex<Option<Bytes>>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    unread: Arc<AtomicU64>,
    ended: AtomicBool,
}

impl Stalled {
    /// Drops the data and the permit: the response is over, read or not.
    fn end(&self) {
        self.ended.store(true, Ordering::Release);
        if let Some(data) = self.data.lock().take() {
            self.unread.fetch_sub(data.len() as u64, Ordering::Relaxed);
        }
        self.permit.lock().take();
    }
}

/// A response body that holds the request's permit until it is read (or
/// ended past the send timeout), hands its data over in pieces, and counts
/// what its connection has not read. A response whose data fits in one piece
/// (most) never waits: it shares nothing with the stall registry.
struct Response {
    inner: Body,
    /// Until the response's data is larger than one piece.
    permit: Option<OwnedSemaphorePermit>,
    connection: Option<SocketAddr>,
    /// Once the response's data is larger than one piece.
    stalled: Option<(u64, Arc<Stalled>)>,
    sending: Arc<Sending>,
}

impl Response {
    fn new(
        inner: Body,
        permit: OwnedSemaphorePermit,
        connection: Option<SocketAddr>,
        sending: Arc<Sending>,
    ) -> Self {
        Response {
            inner,
            permit: Some(permit),
            connection,
            stalled: None,
            sending,
        }
    }

    /// The response is over: its permit and data go, and the stall registry
    /// forgets it.
    fn finish(&mut self) {
        self.permit = None;
        if let Some((id, state)) = self.stalled.take() {
            state.end();
            self.sending.stalled.lock().remove(&id);
        }
    }

    /// Keeps `data` to hand over in pieces, where the task that ends stalled
    /// responses can drop it.
    fn wait_with(&mut self, data: Bytes) {
        if self.stalled.is_none() {
            let state = Arc::new(Stalled {
                since: Instant::now(),
                data: Mutex::new(None),
                permit: Mutex::new(self.permit.take()),
                unread: self.sending.unread(self.connection),
                ended: AtomicBool::new(false),
            });
            let id = self.sending.next_id.fetch_add(1, Ordering::Relaxed);
            self.sending
                .stalled
                .lock()
                .insert(id, Arc::downgrade(&state));
            self.stalled = Some((id, state));
        }
        if let Some((_, state)) = &self.stalled {
            state.unread.fetch_add(data.len() as u64, Ordering::Relaxed);
            *state.data.lock() = Some(data);
        }
    }

    /// The next piece of the data waiting, if any.
    fn next_piece(&self) -> Option<Bytes> {
        let (_, state) = self.stalled.as_ref()?;
        let mut data = state.data.lock();
        let rest = data.as_mut()?;
        let piece = rest.split_to(rest.len().min(SEND_CHUNK_BYTES));
        if rest.is_empty() {
            *data = None;
        }
        state
            .unread
            .fetch_sub(piece.len() as u64, Ordering::Relaxed);
        Some(piece)
    }

    /// Whether the task that ends stalled responses has ended this one.
    fn ended(&self) -> bool {
        self.stalled
            .as_ref()
            .is_some_and(|(_, state)| state.ended.load(Ordering::Acquire))
    }
}

impl http_body::Body for Response {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        loop {
            if self.ended() {
                self.finish();
                return Poll::Ready(Some(Err(Status::cancelled(format!(
                    "the client did not read the response within {} (--send-timeout)",
                    humantime::format_duration(self.sending.timeout)
                )))));
            }
            if let Some(piece) = self.next_piece() {
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if data.len() <= SEND_CHUNK_BYTES => {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Ok(data) => self.wait_with(data),
                    Err(frame) => {
                        // Trailers: the response is complete.
                        self.finish();
                        return Poll::Ready(Some(Ok(frame)));
                    }
                },
                Poll::Ready(None) => {
                    self.finish();
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(status))) => {
                    self.finish();
                    return Poll::Ready(Some(Err(status)));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let waiting = self
            .stalled
            .as_ref()
            .is_some_and(|(_, state)| state.data.lock().is_some());
        !waiting && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.stalled {
            None => self.inner.size_hint(),
            Some(_) => SizeHint::default(),
        }
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Every second: ends the responses that have waited for their client longer
/// than the send timeout (their data and permit go at once, even while
/// HTTP/2 waits for the client's window), and forgets closed connections.
async fn end_stalled_responses(sending: Weak<Sending>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let Some(sending) = sending.upgrade() else {
            return;
        };
        let now = Instant::now();
        let mut late = Vec::new();
        sending
            .stalled
            .lock()
            .retain(|_, weak| match weak.upgrade() {
                Some(state) if now.duration_since(state.since) > sending.timeout => {
                    late.push(state);
                    false
                }
                Some(_) => true,
                None => false,
            });
        for state in late {
            state.end();
        }
        sending
            .connections
            .write()
            .retain(|_, counter| counter.strong_count() > 0);
    }
}

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
            return Err(super::retry::exhausted(
                format!(
                    "the server is at its memory limit (--max-memory {} MiB, {} MiB resident): \
                     writes are refused until memory is freed; reads and deletes go on",
                    self.limit >> 20,
                    resident >> 20
                ),
                super::retry::SLOW_RETRY_DELAY,
            ));
        }
        Ok(())
    }
}
