//! Sidecar mode's transitions: the watched process's end, lost heartbeats, stops that send
//! nothing and wait for an in-flight self-stop only within the bound.

use nix::sys::signal::Signal;

use super::tests::{effects, exited, game, has, options, s, started};
use super::*;
use crate::lifecycle::event::GameRequest;
use crate::lifecycle::policy::OnExitPolicy;
use crate::units::FORWARDED_SIGNALS;

/// Sidecar options: the stop bound 5 s, heartbeats watched for 10 s.
fn sidecar() -> MachineOptions {
    MachineOptions {
        sidecar: true,
        kill_after: s(5),
        heartbeat_timeout: Some(s(10)),
        ..options()
    }
}

/// Exits with `code`, with no self-stop, touching nothing.
fn exits_without_self_stop(actions: &[Action], code: i32) -> bool {
    has(actions, &Action::Exit(code))
        && !has(actions, &Action::CallSelfStop)
        && touches_nothing(actions)
}

/// No action touches a process or suspends the agent.
fn touches_nothing(actions: &[Action]) -> bool {
    !actions.iter().any(|a| {
        matches!(
            a,
            Action::SignalGroup(_)
                | Action::KillGroup
                | Action::SpawnChild
                | Action::RunPreStopHook(_)
                | Action::SuspendSelf
        )
    })
}

#[test]
fn the_watched_process_ending_self_stops_once_then_exits_0_once_accepted() {
    let mut machine = started(sidecar());
    let actions = machine.handle(s(3), exited(0));
    assert!(has(&actions, &Action::CallSelfStop), "{actions:?}");
    assert!(touches_nothing(&actions), "{actions:?}");
    assert_eq!(machine.state(), &State::Ending(EndReason::GameExited(0)));
    // No wait for the platform's SIGTERM: nothing is left to serve.
    let actions = machine.handle(s(4), Event::SelfStopAccepted);
    assert_eq!(effects(actions), vec![Action::Exit(0)]);
}

#[test]
fn the_watched_process_ending_with_exit_policy_exits_without_self_stop() {
    let mut machine = started(MachineOptions {
        on_exit: OnExitPolicy::parse("0=exit").unwrap_or_default(),
        ..sidecar()
    });
    let actions = machine.handle(s(3), exited(0));
    assert!(exits_without_self_stop(&actions, 0), "{actions:?}");
}

#[test]
fn a_restart_policy_falls_back_to_the_star_action() {
    let mut machine = started(MachineOptions {
        on_exit: OnExitPolicy::parse("*=restart").unwrap_or_default(),
        ..sidecar()
    });
    let actions = machine.handle(s(3), exited(0));
    assert!(exits_without_self_stop(&actions, 0), "{actions:?}");
    let mut machine = started(MachineOptions {
        on_exit: OnExitPolicy::parse("0=restart,*=stop").unwrap_or_default(),
        ..sidecar()
    });
    let actions = machine.handle(s(3), exited(0));
    assert!(has(&actions, &Action::CallSelfStop), "{actions:?}");
}

#[test]
fn lost_heartbeats_end_the_match_instead_of_killing() {
    let mut machine = started(sidecar());
    let actions = machine.handle(s(1), game(GameRequest::Heartbeat));
    assert!(has(&actions, &Action::StartTimer(Timer::Heartbeat, s(10))));
    let actions = machine.handle(s(11), Event::TimerFired(Timer::Heartbeat));
    assert!(has(&actions, &Action::CallSelfStop), "{actions:?}");
    assert!(touches_nothing(&actions), "{actions:?}");
    assert_eq!(machine.state(), &State::Ending(EndReason::HeartbeatLost));
    assert_eq!(EndReason::HeartbeatLost.trigger(), "heartbeat_timeout");
}

