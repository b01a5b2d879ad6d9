//! The router and the handlers: one `match` on (method, route), each arm a small function.
//!
//! Paths are resolved to a [`Route`] by one table ([`Route::from_path`]), which also gives the
//! metric label and the `Allow` header, so a raw path never becomes a label. Read-only routes
//! answer from the published status; state-changing routes authorize, read the body under the
//! size limit, validate, and send an [`ApiCommand`]: they never act themselves.

use std::error::Error as StdError;
use std::time::Duration;

use hyper::body::{Body, Bytes};
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::json::{self, error, json_response, ResponseBody};
use super::state::{ApiCommand, ApiState, Lifecycle};
use crate::config::parse_duration;

/// Every route, as a closed set (metric labels, `Allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Readyz,
    Deployment,
    Status,
    Ready,
    Heartbeat,
    MatchEnd,
    PlayersConnect,
    PlayersDisconnect,
    Players,
    Metrics,
    /// Any path that is not a route (404).
    Unknown,
}

impl Route {
    pub const ALL: [Route; 12] = [
        Route::Healthz,
        Route::Readyz,
        Route::Deployment,
        Route::Status,
        Route::Ready,
        Route::Heartbeat,
        Route::MatchEnd,
        Route::PlayersConnect,
        Route::PlayersDisconnect,
        Route::Players,
        Route::Metrics,
        Route::Unknown,
    ];

    /// The route a path names, with the one method it accepts.
    pub fn from_path(path: &str) -> (Route, &'static str) {
        match path {
            "/healthz" => (Route::Healthz, "GET"),
            "/readyz" => (Route::Readyz, "GET"),
            "/v1/deployment" => (Route::Deployment, "GET"),
            "/v1/status" => (Route::Status, "GET"),
            "/v1/ready" => (Route::Ready, "POST"),
            "/v1/heartbeat" => (Route::Heartbeat, "POST"),
            "/v1/match/end" => (Route::MatchEnd, "POST"),
            "/v1/players/connect" => (Route::PlayersConnect, "POST"),
            "/v1/players/disconnect" => (Route::PlayersDisconnect, "POST"),
            "/v1/players" => (Route::Players, "GET"),
            "/metrics" => (Route::Metrics, "GET"),
            _ => (Route::Unknown, ""),
        }
    }

    /// The `route` label value in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Deployment => "deployment",
            Route::Status => "status",
            Route::Ready => "ready",
            Route::Heartbeat => "heartbeat",
            Route::MatchEnd => "match_end",
            Route::PlayersConnect => "players_connect",
            Route::PlayersDisconnect => "players_disconnect",
            Route::Players => "players",
            Route::Metrics => "metrics",
            Route::Unknown => "unknown",
        }
    }
}

/// How long `/readyz` waits for one port to accept a connection.
const PORT_PROBE_TIMEOUT: Duration = Duration::from_millis(250);
/// The longest player id accepted, in bytes.
const MAX_PLAYER_ID_BYTES: usize = 256;

/// Answers one request and counts it in the metrics.
pub async fn handle<B>(request: Request<B>, state: &ApiState) -> Response<ResponseBody>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let (route, allow) = Route::from_path(request.uri().path());
    let (parts, body) = request.into_parts();
    let response = match (&parts.method, route) {
        (_, Route::Unknown) => error(
            StatusCode::NOT_FOUND,
            "not found",
            format!(
                "no route {} (see GET /v1/status, /healthz, ...)",
                parts.uri.path()
            ),
        ),
        (&Method::GET, Route::Healthz) => healthz(state),
        (&Method::GET, Route::Readyz) => readyz(state).await,
        (&Method::GET, Route::Deployment) => json_response(StatusCode::OK, &state.deployment),
        (&Method::GET, Route::Status) => status(state),
        (&Method::GET, Route::Players) => players(state),
        (&Method::GET, Route::Metrics) => metrics(state),
        (&Method::POST, Route::Ready) => post(state, &parts, body, ready).await,
        (&Method::POST, Route::Heartbeat) => post(state, &parts, body, heartbeat).await,
        (&Method::POST, Route::MatchEnd) => post(state, &parts, body, match_end).await,
        (&Method::POST, Route::PlayersConnect) => post(state, &parts, body, connect).await,
        (&Method::POST, Route::PlayersDisconnect) => post(state, &parts, body, disconnect).await,
        (method, _) => {
            let mut response = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
                format!("{} accepts {allow}, not {method}", parts.uri.path()),
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            response
        }
    };
    state
        .metrics
        .record_request(route, response.status().as_u16());
    response
}

