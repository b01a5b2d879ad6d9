//! The agent's options: one clap definition, each flag with its `EDGEGAP_AGENT_*` twin, and
//! the checks between options that clap cannot express. Parsing happens once, in `main`;
//! every error names the flag (and the variable, when the value came from one) and the value,
//! and ends the agent with exit code 64 before the game is started.

mod agones_sdk;
mod api;
mod lifecycle;
mod platform;
mod sidecar;

use std::ffi::OsString;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser};
use nix::sys::signal::Signal;
use tracing::level_filters::LevelFilter;

use crate::exit_code::ExitCodeMap;
use crate::lifecycle::MachineOptions;
use crate::logging::LogFormat;
use crate::units::{
    parse_duration, parse_duration_at_most, parse_signal, SignalMap, MAX_GRACE_PERIOD,
};

pub use agones_sdk::AgonesOptions;
pub use api::ApiOptions;
pub use lifecycle::{HookCommand, LifecycleOptions};
pub use platform::{PlatformOptions, PlatformOptionsError, SelfStopOptions};
pub use sidecar::{SidecarOptions, SIDECAR_STOP_BOUND};

/// `edgegap-agent [OPTIONS] -- <command> [args...]` (wrap mode), `edgegap-agent [OPTIONS]`
/// (sidecar mode), or `edgegap-agent self-stop [OPTIONS]`.
#[derive(Debug, Parser)]
#[command(
    name = "edgegap-agent",
    version,
    about = "Runs a game server on Edgegap: PID 1, signals, grace period, exit codes.",
    after_help = "With no COMMAND the agent runs in sidecar mode, beside a game started by something else: the same API and platform calls, no spawning, no signal forwarding (see --watch-pid and --watch-parent). The options that act on a game the agent starts (--pre-stop, --end-on-log, --stop-signal, --forward-signal-map, --exit-code-map, the --restart-* options and --max-restarts, an --on-exit `restart`, --pass-platform-tokens) are refused there.\n\nEvery option can also be set through the environment variable shown with it.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub subcommand: Option<Subcommand>,

    #[command(flatten)]
    pub supervisor: SupervisorOptions,

    #[command(flatten)]
    pub lifecycle: LifecycleOptions,

    #[command(flatten)]
    pub logging: LoggingOptions,

    #[command(flatten)]
    pub api: ApiOptions,

    #[command(flatten)]
    pub agones: AgonesOptions,

    #[command(flatten)]
    pub game_env: GameEnvOptions,

    #[command(flatten)]
    pub platform: PlatformOptions,

    #[command(flatten)]
    pub sidecar: SidecarOptions,

    /// The game server and its arguments, after `--` (wrap mode). Without it the agent runs
    /// in sidecar mode.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

/// `defer`: the subcommand's options are only built when it is the one given (or its help is
/// shown), so that wrap mode, the entrypoint, does not pay to build them at every start.
#[derive(Debug, clap::Subcommand)]
#[command(defer = true)]
pub enum Subcommand {
    /// Ask the platform to stop this deployment, once, with retries
    SelfStop(SelfStopCommand),
}

// The options of `edgegap-agent self-stop`. Deferred, they bring their own help text: this.
/// Ask the platform to stop this deployment, once, with retries
///
/// Sends `DELETE $ARBITRIUM_DELETE_URL` with `authorization: $ARBITRIUM_DELETE_TOKEN`.
/// Exit 0: accepted or already stopping (404); 77: refused (401/403), not retried;
/// 69: no answer before the attempts or the deadline (default 15 minutes) ran out;
/// 64: ARBITRIUM_DELETE_URL/TOKEN missing or malformed, or a bad option;
/// 130/143/129: interrupted by SIGINT (Ctrl-C)/SIGTERM/SIGHUP before the platform answered.
#[derive(Debug, Clone, Args)]
pub struct SelfStopCommand {
    #[command(flatten)]
    pub platform: PlatformOptions,

    #[command(flatten)]
    pub logging: LoggingOptions,
}

/// How the game server is stopped and how its end is reported.
#[derive(Debug, Clone, Args)]
pub struct SupervisorOptions {
    /// Signal a stop sends to the game's process group (TERM, INT, QUIT, ... or a number).
    #[arg(long, env = "EDGEGAP_AGENT_STOP_SIGNAL", default_value = "TERM", value_parser = parse_signal, value_name = "SIGNAL")]
    pub stop_signal: Signal,

