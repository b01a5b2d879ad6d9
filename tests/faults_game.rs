//! The game dying in each lifecycle state, black box, with the outcome the transition table of
//! `src/supervisor/machine.rs` documents:
//!
//! | state    | the game dies                   | outcome                                          |
//! |----------|---------------------------------|--------------------------------------------------|
//! | Starting | before `POST /v1/ready`         | `*=exit`: its code (or 128+N) passes through     |
//! | Running  | after `POST /v1/ready`          | `*=exit`: its code passes through, no self-stop  |
//! | Ending   | self-stop in flight or accepted | the agent keeps waiting for the platform's SIGTERM, then exits with the game's code (at once when accepted; with the self-stop still in flight, once it is answered or the grace period minus the margin has passed) |
//! | Stopping | of a signal, after SIGTERM      | 128+N, at once (no wait for the kill timer)      |
//!
//! The platform is a fake on 127.0.0.1 (`ARBITRIUM_DELETE_URL`), so the tests also show which
//! deaths call self-stop and which do not.

#[path = "support/fake_platform.rs"]
mod fake_platform;
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fake_platform::{on_own_runtime, FakePlatform, Reply};
use nix::sys::signal::{kill, Signal};
use support::{lines_of, scratch_dir, start_with_api_env, wait_until, Running, DEADLINE};
use tokio::runtime::Runtime;

const STOP_PATH: &str = "/v1/self/stop/c0653765de3b/ap-7";

/// A fake platform (on its own runtime) that answers every request with `default`.
fn platform(default: Reply) -> (Runtime, FakePlatform) {
    let (runtime, fake) = on_own_runtime(FakePlatform::start);
    fake.set_default(default);
    (runtime, fake)
}

/// The agent with the fake as its platform, its API address, and the game's pid.
fn start(fake: &FakePlatform, agent_args: &[&str], game_args: &[&str]) -> (Running, SocketAddr) {
    let url = fake.url(STOP_PATH);
    let env = [
        ("ARBITRIUM_REQUEST_ID", "c0653765de3b"),
        ("ARBITRIUM_DELETE_URL", url.as_str()),
        ("ARBITRIUM_DELETE_TOKEN", "faults-game-token"),
    ];
    start_with_api_env(&env, agent_args, game_args)
}

fn position(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in:\n{haystack}"))
}

#[test]
fn dying_while_starting_passes_the_code_through() {
    for (game_args, code, outcome) in [
        (&["--exit", "3"][..], 3, "exited with code 3"),
        (&["--die-signal", "14"][..], 128 + 14, "killed by SIGALRM"),
    ] {
        let (_runtime, fake) = platform(Reply::Status(200));
        let (mut agent, _) = start(&fake, &[], game_args);
        assert_eq!(agent.exit_code(), code);
        let stderr = agent.stderr();
        assert!(stderr.contains(outcome), "{stderr}");
        assert!(!stderr.contains("says it is ready"), "{stderr}");
        assert!(!stderr.contains("match ended"), "{stderr}");
        assert!(fake.requests().is_empty(), "no self-stop under `*=exit`");
    }
}

#[test]
fn dying_while_running_passes_the_code_through_without_self_stop() {
    let (_runtime, fake) = platform(Reply::Status(200));
    let game = [
        "--api-call",
        "POST:/v1/ready",
        "--run-ms",
        "300",
        "--exit",
        "5",
    ];
    let (mut agent, _) = start(&fake, &[], &game);
    assert_eq!(agent.exit_code(), 5);
    let stderr = agent.stderr();
    assert!(
        position(&stderr, "the game server says it is ready")
            < position(&stderr, "exited with code 5"),
        "{stderr}"
    );
    assert!(!stderr.contains("match ended"), "{stderr}");
    assert!(fake.requests().is_empty());
}

