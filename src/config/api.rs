//! `--api-*` and `--ready-on-ports`: where the local API listens and who may call it.

use std::net::SocketAddr;

use clap::Args;

use crate::api::{ApiToken, ListenAddr};

/// The local HTTP API the game talks to.
#[derive(Clone, Args)]
pub struct ApiOptions {
    /// Address the local API listens on. Its URL is given to the game as EDGEGAP_AGENT_URL.
    /// Keep it on loopback unless something outside the container must reach it (then
    /// --api-token is required). When not set, a taken 7070 (or one the game's port mapping
    /// uses) makes the agent pick a free loopback port instead.
    #[arg(long, env = "EDGEGAP_AGENT_API_ADDR", default_value = crate::api::DEFAULT_API_ADDR, value_name = "IP:PORT")]
    pub api_addr: SocketAddr,

    /// Whether --api-addr (or its variable) was given, rather than defaulted.
    #[arg(skip)]
    pub api_addr_given: bool,

    /// Bearer token the API's POST routes require (`Authorization: Bearer <token>`). The game
    /// receives it as EDGEGAP_AGENT_API_TOKEN. Required for a non-loopback --api-addr.
    #[arg(long, env = "EDGEGAP_AGENT_API_TOKEN", value_parser = parse_token, value_name = "TOKEN", hide_env_values = true)]
    pub api_token: Option<ApiToken>,

    /// With --api-token, the GET routes that show the match (/v1/deployment, /v1/status,
    /// /v1/events, /v1/players, /metrics) need the token too; /healthz and /readyz stay open for probes.
    #[arg(long, env = "EDGEGAP_AGENT_API_GUARD_READS")]
    pub api_guard_reads: bool,

    /// Serve a non-loopback --api-addr with no token: anyone who can reach it can end the
    /// match. Insecure; for networks you fully control.
    #[arg(long, env = "EDGEGAP_AGENT_API_INSECURE_NO_TOKEN")]
    pub api_insecure_no_token: bool,

    /// `GET /readyz` also reports ready once every TCP port of the port mapping (protocol TCP,
    /// TCP/UDP, HTTP(S) or WS(S); UDP ports are not probed) accepts a connection on
    /// 127.0.0.1 at its internal port.
    #[arg(long, env = "EDGEGAP_AGENT_READY_ON_PORTS")]
    pub ready_on_ports: bool,
}

impl std::fmt::Debug for ApiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiOptions")
            .field("api_addr", &self.api_addr)
            .field("api_addr_given", &self.api_addr_given)
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field("api_guard_reads", &self.api_guard_reads)
            .field("api_insecure_no_token", &self.api_insecure_no_token)
            .field("ready_on_ports", &self.ready_on_ports)
            .finish()
    }
}

impl ApiOptions {
    /// Where the API is to listen: the address given, or the default (which may give way).
    pub fn listen_addr(&self) -> ListenAddr {
        if self.api_addr_given {
            ListenAddr::Given(self.api_addr)
        } else {
            ListenAddr::Default
        }
    }

    /// What to warn about at start when the API is reachable beyond loopback.
    pub fn exposure_warning(&self) -> Option<String> {
        if self.api_addr.ip().to_canonical().is_loopback() {
            return None;
        }
        if self.api_token.is_none() {
            return Some(format!("the local API on {} has no token (--api-insecure-no-token): anyone who can reach it can end the match", self.api_addr));
        }
        (!self.api_guard_reads).then(|| format!("the local API on {} shows the deployment, status, players and metrics to anyone who can reach it; --api-guard-reads puts them behind the token too", self.api_addr))
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        let loopback = self.api_addr.ip().to_canonical().is_loopback();
        if !loopback && self.api_token.is_none() && !self.api_insecure_no_token {
            return Err(format!(
                "error: --api-addr {} (EDGEGAP_AGENT_API_ADDR) is not a loopback address, so anyone who can reach it could end the match: set --api-token (EDGEGAP_AGENT_API_TOKEN), or pass --api-insecure-no-token (EDGEGAP_AGENT_API_INSECURE_NO_TOKEN) to serve it without one\n",
                self.api_addr
            ));
        }
        if self.api_guard_reads && self.api_token.is_none() {
            return Err("error: --api-guard-reads (EDGEGAP_AGENT_API_GUARD_READS) needs --api-token (EDGEGAP_AGENT_API_TOKEN): there is no token to guard the GET routes with\n".into());
        }
        Ok(())
    }
}

fn parse_token(text: &str) -> Result<ApiToken, String> {
    // Only an empty value is refused: clap quotes a refused value, and a token must never be
    // printed.
    if text.is_empty() {
        return Err("the API token must not be empty".into());
    }
    Ok(ApiToken::new(text.to_owned()))
}
