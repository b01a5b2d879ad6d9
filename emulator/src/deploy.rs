//! Creating deployments, three documented ways: `POST /v2/deployments` (202 `{request_id}`),
//! the previous `POST /v1/deploy` (200, the v1 `Request` answer with `container_log_storage`)
//! and `POST /v2/private-fleets:deploy` (onto the first named private host with room, else
//! the local cloud location). All three validate their body, then go through [`create`],
//! which the quick start uses too.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::apps::{no_app, no_version};
use super::deployment::{self, Runner};
use super::fields::{env_list, optional_str, required_str, string_list, EnvVar};
use super::http::{object, reply, Answer, ApiError, Emu};
use super::store::{location, Deployment, DeploymentTag, LogRing, Status, FQDN};
use super::{fleets, forward, metrics, random_hex, random_number, Emulator};

/// A validated deployment request, whichever route it came by.
pub struct DeployRequest {
    pub app: String,
    /// `None`: the app's most recently created version (`/v1/deploy`'s rule).
    pub version: Option<String>,
    pub tags: Vec<String>,
    pub env: Vec<EnvVar>,
    pub hooks: [Option<String>; 3],
    pub private_host_ids: Vec<String>,
    pub command: String,
    pub arguments: String,
}

/// What [`create`] made.
pub struct Created {
    pub request_id: String,
    pub app: String,
    pub version: String,
    pub endpoint_storage: Option<String>,
}

fn bad(message: String) -> ApiError {
    ApiError::bad_request(message)
}

/// `webhook_on_*`: `{"url": ...}` (a bare string is accepted too).
fn webhook(body: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(url)) => Ok(Some(url.clone())),
        Some(Value::Object(hook)) => match hook.get("url") {
            Some(Value::String(url)) => Ok(Some(url.clone())),
            _ => Err(bad(format!("{field}.url: required, a string"))),
        },
        Some(other) => Err(bad(format!(
            "{field}: must be an object {{\"url\": ...}}, got {other}"
        ))),
    }
}

/// `users` is optional (the documents require only the application and the version); when
/// given, each is `{user_type, user_data}`.
fn users(body: &Map<String, Value>) -> Result<usize, ApiError> {
    match body.get("users") {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Array(users)) => {
            for (i, user) in users.iter().enumerate() {
                let ok = user.get("user_type").is_some_and(Value::is_string)
                    && user.get("user_data").is_some_and(Value::is_object);
                if !ok {
                    return Err(bad(format!(
                        "users[{i}]: must be {{\"user_type\": string, \"user_data\": object}}, got {user}"
                    )));
                }
            }
            Ok(users.len())
        }
        Some(other) => Err(bad(format!("users: must be a list, got {other}"))),
    }
}

/// The body shared by the v2 routes.
fn v2_request(body: &Map<String, Value>) -> Result<DeployRequest, ApiError> {
    users(body)?;
    Ok(DeployRequest {
        app: required_str(body.get("application"), "application").map_err(bad)?,
        version: Some(required_str(body.get("version"), "version").map_err(bad)?),
        tags: string_list(body.get("tags"), "tags").map_err(bad)?,
        env: env_list(body.get("environment_variables"), "environment_variables").map_err(bad)?,
        hooks: [
            webhook(body, "webhook_on_ready")?,
            webhook(body, "webhook_on_error")?,
            webhook(body, "webhook_on_terminated")?,
        ],
        private_host_ids: Vec::new(),
        command: String::new(),
        arguments: String::new(),
    })
}

/// The v2 routes answer an unknown application or version with 400 (their documented client
/// error); `/v1/deploy` with 404.
fn as_v2(error: ApiError) -> ApiError {
    if error.status == StatusCode::NOT_FOUND {
        ApiError::bad_request(error.message)
    } else {
        error
    }
}

pub async fn deploy_v2(State(emulator): Emu, body: Bytes) -> Answer {
    let request = v2_request(&object(&body)?)?;
    let created = create(&emulator, request).map_err(as_v2)?;
    Ok(reply(
        StatusCode::ACCEPTED,
        json!({"request_id": created.request_id}),
    ))
}

