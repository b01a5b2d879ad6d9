//! Timestamps in the platform's formats: `2025-11-29 22:35:31.971359` (status, tags, apps,
//! versions, registry tags: UTC, microseconds, a space between date and time), the metrics'
//! `2021-07-14 14:17:37.711` (milliseconds) and `00:00:00` labels, and the private-fleet
//! hosts' ISO 8601 `2025-11-26T16:32:30.825138Z`; and the parsing of the metrics' query
//! times (`%Y-%m-%d %H:%M:%S.%f`).

use std::time::SystemTime;

/// `2025-11-29 22:35:31.971359`.
pub fn platform(time: SystemTime) -> String {
    let iso = iso(time);
    iso.trim_end_matches('Z').replacen('T', " ", 1)
}

/// `2021-07-14 14:17:37.711`.
pub fn platform_millis(time: SystemTime) -> String {
    let iso = humantime::format_rfc3339_millis(time).to_string();
    iso.trim_end_matches('Z').replacen('T', " ", 1)
}

/// `2025-11-26T16:32:30.825138Z`.
pub fn iso(time: SystemTime) -> String {
    humantime::format_rfc3339_micros(time).to_string()
}

/// `22:35:31`: the time of day, the metrics' labels.
pub fn time_of_day(time: SystemTime) -> String {
    let iso = humantime::format_rfc3339_seconds(time).to_string();
    iso.get(11..19).unwrap_or("00:00:00").to_owned()
}

/// Parses `%Y-%m-%d %H:%M:%S.%f` (the fraction optional, any number of digits), UTC.
pub fn parse_platform(text: &str) -> Result<SystemTime, String> {
    let trimmed = text.trim();
    let valid = trimmed.len() >= 19
        && trimmed.as_bytes().get(10) == Some(&b' ')
        && trimmed.get(..19).is_some_and(|head| {
            head.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                10 => b == b' ',
                13 | 16 => b == b':',
                _ => b.is_ascii_digit(),
            })
        });
    if !valid {
        return Err(format!(
            "{text:?} does not match %Y-%m-%d %H:%M:%S.%f (e.g. 2021-07-10 00:00:00.00)"
        ));
    }
    humantime::parse_rfc3339_weak(trimmed).map_err(|e| format!("{text:?} is not a valid time: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_follow_the_documents_examples() {
        let at = UNIX_EPOCH + Duration::from_micros(1_764_455_731_971_359);
        assert_eq!(platform(at), "2025-11-29 22:35:31.971359");
        assert_eq!(platform_millis(at), "2025-11-29 22:35:31.971");
        assert_eq!(iso(at), "2025-11-29T22:35:31.971359Z");
        assert_eq!(time_of_day(at), "22:35:31");
    }

    #[test]
    fn query_times_parse_with_or_without_a_fraction() {
        let at = parse_platform("2021-07-10 00:00:00.00").unwrap();
        assert_eq!(platform(at), "2021-07-10 00:00:00.000000");
        assert!(parse_platform("2021-07-10 00:00:01").is_ok());
        assert!(parse_platform("2021-07-10T00:00:00").is_err());
        assert!(parse_platform("yesterday").is_err());
    }
}
