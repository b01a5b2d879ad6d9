//! `--agones` and `--agones-addr`: the Agones SDK REST API beside the agent's own.

use std::net::SocketAddr;

use clap::Args;

/// The Agones SDK REST API (see the README's "Agones SDK REST API").
#[derive(Debug, Clone, Args)]
pub struct AgonesOptions {
    /// Also serve the Agones SDK REST API (ready, health, shutdown, allocate, reserve,
    /// gameserver, labels, player tracking, Counters and Lists), mapped onto the agent's own
    /// state, so a game written for Agones runs unchanged. The game receives its port as
    /// AGONES_SDK_HTTP_PORT.
    #[arg(long, env = "EDGEGAP_AGENT_AGONES")]
    pub agones: bool,

    /// Address of the Agones SDK REST API: loopback only (Agones's SDK has no token). When not
    /// set, a taken 9358 (or one the game's port mapping uses) makes the agent pick a free
    /// loopback port instead.
    #[arg(long, env = "EDGEGAP_AGENT_AGONES_ADDR", default_value = crate::agones::DEFAULT_AGONES_ADDR, value_name = "IP:PORT")]
    pub agones_addr: SocketAddr,

    /// Whether --agones-addr (or its variable) was given, rather than defaulted.
    #[arg(skip)]
    pub agones_addr_given: bool,
}

impl AgonesOptions {
    /// The address given, if one was: it is bound or the agent stops (exit 64).
    pub fn given_addr(&self) -> Option<SocketAddr> {
        self.agones_addr_given.then_some(self.agones_addr)
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if !self.agones_addr.ip().to_canonical().is_loopback() {
            return Err(format!(
                "error: --agones-addr {} (EDGEGAP_AGENT_AGONES_ADDR) is not a loopback address: the Agones SDK API has no token (Agones's SDK clients send none), so anyone who could reach it could end the match; it only listens on loopback\n",
                self.agones_addr
            ));
        }
        if self.agones_addr_given && !self.agones {
            return Err("error: --agones-addr (EDGEGAP_AGENT_AGONES_ADDR) is set but --agones (EDGEGAP_AGENT_AGONES) is not: set both to serve the Agones SDK API\n".into());
        }
        Ok(())
    }
}
