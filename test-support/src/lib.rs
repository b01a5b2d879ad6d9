//! Test helpers shared by the agent's and the emulator's black-box tests (a dev-dependency of
//! both, never shipped): start a real binary and read its output as it comes, wait for
//! conditions under deadlines (never sleep and then assert), find the workspace's binaries
//! in the target directory of the test that runs, and drive `edgegap-emulator` over HTTP
//! ([`emulator`]). Helpers only one suite uses stay with that suite (`tests/support/`).

pub mod emulator;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A generous bound for things that should take milliseconds, so a loaded CI machine does
/// not fail a correct program; a broken one still fails by timing out.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The directory the running test's binaries were built into
/// (`target/<triple>/<profile>/`): a test executable lives in its `deps/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the test executable's directory");
    deps.parent()
        .expect("the target directory above deps/")
        .to_path_buf()
}

/// A binary of another workspace package, built beside the running test. `CARGO_BIN_EXE_*`
/// only names the test's own package's binaries; `cargo test` at the workspace root builds
/// every member's binaries before any test runs, but a run of one package or one test target
/// may not, so a missing one fails with the command that builds it.
pub fn workspace_binary(name: &str, package: &str) -> PathBuf {
    let dir = target_dir();
    let path = dir.join(name);
    if !path.exists() {
        let profile = dir.file_name().and_then(|p| p.to_str()).unwrap_or("debug");
        let flag = match profile {
            "debug" => String::new(),
            "release" => " --release".to_owned(),
            other => format!(" --profile {other}"),
        };
        panic!(
            "{} is missing: `cargo test{flag}` at the workspace root builds it; alone, build it \
             first with `cargo build{flag} -p {package} --bin {name}`",
            path.display()
        );
    }
    path
}

fn cached(cell: &'static OnceLock<String>, name: &str, package: &str) -> &'static str {
    cell.get_or_init(|| workspace_binary(name, package).display().to_string())
}

/// The agent's scriptable fake game server (`tests/support/fake_game.rs`).
pub fn fake_game() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    cached(&PATH, "fake-game", "edgegap-agent")
}

/// The platform emulator (`edgegap-emulator`).
pub fn emulator_binary() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    cached(&PATH, "edgegap-emulator", "edgegap-emulator")
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
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", command.get_program()));
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
