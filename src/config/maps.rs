//! Small value languages of the command line: signal names, durations, and the
//! `FROM=TO,...` maps for signals and exit codes. Pure functions, fuzzed in `fuzz/`.

use std::collections::BTreeMap;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::os::HANDLED_SIGNALS;

/// Parses a signal as `TERM`, `SIGTERM`, `sigterm` or `15`.
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let trimmed = text.trim();
    if let Ok(number) = trimmed.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| format!("{number} is not a signal number"));
    }
    let upper = trimmed.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| format!("{trimmed:?} is not a signal name (expected e.g. TERM, SIGINT, 15)"))
}

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

/// Splits `A=B,C=D` into pairs, rejecting entries not of the form `form` (e.g. `FROM=TO`)
/// and repeated keys. An empty or all-blank text is an empty map.
pub(crate) fn parse_pairs<K: Ord + Copy, V>(
    text: &str,
    form: &str,
    key: impl Fn(&str) -> Result<K, String>,
    value: impl Fn(&str) -> Result<V, String>,
) -> Result<BTreeMap<K, V>, String> {
    let mut map = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (from, to) = entry
            .split_once('=')
            .ok_or_else(|| format!("{entry:?} is not of the form {form}"))?;
        let from_key = key(from)?;
        if map.insert(from_key, value(to)?).is_some() {
            return Err(format!("{:?} is given twice", from.trim()));
        }
    }
    Ok(map)
}

/// `--forward-signal-map`: rewrites a forwarded signal, e.g. `TERM=INT`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignalMap(BTreeMap<Signal, Signal>);

impl SignalMap {
    pub fn parse(text: &str) -> Result<Self, String> {
        parse_pairs(
            text,
            "FROM=TO",
            |from| {
                let signal = parse_signal(from)?;
                if signal == Signal::SIGCHLD || !HANDLED_SIGNALS.contains(&signal) {
                    return Err(format!(
                        "{} is not a forwarded signal (forwarded: TERM, INT, HUP, QUIT, USR1, USR2, WINCH)",
                        signal.as_str()
                    ));
                }
                Ok(signal)
            },
            parse_signal,
        )
        .map(SignalMap)
    }

    /// The signal to send to the game for a received `signal`, if the map rewrites it.
    pub fn rewrite(&self, signal: Signal) -> Option<Signal> {
        self.0.get(&signal).copied()
    }
}

/// `--exit-code-map`: rewrites the final exit code, e.g. `143=0,137=0`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitCodeMap(BTreeMap<u8, u8>);

impl ExitCodeMap {
    pub fn parse(text: &str) -> Result<Self, String> {
        parse_pairs(text, "FROM=TO", parse_exit_code, parse_exit_code).map(ExitCodeMap)
    }

    /// The code after remapping; unmapped codes pass through.
    pub fn apply(&self, code: i32) -> i32 {
        u8::try_from(code)
            .ok()
            .and_then(|c| self.0.get(&c))
            .map_or(code, |&mapped| i32::from(mapped))
    }
}

fn parse_exit_code(text: &str) -> Result<u8, String> {
    let trimmed = text.trim();
    trimmed
        .parse::<u8>()
        .map_err(|_| format!("{trimmed:?} is not an exit code (expected 0..=255)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_in_every_spelling() {
        for text in ["TERM", "SIGTERM", "sigterm", "term", " 15 "] {
            assert_eq!(parse_signal(text), Ok(Signal::SIGTERM), "{text}");
        }
        assert!(parse_signal("NOPE").unwrap_err().contains("\"NOPE\""));
        assert!(parse_signal("99").unwrap_err().contains("99"));
        assert!(parse_signal("").is_err());
    }

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
    fn signal_map_rewrites_only_what_it_names() {
        let map = SignalMap::parse("TERM=INT, SIGHUP=usr1").unwrap();
        assert_eq!(map.rewrite(Signal::SIGTERM), Some(Signal::SIGINT));
        assert_eq!(map.rewrite(Signal::SIGHUP), Some(Signal::SIGUSR1));
        assert_eq!(map.rewrite(Signal::SIGUSR2), None);
        assert_eq!(SignalMap::parse("").unwrap(), SignalMap::default());
    }

    #[test]
    fn signal_map_errors_name_the_bad_part() {
        assert!(SignalMap::parse("TERM").unwrap_err().contains("FROM=TO"));
        assert!(SignalMap::parse("TERM=INT,TERM=HUP")
            .unwrap_err()
            .contains("twice"));
        assert!(SignalMap::parse("KILL=INT")
            .unwrap_err()
            .contains("SIGKILL is not a forwarded"));
        assert!(SignalMap::parse("CHLD=INT")
            .unwrap_err()
            .contains("not a forwarded"));
        assert!(SignalMap::parse("TERM=BOGUS")
            .unwrap_err()
            .contains("BOGUS"));
    }

    #[test]
    fn exit_code_map_remaps_and_passes_the_rest() {
        let map = ExitCodeMap::parse("143=0,137=0").unwrap();
        assert_eq!(map.apply(143), 0);
        assert_eq!(map.apply(137), 0);
        assert_eq!(map.apply(1), 1);
        assert!(ExitCodeMap::parse("256=0").unwrap_err().contains("\"256\""));
        assert!(ExitCodeMap::parse("1=x").unwrap_err().contains("\"x\""));
        assert!(ExitCodeMap::parse("1=2,1=3").unwrap_err().contains("twice"));
    }
}
