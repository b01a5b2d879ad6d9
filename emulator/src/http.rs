//! The HTTP layer, on axum: the route table (`routes`), the operator key check, the
//! documented `{"message": ...}` error body on every error (axum's own rejections included),
//! bodies capped at 1 MiB, query strings through serde, and the pagination object.
//!
//! axum replaced a hand-written `match` on path segments and a hand-written query decoder:
//! the emulator serves more than thirty routes, and a router keeps "unknown path → 404
//! whatever the credentials, wrong method → 405, operator key only on served routes" true by
//! construction (`route_layer` runs the key check only once a route matched).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

use super::{
    apps, bulk, deploy, deployments, emulator_routes, fleets, listing, metrics, registry, tags,
    Emulator,
};

pub const BODY_LIMIT: usize = 1024 * 1024;

/// The emulator's state, as handlers take it.
pub type Emu = State<Arc<Emulator>>;

/// An error answer: a status, `{"message": ...}`, and any extra headers (`Retry-After`).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            headers: Vec::new(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = reply(self.status, json!({ "message": self.message }));
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// What a handler answers.
pub type Answer = Result<Response, ApiError>;

/// `status` with `body` as JSON.
pub fn reply(status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// 200 with `body`.
pub fn ok(body: Value) -> Answer {
    Ok(reply(StatusCode::OK, body))
}

/// A status with no body (documented "No content" answers).
pub fn empty(status: StatusCode) -> Answer {
    Ok(status.into_response())
}

/// The body as a JSON object, or a 400 that says what is wrong with it.
pub fn object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::bad_request(format!(
            "the request body must be a JSON object, got {}",
            kind(&other)
        ))),
        Err(error) => Err(ApiError::bad_request(format!(
            "the request body is not valid JSON: {error}"
        ))),
    }
}

pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A query string decoded by serde, or a 400 that names the problem.
pub fn query<T>(extracted: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    extracted
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {}", e.body_text())))
}

/// `?page=&limit=` as sent (validated by [`paginate`], with messages that name the value).
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub page: Option<String>,
    pub limit: Option<String>,
}

/// `?page=&limit=` over `items`: the page's items and the documented pagination object.
pub fn paginate(q: &PageQuery, items: Vec<Value>) -> Result<(Vec<Value>, Value), ApiError> {
    let number = positive(q.page.as_deref(), "page", 1)?;
    let limit = positive(q.limit.as_deref(), "limit", 10)?;
    let num_pages = items.len().div_ceil(limit).max(1);
    let page: Vec<Value> = items
        .into_iter()
        .skip((number - 1).saturating_mul(limit))
        .take(limit)
        .collect();
    let pagination = json!({
        "number": number,
        "next_page_number": if number < num_pages { Some(number + 1) } else { None },
        "previous_page_number": if number > 1 { Some(number - 1) } else { None },
        "paginator": { "num_pages": num_pages },
        "has_next": number < num_pages,
        "has_previous": number > 1,
    });
    Ok((page, pagination))
}

fn positive(value: Option<&str>, name: &str, default: usize) -> Result<usize, ApiError> {
    match value {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "{name}: must be a positive integer, got {text:?}"
            ))),
        },
    }
}

/// The raw `authorization` header.
pub fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// Compares secrets without stopping at the first difference.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The operator key check: `Authorization: token <key>`. Only served routes run it.
async fn require_key(State(emulator): Emu, request: Request, next: Next) -> Response {
    let expected = format!("token {}", emulator.settings.api_token);
    match authorization(request.headers()) {
        Some(given) if same(given, &expected) => next.run(request).await,
        Some(_) => ApiError::unauthorized(
            "invalid API token: send the header `Authorization: token <key>` with the key the emulator printed or was given with --api-token",
        )
        .into_response(),
        None => ApiError::unauthorized(
            "missing Authorization header: send `Authorization: token <key>`",
        )
        .into_response(),
    }
}

/// Every error answer carries the documented `{"message": ...}` body, axum's own rejections
/// (405, 413, a malformed path) included.
async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let detail = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => format!("method {method} is not allowed on {path}"),
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "cannot read the request body: at most {BODY_LIMIT} bytes are accepted ({detail})"
        ),
        _ if detail.is_empty() => format!("{status} on {method} {path}"),
        _ => detail,
    };
    ApiError::new(status, message).into_response()
}

async fn no_route(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route {} (see the emulator's route table in the README)",
        request.uri().path()
    ))
}

/// Every route. Operator routes need the key; the self-stop and context routes check their
/// deployment's own token (in their handlers); anything else is 404 whatever the credentials.
pub fn routes(emulator: Arc<Emulator>) -> Router {
    let operator = Router::new()
        .route("/v1/app", post(apps::create_app))
        .route("/v1/apps", get(apps::list_apps))
        .route(
            "/v1/app/{app}",
            get(apps::get_app)
                .patch(apps::update_app)
                .delete(apps::delete_app),
        )
        .route("/v1/app/{app}/version", post(apps::create_version))
        .route("/v1/app/{app}/versions", get(apps::list_versions))
        .route(
            "/v1/app/{app}/version/{version}",
            get(apps::get_version)
                .patch(apps::update_version)
                .delete(apps::delete_version),
        )
        .route(
            "/v1/container-registry/images/{*rest}",
            get(registry::get_route)
                .delete(registry::delete_route)
                .post(registry::post_route),
        )
        .route("/v2/deployments", post(deploy::deploy_v2))
        .route("/v1/deploy", post(deploy::deploy_v1))
        .route("/v2/private-fleets:deploy", post(deploy::deploy_private))
        .route("/v2/private-fleets/{fleet}/hosts", get(fleets::hosts))
        .route("/v1/status/{id}", get(deployments::status))
        .route("/v1/stop/{id}", delete(deployments::stop))
        .route("/v1/deployments", get(listing::list))
        .route("/v1/deployments/bulk-stop", post(bulk::bulk_stop))
        .route(
            "/v1/deployment/{id}/container-logs",
            get(deployments::container_logs),
        )
        .route("/v1/metrics/deployment/{id}", get(metrics::deployment))
        .route(
            "/v1/deployments/{id}/tags",
            get(tags::list_tags).post(tags::create_tag),
        )
        .route(
            "/v1/deployments/{id}/tags/{tag}",
            get(tags::get_tag)
                .patch(tags::update_tag)
                .delete(tags::delete_tag),
        )
        .route("/v1/locations", get(listing::locations))
        .merge(emulator_routes::routes())
        .route_layer(middleware::from_fn_with_state(
            emulator.clone(),
            require_key,
        ));
    let deployment_token = Router::new()
        .route(
            "/v1/self/stop/{id}/{access_point}",
            delete(deployments::self_stop),
        )
        .route("/v1/context/{id}/{number}", get(deployments::context));
    Router::new()
        .merge(operator)
        .merge(deployment_token)
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(json_errors))
        .with_state(emulator)
}

/// Serves `router` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, router: Router) {
    if let Err(error) = axum::serve(listener, router).await {
        super::say(&format!("the API server stopped: {error}"));
    }
}

/// The base URL a deployment or webhook would use for this emulator.
pub fn base_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
