//! Options of the match lifecycle: the exit-code policy, restarts, and the triggers that end
//! a match (log line, idle, empty, maximum duration, lost heartbeats).

use std::ffi::OsString;
use std::time::Duration;

use clap::Args;

use crate::lifecycle::{OnExitPolicy, RestartBudget};
use crate::units::{parse_duration, parse_duration_at_most, MAX_MATCH_DURATION};

#[derive(Debug, Clone, Args)]
pub struct LifecycleOptions {
    /// What to do when the game exits on its own, per exit code (128+N for signal N):
    /// `stop` (end the match: self-stop, then exit), `restart` (in place, within the
    /// restart budget), `exit` (exit with the code; the platform's restart policy decides).
    #[arg(long, env = "EDGEGAP_AGENT_ON_EXIT", default_value = OnExitPolicy::DEFAULT_TEXT, value_parser = OnExitPolicy::parse, value_name = "CODE=ACTION,...")]
    pub on_exit: OnExitPolicy,

    /// Restarts allowed within --restart-window before the `*` action of --on-exit applies.
    #[arg(
        long,
        env = "EDGEGAP_AGENT_MAX_RESTARTS",
        default_value_t = 5,
        value_name = "N"
    )]
    pub max_restarts: u32,

    /// The sliding window --max-restarts counts restarts in: a restart older than this no
    /// longer uses up the budget.
    #[arg(long, env = "EDGEGAP_AGENT_RESTART_WINDOW", default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub restart_window: Duration,

    /// Wait before the first restart; doubled for each further restart in the window.
    #[arg(long, env = "EDGEGAP_AGENT_RESTART_BACKOFF", default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub restart_backoff: Duration,

    /// Cap of the doubling --restart-backoff (at least --restart-backoff).
    #[arg(long, env = "EDGEGAP_AGENT_RESTART_BACKOFF_MAX", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub restart_backoff_max: Duration,

    /// End the match when a line of the game's stdout or stderr matches this regular
    /// expression. The game's output then flows through the agent, unchanged, a line at a time.
    #[arg(long, env = "EDGEGAP_AGENT_END_ON_LOG", value_parser = parse_regex, value_name = "REGEX")]
    pub end_on_log: Option<regex_lite::Regex>,

    /// End the match when no player is connected for this long, after the first one joined.
    #[arg(long, env = "EDGEGAP_AGENT_IDLE_TIMEOUT", value_parser = parse_duration, value_name = "DURATION")]
    pub idle_timeout: Option<Duration>,

    /// End the match when no player joined within this long of readiness.
    #[arg(long, env = "EDGEGAP_AGENT_EMPTY_TIMEOUT", value_parser = parse_duration, value_name = "DURATION")]
    pub empty_timeout: Option<Duration>,

    /// End the match gracefully after this long, ahead of the platform's hard max_duration
    /// (at most 24h, the platform's largest).
    #[arg(long, env = "EDGEGAP_AGENT_MAX_MATCH_DURATION", value_parser = parse_match_duration, value_name = "DURATION")]
    pub max_match_duration: Option<Duration>,

    /// Once the game has sent a heartbeat, missing them this long means it is hung: it is
    /// killed and --on-exit sees exit code 124.
    #[arg(long, env = "EDGEGAP_AGENT_HEARTBEAT_TIMEOUT", value_parser = parse_duration, value_name = "DURATION")]
    pub heartbeat_timeout: Option<Duration>,

    /// After self-stop, how long to wait for the platform's SIGTERM before stopping the game.
    #[arg(long, env = "EDGEGAP_AGENT_SELF_STOP_WAIT", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub self_stop_wait: Duration,

    /// A command run first on every stop (words split on spaces, no shell), bounded by the
    /// grace period; its output is logged. The stop signal follows when it ends.
    #[arg(long, env = "EDGEGAP_AGENT_PRE_STOP", value_parser = parse_command, value_name = "COMMAND")]
    pub pre_stop: Option<HookCommand>,
}

impl LifecycleOptions {
    pub fn restart_budget(&self) -> RestartBudget {
        RestartBudget {
            max_restarts: self.max_restarts,
            window: self.restart_window,
            initial_backoff: self.restart_backoff,
            max_backoff: self.restart_backoff_max,
        }
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        let positive = [
            ("--restart-window", Some(self.restart_window)),
            ("--idle-timeout", self.idle_timeout),
            ("--empty-timeout", self.empty_timeout),
            ("--max-match-duration", self.max_match_duration),
            ("--heartbeat-timeout", self.heartbeat_timeout),
            ("--self-stop-wait", Some(self.self_stop_wait)),
        ];
        for (flag, value) in positive {
            if value.is_some_and(|v| v.is_zero()) {
                return Err(format!("error: {flag} must be longer than 0\n"));
            }
        }
        if self.restart_backoff > self.restart_backoff_max {
            return Err(format!(
                "error: --restart-backoff ({}) must not be longer than --restart-backoff-max ({})\n",
                humantime::format_duration(self.restart_backoff),
                humantime::format_duration(self.restart_backoff_max)
            ));
        }
        Ok(())
    }
}

/// `--max-match-duration`: no deployment outlives the platform's largest `max_duration`.
fn parse_match_duration(text: &str) -> Result<Duration, String> {
    parse_duration_at_most(
        text,
        MAX_MATCH_DURATION,
        "the platform's largest max_duration, 1440 minutes",
    )
}

fn parse_regex(text: &str) -> Result<regex_lite::Regex, String> {
    regex_lite::Regex::new(text).map_err(|e| format!("{text:?} is not a regular expression: {e}"))
}

/// A command line as its words (a newtype, so clap takes it as one value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookCommand(pub Vec<OsString>);

fn parse_command(text: &str) -> Result<HookCommand, String> {
    let words: Vec<OsString> = text.split_whitespace().map(OsString::from).collect();
    if words.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(HookCommand(words))
}
