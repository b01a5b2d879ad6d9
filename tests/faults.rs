//! Platform faults during self-stop, black box: the real agent in wrap mode, its
//! `ARBITRIUM_DELETE_URL` pointing at a fake platform that refuses connections for a while,
//! answers 5xx, hangs past the per-attempt timeout, answers only after the whole deadline, or
//! fails the TLS handshake.
//!
//! In every test the game (the fake game) ends the match through the API and stays up; on
//! SIGTERM it exits with [`GAME_CODE`] half a second later. Under `--grace-period 3s` (SIGKILL
//! at 2 s, the default 1 s margin before) it must exit by itself: one SIGTERM recorded, its
//! own code reported, no "grace period over". When the platform accepts, the test plays the
//! platform and sends the agent SIGTERM, and the agent exits with the game's code; when the
//! self-stop fails for good, the agent stops the game itself and exits 0. Times are measured
//! against the configured deadline as windows, with [`SLACK`] for a loaded machine.

#[path = "support/fake_platform.rs"]
mod fake_platform;
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fake_platform::{on_own_runtime as platform, FakePlatform, Reply};
use nix::sys::signal::Signal;
use support::{agent_command, lines_of, scratch_dir, wait_until, Running, DEADLINE, FAKE_GAME};

const STOP_PATH: &str = "/v1/self/stop/c0653765de3b/ap-7";
const DELETE_TOKEN: &str = "faults-dt-Vq7Rk2Mw9Zx4";
/// What the game exits with after SIGTERM (distinct from 0, the "self-stop failed" code).
const GAME_CODE: i32 = 42;
/// The game's delay between SIGTERM and its exit.
const GAME_STOP_DELAY: Duration = Duration::from_millis(500);
/// Grace period 3 s minus the default kill margin 1 s: when the agent would SIGKILL the game.
const KILL_AFTER: Duration = Duration::from_secs(2);
/// Room for a loaded machine on top of every upper bound.
const SLACK: Duration = Duration::from_millis(1500);

/// A game in the middle of its match, whose end it has just reported.
struct Match {
    agent: Running,
    record: PathBuf,
    /// When the test saw the game's `POST /v1/match/end` answered: self-stop started just
    /// before.
    ended_at: Instant,
}

/// Starts the agent with the delete URL `url` and the `--self-stop-*` flags `policy`; the game
/// ends the match through the API at once.
fn start_match(test: &str, url: &str, policy: &[&str]) -> Match {
    let record = scratch_dir(test).join("signals");
    let mut command = agent_command();
    command
        .env("ARBITRIUM_REQUEST_ID", "c0653765de3b")
        .env("ARBITRIUM_PUBLIC_IP", "127.0.0.1")
        .env("ARBITRIUM_DELETE_URL", url)
        .env("ARBITRIUM_DELETE_TOKEN", DELETE_TOKEN)
        .args(["--grace-period", "3s", "--self-stop-wait", "60s"])
        .args(policy)
        .args(["--", FAKE_GAME, "--record-signals"])
        .arg(&record)
        .args(["--on-term-exit", &GAME_CODE.to_string()])
        .args([
            "--on-term-delay-ms",
            &GAME_STOP_DELAY.as_millis().to_string(),
        ])
        .args(["--api-call", "POST:/v1/match/end"]);
    let mut agent = Running::start(command);
    agent.wait_line("API POST /v1/match/end -> 202");
    Match {
        agent,
        record,
        ended_at: Instant::now(),
    }
}

/// Every request the fake saw is the self-stop, with the token.
fn assert_all_self_stops(fake: &FakePlatform) {
    for request in fake.requests() {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("DELETE", STOP_PATH)
        );
        assert_eq!(
            request.header("authorization"),
            Some(DELETE_TOKEN.as_bytes())
        );
    }
}

/// Waits for `text` in the agent's log.
fn wait_log(agent: &Running, text: &str) {
    assert!(
        wait_until(DEADLINE, || agent.stderr().contains(text)),
        "no {text:?} in the log:\n{}",
        agent.stderr()
    );
}

