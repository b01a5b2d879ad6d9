//! Black-box tests of the API with the real binary and the fake game calling it: the API is up
//! before the game, the token reaches the game, the API answers during the grace period, the
//! default address is loopback, a taken address the user gave stops everything with 64 (a
//! taken default gives way: `api_safety.rs`), and the API holds
//! 10,000 requests from 64 connections while signals still reach the game promptly.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::{agent_command, start_with_api, wait_until, AGENT, FAKE_GAME};

/// Waits for `condition` until `deadline` passes; panics with `what` if it never holds.
fn wait_for(what: &str, deadline: Duration, condition: impl FnMut() -> bool) {
    assert!(
        wait_until(deadline, condition),
        "timed out after {deadline:?} waiting for {what}"
    );
}

#[test]
fn the_game_reaches_its_api_with_the_token_and_its_messages_reach_the_supervisor() {
    let (mut agent, addr) = start_with_api(
        &["--api-token", "tok-123-secret"],
        &[
            "--print-env",
            "EDGEGAP_AGENT_API_TOKEN",
            "--api-call",
            "POST:/v1/ready",
            "--api-call",
            r#"POST:/v1/players/connect:{"id":"p1"}"#,
            "--api-call",
            r#"POST:/v1/match/end:{"reason":"done","delay":"60s"}"#,
        ],
    );
    assert!(addr.ip().is_loopback());
    assert_eq!(
        agent.wait_line("ENV EDGEGAP_AGENT_API_TOKEN="),
        "ENV EDGEGAP_AGENT_API_TOKEN=tok-123-secret"
    );
    agent.wait_line("API POST /v1/ready -> 202");
    agent.wait_line("API POST /v1/players/connect -> 200");
    agent.wait_line("API POST /v1/match/end -> 202");

    wait_for(
        "the supervisor to apply the game's messages",
        Duration::from_secs(5),
        || {
            let status = http::get(addr, "/v1/status").json();
            status["ready"] == true && status["state"] == "ending" && status["players"] == 1
        },
    );
    let status = http::get(addr, "/v1/status").json();
    assert_eq!(status["reason"], "done");
    assert_eq!(http::get(addr, "/readyz").status, 200);
    assert_eq!(http::get(addr, "/healthz").status, 200);
    let refused = http::call(addr, "POST", "/v1/heartbeat", &[], b"").unwrap();
    assert_eq!(refused.status, 401);

    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(10)).0.code(), Some(143));
    let log = agent.stderr();
    assert!(log.contains("local API listening addr=127.0.0.1:"), "{log}");
    assert!(log.contains("reason=\"done\""), "{log}");
    assert!(
        !log.contains("tok-123-secret"),
        "the token was logged:\n{log}"
    );
}

#[test]
fn the_api_answers_while_the_game_is_in_its_grace_period() {
    let (mut agent, addr) = start_with_api(&["--grace-period", "3s"], &["--ignore-term"]);
    agent.wait_line("READY");
    assert_eq!(http::get(addr, "/healthz").status, 200);
    agent.signal(Signal::SIGTERM);
    let mut status = serde_json::Value::Null;
    wait_for(
        "the status to show stopping",
        Duration::from_secs(5),
        || {
            status = http::get(addr, "/v1/status").json();
            status["state"] == "stopping"
        },
    );
    let ms_left = status["ms_left"].as_u64().unwrap();
    assert!(ms_left > 0 && ms_left <= 2000, "ms_left = {ms_left}");
    assert!(status["deadline_unix_ms"].as_u64().unwrap() > 0);
    let health = http::get(addr, "/healthz");
    assert_eq!(health.status, 503);
    assert!(health.body.contains("being stopped"), "{}", health.body);
    let metrics = http::get(addr, "/metrics").body;
    assert!(metrics.contains("edgegap_agent_lifecycle_state{state=\"stopping\"} 1"));
    // Still answering later in the grace period, with less time left.
    let later = http::get(addr, "/v1/status").json();
    assert!(later["ms_left"].as_u64().unwrap() <= ms_left);
    assert_eq!(agent.wait_exit(Duration::from_secs(10)).0.code(), Some(137));
}

