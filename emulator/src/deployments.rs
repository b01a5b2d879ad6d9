//! The Dedicated Servers part of the API: deploy, status, stop, self-stop, list, container
//! logs, locations, the context URL and the emulator-only event journal (bulk stop is in
//! `bulk.rs`, deployment tags in `tags.rs`). Handlers only change the store and message a deployment's lifecycle task
//! (`deployment.rs`) through its stop channel; they never touch processes.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::deployment::Runner;
use super::http::{ok, paginate, same, ApiError, Reply, Req};
use super::store::{location_json, Deployment, LogRing, Status, FQDN};
use super::validate::{self, required_str};
use super::{deployment, forward, random_hex, Emulator};

fn internal(error: std::io::Error) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("emulator error: {error}"),
    )
}

pub(super) fn no_deployment(id: &str) -> ApiError {
    ApiError::not_found(format!("Deployment {id} not found"))
}

fn webhook(body: &serde_json::Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(url)) => Ok(Some(url.clone())),
        Some(Value::Object(hook)) => match hook.get("url") {
            Some(Value::String(url)) => Ok(Some(url.clone())),
            _ => Err(ApiError::bad_request(format!(
                "{field}.url: required, a string"
            ))),
        },
        Some(other) => Err(ApiError::bad_request(format!(
            "{field}: must be an object {{\"url\": ...}}, got {other}"
        ))),
    }
}

pub async fn deploy(emulator: &Arc<Emulator>, req: &Req) -> Reply {
    let body = req.json_object()?;
    let app_name =
        required_str(body.get("application"), "application").map_err(ApiError::bad_request)?;
    let version_name =
        required_str(body.get("version"), "version").map_err(ApiError::bad_request)?;
    let users = match body.get("users") {
        Some(Value::Array(users)) => users.len(),
        None | Some(Value::Null) => return Err(ApiError::bad_request("users: required, a list")),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "users: must be a list, got {other}"
            )))
        }
    };
    let tags = match body.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::bad_request("tags: must be a list of strings"))?,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "tags: must be a list, got {other}"
            )))
        }
    };
    let extra_env = validate::env_list(body.get("environment_variables"), "environment_variables")
        .map_err(ApiError::bad_request)?;
    let hooks = [
        webhook(&body, "webhook_on_ready")?,
        webhook(&body, "webhook_on_error")?,
        webhook(&body, "webhook_on_terminated")?,
    ];
    let (spec, runner) = {
        let store = emulator.lock();
        let app = store
            .apps
            .get(&app_name)
            .ok_or_else(|| ApiError::not_found(format!("App {app_name} not found")))?;
        if app.fields.get("is_active") == Some(&Value::Bool(false)) {
            return Err(ApiError::bad_request(format!(
                "App {app_name} is not active"
            )));
        }
        let version = app.versions.get(&version_name).ok_or_else(|| {
            ApiError::not_found(format!(
                "Version {version_name} of app {app_name} not found"
            ))
        })?;
        if !version.spec.is_active {
            return Err(ApiError::bad_request(format!(
                "Version {version_name} of app {app_name} is not active"
            )));
        }
        let runner = if emulator.settings.docker {
            Runner::Docker {
                image: image_reference(&version.fields),
                args: version.spec.command.clone().unwrap_or_default(),
            }
        } else {
            Runner::Process(version.spec.command.clone().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Version {version_name} of app {app_name} has no `command`: without --docker the emulator runs a version's command (its local stand-in for the image)"
                ))
            })?)
        };
        (version.spec.clone(), runner)
    };
    let (stop, stop_rx) = watch::channel(false);
    let mut store = emulator.lock();
    let request_id = loop {
        let id = random_hex(6).map_err(internal)?;
        if !store.deployments.contains_key(&id) {
            break id;
        }
    };
    let settings = &emulator.settings;
    let (ports, forwarding) = forward::open(
        &request_id,
        &spec.ports,
        settings.same_ports,
        settings.udp_idle,
    )
    .map_err(internal)?;
    store.next_seq += 1;
    let [webhook_on_ready, webhook_on_error, webhook_on_terminated] = hooks;
    let record = Deployment {
        request_id: request_id.clone(),
        seq: store.next_seq,
        app_name: app_name.clone(),
        version_name: version_name.clone(),
        spec,
        status: Status::Seeking,
        last_status: None,
        start_time: SystemTime::now(),
        started: Instant::now(),
        removal_time: None,
        ports,
        tags: tags.clone(),
        access_point_id: random_hex(4).map_err(internal)?,
        delete_token: random_hex(16).map_err(internal)?,
        context_token: random_hex(16).map_err(internal)?,
        context_number: store.next_seq,
        error_detail: None,
        restart_count: 0,
        last_exit_code: None,
        logs: LogRing::default(),
        events: Vec::new(),
        self_stop_calls: 0,
        stop_calls: 0,
        stop,
        webhook_on_ready,
        webhook_on_error,
        webhook_on_terminated,
    };
    let launch = deployment::launch(emulator, &record, runner, &extra_env, stop_rx, forwarding);
    store.deployments.insert(request_id.clone(), record);
    drop(store);
    tokio::spawn(deployment::run(emulator.clone(), launch));
    let here = location_json();
    Ok((
        StatusCode::ACCEPTED,
        json!({
            "request_id": request_id,
            "request_dns": FQDN,
            "request_app": app_name,
            "request_version": version_name,
            "request_user_count": users,
            "city": here["city"],
            "country": here["country"],
            "continent": here["continent"],
            "administrative_division": here["administrative_division"],
            "tags": tags,
        }),
    ))
}

