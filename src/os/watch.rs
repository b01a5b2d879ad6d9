//! Sidecar mode's view of processes it did not start: a pidfd (pidfd_open(2)) that the
//! runtime's epoll reports readable once the process has ended (no polling, no signal, no
//! exit status: only a parent can wait for one), and the parent-death signal
//! (`PR_SET_PDEATHSIG`), so that the agent never outlives the process that started it.
//!
//! Races: a process that ends between the agent's start and `pidfd_open` is still seen
//! (a pidfd of a zombie is readable at once); a parent that died before the agent looked is
//! seen by `getppid` changing (the kernel re-parents the agent before the old parent's pid
//! can be freed), checked after the pidfd is open and after the death signal is set. A
//! `--watch-pid` whose process ended and was reaped before the agent looked cannot be told
//! from one that never existed: both are refused.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use nix::libc;
use nix::sys::signal::Signal;
use nix::unistd::getppid;
use tokio::io::unix::AsyncFd;

/// Why a process cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("no process has pid {0}")]
    NoSuchProcess(i32),
    #[error("the agent has no parent process in its PID namespace (it is PID 1, or its parent is outside the container)")]
    NoParent,
    #[error("cannot watch process {pid} (pidfd_open): {error}")]
    Open { pid: i32, error: io::Error },
}

/// A process being watched, or one that was already gone when the agent looked.
#[derive(Debug)]
pub struct ProcessWatch {
    pid: i32,
    /// `None`: the process had already ended.
    fd: Option<OwnedFd>,
}

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags (0) and returns a new descriptor or -1; it
    // reads and writes no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: `fd` was just returned by the kernel, open, and owned by nobody else
    // (pidfd_open sets close-on-exec).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl ProcessWatch {
    /// Watches the process `pid`: refused when none has that pid.
    pub fn pid(pid: i32) -> Result<ProcessWatch, WatchError> {
        if pid <= 0 {
            return Err(WatchError::NoSuchProcess(pid));
        }
        match pidfd_open(pid) {
            Ok(fd) => Ok(ProcessWatch { pid, fd: Some(fd) }),
            Err(error) if error.raw_os_error() == Some(libc::ESRCH) => {
                Err(WatchError::NoSuchProcess(pid))
            }
            Err(error) => Err(WatchError::Open { pid, error }),
        }
    }

    /// Watches the agent's parent, `parent` as `getppid` gave it when the agent started.
    pub fn parent(parent: i32) -> Result<ProcessWatch, WatchError> {
        if parent <= 0 {
            return Err(WatchError::NoParent);
        }
        let fd = match pidfd_open(parent) {
            Ok(fd) => Some(fd),
            Err(error) if error.raw_os_error() == Some(libc::ESRCH) => None,
            Err(error) => return Err(WatchError::Open { pid: parent, error }),
        };
        // Re-parented since: the parent is gone (and the pidfd may be of another process).
        let fd = fd.filter(|_| getppid().as_raw() == parent);
        Ok(ProcessWatch { pid: parent, fd })
    }

    /// The watched pid.
    pub fn watched_pid(&self) -> i32 {
        self.pid
    }

    /// Waits until the process has ended (at once when it already had). Create it inside
    /// the runtime that awaits it.
    pub async fn ended(self) -> io::Result<()> {
        let Some(fd) = self.fd else {
            return Ok(());
        };
        // SAFETY: the OwnedFd owns its descriptor, open until the OwnedFd (owned by the
        // AsyncFd) is dropped, and `as_raw_fd` always returns that one descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|error| error.into_parts().1)?;
        // Readable means ended; it stays so, and nothing is read from a pidfd.
        let _guard = fd.readable().await?;
        Ok(())
    }
}

/// The agent's parent as the kernel sees it now (0: none in this PID namespace).
pub fn parent_pid() -> i32 {
    getppid().as_raw()
}

/// Asks the kernel to send `signal` to the agent when the parent that started it (`parent`,
/// read at start) ends. Returns `false` when that parent is already gone (the agent was
/// re-parented before the request took effect), for the caller to act on it at once.
pub fn signal_on_parent_death(signal: Signal, parent: i32) -> io::Result<bool> {
    nix::sys::prctl::set_pdeathsig(signal).map_err(io::Error::from)?;
    Ok(parent > 0 && getppid().as_raw() == parent)
}