    /// Rewrites forwarded signals, e.g. `TERM=INT,HUP=USR1`.
    #[arg(long, env = "EDGEGAP_AGENT_FORWARD_SIGNAL_MAP", default_value = "", hide_default_value = true, value_parser = SignalMap::parse, value_name = "FROM=TO,...")]
    pub forward_signal_map: SignalMap,

    /// Time the game has to exit after a stop before it is killed. Set it to the app
    /// version's `termination_grace_period_seconds` (at most 1h, the platform's largest).
    #[arg(long, env = "EDGEGAP_AGENT_GRACE_PERIOD", default_value = "30s", value_parser = parse_grace_period, value_name = "DURATION", allow_hyphen_values = true)]
    pub grace_period: Duration,

    /// How long before the end of the grace period the agent SIGKILLs the game, so that it
    /// exits (with its own code) before the platform's SIGKILL reaches it. Also accepted as
    /// --stop-timeout-margin.
    #[arg(long, alias = "stop-timeout-margin", env = "EDGEGAP_AGENT_KILL_MARGIN", default_value = "1s", value_parser = parse_duration, value_name = "DURATION", allow_hyphen_values = true)]
    pub kill_margin: Duration,

    /// Rewrites the final exit code, e.g. `143=0,137=0` (for `restart_policy: on_failure`).
    #[arg(long, env = "EDGEGAP_AGENT_EXIT_CODE_MAP", default_value = "", hide_default_value = true, value_parser = ExitCodeMap::parse, value_name = "FROM=TO,...")]
    pub exit_code_map: ExitCodeMap,
}

impl SupervisorOptions {
    /// The time from a stop to the agent's SIGKILL: grace period minus kill margin.
    pub fn kill_after(&self) -> Duration {
        self.grace_period.saturating_sub(self.kill_margin)
    }
}

/// What the game's environment holds besides the agent's own.
#[derive(Debug, Clone, Args)]
pub struct GameEnvOptions {
    /// Pass ARBITRIUM_DELETE_TOKEN and ARBITRIUM_CONTEXT_TOKEN on to the game (and the
    /// --pre-stop hook). By default they are removed: the agent makes the platform calls, and
    /// a game that prints its environment would leak the token that stops the deployment.
    #[arg(long, env = "EDGEGAP_AGENT_PASS_PLATFORM_TOKENS")]
    pub pass_platform_tokens: bool,
}

/// `--grace-period`: at most the platform's largest `termination_grace_period_seconds`.
fn parse_grace_period(text: &str) -> Result<Duration, String> {
    parse_duration_at_most(
        text,
        MAX_GRACE_PERIOD,
        "the platform's largest termination_grace_period_seconds",
    )
}

/// Where and how the agent's own log lines are written (always stderr).
#[derive(Debug, Clone, Args)]
pub struct LoggingOptions {
    /// Log line format.
    #[arg(
        long,
        env = "EDGEGAP_AGENT_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Most detailed level logged: off, error, warn, info, debug, trace.
    #[arg(long, env = "EDGEGAP_AGENT_LOG", default_value = "info", value_parser = parse_level, value_name = "LEVEL")]
    pub log_level: LevelFilter,
}

fn parse_level(text: &str) -> Result<LevelFilter, String> {
    text.trim().parse::<LevelFilter>().map_err(|_| {
        format!("{text:?} is not a log level (expected off, error, warn, info, debug or trace)")
    })
}

/// What parsing the command line ended with, when it did not produce options.
#[derive(Debug)]
pub enum ParseOutcome {
    /// `--help` or `--version`: print it and exit 0.
    Informational(String),
    /// A usage or configuration error, already phrased for the user: exit 64.
    Invalid(String),
}

