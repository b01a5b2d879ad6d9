//! The lifecycle of a match, as one pure state machine: `handle(now, event) -> actions`.
//!
//! Every input — the game's exit, an OS signal, an API request, a log line, a timer, the
//! self-stop result — is an [`Event`]; every effect — signal or kill the game's group, start
//! or cancel a timer, call self-stop, restart the game, run the pre-stop hook, exit — is an
//! [`Action`] that the async driver (`supervisor/mod.rs`) carries out. Nothing in here touches
//! a process, a socket or a clock (`now` is passed in), so every transition is unit-tested
//! (`tests.rs`).
//!
//! ```text
//!            ready             match end (API, exit policy `stop`, log line,
//!  Starting ──────▶ Running    idle, empty, max match duration)
//!     │  ▲             │  ─────────────────────────────────────────▶ Ending ──┐
//!     │  │ restart     │ exit policy `restart` (within budget)    self-stop  │ SIGTERM, or
//!     │  └─ Restarting ◀┘                                         failed, or │ --self-stop-wait
//!     │                                                          ◀──────────┘ passed
//!     └── SIGTERM/SIGINT (any state) ──▶ Stopping ──▶ Exited(code)
//!                                        stop signal, then SIGKILL at grace - margin
//! ```
//!
//! | state      | event                          | actions                                         | next       |
//! |------------|--------------------------------|-------------------------------------------------|------------|
//! | Starting   | API ready                      | start the empty timer (if set)                  | Running    |
//! | Start/Run  | game exited, policy `exit`     | exit with the code (remapped)                   | Exited     |
//! | Start/Run  | game exited, policy `stop`     | end the match (below)                           | Ending     |
//! | Start/Run  | game exited, policy `restart`  | backoff timer, or the fallback if over budget   | Restarting |
//! | Restarting | backoff timer                  | start the game again (no players survive it)    | Starting   |
//! | Start/Run  | match end (API, log, timers)   | call self-stop once (after the game's delay)    | Ending     |
//! | Ending     | self-stop accepted             | start the self-stop wait                        | Ending     |
//! | Ending     | self-stop failed for good      | stop the game; exit code will be 0              | Stopping   |
//! | Ending     | self-stop wait passed          | stop the game                                   | Stopping   |
//! | any alive  | SIGTERM / SIGINT               | pre-stop hook, stop signal, kill timer          | Stopping   |
//! | Stopping   | SIGTERM / SIGINT again         | stop signal again; the kill timer is not reset  | Stopping   |
//! | Stopping   | kill timer                     | SIGKILL the group (or exit, the group gone)     | Stopping   |
//! | Stopping   | game exited                    | exit with its code (0 if self-stop failed), or, | Exited     |
//! |            |                                | its group left or self-stop in flight, wait     | Stopping   |
//! | Stopping   | the group is gone              | exit with the game's code, unless self-stop is  | Exited     |
//! |            |                                | in flight (and the kill timer has not fired)    |            |
//! | Stopping   | self-stop answered, game gone  | exit with the game's code (its group gone)      | Exited     |
//! | Start/Run  | no heartbeat for the timeout   | SIGKILL the group; its exit counts as code 124  | (policy)   |
//! | any alive  | SIGINT                         | as SIGTERM, but the game gets INT (or its map)  | Stopping   |
//! | alive      | other forwarded signal         | forward it (rewritten if mapped)                | same       |
//! | alive      | SIGTSTP / SIGTTIN / SIGTTOU    | forward it, then suspend the agent (not PID 1)  | same       |
//! | exiting    | game exited, its group not     | stop signal to the group, kill timer            | Stopping   |
//! | Restarting | restart could not spawn        | exit with the agent's code (126/127/70), as is  | Exited     |
//!
//! "Exiting" is every row above that exits: the agent never exits while processes the game
//! left in its process group run on. They get the stop signal and what is left of the grace
//! period (a stop already under way keeps its kill timer), then SIGKILL; the exit follows
//! once the group is empty. (A game restarted in place leaves its old group alone.)
//!
//! Self-stop is called at most once, and the machine never exits while it is in flight
//! unless the grace period (minus the kill margin) of a stop has run out: exiting is what
//! makes `restart_policy: always` start a new match. Its retries are bounded by the platform
//! client's deadline, which ends in `SelfStopFailed`; `--self-stop-wait` counts from the
//! platform's acceptance, so it never cuts the retries short. Every stop starts the kill
//! timer; every duration is taken as given (the driver's timers cannot overflow).

