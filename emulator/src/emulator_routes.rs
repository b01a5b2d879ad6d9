//! The emulator's own routes, under `/emulator/v1/` (operator key): what a test or a studio
//! wants to see that the documented bodies do not carry, and the fault switchboard.
//!
//! | Method | Path | Answer |
//! |---|---|---|
//! | GET | `/emulator/v1/deployments/{id}/events` | `{request_id, self_stop_calls, stop_calls, restart_count, status_label, host_id, events}` |
//! | GET | `/emulator/v1/deployments/{id}/logs` | the container-logs body, also after termination |
//! | GET | `/emulator/v1/faults` | the faults in force |
//! | POST | `/emulator/v1/faults` | add faults: `{"self_stop": SPEC or [SPEC], "context": SPEC or [SPEC], "sigterm_delay": "2s", "kill_after": "1s"}` (SPEC as for the flags) |
//! | DELETE | `/emulator/v1/faults` | clear every fault (204) |

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::deployments::no_deployment;
use super::faults::{self, Rule};
use super::http::{empty, object, ok, Answer, ApiError, Emu};
use super::{views, Emulator};

pub fn routes() -> Router<Arc<Emulator>> {
    Router::new()
        .route("/emulator/v1/deployments/{id}/events", get(events))
        .route("/emulator/v1/deployments/{id}/logs", get(logs))
        .route(
            "/emulator/v1/faults",
            get(get_faults).post(add_faults).delete(clear_faults),
        )
}

async fn events(State(emulator): Emu, Path(id): Path<String>) -> Answer {
    let store = emulator.lock();
    let found = store
        .deployments
        .get(&id)
        .ok_or_else(|| no_deployment(&id))?;
    ok(json!({
        "request_id": found.request_id,
        "self_stop_calls": found.self_stop_calls,
        "stop_calls": found.stop_calls,
        "restart_count": found.restart_count,
        "status_label": found.status.filter_name(),
        "host_id": found.host_id,
        "events": found.events,
    }))
}

async fn logs(State(emulator): Emu, Path(id): Path<String>) -> Answer {
    let store = emulator.lock();
    let found = store
        .deployments
        .get(&id)
        .ok_or_else(|| no_deployment(&id))?;
    ok(views::logs(found))
}

async fn get_faults(State(emulator): Emu) -> Answer {
    ok(emulator.faults().to_json())
}

fn specs(value: Option<&Value>, field: &str) -> Result<Vec<Rule>, ApiError> {
    let texts: Vec<&str> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(spec)) => vec![spec.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .ok_or_else(|| ApiError::bad_request(format!("{field}: a list of fault specs")))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "{field}: a fault spec or a list of them, got {other}"
            )))
        }
    };
    texts
        .into_iter()
        .map(|spec| faults::parse(spec).map_err(|e| ApiError::bad_request(format!("{field}: {e}"))))
        .collect()
}

fn duration(value: Option<&Value>, field: &str) -> Result<Option<std::time::Duration>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => humantime::parse_duration(text)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("{field}: {text:?}: {e}"))),
        Some(other) => Err(ApiError::bad_request(format!(
            "{field}: a duration such as \"2s\", got {other}"
        ))),
    }
}

async fn add_faults(State(emulator): Emu, body: Bytes) -> Answer {
    let body = object(&body)?;
    let self_stop = specs(body.get("self_stop"), "self_stop")?;
    let context = specs(body.get("context"), "context")?;
    let sigterm_delay = duration(body.get("sigterm_delay"), "sigterm_delay")?;
    let kill_after = duration(body.get("kill_after"), "kill_after")?;
    let mut faults = emulator.faults();
    faults.self_stop.extend(self_stop);
    faults.context.extend(context);
    if sigterm_delay.is_some() {
        faults.sigterm_delay = sigterm_delay;
    }
    if kill_after.is_some() {
        faults.kill_after = kill_after;
    }
    ok(faults.to_json())
}

async fn clear_faults(State(emulator): Emu) -> Answer {
    *emulator.faults() = faults::Faults::default();
    empty(StatusCode::NO_CONTENT)
}
