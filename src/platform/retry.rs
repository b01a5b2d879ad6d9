//! The retry policy of every platform call (self-stop, context fetch): a validated value with
//! pure delay maths, so the schedule is unit-tested without clocks or sockets.
//!
//! Exponential backoff with full jitter: the delay before retry `n` (0-based) is uniform in
//! `0 ..= min(max_backoff, initial_backoff * 2^n)`. Retries stop at `max_attempts` attempts or
//! when the total `deadline` would be passed, whichever comes first; each attempt gets at most
//! `attempt_timeout` and never more than what is left of the deadline. A `Retry-After` from the
//! platform replaces the jittered delay; when it points past the deadline the sequence gives
//! up at once rather than wait for nothing.
//!
//! The defaults are chosen from what giving up costs. A self-stop that gives up makes the
//! agent stop the game and exit, and under `restart_policy: always` (the platform's default)
//! that exit starts a new match on a deployment that keeps billing. So by default a self-stop
//! outlasts an outage of the platform's API: it retries for 15 minutes, at most 30 s apart,
//! with no cap on the number of attempts. The self-stop runs before the SIGTERM it causes, so
//! this time is not taken from any grace period.

use std::time::Duration;

/// The validated policy. Build it with [`RetryPolicy::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    attempt_timeout: Duration,
    deadline: Duration,
}

impl RetryPolicy {
    /// The default total deadline: 15 minutes, past outages of seconds to minutes.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(15 * 60);
    /// The default backoff cap: never more than 30 s between two attempts.
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
    pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(250);
    pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
}

impl Default for RetryPolicy {
    /// No attempt cap, backoff 250 ms doubling up to 30 s, 5 s per attempt, 15 min in all.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: u32::MAX,
            initial_backoff: Self::DEFAULT_INITIAL_BACKOFF,
            max_backoff: Self::DEFAULT_MAX_BACKOFF,
            attempt_timeout: Self::DEFAULT_ATTEMPT_TIMEOUT,
            deadline: Self::DEFAULT_DEADLINE,
        }
    }
}

/// What is wrong with a policy; the names are the flags that set each value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("--self-stop-max-attempts must be at least 1")]
    NoAttempts,
    #[error("--self-stop-{0} must be longer than zero")]
    Zero(&'static str),
    #[error("--self-stop-initial-backoff ({initial}) must not be longer than --self-stop-max-backoff ({max})")]
    BackoffOrder { initial: String, max: String },
    #[error("--self-stop-attempt-timeout ({timeout}) must not be longer than --self-stop-deadline ({deadline})")]
    TimeoutPastDeadline { timeout: String, deadline: String },
    #[error(
        "--self-stop-max-backoff ({max}) must be shorter than --self-stop-deadline ({deadline})"
    )]
    BackoffPastDeadline { max: String, deadline: String },
}

