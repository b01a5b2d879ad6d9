//! Zombies: the agent reaps every orphan the game leaves, as PID 1 of a real PID namespace
//! (`unshare --pid --fork --mount-proc`, which needs root or user namespaces) and as a child
//! subreaper when it is not PID 1.

mod support;

use std::process::Command;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use support::{agent_command, children_of, wait_until, Running, AGENT, DEADLINE, FAKE_GAME};

/// A process's pid in its own (innermost) PID namespace, from the `NSpid` line of its status.
fn namespace_pid(pid: Pid) -> Option<Pid> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace()
        .last()?
        .parse()
        .ok()
        .map(Pid::from_raw)
}

fn reaped_orphans(agent: &Running) -> usize {
    agent.stderr().matches("reaped an orphaned process").count()
}

/// Waits until every orphan is reaped and only the game is left as the agent's child:
/// a zombie keeps its parent until it is reaped, so one left behind fails the wait.
fn assert_all_reaped(agent: &Running, agent_pid: Pid, game_pid: Pid, orphans: usize) {
    assert!(
        wait_until(DEADLINE, || reaped_orphans(agent) == orphans),
        "reaped {} of {orphans} orphans; stderr tail:\n{}",
        reaped_orphans(agent),
        agent
            .stderr()
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        wait_until(DEADLINE, || children_of(agent_pid) == vec![(game_pid, 'S')]
            || children_of(agent_pid) == vec![(game_pid, 'R')]),
        "the agent's children should be the game alone: {:?}",
        children_of(agent_pid)
    );
    let zombies: Vec<_> = children_of(agent_pid)
        .into_iter()
        .filter(|(_, s)| *s == 'Z')
        .collect();
    assert!(zombies.is_empty(), "zombies left: {zombies:?}");
}

#[test]
fn as_a_subreaper_the_agent_reaps_orphaned_grandchildren() {
    let orphans = 50;
    let mut command = agent_command();
    command.args([
        "--log-level",
        "debug",
        "--",
        FAKE_GAME,
        "--orphans",
        &orphans.to_string(),
        "--orphan-ms",
        "300",
    ]);
    let mut agent = Running::start(command);
    agent.wait_line("ORPHANED");
    let game = agent.wait_ready();
    assert!(!agent.stderr().contains("running as PID 1"));
    // The orphans were re-parented to the agent (not to the system's init)...
    let agent_pid = agent.pid();
    assert!(
        wait_until(DEADLINE, || reaped_orphans(&agent)
            + children_of(agent_pid).len()
            > orphans),
        "orphans were not re-parented to the agent: {:?}",
        children_of(agent_pid)
    );
    // ...and every one of them was reaped.
    assert_all_reaped(&agent, agent_pid, game, orphans);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 143);
}

/// The agent as PID 1 of a fresh PID namespace: 1000 orphans, 0 zombies.
#[test]
fn as_pid_1_the_agent_reaps_a_thousand_orphans() {
    reap_as_pid_1(1000);
}

/// An orphan storm: 10,000 orphans, 0 zombies.
#[test]
fn as_pid_1_the_agent_survives_an_orphan_storm() {
    reap_as_pid_1(10_000);
}

fn reap_as_pid_1(orphans: usize) {
    let mut unshare = Command::new("unshare");
    if !nix::unistd::geteuid().is_root() {
        unshare.args(["--user", "--map-root-user"]);
    }
    unshare
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            AGENT,
            "--log-level",
            "debug",
            "--",
            FAKE_GAME,
        ])
        .args(["--orphans", &orphans.to_string(), "--orphan-ms", "200"]);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("EDGEGAP_AGENT_") {
            unshare.env_remove(key);
        }
    }
    unshare.env("EDGEGAP_AGENT_API_ADDR", "127.0.0.1:0");
    let mut agent = Running::start(unshare);
    agent.wait_line("ORPHANED");
    // The pid the game reports is the one it has inside the namespace.
    let game_in_namespace = agent.wait_ready();
    assert!(
        wait_until(DEADLINE, || agent.stderr().contains("running as PID 1")),
        "{}",
        agent.stderr()
    );
    // `unshare --fork` forks once: its only child is the agent, PID 1 inside.
    let host_agent = children_of(agent.pid())
        .first()
        .map(|(pid, _)| *pid)
        .expect("unshare's child, the agent");
    // Pids wrap around with this many processes: find the game by its pid in the namespace.
    let host_game = children_of(host_agent)
        .into_iter()
        .map(|(pid, _)| pid)
        .find(|pid| namespace_pid(*pid) == Some(game_in_namespace))
        .expect("the game");
    assert_all_reaped(&agent, host_agent, host_game, orphans);
    nix::sys::signal::kill(host_agent, Signal::SIGTERM).unwrap();
    assert_eq!(agent.exit_code(), 143);
}
