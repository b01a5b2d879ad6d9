//! The supervisor's decisions, as a pure state machine: `handle(event) -> actions`.
//!
//! No processes, signals or clocks in here: the driver in `supervisor/mod.rs` turns the OS
//! into [`Event`]s and carries out the [`Action`]s, so every transition is unit-tested.
//!
//! | state    | event                 | actions                                              | next     |
//! |----------|-----------------------|------------------------------------------------------|----------|
//! | Running  | SIGTERM / SIGINT      | signal group (mapped, else `--stop-signal`), start kill timer | Stopping |
//! | Running  | other forwarded signal| signal group (mapped, else as received)              | Running  |
//! | Stopping | SIGTERM / SIGINT      | signal group again; the kill timer is *not* restarted | Stopping |
//! | Stopping | other forwarded signal| signal group                                         | Stopping |
//! | Stopping | kill timer fired      | SIGKILL the group                                    | Stopping |
//! | any      | main child exited     | exit with its code (128+N for signal N), remapped    | Exited   |
//! | Exited   | anything              | nothing                                              | Exited   |

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::config::SupervisorOptions;
use crate::os::ChildOutcome;

/// Something that happened, as the supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The agent received a signal (never SIGCHLD: child exits arrive as `ChildExited`).
    Signal(Signal),
    /// The main child (the game server) terminated.
    ChildExited(ChildOutcome),
    /// The grace period (minus the kill margin) has run out.
    KillTimerFired,
}

/// Something the driver must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send this signal to the game's process group.
    SignalGroup(Signal),
    /// SIGKILL the game's process group.
    KillGroup,
    /// Fire `KillTimerFired` after this long (there is at most one kill timer).
    StartKillTimer(Duration),
    /// Exit the agent with this code.
    Exit(i32),
}

/// Where the supervisor is in the game's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    /// A stop was requested; `killed` once the grace period ran out and SIGKILL was sent.
    Stopping {
        killed: bool,
    },
    Exited(i32),
}

pub struct Machine {
    options: SupervisorOptions,
    state: State,
}