fn show(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

impl RetryPolicy {
    pub fn new(
        max_attempts: u32,
        initial_backoff: Duration,
        max_backoff: Duration,
        attempt_timeout: Duration,
        deadline: Duration,
    ) -> Result<Self, PolicyError> {
        if max_attempts == 0 {
            return Err(PolicyError::NoAttempts);
        }
        for (name, value) in [
            ("initial-backoff", initial_backoff),
            ("max-backoff", max_backoff),
            ("attempt-timeout", attempt_timeout),
            ("deadline", deadline),
        ] {
            if value.is_zero() {
                return Err(PolicyError::Zero(name));
            }
        }
        if initial_backoff > max_backoff {
            return Err(PolicyError::BackoffOrder {
                initial: show(initial_backoff),
                max: show(max_backoff),
            });
        }
        if attempt_timeout > deadline {
            return Err(PolicyError::TimeoutPastDeadline {
                timeout: show(attempt_timeout),
                deadline: show(deadline),
            });
        }
        if max_backoff >= deadline {
            return Err(PolicyError::BackoffPastDeadline {
                max: show(max_backoff),
                deadline: show(deadline),
            });
        }
        Ok(RetryPolicy {
            max_attempts,
            initial_backoff,
            max_backoff,
            attempt_timeout,
            deadline,
        })
    }

    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }
    pub fn attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The largest delay before retry `retry` (0 for the wait after the first attempt):
    /// `min(max_backoff, initial_backoff * 2^retry)`, without overflow.
    pub fn backoff_ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .map_or(self.max_backoff, |d| d.min(self.max_backoff))
    }

    /// Full jitter: a delay uniform in `0 ..= backoff_ceiling(retry)`, drawn from `jitter`.
    pub fn delay(&self, retry: u32, jitter: &mut dyn JitterSource) -> Duration {
        let ceiling = self.backoff_ceiling(retry).as_nanos();
        let nanos = ceiling * u128::from(jitter.next_u64()) / u128::from(u64::MAX);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// What to do after failed attempt number `attempt` (1-based), with `elapsed` time spent
    /// since the sequence started and the platform's `Retry-After`, if any.
    pub fn next(
        &self,
        attempt: u32,
        elapsed: Duration,
        retry_after: Option<Duration>,
        jitter: &mut dyn JitterSource,
    ) -> Next {
        if attempt >= self.max_attempts {
            return Next::GiveUp(GiveUpReason::Attempts);
        }
        let remaining = self.deadline.saturating_sub(elapsed);
        let delay = retry_after.unwrap_or_else(|| self.delay(attempt - 1, jitter));
        if delay >= remaining {
            return Next::GiveUp(GiveUpReason::Deadline);
        }
        Next::RetryAfter(delay)
    }

    /// The timeout of an attempt that starts after `elapsed`: the per-attempt timeout, cut
    /// to what is left of the deadline (zero when nothing is left).
    pub fn attempt_budget(&self, elapsed: Duration) -> Duration {
        self.attempt_timeout
            .min(self.deadline.saturating_sub(elapsed))
    }
}

/// The decision after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    RetryAfter(Duration),
    GiveUp(GiveUpReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// `max_attempts` attempts were made.
    Attempts,
    /// The next attempt could not start before the deadline.
    Deadline,
}

/// Where jitter comes from; injectable so tests choose the schedule.
pub trait JitterSource: Send {
    fn next_u64(&mut self) -> u64;
}

/// A tiny PRNG (SplitMix64); jitter needs spread, not cryptographic strength.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// Seeded from the clock and the process id, so replicas of a fleet do not retry in step.
    pub fn from_entropy() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        SplitMix64(nanos ^ (u64::from(std::process::id()) << 32))
    }
}

