//! In-process tests of every route and error: requests are built in memory and handed to the
//! router (`api::handle`); the supervisor's side is played by the test, which receives the
//! commands and publishes the status. Time-dependent fields run on paused tokio time.

use std::sync::Arc;
use std::time::Duration;

use edgegap_agent::api::{
    handle, AgentStatus, ApiCommand, ApiState, ApiToken, Lifecycle, Metrics, Route,
    SelfStopAttempt, MAX_BODY_BYTES,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

struct Harness {
    state: ApiState,
    commands: mpsc::UnboundedReceiver<ApiCommand>,
    status: watch::Sender<AgentStatus>,
}

struct Answer {
    status: StatusCode,
    headers: hyper::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    /// Every error body is `{"error", "detail"}`, both non-empty strings.
    fn assert_error(&self, status: StatusCode, detail_contains: &str) {
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

fn harness_with(token: Option<&str>, ready_ports: Option<Vec<u16>>, deployment: Value) -> Harness {
    let (command_tx, commands) = mpsc::unbounded_channel();
    let (status, status_rx) = watch::channel(AgentStatus::starting());
    let state = ApiState::new(
        command_tx,
        status_rx,
        deployment,
        token.map(|t| ApiToken::new(t.to_owned())),
        ready_ports,
        Arc::new(Metrics::default()),
    );
    Harness {
        state,
        commands,
        status,
    }
}

fn harness() -> Harness {
    harness_with(None, None, json!({"mode": "local"}))
}

impl Harness {
    fn running(self) -> Self {
        self.status.send_modify(|s| {
            s.lifecycle = Lifecycle::Running;
            s.child_pid = Some(42);
        });
        self
    }

    async fn call(
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

    async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, &[], b"").await
    }

    async fn post(&self, path: &str, body: &str) -> Answer {
        self.call("POST", path, &[], body.as_bytes()).await
    }

    /// The supervisor's part: applies every command sent so far and returns them.
    fn supervise(&mut self) -> Vec<ApiCommand> {
        let mut received = Vec::new();
        while let Ok(command) = self.commands.try_recv() {
            self.status.send_modify(|s| s.apply(&command));
            received.push(command);
        }
        received
    }
}

#[tokio::test]
async fn healthz_follows_the_lifecycle() {
    let h = harness();
    h.get("/healthz")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "not been started");
    let h = h.running();
    let ok = h.get("/healthz").await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(
        ok.json(),
        json!({"status": "ok", "state": "running", "child_pid": 42})
    );
    h.status
        .send_modify(|s| s.lifecycle = Lifecycle::stopping_in(Duration::from_secs(5)));
    h.get("/healthz")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "being stopped");
    h.status
        .send_modify(|s| s.lifecycle = Lifecycle::Exited { code: 3 });
    h.get("/healthz")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "code 3");
}

#[tokio::test]
async fn readyz_waits_for_the_game_to_say_so() {
    let mut h = harness();
    h.get("/readyz")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "starting");
    h = h.running();
    h.get("/readyz")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "POST /v1/ready");
    assert_eq!(h.post("/v1/ready", "").await.status, StatusCode::ACCEPTED);
    assert_eq!(h.supervise(), vec![ApiCommand::Ready]);
    let ready = h.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json(), json!({"ready": true, "by": "game"}));
}

#[tokio::test]
async fn readyz_on_ports_needs_every_port_to_accept() {
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let h = harness_with(None, Some(vec![open_port]), json!({})).running();
    let ready = h.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(
        ready.json(),
        json!({"ready": true, "by": "ports", "ports": [open_port]})
    );

    let h = harness_with(None, Some(vec![open_port, closed_port]), json!({})).running();
    h.get("/readyz")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, &closed_port.to_string());

    let h = harness_with(None, Some(vec![]), json!({})).running();
    h.get("/readyz")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "no TCP port");
}

