//! The transitions of [`Machine`](super::Machine): one function per kind of event (the paths
//! every ending shares are in `endings.rs`).

use nix::sys::signal::Signal;

use super::{
    is_stop_request, stop_signal_for, Action, EndReason, Machine, State, StopCause, HUNG_CODE,
};
use crate::lifecycle::event::{Event, GameRequest, Timer};
use crate::lifecycle::policy::ExitAction;
use crate::lifecycle::status::SelfStopProgress;
use crate::units::is_job_control_stop;

/// Timers that belong to a match in play and end with it.
pub(super) const MATCH_TIMERS: [Timer; 6] = [
    Timer::Idle,
    Timer::Empty,
    Timer::MaxMatchDuration,
    Timer::MatchEndDelay,
    Timer::Heartbeat,
    Timer::RestartBackoff,
];

impl Machine {
    pub(super) fn dispatch(&mut self, event: Event, out: &mut Vec<Action>) {
        match event {
            Event::ChildStarted => self.on_child_started(out),
            Event::ChildSpawnFailed(code) => {
                self.child_alive = false;
                out.push(Action::Note(format!(
                    "the game could not be restarted (exit code {code})"
                )));
                // The agent's own failure (126, 127, 70): not the game's code, not remapped.
                self.exited_code_is_agents = true;
                match self.state {
                    // The match ended while the restart was under way: the self-stop goes on.
                    State::Ending(_) => self.exited_code = Some(code),
                    State::Stopping { .. } => self.on_child_exited(code, out),
                    _ => {
                        self.exited_code = Some(code);
                        self.finish(code, out);
                    }
                }
            }
            Event::ChildExited {
                outcome,
                group_left,
            } => {
                let code = if std::mem::take(&mut self.hung) {
                    HUNG_CODE
                } else {
                    outcome.shell_code()
                };
                self.group_alive = group_left;
                self.on_child_exited(code, out);
            }
            Event::GroupGone => {
                self.group_alive = false;
                self.finish_stop(out);
            }
            Event::Players(count) => self.on_players(count, out),
            Event::Signal(signal) => self.on_signal(signal, out),
            Event::Game(request) => self.on_game_request(request, out),
            Event::LogLineMatched(line) => self.end_match(EndReason::LogLine(line), out),
            Event::TimerFired(timer) => self.on_timer(timer, out),
            Event::SelfStopAccepted => self.on_self_stop_accepted(out),
            Event::SelfStopFailed(why) => self.on_self_stop_failed(why, out),
            Event::PreStopHookFinished => {
                if let (Some(signal), true) = (self.signal_after_hook.take(), self.group_alive) {
                    out.push(Action::SignalGroup(signal));
                }
            }
        }
    }

    fn on_child_started(&mut self, out: &mut Vec<Action>) {
        self.child_alive = true;
        // In sidecar mode the game is not the agent's: no process group of its own to watch.
        self.group_alive = !self.options.sidecar;
        self.exited_code_is_agents = false;
        self.ready = false;
        let first = !std::mem::replace(&mut self.started_once, true);
        if !first {
            // A restart in place: the driver emptied the roster before it (the players'
            // connections died with the old process).
            self.players = 0;
        }
        match self.state {
            // A restart that raced the match's end: the game runs on until the platform's
            // SIGTERM, as any game in an ended match.
            State::Ending(_) => return,
            // A restart that raced a stop: the new game is stopped too (after the hook, if
            // it still runs); the kill timer already runs.
            State::Stopping { .. } => {
                if let (None, Some(signal)) = (self.signal_after_hook, self.stop_signal_sent) {
                    out.push(Action::SignalGroup(signal));
                }
                return;
            }
            _ => self.state = State::Starting,
        }
        if first {
            if let Some(limit) = self.options.max_match_duration {
                out.push(Action::StartTimer(Timer::MaxMatchDuration, limit));
            }
        } else if let (true, Some(idle)) = (self.any_player_joined, self.options.idle_timeout) {
            // The idle clock runs from the restart.
            out.push(Action::StartTimer(Timer::Idle, idle));
        }
    }

