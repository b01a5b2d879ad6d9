//! What the API shares with the rest of the agent, and who owns each part.
//!
//! - [`ApiCommand`]: the only way a request changes anything. Handlers validate, then send a
//!   command to the supervisor over an unbounded channel; they never touch the game's process
//!   or the platform.
//! - [`AgentStatus`]: owned and published by the supervisor through a `watch` channel; the API
//!   only reads it (`borrow()`), and computes time-dependent fields (uptime, milliseconds left
//!   before the kill) at request time. The supervisor derives it from its lifecycle machine;
//!   [`AgentStatus::apply`] is the API's own prediction of what a command does to it, for the
//!   match-end answer (which must not wait for the supervisor) and the in-process tests.
//! - The set of connected players is owned by the API ([`ApiState::players`]): it is the only
//!   writer, so a connect/disconnect response is exact. It sends `PlayerConnected` /
//!   `PlayerDisconnected` to the supervisor only when the set actually changed, so the
//!   supervisor's count (in `AgentStatus::players`, for the idle timeout) follows it exactly.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::metrics::Metrics;

/// A message from the API to the supervisor: the lifecycle machine's own API event, so a
/// request becomes a machine event without translation.
pub use crate::supervisor::machine::ApiEvent as ApiCommand;

/// Where the agent is in the game's life, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Lifecycle {
    /// The game is starting: not started yet, or running and not yet ready.
    Starting,
    /// The game runs and said it is ready.
    Running,
    /// The game exited and is about to be started again (`--on-exit ...=restart`).
    Restarting,
    /// The match is over; self-stop is called (after the game's delay) and the platform's
    /// SIGTERM awaited. `trigger` names what ended it (`api`, `exit_code`, `log_line`,
    /// `idle_timeout`, `empty_timeout`, `max_match_duration`).
    Ending { trigger: String, reason: String },
    /// The stop signal was sent; the game is killed at `deadline` if still running.
    Stopping {
        #[serde(skip)]
        deadline: Instant,
        /// The same deadline as wall-clock time, milliseconds since the Unix epoch.
        deadline_unix_ms: u64,
    },
    /// The game ended; the agent exits with `code`.
    Exited { code: i32 },
}

impl Lifecycle {
    /// Every state's name, in order: the label values of the lifecycle metric.
    pub const NAMES: [&'static str; 6] = [
        "starting",
        "running",
        "restarting",
        "ending",
        "stopping",
        "exited",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Lifecycle::Starting => "starting",
            Lifecycle::Running => "running",
            Lifecycle::Restarting => "restarting",
            Lifecycle::Ending { .. } => "ending",
            Lifecycle::Stopping { .. } => "stopping",
            Lifecycle::Exited { .. } => "exited",
        }
    }

    /// `Stopping` with a deadline `after` from now, in both clocks.
    pub fn stopping_in(after: Duration) -> Lifecycle {
        Lifecycle::stopping_at(Instant::now() + after)
    }

    /// `Stopping` with the given deadline, also as wall-clock time.
    pub fn stopping_at(deadline: Instant) -> Lifecycle {
        let left = deadline.saturating_duration_since(Instant::now());
        Lifecycle::Stopping {
            deadline,
            deadline_unix_ms: unix_ms(SystemTime::now() + left),
        }
    }
}

/// The agent's state as published by the supervisor.
#[derive(Debug, Clone, Serialize)]
pub struct AgentStatus {
    #[serde(flatten)]
    pub lifecycle: Lifecycle,
    /// The game's pid while it runs.
    pub child_pid: Option<i32>,
    /// When the agent started (for uptime).
    #[serde(skip)]
    pub started_at: Instant,
    /// How many times the game was restarted in place.
    pub restarts: u32,
    /// The game said it is ready (`POST /v1/ready`).
    pub ready: bool,
    /// The outcome of the self-stop call, once there is one (filled by the platform side).
    pub self_stop: Option<String>,
    /// When the game last sent a heartbeat.
    #[serde(skip)]
    pub last_heartbeat: Option<Instant>,
    /// How many players are connected.
    pub players: usize,
}

impl AgentStatus {
    /// The status of an agent that just started: no game yet.
    pub fn starting() -> AgentStatus {
        AgentStatus {
            lifecycle: Lifecycle::Starting,
            child_pid: None,
            started_at: Instant::now(),
            restarts: 0,
            ready: false,
            self_stop: None,
            last_heartbeat: None,
            players: 0,
        }
    }

