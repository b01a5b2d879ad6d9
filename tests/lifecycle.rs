//! The match lifecycle with the real agent and the fake game, in local mode (no platform:
//! self-stop is "not configured", so a match end stops the game and the agent exits 0).

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use support::{
    agent_command, lines_of, scratch_dir, start_with_api, wait_until, Running, DEADLINE, FAKE_GAME,
};

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn a_crashing_game_is_restarted_within_the_budget_then_the_fallback_exits() {
    let mut command = agent_command();
    command.args([
        "--on-exit",
        "0=stop,3=restart,*=exit",
        "--max-restarts",
        "2",
        "--restart-backoff",
        "50ms",
        "--",
        FAKE_GAME,
        "--exit",
        "3",
    ]);
    let mut agent = Running::start(command);
    assert_eq!(agent.exit_code(), 3);
    let stderr = agent.stderr();
    assert_eq!(count(&stderr, "game server started"), 3, "{stderr}");
    assert_eq!(count(&stderr, "restarting it in"), 2, "{stderr}");
    assert!(
        stderr.contains("restart budget (2 in 600 s) is spent: exiting"),
        "{stderr}"
    );
}

#[test]
fn a_clean_exit_under_the_default_policy_ends_the_match() {
    let mut command = agent_command();
    command.args(["--", FAKE_GAME, "--exit", "0"]);
    let mut agent = Running::start(command);
    assert_eq!(agent.exit_code(), 0);
    let stderr = agent.stderr();
    assert!(
        stderr.contains("match ended: the game exited with code 0"),
        "{stderr}"
    );
    // The platform client's reason names what is missing after this.
    assert!(
        stderr.contains("self-stop failed (self-stop is not configured (local mode)"),
        "{stderr}"
    );
}

#[test]
fn a_matching_log_line_ends_the_match_and_every_line_passes_through_in_order() {
    let dir = scratch_dir("end-on-log");
    let record = dir.join("signals");
    let mut command = agent_command();
    command
        .args([
            "--end-on-log",
            "^MATCH (OVER|ENDED)$",
            "--",
            FAKE_GAME,
            "--on-term-exit",
            "0",
        ])
        .args([
            "--say",
            "loading map",
            "--say",
            "MATCH OVERTIME",
            "--say",
            "MATCH OVER",
            "--say",
            "after",
        ])
        .arg("--record-signals")
        .arg(&record);
    let mut agent = Running::start(command);
    agent.wait_ready();
    for expected in ["loading map", "MATCH OVERTIME", "MATCH OVER", "after"] {
        assert_eq!(agent.wait_line(""), expected);
    }
    agent.wait_line("EXITING code=0");
    assert_eq!(agent.exit_code(), 0);
    assert_eq!(lines_of(&record), ["SIGTERM"]);
    let stderr = agent.stderr();
    assert_eq!(
        count(&stderr, "match ended: log line matched: MATCH OVER\n"),
        1,
        "{stderr}"
    );
}

#[test]
fn the_max_match_duration_stops_the_game_gracefully() {
    let dir = scratch_dir("max-match");
    let record = dir.join("signals");
    let mut command = agent_command();
    command
        .args([
            "--max-match-duration",
            "300ms",
            "--",
            FAKE_GAME,
            "--on-term-exit",
            "5",
        ])
        .arg("--record-signals")
        .arg(&record);
    let mut agent = Running::start(command);
    agent.wait_ready();
    let (status, elapsed) = agent.wait_exit(DEADLINE);
    // Self-stop cannot succeed in local mode: the game is stopped and the agent exits 0.
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert_eq!(lines_of(&record), ["SIGTERM"]);
    assert!(agent
        .stderr()
        .contains("match ended: maximum match duration reached"));
}

