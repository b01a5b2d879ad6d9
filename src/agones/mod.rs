//! The Agones SDK REST API (`--agones`), so a game written for Agones runs unchanged on
//! Edgegap: the routes of Agones's `sdk`, `alpha` (player tracking) and `beta` (Counters and
//! Lists) REST gateways, served beside the agent's own API on `--agones-addr` (default
//! [`DEFAULT_AGONES_ADDR`], Agones's own port), with the port given to the game as
//! `AGONES_SDK_HTTP_PORT`.
//!
//! | method | path | Edgegap meaning |
//! |--------|------|-----------------|
//! | POST | `/ready` | `POST /v1/ready` (also clears Allocated and Reserved) |
//! | POST | `/health` | `POST /v1/heartbeat` |
//! | POST | `/shutdown` | the match ends (`POST /v1/match/end`): self-stop, once however often it is called |
//! | POST | `/allocate`, `/reserve` `{"seconds"}` | the SDK's state only (no allocator on Edgegap) |
//! | GET | `/gameserver`, `/watch/gameserver` | the GameServer built from the deployment ([`gameserver`]); the watch streams it ([`watch`]) |
//! | PUT | `/metadata/label`, `/metadata/annotation` `{"key","value"}` | kept in the SDK state, shown in the GameServer (no Kubernetes object) |
//! | POST | `/alpha/player/connect`, `/disconnect` `{"playerID"}` | the agent's one roster, as `/v1/players/connect` / `disconnect` |
//! | GET | `/alpha/player/count`, `/connected`, `/connected/{playerID}` | the roster |
//! | GET, PUT | `/alpha/player/capacity` `{"count"}` | the SDK's capacity (0, the default, is no limit) |
//! | GET, PATCH | `/v1beta1/counters/{name}`, `/v1beta1/lists/{name}` | Counters and Lists in the SDK state |
//! | POST | `/v1beta1/lists/{name}:addValue`, `:removeValue` `{"value"}` | |
//!
//! `v1alpha1` works as `v1beta1`. Bodies and errors follow Agones's published swagger
//! (`tests/fixtures/agones_sdk_routes.json` lists the facts relied on); errors are
//! `{"code": <gRPC code>, "message", "details": []}`. The server is the agent API's
//! ([`crate::api::server`]): the same deadlines, connection cap and eviction. It has no token:
//! Agones's SDK clients send none, so it only listens on loopback (see `config`).

mod gameserver;
mod routes;
pub mod sdk;
mod watch;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::watch as channel;
use tokio::time::Instant;
use tracing::warn;

use crate::api::server::{Handler, ServedRequest};
use crate::api::{self, ApiError, ApiState, BoundApi, ResponseBody, WaitingClients};
use crate::lifecycle::GameRequest;
use sdk::{refuse, Code, Refusal, Sdk};

/// Where the Agones SDK API listens by default: Agones's own SDK port, on loopback.
pub const DEFAULT_AGONES_ADDR: &str = "127.0.0.1:9358";
/// The port of [`DEFAULT_AGONES_ADDR`].
pub const DEFAULT_AGONES_PORT: u16 = 9358;
/// The reason of the match end `/shutdown` sends.
pub const SHUTDOWN_REASON: &str = "the game called the Agones SDK's Shutdown";

/// Why the Agones SDK API could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgonesError {
    #[error("cannot bind the Agones SDK API to {addr} (--agones-addr / EDGEGAP_AGENT_AGONES_ADDR): {source}; the game server was not started")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl AgonesError {
    /// A bind failure is a configuration error: exit 64.
    pub fn exit_code(&self) -> i32 {
        crate::exit_code::USAGE
    }
}

/// Binds the Agones SDK API: at `given`, or else at [`DEFAULT_AGONES_ADDR`], which gives way
/// (with a warning) to a free loopback port when it is one of `mapped_ports` or taken: the
/// game learns the port from `AGONES_SDK_HTTP_PORT`.
pub async fn bind(
    given: Option<SocketAddr>,
    mapped_ports: &[u16],
) -> Result<BoundApi, AgonesError> {
    let bound = match given {
        Some(addr) => api::bind(addr).await.map(|bound| (bound, None)),
        None => api::bind_default_port(DEFAULT_AGONES_PORT, mapped_ports).await,
    };
    let (bound, gave_way) =
        bound.map_err(|ApiError::Bind { addr, source }| AgonesError::Bind { addr, source })?;
    if let Some(why) = gave_way {
        warn!(
            "the default Agones SDK address {why}: listening on {} instead (the game gets it as AGONES_SDK_HTTP_PORT; set --agones-addr to choose)",
            bound.local_addr()
        );
    }
    Ok(bound)
}

/// The Agones SDK service: the agent's API state, and the SDK's own.
pub struct Agones {
    api: Arc<ApiState>,
    sdk: Mutex<Sdk>,
    /// Bumped on every change of the SDK state or the roster made here (watch streams).
    changes: channel::Sender<u64>,
    /// The `/watch/gameserver` streams open, bounded.
    watchers: WaitingClients,
    created_unix: u64,
}

impl Agones {
    pub fn new(api: Arc<ApiState>) -> Agones {
        Agones {
            api,
            sdk: Mutex::new(Sdk::default()),
            changes: channel::Sender::new(0),
            watchers: WaitingClients::default(),
            created_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    fn sdk(&self) -> MutexGuard<'_, Sdk> {
        self.sdk
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn changed(&self) {
        self.changes
            .send_modify(|version| *version = version.wrapping_add(1));
    }

    fn change(&self, act: impl FnOnce(&mut Sdk)) {
        act(&mut self.sdk());
        self.changed();
    }

    fn try_change<T>(
        &self,
        act: impl FnOnce(&mut Sdk) -> Result<T, Refusal>,
    ) -> Result<T, Refusal> {
        let result = act(&mut self.sdk());
        if result.is_ok() {
            self.changed();
        }
        result
    }

    fn send(&self, request: GameRequest) -> Result<(), Refusal> {
        self.api.requests.send(request).map_err(|_| {
            refuse(
                Code::Unavailable,
                "the agent is exiting: it no longer takes requests",
            )
        })
    }

    /// The match end, sent the first time only: the agent self-stops once.
    fn shutdown(&self) -> Result<(), Refusal> {
        let first = !std::mem::replace(&mut self.sdk().shutdown, true);
        if first {
            let sent = self.send(GameRequest::MatchEnd {
                reason: Some(SHUTDOWN_REASON.to_owned()),
                delay: None,
            });
            if sent.is_err() {
                self.sdk().shutdown = false;
                return sent;
            }
            self.changed();
        }
        Ok(())
    }

    /// The GameServer now.
    fn game_server(&self) -> Value {
        self.snapshot().0
    }

    /// The GameServer now, and when a reservation will lapse on its own.
    fn snapshot(&self) -> (Value, Option<Instant>) {
        let deployment = self.api.deployment();
        let status = self.api.status.borrow().clone();
        let sdk = self.sdk();
        let players = self.api.players();
        let parts = gameserver::Parts {
            status: &status,
            sdk: &sdk,
            deployment: &deployment,
            players: &players,
            created_unix: self.created_unix,
        };
        let now = Instant::now();
        let lapse = sdk.reserve_ends().filter(|&at| at > now);
        (gameserver::game_server(&parts, now), lapse)
    }
}

impl Handler for Agones {
    type Body = ResponseBody;

    async fn handle(self: Arc<Self>, request: ServedRequest) -> hyper::Response<ResponseBody> {
        routes::handle(&self, request).await
    }
}
