//! The real agent on an unreliable platform: `edgegap-emulator`'s injected faults, each
//! exercised once. The agent runs as the deployment's process (as it would be the
//! container's PID 1) around the fake game; the emulator misbehaves as told: its self-stop
//! answers 503 or 429 with `Retry-After`, hangs, or refuses the token; its context route is
//! down; it sends the stop's SIGTERM late, or SIGKILLs before the grace period ends.
//!
//! The agent's self-stop retry flags are set explicitly (their defaults are the product's
//! decision, and long): quick backoff, a one-second attempt timeout, a 20 s deadline.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::emulator::Emu;
use support::{wait_until, AGENT, DEADLINE, FAKE_GAME};

/// The agent's retry policy for these tests.
const RETRY: [&str; 10] = [
    "--self-stop-max-attempts",
    "10",
    "--self-stop-deadline",
    "20s",
    "--self-stop-attempt-timeout",
    "1s",
    "--self-stop-initial-backoff",
    "50ms",
    "--self-stop-max-backoff",
    "200ms",
];

/// Deploys the agent around the fake game with `game` arguments (`restart_policy: never`:
/// the deployment ends when the agent exits).
fn deploy_agent(emu: &Emu, game: &[&str], grace_seconds: u64) -> String {
    let mut command = vec![AGENT, "--api-addr", "127.0.0.1:0", "--grace-period"];
    let grace = format!("{grace_seconds}s");
    command.push(&grace);
    command.extend(RETRY);
    command.push("--");
    command.push(FAKE_GAME);
    command.extend(game);
    let app = emu.app_with_version(json!({
        "command": command,
        "restart_policy": "never",
        "termination_grace_period_seconds": grace_seconds,
    }));
    emu.deploy(&app, json!({}))
}

