//! The self-stop client against a fake platform on 127.0.0.1:0: single flight, the retry
//! schedule (on paused tokio time), final answers, and that the token never leaks.

#[path = "support/fake_platform.rs"]
mod fake_platform;
#[path = "support/log_capture.rs"]
mod log_capture;

use std::time::Duration;

use edgegap_agent::platform::client::{build_client, HttpOptions};
use edgegap_agent::platform::{
    AttemptClass, RetryPolicy, Secret, SelfStop, SelfStopOutcome, SelfStopTarget,
};
use fake_platform::{FakePlatform, FixedJitter, Reply};
use log_capture::{assert_token_absent, LogCapture};

use tokio::time::Instant;

/// Every printable ASCII character a header value may carry, and a space.
const TOKEN: &str = "tok-3n!@#$%^&*()_+=~`{}|;:'\",.<>/?[]\\ Zq";
const PATH: &str = "/v1/self/stop/c0653765de3b/ap-1";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A short policy whose schedule is easy to read (the defaults retry for 15 minutes):
/// 8 attempts, 250 ms doubling to 4 s, 5 s per attempt, 20 s in all.
fn short() -> RetryPolicy {
    RetryPolicy::new(8, ms(250), ms(4000), ms(5000), ms(20_000)).unwrap()
}

/// A handle on `fake` with `policy` and jitter at its ceiling (delays = ceilings).
fn handle(fake: &FakePlatform, policy: RetryPolicy) -> SelfStop {
    let target = SelfStopTarget {
        url: fake.url(PATH).parse().unwrap(),
        token: Secret::new(TOKEN),
    };
    let client = build_client(&HttpOptions::default()).unwrap();
    SelfStop::with_jitter(Ok(target), client, policy, Box::new(FixedJitter(u64::MAX)))
}

/// Checks the token is nowhere in the logs, the outcome or the handle's Debug output.
fn assert_no_leak(logs: &LogCapture, stop: &SelfStop, outcome: &SelfStopOutcome) {
    assert_token_absent(TOKEN, &logs.text());
    assert_token_absent(TOKEN, &format!("{outcome:?} {outcome} {stop:?}"));
}

#[tokio::test]
async fn one_delete_under_a_thousand_concurrent_stops() {
    let logs = LogCapture::install();
    let fake = FakePlatform::start().await;
    let stop = handle(&fake, short());
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let stop = stop.clone();
        callers.spawn(async move { stop.stop().await });
    }
    let outcomes = callers.join_all().await;
    let accepted = SelfStopOutcome::Accepted {
        status: 200,
        attempts: 1,
    };
    assert_eq!(outcomes.len(), 1000);
    assert!(outcomes.iter().all(|o| *o == accepted), "{:?}", outcomes[0]);
    // A later caller gets the same result, without a second DELETE.
    assert_eq!(stop.stop().await, accepted);
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "DELETE");
    assert_eq!(requests[0].path, PATH);
    assert_eq!(requests[0].header("authorization"), Some(TOKEN.as_bytes()));
    assert_no_leak(&logs, &stop, &accepted);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_caller_does_not_cancel_the_sequence() {
    let logs = LogCapture::install();
    let fake = FakePlatform::start().await;
    fake.fail_times(2, 503);
    let stop = handle(&fake, short());
    // The first caller stops waiting long before the sequence ends.
    assert!(tokio::time::timeout(ms(1), stop.stop()).await.is_err());
    let outcome = stop.stop().await;
    assert_eq!(
        outcome,
        SelfStopOutcome::Accepted {
            status: 200,
            attempts: 3
        }
    );
    assert_eq!(fake.requests().len(), 3, "one sequence, not restarted");
    assert_no_leak(&logs, &stop, &outcome);
}