#[tokio::test]
async fn deployment_is_served_as_given_without_tokens() {
    let context = json!({
        "request_id": "c0653765de3b",
        "public_ip": "100.10.0.85",
        "ports": [{"name": "gameport", "internal": 7777, "external": 31669,
                   "protocol": "UDP", "join": "100.10.0.85:31669"}],
        "delete_token": "secret-1",
        "nested": {"context_TOKEN": "secret-2", "tags": ["a"]},
    });
    let h = harness_with(None, None, context);
    let answer = h.get("/v1/deployment").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(!answer.text.contains("secret"), "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["ports"][0]["join"], "100.10.0.85:31669");
    assert_eq!(body["nested"], json!({"tags": ["a"]}));
}

#[tokio::test(start_paused = true)]
async fn status_reports_uptime_and_the_time_left_before_the_kill() {
    let h = harness().running();
    tokio::time::advance(Duration::from_secs(5)).await;
    let body = h.get("/v1/status").await.json();
    assert_eq!(body["state"], "running");
    assert_eq!(body["child_pid"], 42);
    assert_eq!(body["uptime_ms"], 5000);
    assert_eq!(body["restarts"], 0);
    assert_eq!(body["ready"], false);
    assert_eq!(body["self_stop"], Value::Null);
    assert!(body.get("ms_left").is_none());

    h.status
        .send_modify(|s| s.lifecycle = Lifecycle::stopping_in(Duration::from_secs(3)));
    tokio::time::advance(Duration::from_millis(1200)).await;
    let body = h.get("/v1/status").await.json();
    assert_eq!(body["state"], "stopping");
    assert_eq!(body["ms_left"], 1800);
    assert!(body["deadline_unix_ms"].as_u64().unwrap() > 1_600_000_000_000);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(h.get("/v1/status").await.json()["ms_left"], 0);
}

#[tokio::test(start_paused = true)]
async fn heartbeat_is_sent_and_shows_in_the_status() {
    let mut h = harness().running();
    let answer = h.post("/v1/heartbeat", "").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(h.supervise(), vec![ApiCommand::Heartbeat]);
    tokio::time::advance(Duration::from_millis(700)).await;
    assert_eq!(
        h.get("/v1/status").await.json()["last_heartbeat_ms_ago"],
        700
    );
    h.post("/v1/heartbeat", "{not json")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "not the expected JSON");
    assert!(h.supervise().is_empty());
}

