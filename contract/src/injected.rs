//! The `ARBITRIUM_*` environment a deployment's container is given, built from typed values:
//! what the emulator injects, and what the agent's parser is tested against.

use std::net::IpAddr;

use crate::context::Location;
use crate::ports::PortsMapping;
use crate::vars::{self, PortField};

/// Everything the platform injects (the beacon and host-clock variables of private fleets
/// aside).
#[derive(Debug, Clone, PartialEq)]
pub struct InjectedEnv {
    pub request_id: String,
    pub public_ip: IpAddr,
    pub host_id: String,
    pub ports: PortsMapping,
    pub location: Location,
    pub tags: Vec<String>,
    /// 1024 = 1 vCPU.
    pub vcpu_units: u32,
    pub memory_mb: u64,
    /// `<base>` + [`crate::self_stop_path`].
    pub delete_url: String,
    pub delete_token: String,
    /// `<base>` + [`crate::context_path`].
    pub context_url: String,
    pub context_token: String,
}

impl InjectedEnv {
    /// The variables, in the order the contract lists them: identity, the ports mapping then
    /// each port's flattened variables (for the values the mapping has), location, tags,
    /// resources, then the self-stop and context URLs with their tokens.
    pub fn variables(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = Vec::new();
        let mut add = |name: &str, value: String| env.push((name.to_owned(), value));
        add(vars::REQUEST_ID, self.request_id.clone());
        add(vars::PUBLIC_IP, self.public_ip.to_string());
        add(vars::HOST_ID, self.host_id.clone());
        add(vars::PORTS_MAPPING, self.ports.to_json());
        for (name, port) in &self.ports.ports {
            let name = port.name.as_deref().unwrap_or(name);
            let values = [
                (PortField::Internal, port.internal.map(|p| p.to_string())),
                (PortField::External, port.external.map(|p| p.to_string())),
                (PortField::Protocol, port.protocol.clone()),
            ];
            for (field, value) in values {
                if let Some(value) = value {
                    add(&vars::port_var(name, field), value);
                }
            }
        }
        add(vars::DEPLOYMENT_LOCATION, self.location.to_json());
        add(vars::DEPLOYMENT_TAGS, vars::encode_tags(&self.tags));
        add(vars::VCPU_UNITS, self.vcpu_units.to_string());
        add(vars::MEMORY_MB, self.memory_mb.to_string());
        add(vars::DELETE_URL, self.delete_url.clone());
        add(vars::DELETE_TOKEN, self.delete_token.clone());
        add(vars::CONTEXT_URL, self.context_url.clone());
        add(vars::CONTEXT_TOKEN, self.context_token.clone());
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PlatformPort;

    #[test]
    fn every_port_gets_its_flattened_variables() {
        let port = PlatformPort {
            name: Some("game-port".into()),
            internal: Some(7777),
            external: Some(31669),
            protocol: Some("UDP".into()),
            tls_upgrade: Some(false),
            link: None,
            proxy: None,
        };
        let env = InjectedEnv {
            request_id: "c0653765de3b".into(),
            public_ip: "127.0.0.1".parse().unwrap(),
            host_id: "local".into(),
            ports: PortsMapping::new([port]),
            location: Location::default(),
            tags: vec!["eu".into(), "ranked".into()],
            vcpu_units: 1024,
            memory_mb: 2048,
            delete_url: "http://127.0.0.1:1/v1/self/stop/c0653765de3b/1".into(),
            delete_token: "d".into(),
            context_url: "http://127.0.0.1:1/v1/context/c0653765de3b/1".into(),
            context_token: "c".into(),
        };
        let vars = env.variables();
        let get = |name: &str| {
            vars.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("ARBITRIUM_PORT_GAME_PORT_INTERNAL"), Some("7777"));
        assert_eq!(get("ARBITRIUM_PORT_GAME_PORT_EXTERNAL"), Some("31669"));
        assert_eq!(get("ARBITRIUM_PORT_GAME_PORT_PROTOCOL"), Some("UDP"));
        assert_eq!(get(vars::DEPLOYMENT_TAGS), Some("eu,ranked"));
        assert_eq!(get(vars::PUBLIC_IP), Some("127.0.0.1"));
        assert_eq!(vars.len(), 15);
    }
}
