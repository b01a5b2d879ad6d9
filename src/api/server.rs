//! Serving connections within limits, so that no client — idle, slow, flooding, or not
//! reading its answers — can keep the game from its own API (the limits are listed in the
//! module doc of `api`).
//!
//! Each exchange is bounded by a deadline at every step: hyper's header read timeout for the
//! head (idle keep-alive connections included), [`DeadlineBody`] for the body (408, then the
//! connection is closed), and the connection's own watchdog for a client that does not take
//! its answer. The number of connections is capped, and at the cap (or out of file
//! descriptors) the server keeps accepting and closes the connection that gives way
//! ([`Registry::evict_one`]), so a fresh request is always taken at once.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tracing::{debug, warn};

use super::connections::{Activity, Registry};
use super::json::{BodyTimeout, ResponseBody};
use super::metrics::{ConnectionCut, Metrics};
use super::routes::handle;
use super::state::ApiState;

/// The request type every handler gets: hyper's body behind the body deadline.
pub type ServedRequest = hyper::Request<DeadlineBody<hyper::body::Incoming>>;

/// What answers the requests of one server: the agent's API ([`ApiState`]) or another
/// service sharing the same limits (the Agones SDK routes).
pub trait Handler: Send + Sync + 'static {
    /// The body of this handler's responses.
    type Body: Body<Data = hyper::body::Bytes, Error: Into<Box<dyn StdError + Send + Sync>>>
        + Send
        + Unpin
        + 'static;

    /// Answers one request.
    fn handle(
        self: Arc<Self>,
        request: ServedRequest,
    ) -> impl Future<Output = hyper::Response<Self::Body>> + Send;
}

impl Handler for ApiState {
    type Body = ResponseBody;

    async fn handle(self: Arc<Self>, request: ServedRequest) -> hyper::Response<ResponseBody> {
        handle(request, &self).await
    }
}

/// The limits one server applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client has to send a request head (from the connection's opening, or from
    /// the previous answer).
    pub header_read_timeout: Duration,
    /// How long a client has to send a request body, from the end of its head.
    pub body_read_timeout: Duration,
    /// How long a connection may wait on its client with no request in progress — in
    /// practice, for a client to take an answer it is not reading (idle connections are
    /// closed sooner, by the head's timeout).
    pub answer_timeout: Duration,
    /// The most connections open at once.
    pub max_connections: usize,
    /// The largest request head, in bytes (431 beyond).
    pub max_head_bytes: usize,
}

/// Accepts and serves connections until `shutdown` completes; then stops accepting and lets
/// open connections finish their current request. Connections and cuts are counted in
/// `metrics`.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    limits: Limits,
    state: Arc<H>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper's own floor is 8 KiB; anything lower would panic in hyper.
        .max_buf_size(limits.max_head_bytes.max(8192))
        .keep_alive(true);
    let registry = Arc::new(Registry::default());
    let epoch = Instant::now();
    let (closing_tx, closing) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if out_of_descriptors(&error) => {
                // Make room and try again at once: the evicted task closes its socket when
                // it is dropped, which needs this task to yield.
                if registry.evict_one() {
                    metrics.record_cut(ConnectionCut::Evicted);
                    tokio::task::yield_now().await;
                } else {
                    warn!(%error, "local API cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                continue;
            }
            Err(error) => {
                // A connection reset before it was accepted, and the like: nothing to wait for.
                debug!(%error, "local API could not accept a connection");
                continue;
            }
        };
        while registry.len() >= limits.max_connections && registry.evict_one() {
            metrics.record_cut(ConnectionCut::Evicted);
        }
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new(epoch));
        let registration = registry.register(peer.ip(), Arc::clone(&activity));
        let id = registration.id();
        let service = {
            let (state, activity) = (Arc::clone(&state), Arc::clone(&activity));
            service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let (state, activity) = (Arc::clone(&state), Arc::clone(&activity));
                activity.request_started();
                let request = request.map(|body| DeadlineBody::new(body, limits.body_read_timeout));
                async move {
                    let response = state.handle(request).await;
                    activity.answered();
                    Ok::<_, Infallible>(response.map(|body| TrackedBody { body, activity }))
                }
            })
        };
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let mut closing = closing.clone();
        let metrics = Arc::clone(&metrics);
        let task = tokio::spawn(async move {
            let _registration = registration;
            let _open = metrics.connection_opened();
            tokio::pin!(connection);
            loop {
                let stalled =
                    tokio::time::sleep_until(activity.waiting_deadline(limits.answer_timeout));
                let result = tokio::select! {
                    result = connection.as_mut() => result,
                    _ = closing.changed() => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                    () = stalled => {
                        if activity.waited_past(limits.answer_timeout) {
                            // Dropping the connection closes its socket.
                            metrics.record_cut(ConnectionCut::Stalled);
                            return;
                        }
                        continue;
                    }
                };
                if let Err(error) = result {
                    if error.is_timeout() {
                        metrics.record_cut(ConnectionCut::HeadTimeout);
                    }
                    debug!(%error, "local API connection ended with an error");
                }
                return;
            }
        });
        registry.set_abort(id, task.abort_handle());
    }
    drop(closing_tx);
}

fn out_of_descriptors(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(nix::libc::EMFILE | nix::libc::ENFILE)
    )
}

/// A response body that tells the connection's watchdog who it waits on: while the body has
/// nothing to send (a stream between two changes), the answer is in progress and the client
/// owes nothing; once it yields a line, the client has the answer timeout to take it (hyper
/// asks for the next frame only once the last one is written).
struct TrackedBody<B> {
    body: B,
    activity: Arc<Activity>,
}

impl<B: Body<Data = Bytes> + Unpin> Body for TrackedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Pending => this.activity.request_started(),
            Poll::Ready(_) => this.activity.answered(),
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails with [`BodyTimeout`] once its deadline passes, so a body sent a
/// byte at a time cannot hold a connection (and its handler) open.
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, timeout: Duration) -> DeadlineBody<B> {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body + Unpin,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|result| result.map_err(Into::into))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(this.timeout))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
