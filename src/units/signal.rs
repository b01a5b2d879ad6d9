//! Signals by name or number, the set the agent forwards, and `--forward-signal-map`.

use std::collections::BTreeMap;

use nix::sys::signal::Signal;

use super::parse_pairs;

/// The signals the agent forwards to the game's process group.
pub const FORWARDED_SIGNALS: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

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
                if !FORWARDED_SIGNALS.contains(&signal) {
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
}
