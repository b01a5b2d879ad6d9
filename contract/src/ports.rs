//! The `PORT` object (one named port, as `ARBITRIUM_PORTS_MAPPING`, the status response and
//! the context give it) and the `ARBITRIUM_PORTS_MAPPING` document
//! `{"ports": {"<name>": PORT, ...}}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One named port as the platform describes it, e.g. `{"name":"gameport","internal":7777,
/// "external":31669,"protocol":"UDP","tls_upgrade":false,"link":"c0653765de3b.pr.edgegap.net:31669",
/// "proxy":65002}`.
///
/// Every field is optional for a reader (unknown ones are ignored): which ones it needs is the
/// reader's decision. A writer leaves out what it does not know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The port the game listens on inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal: Option<u16>,
    /// The port players connect to on the public IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<u16>,
    /// `UDP`, `TCP`, `TCP/UDP`, `HTTP`, `HTTPS`, `WS`, `WSS`; the case varies between sources,
    /// so compare case-insensitively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_upgrade: Option<bool>,
    /// e.g. `c0653765de3b.pr.edgegap.net:31669`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The platform's proxy port for this port, e.g. `65002` (the status response has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<u16>,
}

/// `ARBITRIUM_PORTS_MAPPING`: every named port, keyed by its name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PortsMapping {
    pub ports: BTreeMap<String, PlatformPort>,
}

/// One entry of a mapping as [`read_ports_mapping`] gives it: the key, and the port or why
/// that one entry does not parse.
pub type MappingEntry = (String, Result<PlatformPort, serde_json::Error>);

impl PortsMapping {
    /// The mapping keyed by each port's name.
    pub fn new(ports: impl IntoIterator<Item = PlatformPort>) -> PortsMapping {
        PortsMapping {
            ports: ports
                .into_iter()
                .map(|port| (port.name.clone().unwrap_or_default(), port))
                .collect(),
        }
    }

    /// The variable's value.
    pub fn to_json(&self) -> String {
        // A map with string keys of plain structs always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Reads `ARBITRIUM_PORTS_MAPPING` entry by entry, so one malformed port does not hide the
/// others: the outer `{"ports": {...}}` must parse, then each entry is parsed alone.
pub fn read_ports_mapping(raw: &str) -> Result<Vec<MappingEntry>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Raw {
        ports: BTreeMap<String, serde_json::Value>,
    }
    let raw: Raw = serde_json::from_str(raw)?;
    Ok(raw
        .ports
        .into_iter()
        .map(|(key, value)| (key, serde_json::from_value(value)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gameport() -> PlatformPort {
        PlatformPort {
            name: Some("gameport".into()),
            internal: Some(7777),
            external: Some(31669),
            protocol: Some("UDP".into()),
            tls_upgrade: Some(false),
            link: Some("c0653765de3b.pr.edgegap.net:31669".into()),
            proxy: Some(65002),
        }
    }

    #[test]
    fn the_mapping_has_the_documented_shape() {
        let json: serde_json::Value =
            serde_json::from_str(&PortsMapping::new([gameport()]).to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"ports": {"gameport": {"name": "gameport", "internal": 7777,
                "external": 31669, "protocol": "UDP", "tls_upgrade": false,
                "link": "c0653765de3b.pr.edgegap.net:31669", "proxy": 65002}}})
        );
    }

    #[test]
    fn the_mapping_reads_back_entry_by_entry() {
        let mapping = PortsMapping::new([gameport()]);
        let entries = read_ports_mapping(&mapping.to_json()).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0, "gameport");
        assert_eq!(entries[0].1.as_ref().unwrap(), &gameport());

        let raw = r#"{"ports": {"a": {"internal": 1, "external": 2, "unknown": 65002},
            "b": {"internal": "x"}}}"#;
        let entries = read_ports_mapping(raw).unwrap();
        assert_eq!(entries[0].1.as_ref().unwrap().internal, Some(1));
        assert!(entries[1].1.is_err());
        assert!(read_ports_mapping(r#"{"ports": []}"#).is_err());
    }
}