#[test]
fn sigterm_with_no_self_stop_exits_0_at_once() {
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let mut machine = started(sidecar());
        let actions = machine.handle(s(2), Event::Signal(signal));
        assert!(touches_nothing(&actions), "{actions:?}");
        assert!(has(&actions, &Action::Exit(0)), "{actions:?}");
    }
}

#[test]
fn sigterm_waits_for_the_self_stop_in_flight_within_the_bound() {
    // Its answer comes: exit then.
    let mut machine = started(sidecar());
    machine.handle(
        s(1),
        game(GameRequest::MatchEnd {
            reason: None,
            delay: None,
        }),
    );
    let actions = machine.handle(s(2), Event::Signal(Signal::SIGTERM));
    assert!(touches_nothing(&actions), "{actions:?}");
    assert!(
        has(&actions, &Action::StartTimer(Timer::Kill, s(5))),
        "{actions:?}"
    );
    assert!(!has(&actions, &Action::Exit(0)));
    assert!(machine
        .handle(s(3), Event::Signal(Signal::SIGTERM))
        .is_empty());
    let actions = machine.handle(s(4), Event::SelfStopAccepted);
    assert_eq!(effects(actions), vec![Action::Exit(0)]);

    // It does not: exit 0 when the bound passes.
    let mut machine = started(sidecar());
    machine.handle(
        s(1),
        game(GameRequest::MatchEnd {
            reason: None,
            delay: None,
        }),
    );
    machine.handle(s(2), Event::Signal(Signal::SIGTERM));
    let actions = machine.handle(s(7), Event::TimerFired(Timer::Kill));
    assert!(touches_nothing(&actions), "{actions:?}");
    assert!(has(&actions, &Action::Exit(0)), "{actions:?}");
}

#[test]
fn a_failed_self_stop_exits_0_and_touches_nothing() {
    let mut machine = started(sidecar());
    machine.handle(
        s(1),
        game(GameRequest::MatchEnd {
            reason: None,
            delay: None,
        }),
    );
    let actions = machine.handle(s(2), Event::SelfStopFailed("refused".into()));
    assert!(touches_nothing(&actions), "{actions:?}");
    assert!(has(&actions, &Action::Exit(0)), "{actions:?}");
}

#[test]
fn the_self_stop_wait_passing_exits_while_the_game_runs_on() {
    let mut machine = started(sidecar());
    machine.handle(
        s(1),
        game(GameRequest::MatchEnd {
            reason: None,
            delay: None,
        }),
    );
    let actions = machine.handle(s(2), Event::SelfStopAccepted);
    assert!(has(
        &actions,
        &Action::StartTimer(Timer::SelfStopWait, s(30))
    ));
    let actions = machine.handle(s(32), Event::TimerFired(Timer::SelfStopWait));
    assert!(touches_nothing(&actions), "{actions:?}");
    assert!(has(&actions, &Action::Exit(0)), "{actions:?}");
}

#[test]
fn the_game_ending_while_the_self_stop_is_in_flight_exits_on_its_answer() {
    let mut machine = started(sidecar());
    machine.handle(
        s(1),
        game(GameRequest::MatchEnd {
            reason: None,
            delay: None,
        }),
    );
    assert!(effects(machine.handle(s(2), exited(0)))
        .iter()
        .all(|a| matches!(a, Action::CancelTimer(_))));
    let actions = machine.handle(s(3), Event::SelfStopAccepted);
    assert_eq!(effects(actions), vec![Action::Exit(0)]);
}

#[test]
fn no_other_signal_is_forwarded_or_suspends_the_agent() {
    let mut machine = started(sidecar());
    for signal in FORWARDED_SIGNALS.iter() {
        if matches!(signal, Signal::SIGTERM | Signal::SIGINT) {
            continue;
        }
        let actions = machine.handle(s(1), Event::Signal(*signal));
        assert!(actions.is_empty(), "{signal:?}: {actions:?}");
    }
    assert_eq!(machine.state(), &State::Starting);
}
