//! The documented JSON views of a deployment: the status response (`GET /v1/status`, the stop
//! answers' `deployment_summary`, webhooks), the context document (the contract's `Context`,
//! the platform's `Deployment` model), a list item of `GET /v1/deployments`, and the container
//! logs. Exactly the documented fields, with the documented types: emulator-only facts are
//! served by `/emulator/...` routes instead.

use edgegap_contract::Context;
use serde_json::{json, Value};

use super::clock;
use super::store::{Deployment, Status, FQDN, PUBLIC_IP};

/// The session capacity of a deployment (its version's `session_config.sockets`), 0 without.
fn sockets(d: &Deployment) -> u32 {
    d.spec.sockets.unwrap_or(0)
}

/// The status response. `removal_time` and `last_status` appear once they have a value (the
/// v1 OpenAPI has them optional); the documented strings are strings, never null.
pub fn status(d: &Deployment) -> Value {
    let mut body = json!({
        "request_id": d.request_id,
        "fqdn": FQDN,
        "app_name": d.app_name,
        "app_version": d.version_name,
        "current_status": d.status.as_str(),
        "running": d.status == Status::Ready,
        "whitelisting_active": false,
        "start_time": clock::platform(d.start_time),
        "elapsed_time": d.started.elapsed().as_secs(),
        "error": d.status == Status::Error,
        "error_detail": d.error_detail.clone().unwrap_or_default(),
        "ports": d.ports_json(),
        "public_ip": PUBLIC_IP.to_string(),
        "sessions": [],
        "location": serde_json::to_value(&d.location).unwrap_or_default(),
        "tags": d.tag_names(),
        "sockets": sockets(d).to_string(),
        "sockets_usage": "0",
        "command": d.command,
        "arguments": d.arguments,
        "max_duration": d.spec.max_duration,
    });
    if let Value::Object(fields) = &mut body {
        if let Some(removed) = d.removal_time {
            fields.insert("removal_time".into(), json!(clock::platform(removed)));
        }
        if let Some(last) = d.last_status {
            fields.insert("last_status".into(), json!(last.as_str()));
        }
    }
    body
}

/// The context document, in the contract's shape (what the agent reads).
pub fn context(d: &Deployment) -> Context {
    Context {
        request_id: Some(d.request_id.clone()),
        public_ip: Some(PUBLIC_IP),
        status: Some(d.status.as_str().to_owned()),
        ready: Some(d.status == Status::Ready),
        whitelisting_active: Some(false),
        fqdn: Some(FQDN.to_owned()),
        ports: d.ports_mapping().ports,
        location: Some(d.location.clone()),
        tags: Some(d.tag_names()),
        sockets: d.spec.sockets,
        sockets_usage: d.spec.sockets.map(|_| 0),
        is_joinable_by_session: d.spec.sockets.map(|_| true),
    }
}

/// One item of `GET /v1/deployments`.
pub fn list_item(d: &Deployment) -> Value {
    json!({
        "request_id": d.request_id,
        "fqdn": FQDN,
        "start_time": clock::platform(d.start_time),
        "ready": d.status == Status::Ready,
        "public_ip": PUBLIC_IP.to_string(),
        "ports": d.ports_json(),
        "tags": d.tag_names(),
        "sockets": sockets(d).to_string(),
        "sockets_usage": "0",
        "is_joinable_by_session": true,
    })
}

/// The container logs body (`crash_data`, `crash_logs` and `logs_link` are nullable in the
/// v1 OpenAPI: null until the process has exited, crashed, or logs are stored).
pub fn logs(d: &Deployment) -> Value {
    let crash_data = d.last_exit_code.map(|code| {
        json!({"exit_code": code, "message": exit_message(code), "restart_count": d.restart_count})
    });
    json!({
        "logs": d.logs.text(),
        "encoding": "utf-8",
        "crash_logs": d.crash_logs,
        "crash_data": crash_data,
        "logs_link": null,
    })
}

fn exit_message(code: i32) -> String {
    if code > 128 {
        format!("killed by signal {}", code - 128)
    } else {
        format!("exited with code {code}")
    }
}
