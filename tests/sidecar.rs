//! Sidecar mode, black box: the real agent with no command, beside nothing it started, its
//! self-stop pointed at a fake platform on 127.0.0.1:0. It serves the API and self-stops
//! once when the match ends; lost heartbeats end the match and kill nothing; SIGTERM waits
//! for a self-stop in flight only within its bound, then exits 0; wrap mode's options and a
//! watched pid that does not exist are refused with 64; and no signal but KILL, STOP, TERM
//! and INT ends it or stops it.

#[path = "support/fake_platform.rs"]
mod fake_platform;
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[path = "support/sidecar.rs"]
mod sidecar;
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use fake_platform::Reply;
use nix::sys::signal::Signal;
use sidecar::{api_addr, assert_serving, sidecar_command, wait_log, Platform};
use support::{agent_command, state_of, Running, DEADLINE};

/// Room for a loaded machine on top of every upper bound.
const SLACK: Duration = Duration::from_millis(1500);

fn post(addr: std::net::SocketAddr, path: &str, body: &str) -> u16 {
    http::call(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    .status
}

fn status(addr: std::net::SocketAddr) -> serde_json::Value {
    http::get(addr, "/v1/status").json()
}

#[test]
fn without_a_watch_it_serves_the_api_and_self_stops_once_when_the_match_ends() {
    let platform = Platform::start();
    let mut command = sidecar_command(&platform);
    command.args(["--self-stop-wait", "60s"]);
    let mut agent = Running::start(command);
    let addr = api_addr(&agent);
    wait_log(&agent, "running in sidecar mode");
    wait_log(&agent, "watching no process");
    // Healthy once the driver runs (as in wrap mode once the game is spawned), with no pid.
    assert!(support::wait_until(DEADLINE, || http::get(
        addr, "/healthz"
    )
    .status
        == 200));
    assert_eq!(http::get(addr, "/readyz").status, 503);
    assert_eq!(post(addr, "/v1/ready", ""), 202);
    assert_eq!(status(addr)["state"], "running");
    assert_eq!(status(addr)["child_pid"], serde_json::Value::Null);
    assert_eq!(http::get(addr, "/readyz").status, 200);
    let deployment = http::get(addr, "/v1/deployment").json();
    assert_eq!(deployment["request_id"], "5f2c8e1a9b7d", "{deployment}");

    // The match ends, twice: one self-stop.
    assert_eq!(post(addr, "/v1/match/end", r#"{"reason":"gg"}"#), 202);
    assert_eq!(post(addr, "/v1/match/end", r#"{"reason":"again"}"#), 202);
    platform.wait_self_stops(1);
    let request = &platform.fake.requests()[0];
    assert_eq!(
        request.header("authorization"),
        Some(sidecar::DELETE_TOKEN.as_bytes())
    );
    wait_log(&agent, "match ended: the game ended the match: gg");
    assert!(support::wait_until(DEADLINE, || status(addr)["self_stop"] == "accepted"));
    assert_eq!(status(addr)["state"], "ending");
    assert_serving(&mut agent, addr, "the self-stop was accepted");

    // The platform's SIGTERM: exit 0 at once, nothing signalled, no second self-stop.
    let sigterm_at = Instant::now();
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0, "{}", agent.stderr());
    assert!(sigterm_at.elapsed() < SLACK, "{:?}", sigterm_at.elapsed());
    assert_eq!(platform.self_stops(), 1);
    assert!(
        !agent.stderr().contains("stopping the game"),
        "{}",
        agent.stderr()
    );
}

#[test]
fn lost_heartbeats_end_the_match_with_one_self_stop_and_kill_nothing() {
    let platform = Platform::start();
    // The "game": a process the agent watches but did not start.
    let mut game = Command::new("sleep").arg("60").spawn().unwrap();
    let mut command = sidecar_command(&platform);
    command
        .args(["--heartbeat-timeout", "1s", "--self-stop-wait", "60s"])
        .args(["--watch-pid", &game.id().to_string()]);
    let mut agent = Running::start(command);
    let addr = api_addr(&agent);
    wait_log(
        &agent,
        &format!("watching process {} (--watch-pid)", game.id()),
    );
    let heartbeat_at = Instant::now();
    assert_eq!(post(addr, "/v1/heartbeat", ""), 202);

    platform.wait_self_stops(1);
    assert!(
        heartbeat_at.elapsed() >= Duration::from_millis(900),
        "self-stop {:?} after the heartbeat",
        heartbeat_at.elapsed()
    );
    wait_log(
        &agent,
        "match ended: no heartbeat from the game for the heartbeat timeout",
    );
    let shown = status(addr);
    assert_eq!(shown["trigger"], "heartbeat_timeout", "{shown}");
    // Nothing was killed: the watched process runs on, and so does the agent.
    assert!(game.try_wait().unwrap().is_none(), "the game was killed");
    assert_serving(&mut agent, addr, "the match ended");

    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0, "{}", agent.stderr());
    assert!(game.try_wait().unwrap().is_none(), "the game was killed");
    assert_eq!(platform.self_stops(), 1);
    game.kill().unwrap();
    game.wait().unwrap();
}

/// `--agones` beside the game: the Agones SDK API serves on the address given (it does not
/// give way: the game cannot learn another port), and `/shutdown` ends the match with one
/// self-stop.
#[test]
fn with_agones_the_sdk_api_serves_and_shutdown_self_stops_once() {
    let platform = Platform::start();
    let mut command = sidecar_command(&platform);
    command.args(["--agones", "--agones-addr", "127.0.0.1:0"]);
    let mut agent = Running::start(command);
    let addr = api_addr(&agent);
    wait_log(&agent, "Agones SDK API listening addr=");
    let stderr = agent.stderr();
    let start = stderr.find("Agones SDK API listening addr=").unwrap()
        + "Agones SDK API listening addr=".len();
    let agones: std::net::SocketAddr = stderr[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(post(agones, "/ready", "{}"), 200);
    assert_eq!(post(agones, "/health", "{}"), 200);
    assert_eq!(post(agones, "/shutdown", "{}"), 200);
    assert_eq!(post(agones, "/shutdown", "{}"), 200);
    platform.wait_self_stops(1);
    assert_eq!(status(addr)["state"], "ending");
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0, "{}", agent.stderr());
    assert_eq!(platform.self_stops(), 1);
}

/// The platform answers the self-stop 1.5 s late: SIGTERM waits for the answer, then exits 0.
#[test]
fn sigterm_with_a_self_stop_in_flight_waits_for_its_answer_then_exits_0() {
    let platform = Platform::start();
    let late = Duration::from_millis(1500);
    platform.fake.script([Reply::Delayed(late, 200)]);
    let mut agent = Running::start(sidecar_command(&platform));
    let addr = api_addr(&agent);
    assert_eq!(post(addr, "/v1/match/end", ""), 202);
    platform.wait_self_stops(1);
    let sigterm_at = Instant::now();
    agent.signal(Signal::SIGTERM);
    wait_log(
        &agent,
        "waiting for the self-stop in flight, at most 5000 ms",
    );
    assert_eq!(agent.exit_code(), 0, "{}", agent.stderr());
    let took = sigterm_at.elapsed();
    // It waited for the answer (most of the 1.5 s were left), and no longer than the bound.
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_secs(5),
        "exited {took:?} after SIGTERM"
    );
    assert_eq!(platform.self_stops(), 1);
}

/// The platform never answers: SIGTERM exits 0 when the bound passes, min(grace - kill
/// margin, 5 s): here 3 s - 1 s.
#[test]
fn sigterm_with_a_self_stop_hanging_exits_0_at_the_bound() {
    let platform = Platform::start();
    platform.fake.set_default(Reply::Hang);
    let mut command = sidecar_command(&platform);
    command.args(["--grace-period", "3s"]);
    let mut agent = Running::start(command);
    let addr = api_addr(&agent);
    assert_eq!(post(addr, "/v1/match/end", ""), 202);
    platform.wait_self_stops(1);
    let sigterm_at = Instant::now();
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0, "{}", agent.stderr());
    let took = sigterm_at.elapsed();
    let bound = Duration::from_secs(2);
    assert!(
        took >= bound - Duration::from_millis(100) && took < bound + SLACK,
        "exited {took:?} after SIGTERM, expected {bound:?}"
    );
    wait_log(
        &agent,
        "grace period over with the self-stop still in flight",
    );
}

/// Arguments, variables, and what the error must say.
type Refusal<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn wrap_mode_options_are_refused_naming_them() {
    let cases: &[Refusal] = &[
        (
            &["--pre-stop", "true"],
            &[],
            "--pre-stop (EDGEGAP_AGENT_PRE_STOP)",
        ),
        (&["--end-on-log", "OVER"], &[], "--end-on-log"),
        (&["--stop-signal", "INT"], &[], "--stop-signal"),
        (
            &[],
            &[("EDGEGAP_AGENT_FORWARD_SIGNAL_MAP", "TERM=INT")],
            "--forward-signal-map (EDGEGAP_AGENT_FORWARD_SIGNAL_MAP)",
        ),
        (&["--exit-code-map", "143=0"], &[], "--exit-code-map"),
        (&["--max-restarts", "3"], &[], "--max-restarts"),
        (&["--restart-backoff", "2s"], &[], "--restart-backoff"),
        (&["--pass-platform-tokens"], &[], "--pass-platform-tokens"),
        (
            &["--on-exit", "0=stop,*=restart"],
            &[],
            "--on-exit (EDGEGAP_AGENT_ON_EXIT) says `restart`",
        ),
        (
            &["--watch-pid", "1", "--watch-parent"],
            &[],
            "cannot both be set",
        ),
    ];
    for (args, env, expected) in cases {
        let mut command = agent_command();
        command.args(*args).envs(env.iter().copied());
        let mut agent = Running::start(command);
        assert_eq!(
            agent.exit_code(),
            64,
            "{args:?} {env:?}: {}",
            agent.stderr()
        );
        assert!(
            agent.stderr().contains(expected),
            "{args:?} {env:?}: no {expected:?} in:\n{}",
            agent.stderr()
        );
        assert!(
            !agent.stderr().contains("local API listening"),
            "{}",
            agent.stderr()
        );
    }
    // Every refused option is named at once.
    let mut command = agent_command();
    command.args(["--pre-stop", "true", "--stop-signal", "INT"]);
    let mut agent = Running::start(command);
    assert_eq!(agent.exit_code(), 64);
    let stderr = agent.stderr();
    assert!(
        stderr.contains("--pre-stop") && stderr.contains("--stop-signal"),
        "{stderr}"
    );
    // The watch options need sidecar mode.
    let mut command = agent_command();
    command.args(["--watch-parent", "--", "true"]);
    let mut agent = Running::start(command);
    assert_eq!(agent.exit_code(), 64);
    assert!(
        agent
            .stderr()
            .contains("--watch-parent (EDGEGAP_AGENT_WATCH_PARENT) only applies in sidecar mode"),
        "{}",
        agent.stderr()
    );
}

#[test]
fn a_watch_pid_no_process_has_is_64() {
    // A pid that was just freed: its process ended and was reaped.
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let mut command = agent_command();
    command.args(["--watch-pid", &pid.to_string()]);
    let mut agent = Running::start(command);
    assert_eq!(agent.exit_code(), 64, "{}", agent.stderr());
    assert!(
        agent
            .stderr()
            .contains(&format!("sidecar mode: no process has pid {pid}")),
        "{}",
        agent.stderr()
    );
    assert!(
        !agent.stderr().contains("local API listening"),
        "{}",
        agent.stderr()
    );
    let mut command = agent_command();
    command.args(["--watch-pid", "0"]);
    assert_eq!(Running::start(command).exit_code(), 64);
}

/// Every signal 1-31 but KILL, STOP, TERM and INT, each once the agent has read the one
/// before: none ends the sidecar or stops it (job control included), and its API answers.
#[test]
fn no_signal_but_the_stops_ends_or_stops_the_sidecar() {
    let platform = Platform::start();
    let mut agent = Running::start(sidecar_command(&platform));
    let addr = api_addr(&agent);
    let mut received = 0;
    for number in 1..=31 {
        let signal = Signal::try_from(number).unwrap();
        if matches!(
            signal,
            Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGTERM | Signal::SIGINT
        ) {
            continue;
        }
        agent.signal(signal);
        if signal == Signal::SIGCHLD {
            // Dropped without a log line; the next signal shows it was taken in stride.
            continue;
        }
        received += 1;
        let line = format!("signal received signal=\"{}\"", signal.as_str());
        wait_log(&agent, &line);
        assert_eq!(agent.stderr().matches("signal received").count(), received);
        let state = state_of(agent.pid());
        assert!(
            state.is_some_and(|s| !matches!(s, 'T' | 't' | 'Z')),
            "{signal}: the agent is {state:?}:\n{}",
            agent.stderr()
        );
        assert_serving(&mut agent, addr, signal.as_str());
    }
    assert_eq!(platform.self_stops(), 0);
    agent.signal(Signal::SIGINT);
    assert_eq!(agent.exit_code(), 0, "{}", agent.stderr());
}
