//! The guard: no game outlives its emulator, even a SIGKILLed one. At start the emulator
//! starts a copy of itself (`edgegap-emulator --internal-guard`) in a process group of its own,
//! with a pipe on its stdin, and tells it each deployment's process group and container as
//! they come and go (`+group PGID`, `-group PGID`, `+container NAME`, `-container NAME`). When
//! the pipe closes (the emulator is gone, however it ended), the guard SIGKILLs every group
//! still listed and removes every container still listed (`docker rm -f`), then exits. A
//! normal shutdown has stopped every deployment first, so the guard finds nothing to do.
//!
//! `PR_SET_PDEATHSIG` alone would not do: it reaches only the emulator's direct child, not
//! the game's own children in its group, and a container does not die with its `docker run`.

use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, PoisonError};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// The first argument that makes the binary a guard.
pub const GUARD_ARG: &str = "--internal-guard";

/// The emulator's side: the pipe to the guard (none if it could not be started).
pub struct Guard {
    pipe: Mutex<Option<ChildStdin>>,
    /// Kept so the guard is not reaped early; it exits by itself when the pipe closes.
    _child: Option<Child>,
}

impl Guard {
    /// Starts the guard process; without one (no `/proc/self/exe`, spawn refused) deployments
    /// still run, unguarded, and the emulator says so.
    pub fn start() -> Guard {
        let spawned = std::env::current_exe().and_then(|exe| {
            Command::new(exe)
                .arg(GUARD_ARG)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .process_group(0)
                .spawn()
        });
        match spawned {
            Ok(mut child) => Guard {
                pipe: Mutex::new(child.stdin.take()),
                _child: Some(child),
            },
            Err(error) => {
                super::say(&format!(
                    "cannot start the guard ({error}): a SIGKILLed emulator would leave its deployments running"
                ));
                Guard {
                    pipe: Mutex::new(None),
                    _child: None,
                }
            }
        }
    }

    fn tell(&self, line: &str) {
        let mut pipe = self.pipe.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(stdin) = pipe.as_mut() {
            if writeln!(stdin, "{line}")
                .and_then(|()| stdin.flush())
                .is_err()
            {
                *pipe = None;
            }
        }
    }

    pub fn watch_group(&self, pgid: u32) {
        self.tell(&format!("+group {pgid}"));
    }
    pub fn forget_group(&self, pgid: u32) {
        self.tell(&format!("-group {pgid}"));
    }
    pub fn watch_container(&self, name: &str) {
        self.tell(&format!("+container {name}"));
    }
    pub fn forget_container(&self, name: &str) {
        self.tell(&format!("-container {name}"));
    }
}

/// The guard process: follows the list on stdin; at its end, kills what is left. Returns the
/// exit code.
pub fn run() -> u8 {
    let mut groups: Vec<i32> = Vec::new();
    let mut containers: Vec<String> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.split_once(' ') {
            Some(("+group", pgid)) => groups.extend(pgid.parse::<i32>().ok()),
            Some(("-group", pgid)) => groups.retain(|g| Some(*g) != pgid.parse().ok()),
            Some(("+container", name)) => containers.push(name.to_owned()),
            Some(("-container", name)) => containers.retain(|c| c != name),
            _ => {}
        }
    }
    for pgid in &groups {
        // ESRCH: the group is gone already.
        let _ = killpg(Pid::from_raw(*pgid), Signal::SIGKILL);
    }
    for name in &containers {
        let _ = Command::new("docker")
            .args(["rm", "-f", name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    if !groups.is_empty() || !containers.is_empty() {
        eprintln!(
            "[edgegap-emulator] guard: the emulator is gone; killed {} deployment process group(s) and removed {} container(s)",
            groups.len(),
            containers.len()
        );
    }
    0
}
