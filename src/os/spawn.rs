//! Starting a process (the game, the pre-stop hook) as the leader of its own process group,
//! with an empty signal mask and every signal at its default disposition, without copying
//! the agent.
//!
//! `fork()` copies the agent's page tables and makes its memory copy-on-write, then the
//! child's pre-exec set-up runs while the agent waits: that was most of the agent's start-up
//! cost. The child here is started as glibc's `posix_spawn` starts one, with
//! `clone(CLONE_VM | CLONE_VFORK)`: it borrows the agent's memory on a small stack of its own
//! until it execs (`spawn/child.rs`), and nothing is copied. Why not `posix_spawn` itself: it
//! can set the group (`POSIX_SPAWN_SETPGROUP`), the mask (`SETSIGMASK`), the default
//! dispositions (`SETSIGDEF`), the descriptors, the directory and (glibc 2.35+) the
//! terminal's foreground group, but not `PR_SET_PDEATHSIG`, which only the child itself can
//! set between clone and exec. So the agent takes the same few steps itself, plus that one.
//!
//! The program is searched on `PATH` as `execvp` does, without its fallback of handing a
//! file the kernel rejects (ENOEXEC: a binary for another architecture, a script without
//! `#!`) to `/bin/sh`: that file is reported as what it is, exit 126.

mod child;
mod error;

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::libc;
use nix::unistd::Pid;

use child::{Job, Plan, Report};
use error::classify;
pub use error::SpawnError;

/// Where a started process's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The agent's own, untouched (the default: no copy, no latency).
    Inherit,
    /// Pipes the caller reads from (to scan the game's log lines, to log a hook's output).
    Piped,
}

/// What to start, and how.
#[derive(Debug, Clone, Copy)]
pub struct SpawnSpec<'a> {
    /// The program (searched on `PATH` when it has no `/`) and its arguments.
    pub argv: &'a [OsString],
    /// Variables set on top of the agent's environment.
    pub set_env: &'a [(&'a str, String)],
    /// Variables of the agent's environment the process does not get.
    pub remove_env: &'a [&'a str],
    /// The directory it starts in; the agent's current one when `None`.
    pub cwd: Option<&'a Path>,
    pub output: Output,
}

/// A started process: its pid (and group id) and, with [`Output::Piped`], its output pipes.
#[derive(Debug)]
pub struct Spawned {
    pub pid: Pid,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// The child's stack: its few system calls need a few KiB; glibc gives `posix_spawn`'s 32.
const CHILD_STACK_BYTES: usize = 32 * 1024;

/// Starts `spec.argv` as the leader of a new process group: an empty signal mask and every
/// signal at its default disposition (an ignored one would otherwise survive `exec`), stdin
/// inherited, stdout/stderr inherited untouched or piped, the agent's environment with
/// `spec.set_env` set and `spec.remove_env` removed, killed if the agent dies
/// (`PR_SET_PDEATHSIG`). When stdin is a terminal the new group is made its foreground
/// group, so an interactive game still reads it (and gets Ctrl-C) as it would alone.
///
/// Returns once `exec` has succeeded, or with why it could not. The pid's status belongs to
/// the reaper. A child that failed before exec is reaped here, by its pid: call this on the
/// thread that reaps, so that no `waitpid(-1)` runs meanwhile.
pub fn spawn_in_own_group(spec: &SpawnSpec<'_>) -> Result<Spawned, SpawnError> {
    let program = spec.argv.first().cloned().unwrap_or_default();
    if program.is_empty() {
        return Err(SpawnError::NotFound { program });
    }
    let other = |step: &'static str| {
        let program = program.clone();
        move |source: io::Error| SpawnError::Other {
            program,
            step,
            source,
        }
    };
    let strings = Strings::new(spec).map_err(other("arguments and environment"))?;
    let (stdout, stderr) = match spec.output {
        Output::Inherit => (None, None),
        Output::Piped => (
            Some(pipe().map_err(other("pipe"))?),
            Some(pipe().map_err(other("pipe"))?),
        ),
    };
    let plan = Plan {
        candidates: &strings.candidates,
        argv: pointers(&strings.argv),
        envp: strings.envp(spec),
        cwd: strings.cwd.as_deref(),
        stdout: stdout.as_ref().map(|(_, write)| write.as_raw_fd()),
        stderr: stderr.as_ref().map(|(_, write)| write.as_raw_fd()),
        foreground: stdin_is_a_terminal(),
        agent: nix::unistd::getpid().as_raw(),
        realtime: (libc::SIGRTMIN(), libc::SIGRTMAX()),
    };
    let report = Report::default();
    let pid = clone_and_wait_for_exec(&Job {
        plan: &plan,
        report: &report,
    })
    .map_err(other("clone"))?;
    // The write ends are the child's now (closed here when the tuples drop).
    let (stdout, stderr) = (stdout.map(|(read, _)| read), stderr.map(|(read, _)| read));
    if let Some((step, errno, candidate)) = report.failure() {
        reap_failed(pid);
        return Err(classify(
            step,
            errno,
            &strings.candidates,
            candidate,
            program,
        ));
    }
    Ok(Spawned {
        pid,
        stdout,
        stderr,
    })
}

