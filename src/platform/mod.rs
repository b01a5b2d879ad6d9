//! Everything between the agent and the Edgegap platform: the injected `ARBITRIUM_*`
//! environment ([`env`], [`ports`]), secrets ([`secret`]), the merged deployment view served
//! by the API ([`deployment`], [`context`]), and the platform calls with their retry policy
//! ([`retry`], [`client`], [`dns`], [`self_stop`]).
//!
//! This file holds the options of those calls and the start-up steps `main` runs: parse the
//! environment once and report it ([`load_env`]), build the client and the self-stop handle
//! ([`Platform::start`]), and the `self-stop` subcommand ([`run_self_stop_command`]).

pub mod client;
pub mod context;
pub mod deployment;
pub mod dns;
pub mod env;
pub mod ports;
pub mod retry;
pub mod secret;
pub mod self_stop;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tracing::{info, warn};

use crate::api::{Metrics, SelfStopAttempt};
use crate::config::parse_duration;
pub use client::{build_client, ClientError, HttpClient, HttpOptions};
pub use context::{fetch_context, Context, ContextError};
pub use deployment::Deployment;
pub use env::{EnvProblem, PlatformEnv};
pub use retry::{PolicyError, RetryPolicy};
pub use secret::Secret;
pub use self_stop::{SelfStop, SelfStopOutcome, SelfStopTarget};

/// The retry policy of the self-stop (and of the context fetch).
#[derive(Debug, Clone, Args)]
pub struct SelfStopOptions {
    /// Most attempts of one self-stop.
    #[arg(
        long,
        env = "EDGEGAP_AGENT_SELF_STOP_MAX_ATTEMPTS",
        default_value = "8",
        value_name = "N"
    )]
    pub self_stop_max_attempts: u32,

    /// Total time a self-stop may take, retries included.
    #[arg(long, env = "EDGEGAP_AGENT_SELF_STOP_DEADLINE", default_value = "20s", value_parser = parse_duration, value_name = "DURATION")]
    pub self_stop_deadline: Duration,

    /// Time one attempt may take.
    #[arg(long, env = "EDGEGAP_AGENT_SELF_STOP_ATTEMPT_TIMEOUT", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub self_stop_attempt_timeout: Duration,

    /// Largest wait before the first retry (full jitter: the wait is random up to it).
    #[arg(long, env = "EDGEGAP_AGENT_SELF_STOP_INITIAL_BACKOFF", default_value = "250ms", value_parser = parse_duration, value_name = "DURATION")]
    pub self_stop_initial_backoff: Duration,

    /// Cap of the doubling backoff.
    #[arg(long, env = "EDGEGAP_AGENT_SELF_STOP_MAX_BACKOFF", default_value = "4s", value_parser = parse_duration, value_name = "DURATION")]
    pub self_stop_max_backoff: Duration,
}

