//! The in-process harness of the handler tests: requests built in memory and handed to the
//! router (`api::handle`); the test plays the supervisor, receiving the game's requests and
//! publishing the status.

use std::sync::Arc;

use edgegap_agent::api::{handle, ApiState, ApiToken, Metrics};
use edgegap_agent::lifecycle::{AgentStatus, GameRequest, Lifecycle};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

pub struct Harness {
    pub state: ApiState,
    pub requests: mpsc::UnboundedReceiver<GameRequest>,
    pub status: watch::Sender<AgentStatus>,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    /// Every error body is `{"error", "detail"}`, both non-empty strings.
    pub fn assert_error(&self, status: StatusCode, detail_contains: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        let body = self.json();
        assert!(!body["error"].as_str().unwrap().is_empty(), "{body}");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains(detail_contains),
            "{detail:?} lacks {detail_contains:?}"
        );
        assert_eq!(self.headers["content-type"], "application/json");
    }
}

pub fn harness_with(
    token: Option<&str>,
    ready_ports: Option<Vec<u16>>,
    deployment: Value,
) -> Harness {
    let (request_tx, requests) = mpsc::unbounded_channel();
    let (status, status_rx) = watch::channel(AgentStatus::starting());
    let state = ApiState::new(
        request_tx,
        status_rx,
        deployment,
        token.map(|t| ApiToken::new(t.to_owned())),
        ready_ports,
        Arc::new(Metrics::default()),
    );
    Harness {
        state,
        requests,
        status,
    }
}

pub fn harness() -> Harness {
    harness_with(None, None, json!({"mode": "local"}))
}

impl Harness {
    pub fn running(self) -> Self {
        self.status.send_modify(|s| {
            s.lifecycle = Lifecycle::Running;
            s.child_pid = Some(42);
        });
        self
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body)))
            .unwrap();
        let response = handle(request, &self.state).await;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            text: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, &[], b"").await
    }

    pub async fn post(&self, path: &str, body: &str) -> Answer {
        self.call("POST", path, &[], body.as_bytes()).await
    }

    /// The supervisor's part: applies every request sent so far to the status, as the
    /// lifecycle machine would publish it, and returns them.
    pub fn supervise(&mut self) -> Vec<GameRequest> {
        let mut received = Vec::new();
        while let Ok(request) = self.requests.try_recv() {
            self.status.send_modify(|s| match &request {
                GameRequest::Ready => s.ready = true,
                GameRequest::Heartbeat => s.last_heartbeat = Some(tokio::time::Instant::now()),
                GameRequest::MatchEnd { reason, .. } => {
                    *s = s.clone().with_match_ended_by_game(reason.as_deref())
                }
                GameRequest::PlayerConnected(_) => s.players += 1,
                GameRequest::PlayerDisconnected(_) => s.players = s.players.saturating_sub(1),
            });
            received.push(request);
        }
        received
    }
}
