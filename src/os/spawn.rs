//! Starting the game server: its own process group, a clean signal state, inherited stdio.

use std::ffi::OsString;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;

/// Why the command could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("command not found: {program:?}")]
    NotFound { program: OsString },
    #[error("command cannot be executed: {program:?}: {source}")]
    NotExecutable {
        program: OsString,
        source: io::Error,
    },
    #[error("cannot start {program:?}: {source}")]
    Other {
        program: OsString,
        source: io::Error,
    },
}

/// Where a started process's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The agent's own, untouched (the default: no copy, no latency).
    Inherit,
    /// Pipes the caller reads from (to scan the game's log lines, to log a hook's output).
    Piped,
}

/// A started process: its pid (and group id) and, with [`Output::Piped`], its output pipes.
#[derive(Debug)]
pub struct Spawned {
    pub pid: Pid,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// Starts `argv` as the leader of a new process group, with an empty signal mask and every
/// signal at its default disposition (an ignored signal would otherwise survive `exec`),
/// stdin inherited, stdout/stderr inherited untouched or piped, and the agent's environment
/// without the variables named in `remove_env`, plus `extra_env`.
/// When stdin is a terminal the new group is made its foreground group, so an interactive
/// game still reads it (and gets Ctrl-C) as it would without the agent.
///
/// Returns once `exec` has succeeded. The returned pid's status belongs to the reaper: the
/// `std::process::Child` is dropped without being waited on.
///
/// Call it on the thread that reaps (the supervisor's single-threaded runtime): when `exec`
/// fails, std itself waits for the failed child before returning the error, and a reaper
/// running concurrently on another thread could take that status first.
pub fn spawn_in_own_group(
    argv: &[OsString],
    extra_env: &[(&str, String)],
    remove_env: &[&str],
    output: Output,
) -> Result<Spawned, SpawnError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(SpawnError::NotFound {
            program: OsString::new(),
        });
    };
    let mut command = Command::new(program);
    for name in remove_env {
        command.env_remove(name);
    }
    command
        .args(args)
        .envs(extra_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::inherit());
    match output {
        Output::Inherit => command.stdout(Stdio::inherit()).stderr(Stdio::inherit()),
        Output::Piped => command.stdout(Stdio::piped()).stderr(Stdio::piped()),
    };
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (setpgid, isatty/tcgetattr, tcsetpgrp, sigaction,
    // pthread_sigmask, prctl, getppid); it allocates nothing and takes no locks.
    let agent = nix::unistd::getpid();
    unsafe {
        command.pre_exec(move || prepare_child(agent));
    }
    match command.spawn() {
        Ok(mut child) => {
            // i32::try_from cannot fail for a real pid (pid_max ≤ 2^22).
            let pid = i32::try_from(child.id()).map_err(|_| SpawnError::Other {
                program: program.clone(),
                source: io::Error::other("pid out of range"),
            })?;
            let stdout = child.stdout.take().map(OwnedFd::from);
            let stderr = child.stderr.take().map(OwnedFd::from);
            drop(child);
            Ok(Spawned {
                pid: Pid::from_raw(pid),
                stdout,
                stderr,
            })
        }
        Err(source) => Err(match source.kind() {
            io::ErrorKind::NotFound => SpawnError::NotFound {
                program: program.clone(),
            },
            io::ErrorKind::PermissionDenied => SpawnError::NotExecutable {
                program: program.clone(),
                source,
            },
            _ if source.raw_os_error() == Some(nix::libc::ENOEXEC)
                || source.raw_os_error() == Some(nix::libc::EISDIR) =>
            {
                SpawnError::NotExecutable {
                    program: program.clone(),
                    source,
                }
            }
            _ => SpawnError::Other {
                program: program.clone(),
                source,
            },
        }),
    }
}

/// Runs in the child between fork and exec. Async-signal-safe calls only.
fn prepare_child(agent: Pid) -> io::Result<()> {
    nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
    // If the agent itself is killed, the game dies with it rather than run on unsupervised
    // (nobody left to stop it with grace, end the match, or reap it). The signal follows the
    // spawning thread, which is the agent's main thread for its whole life. Checked after
    // setting, in case the agent died in between.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    if nix::unistd::getppid() != agent {
        return Err(io::Error::other("the agent exited while starting the game"));
    }
    // SAFETY: fd 0 is borrowed for the duration of these two calls only; if it is closed the
    // calls fail with EBADF, which is handled.
    let stdin = unsafe { BorrowedFd::borrow_raw(0) };
    if nix::unistd::isatty(stdin).unwrap_or(false) {
        // A background group that calls tcsetpgrp gets SIGTTOU unless it is ignored.
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: installing SIG_IGN runs no code in signal context.
        let previous = unsafe { sigaction(Signal::SIGTTOU, &ignore) }?;
        let _ = nix::unistd::tcsetpgrp(stdin, nix::unistd::getpid());
        // SAFETY: restores the disposition saved just above.
        unsafe { sigaction(Signal::SIGTTOU, &previous) }?;
    }
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in Signal::iterator() {
        if signal == Signal::SIGKILL || signal == Signal::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code in signal context.
        unsafe { sigaction(signal, &default) }?;
    }
    SigSet::empty().thread_set_mask()?;
    Ok(())
}
