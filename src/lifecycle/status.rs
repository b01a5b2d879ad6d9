//! The status the supervisor publishes from the machine (through a `watch` channel) and the
//! API reads: where the game is in its life ([`Lifecycle`]), with the counters and flags a
//! caller of `GET /v1/status` sees. Time-dependent fields (uptime, time left before the kill)
//! are computed when the status is shown.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::machine::State;

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
    /// `idle_timeout`, `empty_timeout`, `max_match_duration`,
    /// `heartbeat_timeout` in sidecar mode).
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

    /// What the API shows of the machine's `state`; a stop's deadline is its kill timer's
    /// (`kill_deadline`, or now when none runs).
    pub fn of(state: &State, kill_deadline: Option<Instant>) -> Lifecycle {
        match state {
            State::Starting => Lifecycle::Starting,
            State::Running => Lifecycle::Running,
            State::Restarting => Lifecycle::Restarting,
            State::Ending(reason) => Lifecycle::Ending {
                trigger: reason.trigger().to_owned(),
                reason: reason.detail(),
            },
            State::Stopping { .. } => {
                Lifecycle::stopping_at(kill_deadline.unwrap_or_else(Instant::now))
            }
            State::Exited(code) => Lifecycle::Exited { code: *code },
        }
    }

    /// `Stopping` with the given deadline, also as wall-clock time.
    pub fn stopping_at(deadline: Instant) -> Lifecycle {
        let left = deadline.saturating_duration_since(Instant::now());
        Lifecycle::Stopping {
            deadline,
            deadline_unix_ms: SystemTime::now()
                .checked_add(left)
                .map_or(u64::MAX, unix_ms),
        }
    }
}

/// The agent's state as published by the supervisor.
#[derive(Debug, Clone, Serialize)]
pub struct AgentStatus {
    /// Grows by one with every change the supervisor publishes (not with heartbeats, whose
    /// time is shown as an age): `GET /v1/status?wait=..&after=<version>` waits for a newer one.
    pub version: u64,
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
    /// Where the self-stop is: `null` until it has an answer, then `"accepted"` or
    /// `"failed: <why>"`.
    pub self_stop: SelfStopProgress,
    /// When the game last sent a heartbeat.
    #[serde(skip)]
    pub last_heartbeat: Option<Instant>,
    /// How many players are connected.
    pub players: usize,
    /// Sidecar mode with no watched process: the game runs beside the agent, its pid unknown;
    /// `/healthz` and `/readyz` take it as running while the match is.
    #[serde(skip)]
    pub game_unwatched: bool,
}

impl AgentStatus {
    /// The status of an agent that just started: no game yet.
    pub fn starting() -> AgentStatus {
        AgentStatus {
            version: 1,
            lifecycle: Lifecycle::Starting,
            child_pid: None,
            started_at: Instant::now(),
            restarts: 0,
            ready: false,
            self_stop: SelfStopProgress::NotCalled,
            last_heartbeat: None,
            players: 0,
            game_unwatched: false,
        }
    }

    /// The status once the game's match end (`POST /v1/match/end`) is handled, as the machine
    /// will publish it: a starting, running or restarting game moves to `ending` (the first
    /// reason wins); later states are not rolled back. The API answers the request with it
    /// without waiting for the supervisor.
    pub fn with_match_ended_by_game(mut self, reason: Option<&str>) -> AgentStatus {
        let in_play = matches!(
            self.lifecycle,
            Lifecycle::Starting | Lifecycle::Running | Lifecycle::Restarting
        );
        if in_play {
            self.lifecycle = Lifecycle::Ending {
                trigger: "api".to_owned(),
                reason: reason.unwrap_or("the game ended the match").to_owned(),
            };
        }
        self
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

/// Where the one self-stop of a match is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfStopProgress {
    NotCalled,
    /// Called; the platform client is still trying.
    InFlight,
    /// The platform accepted it (or the deployment was already gone): its SIGTERM will come.
    Accepted,
    /// It will not happen, and why (rejected, given up, not configured).
    Failed(String),
}

impl Serialize for SelfStopProgress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            SelfStopProgress::NotCalled | SelfStopProgress::InFlight => serializer.serialize_none(),
            SelfStopProgress::Accepted => serializer.serialize_str("accepted"),
            SelfStopProgress::Failed(why) => serializer.serialize_str(&format!("failed: {why}")),
        }
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
        let running = AgentStatus {
            lifecycle: Lifecycle::Running,
            ..AgentStatus::starting()
        };
        let ended = running
            .with_match_ended_by_game(Some("first"))
            .with_match_ended_by_game(Some("second"));
        assert_eq!(
            ended.lifecycle,
            Lifecycle::Ending {
                trigger: "api".into(),
                reason: "first".into()
            }
        );
        let restarting = AgentStatus {
            lifecycle: Lifecycle::Restarting,
            ..AgentStatus::starting()
        };
        let ended = restarting.with_match_ended_by_game(Some("during a restart"));
        assert_eq!(ended.lifecycle.name(), "ending");
        let exited = AgentStatus {
            lifecycle: Lifecycle::Exited { code: 0 },
            ..AgentStatus::starting()
        };
        let late = exited.with_match_ended_by_game(Some("late"));
        assert_eq!(late.lifecycle, Lifecycle::Exited { code: 0 });
        assert_eq!(
            AgentStatus::starting()
                .with_match_ended_by_game(None)
                .lifecycle,
            Lifecycle::Ending {
                trigger: "api".into(),
                reason: "the game ended the match".into()
            }
        );
    }

    #[test]
    fn the_self_stop_shows_only_once_it_has_an_answer() {
        let shown = |progress| serde_json::to_value(progress).unwrap();
        assert_eq!(shown(SelfStopProgress::NotCalled), Value::Null);
        assert_eq!(shown(SelfStopProgress::InFlight), Value::Null);
        assert_eq!(shown(SelfStopProgress::Accepted), json!("accepted"));
        assert_eq!(
            shown(SelfStopProgress::Failed("gave up".into())),
            json!("failed: gave up")
        );
    }
}