    fn on_child_exited(&mut self, code: i32, out: &mut Vec<Action>) {
        self.child_alive = false;
        self.exited_code = Some(code);
        out.push(Action::CancelTimer(Timer::Heartbeat));
        match &self.state {
            State::Stopping { killed, .. } => {
                if !killed && self.self_stop == SelfStopProgress::InFlight {
                    out.push(Action::Note(
                        "the game has exited; the self-stop is still in flight: waiting for its answer, at most until the grace period ends".into(),
                    ));
                }
                self.finish_stop(out);
            }
            // The match is already over: wait for the platform's SIGTERM as planned; beside a
            // game that is gone, only for the self-stop's answer.
            State::Ending(_) => self.sidecar_game_gone(out),
            State::Starting | State::Running => {
                let action = self.options.on_exit.action_for(code);
                self.apply_exit_action(action, code, out);
            }
            State::Restarting | State::Exited(_) => {}
        }
    }

    fn apply_exit_action(&mut self, action: ExitAction, code: i32, out: &mut Vec<Action>) {
        match action {
            ExitAction::Exit => self.finish(code, out),
            ExitAction::Stop => {
                self.end_match(EndReason::GameExited(code), out);
            }
            // Sidecar mode has no game to restart (the options refuse `restart`): the
            // fallback (`*`, never `restart`) applies.
            ExitAction::Restart if self.options.sidecar => {
                self.apply_exit_action(self.options.on_exit.fallback(), code, out)
            }
            ExitAction::Restart => {
                let budget = self.options.restart;
                if budget.allows(&self.restart_times, self.now) {
                    let recent = self
                        .restart_times
                        .iter()
                        .filter(|&&at| self.now.saturating_sub(at) < budget.window)
                        .count();
                    let delay = budget.backoff(u32::try_from(recent).unwrap_or(u32::MAX));
                    out.push(Action::Note(format!(
                        "the game exited with code {code}: restarting it in {} ms",
                        delay.as_millis()
                    )));
                    self.state = State::Restarting;
                    out.push(Action::StartTimer(Timer::RestartBackoff, delay));
                } else {
                    let fallback = self.options.on_exit.fallback();
                    out.push(Action::Note(format!(
                        "the game exited with code {code} and the restart budget ({} in {} s) is spent: {}",
                        budget.max_restarts,
                        budget.window.as_secs(),
                        match fallback {
                            ExitAction::Stop => "ending the match",
                            _ => "exiting",
                        }
                    )));
                    self.apply_exit_action(fallback, code, out);
                }
            }
        }
    }

    fn on_signal(&mut self, signal: Signal, out: &mut Vec<Action>) {
        if is_stop_request(signal) {
            let stop_signal = stop_signal_for(signal, &self.options);
            if let State::Stopping { .. } = self.state {
                // Forwarded again; the kill timer keeps running from the first stop.
                if self.group_alive {
                    out.push(Action::SignalGroup(stop_signal));
                }
                return;
            }
            self.stop(StopCause::Signal(signal), stop_signal, out);
            return;
        }
        let forwarded = self.options.forward_signal_map.rewrite(signal);
        if self.group_alive {
            out.push(Action::SignalGroup(forwarded.unwrap_or(signal)));
        }
        // Job control, as dumb-init does it: the game's group stops, and so does the agent,
        // so the shell that sent it sees its job stopped; its SIGCONT resumes the agent,
        // which forwards that too. As PID 1 the agent never stops: the container would hang.
        if is_job_control_stop(signal) && !self.options.is_pid1 && !self.options.sidecar {
            out.push(Action::SuspendSelf);
        }
    }

    fn on_game_request(&mut self, request: GameRequest, out: &mut Vec<Action>) {
        match request {
            GameRequest::Ready => {
                self.ready |= self.child_alive;
                if self.state == State::Starting {
                    self.state = State::Running;
                    if let (false, Some(empty)) =
                        (self.any_player_joined, self.options.empty_timeout)
                    {
                        out.push(Action::StartTimer(Timer::Empty, empty));
                    }
                }
            }
            GameRequest::Heartbeat => {
                let watched = matches!(
                    self.state,
                    State::Starting | State::Running | State::Ending(_)
                );
                if let (true, true, Some(timeout)) =
                    (watched, self.child_alive, self.options.heartbeat_timeout)
                {
                    out.push(Action::StartTimer(Timer::Heartbeat, timeout));
                }
            }
            GameRequest::MatchEnd { reason, delay } => {
                self.end_match_after(EndReason::Api(reason), delay.filter(|d| !d.is_zero()), out);
            }
            // The roster is already changed; its size arrives as `Event::Players`.
            GameRequest::PlayerConnected(_) | GameRequest::PlayerDisconnected(_) => {}
        }
    }

