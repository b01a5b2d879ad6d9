//! Signals by name or number, the set the agent forwards, and `--forward-signal-map`.

use std::collections::BTreeMap;

use nix::sys::signal::Signal;

use super::parse_pairs;

/// The signals the agent forwards to the game's process group: every standard signal
/// (1–31) but the two no process can catch (KILL, STOP) and CHLD, which tells the agent
/// itself that a child ended. The synchronous ones (ILL, TRAP, ABRT, BUS, FPE, SEGV, SYS)
/// are here too: sent with kill(2), by a person or a tool, they are ordinary asynchronous
/// deliveries, forwarded like the rest. A real fault in the agent's own code is not a
/// delivery anyone sent, and is not taken: the kernel forces its default action, whatever
/// the mask, and the agent dies of it (see `os::signals`).
pub const FORWARDED_SIGNALS: [Signal; 28] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGILL,
    Signal::SIGTRAP,
    Signal::SIGABRT,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGUSR1,
    Signal::SIGSEGV,
    Signal::SIGUSR2,
    Signal::SIGPIPE,
    Signal::SIGALRM,
    Signal::SIGTERM,
    Signal::SIGSTKFLT,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGURG,
    Signal::SIGXCPU,
    Signal::SIGXFSZ,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGWINCH,
    Signal::SIGIO,
    Signal::SIGPWR,
    Signal::SIGSYS,
];

/// The job-control stops (terminal stop, background read and write): forwarded to the
/// game's group, after which the agent suspends itself, unless it is PID 1.
pub fn is_job_control_stop(signal: Signal) -> bool {
    matches!(signal, Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU)
}

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
                        "{} is not a forwarded signal (every signal 1-31 is, except KILL, STOP and CHLD)",
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

    /// Every standard signal is forwarded but the three the kernel or the agent keeps.
    #[test]
    fn every_standard_signal_but_kill_stop_and_chld_is_forwarded() {
        for number in 1..=31 {
            let signal = Signal::try_from(number).unwrap();
            let kept = [Signal::SIGKILL, Signal::SIGSTOP, Signal::SIGCHLD].contains(&signal);
            assert_eq!(FORWARDED_SIGNALS.contains(&signal), !kept, "{signal}");
            let rewritable = SignalMap::parse(&format!("{number}=TERM"));
            assert_eq!(rewritable.is_ok(), !kept, "{signal}: {rewritable:?}");
        }
        let map = SignalMap::parse("SEGV=TERM,TSTP=STOP,cont=CONT").unwrap();
        assert_eq!(map.rewrite(Signal::SIGSEGV), Some(Signal::SIGTERM));
        assert_eq!(map.rewrite(Signal::SIGTSTP), Some(Signal::SIGSTOP));
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
        assert!(SignalMap::parse("STOP=INT")
            .unwrap_err()
            .contains("SIGSTOP is not a forwarded"));
        assert!(SignalMap::parse("TERM=BOGUS")
            .unwrap_err()
            .contains("BOGUS"));
    }
}
