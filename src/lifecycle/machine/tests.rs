//! Every transition of the lifecycle machine, without processes, signals or clocks.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::*;
use crate::exit_code::{ChildOutcome, ExitCodeMap};
use crate::lifecycle::event::GameRequest;
use crate::lifecycle::policy::{OnExitPolicy, RestartBudget};
use crate::units::SignalMap;

pub(super) const fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

pub(super) fn options() -> MachineOptions {
    MachineOptions {
        stop_signal: Signal::SIGTERM,
        forward_signal_map: SignalMap::default(),
        kill_after: s(29),
        exit_code_map: ExitCodeMap::default(),
        on_exit: OnExitPolicy::default(),
        restart: RestartBudget {
            max_restarts: 2,
            window: s(60),
            initial_backoff: s(1),
            max_backoff: s(8),
        },
        idle_timeout: None,
        empty_timeout: None,
        max_match_duration: None,
        heartbeat_timeout: None,
        self_stop_wait: s(30),
        pre_stop_hook: false,
        is_pid1: false,
        sidecar: false,
    }
}

/// A machine whose game has started, at time 0.
pub(super) fn started(options: MachineOptions) -> Machine {
    let mut machine = Machine::new(options);
    machine.handle(s(0), Event::ChildStarted);
    machine
}

/// The game exited with `code`, and nothing is left in its process group.
pub(super) fn exited(code: i32) -> Event {
    ended(ChildOutcome::Exited(code))
}

/// The game ended so, and nothing is left in its process group.
pub(super) fn ended(outcome: ChildOutcome) -> Event {
    Event::ChildExited {
        outcome,
        group_left: false,
    }
}

pub(super) fn game(request: GameRequest) -> Event {
    Event::Game(request)
}

/// The actions without the `Note`s (which only log).
pub(super) fn effects(actions: Vec<Action>) -> Vec<Action> {
    actions
        .into_iter()
        .filter(|a| !matches!(a, Action::Note(_)))
        .collect()
}

pub(super) fn has(actions: &[Action], wanted: &Action) -> bool {
    actions.contains(wanted)
}

pub(super) fn cancels_then(tail: &[Action]) -> impl Fn(Vec<Action>) -> bool + '_ {
    move |actions| {
        let effects = effects(actions);
        effects.ends_with(tail)
            && effects[..effects.len() - tail.len()]
                .iter()
                .all(|a| matches!(a, Action::CancelTimer(_)))
    }
}

// ---- signals and stopping -------------------------------------------------------------

#[test]
fn sigterm_stops_with_the_stop_signal_and_the_kill_timer() {
    let mut machine = started(options());
    let actions = machine.handle(s(5), Event::Signal(Signal::SIGTERM));
    assert!(
        cancels_then(&[
            Action::SignalGroup(Signal::SIGTERM),
            Action::StartTimer(Timer::Kill, s(29))
        ])(actions.clone()),
        "{actions:?}"
    );
    assert_eq!(
        machine.state(),
        &State::Stopping {
            cause: StopCause::Signal(Signal::SIGTERM),
            killed: false
        }
    );
}

/// SIGTERM sends the stop signal; SIGINT sends SIGINT (Ctrl-C reaches the game as
/// Ctrl-C); a rewrite of either wins.
#[test]
fn sigint_and_mapped_stops_send_the_right_signal() {
    let mut machine = started(MachineOptions {
        stop_signal: Signal::SIGQUIT,
        ..options()
    });
    let actions = machine.handle(s(1), Event::Signal(Signal::SIGINT));
    assert!(
        cancels_then(&[
            Action::SignalGroup(Signal::SIGINT),
            Action::StartTimer(Timer::Kill, s(29))
        ])(actions.clone()),
        "{actions:?}"
    );
    assert_eq!(
        machine.state(),
        &State::Stopping {
            cause: StopCause::Signal(Signal::SIGINT),
            killed: false
        }
    );
    let mut machine = started(MachineOptions {
        stop_signal: Signal::SIGQUIT,
        ..options()
    });
    assert!(has(
        &machine.handle(s(1), Event::Signal(Signal::SIGTERM)),
        &Action::SignalGroup(Signal::SIGQUIT)
    ));
    let mut machine = started(MachineOptions {
        forward_signal_map: SignalMap::parse("INT=USR1").unwrap(),
        ..options()
    });
    assert!(has(
        &machine.handle(s(1), Event::Signal(Signal::SIGINT)),
        &Action::SignalGroup(Signal::SIGUSR1)
    ));
    let mut machine = started(MachineOptions {
        forward_signal_map: SignalMap::parse("TERM=INT").unwrap(),
        ..options()
    });
    assert!(has(
        &machine.handle(s(1), Event::Signal(Signal::SIGTERM)),
        &Action::SignalGroup(Signal::SIGINT)
    ));
}

