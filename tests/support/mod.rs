//! Helpers for black-box tests of the real binaries: start the agent around the fake game,
//! read its output as it comes, and wait for conditions under deadlines (never sleep and
//! then assert).
#![allow(dead_code)]

#[cfg(feature = "container-tests")]
pub mod docker;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod emulator;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub const AGENT: &str = env!("CARGO_BIN_EXE_edgegap-agent");
pub const FAKE_GAME: &str = env!("CARGO_BIN_EXE_fake-game");

/// A generous bound for things that should take milliseconds, so a loaded CI machine does
/// not fail a correct agent; a broken agent still fails by timing out.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The example game server (examples/game_server.rs), built beside the agent: `cargo test`
/// builds examples, but a run limited to one test target (`--test NAME`) does not.
pub fn example_game() -> PathBuf {
    let path = Path::new(AGENT)
        .parent()
        .unwrap()
        .join("examples")
        .join("game_server");
    assert!(
        path.exists(),
        "{} is missing: build it with the same profile and features first, e.g. \
         `cargo build --release --features container-tests --bins --examples`",
        path.display()
    );
    path
}

/// The agent's command with every `EDGEGAP_AGENT_*`/`ARBITRIUM_*` variable of the test's
/// own environment removed, so the developer's shell cannot change a test's meaning, and the
/// local API on a free port (tests run in parallel; the default 7070 would collide).
pub fn agent_command() -> Command {
    let mut command = Command::new(AGENT);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("EDGEGAP_AGENT_") || key_text.starts_with("ARBITRIUM_") {
            command.env_remove(&key);
        }
    }
    command.env("EDGEGAP_AGENT_API_ADDR", "127.0.0.1:0");
    command
}

/// Starts the agent (its API on a free port) around the fake game with `game_args`; the game
/// prints the `EDGEGAP_AGENT_URL` it was given, which tells the test the API's address.
pub fn start_with_api(agent_args: &[&str], game_args: &[&str]) -> (Running, std::net::SocketAddr) {
    start_with_api_env(&[], agent_args, game_args)
}

/// As [`start_with_api`], with `env` added to the agent's environment (e.g. `ARBITRIUM_*`).
pub fn start_with_api_env(
    env: &[(&str, &str)],
    agent_args: &[&str],
    game_args: &[&str],
) -> (Running, std::net::SocketAddr) {
    let mut command = agent_command();
    command
        .envs(env.iter().copied())
        .args(agent_args)
        .args(["--", FAKE_GAME, "--print-env", "EDGEGAP_AGENT_URL"])
        .args(game_args);
    let mut agent = Running::start(command);
    let line = agent.wait_line("ENV EDGEGAP_AGENT_URL=");
    let url = &line["ENV EDGEGAP_AGENT_URL=".len()..];
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("{url:?} is not http://IP:PORT: {e}"));
    (agent, addr)
}

/// A scratch directory unique to one test.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("edgegap-agent-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A started process whose stdout lines arrive on a channel and whose stderr is collected.
pub struct Running {
    pub child: Child,
    stdout: Receiver<String>,
    pub stdout_seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    stderr_closed: Arc<AtomicBool>,
    pub started: Instant,
}

impl Running {
    pub fn start(command: Command) -> Running {
        Running::start_with(command, None, None)
    }

    /// As [`Running::start`], with stdout and/or stderr going where the test says (a FIFO,
    /// say) instead of being read by the test; such a stream yields no lines here.
    pub fn start_with(
        mut command: Command,
        stdout: Option<Stdio>,
        stderr: Option<Stdio>,
    ) -> Running {
        let stderr_given = stderr.is_some();
        command
            .stdin(Stdio::null())
            .stdout(stdout.unwrap_or_else(Stdio::piped))
            .stderr(stderr.unwrap_or_else(Stdio::piped));
        let started = Instant::now();
        let mut child = command.spawn().expect("start the agent");
        // The test's own copies of given streams must close, so their readers see the end.
        drop(command);
        let (sender, stdout) = channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { return };
                    if sender.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_closed = Arc::new(AtomicBool::new(stderr_given));
        if let Some(mut err) = child.stderr.take() {
            let collected = stderr.clone();
            let closed = stderr_closed.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                loop {
                    match err.read(&mut buffer) {
                        Ok(0) | Err(_) => return closed.store(true, Ordering::SeqCst),
                        Ok(n) => collected
                            .lock()
                            .unwrap()
                            .push_str(&String::from_utf8_lossy(&buffer[..n])),
                    }
                }
            });
        }
        Running {
            child,
            stdout,
            stdout_seen: Vec::new(),
            stderr,
            stderr_closed,
            started,
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap();
    }

    /// Waits for a stdout line that starts with `prefix` and returns it.
    pub fn wait_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    self.stdout_seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no stdout line starting with {prefix:?} within {DEADLINE:?}; stdout: {:?}; stderr:\n{}",
                    self.stdout_seen,
                    self.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "stdout closed before a line starting with {prefix:?}; stdout: {:?}; stderr:\n{}",
                    self.stdout_seen,
                    self.stderr()
                ),
            }
        }
    }

    /// Waits until a line starting with each of `prefixes` has been seen, in any order.
    pub fn wait_lines(&mut self, prefixes: &[&str]) {
        while let Some(missing) = prefixes
            .iter()
            .find(|p| !self.stdout_seen.iter().any(|l| l.starts_with(**p)))
        {
            self.wait_line(missing);
        }
    }

    /// The pid in the fake game's `READY pid=N` line.
    pub fn wait_ready(&mut self) -> Pid {
        let line = self.wait_line("READY pid=");
        Pid::from_raw(line["READY pid=".len()..].trim().parse().unwrap())
    }

    /// Every stdout line: those seen so far and the rest up to the end of the stream (call
    /// it after the exit; bounded, since a leftover grandchild may hold the pipe open).
    pub fn all_stdout(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => self.stdout_seen.push(line),
                Err(_) => break,
            }
        }
        self.stdout_seen.join("\n")
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the process to exit and returns its status and the time since it started.
    pub fn wait_exit(&mut self, within: Duration) -> (ExitStatus, Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let elapsed = self.started.elapsed();
                // Let the reader take in the last of stderr (a leftover grandchild may hold
                // the pipe open, so this is bounded rather than a join).
                wait_until(Duration::from_secs(2), || {
                    self.stderr_closed.load(Ordering::SeqCst)
                });
                return (status, elapsed);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("did not exit within {within:?}; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the exit and returns the exit code (panics if killed by a signal).
    pub fn exit_code(&mut self) -> i32 {
        let (status, _) = self.wait_exit(DEADLINE);
        status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {status:?}; stderr:\n{}", self.stderr()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `condition` until it holds or `within` has passed; returns whether it held.
pub fn wait_until(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The lines of a file, or none if it does not exist yet.
pub fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The processes whose parent is `parent`, with their state letter (`Z` for a zombie).
pub fn children_of(parent: Pid) -> Vec<(Pid, char)> {
    let mut children = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return children;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name, which is in parentheses and may contain spaces.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid: i32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == parent.as_raw() {
            children.push((Pid::from_raw(pid), state));
        }
    }
    children
}
