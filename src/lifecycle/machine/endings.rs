//! The paths every ending shares: "end the match" (self-stop once), "stop the game" (stop
//! signal, kill timer) and the exit, with the checks that keep the exit from coming while the
//! game, what it left, or a self-stop (within the grace) is still under way.

use nix::sys::signal::Signal;

use super::transitions::MATCH_TIMERS;
use super::{Action, EndReason, Machine, State, StopCause};
use crate::lifecycle::event::Timer;
use crate::lifecycle::status::SelfStopProgress;

impl Machine {
    /// A stop ends, and the agent exits with the game's code, once the game has exited,
    /// nothing is left in its process group, and no self-stop is in flight (that one is
    /// awaited only until the kill timer fires).
    pub(super) fn finish_stop(&mut self, out: &mut Vec<Action>) {
        let State::Stopping { killed, .. } = self.state else {
            return;
        };
        if self.child_alive || self.group_alive {
            return;
        }
        if !killed && self.self_stop == SelfStopProgress::InFlight {
            return;
        }
        let code = self.exited_code.unwrap_or(crate::exit_code::SUCCESS);
        self.exit(code, out);
    }

    /// The game has exited with `code` and no stop is under way: exit with it, once nothing
    /// is left in its process group. What the game left gets the stop signal and the grace
    /// period, then SIGKILL (a stop, with the exit once the group is gone).
    pub(super) fn finish(&mut self, code: i32, out: &mut Vec<Action>) {
        if !self.group_alive {
            self.exit(code, out);
            return;
        }
        out.extend(MATCH_TIMERS.iter().map(|t| Action::CancelTimer(*t)));
        out.push(Action::CancelTimer(Timer::SelfStopWait));
        let cause = StopCause::LeftInGroup(code);
        out.push(Action::Note(format!("stopping the game: {cause}")));
        self.state = State::Stopping {
            cause,
            killed: false,
        };
        let signal = self.options.stop_signal;
        self.stop_signal_sent = Some(signal);
        out.push(Action::SignalGroup(signal));
        out.push(Action::StartTimer(Timer::Kill, self.options.kill_after));
    }

    /// The one path for every way a match ends: record the reason, call self-stop once, and
    /// wait for its answer, then for the platform's SIGTERM (at most `--self-stop-wait`).
    pub(super) fn end_match(&mut self, reason: EndReason, out: &mut Vec<Action>) {
        self.end_match_after(reason, None, out);
    }

    /// Ends the match now; self-stop follows after `delay` (the game asked for time to show
    /// the results), or at once.
    pub(super) fn end_match_after(
        &mut self,
        reason: EndReason,
        delay: Option<std::time::Duration>,
        out: &mut Vec<Action>,
    ) {
        if !matches!(
            self.state,
            State::Starting | State::Running | State::Restarting
        ) {
            return;
        }
        out.extend(
            MATCH_TIMERS
                .iter()
                .filter(|t| **t != Timer::Heartbeat)
                .map(|t| Action::CancelTimer(*t)),
        );
        match delay {
            Some(delay) => out.push(Action::Note(format!(
                "match ended: {reason} (self-stop in {} ms)",
                delay.as_millis()
            ))),
            None => out.push(Action::Note(format!("match ended: {reason}"))),
        }
        self.state = State::Ending(reason);
        match delay {
            Some(delay) => out.push(Action::StartTimer(Timer::MatchEndDelay, delay)),
            None => self.call_self_stop(out),
        }
    }

    /// Calls self-stop, once for the agent's life. The wait for the platform's SIGTERM
    /// starts when the platform accepts it, not now: the retries may take minutes, and the
    /// agent must not give up on them by itself.
    pub(super) fn call_self_stop(&mut self, out: &mut Vec<Action>) {
        if self.self_stop == SelfStopProgress::NotCalled {
            self.self_stop = SelfStopProgress::InFlight;
            out.push(Action::CallSelfStop);
        }
    }

    /// The one path for every stop: the pre-stop hook, the stop signal, the kill timer (to
    /// the game's group: the game, or what it left there). With the game and its group gone
    /// and a self-stop in flight, only the kill timer: the agent waits for the self-stop's
    /// answer within the grace period, then exits.
    pub(super) fn stop(&mut self, cause: StopCause, signal: Signal, out: &mut Vec<Action>) {
        out.extend(MATCH_TIMERS.iter().map(|t| Action::CancelTimer(*t)));
        out.push(Action::CancelTimer(Timer::SelfStopWait));
        if self.options.sidecar {
            return self.sidecar_stop(cause, out);
        }
        let kill_after = self.options.kill_after;
        self.stop_signal_sent = Some(signal);
        if !self.child_alive && !self.group_alive {
            if self.self_stop == SelfStopProgress::InFlight {
                out.push(Action::Note(format!(
                    "stopping: {cause}; the game has exited and the self-stop is in flight: waiting for its answer, at most until the grace period ends"
                )));
                self.state = State::Stopping {
                    cause,
                    killed: false,
                };
                out.push(Action::StartTimer(Timer::Kill, kill_after));
                return;
            }
            let code = self.exited_code.unwrap_or(crate::exit_code::SUCCESS);
            self.exit(code, out);
            return;
        }
        out.push(Action::Note(format!("stopping the game: {cause}")));
        self.state = State::Stopping {
            cause,
            killed: false,
        };
        if self.options.pre_stop_hook {
            self.signal_after_hook = Some(signal);
            out.push(Action::RunPreStopHook(kill_after));
        } else {
            out.push(Action::SignalGroup(signal));
        }
        out.push(Action::StartTimer(Timer::Kill, kill_after));
    }

    /// Exits with the game's `code`, remapped, unless a failed self-stop decided on 0. The
    /// agent's own code (a restart that could not start the game) is not remapped.
    pub(super) fn exit(&mut self, code: i32, out: &mut Vec<Action>) {
        let code = self.exit_override.unwrap_or_else(|| {
            if self.exited_code_is_agents {
                code
            } else {
                self.options.exit_code_map.apply(code)
            }
        });
        self.state = State::Exited(code);
        out.push(Action::Exit(code));
    }
}