/// Everything the child reads, as C strings, allocated before the clone.
struct Strings {
    candidates: Vec<CString>,
    argv: Vec<CString>,
    /// The variables set, as `KEY=VALUE`; the inherited ones are not copied (see
    /// [`inherited_environment`]).
    set_env: Vec<CString>,
    cwd: Option<CString>,
}

impl Strings {
    fn new(spec: &SpawnSpec<'_>) -> io::Result<Strings> {
        let argv = spec
            .argv
            .iter()
            .map(|arg| c_string(arg.as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let set_env = spec
            .set_env
            .iter()
            .map(|(key, value)| c_string(format!("{key}={value}").as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        let cwd = spec
            .cwd
            .map(|dir| c_string(dir.as_os_str().as_bytes()))
            .transpose()?;
        let program = spec
            .argv
            .first()
            .map(OsString::as_os_str)
            .unwrap_or_default();
        Ok(Strings {
            candidates: candidates(program)?,
            argv,
            set_env,
            cwd,
        })
    }

    /// `envp`: the agent's own variables but those set or removed, then those set.
    fn envp(&self, spec: &SpawnSpec<'_>) -> Vec<*const libc::c_char> {
        let replaced = |key: &[u8]| {
            spec.remove_env.iter().any(|k| k.as_bytes() == key)
                || spec.set_env.iter().any(|(k, _)| k.as_bytes() == key)
        };
        let mut envp: Vec<*const libc::c_char> = inherited_environment()
            .filter(|entry| {
                let bytes = entry.to_bytes();
                let key = bytes.split(|&b| b == b'=').next().unwrap_or(bytes);
                !replaced(key)
            })
            .map(CStr::as_ptr)
            .collect();
        envp.extend(self.set_env.iter().map(|s| s.as_ptr()));
        envp.push(std::ptr::null());
        envp
    }
}

extern "C" {
    /// The process's environment, as libc keeps it (`KEY=VALUE` strings, null-ended).
    static environ: *const *const libc::c_char;
}

/// The agent's environment as it is, without a copy: `std::env::vars_os` would copy every
/// variable twice over, at every start of the game. Sound because nothing in the agent
/// changes its environment once running (`set_var`/`remove_var` are banned in
/// `clippy.toml`), so the strings stay where they are until the process ends.
fn inherited_environment() -> impl Iterator<Item = &'static CStr> {
    // SAFETY: `environ` is libc's null-ended array of null-terminated strings, never changed
    // by the agent (see above); reading the pointer itself is a plain load.
    let mut entry = unsafe { environ };
    std::iter::from_fn(move || {
        if entry.is_null() {
            return None;
        }
        // SAFETY: `entry` points into the null-ended array: reading it is in bounds, and a
        // non-null element is a valid C string for the life of the process.
        let current = unsafe { *entry };
        if current.is_null() {
            return None;
        }
        // SAFETY: as above; the next element exists since this one was not the null end.
        entry = unsafe { entry.add(1) };
        // SAFETY: a non-null element of environ is a null-terminated string.
        Some(unsafe { CStr::from_ptr(current) })
    })
}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{:?} contains a NUL byte", OsStr::from_bytes(bytes)),
        )
    })
}

