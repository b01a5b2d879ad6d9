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
//! | GET    | `/v1/status`             |                                      | 200 `{version, state, trigger?, reason?, deadline_unix_ms?, ms_left?, child_pid, uptime_ms, restarts, ready, self_stop, players, last_heartbeat_ms_ago}` |
//! | GET    | `/v1/status?wait=30s&after=N` |                                 | 200 the status as soon as its `version` differs from N (or the next change, without `after`), or unchanged when the wait (at most 5m) ends; 503 when [`MAX_WAITING_CLIENTS`] wait already |
//! | GET    | `/v1/events`             |                                      | 200 `application/x-ndjson`: the status now, then after each change, one object a line; 503 as above |
//! | POST   | `/v1/ready`              | optional JSON                        | 202; the game is ready |
//! | POST   | `/v1/heartbeat`          | optional JSON                        | 202 |
//! | POST   | `/v1/match/end`          | optional `{"reason": str, "delay": "5s" \| secs}` (delay at most 1440m) | 202 `{accepted, status}` on every call (idempotent); never waits for the platform |
//! | POST   | `/v1/players/connect`    | `{"id": str}`                        | 200 `{id, connected, new, count}` (connecting twice is one player) |
//! | POST   | `/v1/players/disconnect` | `{"id": str}`                        | 200 `{id, connected, count}`; 404 if the id is not connected |
//! | GET    | `/v1/players`            |                                      | 200 `{count, players: [ids]}` |
//! | GET    | `/metrics`               |                                      | 200 Prometheus text |
//!
//! Every error is JSON `{"error": "...", "detail": "..."}`: 404 unknown path, 405 wrong method
//! (with `Allow`), 400 malformed JSON or invalid field (a `reason` over [`MAX_REASON_BYTES`],
//! a player `id` over [`MAX_PLAYER_ID_BYTES`] or with control characters), 408 body not
//! received in time, 413 body over 64 KiB, 401 missing or wrong bearer token, 503 when the
//! supervisor is gone. POST routes only send a [`GameRequest`](crate::lifecycle::GameRequest)
//! to the supervisor.
//!
//! **Who may call what.** With `--api-token` every POST route needs `Authorization: Bearer
//! <token>`; with `--api-guard-reads` as well, so do the GET routes that show the match
//! (`/v1/deployment`, `/v1/status`, `/v1/players`, `/metrics`). `/healthz` and `/readyz` stay
//! open: they are what health checks and load balancers probe, which rarely carry a secret,
//! and they say only whether the game runs and is ready. A non-loopback address without a
//! token is refused at start (see `config`).
//!
//! **Limits: no client can tie the API up.** HTTP/1.1 keep-alive, with every step of an
//! exchange bounded ([`server`]):
//! - a request head must arrive within 5 s of the connection opening or of the previous
//!   answer (so an idle keep-alive connection lasts 5 s), and be at most 16 KiB (431 beyond);
//! - a request body must arrive within 5 s of its head (408, and the connection is closed),
//!   and be at most 64 KiB (413);
//! - a client must take its answer within 10 s (a connection waiting that long with no
//!   request in progress is closed);
//! - a long poll or an event stream is an answer in progress, not a wait on the client:
//!   the 10 s above apply only while a line it sent has not been taken; at most
//!   [`MAX_WAITING_CLIENTS`] wait at once, each freed when answered or when its client goes;
//! - at most 512 connections are open at once. At the cap (or when the agent is out of file
//!   descriptors) a new connection is still accepted at once, and one open connection is
//!   closed to make room: of the client address holding the most connections, the one that
//!   has waited longest for its client ([`connections`]).
//!
//! "Per client" is therefore per connection on loopback, where every local process is
//! 127.0.0.1: each connection has the budgets above, and under a flood the newest
//! connections — a request being made now, such as the game's match end — are the last to
//! be closed. A client that keeps a connection open between requests should reconnect when
//! it finds it closed. Memory stays bounded: at worst each open connection holds a head
//! buffer and a body under the limits (measured in `tests/storms.rs`, figure in the README).

// A handler step's `Err` is the finished error response; boxing it would buy nothing here.
#[allow(clippy::result_large_err)]
mod commands;
pub mod connections;
#[allow(clippy::result_large_err)]
mod json;
mod metrics;
#[allow(clippy::result_large_err)]
mod routes;
pub mod server;
mod state;
pub mod stream;
mod waiting;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tracing::warn;

pub use commands::{check_player_id, MAX_PLAYER_ID_BYTES, MAX_REASON_BYTES};
pub use json::{json_response, read_body, BodyTimeout, ResponseBody, MAX_BODY_BYTES};
pub use metrics::{ConnectionCut, Metrics};
pub use routes::{handle, Route};
pub use server::Limits;
pub use state::{ApiState, ApiToken, JoinRefused, Joined};
pub use stream::{json_lines, LineSender, WaitingClients, WaitingSlot, MAX_WAITING_CLIENTS};
pub use waiting::{StatusQuery, MAX_STATUS_WAIT};

/// The address the local API listens on by default; its URL is given to the game as
/// `EDGEGAP_AGENT_URL`.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:7070";
/// The port of [`DEFAULT_API_ADDR`].
pub const DEFAULT_API_PORT: u16 = 7070;