#[test]
fn a_second_stop_signal_is_forwarded_without_restarting_the_timer() {
    let mut machine = started(options());
    machine.handle(s(1), Event::Signal(Signal::SIGTERM));
    assert_eq!(
        machine.handle(s(2), Event::Signal(Signal::SIGTERM)),
        vec![Action::SignalGroup(Signal::SIGTERM)]
    );
    assert_eq!(
        machine.handle(s(3), Event::Signal(Signal::SIGINT)),
        vec![Action::SignalGroup(Signal::SIGINT)]
    );
}

#[test]
fn other_signals_are_forwarded_as_received_or_rewritten() {
    let mut machine = started(MachineOptions {
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
            machine.handle(s(1), Event::Signal(signal)),
            vec![Action::SignalGroup(signal)]
        );
    }
    assert_eq!(
        machine.handle(s(1), Event::Signal(Signal::SIGUSR1)),
        vec![Action::SignalGroup(Signal::SIGUSR2)]
    );
    assert_eq!(machine.state(), &State::Starting);
}

#[test]
fn the_kill_timer_kills_once_and_the_exit_is_137_remapped() {
    let mut machine = started(MachineOptions {
        exit_code_map: ExitCodeMap::parse("137=0").unwrap(),
        ..options()
    });
    machine.handle(s(0), Event::Signal(Signal::SIGTERM));
    assert_eq!(
        effects(machine.handle(s(29), Event::TimerFired(Timer::Kill))),
        vec![Action::KillGroup]
    );
    assert_eq!(
        machine.handle(s(29), Event::TimerFired(Timer::Kill)),
        vec![]
    );
    let exit = machine.handle(s(29), ended(ChildOutcome::Signaled(Signal::SIGKILL)));
    assert_eq!(
        exit,
        vec![Action::CancelTimer(Timer::Heartbeat), Action::Exit(0)]
    );
}

#[test]
fn the_pre_stop_hook_runs_before_the_stop_signal_within_the_grace_period() {
    let mut machine = started(MachineOptions {
        pre_stop_hook: true,
        ..options()
    });
    let actions = effects(machine.handle(s(1), Event::Signal(Signal::SIGTERM)));
    assert!(
        actions.ends_with(&[
            Action::RunPreStopHook(s(29)),
            Action::StartTimer(Timer::Kill, s(29))
        ]),
        "{actions:?}"
    );
    assert!(!actions.iter().any(|a| matches!(a, Action::SignalGroup(_))));
    assert_eq!(
        machine.handle(s(3), Event::PreStopHookFinished),
        vec![Action::SignalGroup(Signal::SIGTERM)]
    );
    assert_eq!(machine.handle(s(4), Event::PreStopHookFinished), vec![]);
}

#[test]
fn nothing_happens_after_exit() {
    let mut machine = started(MachineOptions {
        on_exit: OnExitPolicy::parse("*=exit").unwrap(),
        ..options()
    });
    assert!(has(&machine.handle(s(1), exited(0)), &Action::Exit(0)));
    for event in [
        Event::Signal(Signal::SIGTERM),
        exited(1),
        Event::TimerFired(Timer::Kill),
        game(GameRequest::Ready),
    ] {
        assert_eq!(machine.handle(s(2), event), vec![]);
    }
}

// ---- the exit-code policy --------------------------------------------------------------