    /// The roster holds `count` players now: the first join cancels the empty timer, any
    /// player cancels the idle timer, and the last one leaving a match in play starts it.
    fn on_players(&mut self, count: usize, out: &mut Vec<Action>) {
        let before = std::mem::replace(&mut self.players, count);
        if count > 0 {
            if !std::mem::replace(&mut self.any_player_joined, true) {
                out.push(Action::CancelTimer(Timer::Empty));
            }
            if before == 0 {
                out.push(Action::CancelTimer(Timer::Idle));
            }
            return;
        }
        let in_play = matches!(self.state, State::Starting | State::Running);
        if let (true, true, Some(idle)) = (before > 0, in_play, self.options.idle_timeout) {
            out.push(Action::StartTimer(Timer::Idle, idle));
        }
    }

    fn on_timer(&mut self, timer: Timer, out: &mut Vec<Action>) {
        let in_play = matches!(self.state, State::Starting | State::Running);
        match timer {
            Timer::Kill => {
                let alive = self.child_alive || self.group_alive;
                if let State::Stopping {
                    killed: killed @ false,
                    ..
                } = &mut self.state
                {
                    *killed = true;
                    if alive {
                        out.push(Action::Note(
                            "grace period over: killing the game's process group".into(),
                        ));
                        out.push(Action::KillGroup);
                    } else {
                        // The game is gone; only the self-stop was awaited, and the grace is over.
                        out.push(Action::Note(
                            "grace period over with the self-stop still in flight: exiting".into(),
                        ));
                        let code = self.exited_code.unwrap_or(crate::exit_code::SUCCESS);
                        self.exit(code, out);
                    }
                }
            }
            Timer::RestartBackoff if self.state == State::Restarting => {
                self.restart_times.push(self.now);
                out.push(Action::SpawnChild);
            }
            Timer::MatchEndDelay => {
                if let State::Ending(_) = self.state {
                    self.call_self_stop(out);
                }
            }
            Timer::SelfStopWait => {
                // Only once the platform accepted: the retries are never cut short.
                let accepted = self.self_stop == SelfStopProgress::Accepted;
                if let (State::Ending(reason), true) = (&self.state, accepted) {
                    let cause = StopCause::SelfStopWaitPassed(reason.clone());
                    self.stop(cause, self.options.stop_signal, out);
                }
            }
            Timer::Idle if in_play && self.players == 0 => self.end_match(EndReason::Idle, out),
            Timer::Empty if in_play && !self.any_player_joined => {
                self.end_match(EndReason::Empty, out)
            }
            Timer::MaxMatchDuration => self.end_match(EndReason::MaxMatchDuration, out),
            Timer::Heartbeat if self.options.sidecar && self.child_alive => {
                self.end_match(EndReason::HeartbeatLost, out)
            }
            Timer::Heartbeat
                if self.child_alive && !matches!(self.state, State::Stopping { .. }) =>
            {
                self.hung = true;
                out.push(Action::Note(format!(
                    "no heartbeat from the game for the heartbeat timeout: it is hung; killing it (exit code {HUNG_CODE})"
                )));
                out.push(Action::KillGroup);
            }
            Timer::RestartBackoff | Timer::Idle | Timer::Empty | Timer::Heartbeat => {}
        }
    }

    /// The platform will stop the deployment: its SIGTERM is awaited for `--self-stop-wait`.
    fn on_self_stop_accepted(&mut self, out: &mut Vec<Action>) {
        self.self_stop = SelfStopProgress::Accepted;
        match self.state {
            State::Ending(_) if self.options.sidecar && !self.child_alive => {
                self.sidecar_game_gone(out)
            }
            State::Ending(_) => out.push(Action::StartTimer(
                Timer::SelfStopWait,
                self.options.self_stop_wait,
            )),
            _ => self.finish_stop(out),
        }
    }

    fn on_self_stop_failed(&mut self, why: String, out: &mut Vec<Action>) {
        self.self_stop = SelfStopProgress::Failed(why.clone());
        out.push(Action::Note(if self.options.sidecar {
            format!("self-stop failed ({why}): exiting 0")
        } else {
            format!("self-stop failed ({why}): stopping the game and exiting 0, so that restart_policy never or on_failure still ends the deployment")
        }));
        self.exit_override = Some(crate::exit_code::SUCCESS);
        if let State::Ending(reason) = &self.state {
            let cause = StopCause::SelfStopFailed(reason.clone());
            self.stop(cause, self.options.stop_signal, out);
        } else {
            self.finish_stop(out);
        }
    }
}
