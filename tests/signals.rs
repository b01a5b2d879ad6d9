//! Signals with the real agent and real processes: forwarding to the game's whole process
//! group, rewriting, the stop signal, and the grace period ending in SIGKILL.

mod support;

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::{agent_command, lines_of, scratch_dir, wait_until, Running, DEADLINE, FAKE_GAME};

/// Starts the agent around a fake game that records signals (and, with `grandchild`, a
/// grandchild in its process group that does too) and waits until they are ready.
fn start_recording(
    agent_args: &[&str],
    game_args: &[&str],
    record: &Path,
    grandchild: bool,
) -> Running {
    let mut command = agent_command();
    command
        .args(agent_args)
        .arg("--")
        .arg(FAKE_GAME)
        .arg("--record-signals")
        .arg(record)
        .args(game_args);
    if grandchild {
        command.arg("--grandchild");
    }
    let mut agent = Running::start(command);
    if grandchild {
        agent.wait_lines(&["GRANDCHILD-READY", "READY"]);
    } else {
        agent.wait_ready();
    }
    agent
}

fn wait_for_record(path: &Path, expected: &[&str]) {
    let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    assert!(
        wait_until(DEADLINE, || lines_of(path) == expected),
        "{path:?}: expected {expected:?}, got {:?}",
        lines_of(path)
    );
}

#[test]
fn every_forwarded_signal_reaches_the_game_and_its_process_group() {
    let dir = scratch_dir("forward");
    let record = dir.join("signals");
    let grandchild = dir.join("signals.grandchild");
    let mut agent = start_recording(&[], &[], &record, true);
    let mut expected = Vec::new();
    for signal in [
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        agent.signal(signal);
        expected.push(signal.as_str());
        // One at a time: the kernel merges repeats of a pending signal, so the next one is
        // sent only once this one has arrived at both processes.
        wait_for_record(&record, &expected);
        wait_for_record(&grandchild, &expected);
    }
    // SIGTERM is a stop: it too reaches the whole group, which dies of it.
    agent.signal(Signal::SIGTERM);
    expected.push("SIGTERM");
    wait_for_record(&record, &expected);
    wait_for_record(&grandchild, &expected);
    assert_eq!(agent.exit_code(), 143);
}

#[test]
fn a_rewritten_signal_arrives_rewritten() {
    let dir = scratch_dir("rewrite");
    let record = dir.join("signals");
    let agent = start_recording(
        &["--forward-signal-map", "USR1=USR2,HUP=WINCH"],
        &["--ignore-term"],
        &record,
        false,
    );
    agent.signal(Signal::SIGUSR1);
    wait_for_record(&record, &["SIGUSR2"]);
    agent.signal(Signal::SIGHUP);
    wait_for_record(&record, &["SIGUSR2", "SIGWINCH"]);
    agent.signal(Signal::SIGQUIT);
    wait_for_record(&record, &["SIGUSR2", "SIGWINCH", "SIGQUIT"]);
}

/// SIGTERM stops with the configured stop signal; SIGINT (Ctrl-C) stops too, but reaches
/// the game as SIGINT, as it would without the agent.
#[test]
fn a_stop_sends_the_configured_stop_signal_and_sigint_stays_sigint() {
    let dir = scratch_dir("stop-signal");
    let record = dir.join("signals");
    let mut command = agent_command();
    command
        .env("EDGEGAP_AGENT_STOP_SIGNAL", "QUIT")
        .args(["--", FAKE_GAME, "--record-signals"])
        .arg(&record);
    let mut agent = Running::start(command);
    agent.wait_ready();
    agent.signal(Signal::SIGINT);
    wait_for_record(&record, &["SIGINT"]);
    assert!(
        wait_until(DEADLINE, || agent
            .stderr()
            .contains("stopping the game: SIGINT received")),
        "{}",
        agent.stderr()
    );
    agent.signal(Signal::SIGTERM);
    wait_for_record(&record, &["SIGINT", "SIGQUIT"]);
}