#[test]
fn exit_codes_and_signal_deaths_pass_through_under_the_exit_policy() {
    for (outcome, code) in [
        (ChildOutcome::Exited(3), 3),
        (ChildOutcome::Signaled(Signal::SIGTERM), 143),
        (ChildOutcome::Signaled(Signal::SIGKILL), 137),
    ] {
        let mut machine = started(options());
        assert!(has(
            &machine.handle(s(1), ended(outcome)),
            &Action::Exit(code)
        ));
        assert_eq!(machine.state(), &State::Exited(code));
    }
}

#[test]
fn a_clean_exit_under_stop_ends_the_match_then_exits_on_sigterm() {
    let mut machine = started(options());
    let actions = effects(machine.handle(s(10), exited(0)));
    assert!(actions.ends_with(&[Action::CallSelfStop]), "{actions:?}");
    assert!(
        !actions.iter().any(|a| matches!(a, Action::StartTimer(..))),
        "no wait runs while the self-stop is in flight: {actions:?}"
    );
    assert_eq!(machine.state(), &State::Ending(EndReason::GameExited(0)));
    // Accepted: the wait for the platform's SIGTERM starts now.
    assert_eq!(
        machine.handle(s(11), Event::SelfStopAccepted),
        vec![Action::StartTimer(Timer::SelfStopWait, s(30))]
    );
    // The platform's SIGTERM: the game is gone already, so the agent exits at once.
    assert!(has(
        &machine.handle(s(12), Event::Signal(Signal::SIGTERM)),
        &Action::Exit(0)
    ));
}

#[test]
fn a_stop_whose_sigterm_never_comes_exits_after_the_self_stop_wait() {
    let mut machine = started(MachineOptions {
        on_exit: OnExitPolicy::parse("7=stop").unwrap(),
        ..options()
    });
    machine.handle(s(1), exited(7));
    machine.handle(s(2), Event::SelfStopAccepted);
    assert!(has(
        &machine.handle(s(31), Event::TimerFired(Timer::SelfStopWait)),
        &Action::Exit(7)
    ));
}

#[test]
fn restarts_back_off_within_the_budget_then_the_fallback_applies() {
    let mut machine = started(MachineOptions {
        on_exit: OnExitPolicy::parse("0=stop,3=restart,*=exit").unwrap(),
        ..options()
    });
    // First crash: restart after 1 s.
    assert_eq!(
        effects(machine.handle(s(5), exited(3))),
        vec![
            Action::CancelTimer(Timer::Heartbeat),
            Action::StartTimer(Timer::RestartBackoff, s(1))
        ]
    );
    assert_eq!(machine.state(), &State::Restarting);
    assert_eq!(
        machine.handle(s(6), Event::TimerFired(Timer::RestartBackoff)),
        vec![Action::SpawnChild]
    );
    machine.handle(s(6), Event::ChildStarted);
    assert_eq!(machine.state(), &State::Starting);
    // Second crash: 2 s.
    assert!(has(
        &machine.handle(s(7), exited(3)),
        &Action::StartTimer(Timer::RestartBackoff, s(2))
    ));
    machine.handle(s(9), Event::TimerFired(Timer::RestartBackoff));
    machine.handle(s(9), Event::ChildStarted);
    assert_eq!(machine.restarts(), 2);
    // Third crash inside the window: the budget (2) is spent; the fallback `*=exit` applies.
    let actions = machine.handle(s(10), exited(3));
    assert!(has(&actions, &Action::Exit(3)), "{actions:?}");
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Note(n) if n.contains("restart budget"))));
}

#[test]
fn restarts_outside_the_window_do_not_count() {
    let mut machine = started(MachineOptions {
        on_exit: OnExitPolicy::parse("*=restart").unwrap(),
        ..options()
    });
    for at in [0, 100, 200, 300] {
        assert!(
            has(
                &machine.handle(s(at + 1), exited(1)),
                &Action::StartTimer(Timer::RestartBackoff, s(1))
            ),
            "at {at}"
        );
        machine.handle(s(at + 2), Event::TimerFired(Timer::RestartBackoff));
        machine.handle(s(at + 2), Event::ChildStarted);
    }
    assert_eq!(machine.restarts(), 4);
}

