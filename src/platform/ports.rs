//! The deployment's named ports: `ARBITRIUM_PORTS_MAPPING` (JSON), cross-checked with the
//! flattened `ARBITRIUM_PORT_<NAME>_{INTERNAL,EXTERNAL,PROTOCOL}` variables.
//!
//! The JSON mapping is authoritative when it parses: it carries the real port names and the
//! link. Each per-port variable that disagrees with it is reported (the mapping's value is
//! kept). When the mapping is absent or malformed, the ports are rebuilt from the per-port
//! variables, so the game still learns its ports. The mapping's shape and the `<NAME>` rule
//! (the port name upper-cased with `-` turned into `_`, seen in user code; Edgegap does not
//! document it) are `edgegap_contract`'s, which the emulator writes with.

use std::collections::BTreeMap;

use edgegap_contract::ports::read_ports_mapping;
use edgegap_contract::vars::{parse_port_var, port_env_name, PortField, PER_PORT_PREFIX};
use serde::{Deserialize, Serialize};

use super::env::{EnvProblem, PORTS_MAPPING};

/// One named port of the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub name: String,
    /// The port the game listens on inside the container.
    pub internal: u16,
    /// The port players connect to on the public IP.
    pub external: u16,
    /// `UDP`, `TCP`, `TCP/UDP`, `HTTP`, `HTTPS`, `WS`, `WSS` (case as the platform gave it).
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_upgrade: Option<bool>,
    /// e.g. `c0653765de3b.pr.edgegap.net:31669`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// The per-port variables of one `<NAME>`: (variable, value) of each field present.
#[derive(Default)]
struct Flattened {
    internal: Option<(String, String)>,
    external: Option<(String, String)>,
    protocol: Option<(String, String)>,
}

/// Parses the ports from the `ARBITRIUM_*` variables, pushing every problem found.
pub(super) fn parse(
    vars: &BTreeMap<String, String>,
    problems: &mut Vec<EnvProblem>,
) -> BTreeMap<String, Port> {
    let flattened = collect_flattened(vars);
    match vars
        .get(PORTS_MAPPING)
        .and_then(|raw| parse_mapping(raw, problems))
    {
        Some(ports) => {
            cross_check(&ports, &flattened, problems);
            ports
        }
        None => from_flattened(flattened, problems),
    }
}

fn parse_mapping(raw: &str, problems: &mut Vec<EnvProblem>) -> Option<BTreeMap<String, Port>> {
    let expected = "a JSON object {\"ports\": {\"<name>\": {\"name\", \"internal\", \"external\", \"protocol\", ...}}}";
    if raw.trim().is_empty() {
        problems.push(EnvProblem::new(
            PORTS_MAPPING,
            raw,
            format!("{expected}, not an empty value"),
        ));
        return None;
    }
    let entries = match read_ports_mapping(raw) {
        Ok(entries) => entries,
        Err(error) => {
            problems.push(EnvProblem::new(
                PORTS_MAPPING,
                raw,
                format!("{expected} ({error})"),
            ));
            return None;
        }
    };
    let mut ports = BTreeMap::new();
    for (key, entry) in entries {
        let numbers = "whole-number \"internal\" and \"external\" ports (0..=65535)";
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                problems.push(EnvProblem::new(
                    PORTS_MAPPING,
                    raw,
                    format!("port {key:?} with {numbers} ({error})"),
                ));
                continue;
            }
        };
        let (Some(internal), Some(external)) = (entry.internal, entry.external) else {
            let missing = if entry.internal.is_none() {
                "internal"
            } else {
                "external"
            };
            problems.push(EnvProblem::new(
                PORTS_MAPPING,
                raw,
                format!("port {key:?} with {numbers} (missing field `{missing}`)"),
            ));
            continue;
        };
        let name = entry.name.unwrap_or_else(|| key.clone());
        let port = Port {
            name: name.clone(),
            internal,
            external,
            protocol: entry.protocol.unwrap_or_default(),
            tls_upgrade: entry.tls_upgrade,
            link: entry.link,
        };
        ports.insert(name, port);
    }
    Some(ports)
}