fn healthz(state: &ApiState) -> Response<ResponseBody> {
    let status = state.status.borrow();
    let unhealthy = |detail: String| error(StatusCode::SERVICE_UNAVAILABLE, "unhealthy", detail);
    match (&status.lifecycle, status.child_pid) {
        (Lifecycle::Running | Lifecycle::Ending { .. }, Some(pid)) => json_response(
            StatusCode::OK,
            &json!({"status": "ok", "state": status.lifecycle.name(), "child_pid": pid}),
        ),
        (Lifecycle::Stopping { .. }, _) => unhealthy("the game server is being stopped".into()),
        (Lifecycle::Exited { code }, _) => {
            unhealthy(format!("the game server has exited with code {code}"))
        }
        _ => unhealthy("the game server has not been started yet".into()),
    }
}

async fn readyz(state: &ApiState) -> Response<ResponseBody> {
    let (ready, lifecycle) = {
        let status = state.status.borrow();
        (status.ready, status.lifecycle.clone())
    };
    let not_ready = |detail: String| error(StatusCode::SERVICE_UNAVAILABLE, "not ready", detail);
    match lifecycle {
        Lifecycle::Running | Lifecycle::Ending { .. } => {}
        other => return not_ready(format!("the agent is {}", other.name())),
    }
    if ready {
        return json_response(StatusCode::OK, &json!({"ready": true, "by": "game"}));
    }
    let Some(ports) = &state.ready_ports else {
        return not_ready("the game has not called POST /v1/ready".into());
    };
    if ports.is_empty() {
        return not_ready(
            "the game has not called POST /v1/ready, and no TCP port of the mapping has a check"
                .into(),
        );
    }
    let mut closed = Vec::new();
    for &port in ports {
        let connect = tokio::net::TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port));
        if !matches!(
            tokio::time::timeout(PORT_PROBE_TIMEOUT, connect).await,
            Ok(Ok(_))
        ) {
            closed.push(port);
        }
    }
    if closed.is_empty() {
        json_response(
            StatusCode::OK,
            &json!({"ready": true, "by": "ports", "ports": ports}),
        )
    } else {
        not_ready(format!(
            "the game has not called POST /v1/ready, and TCP ports {closed:?} do not accept connections on 127.0.0.1 yet"
        ))
    }
}

fn status(state: &ApiState) -> Response<ResponseBody> {
    let status = state.status.borrow().to_json();
    json_response(StatusCode::OK, &status)
}

fn players(state: &ApiState) -> Response<ResponseBody> {
    let players = state.players();
    json_response(
        StatusCode::OK,
        &json!({"count": players.len(), "players": &*players}),
    )
}

fn metrics(state: &ApiState) -> Response<ResponseBody> {
    let players = state.players().len();
    let text = state.metrics.render(&state.status.borrow(), players);
    json::with_type(
        StatusCode::OK,
        Bytes::from(text),
        "text/plain; version=0.0.4; charset=utf-8",
    )
}

/// The shared part of every state-changing route: authorize, read the body, then `act`.
async fn post<B>(
    state: &ApiState,
    parts: &Parts,
    body: B,
    act: fn(&ApiState, &[u8]) -> Response<ResponseBody>,
) -> Response<ResponseBody>
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

