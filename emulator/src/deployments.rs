//! A deployment's own routes: status, stop, self-stop, the context URL and container logs.
//! Handlers only change the store and message a deployment's lifecycle task
//! (`deployment.rs`) through its stop channel; they never touch processes. The injected
//! faults (`faults.rs`) are applied here, to the self-stop and context routes.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::json;

use super::faults::Fault;
use super::http::{authorization, ok, reply, same, Answer, ApiError, Emu};
use super::store::{Deployment, Status};
use super::views;

pub(super) fn no_deployment(id: &str) -> ApiError {
    ApiError::not_found(format!("Deployment {id} not found"))
}

pub async fn status(State(emulator): Emu, Path(id): Path<String>) -> Answer {
    let store = emulator.lock();
    let found = store
        .deployments
        .get(&id)
        .ok_or_else(|| no_deployment(&id))?;
    ok(views::status(found))
}

/// Starts the stop sequence (200), or, before READY or ERROR, records the stop to carry out
/// once either is reached (202). A stop of an ERROR deployment ends it at once.
pub(super) fn request_stop(found: &mut Deployment, event: &str) -> Result<StatusCode, ApiError> {
    match found.status {
        Status::Terminated => Err(ApiError::new(
            StatusCode::GONE,
            format!("Deployment {} is already terminated", found.request_id),
        )),
        Status::Error => {
            found.event(json!({"event": event}));
            found.set_status(Status::Terminated);
            Ok(StatusCode::OK)
        }
        Status::Seeking | Status::Deploying => {
            found.event(json!({"event": event, "deferred_until": "READY or ERROR"}));
            found.stop_when_ready = true;
            Ok(StatusCode::ACCEPTED)
        }
        Status::Ready | Status::Terminating => {
            found.event(json!({"event": event}));
            let _ = found.stop.send(true);
            Ok(StatusCode::OK)
        }
    }
}

/// 200 `{message, deployment_summary}`; 202 `{message}` for a stop carried out later.
fn stop_answer(code: StatusCode, found: &Deployment) -> Answer {
    let id = &found.request_id;
    if code == StatusCode::ACCEPTED {
        return Ok(reply(
            code,
            json!({"message": format!("{id} - Delete request will be processed soon")}),
        ));
    }
    Ok(reply(
        code,
        json!({
            "message": format!("Instance {id} will be deleted"),
            "deployment_summary": views::status(found),
        }),
    ))
}

pub async fn stop(State(emulator): Emu, Path(id): Path<String>) -> Answer {
    let mut store = emulator.lock();
    let found = store
        .deployments
        .get_mut(&id)
        .ok_or_else(|| no_deployment(&id))?;
    let code = request_stop(found, "stop")?;
    found.stop_calls += 1;
    stop_answer(code, found)
}

/// A fault's answer (`hang` waits first, then answers 504 if the client is still there).
async fn answer_fault(fault: Fault, what: &str) -> ApiError {
    match fault {
        Fault::Status { code, retry_after } => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut error = ApiError::new(
                status,
                format!("injected fault: the emulator answers {code} to this {what}"),
            );
            if let Some(seconds) = retry_after {
                error.headers.push(("retry-after", seconds.to_string()));
            }
            error
        }
        Fault::Hang { for_ } => {
            tokio::time::sleep(for_).await;
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("injected fault: this {what} hung for {for_:?}"),
            )
        }
        Fault::Refuse => ApiError::unauthorized(format!(
            "injected fault: the emulator refuses the token of this {what}"
        )),
    }
}

pub async fn self_stop(
    State(emulator): Emu,
    Path((id, access_point)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let fault = {
        let mut store = emulator.lock();
        let found = store
            .deployments
            .get_mut(&id)
            .ok_or_else(|| no_deployment(&id))?;
        let fault = emulator.faults().next_self_stop();
        if let Some(fault) = &fault {
            found.event(json!({"event": "self_stop_fault", "fault": fault.describe()}));
        }
        fault
    };
    if let Some(fault) = fault {
        return Err(answer_fault(fault, "self-stop").await);
    }
    let mut store = emulator.lock();
    let found = store
        .deployments
        .get_mut(&id)
        .ok_or_else(|| no_deployment(&id))?;
    let token_ok = authorization(&headers).is_some_and(|given| same(given, &found.delete_token));
    if !token_ok {
        found.event(json!({"event": "self_stop_rejected", "reason": "token"}));
        return Err(ApiError::unauthorized(
            "invalid or missing authorization: send the raw ARBITRIUM_DELETE_TOKEN as the `authorization` header",
        ));
    }
    if access_point.parse::<u32>().ok() != Some(found.access_point_id) {
        found.event(json!({"event": "self_stop_rejected", "reason": "access_point_id"}));
        return Err(ApiError::not_found(format!(
            "Deployment {id} has no access point {access_point}"
        )));
    }
    // Self-stop of a terminated deployment: 404 (its documented answers have no 410).
    let code = request_stop(found, "self_stop").map_err(|e| ApiError::not_found(e.message))?;
    found.self_stop_calls += 1;
    stop_answer(code, found)
}

pub async fn context(
    State(emulator): Emu,
    Path((id, number)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let fault = emulator.faults().next_context();
    if let Some(fault) = fault {
        return Err(answer_fault(fault, "context request").await);
    }
    let store = emulator.lock();
    let found = store
        .deployments
        .get(&id)
        .ok_or_else(|| no_deployment(&id))?;
    let token_ok = authorization(&headers).is_some_and(|given| same(given, &found.context_token));
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
    ok(serde_json::to_value(views::context(found)).unwrap_or_default())
}

/// Served until the deployment is terminated, as documented ("Logs are not available when
/// your deployment is terminated"); `/emulator/v1/deployments/{id}/logs` keeps serving them.
pub async fn container_logs(State(emulator): Emu, Path(id): Path<String>) -> Answer {
    let store = emulator.lock();
    let found = store
        .deployments
        .get(&id)
        .ok_or_else(|| no_deployment(&id))?;
    if found.status == Status::Terminated {
        return Err(ApiError::not_found(format!(
            "The logs of deployment {id} are not available: it is terminated (the platform keeps them only in an endpoint storage)"
        )));
    }
    ok(views::logs(found))
}

/// How long an injected `hang` holds a request by default.
pub const DEFAULT_HANG: Duration = Duration::from_secs(300);