#[test]
fn a_game_that_exits_on_sigterm_ends_the_agent_promptly_with_its_code() {
    let dir = scratch_dir("prompt-exit");
    let record = dir.join("signals");
    let mut agent = start_recording(
        &["--grace-period", "60s"],
        &["--on-term-exit", "3"],
        &record,
        false,
    );
    agent.signal(Signal::SIGTERM);
    let started = std::time::Instant::now();
    let (status, _) = agent.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(3));
    // Far inside the 59 s before the kill: the agent did not wait for the grace period.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(lines_of(&record), ["SIGTERM"]);
}

/// A game that ignores SIGTERM is SIGKILLed at grace period minus kill margin, measured from
/// the first SIGTERM: a second SIGTERM in between does not restart the timer.
#[test]
fn a_game_ignoring_sigterm_is_killed_at_grace_minus_margin() {
    let dir = scratch_dir("grace");
    let record = dir.join("signals");
    let grace = Duration::from_millis(2500);
    let margin = Duration::from_millis(500);
    let mut agent = start_recording(
        &["--grace-period", "2500ms", "--kill-margin", "500ms"],
        &["--ignore-term"],
        &record,
        true,
    );
    agent.signal(Signal::SIGTERM);
    let first_term = std::time::Instant::now();
    wait_for_record(&record, &["SIGTERM"]);
    // Halfway through the grace period, a second SIGTERM.
    assert!(!wait_until(Duration::from_millis(1000), || agent
        .child
        .try_wait()
        .unwrap()
        .is_some()));
    agent.signal(Signal::SIGTERM);
    wait_for_record(&record, &["SIGTERM", "SIGTERM"]);
    let (status, _) = agent.wait_exit(DEADLINE);
    let killed_after = first_term.elapsed();
    assert_eq!(status.code(), Some(137), "{}", agent.stderr());
    let expected = grace - margin;
    assert!(
        killed_after >= expected && killed_after < expected + Duration::from_millis(900),
        "killed after {killed_after:?}, expected at {expected:?} after the first SIGTERM"
    );
    assert!(
        agent.stderr().contains("grace period over"),
        "{}",
        agent.stderr()
    );
}

#[test]
fn the_game_gets_the_api_url_and_the_inherited_environment() {
    let mut command = agent_command();
    command.env("GAME_SETTING", "kept").args([
        "--",
        FAKE_GAME,
        "--print-env",
        "EDGEGAP_AGENT_URL",
        "--print-env",
        "GAME_SETTING",
        "--exit",
        "0",
    ]);
    let mut agent = Running::start(command);
    assert!(agent
        .wait_line("ENV EDGEGAP_AGENT_URL=")
        .starts_with("ENV EDGEGAP_AGENT_URL=http://127.0.0.1:"));
    assert_eq!(agent.wait_line("ENV GAME_SETTING"), "ENV GAME_SETTING=kept");
    assert_eq!(agent.exit_code(), 0);
}

#[test]
fn the_agents_log_lines_are_marked_and_json_lines_are_json() {
    let mut command = agent_command();
    command.args(["--", FAKE_GAME, "--exit", "0"]);
    let mut agent = Running::start(command);
    assert_eq!(agent.exit_code(), 0);
    let stderr = agent.stderr();
    assert!(stderr.lines().count() >= 2, "{stderr}");
    assert!(
        stderr.lines().all(|l| l.starts_with("[edgegap-agent] ")),
        "{stderr}"
    );

    let mut command = agent_command();
    command.args(["--log-format", "json", "--", FAKE_GAME, "--exit", "0"]);
    let mut agent = Running::start(command);
    assert_eq!(agent.exit_code(), 0);
    let stderr = agent.stderr();
    assert!(stderr.lines().count() >= 2, "{stderr}");
    assert!(
        stderr.lines().all(|l| l.starts_with('{')
            && l.ends_with('}')
            && l.contains("\"target\":\"edgegap_agent")),
        "{stderr}"
    );
}

/// If the agent itself is killed, the game does not run on unsupervised.
#[test]
fn a_killed_agent_takes_the_game_with_it() {
    let mut command = agent_command();
    command.args(["--", FAKE_GAME, "--ignore-term"]);
    let mut agent = Running::start(command);
    let game = agent.wait_ready();
    agent.signal(Signal::SIGKILL);
    let gone = || {
        std::fs::read_to_string(format!("/proc/{game}/stat"))
            .map(|stat| {
                stat.rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    };
    assert!(
        wait_until(DEADLINE, gone),
        "the game {game} outlived its agent"
    );
}