use std::time::Duration;

use nix::sys::signal::Signal;

use super::event::{Event, Timer};
use super::policy::{OnExitPolicy, RestartBudget};
use super::status::SelfStopProgress;
use crate::exit_code::{self, ExitCodeMap};
use crate::units::SignalMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    SignalGroup(Signal),
    KillGroup,
    StartTimer(Timer, Duration),
    CancelTimer(Timer),
    CallSelfStop,
    SpawnChild,
    /// Run `--pre-stop`, bounded by this long; `PreStopHookFinished` follows.
    RunPreStopHook(Duration),
    /// Stop the agent itself until SIGCONT (job control, after forwarding SIGTSTP, SIGTTIN or
    /// SIGTTOU); never decided when the agent is PID 1.
    SuspendSelf,
    /// A decision worth one log line (and a status field): the driver logs it at info.
    Note(String),
    Exit(i32),
}

/// Why the match is ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// `POST /v1/match/end`, with the game's reason if it gave one.
    Api(Option<String>),
    /// The game exited with a code the `--on-exit` policy maps to `stop`.
    GameExited(i32),
    LogLine(String),
    Idle,
    Empty,
    MaxMatchDuration,
    /// Sidecar mode: the game's heartbeats stopped (the agent cannot kill a game it did not
    /// start, so it ends the match instead).
    HeartbeatLost,
}

impl EndReason {
    /// A stable name for what ended the match (for the API and metrics).
    pub fn trigger(&self) -> &'static str {
        match self {
            EndReason::Api(_) => "api",
            EndReason::GameExited(_) => "exit_code",
            EndReason::LogLine(_) => "log_line",
            EndReason::Idle => "idle_timeout",
            EndReason::Empty => "empty_timeout",
            EndReason::MaxMatchDuration => "max_match_duration",
            EndReason::HeartbeatLost => "heartbeat_timeout",
        }
    }

    /// The reason in words: the game's own for an API end, else a description.
    pub fn detail(&self) -> String {
        match self {
            EndReason::Api(Some(reason)) => reason.clone(),
            other => other.to_string(),
        }
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::Api(Some(reason)) => write!(f, "the game ended the match: {reason}"),
            EndReason::Api(None) => write!(f, "the game ended the match"),
            EndReason::GameExited(code) => write!(f, "the game exited with code {code}"),
            EndReason::LogLine(line) => write!(f, "log line matched: {line}"),
            EndReason::Idle => write!(f, "no players left for the idle timeout"),
            EndReason::Empty => write!(f, "no player joined within the empty timeout"),
            EndReason::MaxMatchDuration => write!(f, "maximum match duration reached"),
            EndReason::HeartbeatLost => {
                write!(f, "no heartbeat from the game for the heartbeat timeout")
            }
        }
    }
}

/// Why the game is being stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopCause {
    Signal(Signal),
    /// The match ended and the platform's SIGTERM did not come within `--self-stop-wait`.
    SelfStopWaitPassed(EndReason),
    /// The match ended and self-stop failed for good.
    SelfStopFailed(EndReason),
    /// The game exited with this code and left processes in its group.
    LeftInGroup(i32),
}

impl std::fmt::Display for StopCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopCause::Signal(signal) => write!(f, "{} received", signal.as_str()),
            StopCause::SelfStopWaitPassed(reason) => {
                write!(
                    f,
                    "{reason}; no SIGTERM from the platform within --self-stop-wait"
                )
            }
            StopCause::SelfStopFailed(reason) => write!(f, "{reason}; self-stop failed"),
            StopCause::LeftInGroup(code) => write!(
                f,
                "the game exited with code {code}, leaving processes in its process group"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// The game runs and has not said it is ready.
    Starting,
    /// The game runs and is ready.
    Running,
    /// The game exited; it is restarted when the backoff timer fires.
    Restarting,
    /// The match is over: self-stop was called, the platform's SIGTERM is awaited.
    Ending(EndReason),
    /// The game was sent the stop signal and is SIGKILLed when the kill timer fires.
    Stopping {
        cause: StopCause,
        killed: bool,
    },
    Exited(i32),
}

