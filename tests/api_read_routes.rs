//! In-process tests of the read-only routes and the router's own errors (404, 405), on
//! paused tokio time where time matters.

#[allow(dead_code)]
#[path = "support/harness.rs"]
mod harness;

use harness::{harness, harness_with};

use std::time::Duration;

use tokio::time::Instant;

use edgegap_agent::api::Route;
use edgegap_agent::lifecycle::{GameRequest, Lifecycle};
use edgegap_agent::platform::SelfStopOutcome;
use hyper::StatusCode;
use serde_json::{json, Value};

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
    // The match is over and the game has exited: the agent waits for the platform's stop.
    h.status.send_modify(|s| {
        s.lifecycle = Lifecycle::Ending {
            trigger: "exit_code".into(),
            reason: "the game exited with code 0".into(),
        };
        s.child_pid = None;
    });
    let ending = h.get("/healthz").await;
    ending.assert_error(StatusCode::SERVICE_UNAVAILABLE, "match has ended");
    ending.assert_error(StatusCode::SERVICE_UNAVAILABLE, "game server has exited");
    assert!(!ending.text.contains("not been started"), "{}", ending.text);
    h.status.send_modify(|s| {
        s.lifecycle = Lifecycle::stopping_at(Instant::now() + Duration::from_secs(5))
    });
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
    assert_eq!(h.supervise(), vec![GameRequest::Ready]);
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

    h.status.send_modify(|s| {
        s.lifecycle = Lifecycle::stopping_at(Instant::now() + Duration::from_secs(3))
    });
    tokio::time::advance(Duration::from_millis(1200)).await;
    let body = h.get("/v1/status").await.json();
    assert_eq!(body["state"], "stopping");
    assert_eq!(body["ms_left"], 1800);
    assert!(body["deadline_unix_ms"].as_u64().unwrap() > 1_600_000_000_000);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(h.get("/v1/status").await.json()["ms_left"], 0);
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
async fn metrics_are_prometheus_text_with_bounded_labels() {
    let h = harness().running();
    h.get("/healthz").await;
    h.get("/healthz").await;
    h.get("/v1/whatever-a").await;
    h.get("/v1/whatever-b").await;
    h.post("/v1/players/connect", r#"{"id": "p"}"#).await;
    h.status.send_modify(|s| s.restarts = 2);
    h.state
        .metrics
        .record_self_stop(&SelfStopOutcome::Accepted {
            status: 200,
            attempts: 2,
        });
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
