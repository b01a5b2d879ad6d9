//! Arbitrary bytes as one HTTP request to the local API, answered in-process by the real
//! router (`api::handle`) against a fresh `ApiState`, as tests/support/harness.rs does (no
//! socket: hyper's own parser is not under test, the agent's routing and body handling are).
//!
//! Input layout (`seeds/api_request/` has readable examples):
//!
//! | byte | meaning |
//! |------|---------|
//! | 0    | method: an index into `METHODS` (past it: the method is the first line of the rest) |
//! | 1    | path: an index into `PATHS` (past it: the next line of the rest, raw, as the URI) |
//! | 2    | state: bits 0-2 the lifecycle, 3 a child pid, 4 `--api-token s3cret`, 5 `--ready-on-ports` with no port, 6 the supervisor gone, 7 the game said ready |
//! | 3    | body: bits 0-1 one frame / many frames / frames then an error / repeated past the 64 KiB limit; bits 2-6 the frame size; bit 7 player `p1` already connected |
//! | ...  | `name: value` header lines up to an empty line, then the body |
//!
//! It asserts that the handler never panics, and that every response has an expected status,
//! a `content-type`, a JSON body (Prometheus text for `GET /metrics`), and for every error a
//! JSON object with non-empty `error` and `detail` strings; that the deployment is served
//! without its token; that 404 is exactly an unknown
//! path and 405 a known path with another method (with `Allow`); that a POST route refuses a
//! request without the token when one is set (401 with `WWW-Authenticate`); that an error or
//! a GET sends no request to the supervisor, and a 202 exactly one.
#![no_main]

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use edgegap_agent::api::{handle, ApiState, ApiToken, Metrics, Route, MAX_BODY_BYTES};
use edgegap_agent::lifecycle::{AgentStatus, Lifecycle};
use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame};
use hyper::header::{HeaderName, HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE};
use hyper::header::{CONTENT_LENGTH, WWW_AUTHENTICATE};
use hyper::{Method, Request, StatusCode, Uri};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, watch};

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"];

const PATHS: &[&str] = &[
    "/healthz",
    "/readyz",
    "/v1/deployment",
    "/v1/status",
    "/v1/ready",
    "/v1/heartbeat",
    "/v1/match/end",
    "/v1/players/connect",
    "/v1/players/disconnect",
    "/v1/players",
    "/metrics",
    "/v1/players?x=1",
    "http://127.0.0.1:7070/v1/status",
    "*",
    "/v1/events",
    "/v1/status?wait=30s&after=1",
    "/v1/status?wait=5m",
];

const TOKEN: &str = "s3cret";

/// Statuses the API may answer with.
const STATUSES: &[u16] = &[200, 202, 400, 401, 404, 405, 413, 503];

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        // Paused time: a long poll's wait passes at once when nothing else can happen.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime")
    })
}

/// A request body given as frames, optionally ending in a read error.
struct FuzzBody {
    frames: VecDeque<Bytes>,
    fail_at_end: bool,
}

impl Body for FuzzBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(data) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if std::mem::take(&mut self.fail_at_end) {
            return Poll::Ready(Some(Err(io::Error::other("connection reset by fuzzer"))));
        }
        Poll::Ready(None)
    }
}

/// Splits off the first line (without its `\n`).
fn line(rest: &[u8]) -> (&[u8], &[u8]) {
    match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[]),
    }
}

fn lifecycle(bits: u8) -> Lifecycle {
    match bits & 7 {
        1 => Lifecycle::Running,
        2 => Lifecycle::Restarting,
        3 => Lifecycle::Ending {
            trigger: "api".into(),
            reason: "fuzz".into(),
        },
        4 => Lifecycle::stopping_at(tokio::time::Instant::now() + Duration::from_secs(5)),
        5 => Lifecycle::Exited { code: 3 },
        _ => Lifecycle::Starting,
    }
}

fn body(mode: u8, bytes: &[u8]) -> FuzzBody {
    let size = usize::from((mode >> 2) & 31) + 1;
    let mut frames: VecDeque<Bytes> = match mode & 3 {
        0 => VecDeque::from([Bytes::copy_from_slice(bytes)]),
        3 => {
            // In chunks of at least 4 KiB, so a short body does not make 64 Ki frames.
            let unit = if bytes.is_empty() { &b"x"[..] } else { bytes };
            let chunk = Bytes::from(unit.repeat(4096usize.div_ceil(unit.len())));
            let count = MAX_BODY_BYTES / chunk.len() + 1;
            std::iter::repeat_n(chunk, count).collect()
        }
        _ => bytes.chunks(size).map(Bytes::copy_from_slice).collect(),
    };
    frames.retain(|f| !f.is_empty());
    FuzzBody {
        frames,
        fail_at_end: mode & 3 == 2,
    }
}

/// What `authorize` should decide, computed independently.
fn authorized(token: bool, header: Option<&HeaderValue>) -> bool {
    if !token {
        return true;
    }
    let Some(offered) = header.map(HeaderValue::as_bytes) else {
        return false;
    };
    offered.len() >= 7
        && offered[..7].eq_ignore_ascii_case(b"bearer ")
        && &offered[7..] == TOKEN.as_bytes()
}

