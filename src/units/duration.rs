//! Durations as users write them (`30s`, `2m`, `1m30s`, `500ms`, or bare seconds), bounded
//! where they are parsed, and deadlines computed from them without overflow.
//!
//! Every duration the agent accepts — a flag, its environment twin, a field of an API body —
//! has an upper bound, so no later arithmetic (`Instant + Duration`, a timer) can overflow:
//! [`MAX_DURATION`] (one year) in general, and the platform's own maxima where a value stands
//! for one of them ([`MAX_GRACE_PERIOD`], [`MAX_MATCH_DURATION`]). Deadlines still go through
//! [`deadline_after`], which cannot panic whatever it is given.

use std::time::Duration;

use tokio::time::Instant;

/// The longest duration any option or API field takes: one year (365 days).
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The platform's largest `termination_grace_period_seconds` (3600 s): the longest grace a
/// game can have on Edgegap, so the longest `--grace-period`.
pub const MAX_GRACE_PERIOD: Duration = Duration::from_secs(3600);

/// The platform's largest `max_duration` (1440 minutes): no deployment lives longer, so no
/// match-bound duration (`--max-match-duration`, a match end's `delay`) may be longer.
pub const MAX_MATCH_DURATION: Duration = Duration::from_secs(1440 * 60);

/// Parses a duration: `30s`, `2m`, `1m30s`, `500ms`, `1h`, or a bare number of seconds
/// (`30`, as the platform's `termination_grace_period_seconds` is written), at most
/// [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse_duration_at_most(text, MAX_DURATION, "one year")
}

/// As [`parse_duration`], at most `max` (called `max_name` in the error, e.g. "1h, the
/// platform's largest termination_grace_period_seconds").
pub fn parse_duration_at_most(
    text: &str,
    max: Duration,
    max_name: &str,
) -> Result<Duration, String> {
    let trimmed = text.trim();
    let parsed = match trimmed.parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => humantime::parse_duration(trimmed).map_err(|e| {
            format!("{trimmed:?} is not a duration ({e}; expected e.g. 30s, 2m, 1m30s, 500ms)")
        }),
    }?;
    at_most(parsed, max, max_name).map_err(|why| format!("{trimmed:?} {why}"))
}

/// `duration` if it is at most `max`; else why not (without the value, which the caller
/// shows as it was written).
pub fn at_most(duration: Duration, max: Duration, max_name: &str) -> Result<Duration, String> {
    if duration > max {
        return Err(format!(
            "is too long: at most {} ({max_name})",
            show_bound(max)
        ));
    }
    Ok(duration)
}

/// A bound in its largest whole unit (`365d`, `1h`, `1440m`), as a user would write it
/// (humantime would show a year of days in months).
fn show_bound(bound: Duration) -> String {
    let secs = bound.as_secs();
    if bound.subsec_nanos() != 0 || secs == 0 {
        return humantime::format_duration(bound).to_string();
    }
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `after` from `now`, or `None` when that instant cannot be represented (it lies so far
/// ahead that it never comes): a timer with no deadline never fires. Never panics, unlike
/// `Instant + Duration`.
pub fn deadline_after(now: Instant, after: Duration) -> Option<Instant> {
    now.checked_add(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        let error = parse_duration("soon").unwrap_err();
        assert!(
            error.contains("\"soon\"") && error.contains("30s"),
            "{error}"
        );
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn durations_past_the_bound_are_refused_with_the_value_and_the_bound() {
        assert_eq!(parse_duration("365d"), Ok(MAX_DURATION));
        for text in [
            "366d",
            "31536001",
            "18446744073709551615",
            "18446744073709551615s",
            "584942417355y",
        ] {
            let error = parse_duration(text).unwrap_err();
            assert!(error.contains(&format!("{text:?}")), "{error}");
            assert!(
                error.contains("too long") || error.contains("not a duration"),
                "{error}"
            );
        }
        let error = parse_duration("2y").unwrap_err();
        assert!(error.contains("at most 365d (one year)"), "{error}");
        let error =
            parse_duration_at_most("3601", MAX_GRACE_PERIOD, "termination_grace_period_seconds")
                .unwrap_err();
        assert!(
            error.contains("\"3601\" is too long: at most 1h (termination_grace_period_seconds)"),
            "{error}"
        );
        assert_eq!(
            parse_duration_at_most("1h", MAX_GRACE_PERIOD, "x"),
            Ok(MAX_GRACE_PERIOD)
        );
    }

    #[test]
    fn a_deadline_past_what_an_instant_can_hold_is_none_not_a_panic() {
        let now = Instant::now();
        assert_eq!(
            deadline_after(now, Duration::from_secs(1)),
            Some(now + Duration::from_secs(1))
        );
        assert_eq!(deadline_after(now, Duration::MAX), None);
    }
}