pub async fn deploy_private(State(emulator): Emu, body: Bytes) -> Answer {
    let body = object(&body)?;
    let mut request = v2_request(&body)?;
    let hosts = string_list(body.get("private_host_ids"), "private_host_ids").map_err(bad)?;
    if hosts.is_empty() {
        return Err(bad(
            "private_host_ids: required, at least one host id".into()
        ));
    }
    for (i, host) in hosts.iter().enumerate() {
        if hosts[..i].contains(host) {
            return Err(bad(format!("private_host_ids: {host:?} is listed twice")));
        }
    }
    request.private_host_ids = hosts;
    let created = create(&emulator, request).map_err(as_v2)?;
    Ok(reply(
        StatusCode::ACCEPTED,
        json!({"request_id": created.request_id}),
    ))
}

/// `POST /v1/deploy`: `app_name` (required), `version_name` (default: the latest version),
/// `ip_list` / `geo_ip_list`, `env_vars`, `tags`, `webhook_url` (called once READY),
/// `container_log_storage`, `filters`, `command`, `arguments`.
pub async fn deploy_v1(State(emulator): Emu, body: Bytes) -> Answer {
    let body = object(&body)?;
    let ips = string_list(body.get("ip_list"), "ip_list").map_err(bad)?;
    let geo = match body.get("geo_ip_list") {
        None | Some(Value::Null) => 0,
        Some(Value::Array(items)) => items.len(),
        Some(other) => return Err(bad(format!("geo_ip_list: must be a list, got {other}"))),
    };
    let filters = match body.get("filters") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(other) => return Err(bad(format!("filters: must be a list, got {other}"))),
    };
    for (i, filter) in filters.iter().enumerate() {
        let ok = filter.get("field").is_some_and(Value::is_string)
            && filter.get("values").is_some_and(Value::is_array)
            && filter
                .get("filter_type")
                .and_then(Value::as_str)
                .is_some_and(|t| ["any", "all", "not"].contains(&t));
        if !ok {
            return Err(bad(format!(
                "filters[{i}]: must be {{field, values, filter_type: any|all|not}}, got {filter}"
            )));
        }
    }
    let storage = body.get("container_log_storage").cloned();
    let request = DeployRequest {
        app: required_str(body.get("app_name"), "app_name").map_err(bad)?,
        version: optional_str(&body, "version_name").map_err(bad)?,
        tags: string_list(body.get("tags"), "tags").map_err(bad)?,
        env: env_list(body.get("env_vars"), "env_vars").map_err(bad)?,
        hooks: [optional_str(&body, "webhook_url").map_err(bad)?, None, None],
        private_host_ids: Vec::new(),
        command: optional_str(&body, "command")
            .map_err(bad)?
            .unwrap_or_default(),
        arguments: optional_str(&body, "arguments")
            .map_err(bad)?
            .unwrap_or_default(),
    };
    let tags = request.tags.clone();
    let created = create(&emulator, request)?;
    let log_storage = match storage {
        Some(Value::Object(given)) => Value::Object(given),
        _ => json!({
            "enabled": created.endpoint_storage.is_some(),
            "endpoint_storage": created.endpoint_storage,
        }),
    };
    Ok(reply(
        StatusCode::OK,
        json!({
            "request_id": created.request_id,
            "request_dns": FQDN,
            "request_app": created.app,
            "request_version": created.version,
            "request_user_count": (ips.len() + geo).max(1),
            "filters": filters,
            "tags": tags,
            "container_log_storage": log_storage,
        }),
    ))
}