/// A null-ended array of pointers into `strings`, which must outlive it.
fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The files exec tries, in order: `program` itself when it names a path, else `program` in
/// each directory of the agent's `PATH` (an empty entry is the current directory), or of
/// `/bin:/usr/bin` when `PATH` is unset, as `execvp` does.
fn candidates(program: &OsStr) -> io::Result<Vec<CString>> {
    let name = program.as_bytes();
    if name.contains(&b'/') {
        return Ok(vec![c_string(name)?]);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    path.as_bytes()
        .split(|&b| b == b':')
        .map(|dir| match dir {
            b"" => c_string(name),
            dir => c_string(&[dir, b"/", name].concat()),
        })
        .collect()
}

/// Whether fd 0 is a terminal (without `std::io::stdin`, which allocates a buffer).
fn stdin_is_a_terminal() -> bool {
    // SAFETY: isatty only inspects the descriptor; a closed fd 0 is an error (false).
    unsafe { libc::isatty(0) == 1 }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

/// Runs [`child::run`] in a child sharing this process's memory, and returns once it has
/// exec'd or exited.
fn clone_and_wait_for_exec(job: &Job<'_>) -> io::Result<Pid> {
    let mut stack: Vec<u8> = Vec::with_capacity(CHILD_STACK_BYTES);
    // The stack grows down from its end, which x86-64 wants 16-byte aligned.
    let top = (stack.as_mut_ptr() as usize + CHILD_STACK_BYTES) & !15;
    // Every signal blocked, libc's own 32 and 33 included (so the raw call): no handler may
    // run in the child, which shares the agent's memory; it resets them before unblocking.
    let all: u64 = !0;
    let mut previous: u64 = 0;
    let mask_bytes = std::mem::size_of::<u64>();
    // SAFETY: rt_sigprocmask reads `all` and writes `previous`, both valid 8-byte masks.
    let blocked = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const u64,
            &mut previous as *mut u64,
            mask_bytes,
        )
    };
    if blocked != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `child::run` only makes async-signal-safe calls on `job` (see child.rs), which
    // lives in this frame; CLONE_VFORK suspends this thread until the child has exec'd or
    // exited, so `job` and `stack` outlive every use the child makes of them.
    let pid = unsafe {
        libc::clone(
            child::run,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            job as *const Job as *mut libc::c_void,
        )
    };
    let cloned = if pid < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(Pid::from_raw(pid))
    };
    // SAFETY: restores the mask saved above.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &previous as *const u64,
            std::ptr::null_mut::<u64>(),
            mask_bytes,
        )
    };
    drop(stack);
    cloned
}

/// Reaps a child that failed before exec (it has exited, or is about to).
fn reap_failed(pid: Pid) {
    while let Err(nix::errno::Errno::EINTR) = nix::sys::wait::waitpid(pid, None) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn a_name_is_searched_on_path_and_a_path_is_not() {
        assert_eq!(
            candidates(OsStr::new("./game")).unwrap(),
            [CString::new("./game").unwrap()]
        );
        let on_path = candidates(OsStr::new("game")).unwrap();
        assert!(!on_path.is_empty());
        assert!(on_path.iter().all(|c| c.to_bytes().ends_with(b"game")));
    }

    #[test]
    fn a_nul_in_an_argument_is_an_error_naming_it() {
        let argv = [OsString::from("game"), OsString::from_vec(b"a\0b".to_vec())];
        let spec = SpawnSpec {
            argv: &argv,
            set_env: &[],
            remove_env: &[],
            cwd: None,
            output: Output::Inherit,
        };
        let error = spawn_in_own_group(&spec).unwrap_err();
        assert!(error.to_string().contains("NUL"), "{error}");
    }
}
