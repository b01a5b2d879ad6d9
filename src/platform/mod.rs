//! Everything between the agent and the Edgegap platform: the injected `ARBITRIUM_*`
//! environment ([`env`], [`ports`]), secrets ([`secret`]), the merged deployment view served
//! by the API ([`deployment`], [`context`]), and the platform calls with their retry policy
//! ([`retry`], [`client`], [`call`], [`dns`], [`self_stop`]).
//!
//! This file holds [`Platform`], the platform side of a running agent as `main` builds it
//! once: the environment as parsed, the HTTP client, and the single-flight self-stop. It
//! knows nothing of the lifecycle or the API; the wiring above adapts its outcomes.

pub mod call;
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

use tracing::{info, warn};

pub use client::{build_client, ClientError, HttpClient, HttpOptions};
pub use context::{fetch_context, Context, ContextError};
pub use deployment::Deployment;
pub use env::{EnvProblem, PlatformEnv};
pub use retry::{PolicyError, RetryPolicy};
pub use secret::Secret;
pub use self_stop::{AttemptClass, SelfStop, SelfStopOutcome, SelfStopTarget};

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

/// The variables to remove from the environment of the game and the pre-stop hook: the
/// platform's tokens ([`env::TOKEN_VARIABLES`]), unless `pass` (`--pass-platform-tokens`). The
/// agent makes the platform calls itself, and a game (or an engine plugin, or a start script)
/// that prints its environment into the deployment's logs would leak the token that stops
/// the deployment. Says once, at start, what happens to the tokens present.
pub fn game_env_removals(pass: bool) -> Vec<&'static str> {
    let present: Vec<&str> = env::TOKEN_VARIABLES
        .into_iter()
        .filter(|name| std::env::var_os(name).is_some())
        .collect();
    match (pass, present.is_empty()) {
        (true, true) => {}
        (true, false) => info!(
            "{} passed on to the game server (--pass-platform-tokens)",
            present.join(" and ")
        ),
        (false, true) => {}
        (false, false) => info!(
            "{} removed from the game server's environment: the agent makes the platform calls (--pass-platform-tokens passes them on)",
            present.join(" and ")
        ),
    }
    if pass {
        Vec::new()
    } else {
        env::TOKEN_VARIABLES.to_vec()
    }
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
    /// The platform side for an already parsed environment, calling through `client` under
    /// `policy` (the self-stop's, also used for the context fetch).
    pub fn new(
        env: PlatformEnv,
        problems: Vec<EnvProblem>,
        client: HttpClient,
        policy: RetryPolicy,
    ) -> Platform {
        let target = SelfStopTarget::from_env(&env, &problems);
        Platform {
            deployment: Deployment::from_env(&env),
            self_stop: SelfStop::new(target, client.clone(), policy),
            env,
            problems,
            client,
            policy,
        }
    }

    /// The deployment as the API serves it (`GET /v1/deployment`); it holds no secret.
    pub fn deployment_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.deployment).unwrap_or(serde_json::Value::Null)
    }

    /// The internal ports the game serves over TCP (TCP, TCP/UDP, HTTP(S), WS(S)), for the
    /// API's `--ready-on-ports` check. The environment does not say which ports the platform
    /// checks (`to_check`), so every TCP port counts.
    /// Every internal port of the mapping, whatever its protocol: ports the game will bind.
    pub fn internal_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.env.ports.values().map(|p| p.internal).collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

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