#[test]
fn the_default_address_is_loopback() {
    let help = Command::new(AGENT).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[env: EDGEGAP_AGENT_API_ADDR=]"), "{help}");
    assert!(help.contains("[default: 127.0.0.1:7070]"), "{help}");

    // Run with the default address. Another process may hold 7070: then the agent says so and
    // listens on another loopback port. Either way nothing binds a public address, and the
    // game runs.
    let mut command = agent_command();
    command.env_remove("EDGEGAP_AGENT_API_ADDR");
    let output = command
        .args(["--", FAKE_GAME, "--exit", "0"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    let listened = log.contains("local API listening addr=127.0.0.1:7070 ");
    let gave_way = log.contains("the default local API address 127.0.0.1:7070 cannot be bound")
        && log.contains("local API listening addr=127.0.0.1:");
    assert!(listened || gave_way, "{log}");
    assert_eq!(output.status.code(), Some(0), "{log}");
}

#[test]
fn a_taken_address_ends_the_agent_with_64_before_the_game_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let marker = std::env::temp_dir().join(format!("api-bind-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let output = agent_command()
        .args([
            "--api-addr",
            &addr,
            "--",
            FAKE_GAME,
            "--touch",
            marker.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{log}");
    assert!(
        log.contains(&format!("cannot bind the local API to {addr}")),
        "{log}"
    );
    assert!(!marker.exists(), "the game was started without its API");
}

#[test]
fn ten_thousand_requests_from_64_connections_while_a_signal_reaches_the_game() {
    const TOTAL: usize = 10_000;
    const CONNECTIONS: usize = 64;
    let record = std::env::temp_dir().join(format!("api-load-{}.signals", std::process::id()));
    let _ = std::fs::remove_file(&record);
    let (mut agent, addr) = start_with_api(&[], &["--record-signals", record.to_str().unwrap()]);
    agent.wait_line("READY");

    let issued = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (issued, answered, errors) = (issued.clone(), answered.clone(), errors.clone());
            std::thread::spawn(move || {
                let mut conn = match http::Conn::connect(addr) {
                    Ok(conn) => conn,
                    Err(e) => return errors.lock().unwrap().push(format!("connect: {e}")),
                };
                loop {
                    let n = issued.fetch_add(1, Ordering::Relaxed);
                    if n >= TOTAL {
                        return;
                    }
                    let (method, path, expected) = match n % 10 {
                        0 => ("POST", "/v1/heartbeat", 202),
                        1 => ("GET", "/v1/status", 200),
                        2 => ("GET", "/metrics", 200),
                        _ => ("GET", "/healthz", 200),
                    };
                    match conn.request(method, path, &[], b"") {
                        Ok(reply) if reply.status == expected => {}
                        Ok(reply) => errors
                            .lock()
                            .unwrap()
                            .push(format!("{path}: {}", reply.status)),
                        Err(e) => return errors.lock().unwrap().push(format!("{path}: {e}")),
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    // Under load, a forwarded signal still reaches the game promptly.
    wait_for("the load to be under way", Duration::from_secs(30), || {
        answered.load(Ordering::Relaxed) >= 1000
    });
    let sent = Instant::now();
    agent.signal(Signal::SIGUSR1);
    wait_for("SIGUSR1 to reach the game", Duration::from_secs(2), || {
        std::fs::read_to_string(&record).is_ok_and(|t| t.contains("SIGUSR1"))
    });
    let delivered_after = sent.elapsed();
    let in_flight = answered.load(Ordering::Relaxed) < TOTAL;

    for worker in workers {
        worker.join().unwrap();
    }
    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(answered.load(Ordering::Relaxed), TOTAL);
    eprintln!(
        "SIGUSR1 reached the game after {delivered_after:?} (load still running: {in_flight})"
    );

    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(10)).0.code(), Some(143));
    let _ = std::fs::remove_file(&record);
}
