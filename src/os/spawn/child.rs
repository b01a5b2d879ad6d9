//! The child's side of a spawn: the code that runs between `clone` and `execve`.
//!
//! The child shares the agent's memory (`CLONE_VM`) and runs on a stack of its own while the
//! spawning thread waits (`CLONE_VFORK`), so it must not touch anything another thread of
//! the agent could hold: it makes system calls through libc's thin wrappers only (each one
//! async-signal-safe), reads what the parent prepared in [`Plan`], allocates nothing, takes
//! no lock, cannot panic (no indexing, no formatting, no `io::Error`), and reports a failure
//! as two integers in [`Report`] before `_exit`. Every signal is blocked from before the
//! `clone` until just before `execve`, and every disposition is reset to the default first,
//! so no handler of the agent can run on this stack.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};

use nix::libc;

/// What the child does, prepared (allocated) by the parent before the `clone`.
pub(super) struct Plan<'a> {
    /// The files to try in order: the program itself when it names a path, else the program
    /// in each directory of `PATH`.
    pub candidates: &'a [CString],
    /// `argv` and `envp` as exec wants them: pointers into the strings below, null-ended.
    pub argv: Vec<*const c_char>,
    pub envp: Vec<*const c_char>,
    pub cwd: Option<&'a CStr>,
    /// The write ends of the output pipes, when the output is piped.
    pub stdout: Option<c_int>,
    pub stderr: Option<c_int>,
    /// stdin is a terminal: make the new group its foreground group.
    pub foreground: bool,
    /// The agent's pid, to check it is still the parent once `PR_SET_PDEATHSIG` is set.
    pub agent: libc::pid_t,
    /// The real-time signals, as this libc numbers them (`SIGRTMIN..=SIGRTMAX`).
    pub realtime: (c_int, c_int),
}

/// The step a child failed at, and the errno it failed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(super) enum Step {
    None = 0,
    ProcessGroup,
    DeathSignal,
    AgentGone,
    Stdout,
    Stderr,
    WorkingDirectory,
    SignalMask,
    Exec,
}

impl Step {
    fn from_raw(raw: u32) -> Step {
        [
            Step::ProcessGroup,
            Step::DeathSignal,
            Step::AgentGone,
            Step::Stdout,
            Step::Stderr,
            Step::WorkingDirectory,
            Step::SignalMask,
            Step::Exec,
        ]
        .into_iter()
        .find(|step| *step as u32 == raw)
        .unwrap_or(Step::None)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Step::None => "no step",
            Step::ProcessGroup => "setpgid",
            Step::DeathSignal => "prctl(PR_SET_PDEATHSIG)",
            Step::AgentGone => "the agent exited while starting the game",
            Step::Stdout => "dup2 of the stdout pipe",
            Step::Stderr => "dup2 of the stderr pipe",
            Step::WorkingDirectory => "chdir to the agent's start directory",
            Step::SignalMask => "sigprocmask",
            Step::Exec => "execve",
        }
    }
}

/// Where the child writes why it failed; read by the parent once the `clone` returns.
#[derive(Debug, Default)]
pub(super) struct Report {
    step: AtomicU32,
    errno: AtomicI32,
    /// Which of the candidates the errno belongs to.
    candidate: AtomicUsize,
}

impl Report {
    fn fail(&self, step: Step, errno: c_int, candidate: usize) -> ! {
        self.errno.store(errno, Ordering::SeqCst);
        self.candidate.store(candidate, Ordering::SeqCst);
        self.step.store(step as u32, Ordering::SeqCst);
        // SAFETY: `_exit` ends this child at once, running nothing of the agent's.
        unsafe { libc::_exit(127) }
    }

    /// The failed step, its errno and candidate; `None` when the child exec'd.
    pub fn failure(&self) -> Option<(Step, c_int, usize)> {
        match Step::from_raw(self.step.load(Ordering::SeqCst)) {
            Step::None => None,
            step => Some((
                step,
                self.errno.load(Ordering::SeqCst),
                self.candidate.load(Ordering::SeqCst),
            )),
        }
    }
}