#[test]
fn the_pre_stop_hook_runs_and_ends_before_the_game_gets_the_stop_signal() {
    let dir = scratch_dir("pre-stop");
    let record = dir.join("signals");
    let hook_marker = dir.join("hook-ran");
    let hook = format!(
        "{FAKE_GAME} --touch {} --say saving-world --run-ms 200 --exit 0",
        hook_marker.display()
    );
    let mut command = agent_command();
    command
        .args(["--pre-stop", &hook, "--", FAKE_GAME, "--on-term-exit", "0"])
        .arg("--record-signals")
        .arg(&record);
    let mut agent = Running::start(command);
    agent.wait_ready();
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 0);
    assert!(hook_marker.exists());
    assert_eq!(lines_of(&record), ["SIGTERM"]);
    let stderr = agent.stderr();
    let hook_ended = stderr.find("pre-stop hook ended").expect(&stderr);
    let game_ended = stderr.find("game server ended").expect(&stderr);
    assert!(hook_ended < game_ended, "{stderr}");
    assert!(
        stderr.contains("source=\"pre-stop\" line=saving-world"),
        "{stderr}"
    );
}

#[test]
fn a_pre_stop_hook_that_hangs_is_bounded_by_the_grace_period() {
    let dir = scratch_dir("pre-stop-hang");
    let record = dir.join("signals");
    let mut command = agent_command();
    command
        .args([
            "--grace-period",
            "1500ms",
            "--kill-margin",
            "500ms",
            "--pre-stop",
            FAKE_GAME,
        ])
        .args(["--", FAKE_GAME, "--ignore-term", "--record-signals"])
        .arg(&record);
    let mut agent = Running::start(command);
    agent.wait_ready();
    let stop = Instant::now();
    agent.signal(Signal::SIGTERM);
    let (status, _) = agent.wait_exit(DEADLINE);
    let elapsed = stop.elapsed();
    assert_eq!(status.code(), Some(137), "{}", agent.stderr());
    assert!(
        elapsed >= Duration::from_millis(1000) && elapsed < Duration::from_millis(1900),
        "{elapsed:?}"
    );
    // The hook never finished, so the game never got the stop signal before the kill.
    assert!(lines_of(&record).is_empty());
}

