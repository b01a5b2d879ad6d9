//! A version's `ports`: each `{port, protocol, to_check, tls_upgrade, name}` checked as
//! documented (port 0..=59999, any protocol string, `to_check` true and `tls_upgrade` false by
//! default, `tls_upgrade` only for HTTP and WS, names unique), and shown back with the
//! defaults filled in.

use serde_json::{json, Value};

use super::fields::{optional_bool, required_int, required_str, Invalid};

/// The documented ports are 0..=59999.
pub const MAX_PORT: i64 = 59_999;

/// A version's port (`ports[]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Port {
    pub name: String,
    pub port: u16,
    /// As given (the documents show `UDP` and `http`); compared case-insensitively.
    pub protocol: String,
    pub to_check: bool,
    pub tls_upgrade: bool,
}

impl Port {
    pub fn is_udp(&self) -> bool {
        self.protocol.eq_ignore_ascii_case("UDP")
    }
    pub fn is_tcp_and_udp(&self) -> bool {
        self.protocol.eq_ignore_ascii_case("TCP/UDP")
    }
}

pub fn ports(value: Option<&Value>) -> Result<Vec<Port>, Invalid> {
    let ports: Vec<Port> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| port(i, item))
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("ports: must be a list, got {other}")),
    };
    for (i, a) in ports.iter().enumerate() {
        if ports[..i].iter().any(|b: &Port| b.name == a.name) {
            return Err(format!("ports: the name {:?} is used twice", a.name));
        }
    }
    Ok(ports)
}

fn port(index: usize, item: &Value) -> Result<Port, Invalid> {
    let Value::Object(fields) = item else {
        return Err(format!("ports[{index}]: must be an object, got {item}"));
    };
    let at = |e: String| format!("ports[{index}].{e}");
    let number = required_int(fields, "port", 0, MAX_PORT).map_err(at)?;
    let number = u16::try_from(number).map_err(|_| at("port: out of range".to_owned()))?;
    let protocol = required_str(fields.get("protocol"), "protocol").map_err(at)?;
    let name = match fields.get("name") {
        None | Some(Value::Null) => number.to_string(),
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        Some(other) => return Err(at(format!("name: must be a non-empty string, got {other}"))),
    };
    let to_check = optional_bool(fields, "to_check")
        .map_err(at)?
        .unwrap_or(true);
    let tls_upgrade = optional_bool(fields, "tls_upgrade")
        .map_err(at)?
        .unwrap_or(false);
    let upgradable = ["HTTP", "WS"]
        .iter()
        .any(|p| p.eq_ignore_ascii_case(&protocol));
    if tls_upgrade && !upgradable {
        return Err(at(format!(
            "tls_upgrade: only available with ports WS and HTTP, not {protocol:?}"
        )));
    }
    Ok(Port {
        name,
        port: number,
        protocol,
        to_check,
        tls_upgrade,
    })
}

pub fn ports_json(ports: &[Port]) -> Value {
    Value::Array(
        ports
            .iter()
            .map(|p| {
                json!({"port": p.port, "protocol": p.protocol, "to_check": p.to_check,
                       "tls_upgrade": p.tls_upgrade, "name": p.name})
            })
            .collect(),
    )
}