/// How long a client has to send a whole request head.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client has to send a request body, once its head has arrived.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client has to take its answer.
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// The most connections open at once.
pub const MAX_CONNECTIONS: usize = 512;
/// The largest request head accepted, in bytes.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

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

/// Where the API is to listen, as the options said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenAddr {
    /// The user chose this address (`--api-addr` or its variable): it is bound or the agent
    /// stops (exit 64).
    Given(SocketAddr),
    /// Nothing was chosen: [`DEFAULT_API_ADDR`] if it is free and not one of the game's
    /// mapped ports, else a free loopback port.
    Default,
}

/// A listening socket, not yet served.
pub struct BoundApi {
    listener: TcpListener,
    addr: SocketAddr,
    limits: Limits,
}

/// How many connections the kernel may hold for the API before it accepts them (capped by
/// `net.core.somaxconn`). The standard 128 overflows under a flood of reconnecting clients,
/// and a connection refused from a full queue waits a whole second for its SYN to be sent
/// again: the game's match end among them.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds the API's listening socket (port 0 picks a free port; see [`BoundApi::local_addr`]).
pub async fn bind(addr: SocketAddr) -> Result<BoundApi, ApiError> {
    let bind_error = |source| ApiError::Bind { addr, source };
    let listener = listen(addr).map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    Ok(BoundApi {
        listener,
        addr,
        limits: Limits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            answer_timeout: DEFAULT_ANSWER_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            max_head_bytes: MAX_HEAD_BYTES,
        },
    })
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: an agent restarted in place rebinds at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Binds where `addr` says. The default address gives way, with a warning, to a free
/// loopback port (see [`bind_default_port`]): a default the user never chose must not stop
/// the container. The game learns the address actually bound from `EDGEGAP_AGENT_URL`.
pub async fn bind_listen(addr: ListenAddr, mapped_ports: &[u16]) -> Result<BoundApi, ApiError> {
    if let ListenAddr::Given(addr) = addr {
        return bind(addr).await;
    }
    let (bound, gave_way) = bind_default_port(DEFAULT_API_PORT, mapped_ports).await?;
    if let Some(why) = gave_way {
        warn!(
            default = %SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_API_PORT)),
            addr = %bound.local_addr(),
            "the default local API address {why}: listening on {} instead (the game gets it as EDGEGAP_AGENT_URL; set --api-addr to choose)",
            bound.local_addr()
        );
    }
    Ok(bound)
}

/// Binds 127.0.0.1:`port`, a default the user did not choose, unless it is one of
/// `mapped_ports` (the game's internal ports: the game will bind it) or cannot be bound
/// (another agent, or any other process, holds it); then a free loopback port. Returns the
/// socket and, when the default gave way, why (`"127.0.0.1:7070 cannot be bound (...)"`), for
/// the caller to say in its warning. The local API and the Agones SDK API both bind so.
pub async fn bind_default_port(
    port: u16,
    mapped_ports: &[u16],
) -> Result<(BoundApi, Option<String>), ApiError> {
    let default = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let unusable = if mapped_ports.contains(&port) {
        "is an internal port of the deployment's port mapping (ARBITRIUM_PORTS_MAPPING)".to_owned()
    } else {
        match bind(default).await {
            Ok(bound) => return Ok((bound, None)),
            Err(ApiError::Bind { source, .. }) => format!("cannot be bound ({source})"),
        }
    };
    let bound = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    Ok((bound, Some(format!("{default} {unusable}"))))
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
        self.limits.header_read_timeout = timeout;
        self
    }

    /// Replaces [`DEFAULT_BODY_READ_TIMEOUT`].
    pub fn with_body_read_timeout(mut self, timeout: Duration) -> BoundApi {
        self.limits.body_read_timeout = timeout;
        self
    }

    /// Replaces [`DEFAULT_ANSWER_TIMEOUT`].
    pub fn with_answer_timeout(mut self, timeout: Duration) -> BoundApi {
        self.limits.answer_timeout = timeout;
        self
    }

    /// Replaces [`MAX_CONNECTIONS`] (at least 1).
    pub fn with_max_connections(mut self, max: usize) -> BoundApi {
        self.limits.max_connections = max.max(1);
        self
    }

    /// The limits the server will apply.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Serves until `shutdown` completes; then stops accepting and lets open connections
    /// finish their current request. In the agent, `shutdown` never completes: the API serves
    /// until the process exits.
    pub async fn serve(self, state: Arc<ApiState>, shutdown: impl Future<Output = ()>) {
        let metrics = Arc::clone(&state.metrics);
        self.serve_with(state, metrics, shutdown).await;
    }

    /// Serves another [`server::Handler`] within the same limits (the Agones SDK routes),
    /// counting its connections in `metrics`.
    pub async fn serve_with<H: server::Handler>(
        self,
        handler: Arc<H>,
        metrics: Arc<Metrics>,
        shutdown: impl Future<Output = ()>,
    ) {
        server::serve(self.listener, self.limits, handler, metrics, shutdown).await;
    }
}