#[tokio::test(start_paused = true)]
async fn five_500s_then_200_follows_the_backoff_schedule() {
    let logs = LogCapture::install();
    let fake = FakePlatform::start().await;
    fake.fail_times(5, 500);
    let stop = handle(&fake, short());
    let outcome = stop.stop().await;
    assert_eq!(
        outcome,
        SelfStopOutcome::Accepted {
            status: 200,
            attempts: 6
        }
    );
    let times: Vec<Instant> = fake.requests().iter().map(|r| r.at).collect();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, [ms(250), ms(500), ms(1000), ms(2000), ms(4000)]);
    let text = logs.text();
    for expected in [
        "attempt=1",
        "attempt=5",
        "status 500",
        "next_delay_ms=250",
        "next_delay_ms=4000",
    ] {
        assert!(text.contains(expected), "{expected} not in logs:\n{text}");
    }
    assert_no_leak(&logs, &stop, &outcome);
}

#[tokio::test(start_paused = true)]
async fn a_platform_that_never_answers_is_given_up_at_the_deadline() {
    let logs = LogCapture::install();
    let fake = FakePlatform::start().await;
    fake.set_default(Reply::Hang);
    let policy = short();
    let stop = handle(&fake, policy);
    let start = Instant::now();
    let outcome = stop.stop().await;
    // Attempts at 0, 5.25, 10.75 and 16.75 s; the last is cut to the 20 s deadline.
    assert_eq!(start.elapsed(), policy.deadline());
    let SelfStopOutcome::GaveUp {
        attempts,
        last_error,
    } = &outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!(*attempts, 4);
    assert_eq!(fake.requests().len(), 4);
    assert!(
        last_error.contains("timeout") && last_error.contains("deadline"),
        "{last_error}"
    );
    assert_no_leak(&logs, &stop, &outcome);
}

#[tokio::test(start_paused = true)]
async fn connection_errors_are_retried_up_to_the_attempt_cap() {
    let logs = LogCapture::install();
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}{PATH}", closed.local_addr().unwrap());
    drop(closed);
    let target = SelfStopTarget {
        url: url.parse().unwrap(),
        token: Secret::new(TOKEN),
    };
    let client = build_client(&HttpOptions::default()).unwrap();
    let policy = short();
    let stop = SelfStop::with_jitter(Ok(target), client, policy, Box::new(FixedJitter(u64::MAX)));
    let outcome = stop.stop().await;
    let SelfStopOutcome::GaveUp {
        attempts,
        last_error,
    } = &outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!(*attempts, policy.max_attempts());
    assert!(
        last_error.contains("connect error") && last_error.contains("after 8 attempts"),
        "{last_error}"
    );
    assert_eq!(outcome.exit_code(), 69);
    assert_no_leak(&logs, &stop, &outcome);
}

#[tokio::test]
async fn unauthorized_forbidden_and_other_refusals_are_not_retried() {
    for status in [401, 403, 400, 301] {
        let logs = LogCapture::install();
        let fake = FakePlatform::start().await;
        fake.set_default(Reply::Status(status));
        let stop = handle(&fake, short());
        let outcome = stop.stop().await;
        assert_eq!(
            outcome,
            SelfStopOutcome::Rejected {
                status,
                attempts: 1
            }
        );
        assert_eq!(outcome.exit_code(), 77);
        assert_eq!(fake.requests().len(), 1);
        let hint = logs.text().contains("ARBITRIUM_DELETE_TOKEN");
        assert_eq!(
            hint,
            status == 401 || status == 403,
            "the log says what to check"
        );
        assert_no_leak(&logs, &stop, &outcome);
    }
}

#[tokio::test]
async fn not_found_means_already_gone() {
    let logs = LogCapture::install();
    let fake = FakePlatform::start().await;
    fake.set_default(Reply::Status(404));
    let stop = handle(&fake, short());
    let outcome = stop.stop().await;
    assert_eq!(outcome, SelfStopOutcome::AlreadyGone { attempts: 1 });
    assert!(outcome.is_success());
    assert_eq!(outcome.exit_code(), 0);
    assert_eq!(fake.requests().len(), 1);
    assert_no_leak(&logs, &stop, &outcome);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let logs = LogCapture::install();
    let fake = FakePlatform::start().await;
    fake.script([
        Reply::RetryAfter(429, "3".into()),
        Reply::RetryAfter(503, "7".into()),
    ]);
    let stop = handle(&fake, short());
    let outcome = stop.stop().await;
    assert_eq!(
        outcome,
        SelfStopOutcome::Accepted {
            status: 200,
            attempts: 3
        }
    );
    let times: Vec<Instant> = fake.requests().iter().map(|r| r.at).collect();
    assert_eq!(times[1] - times[0], ms(3000));
    assert_eq!(times[2] - times[1], ms(7000));
    assert!(logs.text().contains("retry_after_ms=3000"));
    assert_no_leak(&logs, &stop, &outcome);
}