/// The game had its grace period: one SIGTERM, and it exited by itself with its own code.
fn assert_game_stopped_with_grace(agent: &Running, record: &Path) {
    let stderr = agent.stderr();
    assert_eq!(lines_of(record), ["SIGTERM"], "{stderr}");
    assert!(
        stderr.contains(&format!("exited with code {GAME_CODE}")),
        "{stderr}"
    );
    assert!(!stderr.contains("grace period over"), "{stderr}");
    assert!(!stderr.contains("SIGKILL"), "{stderr}");
}

/// The platform accepted: the test sends SIGTERM as the platform would; the agent stops the
/// game with grace and exits with its code, before it would have SIGKILLed it.
fn terminate_as_the_platform(mut game: Match) {
    assert!(
        game.agent.child.try_wait().unwrap().is_none(),
        "the agent must wait for SIGTERM"
    );
    let sigterm_at = Instant::now();
    game.agent.signal(Signal::SIGTERM);
    let (status, elapsed) = game.agent.wait_exit(DEADLINE);
    let stop_took = (game.agent.started + elapsed).saturating_duration_since(sigterm_at);
    assert_eq!(status.code(), Some(GAME_CODE), "{}", game.agent.stderr());
    assert!(
        stop_took >= GAME_STOP_DELAY && stop_took < KILL_AFTER,
        "the stop took {stop_took:?}"
    );
    assert_game_stopped_with_grace(&game.agent, &game.record);
}

/// Self-stop failed for good: the agent stopped the game itself, with grace, and exited 0.
/// Returns how long after the match end the agent exited.
fn exits_0_after_stopping_the_game(game: &mut Match) -> Duration {
    let (status, elapsed) = game.agent.wait_exit(DEADLINE);
    let since_end = (game.agent.started + elapsed).saturating_duration_since(game.ended_at);
    let stderr = game.agent.stderr();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("stopping the game and exiting 0"),
        "{stderr}"
    );
    assert!(stderr.contains("self-stop failed"), "{stderr}");
    assert_game_stopped_with_grace(&game.agent, &game.record);
    since_end
}

fn flags(
    deadline: &str,
    attempt_timeout: &str,
    backoff: (&str, &str),
    attempts: u32,
) -> Vec<String> {
    vec![
        format!("--self-stop-deadline={deadline}"),
        format!("--self-stop-attempt-timeout={attempt_timeout}"),
        format!("--self-stop-initial-backoff={}", backoff.0),
        format!("--self-stop-max-backoff={}", backoff.1),
        format!("--self-stop-max-attempts={attempts}"),
    ]
}

fn strs(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}

/// The platform's API is unreachable (connection refused) for a while, then up. The issue
/// speaks of 30 s; the window here is 3 s, under an 8 s deadline, so the test stays short:
/// the agent retries through the refusals and its first DELETE to reach the platform is
/// accepted, at most one backoff (500 ms) after the port opens.
#[test]
fn connection_refused_for_a_while_then_up_is_one_accepted_delete() {
    const DOWN: Duration = Duration::from_secs(3);
    let created = Instant::now();
    let (_runtime, fake) = platform(|| FakePlatform::start_down_for(DOWN));
    let policy = flags("8s", "1s", ("50ms", "500ms"), 50);
    let game = start_match("refused", &fake.url(STOP_PATH), &strs(&policy));
    wait_log(&game.agent, "self-stop accepted (status 200");

    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_all_self_stops(&fake);
    let up = fake.up_at().unwrap().into_std();
    let accepted = requests[0].at.into_std();
    assert!(up.duration_since(created) >= DOWN);
    assert!(accepted >= up);
    assert!(
        accepted - up <= Duration::from_millis(500) + SLACK,
        "accepted {:?} after the port opened",
        accepted - up
    );
    assert!(accepted.duration_since(game.ended_at) <= Duration::from_secs(8));
    let stderr = game.agent.stderr();
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(
        stderr.matches("attempt failed; retrying").count() >= 2,
        "{stderr}"
    );
    terminate_as_the_platform(game);
}

