//! Exit codes of the real agent binary: the game's own code, 128+N for a signal death, the
//! remap, and the agent's own failures (64, 126, 127), each row of `src/exit_code.rs`.

mod support;

use std::os::unix::fs::PermissionsExt;

use support::{agent_command, scratch_dir, Running, FAKE_GAME};

fn run(agent_args: &[&str], game_args: &[&str]) -> Running {
    let mut command = agent_command();
    command
        .args(agent_args)
        .arg("--")
        .arg(FAKE_GAME)
        .args(game_args);
    Running::start(command)
}

#[test]
fn the_games_exit_code_passes_through() {
    for code in [0, 1, 7, 255] {
        let mut agent = run(&[], &["--exit", &code.to_string()]);
        assert_eq!(agent.exit_code(), code);
    }
}

#[test]
fn a_signal_death_exits_128_plus_the_signal() {
    for (signal, code) in [(10, 138), (15, 143), (9, 137), (6, 134)] {
        let mut agent = run(&[], &["--die-signal", &signal.to_string()]);
        assert_eq!(agent.exit_code(), code, "signal {signal}");
    }
}

#[test]
fn the_exit_code_map_remaps_from_the_flag_and_from_its_env_twin() {
    let mut agent = run(&["--exit-code-map", "7=0,143=0"], &["--exit", "7"]);
    assert_eq!(agent.exit_code(), 0);
    let mut agent = run(&["--exit-code-map", "7=0,143=0"], &["--die-signal", "15"]);
    assert_eq!(agent.exit_code(), 0);
    let mut agent = run(&["--exit-code-map", "7=0"], &["--exit", "8"]);
    assert_eq!(agent.exit_code(), 8);

    let mut command = agent_command();
    command
        .env("EDGEGAP_AGENT_EXIT_CODE_MAP", "3=42")
        .args(["--", FAKE_GAME, "--exit", "3"]);
    assert_eq!(Running::start(command).exit_code(), 42);
}

#[test]
fn a_missing_command_exits_127_and_says_so() {
    let mut command = agent_command();
    command.args(["--", "/nonexistent/game-server"]);
    let mut agent = Running::start(command);
    assert_eq!(agent.exit_code(), 127);
    assert!(
        agent
            .stderr()
            .contains("command not found: \"/nonexistent/game-server\""),
        "{}",
        agent.stderr()
    );

    let mut command = agent_command();
    command.args(["--", "no-such-game-server-on-path"]);
    assert_eq!(Running::start(command).exit_code(), 127);
}