/// Creates and starts a deployment: checks the app and version, places it (a private host
/// with room, else the local location), binds its external ports and starts its lifecycle.
pub fn create(emulator: &Arc<Emulator>, request: DeployRequest) -> Result<Created, ApiError> {
    let mut store = emulator.lock();
    let app = store
        .apps
        .get(&request.app)
        .ok_or_else(|| no_app(&request.app))?;
    if !app.is_active {
        return Err(bad(format!("App {} is not active", request.app)));
    }
    let version_name = match &request.version {
        Some(name) => name.clone(),
        None => app
            .versions
            .iter()
            .max_by_key(|(_, v)| v.create_time)
            .map(|(name, _)| name.clone())
            .ok_or_else(|| {
                ApiError::not_found(format!("App {} has no version to deploy", request.app))
            })?,
    };
    let version = app
        .versions
        .get(&version_name)
        .ok_or_else(|| no_version(&request.app, &version_name))?;
    if !version.spec.is_active {
        return Err(bad(format!(
            "Version {version_name} of app {} is not active",
            request.app
        )));
    }
    let spec = version.spec.clone();
    let runner = if emulator.settings.docker {
        let (repository, image, tag) = &spec.image;
        Runner::Docker {
            image: image_reference(repository, image, tag),
            args: spec.command.clone().unwrap_or_default(),
        }
    } else {
        Runner::Process(spec.command.clone().ok_or_else(|| {
            bad(format!(
                "Version {version_name} of app {} has no `command`: without --docker the emulator runs a version's command (its local stand-in for the image)",
                request.app
            ))
        })?)
    };
    let placed = fleets::place(&mut store, &request.private_host_ids, &spec).map_err(bad)?;
    let internal = |e: std::io::Error| ApiError::internal(format!("emulator error: {e}"));
    let request_id = loop {
        let id = random_hex(6).map_err(internal)?;
        if !store.deployments.contains_key(&id) {
            break id;
        }
    };
    let settings = &emulator.settings;
    let (ports, forwarding, traffic) = forward::open(
        &request_id,
        &spec.ports,
        settings.same_ports,
        settings.udp_idle,
    )
    .map_err(internal)?;
    store.next_seq += 1;
    let (stop, stop_rx) = watch::channel(false);
    let [webhook_on_ready, webhook_on_error, webhook_on_terminated] = request.hooks;
    let record = Deployment {
        request_id: request_id.clone(),
        seq: store.next_seq,
        app_name: request.app.clone(),
        version_name: version_name.clone(),
        spec: spec.clone(),
        status: Status::Seeking,
        last_status: None,
        start_time: SystemTime::now(),
        started: Instant::now(),
        removal_time: None,
        ports,
        tags: request.tags.into_iter().map(DeploymentTag::new).collect(),
        location: placed
            .as_ref()
            .map_or_else(location, |p| p.location.clone()),
        host_id: placed.map(|p| p.host_id),
        access_point_id: random_number().map_err(internal)?,
        delete_token: random_hex(16).map_err(internal)?,
        context_token: random_hex(16).map_err(internal)?,
        context_number: store.next_seq,
        error_detail: None,
        restart_count: 0,
        last_exit_code: None,
        crash_logs: None,
        logs: LogRing::default(),
        command: request.command,
        arguments: request.arguments,
        events: Vec::new(),
        self_stop_calls: 0,
        stop_calls: 0,
        stop_when_ready: false,
        stop,
        webhook_on_ready,
        webhook_on_error,
        webhook_on_terminated,
        traffic,
        metrics: metrics::Series::default(),
        pid: None,
        container: None,
    };
    let launch = deployment::launch(emulator, &record, runner, &request.env, stop_rx, forwarding);
    store.deployments.insert(request_id.clone(), record);
    drop(store);
    tokio::spawn(deployment::run(emulator.clone(), launch));
    tokio::spawn(metrics::sample(emulator.clone(), request_id.clone()));
    Ok(Created {
        request_id,
        app: request.app,
        version: version_name,
        endpoint_storage: spec.endpoint_storage,
    })
}

/// `docker_repository/docker_image:docker_tag`, or `docker_image:docker_tag` for the
/// emulator's `local` repository (an image built on this machine).
pub fn image_reference(repository: &str, image: &str, tag: &str) -> String {
    let repository = repository.trim_end_matches('/');
    if repository == "local" {
        format!("{image}:{tag}")
    } else {
        format!("{repository}/{image}:{tag}")
    }
}
