//! The HTTP/1.1 server and the router: one `match` on the method and the path segments,
//! explicit 404 and 405, `{"message": ...}` error bodies, bodies capped at 1 MiB. Operator
//! routes need `Authorization: token <key>`; the self-stop and context routes check their
//! deployment's own token instead (see `deployments.rs`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;

use super::{apps, bulk, deployments, tags, Emulator};

const BODY_LIMIT: usize = 1024 * 1024;

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: TcpListener, emulator: Arc<Emulator>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                super::say(&format!("cannot accept a connection: {error}"));
                continue;
            }
        };
        let emulator = emulator.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let emulator = emulator.clone();
                async move { Ok::<_, Infallible>(handle(emulator, request).await) }
            });
            // A client that goes away mid-request is not the emulator's problem.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A request, read whole: what handlers see.
pub struct Req {
    pub method: Method,
    pub query: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub body: Bytes,
}

impl Req {
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The body as a JSON object, or a 400 that says what is wrong with it.
    pub fn json_object(&self) -> Result<Map<String, Value>, ApiError> {
        if self.body.is_empty() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        match serde_json::from_slice::<Value>(&self.body) {
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
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// An error response: a status and `{"message": ...}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
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
}

pub type Reply = Result<(StatusCode, Value), ApiError>;

pub fn ok(value: Value) -> Reply {
    Ok((StatusCode::OK, value))
}

async fn handle(emulator: Arc<Emulator>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return respond(Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("cannot read the request body (at most {BODY_LIMIT} bytes): {error}"),
            )))
        }
    };
    let request = Req {
        method: parts.method,
        query: parts.uri.query().map(parse_query).unwrap_or_default(),
        authorization: parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
    };
    let path: Vec<String> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    respond(route(&emulator, &request, &segments).await)
}

async fn route(emulator: &Arc<Emulator>, req: &Req, path: &[&str]) -> Reply {
    use deployments as d;
    let m = &req.method;
    // Routes authorised by a deployment's own token, not the operator's key.
    match path {
        ["v1", "self", "stop", id, point] => {
            return only(m, Method::DELETE).and_then(|_| d::self_stop(emulator, req, id, point))
        }
        ["v1", "context", id, number] => {
            return only(m, Method::GET).and_then(|_| d::context(emulator, req, id, number))
        }
        _ => {}
    }
    check_operator(emulator, req)?;
    match (m.clone(), path) {
        (Method::POST, ["v1", "app"]) => apps::create_app(emulator, req),
        (Method::GET, ["v1", "apps"]) => apps::list_apps(emulator, req),
        (Method::GET, ["v1", "app", app]) => apps::get_app(emulator, app),
        (Method::PATCH, ["v1", "app", app]) => apps::update_app(emulator, req, app),
        (Method::DELETE, ["v1", "app", app]) => apps::delete_app(emulator, app),
        (Method::POST, ["v1", "app", app, "version"]) => apps::create_version(emulator, req, app),
        (Method::GET, ["v1", "app", app, "versions"]) => apps::list_versions(emulator, req, app),
        (Method::GET, ["v1", "app", app, "version", v]) => apps::get_version(emulator, app, v),
        (Method::PATCH, ["v1", "app", app, "version", v]) => {
            apps::update_version(emulator, req, app, v)
        }
        (Method::DELETE, ["v1", "app", app, "version", v]) => {
            apps::delete_version(emulator, app, v)
        }
        (Method::POST, ["v2", "deployments"]) => d::deploy(emulator, req).await,
        (Method::GET, ["v1", "status", id]) => d::status(emulator, id),
        (Method::DELETE, ["v1", "stop", id]) => d::stop(emulator, id),
        (Method::GET, ["v1", "deployments"]) => d::list(emulator, req),
        (Method::POST, ["v1", "deployments", "bulk-stop"]) => bulk::bulk_stop(emulator, req),
        (Method::GET, ["v1", "deployment", id, "container-logs"]) => d::logs(emulator, id),
        (Method::GET, ["v1", "deployments", id, "tags"]) => tags::list_tags(emulator, id),
        (Method::POST, ["v1", "deployments", id, "tags"]) => tags::create_tag(emulator, req, id),
        (Method::GET, ["v1", "deployments", id, "tags", tag]) => tags::get_tag(emulator, id, tag),
        (Method::DELETE, ["v1", "deployments", id, "tags", tag]) => {
            tags::delete_tag(emulator, id, tag)
        }
        (Method::GET, ["v1", "locations"]) => d::locations(),
        (Method::GET, ["emulator", "v1", "deployments", id, "events"]) => d::events(emulator, id),
        (_, path) if known(path) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {m} is not allowed on /{}", path.join("/")),
        )),
        (_, path) => Err(ApiError::not_found(format!(
            "no route /{} (see the emulator's route table)",
            path.join("/")
        ))),
    }
}

/// Whether some method serves this path (for 405 rather than 404).
fn known(path: &[&str]) -> bool {
    matches!(
        path,
        ["v1", "app"]
            | ["v1", "apps"]
            | ["v1", "app", _]
            | ["v1", "app", _, "version"]
            | ["v1", "app", _, "versions"]
            | ["v1", "app", _, "version", _]
            | ["v2", "deployments"]
            | ["v1", "status", _]
            | ["v1", "stop", _]
            | ["v1", "deployments"]
            | ["v1", "deployments", "bulk-stop"]
            | ["v1", "deployment", _, "container-logs"]
            | ["v1", "deployments", _, "tags"]
            | ["v1", "deployments", _, "tags", _]
            | ["v1", "locations"]
            | ["emulator", "v1", "deployments", _, "events"]
    )
}

fn only(method: &Method, allowed: Method) -> Result<(), ApiError> {
    if *method == allowed {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} is not allowed here; use {allowed}"),
        ))
    }
}

fn check_operator(emulator: &Emulator, req: &Req) -> Result<(), ApiError> {
    let expected = format!("token {}", emulator.settings.api_token);
    match &req.authorization {
        Some(given) if same(given, &expected) => Ok(()),
        Some(_) => Err(ApiError::unauthorized(
            "invalid API token: send the header `Authorization: token <key>` with the key the emulator printed or was given with --api-token",
        )),
        None => Err(ApiError::unauthorized(
            "missing Authorization header: send `Authorization: token <key>`",
        )),
    }
}

/// Compares secrets without stopping at the first difference.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn respond(reply: Reply) -> Response<Full<Bytes>> {
    let (status, body) = match reply {
        Ok(ok) => ok,
        Err(error) => (error.status, json!({ "message": error.message })),
    };
    let bytes = if status == StatusCode::NO_CONTENT {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = status;
    if status != StatusCode::NO_CONTENT {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(key),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `?page=&limit=` over `items`: the page's items and the documented pagination object.
pub fn paginate(req: &Req, items: Vec<Value>) -> Result<(Vec<Value>, Value), ApiError> {
    let number = positive(req.query("page"), "page", 1)?;
    let limit = positive(req.query("limit"), "limit", 10)?;
    let count = items.len();
    let num_pages = count.div_ceil(limit).max(1);
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

/// The socket address a webhook or test would use for this emulator.
pub fn base_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}
