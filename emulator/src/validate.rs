//! Validation of app and version payloads, as the documents and Edgegap's v1 OpenAPI state
//! them (required fields, lengths, ranges, enums, `session_config`), into the documented
//! fields the API shows back (unknown fields dropped, `private_token` never shown) and the
//! typed view the lifecycle needs. Every error names the field and the bad value; handlers
//! turn them into `400 {"message": ...}`.

use serde_json::{json, Map, Value};

use super::fields::{
    env_json, env_list, optional_bool, optional_int, optional_str, required_int, required_str,
    EnvVar, Invalid,
};
pub use super::version_ports::Port;
use super::version_ports::{ports, ports_json};

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

    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::Always => "always",
            RestartPolicy::Never => "never",
            RestartPolicy::OnFailure => "on_failure",
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
    /// `session_config.sockets`, when the version has a session config.
    pub sockets: Option<u32>,
    pub endpoint_storage: Option<String>,
    /// `docker_repository`, `docker_image`, `docker_tag`.
    pub image: (String, String, String),
    /// Emulator extension: the command that stands in for the image (input only, never shown).
    pub command: Option<Vec<String>>,
}

pub const DEFAULT_GRACE_SECONDS: u64 = 5;
pub const DEFAULT_MAX_DURATION: i64 = 1440;
const SESSION_KINDS: [&str; 3] = ["Default", "Seat", "Match"];

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

/// Checks a whole app (create, or an update merged over the current one): `name`,
/// `is_active` and `image` are required.
pub fn app(fields: &Map<String, Value>) -> Result<(String, bool, String), Invalid> {
    let name = app_name(fields.get("name"))?;
    let is_active = optional_bool(fields, "is_active")?
        .ok_or_else(|| "is_active: required, true or false".to_owned())?;
    let image = optional_str(fields, "image")?
        .ok_or_else(|| "image: required, a string (base64 image, may be empty)".to_owned())?;
    Ok((name, is_active, image))
}

/// The documented version fields copied as given once valid; everything else sent is
/// dropped (`private_token` is kept out of what the API shows).
const PLAIN_FIELDS: [&str; 12] = [
    "req_video",
    "docker_repository",
    "private_username",
    "docker_image",
    "docker_tag",
    "verify_image",
    "force_cache",
    "time_to_deploy",
    "will_deploy_in_mainland_china",
    "dns_config",
    "endpoint_storage",
    "caching_percent",
];

/// Checks a version payload (create, or an update merged over the current one) and returns
/// its name, the fields the API shows, and its spec.
pub fn version(
    fields: &Map<String, Value>,
) -> Result<(String, Map<String, Value>, VersionSpec), Invalid> {
    let name = required_str(fields.get("name"), "name")?;
    let chars = name.chars().count();
    if !(1..=64).contains(&chars) {
        return Err(format!(
            "name: must be 1 to 64 characters long, got {chars} ({name:?})"
        ));
    }
    let mut image = Vec::new();
    for field in ["docker_repository", "docker_image", "docker_tag"] {
        image.push(required_str(fields.get(field), field)?);
    }
    let req_cpu = required_int(fields, "req_cpu", 100, i64::from(u32::MAX))?;
    let req_memory = required_int(fields, "req_memory", 100, i64::from(u32::MAX))?;
    if req_memory > 2 * req_cpu {
        return Err(format!(
            "req_memory: at most double req_cpu ({req_cpu} units), got {req_memory} MB"
        ));
    }
    optional_int(fields, "req_video", 0, i64::from(u32::MAX))?;
    optional_int(fields, "time_to_deploy", 15, 86_400)?;
    for flag in [
        "verify_image",
        "force_cache",
        "will_deploy_in_mainland_china",
    ] {
        optional_bool(fields, flag)?;
    }
    for text in [
        "private_username",
        "private_token",
        "dns_config",
        "endpoint_storage",
    ] {
        optional_str(fields, text)?;
    }
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
    let ports = ports(fields.get("ports"))?;
    let envs = env_list(fields.get("envs"), "envs")?;
    let session = session_config(fields.get("session_config"))?;
    let command = command(fields.get("command"))?;

    let mut shown = Map::new();
    shown.insert("name".into(), json!(name));
    shown.insert("is_active".into(), json!(is_active));
    shown.insert("req_cpu".into(), json!(req_cpu));
    shown.insert("req_memory".into(), json!(req_memory));
    for field in PLAIN_FIELDS {
        if let Some(value) = fields.get(field).filter(|v| !v.is_null()) {
            shown.insert(field.into(), value.clone());
        }
    }
    shown.entry("verify_image").or_insert(json!(false));
    shown
        .entry("will_deploy_in_mainland_china")
        .or_insert(json!(false));
    shown.insert("max_duration".into(), json!(max_duration));
    shown.insert("restart_policy".into(), json!(restart_policy.name()));
    shown.insert("termination_grace_period_seconds".into(), json!(grace));
    shown.insert("ports".into(), ports_json(&ports));
    shown.insert("envs".into(), env_json(&envs));
    if let Some(session) = &session {
        shown.insert("session_config".into(), Value::Object(session.clone()));
    }
    let [repository, image_name, tag]: [String; 3] = image
        .try_into()
        .map_err(|_| "docker_image: required".to_owned())?;
    let spec = VersionSpec {
        is_active,
        req_cpu,
        req_memory,
        ports,
        envs,
        termination_grace_period_seconds: grace,
        restart_policy,
        max_duration,
        sockets: session
            .as_ref()
            .and_then(|s| s.get("sockets"))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok()),
        endpoint_storage: optional_str(fields, "endpoint_storage")?,
        image: (repository, image_name, tag),
        command,
    };
    Ok((name, shown, spec))
}

