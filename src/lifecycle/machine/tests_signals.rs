//! The machine's signal and process-group transitions: every forwarded signal, job control,
//! SIGINT as a stop, what the game leaves in its group, and the agent's own spawn failure.

use nix::sys::signal::Signal;

use super::tests::{cancels_then, effects, exited, has, options, s, started};
use super::*;
use crate::exit_code::{ChildOutcome, ExitCodeMap};
use crate::lifecycle::policy::OnExitPolicy;
use crate::units::{is_job_control_stop, FORWARDED_SIGNALS};

/// The game exited with `code` and left processes in its group.
fn exited_leaving_group(code: i32) -> Event {
    Event::ChildExited {
        outcome: ChildOutcome::Exited(code),
        group_left: true,
    }
}

fn not_a_stop(signal: &Signal) -> bool {
    !matches!(signal, Signal::SIGTERM | Signal::SIGINT)
}

#[test]
fn every_forwarded_signal_but_the_stops_reaches_the_group_as_received() {
    let mut machine = started(options());
    for signal in FORWARDED_SIGNALS.iter().copied().filter(not_a_stop) {
        let mut expected = vec![Action::SignalGroup(signal)];
        if is_job_control_stop(signal) {
            expected.push(Action::SuspendSelf);
        }
        assert_eq!(
            machine.handle(s(1), Event::Signal(signal)),
            expected,
            "{signal}"
        );
    }
    assert_eq!(machine.state(), &State::Starting);
}

#[test]
fn job_control_suspends_the_agent_only_when_it_is_not_pid_1() {
    let mut machine = started(options());
    for signal in [Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU] {
        assert_eq!(
            machine.handle(s(1), Event::Signal(signal)),
            [Action::SignalGroup(signal), Action::SuspendSelf]
        );
    }
    // SIGCONT (what resumed the agent) is forwarded, and resumes the game's group.
    assert_eq!(
        machine.handle(s(2), Event::Signal(Signal::SIGCONT)),
        [Action::SignalGroup(Signal::SIGCONT)]
    );
    let mut pid1 = started(MachineOptions {
        is_pid1: true,
        ..options()
    });
    for signal in [Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU] {
        assert_eq!(
            pid1.handle(s(1), Event::Signal(signal)),
            [Action::SignalGroup(signal)]
        );
    }
    // A rewritten TSTP still suspends the agent: what it received was a job-control stop.
    let mut mapped = started(MachineOptions {
        forward_signal_map: SignalMap::parse("TSTP=STOP").unwrap(),
        ..options()
    });
    assert_eq!(
        mapped.handle(s(1), Event::Signal(Signal::SIGTSTP)),
        [Action::SignalGroup(Signal::SIGSTOP), Action::SuspendSelf]
    );
}

#[test]
fn with_no_game_left_signals_are_not_forwarded_but_job_control_still_suspends() {
    let mut machine = started(MachineOptions {
        on_exit: OnExitPolicy::parse("*=restart").unwrap(),
        ..options()
    });
    machine.handle(s(1), exited(1));
    assert_eq!(machine.state(), &State::Restarting);
    assert!(machine
        .handle(s(1), Event::Signal(Signal::SIGUSR1))
        .is_empty());
    assert_eq!(
        machine.handle(s(1), Event::Signal(Signal::SIGTSTP)),
        [Action::SuspendSelf]
    );
}

#[test]
fn what_the_game_leaves_in_its_group_is_stopped_then_killed_before_the_exit() {
    let mut machine = started(MachineOptions {
        on_exit: OnExitPolicy::parse("*=exit").unwrap(),
        exit_code_map: ExitCodeMap::parse("3=4").unwrap(),
        ..options()
    });
    let actions = machine.handle(s(1), exited_leaving_group(3));
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
            cause: StopCause::LeftInGroup(3),
            killed: false
        }
    );
    // Forwarded signals still reach what is left.
    assert_eq!(
        machine.handle(s(2), Event::Signal(Signal::SIGUSR1)),
        [Action::SignalGroup(Signal::SIGUSR1)]
    );
    assert!(has(
        &machine.handle(s(30), Event::TimerFired(Timer::Kill)),
        &Action::KillGroup
    ));
    assert_eq!(machine.handle(s(30), Event::GroupGone), [Action::Exit(4)]);
    assert_eq!(machine.state(), &State::Exited(4));
}

#[test]
fn leftovers_that_end_on_the_stop_signal_end_the_wait_at_once() {
    let mut machine = started(MachineOptions {
        on_exit: OnExitPolicy::parse("*=exit").unwrap(),
        stop_signal: Signal::SIGQUIT,
        ..options()
    });
    assert!(has(
        &machine.handle(s(1), exited_leaving_group(0)),
        &Action::SignalGroup(Signal::SIGQUIT)
    ));
    assert_eq!(machine.handle(s(2), Event::GroupGone), [Action::Exit(0)]);
}