fn collect_flattened(vars: &BTreeMap<String, String>) -> BTreeMap<String, Flattened> {
    let mut groups: BTreeMap<String, Flattened> = BTreeMap::new();
    for (name, value) in vars {
        let Some((port, field)) = parse_port_var(name) else {
            continue;
        };
        let group = groups.entry(port.to_owned()).or_default();
        let slot = match field {
            PortField::Internal => &mut group.internal,
            PortField::External => &mut group.external,
            PortField::Protocol => &mut group.protocol,
        };
        *slot = Some((name.clone(), value.clone()));
    }
    groups
}

fn port_number(pair: &(String, String), problems: &mut Vec<EnvProblem>) -> Option<u16> {
    let (name, value) = pair;
    match value.trim().parse::<u16>() {
        Ok(number) => Some(number),
        Err(_) => {
            problems.push(EnvProblem::new(name, value, "a port number (0..=65535)"));
            None
        }
    }
}

fn protocol(pair: &(String, String), problems: &mut Vec<EnvProblem>) -> Option<String> {
    let (name, value) = pair;
    if value.trim().is_empty() {
        problems.push(EnvProblem::new(
            name,
            value,
            "a protocol such as UDP or TCP",
        ));
        return None;
    }
    Some(value.trim().to_owned())
}

fn cross_check(
    ports: &BTreeMap<String, Port>,
    flattened: &BTreeMap<String, Flattened>,
    problems: &mut Vec<EnvProblem>,
) {
    for port in ports.values() {
        let Some(group) = flattened.get(&port_env_name(&port.name)) else {
            continue;
        };
        let context =
            |value: String| format!("{value}, as {PORTS_MAPPING} gives for port {:?}", port.name);
        if let Some(pair) = &group.internal {
            if port_number(pair, problems).is_some_and(|n| n != port.internal) {
                problems.push(EnvProblem::new(
                    &pair.0,
                    &pair.1,
                    context(port.internal.to_string()),
                ));
            }
        }
        if let Some(pair) = &group.external {
            if port_number(pair, problems).is_some_and(|n| n != port.external) {
                problems.push(EnvProblem::new(
                    &pair.0,
                    &pair.1,
                    context(port.external.to_string()),
                ));
            }
        }
        if let Some(pair) = &group.protocol {
            if protocol(pair, problems).is_some_and(|p| !p.eq_ignore_ascii_case(&port.protocol)) {
                problems.push(EnvProblem::new(
                    &pair.0,
                    &pair.1,
                    context(port.protocol.clone()),
                ));
            }
        }
    }
}

fn from_flattened(
    flattened: BTreeMap<String, Flattened>,
    problems: &mut Vec<EnvProblem>,
) -> BTreeMap<String, Port> {
    let mut ports = BTreeMap::new();
    for (env_port, group) in flattened {
        let internal = group
            .internal
            .as_ref()
            .and_then(|p| port_number(p, problems));
        let external = group
            .external
            .as_ref()
            .and_then(|p| port_number(p, problems));
        let protocol = group.protocol.as_ref().and_then(|p| protocol(p, problems));
        let (Some(internal), Some(external)) = (internal, external) else {
            for (field, present) in [
                (PortField::Internal, &group.internal),
                (PortField::External, &group.external),
            ] {
                if present.is_none() {
                    problems.push(EnvProblem {
                        variable: format!("{PER_PORT_PREFIX}{env_port}_{}", field.suffix()),
                        value: "<unset>".to_owned(),
                        expected: "a port number, since other variables of this port are set"
                            .to_owned(),
                    });
                }
            }
            continue;
        };
        let name = env_port.to_ascii_lowercase();
        ports.insert(
            name.clone(),
            Port {
                name,
                internal,
                external,
                protocol: protocol.unwrap_or_default(),
                tls_upgrade: None,
                link: None,
            },
        );
    }
    ports
}