#[test]
fn a_spent_budget_with_a_stop_fallback_ends_the_match() {
    let mut machine = started(MachineOptions {
        on_exit: OnExitPolicy::parse("1=restart,*=stop").unwrap(),
        restart: RestartBudget {
            max_restarts: 0,
            ..options().restart
        },
        ..options()
    });
    assert!(has(&machine.handle(s(1), exited(1)), &Action::CallSelfStop));
    assert_eq!(machine.state(), &State::Ending(EndReason::GameExited(1)));
}

#[test]
fn a_failed_restart_exits_with_the_spawn_error_code() {
    let mut machine = started(MachineOptions {
        on_exit: OnExitPolicy::parse("*=restart").unwrap(),
        ..options()
    });
    machine.handle(s(1), exited(1));
    machine.handle(s(2), Event::TimerFired(Timer::RestartBackoff));
    assert!(has(
        &machine.handle(s(2), Event::ChildSpawnFailed(127)),
        &Action::Exit(127)
    ));
}

// ---- ending the match ------------------------------------------------------------------

#[test]
fn match_end_from_the_api_calls_self_stop_once_however_often_it_is_asked() {
    let mut machine = started(options());
    let end = || {
        game(GameRequest::MatchEnd {
            reason: Some("won".into()),
            delay: None,
        })
    };
    let actions = machine.handle(s(1), end());
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == Action::CallSelfStop)
            .count(),
        1
    );
    assert!(actions.iter().any(
        |a| matches!(a, Action::Note(n) if n == "match ended: the game ended the match: won")
    ));
    assert_eq!(machine.handle(s(2), end()), vec![]);
    assert_eq!(
        machine.handle(s(3), Event::LogLineMatched("GAME OVER".into())),
        vec![]
    );
    assert_eq!(
        machine.state(),
        &State::Ending(EndReason::Api(Some("won".into())))
    );
}

#[test]
fn a_delayed_match_end_ends_the_match_now_and_self_stops_after_the_delay() {
    let mut machine = started(options());
    let end = |delay| {
        game(GameRequest::MatchEnd {
            reason: Some("gg".into()),
            delay: Some(s(delay)),
        })
    };
    let actions = effects(machine.handle(s(1), end(5)));
    assert_eq!(
        actions.last(),
        Some(&Action::StartTimer(Timer::MatchEndDelay, s(5)))
    );
    assert!(!has(&actions, &Action::CallSelfStop));
    assert_eq!(
        machine.state(),
        &State::Ending(EndReason::Api(Some("gg".into())))
    );
    // A later call neither pushes the self-stop back nor brings it forward.
    assert_eq!(machine.handle(s(2), end(9)), vec![]);
    assert_eq!(
        machine.handle(
            s(2),
            game(GameRequest::MatchEnd {
                reason: None,
                delay: None
            })
        ),
        vec![]
    );
    let actions = machine.handle(s(6), Event::TimerFired(Timer::MatchEndDelay));
    assert_eq!(actions, vec![Action::CallSelfStop]);
}

#[test]
fn sigterm_during_a_match_end_delay_stops_the_game_without_self_stop() {
    let mut machine = started(options());
    machine.handle(
        s(1),
        game(GameRequest::MatchEnd {
            reason: None,
            delay: Some(s(60)),
        }),
    );
    let actions = machine.handle(s(2), Event::Signal(Signal::SIGTERM));
    assert!(
        has(&actions, &Action::CancelTimer(Timer::MatchEndDelay))
            && has(&actions, &Action::SignalGroup(Signal::SIGTERM))
    );
    assert!(!has(&actions, &Action::CallSelfStop));
}

#[test]
fn sigterm_during_self_stop_retries_stops_the_game_and_a_late_failure_changes_only_the_code() {
    let mut machine = started(options());
    machine.handle(
        s(1),
        game(GameRequest::MatchEnd {
            reason: None,
            delay: None,
        }),
    );
    assert!(has(
        &machine.handle(s(2), Event::Signal(Signal::SIGTERM)),
        &Action::SignalGroup(Signal::SIGTERM)
    ));
    let late = effects(machine.handle(s(3), Event::SelfStopFailed("gave up".into())));
    assert_eq!(late, vec![]);
    assert!(has(&machine.handle(s(4), exited(0)), &Action::Exit(0)));
}