impl Machine {
    pub fn new(options: SupervisorOptions) -> Self {
        Machine {
            options,
            state: State::Running,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        match (self.state, event) {
            (State::Exited(_), _) => vec![],
            (_, Event::ChildExited(outcome)) => {
                let code = self.options.exit_code_map.apply(outcome.shell_code());
                self.state = State::Exited(code);
                vec![Action::Exit(code)]
            }
            (State::Running, Event::Signal(signal)) if is_stop_request(signal) => {
                self.state = State::Stopping { killed: false };
                vec![
                    Action::SignalGroup(self.stop_signal_for(signal)),
                    Action::StartKillTimer(self.options.kill_after()),
                ]
            }
            (State::Stopping { .. }, Event::Signal(signal)) if is_stop_request(signal) => {
                vec![Action::SignalGroup(self.stop_signal_for(signal))]
            }
            (_, Event::Signal(signal)) => vec![Action::SignalGroup(
                self.options
                    .forward_signal_map
                    .rewrite(signal)
                    .unwrap_or(signal),
            )],
            (State::Stopping { killed: false }, Event::KillTimerFired) => {
                self.state = State::Stopping { killed: true };
                vec![Action::KillGroup]
            }
            (_, Event::KillTimerFired) => vec![],
        }
    }

    /// What a stop sends: the signal's own rewrite if `--forward-signal-map` names it,
    /// otherwise `--stop-signal`.
    fn stop_signal_for(&self, received: Signal) -> Signal {
        self.options
            .forward_signal_map
            .rewrite(received)
            .unwrap_or(self.options.stop_signal)
    }
}

/// SIGTERM (the platform's and Docker's stop) and SIGINT (Ctrl-C) ask the agent to stop.
fn is_stop_request(signal: Signal) -> bool {
    matches!(signal, Signal::SIGTERM | Signal::SIGINT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ExitCodeMap, SignalMap};

    fn options() -> SupervisorOptions {
        SupervisorOptions {
            stop_signal: Signal::SIGTERM,
            forward_signal_map: SignalMap::default(),
            grace_period: Duration::from_secs(30),
            kill_margin: Duration::from_secs(1),
            exit_code_map: ExitCodeMap::default(),
        }
    }

    #[test]
    fn sigterm_starts_a_stop_with_the_kill_timer_at_grace_minus_margin() {
        let mut machine = Machine::new(options());
        assert_eq!(
            machine.handle(Event::Signal(Signal::SIGTERM)),
            vec![
                Action::SignalGroup(Signal::SIGTERM),
                Action::StartKillTimer(Duration::from_secs(29))
            ]
        );
        assert_eq!(machine.state(), State::Stopping { killed: false });
    }

    #[test]
    fn sigint_stops_with_the_configured_stop_signal() {
        let mut machine = Machine::new(SupervisorOptions {
            stop_signal: Signal::SIGQUIT,
            ..options()
        });
        assert_eq!(
            machine.handle(Event::Signal(Signal::SIGINT))[0],
            Action::SignalGroup(Signal::SIGQUIT)
        );
    }

    #[test]
    fn a_mapped_stop_signal_sends_its_rewrite() {
        let mut machine = Machine::new(SupervisorOptions {
            forward_signal_map: SignalMap::parse("TERM=INT").unwrap(),
            ..options()
        });
        assert_eq!(
            machine.handle(Event::Signal(Signal::SIGTERM))[0],
            Action::SignalGroup(Signal::SIGINT)
        );
    }

    #[test]
    fn a_second_sigterm_is_forwarded_but_does_not_restart_the_timer() {
        let mut machine = Machine::new(options());
        machine.handle(Event::Signal(Signal::SIGTERM));
        assert_eq!(
            machine.handle(Event::Signal(Signal::SIGTERM)),
            vec![Action::SignalGroup(Signal::SIGTERM)]
        );
        assert_eq!(
            machine.handle(Event::Signal(Signal::SIGINT)),
            vec![Action::SignalGroup(Signal::SIGTERM)]
        );
    }

    #[test]
    fn other_signals_are_forwarded_as_received_or_rewritten() {
        let mut machine = Machine::new(SupervisorOptions {
            forward_signal_map: SignalMap::parse("USR1=USR2").unwrap(),
            ..options()
        });
        for signal in [
            Signal::SIGHUP,
            Signal::SIGQUIT,
            Signal::SIGUSR2,
            Signal::SIGWINCH,
        ] {
            assert_eq!(
                machine.handle(Event::Signal(signal)),
                vec![Action::SignalGroup(signal)]
            );
        }
        assert_eq!(
            machine.handle(Event::Signal(Signal::SIGUSR1)),
            vec![Action::SignalGroup(Signal::SIGUSR2)]
        );
        assert_eq!(machine.state(), State::Running);
    }

    #[test]
    fn the_kill_timer_kills_once_and_only_while_stopping() {
        let mut machine = Machine::new(options());
        assert_eq!(machine.handle(Event::KillTimerFired), vec![]);
        machine.handle(Event::Signal(Signal::SIGTERM));
        assert_eq!(
            machine.handle(Event::KillTimerFired),
            vec![Action::KillGroup]
        );
        assert_eq!(machine.state(), State::Stopping { killed: true });
        assert_eq!(machine.handle(Event::KillTimerFired), vec![]);
    }

    #[test]
    fn child_exit_codes_pass_through_with_128_plus_signal() {
        let cases = [
            (ChildOutcome::Exited(0), 0),
            (ChildOutcome::Exited(3), 3),
            (ChildOutcome::Signaled(Signal::SIGTERM), 143),
            (ChildOutcome::Signaled(Signal::SIGKILL), 137),
        ];
        for (outcome, code) in cases {
            let mut machine = Machine::new(options());
            assert_eq!(
                machine.handle(Event::ChildExited(outcome)),
                vec![Action::Exit(code)]
            );
            assert_eq!(machine.state(), State::Exited(code));
        }
    }

    #[test]
    fn a_kill_after_grace_exits_137_and_the_exit_code_map_applies() {
        let mut machine = Machine::new(SupervisorOptions {
            exit_code_map: ExitCodeMap::parse("143=0").unwrap(),
            ..options()
        });
        machine.handle(Event::Signal(Signal::SIGTERM));
        machine.handle(Event::KillTimerFired);
        assert_eq!(
            machine.handle(Event::ChildExited(ChildOutcome::Signaled(Signal::SIGKILL))),
            vec![Action::Exit(137)]
        );
        let mut machine = Machine::new(SupervisorOptions {
            exit_code_map: ExitCodeMap::parse("143=0").unwrap(),
            ..options()
        });
        assert_eq!(
            machine.handle(Event::ChildExited(ChildOutcome::Signaled(Signal::SIGTERM))),
            vec![Action::Exit(0)]
        );
    }

    #[test]
    fn nothing_happens_after_exit() {
        let mut machine = Machine::new(options());
        machine.handle(Event::ChildExited(ChildOutcome::Exited(0)));
        assert_eq!(machine.handle(Event::Signal(Signal::SIGTERM)), vec![]);
        assert_eq!(
            machine.handle(Event::ChildExited(ChildOutcome::Exited(1))),
            vec![]
        );
        assert_eq!(machine.handle(Event::KillTimerFired), vec![]);
    }
}