#[tokio::test(start_paused = true)]
async fn retry_after_past_the_deadline_gives_up_at_once() {
    let logs = LogCapture::install();
    let fake = FakePlatform::start().await;
    fake.set_default(Reply::RetryAfter(503, "120".into()));
    let stop = handle(&fake, short());
    let start = Instant::now();
    let outcome = stop.stop().await;
    assert_eq!(start.elapsed(), Duration::ZERO, "no waiting for nothing");
    let SelfStopOutcome::GaveUp {
        attempts: 1,
        last_error,
    } = &outcome
    else {
        panic!("{outcome:?}");
    };
    assert!(
        last_error.contains("status 503") && last_error.contains("deadline"),
        "{last_error}"
    );
    assert_no_leak(&logs, &stop, &outcome);
}

#[tokio::test]
async fn without_a_target_nothing_is_sent() {
    let logs = LogCapture::install();
    let client = build_client(&HttpOptions::default()).unwrap();
    let reason = "self-stop is not configured: ARBITRIUM_DELETE_URL is not set".to_owned();
    let stop = SelfStop::new(Err(reason.clone()), client, short());
    let outcome = stop.stop().await;
    assert_eq!(outcome, SelfStopOutcome::NotConfigured { reason });
    assert_eq!(outcome.exit_code(), 64);
    assert!(logs.text().contains("ARBITRIUM_DELETE_URL is not set"));
}

#[tokio::test(start_paused = true)]
async fn the_default_policy_retries_through_a_ten_minute_outage_at_most_30_s_apart() {
    let logs = LogCapture::install();
    const OUTAGE: Duration = Duration::from_secs(600);
    let fake = FakePlatform::start_down_for(OUTAGE).await;
    let stop = handle(&fake, RetryPolicy::default());
    let start = Instant::now();
    let outcome = stop.stop().await;
    let SelfStopOutcome::Accepted {
        status: 200,
        attempts,
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    // Backoff ceilings 0.25, 0.5, 1, 2, 4, 8, 16 s, then 30 s: about 20 attempts refused.
    assert!(attempts > 20, "{attempts}");
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "one DELETE reached the platform");
    let up = fake.up_at().unwrap();
    assert!(up - start >= OUTAGE);
    assert!(
        requests[0].at - up <= Duration::from_secs(30),
        "at most one backoff after"
    );
    let text = logs.text();
    assert!(text.contains("connect error"), "{text}");
    assert!(!text.contains("giving up"), "{text}");
    assert_no_leak(&logs, &stop, &outcome);
}

#[tokio::test(start_paused = true)]
async fn a_request_timeout_408_is_retried() {
    let logs = LogCapture::install();
    let fake = FakePlatform::start().await;
    fake.fail_times(2, 408);
    let stop = handle(&fake, short());
    let outcome = stop.stop().await;
    assert_eq!(
        outcome,
        SelfStopOutcome::Accepted {
            status: 200,
            attempts: 3
        }
    );
    assert!(logs.text().contains("status 408"));
    assert_no_leak(&logs, &stop, &outcome);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_after_retries_carries_every_attempt() {
    let logs = LogCapture::install();
    let fake = FakePlatform::start().await;
    fake.script([Reply::Status(503), Reply::Status(502), Reply::Status(401)]);
    let stop = handle(&fake, short());
    let outcome = stop.stop().await;
    assert_eq!(
        outcome,
        SelfStopOutcome::Rejected {
            status: 401,
            attempts: 3
        }
    );
    assert_eq!(
        outcome.attempt_classes(),
        [
            AttemptClass::Retryable,
            AttemptClass::Retryable,
            AttemptClass::Fatal
        ]
    );
    assert_eq!(outcome.exit_code(), 77);
    assert_no_leak(&logs, &stop, &outcome);
}