#[test]
fn the_idle_timeout_ends_the_match_once_the_last_player_left() {
    let dir = scratch_dir("idle");
    let record = dir.join("signals");
    let mut command = agent_command();
    command
        .args([
            "--idle-timeout",
            "300ms",
            "--",
            FAKE_GAME,
            "--on-term-exit",
            "0",
        ])
        .args(["--api-call", r#"POST:/v1/players/connect:{"id":"a"}"#])
        .args(["--api-call", r#"POST:/v1/players/disconnect:{"id":"a"}"#])
        .arg("--record-signals")
        .arg(&record);
    let mut agent = Running::start(command);
    agent.wait_line("API POST /v1/players/disconnect -> 200");
    let left = Instant::now();
    let (status, _) = agent.wait_exit(DEADLINE);
    assert!(
        left.elapsed() >= Duration::from_millis(250),
        "{:?}",
        left.elapsed()
    );
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
    assert_eq!(lines_of(&record), ["SIGTERM"]);
    assert!(agent
        .stderr()
        .contains("match ended: no players left for the idle timeout"));
}

#[test]
fn a_game_that_stops_sending_heartbeats_is_killed_and_seen_as_hung() {
    let mut command = agent_command();
    command
        .args([
            "--heartbeat-timeout",
            "300ms",
            "--",
            FAKE_GAME,
            "--ignore-term",
        ])
        .args(["--api-call", "POST:/v1/heartbeat"]);
    let mut agent = Running::start(command);
    agent.wait_line("API POST /v1/heartbeat -> 202");
    // The default policy exits with the hang's code, 124, so the platform restarts it.
    assert_eq!(agent.exit_code(), 124, "{}", agent.stderr());
    assert!(agent.stderr().contains("it is hung; killing it"));
}

#[test]
fn a_match_end_from_the_game_stops_it_after_the_delay_in_local_mode() {
    let dir = scratch_dir("api-end");
    let record = dir.join("signals");
    let mut command = agent_command();
    command
        .args(["--", FAKE_GAME, "--on-term-exit", "0"])
        .args([
            "--api-call",
            r#"POST:/v1/match/end:{"reason":"blue team won","delay":"200ms"}"#,
        ])
        .arg("--record-signals")
        .arg(&record);
    let mut agent = Running::start(command);
    let reply = agent.wait_line("API POST /v1/match/end -> 202");
    assert!(reply.contains(r#""state":"ending""#), "{reply}");
    assert_eq!(agent.exit_code(), 0, "{}", agent.stderr());
    assert_eq!(lines_of(&record), ["SIGTERM"]);
    let stderr = agent.stderr();
    assert!(
        stderr
            .contains("match ended: the game ended the match: blue team won (self-stop in 200 ms)"),
        "{stderr}"
    );
}

/// Players do not survive a restart of the game in place (its connections died with it), in
/// the API as in the machine: one roster. A player who reconnects to the restarted game is
/// new, the machine hears of them, and the idle timeout does not end the match while they
/// are listed; it ends it once they leave. (Before, the API kept its set across the restart
/// while the machine cleared its own: the reconnect was `"new": false`, the machine never
/// heard of it, and the idle timeout ended a live match.)
#[test]
fn after_a_restart_a_reconnecting_player_holds_off_the_idle_timeout() {
    const IDLE: Duration = Duration::from_secs(1);
    let (mut agent, api) = start_with_api(
        &[
            "--on-exit",
            "137=restart,*=exit",
            "--restart-backoff",
            "50ms",
            "--idle-timeout",
            "1s",
        ],
        &[],
    );
    let connect = |id: &str| {
        let body = format!(r#"{{"id": "{id}"}}"#);
        http::call(api, "POST", "/v1/players/connect", &[], body.as_bytes())
            .unwrap()
            .json()
    };
    let first = agent.wait_ready();
    assert_eq!(connect("p1")["new"], true);
    assert_eq!(connect("p2")["count"], 2);

    // The game crashes and is restarted in place: nobody is connected to the new process.
    kill(first, Signal::SIGKILL).unwrap();
    let second = agent.wait_ready();
    assert_ne!(first, second);
    let players = http::get(api, "/v1/players").json();
    assert_eq!(players, serde_json::json!({"count": 0, "players": []}));

    // p1 reconnects: new to the roster, counted by the machine.
    let reconnected = connect("p1");
    assert_eq!(reconnected["new"], true, "{reconnected}");
    assert_eq!(reconnected["count"], 1, "{reconnected}");
    let reconnected_at = Instant::now();

    // Three idle timeouts pass with p1 listed: the match goes on.
    let ended_early = wait_until(3 * IDLE, || {
        let status = http::get(api, "/v1/status").json();
        status["state"] != "starting" || status["players"] != 1
    });
    let status = http::get(api, "/v1/status").json();
    assert!(
        !ended_early,
        "the match ended with a player connected: {status}"
    );
    assert!(reconnected_at.elapsed() >= 3 * IDLE);

    // p1 leaves: the idle timeout ends the match one timeout later (local mode: the game is
    // stopped and the agent exits 0).
    let left_at = Instant::now();
    let body = br#"{"id": "p1"}"#;
    let left = http::call(api, "POST", "/v1/players/disconnect", &[], body).unwrap();
    assert_eq!(left.status, 200, "{}", left.body);
    let (status, elapsed) = agent.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{}", agent.stderr());
    let since_left = (agent.started + elapsed).saturating_duration_since(left_at);
    assert!(since_left >= IDLE, "{since_left:?}");
    let stderr = agent.stderr();
    assert_eq!(
        count(&stderr, "match ended: no players left for the idle timeout"),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("its players' connections are gone"),
        "{stderr}"
    );
}
