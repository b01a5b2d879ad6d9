//! The state-changing routes (all POST): authorize against the optional bearer token, read
//! the body under the size limit, validate it, and send one [`GameRequest`] to the supervisor.
//! None of them acts on the game's process or the platform itself.

use std::error::Error as StdError;
use std::time::Duration;

use hyper::body::{Body, Bytes};
use hyper::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::json::{self, error, json_response, ResponseBody};
use super::state::{ApiState, Joined};
use crate::lifecycle::GameRequest;
use crate::units::{at_most, parse_duration_at_most, MAX_MATCH_DURATION};

/// The longest player id accepted, in bytes (400 beyond).
pub const MAX_PLAYER_ID_BYTES: usize = 256;
/// The longest match-end reason accepted, in bytes (400 beyond). Any text is accepted within
/// it: control characters are escaped where the reason is logged (`logging`) and served
/// (JSON), so a reason cannot forge a log line.
pub const MAX_REASON_BYTES: usize = 512;

/// A POST route's own step, once the request is authorized and its body read.
pub type Act = fn(&ApiState, &[u8]) -> Response<ResponseBody>;

/// The shared part of every state-changing route: authorize, read the body, then `act`.
pub async fn post<B>(state: &ApiState, parts: &Parts, body: B, act: Act) -> Response<ResponseBody>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    if let Err(refused) = authorize(state, parts) {
        return refused;
    }
    match json::read_body(&parts.headers, body).await {
        Ok(bytes) => act(state, &bytes),
        Err(refused) => refused,
    }
}

/// `Ok` when no token is set or the request carries it; else the 401 to answer.
pub fn authorize(state: &ApiState, parts: &Parts) -> Result<(), Response<ResponseBody>> {
    let Some(token) = &state.token else {
        return Ok(());
    };
    let offered = parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    let refuse = |detail: &str| {
        let mut response = error(StatusCode::UNAUTHORIZED, "unauthorized", detail);
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Err(response)
    };
    let Some(offered) = offered else {
        return refuse("this route needs `Authorization: Bearer <token>` with the token from EDGEGAP_AGENT_API_TOKEN");
    };
    let credential = match offered.split_first_chunk::<7>() {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"bearer ") => rest,
        _ => return refuse("the Authorization header is not of the form `Bearer <token>`"),
    };
    if token.matches(credential) {
        Ok(())
    } else {
        refuse("the bearer token is not the one in EDGEGAP_AGENT_API_TOKEN")
    }
}

/// Sends `request` to the supervisor, answering 202 with `body`, or 503 if it is gone.
fn send(state: &ApiState, request: GameRequest, body: Value) -> Response<ResponseBody> {
    match state.requests.send(request) {
        Ok(()) => json_response(StatusCode::ACCEPTED, &body),
        Err(_) => agent_exiting(),
    }
}

fn agent_exiting() -> Response<ResponseBody> {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "agent exiting",
        "the supervisor no longer takes requests: the agent is exiting",
    )
}

pub fn ready(state: &ApiState, body: &[u8]) -> Response<ResponseBody> {
    if let Err(refused) = json::parse_optional::<Value>(body) {
        return refused;
    }
    send(state, GameRequest::Ready, json!({"accepted": "ready"}))
}

