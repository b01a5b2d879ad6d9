//! The single owner of `waitpid`.
//!
//! SIGCHLD coalesces, so one notification may stand for many exits: [`reap_exited`] drains
//! every child that has changed state and returns them, and the supervisor routes the main
//! child's outcome from that list. Nothing else in the process waits on a child (not
//! `std::process::Child::wait`, not `tokio::process`), or whichever ran first would steal the
//! status.

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::exit_code::ChildOutcome;

/// One process reaped by [`reap_exited`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub pid: Pid,
    pub outcome: ChildOutcome,
}

/// Reaps every child that has terminated, without blocking, and returns them in the order
/// the kernel gave them. Stopped/continued notifications are not requested.
pub fn reap_exited() -> Vec<Reaped> {
    let mut reaped = Vec::new();
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => reaped.push(Reaped {
                pid,
                outcome: ChildOutcome::Exited(code),
            }),
            Ok(WaitStatus::Signaled(pid, signal, _core_dumped)) => reaped.push(Reaped {
                pid,
                outcome: ChildOutcome::Signaled(signal),
            }),
            // Nothing more has exited now (StillAlive), or no children at all (ECHILD).
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return reaped,
            // Stop/continue reports are not asked for; EINTR: try again.
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return reaped,
        }
    }
}
