//! Sidecar mode watching processes it did not start, black box: `--watch-pid` on a real
//! process of the test's, `--watch-parent` under a real shell (`edgegap-agent --watch-parent &
//! exec sleep`), and the agent's exit when its parent dies with no watch (the parent-death
//! signal). The fake platform on 127.0.0.1:0 counts the self-stops.

#[path = "support/fake_platform.rs"]
mod fake_platform;
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[path = "support/sidecar.rs"]
mod sidecar;
mod support;

use std::process::{Child, Command};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use sidecar::{api_addr, has_exited, sidecar_command, wait_log, Platform};
use support::{wait_until, Running, DEADLINE};

fn sleeper() -> Child {
    Command::new("sleep").arg("60").spawn().unwrap()
}

#[test]
fn watch_pid_self_stops_once_when_the_process_ends_then_exits_0() {
    let platform = Platform::start();
    let mut game = sleeper();
    let mut command = sidecar_command(&platform);
    command.args([
        "--watch-pid",
        &game.id().to_string(),
        "--self-stop-wait",
        "60s",
    ]);
    let mut agent = Running::start(command);
    let addr = api_addr(&agent);
    wait_log(
        &agent,
        &format!("watching process {} (--watch-pid)", game.id()),
    );
    let shown = http::get(addr, "/v1/status").json();
    assert_eq!(shown["child_pid"], game.id(), "{shown}");
    assert_eq!(platform.self_stops(), 0);

    // Killed and not yet reaped (a zombie): its end is seen all the same.
    game.kill().unwrap();
    assert_eq!(agent.exit_code(), 0, "{}", agent.stderr());
    let stderr = agent.stderr();
    assert!(stderr.contains("the watched process has ended"), "{stderr}");
    assert!(
        stderr.contains("match ended: the game exited with code 0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the platform accepted the self-stop: exiting"),
        "{stderr}"
    );
    assert_eq!(platform.self_stops(), 1);
    game.wait().unwrap();
}

/// A process that ended before the agent looked, not yet reaped (as one ending between the
/// agent's start and its pidfd_open): its end is seen at once.
#[test]
fn watch_pid_of_a_process_already_ended_ends_the_match_at_once() {
    let platform = Platform::start();
    let mut game = sleeper();
    game.kill().unwrap();
    assert!(wait_until(DEADLINE, || support::state_of(Pid::from_raw(
        game.id() as i32
    )) == Some('Z')));
    let mut command = sidecar_command(&platform);
    command.args(["--watch-pid", &game.id().to_string()]);
    let mut agent = Running::start(command);
    assert_eq!(agent.exit_code(), 0, "{}", agent.stderr());
    assert!(
        agent.stderr().contains("the watched process has ended"),
        "{}",
        agent.stderr()
    );
    assert_eq!(platform.self_stops(), 1);
    game.wait().unwrap();
}

#[test]
fn watch_pid_with_an_exit_policy_exits_without_self_stop() {
    let platform = Platform::start();
    let mut game = sleeper();
    let mut command = sidecar_command(&platform);
    command.args(["--watch-pid", &game.id().to_string(), "--on-exit", "0=exit"]);
    let mut agent = Running::start(command);
    wait_log(&agent, "watching process");
    game.kill().unwrap();
    game.wait().unwrap();
    assert_eq!(agent.exit_code(), 0, "{}", agent.stderr());
    assert_eq!(platform.self_stops(), 0);
}

/// `sh -c '<agent> ARGS & echo AGENT $!; exec sleep 60'`: the agent's parent is the shell,
/// then `sleep` in its place. Returns the shell (the parent) and the agent's pid.
fn under_a_shell(agent: Command) -> (Running, Pid) {
    let mut shell = Command::new("sh");
    for (key, value) in agent.get_envs() {
        match value {
            Some(value) => shell.env(key, value),
            None => shell.env_remove(key),
        };
    }
    shell
        .arg("-c")
        .arg(r#""$0" "$@" & echo "AGENT $!"; exec sleep 60"#)
        .arg(agent.get_program())
        .args(agent.get_args());
    let mut parent = Running::start(shell);
    let line = parent.wait_line("AGENT ");
    let pid = Pid::from_raw(line["AGENT ".len()..].trim().parse().unwrap());
    wait_log(&parent, "running in sidecar mode");
    (parent, pid)
}

fn wait_exited(parent: &Running, agent: Pid) {
    assert!(
        wait_until(DEADLINE, || has_exited(agent)),
        "the agent {agent} outlived its parent:\n{}",
        parent.stderr()
    );
}

#[test]
fn watch_parent_self_stops_once_when_the_parent_ends_then_exits() {
    let platform = Platform::start();
    let mut command = sidecar_command(&platform);
    command.args(["--watch-parent", "--self-stop-wait", "60s"]);
    let (mut parent, agent) = under_a_shell(command);
    wait_log(
        &parent,
        &format!(
            "watching its parent, process {} (--watch-parent)",
            parent.pid()
        ),
    );
    let addr = api_addr(&parent);
    assert_eq!(http::get(addr, "/healthz").status, 200);
    assert_eq!(platform.self_stops(), 0);

    parent.signal(Signal::SIGKILL);
    parent.wait_exit(DEADLINE);
    wait_exited(&parent, agent);
    let stderr = parent.stderr();
    assert!(stderr.contains("the watched process has ended"), "{stderr}");
    assert!(stderr.contains("exiting code=0"), "{stderr}");
    assert_eq!(platform.self_stops(), 1);
}

#[test]
fn with_no_watch_the_agent_exits_with_its_parent() {
    let platform = Platform::start();
    let (mut parent, agent) = under_a_shell(sidecar_command(&platform));
    wait_log(&parent, "watching no process");
    let addr = api_addr(&parent);
    assert_eq!(http::get(addr, "/healthz").status, 200);

    parent.signal(Signal::SIGKILL);
    parent.wait_exit(DEADLINE);
    wait_exited(&parent, agent);
    let stderr = parent.stderr();
    assert!(
        stderr.contains("signal received signal=\"SIGTERM\""),
        "{stderr}"
    );
    assert!(stderr.contains("exiting code=0"), "{stderr}");
    // Its port is free again, and no self-stop was made: the match did not end.
    assert!(http::call(addr, "GET", "/healthz", &[], b"").is_err());
    assert_eq!(platform.self_stops(), 0);
}