/// `docker_repository/docker_image:docker_tag`, or `docker_image:docker_tag` for the
/// emulator's `local` repository (an image built on this machine).
fn image_reference(fields: &serde_json::Map<String, Value>) -> String {
    let field = |name: &str| fields.get(name).and_then(Value::as_str).unwrap_or("");
    let repository = field("docker_repository").trim_end_matches('/');
    let image = field("docker_image");
    let tag = field("docker_tag");
    if repository == "local" {
        format!("{image}:{tag}")
    } else {
        format!("{repository}/{image}:{tag}")
    }
}

pub fn status(emulator: &Arc<Emulator>, id: &str) -> Reply {
    let store = emulator.lock();
    let found = store.deployments.get(id).ok_or_else(|| no_deployment(id))?;
    ok(found.status_json())
}

/// Starts the stop sequence; answers 202 when the deployment is not READY yet.
pub(super) fn request_stop(found: &mut Deployment, event: &str) -> Result<StatusCode, ApiError> {
    if found.status == Status::Terminated {
        return Err(ApiError::not_found(format!(
            "Deployment {} is already terminated",
            found.request_id
        )));
    }
    found.event(json!({"event": event}));
    if found.status == Status::Error {
        found.set_status(Status::Terminated);
        return Ok(StatusCode::OK);
    }
    let code = match found.status {
        Status::Seeking | Status::Deploying => StatusCode::ACCEPTED,
        _ => StatusCode::OK,
    };
    let _ = found.stop.send(true);
    Ok(code)
}

fn will_be_deleted(code: StatusCode, found: &Deployment) -> Reply {
    Ok((
        code,
        json!({
            "message": format!("Instance {} will be deleted", found.request_id),
            "deployment_summary": found.status_json(),
        }),
    ))
}

pub fn stop(emulator: &Arc<Emulator>, id: &str) -> Reply {
    let mut store = emulator.lock();
    let found = store
        .deployments
        .get_mut(id)
        .ok_or_else(|| no_deployment(id))?;
    let code = request_stop(found, "stop")?;
    found.stop_calls += 1;
    will_be_deleted(code, found)
}