#[test]
fn a_self_stop_that_fails_for_good_stops_the_game_and_exits_0() {
    let mut machine = started(options());
    machine.handle(s(1), Event::LogLineMatched("match over".into()));
    assert_eq!(
        machine.state(),
        &State::Ending(EndReason::LogLine("match over".into()))
    );
    let actions = machine.handle(s(2), Event::SelfStopFailed("401".into()));
    assert!(
        has(&actions, &Action::SignalGroup(Signal::SIGTERM))
            && has(&actions, &Action::StartTimer(Timer::Kill, s(29)))
    );
    assert!(has(
        &machine.handle(s(3), ended(ChildOutcome::Signaled(Signal::SIGTERM))),
        &Action::Exit(0)
    ));
}

#[test]
fn the_self_stop_wait_stops_a_game_still_running() {
    let mut machine = started(options());
    machine.handle(
        s(1),
        game(GameRequest::MatchEnd {
            reason: None,
            delay: None,
        }),
    );
    machine.handle(s(2), Event::SelfStopAccepted);
    let actions = machine.handle(s(31), Event::TimerFired(Timer::SelfStopWait));
    assert!(has(&actions, &Action::SignalGroup(Signal::SIGTERM)));
    assert!(matches!(
        machine.state(),
        State::Stopping {
            cause: StopCause::SelfStopWaitPassed(_),
            ..
        }
    ));
}

#[test]
fn a_match_end_during_a_restart_ends_the_match_without_restarting() {
    let mut machine = started(MachineOptions {
        on_exit: OnExitPolicy::parse("*=restart").unwrap(),
        ..options()
    });
    machine.handle(s(1), exited(2));
    let actions = machine.handle(
        s(1),
        game(GameRequest::MatchEnd {
            reason: None,
            delay: None,
        }),
    );
    assert!(
        has(&actions, &Action::CancelTimer(Timer::RestartBackoff))
            && has(&actions, &Action::CallSelfStop)
    );
    assert_eq!(
        machine.handle(s(2), Event::TimerFired(Timer::RestartBackoff)),
        vec![]
    );
    // The platform accepts, then its SIGTERM comes: nothing is left to stop or to await.
    machine.handle(s(2), Event::SelfStopAccepted);
    assert!(has(
        &machine.handle(s(3), Event::Signal(Signal::SIGTERM)),
        &Action::Exit(2)
    ));
}

// ---- readiness, players, timers --------------------------------------------------------

#[test]
fn ready_starts_the_empty_timer_and_an_empty_match_ends() {
    let mut machine = started(MachineOptions {
        empty_timeout: Some(s(60)),
        ..options()
    });
    assert_eq!(
        machine.handle(s(1), game(GameRequest::Ready)),
        vec![Action::StartTimer(Timer::Empty, s(60))]
    );
    assert!(machine.is_ready());
    assert!(has(
        &machine.handle(s(61), Event::TimerFired(Timer::Empty)),
        &Action::CallSelfStop
    ));
    assert_eq!(machine.state(), &State::Ending(EndReason::Empty));
}

#[test]
fn a_player_joining_cancels_the_empty_timer() {
    let mut machine = started(MachineOptions {
        empty_timeout: Some(s(60)),
        ..options()
    });
    machine.handle(s(1), game(GameRequest::Ready));
    let actions = machine.handle(s(2), Event::Players(1));
    assert!(has(&actions, &Action::CancelTimer(Timer::Empty)));
    assert_eq!(
        machine.handle(s(61), Event::TimerFired(Timer::Empty)),
        vec![]
    );
}

