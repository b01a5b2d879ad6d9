//! Every duration the real agent takes — flags, their environment twins, the `delay` of
//! `POST /v1/match/end` as a string or a number — is bounded where it is parsed, and the
//! largest accepted values run without a panic. Before, `{"delay": 1e19}` aborted PID 1
//! ("overflow when adding duration to instant") and the game died with it.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::time::Duration;

use nix::sys::signal::Signal;
use support::{agent_command, scratch_dir, start_with_api, Running, DEADLINE, FAKE_GAME};

#[test]
fn extreme_delays_are_refused_with_a_400_naming_the_field_and_the_agent_lives_on() {
    let (mut agent, api) = start_with_api(&[], &[]);
    agent.wait_ready();
    for body in [
        r#"{"delay": 1e19}"#,
        r#"{"delay": 1e300}"#,
        r#"{"delay": 18446744073709551615}"#,
        r#"{"delay": "18446744073709551615"}"#,
        r#"{"delay": "584942417355y"}"#,
        r#"{"delay": "25h"}"#,
        r#"{"delay": 86401}"#,
    ] {
        let reply = http::call(api, "POST", "/v1/match/end", &[], body.as_bytes()).unwrap();
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        let json = reply.json();
        assert_eq!(json["error"], "invalid delay", "{body}");
        let detail = json["detail"].as_str().unwrap();
        assert!(detail.contains("`delay`"), "{body}: {detail}");
        assert!(
            detail.contains("too long") || detail.contains("not a"),
            "{body}: {detail}"
        );
    }
    // Still alive and still running the match: nothing was ended by a refused request.
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "{}",
        agent.stderr()
    );
    let status = http::get(api, "/v1/status").json();
    assert_eq!(status["state"], "starting", "{status}");

    // The largest delay accepted (the platform's max_duration) ends the match without a panic;
    // the platform's SIGTERM then stops the game as usual.
    let reply = http::call(api, "POST", "/v1/match/end", &[], br#"{"delay": "24h"}"#).unwrap();
    assert_eq!(reply.status, 202, "{}", reply.body);
    let reply = http::call(api, "POST", "/v1/match/end", &[], br#"{"delay": 86400}"#).unwrap();
    assert_eq!(reply.status, 202, "{}", reply.body);
    agent.signal(Signal::SIGTERM);
    let (status, _) = agent.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(128 + 15), "{}", agent.stderr());
    assert!(!agent.stderr().contains("panicked"), "{}", agent.stderr());
}

#[test]
fn durations_past_their_bound_exit_64_naming_the_flag_or_variable_and_the_value() {
    let marker = scratch_dir("duration-bounds").join("started");
    /// (flags, environment, what the error must mention)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            &["--max-match-duration", "18446744073709551615"],
            &[],
            &[
                "--max-match-duration",
                "\"18446744073709551615\"",
                "too long",
            ],
        ),
        (
            &["--max-match-duration", "25h"],
            &[],
            &[
                "--max-match-duration",
                "\"25h\"",
                "at most 1d",
                "max_duration",
            ],
        ),
        (
            &["--grace-period", "3601"],
            &[],
            &[
                "--grace-period",
                "\"3601\"",
                "at most 1h",
                "termination_grace_period_seconds",
            ],
        ),
        (
            &[],
            &[("EDGEGAP_AGENT_GRACE_PERIOD", "99999999999999s")],
            &[
                "--grace-period",
                "\"99999999999999s\"",
                "EDGEGAP_AGENT_GRACE_PERIOD",
            ],
        ),
        (
            &["--idle-timeout", "366d"],
            &[],
            &["--idle-timeout", "\"366d\"", "at most 365d"],
        ),
        (
            &["--kill-margin", "584942417355y"],
            &[],
            &["--kill-margin", "\"584942417355y\""],
        ),
        (
            &[],
            &[("EDGEGAP_AGENT_SELF_STOP_DEADLINE", "1000y")],
            &[
                "--self-stop-deadline",
                "\"1000y\"",
                "EDGEGAP_AGENT_SELF_STOP_DEADLINE",
            ],
        ),
        (
            &[],
            &[("EDGEGAP_AGENT_HEARTBEAT_TIMEOUT", "18446744073709551615")],
            &["--heartbeat-timeout", "EDGEGAP_AGENT_HEARTBEAT_TIMEOUT"],
        ),
        (
            &["--restart-backoff-max", "400d"],
            &[],
            &["--restart-backoff-max", "\"400d\""],
        ),
    ];
    for (args, env, expected) in cases {
        let mut command = agent_command();
        command
            .args(*args)
            .envs(env.iter().copied())
            .arg("--")
            .arg(FAKE_GAME)
            .arg("--touch")
            .arg(&marker);
        let mut agent = Running::start(command);
        assert_eq!(
            agent.exit_code(),
            64,
            "{args:?} {env:?}: {}",
            agent.stderr()
        );
        let stderr = agent.stderr();
        for needle in *expected {
            assert!(
                stderr.contains(needle),
                "{args:?} {env:?}: {needle:?} missing from:\n{stderr}"
            );
        }
        assert!(!marker.exists(), "{args:?} {env:?}: the game was started");
    }
}

/// Every duration option at its largest accepted value at once: the timers are armed (a
/// year ahead, or the platform's maxima) without a panic, and a stop still works to the
/// millisecond-scale timings it always had.
#[test]
fn the_largest_accepted_durations_run_and_stop_normally() {
    let mut command = agent_command();
    command.args([
        "--grace-period",
        "1h",
        "--kill-margin",
        "59m",
        "--max-match-duration",
        "1440m",
        "--idle-timeout",
        "365d",
        "--empty-timeout",
        "365d",
        "--heartbeat-timeout",
        "365d",
        "--self-stop-wait",
        "365d",
        "--restart-window",
        "365d",
        "--restart-backoff",
        "365d",
        "--restart-backoff-max",
        "365d",
        "--self-stop-deadline",
        "365d",
        "--self-stop-max-backoff",
        "364d",
        "--self-stop-attempt-timeout",
        "365d",
        "--self-stop-initial-backoff",
        "364d",
        "--",
        FAKE_GAME,
        "--on-term-exit",
        "7",
        "--api-call",
        "POST:/v1/ready",
        "--api-call",
        "POST:/v1/heartbeat",
    ]);
    let mut agent = Running::start(command);
    agent.wait_ready();
    agent.wait_line("API POST /v1/heartbeat -> 202");
    agent.signal(Signal::SIGTERM);
    let (status, _) = agent.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(7), "{}", agent.stderr());
    assert!(!agent.stderr().contains("panicked"), "{}", agent.stderr());
}