/// The outage, with the default self-stop options: the platform refuses connections
/// for 30 s, then answers 503 for another 30 s, then accepts. The agent keeps retrying (at
/// most 30 s apart) and stays up the whole time — exiting is what would restart the match
/// under `restart_policy: always` — and exactly one DELETE is accepted; then the platform's
/// SIGTERM ends it with the game's code. About a minute and a half.
#[test]
fn a_minute_long_outage_is_outlasted_by_the_default_self_stop_with_one_accepted_delete() {
    const REFUSING: Duration = Duration::from_secs(30);
    const FAILING: Duration = Duration::from_secs(30);
    let (_runtime, fake) = platform(|| FakePlatform::start_down_for(REFUSING));
    fake.fail_for(FAILING, 503);
    let mut game = start_match("outage", &fake.url(STOP_PATH), &[]);

    // Up to acceptance the agent never exits: checked every few milliseconds.
    let accepted = wait_until(REFUSING + FAILING + Duration::from_secs(60), || {
        let status = game.agent.child.try_wait().unwrap();
        assert!(
            status.is_none(),
            "the agent exited mid-outage ({status:?}):\n{}",
            game.agent.stderr()
        );
        game.agent
            .stderr()
            .contains("self-stop accepted (status 200")
    });
    assert!(accepted, "{}", game.agent.stderr());

    let requests = fake.requests();
    assert_all_self_stops(&fake);
    let up = fake.up_at().unwrap().into_std();
    let healthy = up + FAILING;
    let (failed, succeeded): (Vec<_>, Vec<_>) =
        requests.iter().partition(|r| r.at.into_std() < healthy);
    assert_eq!(
        succeeded.len(),
        1,
        "exactly one accepted DELETE: {requests:?}"
    );
    assert!(!failed.is_empty(), "the 5xx half of the outage was seen");
    assert!(
        succeeded[0].at.into_std() - healthy <= Duration::from_secs(30) + SLACK,
        "at most one capped backoff after the platform recovered"
    );
    let stderr = game.agent.stderr();
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(stderr.contains("status 503"), "{stderr}");
    assert!(!stderr.contains("giving up"), "{stderr}");
    assert!(!stderr.contains("stopping the game"), "{stderr}");
    // The game was never stopped during the outage.
    assert!(lines_of(&game.record).is_empty(), "{stderr}");
    terminate_as_the_platform(game);
}

/// Ten 5xx in a row, then 200: eleven attempts, the last accepted, within the deadline.
#[test]
fn ten_server_errors_then_200_is_accepted_on_the_eleventh_attempt() {
    let (_runtime, fake) = platform(FakePlatform::start);
    fake.script(
        [500, 502, 503, 504, 500, 502, 503, 504, 500, 503]
            .into_iter()
            .map(Reply::Status),
    );
    let policy = flags("5s", "1s", ("10ms", "100ms"), 11);
    let game = start_match("5xx", &fake.url(STOP_PATH), &strs(&policy));
    wait_log(
        &game.agent,
        "self-stop accepted (status 200, after 11 attempt(s))",
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 11);
    assert_all_self_stops(&fake);
    let last = requests[10].at.into_std();
    assert!(last.duration_since(game.ended_at) <= Duration::from_secs(5));
    let stderr = game.agent.stderr();
    assert_eq!(
        stderr.matches("attempt failed; retrying").count(),
        10,
        "{stderr}"
    );
    terminate_as_the_platform(game);
}

