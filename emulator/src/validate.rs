//! Validation of app, version and deployment payloads, as documented (name lengths, required
//! fields, ranges, enums), into the typed view the lifecycle needs. Every error names the
//! field and the bad value; handlers turn them into `400 {"message": ...}`.

use serde_json::{Map, Value};

/// A version's port (`ports[]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Port {
    pub name: String,
    pub port: u16,
    pub protocol: String,
    pub to_check: bool,
    pub tls_upgrade: bool,
}

/// An environment variable (`envs[]` of a version, `environment_variables[]` of a deployment).
#[derive(Clone, Debug, PartialEq)]
pub struct EnvVar {
    pub key: String,
    pub value: String,
    pub is_hidden: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    Never,
    OnFailure,
}

impl RestartPolicy {
    pub fn parse(text: &str) -> Option<RestartPolicy> {
        match text {
            "always" => Some(RestartPolicy::Always),
            "never" => Some(RestartPolicy::Never),
            "on_failure" => Some(RestartPolicy::OnFailure),
            _ => None,
        }
    }

    /// Whether the process is started again after exiting with `code`.
    pub fn restarts(self, code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => code != 0,
        }
    }
}

/// What the lifecycle needs from a version.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionSpec {
    pub is_active: bool,
    pub req_cpu: i64,
    pub req_memory: i64,
    pub ports: Vec<Port>,
    pub envs: Vec<EnvVar>,
    pub termination_grace_period_seconds: u64,
    pub restart_policy: RestartPolicy,
    /// Minutes; -1 or 0: no limit.
    pub max_duration: i64,
    /// Emulator extension: the command that stands in for the image.
    pub command: Option<Vec<String>>,
}

pub const PROTOCOLS: [&str; 7] = ["UDP", "TCP", "TCP/UDP", "HTTP", "HTTPS", "WS", "WSS"];
pub const ENV_VALUE_MAX_BYTES: usize = 4096;
pub const DEFAULT_GRACE_SECONDS: u64 = 5;
pub const DEFAULT_MAX_DURATION: i64 = 1440;

pub type Invalid = String;

/// Checks an app name: 3..64 characters.
pub fn app_name(name: Option<&Value>) -> Result<String, Invalid> {
    let name = required_str(name, "name")?;
    let chars = name.chars().count();
    if !(3..=64).contains(&chars) {
        return Err(format!(
            "name: must be 3 to 64 characters long, got {chars} ({name:?})"
        ));
    }
    Ok(name)
}

/// Checks an app payload (create or, after merging, update).
pub fn app(fields: &Map<String, Value>) -> Result<String, Invalid> {
    let name = app_name(fields.get("name"))?;
    optional_bool(fields, "is_active")?;
    optional_bool(fields, "is_telemetry_agent_active")?;
    if let Some(image) = fields.get("image") {
        if !image.is_string() && !image.is_null() {
            return Err(format!("image: must be a string, got {image}"));
        }
    }
    Ok(name)
}

/// Checks a version payload (create or, after merging, update) and returns its name and spec.
pub fn version(fields: &Map<String, Value>) -> Result<(String, VersionSpec), Invalid> {
    let name = required_str(fields.get("name"), "name")?;
    let chars = name.chars().count();
    if !(1..=64).contains(&chars) {
        return Err(format!(
            "name: must be 1 to 64 characters long, got {chars} ({name:?})"
        ));
    }
    for field in ["docker_repository", "docker_image", "docker_tag"] {
        required_str(fields.get(field), field)?;
    }
    let req_cpu = required_int(fields, "req_cpu", 1, i64::from(u32::MAX))?;
    let req_memory = required_int(fields, "req_memory", 1, i64::from(u32::MAX))?;
    let grace = optional_int(fields, "termination_grace_period_seconds", 5, 3600)?
        .map_or(DEFAULT_GRACE_SECONDS, |g| g.unsigned_abs());
    let max_duration =
        optional_int(fields, "max_duration", -1, 1440)?.unwrap_or(DEFAULT_MAX_DURATION);
    let restart_policy = match fields.get("restart_policy") {
        None | Some(Value::Null) => RestartPolicy::Always,
        Some(Value::String(text)) => RestartPolicy::parse(text).ok_or_else(|| {
            format!("restart_policy: must be always, never or on_failure, got {text:?}")
        })?,
        Some(other) => return Err(format!("restart_policy: must be a string, got {other}")),
    };
    let is_active = optional_bool(fields, "is_active")?.unwrap_or(true);
    let ports = match fields.get("ports") {
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
    let envs = env_list(fields.get("envs"), "envs")?;
    let command = match fields.get("command") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if !items.is_empty() => Some(
            items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| "command: must be a list of strings".to_owned())?,
        ),
        Some(other) => {
            return Err(format!(
                "command: must be a non-empty list of strings, got {other}"
            ))
        }
    };
    let spec = VersionSpec {
        is_active,
        req_cpu,
        req_memory,
        ports,
        envs,
        termination_grace_period_seconds: grace,
        restart_policy,
        max_duration,
        command,
    };
    Ok((name, spec))
}