fn authorize(state: &ApiState, parts: &Parts) -> Result<(), Response<ResponseBody>> {
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

/// Sends `command` to the supervisor, answering 202 with `body`, or 503 if it is gone.
fn send(state: &ApiState, command: ApiCommand, body: Value) -> Response<ResponseBody> {
    match state.commands.send(command) {
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

fn ready(state: &ApiState, body: &[u8]) -> Response<ResponseBody> {
    if let Err(refused) = json::parse_optional::<Value>(body) {
        return refused;
    }
    send(state, ApiCommand::Ready, json!({"accepted": "ready"}))
}

fn heartbeat(state: &ApiState, body: &[u8]) -> Response<ResponseBody> {
    if let Err(refused) = json::parse_optional::<Value>(body) {
        return refused;
    }
    send(
        state,
        ApiCommand::Heartbeat,
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

fn match_end(state: &ApiState, body: &[u8]) -> Response<ResponseBody> {
    let body = match json::parse_optional::<MatchEndBody>(body) {
        Ok(body) => body.unwrap_or(MatchEndBody {
            reason: None,
            delay: None,
        }),
        Err(refused) => return refused,
    };
    let delay =
        match &body.delay {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => match parse_duration(text) {
                Ok(delay) => Some(delay),
                Err(e) => return error(StatusCode::BAD_REQUEST, "invalid delay", e),
            },
            Some(Value::Number(n)) => {
                match n.as_f64().and_then(|s| Duration::try_from_secs_f64(s).ok()) {
                    Some(delay) => Some(delay),
                    None => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "invalid delay",
                            format!("{n} is not a number of seconds ≥ 0"),
                        )
                    }
                }
            }
            Some(other) => return error(
                StatusCode::BAD_REQUEST,
                "invalid delay",
                format!(
                    "`delay` must be a duration such as \"5s\" or a number of seconds, not {other}"
                ),
            ),
        };
    let command = ApiCommand::MatchEnd {
        reason: body.reason,
        delay,
    };
    // The status as it is once the supervisor has applied the command (it applies the same
    // `AgentStatus::apply`), so the answer never shows `running` after a match end.
    let status = {
        let mut status = state.status.borrow().clone();
        status.apply(&command);
        status.to_json()
    };
    if state.commands.send(command).is_err() {
        return agent_exiting();
    }
    json_response(
        StatusCode::ACCEPTED,
        &json!({"accepted": "match_end", "status": status}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlayerBody {
    id: String,
}

fn player_id(body: &[u8]) -> Result<String, Response<ResponseBody>> {
    let PlayerBody { id } = json::parse_required(body, r#"{"id": "<player id>"}"#)?;
    if id.is_empty() || id.len() > MAX_PLAYER_ID_BYTES || id.chars().any(char::is_control) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid player id",
            format!("`id` must be 1 to {MAX_PLAYER_ID_BYTES} bytes without control characters"),
        ));
    }
    Ok(id)
}

/// Connecting an id that is already connected changes nothing (`"new": false`).
fn connect(state: &ApiState, body: &[u8]) -> Response<ResponseBody> {
    let id = match player_id(body) {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let mut players = state.players();
    let new = players.insert(id.clone());
    if new
        && state
            .commands
            .send(ApiCommand::PlayerConnected(id.clone()))
            .is_err()
    {
        players.remove(&id);
        return agent_exiting();
    }
    json_response(
        StatusCode::OK,
        &json!({"id": id, "connected": true, "new": new, "count": players.len()}),
    )
}

/// Disconnecting an id that is not connected is a 404, so a game notices its own bookkeeping
/// going wrong.
fn disconnect(state: &ApiState, body: &[u8]) -> Response<ResponseBody> {
    let id = match player_id(body) {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let mut players = state.players();
    if !players.remove(&id) {
        return error(
            StatusCode::NOT_FOUND,
            "unknown player",
            format!("no connected player has id {id:?}"),
        );
    }
    if state
        .commands
        .send(ApiCommand::PlayerDisconnected(id.clone()))
        .is_err()
    {
        players.insert(id);
        return agent_exiting();
    }
    json_response(
        StatusCode::OK,
        &json!({"id": id, "connected": false, "count": players.len()}),
    )
}
