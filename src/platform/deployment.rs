//! "The deployment" as the local API serves it: the environment merged with the context,
//! with no secret in it (it holds none, so serializing it cannot leak one).
//!
//! Merge rule: the environment is what the platform injected into this very container, so it
//! wins wherever it gives a value; the context only fills what the environment lacks (the
//! `fqdn`, which only the context has; a port the mapping does not list; the public IP,
//! location or tags when their variables were absent or malformed). Join addresses are
//! derived after the merge: `public_ip:external`.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::context::Context;
use super::env::{Location, PlatformEnv};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Deployment {
    pub request_id: Option<String>,
    pub public_ip: Option<IpAddr>,
    pub fqdn: Option<String>,
    pub host_id: Option<String>,
    pub ports: Vec<DeploymentPort>,
    pub location: Option<Location>,
    pub tags: Vec<String>,
    pub resources: Resources,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentPort {
    pub name: String,
    pub internal: u16,
    pub external: u16,
    pub protocol: String,
    /// `public_ip:external`, what a player connects to; `None` while the public IP is unknown.
    pub join_address: Option<String>,
    /// The platform's own link (`<request_id>.pr.edgegap.net:<external>`), when given.
    pub link: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Resources {
    pub vcpu_units: Option<u32>,
    pub memory_mb: Option<u64>,
}

impl Deployment {
    /// The deployment as the environment alone describes it.
    pub fn from_env(env: &PlatformEnv) -> Self {
        let mut deployment = Deployment {
            request_id: env.request_id.clone(),
            public_ip: env.public_ip,
            fqdn: None,
            host_id: env.host_id.clone(),
            ports: env
                .ports
                .values()
                .map(|port| DeploymentPort {
                    name: port.name.clone(),
                    internal: port.internal,
                    external: port.external,
                    protocol: port.protocol.clone(),
                    join_address: None,
                    link: port.link.clone(),
                })
                .collect(),
            location: env.location.clone(),
            tags: env.tags.clone(),
            resources: Resources {
                vcpu_units: env.vcpu_units,
                memory_mb: env.memory_mb,
            },
        };
        deployment.derive_join_addresses();
        deployment
    }

    /// Fills what the environment lacked from the context (see the module doc).
    pub fn merge_context(&mut self, context: &Context) {
        fill(&mut self.request_id, &context.request_id);
        fill(&mut self.public_ip, &context.public_ip);
        fill(&mut self.fqdn, &context.fqdn);
        fill(&mut self.location, &context.location);
        if self.tags.is_empty() {
            self.tags = context.tags.clone().unwrap_or_default();
        }
        for (key, port) in &context.ports {
            let name = port.name.clone().unwrap_or_else(|| key.clone());
            if let Some(known) = self.ports.iter_mut().find(|p| p.name == name) {
                fill(&mut known.link, &port.link);
                continue;
            }
            // A port without both numbers is of no use to a player.
            let (Some(internal), Some(external)) = (port.internal, port.external) else {
                continue;
            };
            self.ports.push(DeploymentPort {
                name,
                internal,
                external,
                protocol: port.protocol.clone().unwrap_or_default(),
                join_address: None,
                link: port.link.clone(),
            });
        }
        self.ports.sort_by(|a, b| a.name.cmp(&b.name));
        self.derive_join_addresses();
    }

    fn derive_join_addresses(&mut self) {
        for port in &mut self.ports {
            port.join_address = self
                .public_ip
                .map(|ip| SocketAddr::new(ip, port.external).to_string());
        }
    }
}

fn fill<T: Clone>(slot: &mut Option<T>, from: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(from);
    }
}