impl SelfStopOptions {
    /// The validated policy; the error names the flags at fault.
    pub fn policy(&self) -> Result<RetryPolicy, PolicyError> {
        RetryPolicy::new(
            self.self_stop_max_attempts,
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

/// Parses the process environment once and reports it: local mode once, and each malformed
/// variable as a warning (the game starts anyway).
pub fn load_env() -> (PlatformEnv, Vec<EnvProblem>) {
    let (env, problems) = PlatformEnv::from_env();
    report_env(&env, &problems);
    (env, problems)
}

/// Logs what [`PlatformEnv::from_iter`] found.
pub fn report_env(env: &PlatformEnv, problems: &[EnvProblem]) {
    if !env.on_edgegap {
        info!("no ARBITRIUM_* variable: running in local mode (outside Edgegap); self-stop and deployment context are unavailable");
        return;
    }
    info!(
        request_id = env.request_id.as_deref().unwrap_or("<unknown>"),
        ports = env.ports.len(),
        self_stop = env.delete_url.is_some() && env.delete_token.is_some(),
        "running on Edgegap"
    );
    for problem in problems {
        warn!(variable = %problem.variable, "malformed platform variable, ignored: {problem}");
    }
}

/// Why the platform side could not start (the agent's own configuration, exit 64).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// The platform side of a running agent, built once at start.
#[derive(Debug)]
pub struct Platform {
    pub env: PlatformEnv,
    pub problems: Vec<EnvProblem>,
    /// The environment's view; merge a fetched [`Context`] into it for the full one.
    pub deployment: Deployment,
    pub client: client::HttpClient,
    pub policy: RetryPolicy,
    pub self_stop: SelfStop,
}

impl Platform {
    /// Builds the client and the self-stop handle for an already parsed environment.
    pub fn start(
        env: PlatformEnv,
        problems: Vec<EnvProblem>,
        options: &PlatformOptions,
    ) -> Result<Platform, StartError> {
        let policy = options.self_stop.policy()?;
        let client = build_client(&options.http)?;
        let target = SelfStopTarget::from_env(&env, &problems);
        Ok(Platform {
            deployment: Deployment::from_env(&env),
            self_stop: SelfStop::new(target, client.clone(), policy),
            env,
            problems,
            client,
            policy,
        })
    }
}

impl Platform {
    /// The deployment as the API serves it (`GET /v1/deployment`); it holds no secret.
    pub fn deployment_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.deployment).unwrap_or(serde_json::Value::Null)
    }

    /// The internal ports the game serves over TCP (TCP, TCP/UDP, HTTP(S), WS(S)), for the
    /// API's `--ready-on-ports` check. The environment does not say which ports the platform
    /// checks (`to_check`), so every TCP port counts.
    pub fn tcp_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .env
            .ports
            .values()
            .filter(|p| {
                let protocol = p.protocol.to_ascii_uppercase();
                ["TCP", "HTTP", "WS"].iter().any(|t| protocol.contains(t))
            })
            .map(|p| p.internal)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// The supervisor's self-stop: the single-flight client, its outcome as the lifecycle
    /// machine's result (accepted or already gone: the platform's SIGTERM will come), and its
    /// attempts counted in `metrics` (`GET /metrics`).
    pub fn self_stop_call(&self, metrics: Arc<Metrics>) -> crate::supervisor::SelfStopCall {
        let handle = self.self_stop.clone();
        Box::new(move || {
            let handle = handle.clone();
            let metrics = Arc::clone(&metrics);
            Box::pin(async move {
                let outcome = handle.stop().await;
                record_attempts(&metrics, &outcome);
                outcome.into()
            })
        })
    }

    /// Whether `ARBITRIUM_CONTEXT_URL` and its token are both set.
    pub fn has_context(&self) -> bool {
        self.env.context_url.is_some() && self.env.context_token.is_some()
    }

    /// "The deployment" for the API: the environment's view, merged with the context when
    /// `ARBITRIUM_CONTEXT_URL` and its token are set and the fetch succeeds (same retry
    /// policy as the self-stop). A failed fetch is a warning: the environment alone is served.
    pub async fn fetch_deployment(&self) -> Deployment {
        let mut deployment = self.deployment.clone();
        if self.env.context_url.is_none() || self.env.context_token.is_none() {
            return deployment;
        }
        let mut jitter = retry::SplitMix64::from_entropy();
        match fetch_context(
            &self.client,
            &self.policy,
            &mut jitter,
            self.env.context_url.as_ref(),
            self.env.context_token.as_ref(),
        )
        .await
        {
            Ok(context) => deployment.merge_context(&context),
            Err(error) => warn!("{error}; serving the deployment as the environment gives it"),
        }
        deployment
    }
}

/// Counts a finished sequence's attempts by outcome: every attempt before the last was a
/// retryable failure (the only kind that is retried); the last one ended it.
fn record_attempts(metrics: &Metrics, outcome: &SelfStopOutcome) {
    let (retried, last) = match outcome {
        SelfStopOutcome::Accepted { attempts, .. } => {
            (attempts.saturating_sub(1), Some(SelfStopAttempt::Accepted))
        }
        SelfStopOutcome::AlreadyGone { attempts } => (
            attempts.saturating_sub(1),
            Some(SelfStopAttempt::AlreadyStopping),
        ),
        SelfStopOutcome::Rejected { .. } => (0, Some(SelfStopAttempt::Fatal)),
        SelfStopOutcome::GaveUp { attempts, .. } => (*attempts, None),
        SelfStopOutcome::NotConfigured { .. } => (0, None),
    };
    for _ in 0..retried {
        metrics.record_self_stop(SelfStopAttempt::Retryable);
    }
    if let Some(last) = last {
        metrics.record_self_stop(last);
    }
}

/// `edgegap-agent self-stop`: one self-stop from a shell; returns the exit code.
pub async fn run_self_stop_command(
    env: PlatformEnv,
    problems: Vec<EnvProblem>,
    options: &PlatformOptions,
) -> i32 {
    let platform = match Platform::start(env, problems, options) {
        Ok(platform) => platform,
        Err(error) => {
            tracing::error!("{error}");
            return crate::exit_code::USAGE;
        }
    };
    platform.self_stop.stop().await.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(outcome: SelfStopOutcome) -> [u64; 4] {
        let metrics = Metrics::default();
        record_attempts(&metrics, &outcome);
        [
            SelfStopAttempt::Accepted,
            SelfStopAttempt::AlreadyStopping,
            SelfStopAttempt::Retryable,
            SelfStopAttempt::Fatal,
        ]
        .map(|kind| metrics.self_stop_attempts(kind))
    }

    #[test]
    fn every_attempt_of_a_sequence_is_counted_by_its_outcome() {
        assert_eq!(
            counts(SelfStopOutcome::Accepted {
                status: 200,
                attempts: 6
            }),
            [1, 0, 5, 0]
        );
        assert_eq!(
            counts(SelfStopOutcome::AlreadyGone { attempts: 1 }),
            [0, 1, 0, 0]
        );
        assert_eq!(
            counts(SelfStopOutcome::Rejected { status: 401 }),
            [0, 0, 0, 1]
        );
        let gave_up = SelfStopOutcome::GaveUp {
            attempts: 4,
            last_error: "timeout".into(),
        };
        assert_eq!(counts(gave_up), [0, 0, 4, 0]);
        assert_eq!(
            counts(SelfStopOutcome::NotConfigured {
                reason: "local".into()
            }),
            [0; 4]
        );
    }
}