    /// What a command from the API does to the status, as the lifecycle machine will publish
    /// it. A match end only moves a starting, running or restarting game to `ending` (the
    /// first reason wins); later states are not rolled back.
    pub fn apply(&mut self, command: &ApiCommand) {
        match command {
            ApiCommand::Ready => self.ready = true,
            ApiCommand::Heartbeat => self.last_heartbeat = Some(Instant::now()),
            ApiCommand::MatchEnd { reason, .. } => {
                let in_play = matches!(
                    self.lifecycle,
                    Lifecycle::Starting | Lifecycle::Running | Lifecycle::Restarting
                );
                if in_play {
                    self.lifecycle = Lifecycle::Ending {
                        trigger: "api".to_owned(),
                        reason: reason
                            .clone()
                            .unwrap_or_else(|| "the game ended the match".to_owned()),
                    };
                }
            }
            ApiCommand::PlayerConnected(_) => self.players += 1,
            ApiCommand::PlayerDisconnected(_) => self.players = self.players.saturating_sub(1),
        }
    }

    /// The status as `GET /v1/status` shows it, with the time-dependent fields computed now.
    pub fn to_json(&self) -> Value {
        let now = Instant::now();
        let mut value = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        if let Value::Object(map) = &mut value {
            map.insert(
                "uptime_ms".into(),
                json!(millis(now.saturating_duration_since(self.started_at))),
            );
            map.insert(
                "last_heartbeat_ms_ago".into(),
                json!(self
                    .last_heartbeat
                    .map(|at| millis(now.saturating_duration_since(at)))),
            );
            if let Lifecycle::Stopping { deadline, .. } = self.lifecycle {
                map.insert(
                    "ms_left".into(),
                    json!(millis(deadline.saturating_duration_since(now))),
                );
            }
        }
        value
    }
}

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
    pub commands: mpsc::UnboundedSender<ApiCommand>,
    pub status: watch::Receiver<AgentStatus>,
    /// The deployment context served by `GET /v1/deployment` (never holds a token): the
    /// environment's view at first, replaced once the platform's context has been fetched.
    deployment: RwLock<Arc<Value>>,
    pub token: Option<ApiToken>,
    /// `--ready-on-ports`: the internal TCP ports probed by `GET /readyz`; `None` when off.
    pub ready_ports: Option<Vec<u16>>,
    pub metrics: Arc<Metrics>,
    players: Mutex<BTreeSet<String>>,
}

impl ApiState {
    /// Builds the state; every key of `deployment` whose name contains "token" is removed, so
    /// a secret handed in by mistake is never served.
    pub fn new(
        commands: mpsc::UnboundedSender<ApiCommand>,
        status: watch::Receiver<AgentStatus>,
        mut deployment: Value,
        token: Option<ApiToken>,
        ready_ports: Option<Vec<u16>>,
        metrics: Arc<Metrics>,
    ) -> ApiState {
        strip_tokens(&mut deployment);
        ApiState {
            commands,
            status,
            deployment: RwLock::new(Arc::new(deployment)),
            token,
            ready_ports,
            metrics,
            players: Mutex::new(BTreeSet::new()),
        }
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

    /// The connected players. A panic while holding the lock cannot leave the set half-changed
    /// (each change is one insert or remove), so a poisoned lock is used as is.
    pub fn players(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.players
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
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

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map(millis).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_end_moves_running_to_ending_once_and_never_rolls_back_a_stop() {
        let mut status = AgentStatus::starting();
        status.lifecycle = Lifecycle::Running;
        let end = |reason: &str| ApiCommand::MatchEnd {
            reason: Some(reason.into()),
            delay: None,
        };
        status.apply(&end("first"));
        status.apply(&end("second"));
        assert_eq!(
            status.lifecycle,
            Lifecycle::Ending {
                trigger: "api".into(),
                reason: "first".into()
            }
        );
        let mut restarting = AgentStatus::starting();
        restarting.lifecycle = Lifecycle::Restarting;
        restarting.apply(&end("during a restart"));
        assert_eq!(restarting.lifecycle.name(), "ending");
        status.lifecycle = Lifecycle::Exited { code: 0 };
        status.apply(&end("late"));
        assert_eq!(status.lifecycle, Lifecycle::Exited { code: 0 });
        let mut status = AgentStatus::starting();
        status.apply(&ApiCommand::MatchEnd {
            reason: None,
            delay: None,
        });
        assert_eq!(
            status.lifecycle,
            Lifecycle::Ending {
                trigger: "api".into(),
                reason: "the game ended the match".into()
            }
        );
    }

    #[test]
    fn player_commands_count_and_never_go_below_zero() {
        let mut status = AgentStatus::starting();
        status.apply(&ApiCommand::PlayerConnected("a".into()));
        status.apply(&ApiCommand::PlayerConnected("b".into()));
        status.apply(&ApiCommand::PlayerDisconnected("a".into()));
        assert_eq!(status.players, 1);
        status.apply(&ApiCommand::PlayerDisconnected("b".into()));
        status.apply(&ApiCommand::PlayerDisconnected("b".into()));
        assert_eq!(status.players, 0);
    }

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
