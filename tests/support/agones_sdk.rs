//! Helpers of the Agones SDK API tests (`tests/agones_routes.rs`, `tests/agones_state.rs`):
//! the agent with `--agones` around the fake game, one SDK call, and the gateway's error shape.

use std::net::SocketAddr;

use serde_json::{json, Value};

use super::http;
use super::support::{start_with_api, Running};

/// The agent with `--agones` on a free port around the fake game: the agent, its API's
/// address and the Agones SDK's address (from the `AGONES_SDK_HTTP_PORT` the game got).
pub fn start() -> (Running, SocketAddr, SocketAddr) {
    start_with(&[])
}

/// As [`start`], with more options for the agent.
pub fn start_with(agent_args: &[&str]) -> (Running, SocketAddr, SocketAddr) {
    let mut args = vec!["--agones", "--agones-addr", "127.0.0.1:0"];
    args.extend_from_slice(agent_args);
    let (mut agent, api) = start_with_api(&args, &["--print-env", "AGONES_SDK_HTTP_PORT"]);
    let line = agent.wait_line("ENV AGONES_SDK_HTTP_PORT=");
    let port: u16 = line["ENV AGONES_SDK_HTTP_PORT=".len()..].parse().unwrap();
    (agent, api, SocketAddr::from(([127, 0, 0, 1], port)))
}

pub fn sdk(addr: SocketAddr, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let reply = http::call(addr, method, path, &[], body.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (reply.status, reply.json())
}

/// An error in the gateway's shape with this HTTP status and gRPC code.
pub fn assert_error((status, body): (u16, Value), want_status: u16, code: i64) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["details"], json!([]), "{body}");
}