pub fn heartbeat(state: &ApiState, body: &[u8]) -> Response<ResponseBody> {
    if let Err(refused) = json::parse_optional::<Value>(body) {
        return refused;
    }
    send(
        state,
        GameRequest::Heartbeat,
        json!({"accepted": "heartbeat"}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchEndBody {
    reason: Option<String>,
    /// `"5s"`, `"1m30s"`, or a number of seconds.
    delay: Option<Value>,
}

pub fn match_end(state: &ApiState, body: &[u8]) -> Response<ResponseBody> {
    let body = match json::parse_optional::<MatchEndBody>(body) {
        Ok(body) => body.unwrap_or(MatchEndBody {
            reason: None,
            delay: None,
        }),
        Err(refused) => return refused,
    };
    if let Some(reason) = &body.reason {
        if reason.len() > MAX_REASON_BYTES {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid reason",
                format!(
                    "`reason` is {} bytes; at most {MAX_REASON_BYTES} are accepted",
                    reason.len()
                ),
            );
        }
    }
    let delay = match match_end_delay(body.delay.as_ref()) {
        Ok(delay) => delay,
        Err(detail) => return error(StatusCode::BAD_REQUEST, "invalid delay", detail),
    };
    // The status as the supervisor will publish it once it has the request, so the answer
    // never shows `running` after a match end.
    let status = state
        .status
        .borrow()
        .clone()
        .with_match_ended_by_game(body.reason.as_deref())
        .to_json();
    let request = GameRequest::MatchEnd {
        reason: body.reason,
        delay,
    };
    if state.requests.send(request).is_err() {
        return agent_exiting();
    }
    json_response(
        StatusCode::ACCEPTED,
        &json!({"accepted": "match_end", "status": status}),
    )
}

/// The `delay` of a match end: `"5s"` or a number of seconds, at most the platform's largest
/// `max_duration` (no deployment lives longer); the error names the field and the value.
fn match_end_delay(delay: Option<&Value>) -> Result<Option<Duration>, String> {
    const BOUND: &str = "the platform's largest max_duration, 1440 minutes";
    match delay {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => parse_duration_at_most(text, MAX_MATCH_DURATION, BOUND)
            .map(Some)
            .map_err(|e| format!("`delay`: {e}")),
        Some(Value::Number(n)) => {
            let seconds = n
                .as_f64()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| format!("`delay`: {n} is not a number of seconds ≥ 0"))?;
            at_most(seconds, MAX_MATCH_DURATION, BOUND)
                .map(Some)
                .map_err(|why| format!("`delay`: {n} {why}"))
        }
        Some(other) => Err(format!(
            "`delay` must be a duration such as \"5s\" or a number of seconds, not {other}"
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlayerBody {
    id: String,
}

fn player_id(body: &[u8]) -> Result<String, Response<ResponseBody>> {
    let PlayerBody { id } = json::parse_required(body, r#"{"id": "<player id>"}"#)?;
    check_player_id(&id)
        .map_err(|detail| error(StatusCode::BAD_REQUEST, "invalid player id", detail))?;
    Ok(id)
}

/// `Err` naming the rule when `id` is not a valid player id: 1 to [`MAX_PLAYER_ID_BYTES`]
/// bytes without control characters (the rule of every route that takes a player id).
pub fn check_player_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_PLAYER_ID_BYTES || id.chars().any(char::is_control) {
        return Err(format!(
            "`id` must be 1 to {MAX_PLAYER_ID_BYTES} bytes without control characters"
        ));
    }
    Ok(())
}

/// Connecting an id that is already connected changes nothing (`"new": false`).
pub fn connect(state: &ApiState, body: &[u8]) -> Response<ResponseBody> {
    let id = match player_id(body) {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    match state.connect_player(&id, None) {
        Ok(Joined { new, count }) => json_response(
            StatusCode::OK,
            &json!({"id": id, "connected": true, "new": new, "count": count}),
        ),
        Err(_) => agent_exiting(),
    }
}

/// Disconnecting an id that is not connected is a 404, so a game notices its own bookkeeping
/// going wrong.
pub fn disconnect(state: &ApiState, body: &[u8]) -> Response<ResponseBody> {
    let id = match player_id(body) {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    match state.disconnect_player(&id) {
        Ok(Some(count)) => json_response(
            StatusCode::OK,
            &json!({"id": id, "connected": false, "count": count}),
        ),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "unknown player",
            format!("no connected player has id {id:?}"),
        ),
        Err(_) => agent_exiting(),
    }
}
