//! Every signal 1–31 sent to the real agent, as PID 1 of a new PID namespace
//! (`unshare --pid --fork --mount-proc`, as in tests/reaping.rs) and as an ordinary process:
//! each one the agent forwards reaches the game as sent (`fake-game --record-all` records
//! them), the agent survives every one, and KILL and STOP do what the kernel makes them do.
//! Then job control: SIGTSTP, SIGTTIN and SIGTTOU stop the game, and the agent too unless it
//! is PID 1; SIGCONT resumes both.

mod support;

use std::path::PathBuf;
use std::process::Command;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::{
    agent_as_pid1_command, agent_command, children_of, lines_of, pid1_agent_of, scratch_dir,
    state_of, wait_until, Running, DEADLINE, FAKE_GAME,
};

/// The agent around a game that records every signal it gets.
struct Probe {
    running: Running,
    /// The agent's pid as the test sees it (inside the namespace it is 1).
    agent: Pid,
    record: PathBuf,
    expected: Vec<String>,
}

impl Probe {
    fn start(pid1: bool, name: &str, game_args: &[&str]) -> Probe {
        let record = scratch_dir(name).join("signals");
        let mut command = if pid1 {
            agent_as_pid1_command()
        } else {
            agent_command()
        };
        command
            .args(["--grace-period", "60s", "--", FAKE_GAME, "--record-signals"])
            .arg(&record)
            .args(game_args);
        let mut running = Running::start(command);
        running.wait_ready();
        let agent = if pid1 {
            pid1_agent_of(&running)
        } else {
            running.pid()
        };
        if pid1 {
            assert!(
                wait_until(DEADLINE, || running.stderr().contains("running as PID 1")),
                "{}",
                running.stderr()
            );
        }
        Probe {
            running,
            agent,
            record,
            expected: Vec::new(),
        }
    }

    /// The game, seen from the test: the agent's only child.
    fn game(&self) -> Pid {
        let children = children_of(self.agent);
        assert_eq!(children.len(), 1, "the agent's children: {children:?}");
        children[0].0
    }

    fn send(&self, signal: Signal) {
        kill(self.agent, signal).unwrap_or_else(|e| panic!("kill {signal}: {e}"));
    }

    /// Waits until the game has recorded `signal` after everything before it.
    fn expect(&mut self, signal: Signal) {
        self.expected.push(signal.as_str().to_owned());
        assert!(
            wait_until(DEADLINE, || lines_of(&self.record) == self.expected),
            "expected {:?}, the game recorded {:?}; agent stderr:\n{}",
            self.expected,
            lines_of(&self.record),
            self.running.stderr()
        );
    }

    fn wait_state(&self, pid: Pid, wanted: impl Fn(char) -> bool, what: &str) {
        assert!(
            wait_until(DEADLINE, || state_of(pid).is_some_and(&wanted)),
            "{pid} never became {what}: state {:?}",
            state_of(pid)
        );
    }

    fn assert_agent_alive(&self, after: Signal) {
        let state = state_of(self.agent);
        assert!(
            state.is_some_and(|s| s != 'Z'),
            "the agent died of {after}: state {state:?}; stderr:\n{}",
            self.running.stderr()
        );
    }
}

fn stopped(state: char) -> bool {
    state == 'T'
}

fn running(state: char) -> bool {
    !matches!(state, 'T' | 't' | 'Z')
}

/// Sends every signal but KILL, STOP, INT and TERM, in order, each once the previous one has
/// arrived (the kernel merges repeats of a pending signal); job-control stops are followed by
/// a SIGCONT when they stopped the agent.
fn probe_every_catchable_signal(probe: &mut Probe, pid1: bool) {
    for number in 1..=31 {
        let signal = Signal::try_from(number).unwrap();
        match signal {
            Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGINT | Signal::SIGTERM => continue,
            // The agent's own (a child ended): nothing to forward. That the next signal is
            // still forwarded shows the agent took it in its stride.
            Signal::SIGCHLD => probe.send(signal),
            Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU => {
                probe.send(signal);
                probe.expect(signal);
                if pid1 {
                    // Never stopped: the next signal is forwarded, which a stopped agent could
                    // not do.
                    assert_ne!(state_of(probe.agent), Some('T'));
                } else {
                    probe.wait_state(probe.agent, stopped, "stopped");
                    probe.send(Signal::SIGCONT);
                    probe.expect(Signal::SIGCONT);
                    probe.wait_state(probe.agent, running, "running");
                }
            }
            _ => {
                probe.send(signal);
                probe.expect(signal);
            }
        }
        probe.assert_agent_alive(signal);
    }
}