/// Merges an update into the stored payload: top-level fields replace, except
/// `session_config`, whose given keys replace those stored (a PATCH of `sockets` keeps
/// `kind`).
pub fn merge_version(
    current: &Map<String, Value>,
    changes: Map<String, Value>,
) -> Map<String, Value> {
    let mut merged = current.clone();
    for (key, value) in changes {
        match (key.as_str(), merged.get_mut(&key), value) {
            ("session_config", Some(Value::Object(stored)), Value::Object(given)) => {
                stored.extend(given);
            }
            (_, _, value) => {
                merged.insert(key, value);
            }
        }
    }
    merged
}

/// `session_config`: `kind` (Default, Seat, Match) and `sockets` required; `autodeploy`,
/// `empty_ttl`, `session_max_duration` optional.
fn session_config(value: Option<&Value>) -> Result<Option<Map<String, Value>>, Invalid> {
    let config = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(config)) => config,
        Some(other) => return Err(format!("session_config: must be an object, got {other}")),
    };
    let at = |e: String| format!("session_config.{e}");
    let kind = required_str(config.get("kind"), "kind").map_err(at)?;
    if !SESSION_KINDS.contains(&kind.as_str()) {
        return Err(at(format!(
            "kind: must be Default, Seat or Match, got {kind:?}"
        )));
    }
    let sockets = required_int(config, "sockets", 0, i64::from(u32::MAX)).map_err(at)?;
    optional_bool(config, "autodeploy").map_err(at)?;
    optional_int(config, "empty_ttl", 0, i64::from(u32::MAX)).map_err(at)?;
    optional_int(config, "session_max_duration", 60, i64::from(u32::MAX)).map_err(at)?;
    let mut shown = Map::new();
    shown.insert("kind".into(), json!(kind));
    shown.insert("sockets".into(), json!(sockets));
    for key in ["autodeploy", "empty_ttl", "session_max_duration"] {
        if let Some(value) = config.get(key).filter(|v| !v.is_null()) {
            shown.insert(key.into(), value.clone());
        }
    }
    Ok(Some(shown))
}

fn command(value: Option<&Value>) -> Result<Option<Vec<String>>, Invalid> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| "command: must be a list of strings".to_owned()),
        Some(other) => Err(format!(
            "command: must be a non-empty list of strings, got {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn minimal() -> Value {
        json!({"name": "v1", "docker_repository": "r", "docker_image": "i", "docker_tag": "t",
               "req_cpu": 256, "req_memory": 512})
    }

    #[test]
    fn a_minimal_version_gets_the_documented_defaults() {
        let (name, shown, spec) = version(&map(minimal())).unwrap();
        assert_eq!(name, "v1");
        assert_eq!(spec.restart_policy, RestartPolicy::Always);
        assert_eq!(spec.max_duration, 1440);
        assert_eq!(spec.termination_grace_period_seconds, 5);
        assert_eq!(shown["is_active"], true);
        assert_eq!(shown["verify_image"], false);
    }

    #[test]
    fn unknown_fields_and_the_registry_token_are_not_shown() {
        let mut body = minimal();
        body["private_token"] = json!("registry-secret");
        body["surprise"] = json!(1);
        body["command"] = json!(["/bin/true"]);
        let (_, shown, spec) = version(&map(body)).unwrap();
        assert!(!shown.contains_key("private_token"));
        assert!(!shown.contains_key("surprise"));
        assert!(!shown.contains_key("command"));
        assert_eq!(spec.command, Some(vec!["/bin/true".to_owned()]));
    }

    #[test]
    fn ports_follow_the_schema() {
        let mut body = minimal();
        body["ports"] = json!([{"port": 0, "protocol": "SCTP"}, {"port": 7777, "protocol": "udp"}]);
        let (_, shown, spec) = version(&map(body.clone())).unwrap();
        assert_eq!(spec.ports[0].name, "0");
        assert!(spec.ports[0].to_check, "to_check defaults to true");
        assert_eq!(shown["ports"][1]["protocol"], "udp");
        body["ports"] = json!([{"port": 60000, "protocol": "UDP"}]);
        let err = version(&map(body)).unwrap_err();
        assert!(
            err.starts_with("ports[0].port") && err.contains("60000"),
            "{err}"
        );
    }

    #[test]
    fn a_session_config_patch_merges() {
        let mut body = minimal();
        body["session_config"] = json!({"kind": "Seat", "sockets": 10});
        let (_, shown, _) = version(&map(body)).unwrap();
        let merged = merge_version(&shown, map(json!({"session_config": {"sockets": 12}})));
        let (_, shown, spec) = version(&merged).unwrap();
        assert_eq!(
            shown["session_config"],
            json!({"kind": "Seat", "sockets": 12})
        );
        assert_eq!(spec.sockets, Some(12));
    }

    #[test]
    fn restart_policy_applies_to_the_exit_code() {
        assert!(RestartPolicy::Always.restarts(0));
        assert!(!RestartPolicy::OnFailure.restarts(0));
        assert!(RestartPolicy::OnFailure.restarts(3));
        assert!(!RestartPolicy::Never.restarts(3));
    }
}