fuzz_target!(|data: &[u8]| {
    let [method_sel, path_sel, state_bits, body_mode, rest @ ..] = data else {
        return;
    };
    let (method, rest) = match METHODS.get(usize::from(*method_sel)) {
        Some(m) => (m.as_bytes(), rest),
        None => line(rest),
    };
    let (uri, rest) = match PATHS.get(usize::from(*path_sel)) {
        Some(p) => (p.as_bytes(), rest),
        None => line(rest),
    };
    // What hyper's parser would refuse never reaches the router.
    let (Ok(method), Ok(uri)) = (Method::from_bytes(method), Uri::try_from(uri)) else {
        return;
    };
    let mut request = Request::builder().method(method.clone()).uri(uri.clone());
    let mut rest = rest;
    loop {
        let (header, after) = line(rest);
        rest = after;
        if header.is_empty() {
            break;
        }
        let Some(colon) = header.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header[..colon].trim_ascii()),
            HeaderValue::from_bytes(header[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        request = request.header(name, value);
    }
    let Ok(request) = request.body(body(*body_mode, rest)) else {
        return;
    };
    let auth = request.headers().get(AUTHORIZATION).cloned();
    let declared_too_large = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES as u64);

    let token = state_bits & 0x10 != 0;
    let (request_tx, mut requests) = mpsc::unbounded_channel();
    let mut status = AgentStatus::starting();
    status.lifecycle = lifecycle(*state_bits);
    status.child_pid = (state_bits & 0x08 != 0).then_some(42);
    status.ready = state_bits & 0x80 != 0;
    let (_status_tx, status_rx) = watch::channel(status);
    let state = ApiState::new(
        request_tx,
        status_rx,
        json!({"mode": "local", "delete_token": "secret"}),
        token.then(|| ApiToken::new(TOKEN.to_owned())),
        (state_bits & 0x20 != 0).then(Vec::new),
        Arc::new(Metrics::default()),
    );
    if body_mode & 0x80 != 0 {
        state.players().insert("p1".to_owned());
    }
    let supervisor_gone = state_bits & 0x40 != 0;
    if supervisor_gone {
        requests.close();
    }

    let (route, allow) = Route::from_path(uri.path());
    let response = runtime().block_on(handle(request, &state));
    let (parts, mut body) = response.into_parts();
    let code = parts.status;
    let streamed = parts.headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes)
        == Some(b"application/x-ndjson");
    if streamed {
        // The event stream never ends: its first line is the status now.
        assert!(route == Route::Events && code == StatusCode::OK, "{code}");
        let frame = runtime().block_on(body.frame()).expect("a first line");
        let line = frame.expect("a line").into_data().expect("data");
        assert!(line.ends_with(b"\n"));
        let value: Value = serde_json::from_slice(&line).expect("a JSON line");
        assert!(value["version"].is_u64(), "{value}");
        return;
    }
    let bytes = runtime()
        .block_on(body.collect())
        .expect("a whole body")
        .to_bytes();

    assert!(STATUSES.contains(&code.as_u16()), "unexpected {code}");
    let content_type = parts.headers.get(CONTENT_TYPE).expect("a content-type");
    if route == Route::Metrics && code == StatusCode::OK {
        assert!(content_type.as_bytes().starts_with(b"text/plain"));
        assert!(std::str::from_utf8(&bytes).is_ok());
    } else {
        assert_eq!(content_type, "application/json", "{code}");
        let value: Value = serde_json::from_slice(&bytes).expect("a JSON body");
        if code.is_client_error() || code.is_server_error() {
            for field in ["error", "detail"] {
                let text = value[field].as_str().expect("error and detail strings");
                assert!(!text.is_empty(), "empty {field}: {value}");
            }
        }
        if route == Route::Deployment && code == StatusCode::OK {
            assert_eq!(value, json!({"mode": "local"}), "a token leaked");
        }
    }

    let post_route = allow == "POST";
    if route == Route::Unknown {
        assert_eq!(code, StatusCode::NOT_FOUND);
    } else if method.as_str() != allow {
        assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(parts.headers.get(ALLOW).expect("an Allow header"), allow);
    } else if post_route && !authorized(token, auth.as_ref()) {
        assert_eq!(code, StatusCode::UNAUTHORIZED);
        assert_eq!(parts.headers[WWW_AUTHENTICATE], "Bearer");
    } else if post_route && (declared_too_large || body_mode & 3 == 3) {
        assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    } else if post_route && body_mode & 3 == 2 {
        assert!(matches!(code.as_u16(), 400 | 413), "{code}");
    } else if code == StatusCode::UNAUTHORIZED {
        panic!("401 on an authorized request");
    }

    let mut sent = 0;
    while requests.try_recv().is_ok() {
        sent += 1;
    }
    if !code.is_success() || !post_route {
        assert_eq!(sent, 0, "{code} sent requests");
    }
    if code == StatusCode::ACCEPTED {
        assert_eq!(sent, 1);
        assert!(!supervisor_gone);
    }
    assert!(sent <= 1);
});
