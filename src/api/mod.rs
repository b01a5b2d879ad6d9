//! The localhost HTTP API the game talks to (HTTP/1.1, JSON in and out).
//!
//! The API is bound ([`bind`]) before the game is spawned, and its URL is passed to the game as
//! `EDGEGAP_AGENT_URL` (with the token, if any, as `EDGEGAP_AGENT_API_TOKEN`), so the game can
//! never start before its agent. [`BoundApi::serve`] then runs as a task until the agent exits,
//! so it keeps answering while the game is in its grace period.
//!
//! | method | path                     | body                                 | responses |
//! |--------|--------------------------|--------------------------------------|-----------|
//! | GET    | `/healthz`               |                                      | 200 the game runs (starting, running, ending); 503 `{error, detail}` not started / restarting / match ended and the game gone / stopping / exited |
//! | GET    | `/readyz`                |                                      | 200 `{ready, by: "game" \| "ports"}`; 503 with what is missing |
//! | GET    | `/v1/deployment`         |                                      | 200 the deployment context (ports, join addresses, location, tags, resources; never a token) |
//! | GET    | `/v1/status`             |                                      | 200 `{state, trigger?, reason?, deadline_unix_ms?, ms_left?, child_pid, uptime_ms, restarts, ready, self_stop, players, last_heartbeat_ms_ago}` |
//! | POST   | `/v1/ready`              | optional JSON                        | 202; the game is ready |
//! | POST   | `/v1/heartbeat`          | optional JSON                        | 202 |
//! | POST   | `/v1/match/end`          | optional `{"reason": str, "delay": "5s" \| secs}` (delay at most 1440m) | 202 `{accepted, status}` on every call (idempotent); never waits for the platform |
//! | POST   | `/v1/players/connect`    | `{"id": str}`                        | 200 `{id, connected, new, count}` (connecting twice is one player) |
//! | POST   | `/v1/players/disconnect` | `{"id": str}`                        | 200 `{id, connected, count}`; 404 if the id is not connected |
//! | GET    | `/v1/players`            |                                      | 200 `{count, players: [ids]}` |
//! | GET    | `/metrics`               |                                      | 200 Prometheus text |
//!
//! Every error is JSON `{"error": "...", "detail": "..."}`: 404 unknown path, 405 wrong method
//! (with `Allow`), 400 malformed JSON or invalid field, 413 body over 64 KiB, 401 missing or
//! wrong bearer token on a POST route when `--api-token` is set (GET routes stay open), 503
//! when the supervisor is gone. POST routes only send a [`GameRequest`](crate::lifecycle::GameRequest) to the supervisor.
//!
//! Connections: HTTP/1.1 keep-alive; a client that has not sent a whole request head within
//! the header read timeout (5 s) is disconnected (idle keep-alive connections included); at most
//! 4096 connections at once (a thousand idle ones must not lock the game out), further ones
//! wait in the accept queue.

// A handler step's `Err` is the finished error response; boxing it would buy nothing here.
#[allow(clippy::result_large_err)]
mod commands;
#[allow(clippy::result_large_err)]
mod json;
mod metrics;
#[allow(clippy::result_large_err)]
mod routes;
mod state;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tracing::{debug, warn};

pub use json::MAX_BODY_BYTES;
pub use metrics::Metrics;
pub use routes::{handle, Route};
pub use state::{ApiState, ApiToken};

/// The address the local API listens on by default; its URL is given to the game as
/// `EDGEGAP_AGENT_URL`.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:7070";

/// How long a client has to send a whole request head.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The most connections served at once.
pub const MAX_CONNECTIONS: usize = 4096;

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot bind the local API to {addr} (--api-addr / EDGEGAP_AGENT_API_ADDR): {source}; the game server was not started")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl ApiError {
    /// A bind failure is a configuration error: exit 64.
    pub fn exit_code(&self) -> i32 {
        crate::exit_code::USAGE
    }
}

/// A listening socket, not yet served.
pub struct BoundApi {
    listener: TcpListener,
    addr: SocketAddr,
    header_read_timeout: Duration,
}

/// Binds the API's listening socket (port 0 picks a free port; see [`BoundApi::local_addr`]).
pub async fn bind(addr: SocketAddr) -> Result<BoundApi, ApiError> {
    let bind_error = |source| ApiError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    Ok(BoundApi {
        listener,
        addr,
        header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
    })
}

impl BoundApi {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<bound address>`, as given to the game in `EDGEGAP_AGENT_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces [`DEFAULT_HEADER_READ_TIMEOUT`].
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> BoundApi {
        self.header_read_timeout = timeout;
        self
    }

    /// Serves until `shutdown` completes; then stops accepting and lets open connections
    /// finish their current request. In the agent, `shutdown` never completes: the API serves
    /// until the process exits.
    pub async fn serve(self, state: Arc<ApiState>, shutdown: impl Future<Output = ()>) {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .keep_alive(true);
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let (closing_tx, closing) = watch::channel(());
        tokio::pin!(shutdown);
        loop {
            // A connection slot first, then a connection: past MAX_CONNECTIONS, new clients
            // wait in the kernel's accept queue. Shutdown is seen in either wait.
            let next = async {
                let slot = slots.clone().acquire_owned().await;
                (slot, self.listener.accept().await)
            };
            let (slot, stream) = tokio::select! {
                () = &mut shutdown => break,
                (Ok(slot), accepted) = next => match accepted {
                    Ok((stream, _peer)) => (slot, stream),
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        warn!(%error, "local API cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(request, &state).await) }
            });
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut closing = closing.clone();
            tokio::spawn(async move {
                tokio::pin!(connection);
                let result = tokio::select! {
                    result = connection.as_mut() => result,
                    _ = closing.changed() => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(error) = result {
                    debug!(%error, "local API connection ended with an error");
                }
                drop(slot);
            });
        }
        drop(closing_tx);
    }
}