/// The events of `kind` (`"event"` field) in the deployment's journal.
fn events(emu: &Emu, id: &str, kind: &str) -> Vec<Value> {
    emu.events(id)["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == kind)
        .cloned()
        .collect()
}

fn at_ms(event: &Value) -> u64 {
    event["at_ms"].as_u64().unwrap()
}

fn signal_event(emu: &Emu, id: &str, signal: &str) -> Option<Value> {
    events(emu, id, "signal")
        .into_iter()
        .find(|e| e["signal"] == signal)
}

/// A game that ends its match (exit 0) after READY: the agent self-stops.
const MATCH_ENDS: [&str; 4] = ["--run-ms", "100", "--exit", "0"];

/// The platform's self-stop fails `faults` times, then accepts: the agent, retrying, stops
/// its deployment through it (the emulator's SIGTERM ends the agent).
fn retried_until_accepted(fault: &str, faults: usize) {
    let emu = Emu::start(&["--self-stop-fault", fault]);
    let id = deploy_agent(&emu, &MATCH_ENDS, 5);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
    let failed = events(&emu, &id, "self_stop_fault");
    assert_eq!(failed.len(), faults, "{}", emu.events(&id));
    assert_eq!(emu.events(&id)["self_stop_calls"], 1, "{}", emu.events(&id));
    let accepted = events(&emu, &id, "self_stop");
    assert!(
        at_ms(&accepted[0]) > at_ms(failed.last().unwrap()),
        "accepted after the faults"
    );
    assert!(
        signal_event(&emu, &id, "SIGTERM").is_some(),
        "stopped by the platform's SIGTERM"
    );
}

#[test]
fn the_agent_retries_a_self_stop_answered_503() {
    retried_until_accepted("status=503,times=3", 3);
}

#[test]
fn the_agent_retries_a_self_stop_answered_429_with_retry_after() {
    retried_until_accepted("status=429,retry-after=1,times=2", 2);
}

#[test]
fn the_agent_retries_a_self_stop_that_hangs() {
    let emu = Emu::start(&["--self-stop-fault", "hang=30s,times=1"]);
    let id = deploy_agent(&emu, &MATCH_ENDS, 5);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
    let hung = events(&emu, &id, "self_stop_fault");
    assert_eq!(hung.len(), 1);
    let accepted = events(&emu, &id, "self_stop");
    let waited = at_ms(&accepted[0]) - at_ms(&hung[0]);
    assert!(
        (900..15_000).contains(&waited),
        "the retry came after the 1 s attempt timeout, not the 30 s hang: {waited} ms"
    );
    assert_eq!(emu.events(&id)["self_stop_calls"], 1);
}

#[test]
fn a_refused_token_is_not_retried_and_the_agent_ends_the_game_itself() {
    let emu = Emu::start(&["--self-stop-fault", "refuse"]);
    let id = deploy_agent(&emu, &MATCH_ENDS, 5);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
    assert_eq!(
        events(&emu, &id, "self_stop_fault").len(),
        1,
        "401 is fatal: one call, no retry: {}",
        emu.events(&id)
    );
    assert_eq!(emu.events(&id)["self_stop_calls"], 0);
    assert!(
        signal_event(&emu, &id, "SIGTERM").is_none(),
        "the deployment ended with the agent's exit, not a platform stop"
    );
    let logs = emu.logs(&id)["logs"].as_str().unwrap().to_owned();
    assert!(
        logs.contains("401"),
        "the agent says what the platform answered: {logs}"
    );
}

#[test]
fn with_the_context_down_the_agent_serves_the_environment_alone() {
    let emu = Emu::start(&[]);
    // Through the admin route this time: down for every call from now on.
    let resp = emu.call(
        "POST",
        "/emulator/v1/faults",
        Some(json!({"context": "down"})),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    let id = deploy_agent(&emu, &["--print-env", "EDGEGAP_AGENT_URL"], 5);
    let url = emu.printed_env(&id, "EDGEGAP_AGENT_URL");
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let said = wait_until(DEADLINE, || {
        let logs = emu.logs(&id)["logs"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        logs.contains("the context could not be fetched")
    });
    assert!(said, "{}", emu.logs(&id)["logs"]);
    let deployment = get_json(addr, "/v1/deployment");
    assert_eq!(deployment["request_id"], id.as_str(), "{deployment}");
    assert!(
        deployment["fqdn"].is_null(),
        "no context merged: {deployment}"
    );
    assert_eq!(
        emu.status(&id)["current_status"],
        "Status.READY",
        "the game runs on"
    );
    emu.call("DELETE", &format!("/v1/stop/{id}"), None);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
}

#[test]
fn a_late_sigterm_keeps_the_agent_waiting_for_it() {
    let emu = Emu::start(&["--sigterm-delay", "1500ms"]);
    let id = deploy_agent(&emu, &MATCH_ENDS, 5);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
    let accepted = events(&emu, &id, "self_stop");
    let sigterm = signal_event(&emu, &id, "SIGTERM").expect("the SIGTERM came, late");
    let late = at_ms(&sigterm) - at_ms(&accepted[0]);
    assert!(late >= 1500, "SIGTERM {late} ms after the self-stop");
    assert_eq!(
        emu.events(&id)["self_stop_calls"],
        1,
        "one DELETE, not retried"
    );
}

#[test]
fn a_sigkill_before_the_grace_period_ends_kills_the_agent_and_its_game() {
    let emu = Emu::start(&["--kill-after", "1s"]);
    // The game ignores SIGTERM: only the SIGKILL ends the deployment.
    let id = deploy_agent(&emu, &["--ignore-term"], 30);
    emu.wait_status(&id, "Status.READY", DEADLINE);
    let line = emu.wait_log_line(&id, "READY pid=");
    let game: i32 = line["READY pid=".len()..].trim().parse().unwrap();
    emu.call("DELETE", &format!("/v1/stop/{id}"), None);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
    let sigterm = signal_event(&emu, &id, "SIGTERM").unwrap();
    let sigkill = signal_event(&emu, &id, "SIGKILL").expect("SIGKILL before the grace ends");
    let after = at_ms(&sigkill) - at_ms(&sigterm);
    assert!(
        (1000..10_000).contains(&after),
        "SIGKILL {after} ms after SIGTERM (grace 30 s)"
    );
    assert_eq!(emu.logs(&id)["crash_data"]["exit_code"], 137);
    let gone = wait_until(Duration::from_secs(5), || {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(game), None).is_err()
    });
    assert!(gone, "the game died with its agent");
}

/// A GET on the agent's API, as JSON.
fn get_json(addr: std::net::SocketAddr, path: &str) -> Value {
    let resp = support::emulator::request(&addr.to_string(), "GET", path, &[], None);
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.json()
}