#[test]
fn a_command_that_cannot_be_executed_exits_126() {
    let dir = scratch_dir("not-executable");
    let file = dir.join("server.sh");
    std::fs::write(&file, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    for target in [file.as_path(), dir.as_path()] {
        let mut command = agent_command();
        command.arg("--").arg(target);
        let mut agent = Running::start(command);
        assert_eq!(agent.exit_code(), 126, "{target:?}");
        assert!(
            agent.stderr().contains("cannot be executed"),
            "{}",
            agent.stderr()
        );
    }
}

/// Bad flags and variables: exit 64, one error naming the flag (and variable) and the
/// value, and the game is never started.
#[test]
fn bad_configuration_exits_64_names_the_culprit_and_does_not_start_the_game() {
    let dir = scratch_dir("bad-config");
    let marker = dir.join("started");
    /// (flags, environment, what the error must mention)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            &["--grace-period", "soon"],
            &[],
            &["--grace-period", "\"soon\""],
        ),
        (&["--kill-margin", "-1s"], &[], &["--kill-margin", "-1s"]),
        (
            &["--stop-signal", "SIGNOPE"],
            &[],
            &["--stop-signal", "SIGNOPE"],
        ),
        (
            &["--forward-signal-map", "TERM"],
            &[],
            &["--forward-signal-map", "FROM=TO"],
        ),
        (
            &["--forward-signal-map", "KILL=TERM"],
            &[],
            &["--forward-signal-map", "SIGKILL"],
        ),
        (
            &["--exit-code-map", "300=0"],
            &[],
            &["--exit-code-map", "\"300\""],
        ),
        (&["--log-format", "xml"], &[], &["--log-format", "xml"]),
        (&["--log-level", "loud"], &[], &["--log-level", "loud"]),
        (&["--no-such-flag"], &[], &["--no-such-flag"]),
        (
            &["--grace-period", "1s", "--kill-margin", "2s"],
            &[],
            &["--grace-period (1s)", "--kill-margin (2s)"],
        ),
        (
            &[],
            &[("EDGEGAP_AGENT_GRACE_PERIOD", "forever")],
            &[
                "--grace-period",
                "\"forever\"",
                "EDGEGAP_AGENT_GRACE_PERIOD",
            ],
        ),
        (
            &[],
            &[("EDGEGAP_AGENT_STOP_SIGNAL", "BOGUS")],
            &["--stop-signal", "BOGUS", "EDGEGAP_AGENT_STOP_SIGNAL"],
        ),
        (
            &[],
            &[("EDGEGAP_AGENT_LOG", "chatty")],
            &["--log-level", "chatty", "EDGEGAP_AGENT_LOG"],
        ),
    ];
    for (args, env, expected) in cases {
        let mut command = agent_command();
        command
            .args(*args)
            .envs(env.iter().copied())
            .arg("--")
            .arg(FAKE_GAME)
            .arg("--touch")
            .arg(&marker);
        let mut agent = Running::start(command);
        assert_eq!(
            agent.exit_code(),
            64,
            "{args:?} {env:?}: {}",
            agent.stderr()
        );
        let stderr = agent.stderr();
        for needle in *expected {
            assert!(
                stderr.contains(needle),
                "{args:?} {env:?}: {needle:?} missing from:\n{stderr}"
            );
        }
        assert!(!marker.exists(), "{args:?} {env:?}: the game was started");
    }
}

#[test]
fn no_command_is_sidecar_mode_and_help_and_version_exit_0() {
    // No command: sidecar mode (tests/sidecar.rs), which SIGTERM ends with 0.
    let mut agent = Running::start(agent_command());
    assert!(
        support::wait_until(support::DEADLINE, || agent
            .stderr()
            .contains("running in sidecar mode")),
        "{}",
        agent.stderr()
    );
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0, "{}", agent.stderr());

    let mut command = agent_command();
    command.arg("--help");
    let mut agent = Running::start(command);
    agent.wait_line("Runs a game server on Edgegap");
    assert_eq!(agent.exit_code(), 0);

    let mut command = agent_command();
    command.arg("--version");
    let mut agent = Running::start(command);
    assert_eq!(
        agent.wait_line("edgegap-agent "),
        format!("edgegap-agent {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(agent.exit_code(), 0);
}

#[test]
fn help_lists_every_option_with_its_environment_twin() {
    let mut command = agent_command();
    command.arg("--help");
    let mut agent = Running::start(command);
    let mut help = Vec::new();
    while help
        .last()
        .is_none_or(|l: &String| !l.contains("environment variable shown"))
    {
        help.push(agent.wait_line(""));
    }
    let help = help.join("\n");
    for twin in [
        "EDGEGAP_AGENT_STOP_SIGNAL",
        "EDGEGAP_AGENT_FORWARD_SIGNAL_MAP",
        "EDGEGAP_AGENT_GRACE_PERIOD",
        "EDGEGAP_AGENT_KILL_MARGIN",
        "EDGEGAP_AGENT_EXIT_CODE_MAP",
        "EDGEGAP_AGENT_LOG_FORMAT",
        "EDGEGAP_AGENT_LOG",
    ] {
        assert!(help.contains(twin), "{twin} missing from --help:\n{help}");
    }
    assert_eq!(agent.exit_code(), 0);
}
