//! The only place that talks to the kernel directly: process spawning, signal masks and
//! delivery, process groups, reaping and process attributes. Everything else in the crate is
//! `forbid(unsafe)` and sees typed values (`Signal`, `Pid`,
//! [`ChildOutcome`](crate::exit_code::ChildOutcome)) rather than raw integers.

mod group;
mod reap;
mod signals;
mod spawn;
mod watch;

pub use group::{group_exists, send_to_group};
pub use nix::sys::signal::Signal;
pub use nix::unistd::Pid;
pub use reap::{reap_exited, Reaped};
pub use signals::{block_handled_signals, suspend_self, Signals};
pub use spawn::{spawn_in_own_group, Output, SpawnError, SpawnSpec, Spawned};
pub use watch::{parent_pid, signal_on_parent_death, ProcessWatch, WatchError};

/// True when this process is PID 1 of its PID namespace (a container's entrypoint).
pub fn is_pid1() -> bool {
    nix::unistd::getpid().as_raw() == 1
}

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`), so that descendants
/// orphaned by the game are re-parented to the agent, which then reaps them, as PID 1 would.
pub fn become_subreaper() -> std::io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)
}

/// The agent's start directory, where the game (and every restart of it) is started.
pub fn start_directory() -> std::io::Result<std::path::PathBuf> {
    std::env::current_dir()
}

/// Moves the agent's own working directory to `/`, as dumb-init does, so that it holds no
/// directory (nor the mount it is on) busy for its whole life; the game is started in the
/// start directory all the same ([`SpawnSpec::cwd`]).
pub fn leave_start_directory() -> std::io::Result<()> {
    std::env::set_current_dir("/")
}
