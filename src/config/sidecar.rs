//! Sidecar mode's options (`edgegap-agent [OPTIONS]` with no command): what it watches, the
//! bound on a stop, and the wrap-mode options it refuses (they would be silently ignored,
//! and a user who set one expects what it does: a hook run, a log line watched, a signal
//! sent, a game restarted or a code remapped).

use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};

use super::Cli;
use crate::api::ListenAddr;
use crate::supervisor::sidecar::WatchTarget;

/// The longest a stop (SIGTERM, SIGINT, the parent's death) waits in sidecar mode for a
/// self-stop in flight before the agent exits 0: this, or the grace period minus the kill
/// margin when shorter. The platform's SIGTERM goes to the container's PID 1 (not the agent),
/// whose exit ends the container: the agent's own stop must not hold anything up.
pub const SIDECAR_STOP_BOUND: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Args)]
pub struct SidecarOptions {
    /// Sidecar mode: end the match when this process ends (taken as exit code 0 for
    /// --on-exit: by default a self-stop), then exit. Watched through a pidfd.
    #[arg(long, env = "EDGEGAP_AGENT_WATCH_PID", value_name = "PID", value_parser = clap::value_parser!(i32).range(1..))]
    pub watch_pid: Option<i32>,

    /// Sidecar mode: as --watch-pid, for the process that started the agent (e.g. the game
    /// after `edgegap-agent --watch-parent & exec ./Server`).
    #[arg(long, env = "EDGEGAP_AGENT_WATCH_PARENT")]
    pub watch_parent: bool,
}

/// Options of wrap mode only: (clap id, flag, variable, what it needs a started game for).
const WRAP_ONLY: [(&str, &str, &str, &str); 10] = [
    (
        "pre_stop",
        "--pre-stop",
        "EDGEGAP_AGENT_PRE_STOP",
        "no stop of a game to run it before",
    ),
    (
        "end_on_log",
        "--end-on-log",
        "EDGEGAP_AGENT_END_ON_LOG",
        "the game's output does not pass through the agent",
    ),
    (
        "stop_signal",
        "--stop-signal",
        "EDGEGAP_AGENT_STOP_SIGNAL",
        "the agent never signals the game",
    ),
    (
        "forward_signal_map",
        "--forward-signal-map",
        "EDGEGAP_AGENT_FORWARD_SIGNAL_MAP",
        "the agent forwards no signal",
    ),
    (
        "exit_code_map",
        "--exit-code-map",
        "EDGEGAP_AGENT_EXIT_CODE_MAP",
        "the agent has no exit code of the game to remap",
    ),
    (
        "max_restarts",
        "--max-restarts",
        "EDGEGAP_AGENT_MAX_RESTARTS",
        "the agent cannot restart a game it did not start",
    ),
    (
        "restart_window",
        "--restart-window",
        "EDGEGAP_AGENT_RESTART_WINDOW",
        "the agent cannot restart a game it did not start",
    ),
    (
        "restart_backoff",
        "--restart-backoff",
        "EDGEGAP_AGENT_RESTART_BACKOFF",
        "the agent cannot restart a game it did not start",
    ),
    (
        "restart_backoff_max",
        "--restart-backoff-max",
        "EDGEGAP_AGENT_RESTART_BACKOFF_MAX",
        "the agent cannot restart a game it did not start",
    ),
    (
        "pass_platform_tokens",
        "--pass-platform-tokens",
        "EDGEGAP_AGENT_PASS_PLATFORM_TOKENS",
        "the agent starts no game to pass them to",
    ),
];

fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

impl Cli {
    /// Sidecar mode: no command and no subcommand.
    pub fn is_sidecar(&self) -> bool {
        self.subcommand.is_none() && self.command.is_empty()
    }

    /// What sidecar mode watches.
    pub fn watch_target(&self) -> WatchTarget {
        match (self.sidecar.watch_pid, self.sidecar.watch_parent) {
            (Some(pid), _) => WatchTarget::Pid(pid),
            (None, true) => WatchTarget::Parent,
            (None, false) => WatchTarget::Nothing,
        }
    }

    /// Where the API listens. In sidecar mode the default address does not give way to a
    /// free port when taken: the game, started by something else, could not learn the
    /// other one.
    pub fn api_listen_addr(&self) -> ListenAddr {
        if self.is_sidecar() {
            ListenAddr::Given(self.api.api_addr)
        } else {
            self.api.listen_addr()
        }
    }

    /// Where the Agones SDK API (`--agones`) listens: the address given, if one was; in
    /// sidecar mode always `--agones-addr` (default 9358, where Agones's SDKs look), which
    /// does not give way: the game cannot learn another port.
    pub fn agones_listen_addr(&self) -> Option<std::net::SocketAddr> {
        if self.is_sidecar() {
            Some(self.agones.agones_addr)
        } else {
            self.agones.given_addr()
        }
    }

    /// A stop's bound in the machine: the grace period minus the kill margin, and in
    /// sidecar mode at most [`SIDECAR_STOP_BOUND`].
    pub(super) fn stop_bound(&self) -> Duration {
        let kill_after = self.supervisor.kill_after();
        if self.is_sidecar() {
            kill_after.min(SIDECAR_STOP_BOUND)
        } else {
            kill_after
        }
    }

    /// The checks of the mode: the watch options only beside the game, wrap mode's options
    /// only around it. Every refused option is named at once.
    pub(super) fn validate_mode(&self, matches: &ArgMatches) -> Result<(), String> {
        let watch = [
            (
                "--watch-pid",
                "EDGEGAP_AGENT_WATCH_PID",
                self.sidecar.watch_pid.is_some(),
            ),
            (
                "--watch-parent",
                "EDGEGAP_AGENT_WATCH_PARENT",
                self.sidecar.watch_parent,
            ),
        ];
        if !self.is_sidecar() {
            return match watch.iter().find(|(_, _, set)| *set) {
                Some((flag, env, _)) => Err(format!(
                    "error: {flag} ({env}) only applies in sidecar mode, with no command: around a game it starts, the agent already watches it\n"
                )),
                None => Ok(()),
            };
        }
        if watch.iter().all(|(_, _, set)| *set) {
            return Err("error: --watch-pid (EDGEGAP_AGENT_WATCH_PID) and --watch-parent (EDGEGAP_AGENT_WATCH_PARENT) cannot both be set: the agent watches one process\n".into());
        }
        let mut refused: Vec<String> = WRAP_ONLY
            .iter()
            .filter(|(id, ..)| given(matches, id))
            .map(|(_, flag, env, why)| {
                format!("error: {flag} ({env}) only applies in wrap mode (a command after `--`): in sidecar mode {why}\n")
            })
            .collect();
        if self.lifecycle.on_exit.restarts_any() {
            refused.push("error: --on-exit (EDGEGAP_AGENT_ON_EXIT) says `restart`, which cannot apply in sidecar mode: the agent cannot restart a game it did not start (use stop or exit)\n".into());
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(refused.concat())
        }
    }
}
