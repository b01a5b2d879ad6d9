//! The only place that talks to the kernel directly: process spawning, signal masks and
//! delivery, reaping and process attributes. Everything else in the crate is `forbid(unsafe)`
//! and sees typed values (`Signal`, `Pid`, [`ChildOutcome`](crate::exit_code::ChildOutcome)) rather than raw integers.

mod reap;
mod signals;
mod spawn;

pub use nix::sys::signal::Signal;
pub use nix::unistd::Pid;
pub use reap::{reap_exited, Reaped};
pub use signals::{block_handled_signals, send_to_group, spawn_signal_waiter};
pub use spawn::{spawn_in_own_group, Output, SpawnError, Spawned};

/// True when this process is PID 1 of its PID namespace (a container's entrypoint).
pub fn is_pid1() -> bool {
    nix::unistd::getpid().as_raw() == 1
}

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`), so that descendants
/// orphaned by the game are re-parented to the agent, which then reaps them, as PID 1 would.
pub fn become_subreaper() -> std::io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)
}