/// The match has ended and self-stop is in flight (the platform hangs) or accepted: the game
/// then dies (here: exits 42 on a SIGTERM sent to it directly, not through the agent). The
/// agent stays, waiting for the platform's SIGTERM, its API saying `ending` with no child;
/// the platform's SIGTERM then ends it with the game's code: at once when the self-stop was
/// accepted; with it still in flight, only when the grace period (3 s) minus the margin
/// (1 s) has passed — the agent never exits with its self-stop in flight while grace is left.
fn dying_while_ending(platform_reply: Reply, self_stop_seen: &str, in_flight: bool) {
    let (_runtime, fake) = platform(platform_reply);
    let game = [
        "--on-term-exit",
        "42",
        "--api-call",
        "POST:/v1/match/end:{\"reason\":\"blue won\"}",
    ];
    let agent_args = ["--self-stop-wait", "60s", "--grace-period", "3s"];
    let (mut agent, api) = start(&fake, &agent_args, &game);
    let game_pid = agent.wait_ready();
    agent.wait_line("API POST /v1/match/end -> 202");
    assert!(
        wait_until(DEADLINE, || agent.stderr().contains(self_stop_seen)),
        "{}",
        agent.stderr()
    );

    kill(game_pid, Signal::SIGTERM).unwrap();
    let waiting = wait_until(DEADLINE, || {
        let status = http::get(api, "/v1/status").json();
        status["state"] == "ending" && status["child_pid"].is_null()
    });
    assert!(waiting, "{}", http::get(api, "/v1/status").body);
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "the agent must wait for SIGTERM"
    );
    // The agent's log lines reach stderr through its writer thread: the status may show the
    // game gone a moment before the line that says so is written.
    assert!(
        wait_until(DEADLINE, || agent.stderr().contains("exited with code 42")),
        "{}",
        agent.stderr()
    );

    let sigterm_at = Instant::now();
    agent.signal(Signal::SIGTERM);
    let (status, elapsed) = agent.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(42), "{}", agent.stderr());
    let took = (agent.started + elapsed).saturating_duration_since(sigterm_at);
    if in_flight {
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
            "{took:?}: the in-flight self-stop is awaited for grace minus margin (2 s)"
        );
        assert!(
            agent
                .stderr()
                .contains("grace period over with the self-stop still in flight: exiting"),
            "{}",
            agent.stderr()
        );
    } else {
        assert!(
            took < Duration::from_secs(2),
            "{took:?}: nothing was left to stop or to await"
        );
    }
    assert_eq!(fake.requests().len(), 1, "one self-stop");
    let stderr = agent.stderr();
    assert!(!stderr.contains("self-stop failed"), "{stderr}");
    assert!(!stderr.contains("stopping the game"), "{stderr}");
}

#[test]
fn dying_while_self_stop_is_in_flight_waits_for_the_platform() {
    dying_while_ending(
        Reply::Hang,
        "asking the platform to stop this deployment",
        true,
    );
}

#[test]
fn dying_while_awaiting_the_platforms_sigterm_waits_for_it() {
    dying_while_ending(Reply::Status(200), "self-stop accepted", false);
}

/// SIGTERM stops the game, which ignores it and then dies of SIGALRM: the agent exits 142 at
/// once, long before its SIGKILL at grace - margin (9 s).
#[test]
fn dying_of_a_signal_while_stopping_is_128_plus_n() {
    let (_runtime, fake) = platform(Reply::Status(200));
    let record = scratch_dir("stopping").join("signals");
    let record_arg = record.to_str().unwrap();
    let game = ["--ignore-term", "--record-signals", record_arg];
    let (mut agent, _) = start(&fake, &["--grace-period", "10s"], &game);
    let game_pid = agent.wait_ready();
    agent.signal(Signal::SIGTERM);
    assert!(wait_until(DEADLINE, || lines_of(&record) == ["SIGTERM"]));
    let alarm_at = Instant::now();
    kill(game_pid, Signal::SIGALRM).unwrap();
    let (status, elapsed) = agent.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(128 + 14), "{}", agent.stderr());
    let took = (agent.started + elapsed).saturating_duration_since(alarm_at);
    assert!(took < Duration::from_secs(3), "{took:?}");
    let stderr = agent.stderr();
    assert!(
        position(&stderr, "stopping the game: SIGTERM received")
            < position(&stderr, "killed by SIGALRM"),
        "{stderr}"
    );
    assert!(!stderr.contains("grace period over"), "{stderr}");
    assert!(
        fake.requests().is_empty(),
        "a platform stop calls no self-stop"
    );
}
