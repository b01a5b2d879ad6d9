//! The one table of exit codes the agent can end with.
//!
//! A game server's own code passes through unchanged (then `--exit-code-map` applies); the
//! agent's own failures use the BSD `sysexits`/shell conventions below, so the platform's
//! restart policy and a human reading `docker ps -a` can tell them apart.
//!
//! | code | meaning |
//! |---|---|
//! | 0..=255 | the game server's own exit code, passed through (then `--exit-code-map`) |
//! | 64 | bad usage or configuration (including an `--api-addr` that cannot be bound); the game was not started (`self-stop`: no usable `ARBITRIUM_DELETE_URL`/`TOKEN`) |
//! | 69 | `self-stop`: the platform could not be reached before the attempts or the deadline ran out |
//! | 70 | internal error of the agent |
//! | 77 | `self-stop`: the platform refused the request (401/403), not retried |
//! | 124 | the game stopped sending heartbeats and was killed (the code `--on-exit` sees) |
//! | 126 | the command cannot be executed (permission denied, not an executable) |
//! | 127 | the command was not found |
//! | 128+N | the game server died of signal N (e.g. 143 for SIGTERM) (`self-stop`: interrupted by signal N, 130 for Ctrl-C, before the platform answered) |
//! | 137 | the game server was SIGKILLed after the grace period (128+9) |
//!
//! The README's "Exit codes" section carries the same table: `tests/docs_claims.rs` fails on
//! any row, code or meaning that differs between the two or from the constants below.
//!
//! Also here: how a child process ended ([`ChildOutcome`]) and `--exit-code-map`
//! ([`ExitCodeMap`]), the two steps from a game's end to the agent's code.

use std::collections::BTreeMap;

use nix::sys::signal::Signal;

use crate::units::parse_pairs;

/// The child exited with status 0, or the agent printed `--help`/`--version`.
pub const SUCCESS: i32 = 0;
/// Bad usage or configuration: an unknown flag, a malformed value, an unusable setting, an
/// API address that cannot be bound. The game was not started.
pub const USAGE: i32 = 64;
/// `edgegap-agent self-stop`: the platform could not be reached in time (attempts or
/// deadline exhausted); the deployment may still be running (`EX_UNAVAILABLE`).
pub const SELF_STOP_GAVE_UP: i32 = 69;
/// The agent itself failed (an OS call that cannot fail in a sane environment did).
pub const INTERNAL: i32 = 70;
/// `edgegap-agent self-stop`: the platform refused the request (401/403: wrong token), not
/// retried (`EX_NOPERM`).
pub const SELF_STOP_REJECTED: i32 = 77;
/// The code the `--on-exit` policy sees for a game killed because its heartbeats stopped
/// (`--heartbeat-timeout`), as `timeout(1)` reports a command that timed out.
pub const HUNG: i32 = 124;
/// The command exists but cannot be executed (permission denied, not an executable).
pub const NOT_EXECUTABLE: i32 = 126;
/// The command was not found.
pub const NOT_FOUND: i32 = 127;
/// Base for "the child died of signal N": the agent exits with `SIGNAL_BASE + N`.
pub const SIGNAL_BASE: i32 = 128;
/// The child was killed with SIGKILL after the grace period (128 + 9).
pub const KILLED_AFTER_GRACE: i32 = SIGNAL_BASE + 9;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildOutcome {
    /// It called `exit(code)`.
    Exited(i32),
    /// It was killed by a signal.
    Signaled(Signal),
}

impl ChildOutcome {
    /// The code a shell would report: the exit code, or 128 + the signal number.
    pub fn shell_code(self) -> i32 {
        match self {
            ChildOutcome::Exited(code) => code,
            ChildOutcome::Signaled(signal) => SIGNAL_BASE + signal as i32,
        }
    }
}

impl std::fmt::Display for ChildOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildOutcome::Exited(code) => write!(f, "exited with code {code}"),
            ChildOutcome::Signaled(signal) => write!(f, "killed by {}", signal.as_str()),
        }
    }
}

/// `--exit-code-map`: rewrites the final exit code, e.g. `143=0,137=0`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitCodeMap(BTreeMap<u8, u8>);

impl ExitCodeMap {
    pub fn parse(text: &str) -> Result<Self, String> {
        parse_pairs(text, "FROM=TO", parse_exit_code, parse_exit_code).map(ExitCodeMap)
    }

    /// The code after remapping; unmapped codes pass through.
    pub fn apply(&self, code: i32) -> i32 {
        u8::try_from(code)
            .ok()
            .and_then(|c| self.0.get(&c))
            .map_or(code, |&mapped| i32::from(mapped))
    }
}

fn parse_exit_code(text: &str) -> Result<u8, String> {
    let trimmed = text.trim();
    trimmed
        .parse::<u8>()
        .map_err(|_| format!("{trimmed:?} is not an exit code (expected 0..=255)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_map_remaps_and_passes_the_rest() {
        let map = ExitCodeMap::parse("143=0,137=0").unwrap();
        assert_eq!(map.apply(143), 0);
        assert_eq!(map.apply(137), 0);
        assert_eq!(map.apply(1), 1);
        assert!(ExitCodeMap::parse("256=0").unwrap_err().contains("\"256\""));
        assert!(ExitCodeMap::parse("1=x").unwrap_err().contains("\"x\""));
        assert!(ExitCodeMap::parse("1=2,1=3").unwrap_err().contains("twice"));
    }
}