#[test]
fn the_idle_timer_runs_only_while_nobody_is_connected() {
    let mut machine = started(MachineOptions {
        idle_timeout: Some(s(30)),
        ..options()
    });
    machine.handle(s(1), game(GameRequest::Ready));
    machine.handle(s(2), Event::Players(1));
    machine.handle(s(2), Event::Players(2));
    assert_eq!(machine.players(), 2);
    // The requests themselves change nothing: the roster's size is what counts.
    assert_eq!(
        machine.handle(s(3), game(GameRequest::PlayerDisconnected("a".into()))),
        vec![]
    );
    assert_eq!(machine.handle(s(3), Event::Players(1)), vec![]);
    assert_eq!(
        machine.handle(s(4), Event::Players(0)),
        vec![Action::StartTimer(Timer::Idle, s(30))]
    );
    // Told again that nobody is there: the timer is not restarted.
    assert_eq!(machine.handle(s(4), Event::Players(0)), vec![]);
    // Someone comes back before it fires: cancelled; a stale fire is ignored.
    assert!(has(
        &machine.handle(s(5), Event::Players(1)),
        &Action::CancelTimer(Timer::Idle)
    ));
    assert_eq!(
        machine.handle(s(34), Event::TimerFired(Timer::Idle)),
        vec![]
    );
    machine.handle(s(40), Event::Players(0));
    assert!(has(
        &machine.handle(s(70), Event::TimerFired(Timer::Idle)),
        &Action::CallSelfStop
    ));
    assert_eq!(machine.state(), &State::Ending(EndReason::Idle));
}

#[test]
fn the_max_match_duration_starts_with_the_first_game_and_ends_the_match() {
    let mut machine = Machine::new(MachineOptions {
        max_match_duration: Some(s(600)),
        ..options()
    });
    assert_eq!(
        machine.handle(s(0), Event::ChildStarted),
        vec![Action::StartTimer(Timer::MaxMatchDuration, s(600))]
    );
    assert!(has(
        &machine.handle(s(600), Event::TimerFired(Timer::MaxMatchDuration)),
        &Action::CallSelfStop
    ));
    assert_eq!(machine.state(), &State::Ending(EndReason::MaxMatchDuration));
}

#[test]
fn heartbeats_rearm_the_watchdog_and_a_hang_is_killed_and_seen_as_124() {
    let mut machine = started(MachineOptions {
        heartbeat_timeout: Some(s(10)),
        on_exit: OnExitPolicy::parse("124=restart,*=exit").unwrap(),
        ..options()
    });
    // No heartbeat yet: no watchdog.
    assert_eq!(machine.handle(s(1), game(GameRequest::Ready)), vec![]);
    assert_eq!(
        machine.handle(s(2), game(GameRequest::Heartbeat)),
        vec![Action::StartTimer(Timer::Heartbeat, s(10))]
    );
    assert_eq!(
        machine.handle(s(5), game(GameRequest::Heartbeat)),
        vec![Action::StartTimer(Timer::Heartbeat, s(10))]
    );
    assert_eq!(
        effects(machine.handle(s(15), Event::TimerFired(Timer::Heartbeat))),
        vec![Action::KillGroup]
    );
    let actions = machine.handle(s(15), ended(ChildOutcome::Signaled(Signal::SIGKILL)));
    assert!(
        has(&actions, &Action::StartTimer(Timer::RestartBackoff, s(1))),
        "{actions:?}"
    );
}

#[test]
fn a_hang_under_the_default_policy_exits_124() {
    let mut machine = started(MachineOptions {
        heartbeat_timeout: Some(s(10)),
        ..options()
    });
    machine.handle(s(1), game(GameRequest::Heartbeat));
    machine.handle(s(11), Event::TimerFired(Timer::Heartbeat));
    assert!(has(
        &machine.handle(s(11), ended(ChildOutcome::Signaled(Signal::SIGKILL))),
        &Action::Exit(124)
    ));
}

#[test]
fn players_do_not_survive_a_restart_and_the_idle_clock_runs_from_it() {
    let mut machine = started(MachineOptions {
        idle_timeout: Some(s(30)),
        on_exit: OnExitPolicy::parse("3=restart,*=exit").unwrap(),
        ..options()
    });
    machine.handle(s(1), game(GameRequest::Ready));
    machine.handle(s(2), Event::Players(2));
    machine.handle(s(3), exited(3));
    assert!(has(
        &machine.handle(s(4), Event::TimerFired(Timer::RestartBackoff)),
        &Action::SpawnChild
    ));
    // The driver emptied the roster before the restart.
    let actions = machine.handle(s(4), Event::ChildStarted);
    assert_eq!(machine.players(), 0);
    assert!(has(&actions, &Action::StartTimer(Timer::Idle, s(30))));
    // A player reconnects (new to the roster): the idle timer is cancelled...
    assert!(has(
        &machine.handle(s(5), Event::Players(1)),
        &Action::CancelTimer(Timer::Idle)
    ));
    // ...so its fire, already on its way, ends nothing while they are connected.
    assert_eq!(
        machine.handle(s(34), Event::TimerFired(Timer::Idle)),
        vec![]
    );
    assert_eq!(machine.state(), &State::Starting);
}

