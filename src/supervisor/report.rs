//! What both drivers (wrap and sidecar mode) tell the world about the machine: the status
//! the API serves, and a log line per request from the game.

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::lifecycle::{AgentStatus, GameRequest, Lifecycle, Machine, Roster};

/// Logs a request from the game, and keeps what only the driver knows (the heartbeat's
/// time) for the status.
pub(super) fn note_request(status: &watch::Sender<AgentStatus>, request: &GameRequest) {
    match request {
        GameRequest::Ready => info!("the game server says it is ready"),
        GameRequest::Heartbeat => {
            debug!("heartbeat from the game server");
            // Not a change of the status (its age is computed when shown): no version
            // bump, and no waiting client is woken for it.
            status.send_if_modified(|s| {
                s.last_heartbeat = Some(Instant::now());
                false
            });
        }
        GameRequest::MatchEnd { reason, delay } => info!(
            reason = reason.as_deref().unwrap_or("none given"),
            delay_ms = delay.map(|d| d.as_millis() as u64),
            "the game server reports the end of the match"
        ),
        GameRequest::PlayerConnected(id) => debug!(player = %id, "player connected"),
        GameRequest::PlayerDisconnected(id) => debug!(player = %id, "player disconnected"),
    }
}

/// Publishes the machine's state to the API, if it changed.
pub(super) fn publish(
    machine: &Machine,
    status: &watch::Sender<AgentStatus>,
    roster: &Roster,
    kill_deadline: Option<Instant>,
    child_pid: Option<i32>,
) {
    let lifecycle = Lifecycle::of(machine.state(), kill_deadline);
    let restarts = u32::try_from(machine.restarts()).unwrap_or(u32::MAX);
    let ready = machine.is_ready();
    let self_stop = machine.self_stop().clone();
    let players = roster.len();
    status.send_if_modified(|s| {
        // A stop's deadline is fixed once set: keep it, so the wall-clock copy is stable.
        let same_lifecycle = match (&s.lifecycle, &lifecycle) {
            (Lifecycle::Stopping { deadline: a, .. }, Lifecycle::Stopping { deadline: b, .. }) => {
                a == b
            }
            (a, b) => a == b,
        };
        let changed = !same_lifecycle
            || s.child_pid != child_pid
            || s.restarts != restarts
            || s.ready != ready
            || s.self_stop != self_stop
            || s.players != players;
        if changed {
            if !same_lifecycle {
                s.lifecycle = lifecycle;
            }
            s.child_pid = child_pid;
            s.restarts = restarts;
            s.ready = ready;
            s.self_stop = self_stop;
            s.players = players;
            s.version += 1;
        }
        changed
    });
}