/// Everything the machine needs from the options, free of clap.
#[derive(Debug, Clone)]
pub struct MachineOptions {
    pub stop_signal: Signal,
    pub forward_signal_map: SignalMap,
    /// Grace period minus kill margin.
    pub kill_after: Duration,
    pub exit_code_map: ExitCodeMap,
    pub on_exit: OnExitPolicy,
    pub restart: RestartBudget,
    pub idle_timeout: Option<Duration>,
    pub empty_timeout: Option<Duration>,
    pub max_match_duration: Option<Duration>,
    pub heartbeat_timeout: Option<Duration>,
    pub self_stop_wait: Duration,
    pub pre_stop_hook: bool,
    /// The agent is PID 1: job control must not suspend it (a container would freeze).
    pub is_pid1: bool,
    /// Sidecar mode: the "game" is a process the agent did not start (or none it knows of).
    /// It is never signalled; its end counts as exit code 0; lost heartbeats end the match;
    /// a stop exits as soon as no self-stop is in flight, and waits for one at most
    /// `kill_after` (see `sidecar.rs`).
    pub sidecar: bool,
}

pub struct Machine {
    options: MachineOptions,
    state: State,
    now: Duration,
    child_alive: bool,
    /// The game's process group has a process in it (the game, or what it left).
    group_alive: bool,
    /// The code the game last exited with.
    exited_code: Option<i32>,
    /// `exited_code` is the agent's own (a restart could not start the game): not remapped.
    exited_code_is_agents: bool,
    started_once: bool,
    /// The game said it is ready (since its last start).
    ready: bool,
    restart_times: Vec<Duration>,
    /// How many players the roster holds (the API's set is the one truth; see `Roster`).
    players: usize,
    any_player_joined: bool,
    self_stop: SelfStopProgress,
    exit_override: Option<i32>,
    hung: bool,
    /// The stop signal held back while the pre-stop hook runs.
    signal_after_hook: Option<Signal>,
    /// The signal the current stop sends (for a game started while it runs).
    stop_signal_sent: Option<Signal>,
}

mod endings;
mod sidecar;
mod transitions;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_sidecar;
#[cfg(test)]
mod tests_signals;

impl Machine {
    pub fn new(options: MachineOptions) -> Self {
        Machine {
            options,
            state: State::Starting,
            now: Duration::ZERO,
            child_alive: false,
            group_alive: false,
            exited_code: None,
            exited_code_is_agents: false,
            started_once: false,
            ready: false,
            restart_times: Vec::new(),
            players: 0,
            any_player_joined: false,
            self_stop: SelfStopProgress::NotCalled,
            exit_override: None,
            hung: false,
            signal_after_hook: None,
            stop_signal_sent: None,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// How many players the machine last heard the roster holds.
    pub fn players(&self) -> usize {
        self.players
    }

    pub fn restarts(&self) -> usize {
        self.restart_times.len()
    }

    pub fn self_stop(&self) -> &SelfStopProgress {
        &self.self_stop
    }

    /// Whether the game said it is ready since it last (re)started.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Feeds one event, `now` being the time since the agent started.
    pub fn handle(&mut self, now: Duration, event: Event) -> Vec<Action> {
        self.now = now;
        let mut actions = Vec::new();
        if !matches!(self.state, State::Exited(_)) {
            self.dispatch(event, &mut actions);
        }
        actions
    }
}

/// SIGTERM (the platform's and Docker's stop) and SIGINT (Ctrl-C) ask the agent to stop.
fn is_stop_request(signal: Signal) -> bool {
    matches!(signal, Signal::SIGTERM | Signal::SIGINT)
}

/// What a stop by `signal` sends the game: SIGTERM sends the stop signal (`--stop-signal`),
/// SIGINT sends SIGINT, as an interactive Ctrl-C would; a `--forward-signal-map` rewrite of
/// either wins.
fn stop_signal_for(signal: Signal, options: &MachineOptions) -> Signal {
    match (options.forward_signal_map.rewrite(signal), signal) {
        (Some(rewritten), _) => rewritten,
        (None, Signal::SIGTERM) => options.stop_signal,
        (None, other) => other,
    }
}

/// The code an exit policy sees for a game killed because its heartbeats stopped.
pub const HUNG_CODE: i32 = exit_code::HUNG;
