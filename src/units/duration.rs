//! Durations as users write them: `30s`, `2m`, `1m30s`, `500ms`, or bare seconds.

use std::time::Duration;

/// Parses a duration: `30s`, `2m`, `1m30s`, `500ms`, `1h`, or a bare number of seconds
/// (`30`, as the platform's `termination_grace_period_seconds` is written).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if let Ok(seconds) = trimmed.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(trimmed).map_err(|e| {
        format!("{trimmed:?} is not a duration ({e}; expected e.g. 30s, 2m, 1m30s, 500ms)")
    })
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
}
