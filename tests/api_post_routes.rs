//! In-process tests of the state-changing routes: validation, the commands they send, the
//! body limit, the bearer token, and a supervisor that is gone.

#[allow(dead_code)]
#[path = "support/harness.rs"]
mod harness;

use harness::{harness, harness_with, Harness};

use std::time::Duration;

use edgegap_agent::api::{ApiToken, MAX_BODY_BYTES, MAX_PLAYER_ID_BYTES, MAX_REASON_BYTES};
use edgegap_agent::lifecycle::GameRequest;
use hyper::StatusCode;
use serde_json::json;
use tokio::sync::mpsc;

#[tokio::test(start_paused = true)]
async fn heartbeat_is_sent_and_shows_in_the_status() {
    let mut h = harness().running();
    let answer = h.post("/v1/heartbeat", "").await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(h.supervise(), vec![GameRequest::Heartbeat]);
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
            GameRequest::MatchEnd {
                reason: Some("team red won".into()),
                delay: Some(Duration::from_secs(5))
            },
            GameRequest::MatchEnd {
                reason: None,
                delay: None
            },
            GameRequest::MatchEnd {
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
            GameRequest::PlayerConnected("alice".into()),
            GameRequest::PlayerConnected("bob".into()),
            GameRequest::PlayerDisconnected("alice".into()),
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
async fn reasons_and_ids_have_a_length_limit_and_any_text_within_it() {
    let mut h = harness().running();
    let over = format!(
        r#"{{"reason": "{}"}}"#,
        "é".repeat(MAX_REASON_BYTES / 2 + 1)
    );
    h.post("/v1/match/end", &over)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "at most 512 are accepted");
    assert!(h.supervise().is_empty(), "a refused match end was sent on");
    // Newlines, carriage returns and ANSI escapes are accepted in a reason (the log escapes
    // them): a match end must not fail for its wording.
    let forged = r"won\n[edgegap-agent] ERROR forged\r\u001b[31m";
    let within = format!(
        r#"{{"reason": "{forged}{}"}}"#,
        "x".repeat(MAX_REASON_BYTES - 40)
    );
    let reply = h.post("/v1/match/end", &within).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.json());
    assert_eq!(h.supervise().len(), 1);
    let id = "p".repeat(MAX_PLAYER_ID_BYTES);
    let reply = h
        .post("/v1/players/connect", &format!(r#"{{"id": "{id}"}}"#))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let over = format!(r#"{{"id": "{id}p"}}"#);
    h.post("/v1/players/connect", &over)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "1 to 256 bytes");
    for control in [r"\u001b[2J", r"\r", r"\u0085", r"\u007f"] {
        h.post(
            "/v1/players/connect",
            &format!(r#"{{"id": "a{control}b"}}"#),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "control");
    }
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
    // Exactly at the limit is fine (the reason within its own limit, blanks around it).
    let reason = format!(r#"{{"reason": "{}"}}"#, "x".repeat(MAX_REASON_BYTES));
    let at_limit = format!("{reason}{}", " ".repeat(MAX_BODY_BYTES - reason.len()));
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
    assert_eq!(h.supervise(), vec![GameRequest::Ready]);
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
    drop(h.requests);
    let state = h.state;
    let h = Harness {
        state,
        requests: mpsc::unbounded_channel().1,
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