impl Cli {
    /// Parses and validates `args` (the program name first). Environment twins are read
    /// from the process environment by clap.
    pub fn parse_and_validate<I, T>(args: I) -> Result<Cli, ParseOutcome>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let refuse = |error: clap::Error| match error.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                ParseOutcome::Informational(error.render().to_string())
            }
            _ => ParseOutcome::Invalid(describe_with_source(&error, &args)),
        };
        let matches = Cli::command().try_get_matches_from(&args).map_err(refuse)?;
        let mut cli = Cli::from_arg_matches(&matches).map_err(refuse)?;
        // Errors about the CA file name the variable when the value came from it.
        let platform_matches = match &mut cli.subcommand {
            Some(Subcommand::SelfStop(command)) => matches
                .subcommand_matches("self-stop")
                .map(|m| (m, &mut command.platform)),
            None => Some((&matches, &mut cli.platform)),
        };
        if let Some((m, platform)) = platform_matches {
            platform.http.ca_file_from_env =
                m.value_source("ca_file") == Some(ValueSource::EnvVariable);
        }
        // The default API address gives way when taken; one the user gave does not.
        cli.api.api_addr_given = !matches!(
            matches.value_source("api_addr"),
            None | Some(ValueSource::DefaultValue)
        );
        cli.agones.agones_addr_given = !matches!(
            matches.value_source("agones_addr"),
            None | Some(ValueSource::DefaultValue)
        );
        cli.validate().map_err(ParseOutcome::Invalid)?;
        if cli.subcommand.is_none() {
            cli.validate_mode(&matches).map_err(ParseOutcome::Invalid)?;
        }
        Ok(cli)
    }

    /// The logging options of the mode that runs.
    pub fn logging(&self) -> &LoggingOptions {
        match &self.subcommand {
            Some(Subcommand::SelfStop(command)) => &command.logging,
            None => &self.logging,
        }
    }

    /// The options the lifecycle machine runs with.
    pub fn machine_options(&self) -> MachineOptions {
        let (s, l) = (&self.supervisor, &self.lifecycle);
        MachineOptions {
            stop_signal: s.stop_signal,
            forward_signal_map: s.forward_signal_map.clone(),
            kill_after: self.stop_bound(),
            exit_code_map: s.exit_code_map.clone(),
            on_exit: l.on_exit.clone(),
            restart: l.restart_budget(),
            idle_timeout: l.idle_timeout,
            empty_timeout: l.empty_timeout,
            max_match_duration: l.max_match_duration,
            heartbeat_timeout: l.heartbeat_timeout,
            self_stop_wait: l.self_stop_wait,
            pre_stop_hook: l.pre_stop.is_some(),
            // Known to the driver, which fills it in.
            is_pid1: false,
            sidecar: self.is_sidecar(),
        }
    }

    fn validate(&self) -> Result<(), String> {
        let platform = match &self.subcommand {
            Some(Subcommand::SelfStop(command)) => &command.platform,
            None => &self.platform,
        };
        if let Err(error) = platform.self_stop.policy() {
            return Err(format!(
                "error: {error} (the --self-stop-* flags and their EDGEGAP_AGENT_SELF_STOP_* variables)\n"
            ));
        }
        if self.subcommand.is_some() {
            return Ok(());
        }
        let s = &self.supervisor;
        if s.grace_period <= s.kill_margin {
            return Err(format!(
                "error: --grace-period ({}) must be longer than --kill-margin ({}): the game would get no time to stop\n",
                humantime::format_duration(s.grace_period),
                humantime::format_duration(s.kill_margin)
            ));
        }
        self.api.validate()?;
        self.agones.validate()?;
        self.lifecycle.validate()
    }
}

/// clap names the flag of a bad value; when the value came from the flag's environment twin
/// (the flag is not on the command line), say so, so the user knows where to look.
fn describe_with_source(error: &clap::Error, args: &[OsString]) -> String {
    let mut text = error.render().to_string();
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return text;
    };
    let long = arg.split_whitespace().next().unwrap_or_default();
    let command = Cli::command();
    let Some(env) = command
        .get_arguments()
        .find(|a| a.get_long().is_some_and(|l| format!("--{l}") == long))
        .and_then(|a| a.get_env())
    else {
        return text;
    };
    let on_command_line = args.iter().any(|a| {
        let a = a.to_string_lossy();
        a == long || a.starts_with(&format!("{long}="))
    });
    if !on_command_line {
        text = text.replacen(
            '\n',
            &format!(
                " (the value came from the environment variable {})\n",
                env.to_string_lossy()
            ),
            1,
        );
    }
    text
}
