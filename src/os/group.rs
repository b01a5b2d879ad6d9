//! The game's process group: signalling it, and telling whether anything is left in it.
//!
//! The game leads its group, so the group's id is the game's pid. Once the game has been
//! reaped, that number stays reserved by the kernel for as long as any process of the group
//! is alive (a pid cannot be reused while it names a group), so signalling the group by it
//! reaches only what the game left behind.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Sends `signal` to every process in the group led by `leader`. A group that no longer
/// exists (ESRCH) is not an error: everything in it is already gone.
pub fn send_to_group(leader: Pid, signal: Signal) -> std::io::Result<()> {
    match killpg(leader, signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

/// Whether any process (a zombie not yet reaped included) is still in the group `leader`
/// led: signal 0 checks without sending anything.
pub fn group_exists(leader: Pid) -> bool {
    !matches!(killpg(leader, None), Err(nix::errno::Errno::ESRCH))
}
