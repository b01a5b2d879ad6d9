//! The machine's inputs: every [`Event`] the driver feeds it, the requests a game can make
//! ([`GameRequest`]) and the timers the machine runs ([`Timer`]).

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::exit_code::ChildOutcome;

/// The timers the machine can run; at most one of each kind at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// Grace period minus kill margin, from the start of a stop.
    Kill,
    RestartBackoff,
    /// `POST /v1/match/end` with a `delay`.
    MatchEndDelay,
    /// How long to wait for the platform's SIGTERM once it accepted the self-stop.
    SelfStopWait,
    Idle,
    Empty,
    MaxMatchDuration,
    Heartbeat,
}

/// What the game asks of the agent through the local API (or another way of speaking to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GameRequest {
    Ready,
    Heartbeat,
    MatchEnd {
        reason: Option<String>,
        delay: Option<Duration>,
    },
    /// A player joined or left. The API's [`Roster`](super::Roster) is the one set of
    /// players and is already changed when this is sent; the driver answers it by telling the
    /// machine the roster's size ([`Event::Players`]).
    PlayerConnected(String),
    PlayerDisconnected(String),
}

/// Everything that can happen to the match, as the machine's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The game (re)started.
    ChildStarted,
    /// A restart could not start the game; the code says why (126, 127, 70).
    ChildSpawnFailed(i32),
    ChildExited(ChildOutcome),
    /// How many players the roster holds now (after a join, a leave, or a restart's clear).
    Players(usize),
    Signal(Signal),
    Game(GameRequest),
    /// A line of the game's output matched `--end-on-log`.
    LogLineMatched(String),
    TimerFired(Timer),
    /// The platform accepted the self-stop (or the deployment is already gone): its SIGTERM
    /// will come.
    SelfStopAccepted,
    /// The self-stop will not happen: rejected, given up, or not configured (local mode).
    SelfStopFailed(String),
    PreStopHookFinished,
}
