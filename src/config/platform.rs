//! Options of the platform calls: the self-stop's retry policy (also the context fetch's) and
//! the HTTP client's trust roots.

use std::time::Duration;

use clap::Args;

use crate::platform::{
    build_client, ClientError, EnvProblem, HttpClient, HttpOptions, Platform, PlatformEnv,
    PolicyError, RetryPolicy,
};
use crate::units::parse_duration;

/// The retry policy of the self-stop (and of the context fetch). The defaults outlast an
/// outage of the platform's API of several minutes (see `platform::retry`): giving up makes
/// the agent exit, which under `restart_policy: always` starts a new match.
#[derive(Debug, Clone, Args)]
pub struct SelfStopOptions {
    /// Most attempts of one self-stop (default: no cap; the deadline bounds the retries).
    #[arg(long, env = "EDGEGAP_AGENT_SELF_STOP_MAX_ATTEMPTS", value_name = "N")]
    pub self_stop_max_attempts: Option<u32>,

    /// Total time a self-stop may take, retries included. While it retries the agent stays
    /// up; only when it passes does the agent stop the game and exit.
    #[arg(long, env = "EDGEGAP_AGENT_SELF_STOP_DEADLINE", default_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    pub self_stop_deadline: Duration,

    /// Time one attempt may take.
    #[arg(long, env = "EDGEGAP_AGENT_SELF_STOP_ATTEMPT_TIMEOUT", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub self_stop_attempt_timeout: Duration,

    /// Largest wait before the first retry (full jitter: the wait is random up to it).
    #[arg(long, env = "EDGEGAP_AGENT_SELF_STOP_INITIAL_BACKOFF", default_value = "250ms", value_parser = parse_duration, value_name = "DURATION")]
    pub self_stop_initial_backoff: Duration,

    /// Cap of the doubling backoff: the longest wait between two attempts.
    #[arg(long, env = "EDGEGAP_AGENT_SELF_STOP_MAX_BACKOFF", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub self_stop_max_backoff: Duration,
}

impl SelfStopOptions {
    /// The validated policy; the error names the flags at fault.
    pub fn policy(&self) -> Result<RetryPolicy, PolicyError> {
        RetryPolicy::new(
            self.self_stop_max_attempts.unwrap_or(u32::MAX),
            self.self_stop_initial_backoff,
            self.self_stop_max_backoff,
            self.self_stop_attempt_timeout,
            self.self_stop_deadline,
        )
    }
}

/// Options of every platform call.
#[derive(Debug, Clone, Args)]
pub struct PlatformOptions {
    #[command(flatten)]
    pub self_stop: SelfStopOptions,
    #[command(flatten)]
    pub http: HttpOptions,
}

impl PlatformOptions {
    /// The platform side for the parsed environment: the retry policy and the HTTP client
    /// these options describe. An error is the agent's own configuration (exit 64).
    pub fn platform(
        &self,
        env: PlatformEnv,
        problems: Vec<EnvProblem>,
    ) -> Result<Platform, PlatformOptionsError> {
        let policy = self.self_stop.policy()?;
        let client: HttpClient = build_client(&self.http)?;
        Ok(Platform::new(env, problems, client, policy))
    }
}

/// Why the platform options cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlatformOptionsError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Client(#[from] ClientError),
}