impl JitterSource for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Always the same value: `u64::MAX` gives the full ceiling, `0` no delay.
    #[derive(Debug, Clone, Copy)]
    struct FixedJitter(u64);

    impl JitterSource for FixedJitter {
        fn next_u64(&mut self) -> u64 {
            self.0
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A short policy whose schedule is easy to read: 8 attempts, 250 ms doubling to 4 s, 5 s
    /// per attempt, 20 s in all.
    fn short() -> RetryPolicy {
        RetryPolicy::new(8, ms(250), ms(4000), ms(5000), ms(20_000)).unwrap()
    }

    #[test]
    fn the_default_outlasts_a_ten_minute_outage_with_attempts_at_most_30_s_apart() {
        let policy = RetryPolicy::default();
        assert!(policy.deadline() >= Duration::from_secs(600));
        assert_eq!(policy.max_attempts(), u32::MAX);
        let ceilings: Vec<u64> = (0..10)
            .map(|n| policy.backoff_ceiling(n).as_millis() as u64)
            .collect();
        assert_eq!(
            ceilings,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30_000, 30_000, 30_000]
        );
        // Failing at once, at the ceiling every time: still retrying at 14 min.
        let mut max = FixedJitter(u64::MAX);
        let mut elapsed = Duration::ZERO;
        let mut attempt = 1;
        while let Next::RetryAfter(delay) = policy.next(attempt, elapsed, None, &mut max) {
            assert!(delay <= Duration::from_secs(30));
            elapsed += delay;
            attempt += 1;
        }
        assert!(elapsed >= Duration::from_secs(14 * 60), "{elapsed:?}");
        assert!(elapsed <= policy.deadline());
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let policy = short();
        let ceilings: Vec<u64> = (0..8)
            .map(|n| policy.backoff_ceiling(n).as_millis() as u64)
            .collect();
        assert_eq!(ceilings, [250, 500, 1000, 2000, 4000, 4000, 4000, 4000]);
        assert_eq!(policy.backoff_ceiling(u32::MAX), ms(4000));
    }

    #[test]
    fn full_jitter_spans_zero_to_ceiling() {
        let policy = short();
        assert_eq!(policy.delay(2, &mut FixedJitter(u64::MAX)), ms(1000));
        assert_eq!(policy.delay(2, &mut FixedJitter(0)), Duration::ZERO);
        let half = policy.delay(2, &mut FixedJitter(u64::MAX / 2));
        assert!(ms(499) < half && half <= ms(500), "{half:?}");
        let mut rng = SplitMix64::new(7);
        let delays: Vec<Duration> = (0..1000).map(|_| policy.delay(3, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= ms(2000)));
        assert!(delays.iter().any(|d| *d < ms(500)) && delays.iter().any(|d| *d > ms(1500)));
    }

    #[test]
    fn gives_up_on_attempts_and_on_deadline() {
        let policy = short();
        let mut max = FixedJitter(u64::MAX);
        assert_eq!(
            policy.next(1, ms(0), None, &mut max),
            Next::RetryAfter(ms(250))
        );
        assert_eq!(
            policy.next(8, ms(0), None, &mut max),
            Next::GiveUp(GiveUpReason::Attempts)
        );
        assert_eq!(
            policy.next(5, ms(17_000), None, &mut max),
            Next::GiveUp(GiveUpReason::Deadline)
        );
        assert_eq!(
            policy.next(5, ms(15_000), None, &mut max),
            Next::RetryAfter(ms(4000))
        );
    }

    #[test]
    fn retry_after_replaces_backoff_but_not_the_deadline() {
        let policy = short();
        let mut zero = FixedJitter(0);
        assert_eq!(
            policy.next(1, ms(0), Some(ms(3000)), &mut zero),
            Next::RetryAfter(ms(3000))
        );
        assert_eq!(
            policy.next(1, ms(0), Some(ms(60_000)), &mut zero),
            Next::GiveUp(GiveUpReason::Deadline)
        );
    }

    #[test]
    fn attempt_budget_is_cut_to_the_deadline() {
        let policy = short();
        assert_eq!(policy.attempt_budget(ms(0)), ms(5000));
        assert_eq!(policy.attempt_budget(ms(18_000)), ms(2000));
        assert_eq!(policy.attempt_budget(ms(25_000)), Duration::ZERO);
    }

    #[test]
    fn validation_names_the_flags() {
        let s = Duration::from_secs;
        let err = |r: Result<RetryPolicy, PolicyError>| r.unwrap_err().to_string();
        assert!(
            err(RetryPolicy::new(0, ms(1), s(1), s(1), s(2))).contains("--self-stop-max-attempts")
        );
        assert!(err(RetryPolicy::new(1, ms(0), s(1), s(1), s(2)))
            .contains("--self-stop-initial-backoff"));
        assert!(err(RetryPolicy::new(1, s(2), s(1), s(1), s(5)))
            .contains("--self-stop-max-backoff (1s)"));
        assert!(err(RetryPolicy::new(1, ms(1), s(1), s(9), s(5)))
            .contains("--self-stop-attempt-timeout (9s)"));
        assert!(
            err(RetryPolicy::new(1, ms(1), s(5), s(1), s(5))).contains("--self-stop-deadline (5s)")
        );
        assert!(RetryPolicy::new(1, ms(1), s(1), s(1), s(2)).is_ok());
    }
}