/// SIGINT is a stop, and the game gets SIGINT; SIGTERM then sends the stop signal again and
/// the game dies of it: the agent exits 143, having survived every signal before.
fn stop_with_int_then_term(probe: &mut Probe) {
    probe.send(Signal::SIGINT);
    probe.expect(Signal::SIGINT);
    probe.assert_agent_alive(Signal::SIGINT);
    probe.send(Signal::SIGTERM);
    probe.expect(Signal::SIGTERM);
    assert_eq!(probe.running.exit_code(), 143, "{}", probe.running.stderr());
}

#[test]
fn every_signal_reaches_the_game_and_none_kills_the_agent() {
    let mut probe = Probe::start(false, "probe", &["--record-all"]);
    probe_every_catchable_signal(&mut probe, false);
    // SIGSTOP cannot be caught: the kernel stops the agent (not the game), and SIGCONT resumes
    // it and is forwarded.
    let game = probe.game();
    probe.send(Signal::SIGSTOP);
    probe.wait_state(probe.agent, stopped, "stopped");
    assert_ne!(state_of(game), Some('T'), "SIGSTOP is not forwarded");
    probe.send(Signal::SIGCONT);
    probe.expect(Signal::SIGCONT);
    probe.wait_state(probe.agent, running, "running");
    stop_with_int_then_term(&mut probe);
    // SIGKILL: tests/signals.rs (the game dies with the agent).
}

#[test]
fn as_pid_1_every_signal_reaches_the_game_and_none_kills_the_agent() {
    let mut probe = Probe::start(true, "probe-pid1", &["--record-all"]);
    probe_every_catchable_signal(&mut probe, true);
    // From inside its namespace, PID 1 gets neither KILL nor STOP: the kernel drops them.
    for signal in ["STOP", "KILL"] {
        let status = Command::new("nsenter")
            .args(["--target", &probe.agent.to_string(), "--pid", "--"])
            .args(["/bin/sh", "-c", &format!("kill -{signal} 1")])
            .status()
            .unwrap();
        assert!(status.success(), "nsenter kill -{signal} 1: {status}");
        assert!(
            state_of(probe.agent).is_some_and(running),
            "SIG{signal} from inside: {:?}",
            state_of(probe.agent)
        );
    }
    // From the host (an ancestor namespace) the kernel does deliver STOP to PID 1.
    probe.send(Signal::SIGSTOP);
    probe.wait_state(probe.agent, stopped, "stopped");
    probe.send(Signal::SIGCONT);
    probe.expect(Signal::SIGCONT);
    probe.wait_state(probe.agent, running, "running");
    stop_with_int_then_term(&mut probe);
}

/// Job control with a game that lets SIGTSTP, SIGTTIN and SIGTTOU stop it: each stops the
/// game's group, and the agent with it unless it is PID 1; SIGCONT resumes both.
fn job_control(pid1: bool, name: &str) {
    let mut probe = Probe::start(pid1, name, &["--record-all", "--stoppable"]);
    let game = probe.game();
    for signal in [Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU] {
        probe.send(signal);
        probe.wait_state(game, stopped, "stopped");
        if pid1 {
            // The SIGCONT below is forwarded, so the agent was never stopped.
            assert_ne!(
                state_of(probe.agent),
                Some('T'),
                "PID 1 stopped on {signal}"
            );
        } else {
            probe.wait_state(probe.agent, stopped, "stopped");
        }
        probe.send(Signal::SIGCONT);
        probe.expect(Signal::SIGCONT);
        probe.wait_state(game, running, "running");
        probe.wait_state(probe.agent, running, "running");
    }
    probe.send(Signal::SIGTERM);
    probe.expect(Signal::SIGTERM);
    assert_eq!(probe.running.exit_code(), 143, "{}", probe.running.stderr());
}

#[test]
fn job_control_stops_and_resumes_the_game_and_the_agent() {
    job_control(false, "job-control");
}

#[test]
fn as_pid_1_job_control_stops_and_resumes_the_game_but_never_the_agent() {
    job_control(true, "job-control-pid1");
}
