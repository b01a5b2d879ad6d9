//! The router and the handlers: one `match` on (method, route), each arm a small function.
//!
//! Paths are resolved to a [`Route`] by one table ([`Route::from_path`]), which also gives the
//! metric label and the `Allow` header, so a raw path never becomes a label. Read-only routes
//! answer from the published status; the state-changing routes are in `commands.rs`.

use std::error::Error as StdError;
use std::time::Duration;

use hyper::body::{Body, Bytes};
use hyper::header::{HeaderValue, ALLOW};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::commands::{self, authorize, post};
use super::json::{self, error, json_response, ResponseBody};
use super::state::ApiState;
use super::waiting;
use crate::lifecycle::Lifecycle;

/// Every route, as a closed set (metric labels, `Allow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Healthz,
    Readyz,
    Deployment,
    Status,
    Events,
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
    pub const ALL: [Route; 13] = [
        Route::Healthz,
        Route::Readyz,
        Route::Deployment,
        Route::Status,
        Route::Events,
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
            "/v1/events" => (Route::Events, "GET"),
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
            Route::Events => "events",
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

/// Answers one request and counts it in the metrics. With `--api-guard-reads`, the GET routes
/// that show the match need the token before anything else.
pub async fn handle<B>(request: Request<B>, state: &ApiState) -> Response<ResponseBody>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let (route, allow) = Route::from_path(request.uri().path());
    let (parts, body) = request.into_parts();
    let guarded = state.guard_reads
        && parts.method == Method::GET
        && matches!(
            route,
            Route::Deployment | Route::Status | Route::Events | Route::Players | Route::Metrics
        );
    let response = match guarded.then(|| authorize(state, &parts)) {
        Some(Err(refused)) => refused,
        _ => answer(route, allow, &parts, body, state).await,
    };
    state
        .metrics
        .record_request(route, response.status().as_u16());
    response
}

/// The answer of `route` to an authorized request.
async fn answer<B>(
    route: Route,
    allow: &'static str,
    parts: &Parts,
    body: B,
    state: &ApiState,
) -> Response<ResponseBody>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    match (&parts.method, route) {
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
        (&Method::GET, Route::Deployment) => json_response(StatusCode::OK, &state.deployment()),
        (&Method::GET, Route::Status) => waiting::status(state, parts.uri.query()).await,
        (&Method::GET, Route::Events) => waiting::events(state),
        (&Method::GET, Route::Players) => players(state),
        (&Method::GET, Route::Metrics) => metrics(state),
        (&Method::POST, Route::Ready) => post(state, parts, body, commands::ready).await,
        (&Method::POST, Route::Heartbeat) => post(state, parts, body, commands::heartbeat).await,
        (&Method::POST, Route::MatchEnd) => post(state, parts, body, commands::match_end).await,
        (&Method::POST, Route::PlayersConnect) => post(state, parts, body, commands::connect).await,
        (&Method::POST, Route::PlayersDisconnect) => {
            post(state, parts, body, commands::disconnect).await
        }
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
    }
}

fn healthz(state: &ApiState) -> Response<ResponseBody> {
    let status = state.status.borrow();
    let unhealthy = |detail: String| error(StatusCode::SERVICE_UNAVAILABLE, "unhealthy", detail);
    match (&status.lifecycle, status.child_pid) {
        (Lifecycle::Starting | Lifecycle::Running | Lifecycle::Ending { .. }, Some(pid)) => {
            json_response(
                StatusCode::OK,
                &json!({"status": "ok", "state": status.lifecycle.name(), "child_pid": pid}),
            )
        }
        (Lifecycle::Restarting, _) => unhealthy("the game server is being restarted".into()),
        (Lifecycle::Stopping { .. }, _) => unhealthy("the game server is being stopped".into()),
        (Lifecycle::Exited { code }, _) => {
            unhealthy(format!("the game server has exited with code {code}"))
        }
        (Lifecycle::Ending { .. }, None) => unhealthy(
            "the match has ended and the game server has exited; the agent waits for the platform to stop the deployment"
                .into(),
        ),
        (Lifecycle::Starting, None) => unhealthy("the game server has not been started yet".into()),
        (Lifecycle::Running, None) => unhealthy("the game server is not running".into()),
    }
}

async fn readyz(state: &ApiState) -> Response<ResponseBody> {
    let (ready, lifecycle, child_pid) = {
        let status = state.status.borrow();
        (status.ready, status.lifecycle.clone(), status.child_pid)
    };
    let not_ready = |detail: String| error(StatusCode::SERVICE_UNAVAILABLE, "not ready", detail);
    match (lifecycle, child_pid) {
        (Lifecycle::Starting | Lifecycle::Running | Lifecycle::Ending { .. }, Some(_)) => {}
        (Lifecycle::Starting, None) => {
            return not_ready("the agent is starting: the game server is not running yet".into())
        }
        (other, _) => return not_ready(format!("the agent is {}", other.name())),
    }
    if ready {
        return json_response(StatusCode::OK, &json!({"ready": true, "by": "game"}));
    }
    let Some(ports) = &state.ready_ports else {
        return not_ready("the game has not called POST /v1/ready".into());
    };
    if ports.is_empty() {
        return not_ready(
            "the game has not called POST /v1/ready, and the port mapping has no TCP port to probe"
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

fn players(state: &ApiState) -> Response<ResponseBody> {
    let players = state.players();
    json_response(
        StatusCode::OK,
        &json!({"count": players.len(), "players": &*players}),
    )
}

fn metrics(state: &ApiState) -> Response<ResponseBody> {
    let players = state.players().len();
    let text = state
        .metrics
        .render(&state.status.borrow(), players, state.waiting.len());
    json::with_type(
        StatusCode::OK,
        Bytes::from(text),
        "text/plain; version=0.0.4; charset=utf-8",
    )
}
