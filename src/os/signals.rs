//! Signals as a stream of values, without handlers and without a thread.
//!
//! Every signal the agent takes is blocked in every thread (the mask is set on the main
//! thread first thing in `main`, before any other thread exists, and threads inherit it),
//! and the supervisor reads them from a `signalfd` on its own runtime ([`Signals`]): no
//! handler runs in signal context, and the agent adds no coalescing of its own: each delivery
//! the kernel makes is one value. (The kernel itself still merges repeats of one standard
//! signal that arrive while it is pending.)
//!
//! What it takes: the forwarded set (every standard signal but KILL, STOP and CHLD, see
//! `units::FORWARDED_SIGNALS`), CHLD, and the real-time signals, which are taken and dropped
//! so that none can end the agent either. Nothing sent with kill(2) can then end the agent,
//! as PID 1 or not, but KILL (and STOP stops it), as the kernel decides.
//!
//! A fault in the agent's own code (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP or SIGSYS raised
//! by the instruction that faulted) is not taken: the kernel delivers it to the faulting
//! thread whatever its mask, with the default action, and the agent dies of it (the game
//! with it, by `PR_SET_PDEATHSIG`) rather than run on as a PID 1 whose memory cannot be
//! trusted; the platform's restart policy then decides. `abort` (a failed allocation) ends
//! it the same way. Signals the agent causes itself with kill(2)-like sends from its own pid
//! (SIGPIPE on a write to a closed pipe, SIGXFSZ past a file size limit) are about the agent,
//! not for the game: they are dropped too.

use std::collections::VecDeque;
use std::io;

use nix::libc;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tracing::debug;

use crate::units::FORWARDED_SIGNALS;

/// The signals the agent takes: the forwarded ones, SIGCHLD and the real-time ones.
fn taken_set() -> SigSet {
    // SAFETY: sigemptyset initialises `raw` before sigaddset and the conversion read it;
    // sigaddset only fails for numbers out of range, which these are not.
    unsafe {
        let mut raw: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut raw);
        let standard = FORWARDED_SIGNALS.iter().map(|s| *s as libc::c_int);
        let realtime = libc::SIGRTMIN()..=libc::SIGRTMAX();
        for signal in standard.chain([libc::SIGCHLD]).chain(realtime) {
            libc::sigaddset(&mut raw, signal);
        }
        SigSet::from_sigset_t_unchecked(raw)
    }
}

/// Blocks the signals the agent takes in the calling thread. Call it first thing in `main`,
/// before any thread (the async runtime's included) is started, so that all of them
/// inherit it.
pub fn block_handled_signals() -> io::Result<()> {
    taken_set().thread_block().map_err(io::Error::from)
}

/// The signals sent to the agent, in the order the kernel gives them. Create it inside the
/// tokio runtime that reads it.
pub struct Signals {
    fd: AsyncFd<SignalFd>,
    agent: u32,
    ready: VecDeque<Signal>,
}

impl Signals {
    pub fn new() -> io::Result<Signals> {
        let flags = SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC;
        let fd = SignalFd::with_flags(&taken_set(), flags)?;
        // SAFETY: the SignalFd owns its descriptor, open until the SignalFd (owned by the
        // AsyncFd) is dropped, and `as_raw_fd` always returns that one descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|error| error.into_parts().1)?;
        Ok(Signals {
            fd,
            agent: std::process::id(),
            ready: VecDeque::new(),
        })
    }

    /// The next signal. Cancel-safe: a signal read from the kernel is kept until returned.
    pub async fn recv(&mut self) -> io::Result<Signal> {
        loop {
            if let Some(signal) = self.ready.pop_front() {
                return Ok(signal);
            }
            let mut guard = self.fd.readable().await?;
            loop {
                match guard.get_inner().read_signal() {
                    Ok(Some(info)) => {
                        if let Some(signal) = self.take(&info) {
                            self.ready.push_back(signal);
                        }
                    }
                    Ok(None) => {
                        guard.clear_ready();
                        break;
                    }
                    Err(errno) => return Err(errno.into()),
                }
            }
        }
    }

    /// The signal to pass on, if it is one: not a real-time one, not one the agent caused.
    fn take(&self, info: &libc::signalfd_siginfo) -> Option<Signal> {
        let number = info.ssi_signo as libc::c_int;
        let from_self =
            info.ssi_pid == self.agent && matches!(info.ssi_code, libc::SI_USER | libc::SI_TKILL);
        match Signal::try_from(number) {
            Ok(signal) if !from_self => Some(signal),
            Ok(signal) => {
                debug!(
                    signal = signal.as_str(),
                    "dropped a signal the agent caused itself"
                );
                None
            }
            Err(_) => {
                debug!(
                    number,
                    "dropped a real-time signal: only 1-31 are forwarded"
                );
                None
            }
        }
    }
}

/// Stops the whole agent (SIGSTOP to itself) until a SIGCONT, as a shell's job control
/// expects of a process that got SIGTSTP. Never call it as PID 1: the kernel ignores a
/// PID 1's own SIGSTOP, and a container must not freeze.
pub fn suspend_self() -> io::Result<()> {
    nix::sys::signal::raise(Signal::SIGSTOP).map_err(io::Error::from)
}
