//! Why a process could not be started, as the agent reports it: what exec said, for which
//! file, turned into the error (and, in the supervisor, the exit code) a user can act on.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::libc;

use super::child::Step;

/// Why the command could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("command not found: {program:?}")]
    NotFound { program: OsString },
    /// The file exists, but exec says it does not: what it needs to run is missing.
    #[error("command cannot be started: {path:?} exists, but its interpreter is missing (the ELF loader it was linked against, or the program on its #! line): No such file or directory")]
    MissingInterpreter { path: PathBuf },
    #[error("command cannot be executed: {program:?}: {source}")]
    NotExecutable {
        program: OsString,
        source: io::Error,
    },
    /// ENOEXEC: a binary built for another architecture, or a script without a `#!` line.
    #[error("command cannot be executed: {path:?}: exec format error: not a program this machine ({arch}) can run, nor a script starting with #!")]
    ExecFormat { path: PathBuf, arch: &'static str },
    #[error("cannot start {program:?}: {step}: {source}")]
    Other {
        program: OsString,
        step: &'static str,
        source: io::Error,
    },
}

/// The error for a child that failed at `step` with `errno`, on candidate number `index`.
pub(super) fn classify(
    step: Step,
    errno: i32,
    candidates: &[CString],
    index: usize,
    program: OsString,
) -> SpawnError {
    let source = io::Error::from_raw_os_error(errno);
    let path = |c: &CStr| PathBuf::from(OsStr::from_bytes(c.to_bytes()));
    if step != Step::Exec {
        return SpawnError::Other {
            program,
            step: step.describe(),
            source,
        };
    }
    match errno {
        libc::ENOENT | libc::ENOTDIR => {
            // exec says ENOENT for a file that exists when its loader or interpreter does not.
            match candidates.iter().map(|c| path(c)).find(|p| p.is_file()) {
                Some(path) => SpawnError::MissingInterpreter { path },
                None => SpawnError::NotFound { program },
            }
        }
        libc::ENOEXEC => SpawnError::ExecFormat {
            path: candidates
                .get(index)
                .map(|c| path(c))
                .unwrap_or_else(|| program.clone().into()),
            arch: std::env::consts::ARCH,
        },
        libc::EACCES | libc::EISDIR => SpawnError::NotExecutable { program, source },
        _ => SpawnError::Other {
            program,
            step: step.describe(),
            source,
        },
    }
}
