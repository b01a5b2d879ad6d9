//! Signals as a stream of values, without handlers.
//!
//! Every signal the agent acts on is blocked in every thread (the mask is set on the main
//! thread before any other thread exists, and threads inherit it), and one dedicated thread
//! takes them off the pending set with `sigwait` and sends each one, in order, into a
//! channel. No handler runs in signal context, and the agent adds no coalescing of its own:
//! each delivery the kernel makes is one value in the channel. (Like tini's `sigtimedwait`
//! loop; the kernel itself still merges repeats of one standard signal that arrive while it
//! is pending.)

use nix::sys::signal::{killpg, SigSet, Signal};
use nix::unistd::Pid;
use tokio::sync::mpsc::UnboundedSender;

use crate::units::FORWARDED_SIGNALS;

/// The signals the agent handles: the ones it forwards to the game, plus SIGCHLD.
fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    for signal in FORWARDED_SIGNALS {
        set.add(signal);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// Blocks the handled signals in the calling thread. Call it first thing in `main`, before
/// any thread (the async runtime's included) is started, so that all of them inherit it.
pub fn block_handled_signals() -> std::io::Result<()> {
    handled_set().thread_block().map_err(std::io::Error::from)
}

/// Starts the thread that turns pending signals into channel messages. It ends when the
/// receiving side is dropped (at the next signal) or with the process.
pub fn spawn_signal_waiter(sender: UnboundedSender<Signal>) -> std::io::Result<()> {
    let set = handled_set();
    std::thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || loop {
            match set.wait() {
                Ok(signal) => {
                    if sender.send(signal).is_err() {
                        return;
                    }
                }
                // EINTR cannot happen for sigwait on Linux; anything else is a bug in the set.
                Err(_) => continue,
            }
        })
        .map(drop)
}

/// Sends `signal` to every process in the group led by `leader`. A group that no longer
/// exists (ESRCH) is not an error: everything in it is already gone.
pub fn send_to_group(leader: Pid, signal: Signal) -> std::io::Result<()> {
    match killpg(leader, signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}