/// Two answers that hang past the 400 ms per-attempt timeout: each attempt is cut at the
/// timeout and retried; the third is accepted, well within the 5 s deadline.
#[test]
fn answers_that_hang_past_the_attempt_timeout_are_retried() {
    let (_runtime, fake) = platform(FakePlatform::start);
    fake.script([Reply::Hang, Reply::Hang]);
    let policy = flags("5s", "400ms", ("10ms", "50ms"), 5);
    let game = start_match("hang", &fake.url(STOP_PATH), &strs(&policy));
    wait_log(
        &game.agent,
        "self-stop accepted (status 200, after 3 attempt(s))",
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert_all_self_stops(&fake);
    for pair in requests.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(350) && gap <= Duration::from_millis(450) + SLACK,
            "an attempt lasted {gap:?}, not the 400 ms timeout"
        );
    }
    assert!(requests[2].at.into_std().duration_since(game.ended_at) <= Duration::from_secs(5));
    let stderr = game.agent.stderr();
    assert_eq!(stderr.matches("timeout after 400ms").count(), 2, "{stderr}");
    terminate_as_the_platform(game);
}

/// The platform's 200 comes 6 s after the DELETE, past the whole 2 s deadline: the agent
/// gives up at the deadline with a clear final error, stops the game with grace and exits 0,
/// about deadline + the game's stop delay after the match end, long before that 200.
#[test]
fn a_200_after_the_deadline_is_too_late_and_the_agent_exits_0() {
    let (_runtime, fake) = platform(FakePlatform::start);
    let late = Duration::from_secs(6);
    fake.set_default(Reply::Delayed(late, 200));
    let policy = flags("2s", "2s", ("10ms", "100ms"), 3);
    let mut game = start_match("late", &fake.url(STOP_PATH), &strs(&policy));
    let since_end = exits_0_after_stopping_the_game(&mut game);

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_all_self_stops(&fake);
    let expected = Duration::from_secs(2) + GAME_STOP_DELAY;
    assert!(
        since_end >= expected - Duration::from_millis(100) && since_end <= expected + SLACK,
        "the agent exited {since_end:?} after the match end"
    );
    assert!(Instant::now() < requests[0].at.into_std() + late);
    let stderr = game.agent.stderr();
    assert!(
        stderr.contains(
            "self-stop failed after 1 attempt(s): timeout after 2s; gave up at the 2s deadline, after 1 attempts"
        ),
        "{stderr}"
    );
}

/// A TLS failure is retried like any connection error (the documented policy: network
/// errors are retried), bounded by the attempts: exactly 4 handshakes, spaced by the backoff,
/// then a final error naming the TLS problem, the game stopped with grace, exit 0 — long
/// before the 5 s deadline.
fn tls_failure_gives_up_after_the_attempts(test: &str, fake: &FakePlatform, error: &str) {
    let url = format!("https://{}{STOP_PATH}", fake.addr);
    let policy = flags("5s", "1s", ("50ms", "200ms"), 4);
    let mut game = start_match(test, &url, &strs(&policy));
    let since_end = exits_0_after_stopping_the_game(&mut game);

    assert!(fake.requests().is_empty());
    assert!(
        wait_until(DEADLINE, || fake.connections() == 4),
        "{}",
        fake.connections()
    );
    assert!(
        since_end < Duration::from_millis(50 + 100 + 200) + GAME_STOP_DELAY + SLACK,
        "{since_end:?}"
    );
    let stderr = game.agent.stderr();
    assert_eq!(
        stderr.matches("attempt failed; retrying").count(),
        3,
        "{stderr}"
    );
    assert!(
        stderr.contains("self-stop failed after 4 attempt(s): tls error"),
        "{stderr}"
    );
    assert!(stderr.contains("gave up after 4 attempts"), "{stderr}");
    assert!(stderr.contains(error), "{stderr}");
}

#[test]
fn an_untrusted_certificate_fails_with_a_clear_error_and_no_retry_storm() {
    let (_runtime, fake) = platform(FakePlatform::start_tls);
    tls_failure_gives_up_after_the_attempts("untrusted", &fake, "invalid peer certificate");
    assert!(wait_until(DEADLINE, || fake.failed_handshakes() == 4));
}

#[test]
fn a_server_speaking_garbage_fails_the_handshake_with_a_clear_error() {
    let (_runtime, fake) = platform(FakePlatform::start_garbage);
    tls_failure_gives_up_after_the_attempts("garbage", &fake, "tls error");
}