/// A game that exits during a stop with its group still alive: the group keeps the stop's
/// kill timer (what is left of the grace period), no new signal and no new timer.
#[test]
fn leftovers_of_a_stop_get_the_rest_of_the_grace_period() {
    let mut machine = started(options());
    machine.handle(s(5), Event::Signal(Signal::SIGTERM));
    assert_eq!(
        effects(machine.handle(s(10), exited_leaving_group(143))),
        [Action::CancelTimer(Timer::Heartbeat)]
    );
    assert!(matches!(machine.state(), State::Stopping { .. }));
    assert_eq!(
        effects(machine.handle(s(34), Event::TimerFired(Timer::Kill))),
        [Action::KillGroup]
    );
    assert_eq!(machine.handle(s(34), Event::GroupGone), [Action::Exit(143)]);
}

#[test]
fn leftovers_of_an_ended_match_are_stopped_by_the_platforms_sigterm() {
    // `stop` policy: the match ends, self-stop is called, the platform accepts it, and the
    // agent waits for the platform's SIGTERM.
    let mut machine = started(options());
    machine.handle(s(1), exited_leaving_group(0));
    assert!(matches!(machine.state(), State::Ending(_)));
    machine.handle(s(2), Event::SelfStopAccepted);
    // The leftovers are still there when the SIGTERM comes: they get the stop signal.
    let actions = machine.handle(s(3), Event::Signal(Signal::SIGTERM));
    assert!(
        cancels_then(&[
            Action::SignalGroup(Signal::SIGTERM),
            Action::StartTimer(Timer::Kill, s(29))
        ])(actions.clone()),
        "{actions:?}"
    );
    assert_eq!(machine.handle(s(4), Event::GroupGone), [Action::Exit(0)]);

    // Gone before the SIGTERM: the SIGTERM exits at once.
    let mut machine = started(options());
    machine.handle(s(1), exited_leaving_group(0));
    machine.handle(s(2), Event::SelfStopAccepted);
    assert!(machine.handle(s(2), Event::GroupGone).is_empty());
    assert!(has(
        &machine.handle(s(3), Event::Signal(Signal::SIGTERM)),
        &Action::Exit(0)
    ));
}

/// Both waits at once: the group's end and the self-stop's answer; the exit comes after the
/// last of them, and the kill timer ends the wait for the answer, not for the group.
#[test]
fn a_stop_waits_for_both_the_group_and_the_self_stop() {
    let mut machine = started(options());
    machine.handle(s(1), exited_leaving_group(0));
    // The self-stop is in flight; the platform's SIGTERM comes anyway (another stop).
    machine.handle(s(2), Event::Signal(Signal::SIGTERM));
    assert!(effects(machine.handle(s(3), Event::GroupGone)).is_empty());
    assert_eq!(
        machine.handle(s(4), Event::SelfStopAccepted),
        [Action::Exit(0)]
    );

    let mut machine = started(options());
    machine.handle(s(1), exited_leaving_group(0));
    machine.handle(s(2), Event::Signal(Signal::SIGTERM));
    machine.handle(s(3), Event::SelfStopAccepted);
    // The answer came first: the group's end is still awaited, SIGKILL at the kill timer.
    assert!(matches!(machine.state(), State::Stopping { .. }));
    assert!(has(
        &machine.handle(s(31), Event::TimerFired(Timer::Kill)),
        &Action::KillGroup
    ));
    assert_eq!(machine.handle(s(31), Event::GroupGone), [Action::Exit(0)]);
}

#[test]
fn the_pre_stop_hook_signal_reaches_leftovers_of_an_exited_game() {
    let mut machine = started(MachineOptions {
        pre_stop_hook: true,
        ..options()
    });
    machine.handle(s(1), exited_leaving_group(0));
    assert!(has(
        &machine.handle(s(2), Event::Signal(Signal::SIGTERM)),
        &Action::RunPreStopHook(s(29))
    ));
    assert_eq!(
        machine.handle(s(3), Event::PreStopHookFinished),
        [Action::SignalGroup(Signal::SIGTERM)]
    );
}

#[test]
fn a_game_restarted_in_place_leaves_its_old_group_alone() {
    let mut machine = started(MachineOptions {
        on_exit: OnExitPolicy::parse("*=restart").unwrap(),
        ..options()
    });
    let actions = effects(machine.handle(s(1), exited_leaving_group(1)));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::SignalGroup(_) | Action::KillGroup)),
        "{actions:?}"
    );
    assert_eq!(machine.state(), &State::Restarting);
}

/// 126/127/70 are the agent's codes, not the game's: `--exit-code-map` leaves them alone.
#[test]
fn a_failed_restart_exits_with_the_agents_code_unmapped() {
    let mut machine = started(MachineOptions {
        on_exit: OnExitPolicy::parse("*=restart").unwrap(),
        exit_code_map: ExitCodeMap::parse("127=0,126=0,1=0").unwrap(),
        ..options()
    });
    machine.handle(s(1), exited(1));
    machine.handle(s(2), Event::TimerFired(Timer::RestartBackoff));
    assert!(has(
        &machine.handle(s(2), Event::ChildSpawnFailed(127)),
        &Action::Exit(127)
    ));
    assert_eq!(machine.state(), &State::Exited(127));
}