/// The argument `clone` passes to [`run`].
pub(super) struct Job<'a> {
    pub plan: &'a Plan<'a>,
    pub report: &'a Report,
}

fn errno() -> c_int {
    // SAFETY: reads this thread's errno; the location is valid for the thread's life.
    unsafe { *libc::__errno_location() }
}

/// The child's entry point (`clone`'s `fn`). Never returns: it execs or `_exit`s.
///
/// # Safety
/// `job` must point to a [`Job`] that outlives the child's run until exec or exit, which
/// `CLONE_VFORK` guarantees: the parent's frame holding it is suspended until then.
pub(super) extern "C" fn run(job: *mut c_void) -> c_int {
    // SAFETY: per this function's contract.
    let Job { plan, report } = unsafe { &*(job as *const Job) };
    // SAFETY: each call below is a plain system call wrapper on values the parent prepared;
    // pointers are to null-terminated strings and null-ended arrays kept alive by `plan`.
    unsafe {
        // The game leads its own group: signals for it go to the group, none to the agent.
        if libc::setpgid(0, 0) != 0 {
            report.fail(Step::ProcessGroup, errno(), 0);
        }
        // An interactive game keeps the terminal (its reads and Ctrl-C). Every signal is
        // blocked here, so a background group's tcsetpgrp gets no SIGTTOU. Best effort.
        if plan.foreground {
            libc::tcsetpgrp(0, libc::getpid());
        }
        // If the agent is killed, the game dies with it rather than run on unsupervised. The
        // signal follows the spawning thread: the agent's main thread, for its whole life.
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            report.fail(Step::DeathSignal, errno(), 0);
        }
        if libc::getppid() != plan.agent {
            report.fail(Step::AgentGone, libc::ESRCH, 0);
        }
        for (fd, target, step) in [
            (plan.stdout, 1, Step::Stdout),
            (plan.stderr, 2, Step::Stderr),
        ] {
            if let Some(fd) = fd {
                if libc::dup2(fd, target) < 0 {
                    report.fail(step, errno(), 0);
                }
            }
        }
        if let Some(cwd) = plan.cwd {
            if libc::chdir(cwd.as_ptr()) != 0 {
                report.fail(Step::WorkingDirectory, errno(), 0);
            }
        }
        // Every disposition back to the default: an ignored signal (SIGPIPE, in a Rust
        // program) would stay ignored across exec. Numbers libc refuses (KILL, STOP, its own
        // 32 and 33) are skipped by the error.
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        let (first_rt, last_rt) = plan.realtime;
        for signal in (1..32).chain(first_rt..=last_rt) {
            libc::sigaction(signal, &default, std::ptr::null_mut());
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            report.fail(Step::SignalMask, errno(), 0);
        }
        exec_first(plan, report)
    }
}

/// `execvp`'s search without its fallback: each candidate in turn; a file the kernel does not
/// recognise (ENOEXEC) is reported, never handed to `/bin/sh`.
///
/// # Safety
/// As [`run`]: called in the child only, with `plan`'s pointers valid.
unsafe fn exec_first(plan: &Plan, report: &Report) -> ! {
    let mut denied: Option<usize> = None;
    let mut last = (libc::ENOENT, 0);
    for (index, path) in plan.candidates.iter().enumerate() {
        // SAFETY: null-terminated path, null-ended argv and envp (see `Plan`).
        unsafe { libc::execve(path.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr()) };
        match errno() {
            // Not here, or not runnable by us here: try the next directory, as execvp does,
            // remembering a permission problem to report it over a later "not found".
            libc::EACCES => denied = denied.or(Some(index)),
            error @ (libc::ENOENT
            | libc::ENOTDIR
            | libc::ESTALE
            | libc::ENODEV
            | libc::ETIMEDOUT) => last = (error, index),
            error => report.fail(Step::Exec, error, index),
        }
    }
    match denied {
        Some(index) => report.fail(Step::Exec, libc::EACCES, index),
        None => report.fail(Step::Exec, last.0, last.1),
    }
}
