//! What the API shares with the rest of the agent, and who owns each part.
//!
//! - [`GameRequest`]: the only way a request changes anything. Handlers validate, then send a
//!   request to the supervisor over an unbounded channel; they never touch the game's process
//!   or the platform.
//! - [`AgentStatus`]: owned and published by the supervisor through a `watch` channel; the API
//!   only reads it (`borrow()`), and computes time-dependent fields (uptime, milliseconds left
//!   before the kill) at request time.
//! - The set of connected players is the one [`Roster`], shared with the supervisor
//!   ([`ApiState::roster`]). The API is its only writer of joins and leaves, so a
//!   connect/disconnect response is exact; it sends `PlayerConnected` / `PlayerDisconnected`
//!   to the supervisor only when the set actually changed, and the supervisor reads the
//!   roster's size for the machine (the idle timeout). The supervisor empties it when the game
//!   is restarted in place: no copy exists that could drift from it.

use std::collections::BTreeSet;
use std::sync::{Arc, MutexGuard, RwLock};

use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::metrics::Metrics;
use super::stream::WaitingClients;
use crate::lifecycle::{AgentStatus, GameRequest, Roster};

/// The local API token. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn new(token: String) -> ApiToken {
        ApiToken(token)
    }

    /// The token itself, to hand to the game as `EDGEGAP_AGENT_API_TOKEN`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares `offered` with the token in time that depends only on the token's length.
    pub fn matches(&self, offered: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        let mut diff = expected.len() ^ offered.len();
        for (i, byte) in expected.iter().enumerate() {
            diff |= usize::from(byte ^ offered.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// Everything a request handler can see.
pub struct ApiState {
    pub requests: mpsc::UnboundedSender<GameRequest>,
    pub status: watch::Receiver<AgentStatus>,
    /// The deployment context served by `GET /v1/deployment` (never holds a token): the
    /// environment's view at first, replaced once the platform's context has been fetched.
    deployment: RwLock<Arc<Value>>,
    pub token: Option<ApiToken>,
    /// `--api-guard-reads`: the GET routes that show the match need the token too.
    pub guard_reads: bool,
    /// `--ready-on-ports`: the internal TCP ports probed by `GET /readyz`; `None` when off.
    pub ready_ports: Option<Vec<u16>>,
    pub metrics: Arc<Metrics>,
    /// The clients waiting for a status change (long polls and event streams), bounded.
    pub waiting: WaitingClients,
    players: Roster,
}

impl ApiState {
    /// Builds the state; every key of `deployment` whose name contains "token" is removed, so
    /// a secret handed in by mistake is never served.
    pub fn new(
        requests: mpsc::UnboundedSender<GameRequest>,
        status: watch::Receiver<AgentStatus>,
        mut deployment: Value,
        token: Option<ApiToken>,
        ready_ports: Option<Vec<u16>>,
        metrics: Arc<Metrics>,
    ) -> ApiState {
        strip_tokens(&mut deployment);
        ApiState {
            requests,
            status,
            deployment: RwLock::new(Arc::new(deployment)),
            token,
            guard_reads: false,
            ready_ports,
            metrics,
            waiting: WaitingClients::default(),
            players: Roster::default(),
        }
    }

    /// With `guard` (and a token), the GET routes that show the match (`/v1/deployment`,
    /// `/v1/status`, `/v1/players`, `/metrics`) need the bearer token as the POST routes do.
    pub fn with_guarded_reads(mut self, guard: bool) -> ApiState {
        self.guard_reads = guard;
        self
    }

    /// The deployment context as `GET /v1/deployment` serves it now.
    pub fn deployment(&self) -> Arc<Value> {
        self.deployment
            .read()
            .map(|d| Arc::clone(&d))
            .unwrap_or_else(|poisoned| Arc::clone(&poisoned.into_inner()))
    }

    /// Replaces the deployment context (tokens stripped, as in [`ApiState::new`]).
    pub fn set_deployment(&self, mut deployment: Value) {
        strip_tokens(&mut deployment);
        let mut slot = self
            .deployment
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Arc::new(deployment);
    }

    /// The connected players, locked.
    pub fn players(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.players.lock()
    }

    /// The roster itself, to share with the supervisor.
    pub fn roster(&self) -> Roster {
        self.players.clone()
    }

    /// Connects player `id` (already validated) to the one roster and tells the supervisor,
    /// unless `capacity` is given and reached by other players. `POST /v1/players/connect`
    /// and the Agones SDK's `PlayerConnect` both come here, so idle and empty timeouts see
    /// every player whichever way it joined.
    pub fn connect_player(&self, id: &str, capacity: Option<usize>) -> Result<Joined, JoinRefused> {
        let mut players = self.players();
        if players.contains(id) {
            return Ok(Joined {
                new: false,
                count: players.len(),
            });
        }
        if capacity.is_some_and(|capacity| players.len() >= capacity) {
            return Err(JoinRefused::Full);
        }
        players.insert(id.to_owned());
        if self
            .requests
            .send(GameRequest::PlayerConnected(id.to_owned()))
            .is_err()
        {
            players.remove(id);
            return Err(JoinRefused::AgentExiting);
        }
        Ok(Joined {
            new: true,
            count: players.len(),
        })
    }

    /// Disconnects player `id` and tells the supervisor: `Ok(None)` if it was not connected,
    /// else `Ok(Some(count))` with the players left.
    pub fn disconnect_player(&self, id: &str) -> Result<Option<usize>, JoinRefused> {
        let mut players = self.players();
        if !players.remove(id) {
            return Ok(None);
        }
        if self
            .requests
            .send(GameRequest::PlayerDisconnected(id.to_owned()))
            .is_err()
        {
            players.insert(id.to_owned());
            return Err(JoinRefused::AgentExiting);
        }
        Ok(Some(players.len()))
    }
}

/// A player connected: whether it was new, and how many players are connected now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    pub new: bool,
    pub count: usize,
}

/// Why a player's connect or disconnect changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefused {
    /// The capacity the caller gave is reached.
    Full,
    /// The supervisor no longer takes requests.
    AgentExiting,
}

fn strip_tokens(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !key.to_ascii_lowercase().contains("token"));
            map.values_mut().for_each(strip_tokens);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_tokens),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_token_matches_only_itself() {
        let token = ApiToken::new("abc".into());
        assert!(token.matches(b"abc"));
        for other in [&b""[..], b"ab", b"abd", b"abcd", b"ABC"] {
            assert!(!token.matches(other), "{other:?}");
        }
    }

    #[test]
    fn tokens_are_stripped_from_the_deployment_at_any_depth() {
        let mut value = json!({"a": 1, "Token": 2, "x": [{"delete_token": 3, "b": 4}]});
        strip_tokens(&mut value);
        assert_eq!(value, json!({"a": 1, "x": [{"b": 4}]}));
    }
}