// ---- the self-stop in flight ---------------------------------------------------------

#[test]
fn sigterm_with_the_game_gone_and_the_self_stop_in_flight_waits_for_its_answer() {
    let mut machine = started(options());
    machine.handle(s(1), exited(0));
    assert_eq!(machine.self_stop(), &SelfStopProgress::InFlight);
    let actions = effects(machine.handle(s(2), Event::Signal(Signal::SIGTERM)));
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Exit(_))),
        "{actions:?}"
    );
    assert!(has(&actions, &Action::StartTimer(Timer::Kill, s(29))));
    assert!(matches!(machine.state(), State::Stopping { .. }));
    // The answer comes: exit with the game's code.
    assert_eq!(
        effects(machine.handle(s(3), Event::SelfStopAccepted)),
        vec![Action::Exit(0)]
    );
}

#[test]
fn a_game_that_exits_on_sigterm_while_the_self_stop_is_in_flight_waits_within_the_grace() {
    let mut machine = started(options());
    machine.handle(
        s(1),
        game(GameRequest::MatchEnd {
            reason: None,
            delay: None,
        }),
    );
    machine.handle(s(2), Event::Signal(Signal::SIGTERM));
    let actions = effects(machine.handle(s(3), exited(42)));
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Exit(_))),
        "{actions:?}"
    );
    // No answer within the grace period: the kill timer ends the wait, with the game's code.
    assert_eq!(
        effects(machine.handle(s(31), Event::TimerFired(Timer::Kill))),
        vec![Action::Exit(42)]
    );
    assert_eq!(machine.handle(s(32), Event::SelfStopAccepted), vec![]);
}

#[test]
fn a_game_killed_at_the_end_of_the_grace_exits_at_once_even_with_the_self_stop_in_flight() {
    let mut machine = started(options());
    machine.handle(s(1), Event::LogLineMatched("over".into()));
    machine.handle(s(2), Event::Signal(Signal::SIGTERM));
    assert!(has(
        &machine.handle(s(31), Event::TimerFired(Timer::Kill)),
        &Action::KillGroup
    ));
    assert!(has(
        &machine.handle(s(31), ended(ChildOutcome::Signaled(Signal::SIGKILL))),
        &Action::Exit(137)
    ));
}

#[test]
fn the_self_stop_wait_is_not_started_before_the_platform_accepts() {
    let mut machine = started(MachineOptions {
        self_stop_wait: s(1),
        ..options()
    });
    machine.handle(s(1), Event::LogLineMatched("over".into()));
    // A stray fire of the wait (never started) does nothing while the retries go on.
    assert_eq!(
        machine.handle(s(600), Event::TimerFired(Timer::SelfStopWait)),
        vec![]
    );
    assert_eq!(
        machine.state(),
        &State::Ending(EndReason::LogLine("over".into()))
    );
    assert_eq!(machine.self_stop(), &SelfStopProgress::InFlight);
}

#[test]
fn a_restart_that_races_a_match_end_keeps_the_match_over() {
    // The match ends between the restart's spawn and its start: it stays over, and the
    // self-stop goes on whether the new game starts or not.
    for started_or_not in [Event::ChildStarted, Event::ChildSpawnFailed(127)] {
        let mut machine = started(MachineOptions {
            on_exit: OnExitPolicy::parse("*=restart").unwrap(),
            ..options()
        });
        machine.handle(s(1), exited(2));
        machine.handle(s(2), Event::TimerFired(Timer::RestartBackoff));
        machine.handle(s(2), Event::LogLineMatched("over".into()));
        assert_eq!(effects(machine.handle(s(2), started_or_not)), vec![]);
        assert_eq!(
            machine.state(),
            &State::Ending(EndReason::LogLine("over".into()))
        );
        assert_eq!(machine.self_stop(), &SelfStopProgress::InFlight);
    }
}