fn port(index: usize, item: &Value) -> Result<Port, Invalid> {
    let Value::Object(fields) = item else {
        return Err(format!("ports[{index}]: must be an object, got {item}"));
    };
    let number =
        required_int(fields, "port", 1, 65535).map_err(|e| format!("ports[{index}].{e}"))?;
    let number = u16::try_from(number).map_err(|_| format!("ports[{index}].port: out of range"))?;
    let protocol = required_str(fields.get("protocol"), "protocol")
        .map_err(|e| format!("ports[{index}].{e}"))?;
    let protocol = PROTOCOLS
        .iter()
        .find(|p| p.eq_ignore_ascii_case(&protocol))
        .ok_or_else(|| {
            format!(
                "ports[{index}].protocol: must be one of {}, got {protocol:?}",
                PROTOCOLS.join(", ")
            )
        })?;
    let name = match fields.get("name") {
        None | Some(Value::Null) => number.to_string(),
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        Some(other) => {
            return Err(format!(
                "ports[{index}].name: must be a non-empty string, got {other}"
            ))
        }
    };
    let flag = |field: &str| {
        optional_bool(fields, field)
            .map(|b| b.unwrap_or(false))
            .map_err(|e| format!("ports[{index}].{e}"))
    };
    Ok(Port {
        name,
        port: number,
        protocol: (*protocol).to_owned(),
        to_check: flag("to_check")?,
        tls_upgrade: flag("tls_upgrade")?,
    })
}

/// Checks a list of `{key, value, is_hidden}`; `field` names it in errors.
pub fn env_list(value: Option<&Value>, field: &str) -> Result<Vec<EnvVar>, Invalid> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("{field}: must be a list, got {other}")),
    };
    let mut vars = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(entry) = item else {
            return Err(format!("{field}[{i}]: must be an object, got {item}"));
        };
        let key = required_str(entry.get("key"), "key").map_err(|e| format!("{field}[{i}].{e}"))?;
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(format!(
                "{field}[{i}].key: not a usable variable name: {key:?}"
            ));
        }
        let value = match entry.get("value") {
            Some(Value::String(v)) => v.clone(),
            other => {
                return Err(format!(
                    "{field}[{i}].value: required, a string (got {})",
                    other.map_or("nothing".to_owned(), Value::to_string)
                ))
            }
        };
        if value.len() > ENV_VALUE_MAX_BYTES || value.contains('\0') {
            return Err(format!(
                "{field}[{i}].value: at most {ENV_VALUE_MAX_BYTES} bytes without NUL, got {} bytes for {key}",
                value.len()
            ));
        }
        let is_hidden = optional_bool(entry, "is_hidden")
            .map_err(|e| format!("{field}[{i}].{e}"))?
            .unwrap_or(false);
        vars.push(EnvVar {
            key,
            value,
            is_hidden,
        });
    }
    Ok(vars)
}

/// The value the API shows instead of a hidden variable's value.
pub const HIDDEN_VALUE: &str = "This value is set and encrypted";

/// Replaces the value of every `is_hidden` entry of the list at `field` in place.
pub fn mask_hidden(fields: &mut Map<String, Value>, field: &str) {
    if let Some(Value::Array(items)) = fields.get_mut(field) {
        for item in items {
            if let Value::Object(entry) = item {
                if entry.get("is_hidden") == Some(&Value::Bool(true)) {
                    entry.insert("value".into(), Value::String(HIDDEN_VALUE.into()));
                }
            }
        }
    }
}

pub fn required_str(value: Option<&Value>, field: &str) -> Result<String, Invalid> {
    match value {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.clone()),
        Some(Value::String(_)) => Err(format!("{field}: required, must not be empty")),
        None | Some(Value::Null) => Err(format!("{field}: required")),
        Some(other) => Err(format!("{field}: must be a string, got {other}")),
    }
}

fn required_int(
    fields: &Map<String, Value>,
    field: &str,
    min: i64,
    max: i64,
) -> Result<i64, Invalid> {
    optional_int(fields, field, min, max)?.ok_or_else(|| format!("{field}: required"))
}

fn optional_int(
    fields: &Map<String, Value>,
    field: &str,
    min: i64,
    max: i64,
) -> Result<Option<i64>, Invalid> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            Some(n) => Err(format!("{field}: must be between {min} and {max}, got {n}")),
            None => Err(format!("{field}: must be an integer, got {value}")),
        },
    }
}

fn optional_bool(fields: &Map<String, Value>, field: &str) -> Result<Option<bool>, Invalid> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!("{field}: must be true or false, got {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_minimal_version_gets_the_documented_defaults() {
        let (name, spec) = version(&map(json!({"name": "v1", "docker_repository": "r",
            "docker_image": "i", "docker_tag": "t", "req_cpu": 256, "req_memory": 512})))
        .unwrap();
        assert_eq!(name, "v1");
        assert_eq!(spec.restart_policy, RestartPolicy::Always);
        assert_eq!(spec.max_duration, 1440);
        assert_eq!(spec.termination_grace_period_seconds, 5);
    }

    #[test]
    fn errors_name_the_field_and_value() {
        let err = version(&map(json!({"name": "v1", "docker_repository": "r",
            "docker_image": "i", "docker_tag": "t", "req_cpu": 256, "req_memory": 512,
            "ports": [{"port": 7777, "protocol": "SCTP"}]})))
        .unwrap_err();
        assert!(
            err.contains("ports[0].protocol") && err.contains("SCTP"),
            "{err}"
        );
    }

    #[test]
    fn restart_policy_applies_to_the_exit_code() {
        assert!(RestartPolicy::Always.restarts(0));
        assert!(!RestartPolicy::OnFailure.restarts(0));
        assert!(RestartPolicy::OnFailure.restarts(3));
        assert!(!RestartPolicy::Never.restarts(3));
    }
}