#[tokio::test]
async fn match_end_sends_reason_and_delay_and_answers_202_every_time() {
    let mut h = harness().running();
    let first = h
        .post(
            "/v1/match/end",
            r#"{"reason": "team red won", "delay": "5s"}"#,
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let body = first.json();
    assert_eq!(body["status"]["state"], "ending");
    assert_eq!(body["status"]["reason"], "team red won");
    let second = h.post("/v1/match/end", "").await;
    assert_eq!(second.status, StatusCode::ACCEPTED);
    let third = h.post("/v1/match/end", r#"{"delay": 2.5}"#).await;
    assert_eq!(third.status, StatusCode::ACCEPTED);
    assert_eq!(
        h.supervise(),
        vec![
            ApiCommand::MatchEnd {
                reason: Some("team red won".into()),
                delay: Some(Duration::from_secs(5))
            },
            ApiCommand::MatchEnd {
                reason: None,
                delay: None
            },
            ApiCommand::MatchEnd {
                reason: None,
                delay: Some(Duration::from_millis(2500))
            },
        ]
    );
    // The first reason stays.
    let status = h.get("/v1/status").await.json();
    assert_eq!(
        (status["state"].as_str(), status["reason"].as_str()),
        (Some("ending"), Some("team red won"))
    );
}

#[tokio::test]
async fn match_end_refuses_bad_bodies_and_says_why() {
    let mut h = harness().running();
    h.post("/v1/match/end", r#"{"delay": "soon"}"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "\"soon\" is not a duration");
    h.post("/v1/match/end", r#"{"delay": -1}"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "-1");
    h.post("/v1/match/end", r#"{"delay": [1]}"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "`delay` must be");
    h.post("/v1/match/end", r#"{"reson": "typo"}"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "unknown field `reson`");
    h.post("/v1/match/end", r#"{"reason": 5}"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid type");
    h.post("/v1/match/end", r#"{"reason": "x""#)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "EOF");
    assert!(h.supervise().is_empty());
}

#[tokio::test]
async fn players_connect_is_idempotent_and_disconnect_of_an_unknown_id_is_404() {
    let mut h = harness().running();
    let a = h.post("/v1/players/connect", r#"{"id": "alice"}"#).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json(),
        json!({"id": "alice", "connected": true, "new": true, "count": 1})
    );
    let again = h.post("/v1/players/connect", r#"{"id": "alice"}"#).await;
    assert_eq!(
        again.json(),
        json!({"id": "alice", "connected": true, "new": false, "count": 1})
    );
    h.post("/v1/players/connect", r#"{"id": "bob"}"#).await;
    assert_eq!(
        h.get("/v1/players").await.json(),
        json!({"count": 2, "players": ["alice", "bob"]})
    );

    let gone = h.post("/v1/players/disconnect", r#"{"id": "alice"}"#).await;
    assert_eq!(
        gone.json(),
        json!({"id": "alice", "connected": false, "count": 1})
    );
    h.post("/v1/players/disconnect", r#"{"id": "alice"}"#)
        .await
        .assert_error(StatusCode::NOT_FOUND, "\"alice\"");
    assert_eq!(
        h.supervise(),
        vec![
            ApiCommand::PlayerConnected("alice".into()),
            ApiCommand::PlayerConnected("bob".into()),
            ApiCommand::PlayerDisconnected("alice".into()),
        ]
    );
    assert_eq!(h.get("/v1/status").await.json()["players"], 1);
}

#[tokio::test]
async fn players_refuse_missing_or_invalid_ids() {
    let h = harness().running();
    h.post("/v1/players/connect", "")
        .await
        .assert_error(StatusCode::BAD_REQUEST, r#"{"id": "<player id>"}"#);
    h.post("/v1/players/connect", r#"{"id": ""}"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "1 to 256 bytes");
    h.post("/v1/players/connect", r#"{"id": "a\nb"}"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "control");
    let long = format!(r#"{{"id": "{}"}}"#, "x".repeat(257));
    h.post("/v1/players/connect", &long)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "256");
    h.post("/v1/players/disconnect", r#"{"name": "a"}"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "unknown field `name`");
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
    let h = harness().running();
    h.get("/v1/nope")
        .await
        .assert_error(StatusCode::NOT_FOUND, "/v1/nope");
    h.post("/", "")
        .await
        .assert_error(StatusCode::NOT_FOUND, "no route /");
    let wrong = h.get("/v1/ready").await;
    wrong.assert_error(StatusCode::METHOD_NOT_ALLOWED, "accepts POST, not GET");
    assert_eq!(wrong.headers["allow"], "POST");
    let wrong = h.call("DELETE", "/healthz", &[], b"").await;
    wrong.assert_error(StatusCode::METHOD_NOT_ALLOWED, "accepts GET, not DELETE");
    assert_eq!(wrong.headers["allow"], "GET");
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_with_or_without_content_length() {
    let mut h = harness().running();
    let big = format!(r#"{{"reason": "{}"}}"#, "x".repeat(MAX_BODY_BYTES));
    h.post("/v1/match/end", &big)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "65536 bytes");
    let declared = (MAX_BODY_BYTES + 1).to_string();
    h.call(
        "POST",
        "/v1/ready",
        &[("content-length", &declared)],
        &vec![b' '; MAX_BODY_BYTES + 1],
    )
    .await
    .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "limited");
    // Exactly at the limit is fine.
    let at_limit = format!(r#"{{"reason": "{}"}}"#, "x".repeat(MAX_BODY_BYTES - 14));
    assert_eq!(at_limit.len(), MAX_BODY_BYTES);
    assert_eq!(
        h.post("/v1/match/end", &at_limit).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(h.supervise().len(), 1);
}

#[tokio::test]
async fn a_token_guards_post_routes_only_and_is_never_echoed() {
    let mut h = harness_with(Some("s3cr3t-token"), None, json!({})).running();
    for path in [
        "/v1/ready",
        "/v1/heartbeat",
        "/v1/match/end",
        "/v1/players/connect",
        "/v1/players/disconnect",
    ] {
        let refused = h.post(path, r#"{"id": "a"}"#).await;
        refused.assert_error(StatusCode::UNAUTHORIZED, "Authorization: Bearer");
        assert_eq!(refused.headers["www-authenticate"], "Bearer");
    }
    let cases: [(&str, &str); 4] = [
        ("Bearer wrong", "not the one"),
        ("Bearer s3cr3t-tokenX", "not the one"),
        ("Basic s3cr3t-token", "not of the form"),
        ("s3cr3t-token", "not of the form"),
    ];
    for (header, detail) in cases {
        let refused = h
            .call("POST", "/v1/ready", &[("authorization", header)], b"")
            .await;
        refused.assert_error(StatusCode::UNAUTHORIZED, detail);
        assert!(!refused.text.contains("s3cr3t"), "{}", refused.text);
    }
    assert!(h.supervise().is_empty());
    let ok = h
        .call(
            "POST",
            "/v1/ready",
            &[("authorization", "bearer s3cr3t-token")],
            b"",
        )
        .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED);
    assert_eq!(h.supervise(), vec![ApiCommand::Ready]);
    for path in [
        "/healthz",
        "/readyz",
        "/v1/deployment",
        "/v1/status",
        "/v1/players",
        "/metrics",
    ] {
        let open = h.get(path).await;
        assert_eq!(open.status, StatusCode::OK, "{path}: {}", open.text);
        assert!(!open.text.contains("s3cr3t"));
    }
    assert_eq!(
        format!("{:?}", ApiToken::new("s3cr3t".into())),
        "ApiToken(<redacted>)"
    );
}

#[tokio::test]
async fn post_routes_answer_503_once_the_supervisor_is_gone() {
    let h = harness().running();
    drop(h.commands);
    let state = h.state;
    let h = Harness {
        state,
        commands: mpsc::unbounded_channel().1,
        status: h.status,
    };
    h.post("/v1/ready", "")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "exiting");
    h.post("/v1/players/connect", r#"{"id": "a"}"#)
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "exiting");
    assert_eq!(h.get("/v1/players").await.json()["count"], 0);
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_bounded_labels() {
    let h = harness().running();
    h.get("/healthz").await;
    h.get("/healthz").await;
    h.get("/v1/whatever-a").await;
    h.get("/v1/whatever-b").await;
    h.post("/v1/players/connect", r#"{"id": "p"}"#).await;
    h.status.send_modify(|s| s.restarts = 2);
    h.state.metrics.record_self_stop(SelfStopAttempt::Retryable);
    h.state.metrics.record_self_stop(SelfStopAttempt::Accepted);
    let answer = h.get("/metrics").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = answer.text;
    for line in [
        "# TYPE edgegap_agent_uptime_seconds gauge",
        "# TYPE edgegap_agent_child_restarts_total counter",
        "edgegap_agent_child_restarts_total 2",
        "# TYPE edgegap_agent_self_stop_attempts_total counter",
        "edgegap_agent_self_stop_attempts_total{outcome=\"retryable_error\"} 1",
        "edgegap_agent_self_stop_attempts_total{outcome=\"accepted\"} 1",
        "edgegap_agent_self_stop_attempts_total{outcome=\"fatal_error\"} 0",
        "# TYPE edgegap_agent_api_requests_total counter",
        "edgegap_agent_api_requests_total{route=\"healthz\",code=\"200\"} 2",
        "edgegap_agent_api_requests_total{route=\"unknown\",code=\"404\"} 2",
        "edgegap_agent_api_requests_total{route=\"players_connect\",code=\"200\"} 1",
        "edgegap_agent_players_connected 1",
        "edgegap_agent_lifecycle_state{state=\"running\"} 1",
        "edgegap_agent_lifecycle_state{state=\"stopping\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(!text.contains("whatever"));
    // Every sample line belongs to a metric announced with HELP and TYPE.
    for sample in text.lines().filter(|l| !l.starts_with('#')) {
        let name = sample.split(['{', ' ']).next().unwrap();
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} has no TYPE"
        );
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no HELP"
        );
    }
    assert_eq!(h.state.metrics.requests(Route::Healthz, 200), 2);
}
