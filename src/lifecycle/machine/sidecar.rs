//! What changes when the agent runs beside a game it did not start (sidecar mode,
//! [`MachineOptions::sidecar`](super::MachineOptions)): the same machine, the watched process
//! (if any) as the "game", but no process group of its own and nothing ever signalled.
//!
//! - The watched process's end counts as exit code 0 (a process the agent did not start has
//!   no exit status for it); `--on-exit` decides, as in wrap mode, except that `restart`
//!   (refused by the options) falls back to the `*` action.
//! - Lost heartbeats end the match (trigger `heartbeat_timeout`) instead of killing the game.
//! - A stop (SIGTERM, SIGINT, the self-stop wait passed, a failed self-stop) sends nothing:
//!   the agent exits at once, or, with a self-stop in flight, when its answer comes and at
//!   the latest when the kill timer (`kill_after`, bounded short by the options) fires.
//! - With the match over and the watched process gone, the agent exits once the platform
//!   accepted the self-stop: there is no game left to keep serving.

use super::{Action, Machine, State, StopCause};
use crate::exit_code;
use crate::lifecycle::event::Timer;
use crate::lifecycle::status::SelfStopProgress;

impl Machine {
    /// A stop beside the game: nothing to signal; exit now, or wait (at most `kill_after`)
    /// for the self-stop in flight.
    pub(super) fn sidecar_stop(&mut self, cause: StopCause, out: &mut Vec<Action>) {
        // The game is not the agent's to stop: from now on it is no longer waited for.
        self.child_alive = false;
        self.group_alive = false;
        if self.self_stop == SelfStopProgress::InFlight {
            let kill_after = self.options.kill_after;
            out.push(Action::Note(format!(
                "stopping: {cause}; waiting for the self-stop in flight, at most {} ms",
                kill_after.as_millis()
            )));
            self.state = State::Stopping {
                cause,
                killed: false,
            };
            out.push(Action::StartTimer(Timer::Kill, kill_after));
            return;
        }
        out.push(Action::Note(format!("stopping: {cause}")));
        let code = self.exited_code.unwrap_or(exit_code::SUCCESS);
        self.exit(code, out);
    }

    /// The match is over and the watched game is gone: once the platform has accepted the
    /// self-stop nothing is left to do. (In flight, its answer decides; not yet called, the
    /// game's match-end delay runs first.)
    pub(super) fn sidecar_game_gone(&mut self, out: &mut Vec<Action>) {
        if !self.options.sidecar || self.child_alive {
            return;
        }
        if self.self_stop == SelfStopProgress::Accepted {
            out.push(Action::Note(
                "the game is gone and the platform accepted the self-stop: exiting".into(),
            ));
            let code = self.exited_code.unwrap_or(exit_code::SUCCESS);
            self.exit(code, out);
        }
    }
}
