//! What the game leaves in its process group when it exits: the agent sends it the stop
//! signal and the grace period, then SIGKILL, and exits (with the game's code) only once the
//! group is empty, as PID 1 and as a child subreaper. The fake game's grandchild stays in the
//! game's group and records the signals it gets.

mod support;

use std::time::{Duration, Instant};

use support::{
    agent_as_pid1_command, agent_command, lines_of, scratch_dir, wait_until, Running, DEADLINE,
    FAKE_GAME,
};

const GRACE: Duration = Duration::from_millis(2000);
const MARGIN: Duration = Duration::from_millis(500);

/// Starts the agent around a game that starts a grandchild in its group, says READY and
/// exits 3 300 ms later; returns the agent and the grandchild's record of its signals.
fn start(pid1: bool, name: &str, grandchild_ignores_term: bool) -> (Running, std::path::PathBuf) {
    let record = scratch_dir(name).join("signals");
    let mut command = if pid1 {
        agent_as_pid1_command()
    } else {
        agent_command()
    };
    command
        .args(["--grace-period", "2000ms", "--kill-margin", "500ms"])
        .args(["--on-exit", "*=exit", "--", FAKE_GAME, "--record-signals"])
        .arg(&record)
        .args(["--grandchild", "--run-ms", "300", "--exit", "3"]);
    if grandchild_ignores_term {
        command.arg("--grandchild-ignores-term");
    }
    let mut agent = Running::start(command);
    agent.wait_lines(&["GRANDCHILD-READY", "READY"]);
    (agent, record.with_file_name("signals.grandchild"))
}

fn wait_for_game_exit(agent: &Running) -> Instant {
    assert!(
        wait_until(DEADLINE, || agent.stderr().contains("game server ended")),
        "{}",
        agent.stderr()
    );
    Instant::now()
}

/// A leftover that ignores the stop signal gets SIGKILL at grace minus margin after the
/// game's exit; the agent then exits with the game's code, not before.
fn a_leftover_ignoring_the_stop_signal_is_killed_after_the_grace(pid1: bool, name: &str) {
    let (mut agent, grandchild) = start(pid1, name, true);
    let game_ended = wait_for_game_exit(&agent);
    assert!(
        wait_until(DEADLINE, || lines_of(&grandchild) == ["SIGTERM"]),
        "the leftover never got the stop signal: {:?}; stderr:\n{}",
        lines_of(&grandchild),
        agent.stderr()
    );
    let (status, _) = agent.wait_exit(DEADLINE);
    let after = game_ended.elapsed();
    assert_eq!(status.code(), Some(3), "{}", agent.stderr());
    // Killed at grace - margin after the game ended (seen a little after it ended), not at
    // once and not much later.
    let kill_at = GRACE - MARGIN;
    assert!(
        after + Duration::from_millis(200) >= kill_at && after < kill_at + Duration::from_secs(2),
        "exited {after:?} after the game, expected about {kill_at:?}"
    );
    let stderr = agent.stderr();
    for expected in [
        "the game left processes in its process group",
        "leaving processes in its process group",
        "grace period over",
        "nothing is left in the game's process group",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in:\n{stderr}");
    }
    assert_eq!(
        lines_of(&grandchild),
        ["SIGTERM"],
        "SIGKILL cannot be recorded"
    );
}

/// A leftover that ends on the stop signal ends the agent's wait at once.
fn a_leftover_ending_on_the_stop_signal_ends_the_wait(pid1: bool, name: &str) {
    let (mut agent, grandchild) = start(pid1, name, false);
    let game_ended = wait_for_game_exit(&agent);
    let (status, _) = agent.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(3), "{}", agent.stderr());
    assert!(
        game_ended.elapsed() < GRACE - MARGIN,
        "waited {:?}, the whole grace period",
        game_ended.elapsed()
    );
    assert_eq!(lines_of(&grandchild), ["SIGTERM"]);
    assert!(!agent.stderr().contains("grace period over"));
}

#[test]
fn as_a_subreaper_a_leftover_ignoring_the_stop_signal_is_killed_after_the_grace() {
    a_leftover_ignoring_the_stop_signal_is_killed_after_the_grace(false, "leftover-kill");
}

#[test]
fn as_pid_1_a_leftover_ignoring_the_stop_signal_is_killed_after_the_grace() {
    a_leftover_ignoring_the_stop_signal_is_killed_after_the_grace(true, "leftover-kill-pid1");
}

#[test]
fn as_a_subreaper_a_leftover_ending_on_the_stop_signal_ends_the_wait() {
    a_leftover_ending_on_the_stop_signal_ends_the_wait(false, "leftover-term");
}

#[test]
fn as_pid_1_a_leftover_ending_on_the_stop_signal_ends_the_wait() {
    a_leftover_ending_on_the_stop_signal_ends_the_wait(true, "leftover-term-pid1");
}

/// A stop under way when the game exits: the leftover keeps the stop's kill timer (what is
/// left of the grace period), counted from the SIGTERM, not from the game's exit.
#[test]
fn a_leftover_of_a_stop_gets_what_is_left_of_the_grace() {
    let record = scratch_dir("leftover-stop").join("signals");
    let mut command = agent_command();
    command
        .args(["--grace-period", "2000ms", "--kill-margin", "500ms", "--"])
        .arg(FAKE_GAME)
        .arg("--record-signals")
        .arg(&record)
        .args([
            "--grandchild",
            "--grandchild-ignores-term",
            "--on-term-exit",
            "0",
            "--on-term-delay-ms",
            "700",
        ]);
    let mut agent = Running::start(command);
    agent.wait_lines(&["GRANDCHILD-READY", "READY"]);
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    let term = Instant::now();
    let (status, _) = agent.wait_exit(DEADLINE);
    let after = term.elapsed();
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
    let kill_at = GRACE - MARGIN;
    assert!(
        after >= kill_at && after < kill_at + Duration::from_millis(900),
        "exited {after:?} after SIGTERM, expected at {kill_at:?}"
    );
    assert_eq!(
        lines_of(&record.with_file_name("signals.grandchild")),
        ["SIGTERM"]
    );
}