pub fn self_stop(emulator: &Arc<Emulator>, req: &Req, id: &str, access_point: &str) -> Reply {
    let mut store = emulator.lock();
    let found = store
        .deployments
        .get_mut(id)
        .ok_or_else(|| no_deployment(id))?;
    let token_ok = req
        .authorization
        .as_deref()
        .is_some_and(|given| same(given, &found.delete_token));
    if !token_ok {
        found.event(json!({"event": "self_stop_rejected", "reason": "token"}));
        return Err(ApiError::unauthorized(
            "invalid or missing authorization: send the raw ARBITRIUM_DELETE_TOKEN as the `authorization` header",
        ));
    }
    if access_point != found.access_point_id {
        found.event(json!({"event": "self_stop_rejected", "reason": "access_point_id"}));
        return Err(ApiError::not_found(format!(
            "Deployment {id} has no access point {access_point}"
        )));
    }
    let code = request_stop(found, "self_stop")?;
    found.self_stop_calls += 1;
    will_be_deleted(code, found)
}

pub fn context(emulator: &Arc<Emulator>, req: &Req, id: &str, number: &str) -> Reply {
    let store = emulator.lock();
    let found = store.deployments.get(id).ok_or_else(|| no_deployment(id))?;
    let token_ok = req
        .authorization
        .as_deref()
        .is_some_and(|given| same(given, &found.context_token));
    if !token_ok {
        return Err(ApiError::unauthorized(
            "invalid or missing authorization: send the raw ARBITRIUM_CONTEXT_TOKEN as the `authorization` header",
        ));
    }
    if number != found.context_number.to_string() {
        return Err(ApiError::not_found(format!(
            "No context {number} for deployment {id}"
        )));
    }
    ok(found.status_json())
}

fn summary(found: &Deployment) -> Value {
    json!({
        "request_id": found.request_id,
        "fqdn": FQDN,
        "app_name": found.app_name,
        "app_version": found.version_name,
        "status": found.status.as_str(),
        "ready": found.status == Status::Ready,
        "public_ip": super::store::PUBLIC_IP,
        "ports": found.ports_json(),
        "tags": found.tags,
        "start_time": super::store::rfc3339(found.start_time),
    })
}

pub fn list(emulator: &Arc<Emulator>, req: &Req) -> Reply {
    let store = emulator.lock();
    let active: Vec<Value> = store
        .deployments_in_order()
        .into_iter()
        .filter(|d| !d.status.is_final())
        .map(summary)
        .collect();
    let total = active.len();
    let (page, pagination) = paginate(req, active)?;
    ok(json!({"data": page, "total_count": total, "pagination": pagination}))
}

pub fn logs(emulator: &Arc<Emulator>, id: &str) -> Reply {
    let store = emulator.lock();
    let found = store.deployments.get(id).ok_or_else(|| no_deployment(id))?;
    let crash_data = found.last_exit_code.map(|code| {
        json!({"exit_code": code, "message": exit_message(code), "restart_count": found.restart_count})
    });
    ok(json!({
        "logs": found.logs.text(),
        "encoding": "utf-8",
        "crash_logs": null,
        "crash_data": crash_data,
        "logs_link": null,
    }))
}

fn exit_message(code: i32) -> String {
    if code > 128 {
        format!("killed by signal {}", code - 128)
    } else {
        format!("exited with code {code}")
    }
}

pub fn locations() -> Reply {
    let mut here = location_json();
    if let Value::Object(map) = &mut here {
        map.insert("type".into(), json!("local"));
    }
    ok(json!({"locations": [here]}))
}

pub fn events(emulator: &Arc<Emulator>, id: &str) -> Reply {
    let store = emulator.lock();
    let found = store.deployments.get(id).ok_or_else(|| no_deployment(id))?;
    ok(json!({
        "request_id": found.request_id,
        "self_stop_calls": found.self_stop_calls,
        "stop_calls": found.stop_calls,
        "restart_count": found.restart_count,
        "events": found.events,
    }))
}
