//! Arbitrary text (bytes, decoded lossily) into the small value languages of the command line:
//! `parse_signal`, `parse_duration`, `SignalMap::parse`, `ExitCodeMap::parse` and
//! `OnExitPolicy::parse`. None may panic, and each result is checked:
//!
//! - a parsed signal parses back from its name and its number;
//! - a parsed duration is at most `MAX_DURATION` (one year), and parses back from its whole
//!   seconds (when it has no fraction) and from humantime's own formatting of it;
//! - a map or policy that parsed agrees, entry by entry, with a model built from the same text
//!   by splitting on `,` and `=`; every other code/signal passes through (`apply` of an
//!   unmapped code returns it unchanged, out-of-range codes included); a text the agent
//!   refuses is one the model refuses too, and vice versa;
//! - a policy's codes outside 0..=255 all get its `*` action, and its fallback is never
//!   `restart`.
#![no_main]

use std::collections::BTreeMap;

use edgegap_agent::exit_code::ExitCodeMap;
use edgegap_agent::lifecycle::{ExitAction, OnExitPolicy};
use edgegap_agent::units::{
    parse_duration, parse_signal, SignalMap, FORWARDED_SIGNALS, MAX_DURATION,
};
use libfuzzer_sys::fuzz_target;
use nix::sys::signal::Signal;

/// Codes outside 0..=255 that `apply` / `action_for` must treat as unmapped.
const OUT_OF_RANGE: [i32; 6] = [-1, 256, 257, -129, i32::MIN, i32::MAX];

/// The non-empty, trimmed `FROM=TO` entries of a map, or `None` if one lacks `=`.
fn entries(text: &str) -> Option<Vec<(&str, &str)>> {
    text.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| e.split_once('='))
        .collect()
}

/// The model of a map: every entry's sides parsed, no key twice.
fn model<K: Ord, V>(
    text: &str,
    key: impl Fn(&str) -> Option<K>,
    value: impl Fn(&str) -> Option<V>,
) -> Option<BTreeMap<K, V>> {
    let mut map = BTreeMap::new();
    for (from, to) in entries(text)? {
        let from = key(from)?;
        let to = value(to)?;
        if map.insert(from, to).is_some() {
            return None;
        }
    }
    Some(map)
}

fn check_signal(text: &str) {
    let Ok(signal) = parse_signal(text) else {
        return;
    };
    assert_eq!(parse_signal(signal.as_str()), Ok(signal), "{text:?}");
    assert_eq!(
        parse_signal(&(signal as i32).to_string()),
        Ok(signal),
        "{text:?}"
    );
}

fn check_duration(text: &str) {
    let Ok(duration) = parse_duration(text) else {
        return;
    };
    // Every accepted duration is within the bound, so no deadline built from it overflows.
    assert!(duration <= MAX_DURATION, "{text:?} parsed as {duration:?}");
    if duration.subsec_nanos() == 0 {
        assert_eq!(
            parse_duration(&duration.as_secs().to_string()),
            Ok(duration),
            "{text:?}"
        );
    }
    let formatted = humantime::format_duration(duration).to_string();
    assert_eq!(
        parse_duration(&formatted),
        Ok(duration),
        "{text:?} formats as {formatted:?}"
    );
}

fn check_exit_code_map(text: &str) {
    let parsed = ExitCodeMap::parse(text);
    let code = |s: &str| s.trim().parse::<u8>().ok();
    let expected = model(text, code, code);
    assert_eq!(parsed.is_ok(), expected.is_some(), "{text:?}: {parsed:?}");
    let (Ok(map), Some(expected)) = (parsed, expected) else {
        return;
    };
    for c in 0..=255u8 {
        let want = expected.get(&c).copied().unwrap_or(c);
        assert_eq!(map.apply(i32::from(c)), i32::from(want), "{text:?} on {c}");
    }
    for c in OUT_OF_RANGE {
        assert_eq!(map.apply(c), c, "{text:?} on {c}");
    }
}

fn forwarded(signal: Signal) -> bool {
    FORWARDED_SIGNALS.contains(&signal)
}

fn check_signal_map(text: &str) {
    let parsed = SignalMap::parse(text);
    let expected = model(
        text,
        |s| parse_signal(s).ok().filter(|&s| forwarded(s)),
        |s| parse_signal(s).ok(),
    );
    assert_eq!(parsed.is_ok(), expected.is_some(), "{text:?}: {parsed:?}");
    let (Ok(map), Some(expected)) = (parsed, expected) else {
        return;
    };
    for signal in Signal::iterator() {
        assert_eq!(
            map.rewrite(signal),
            expected.get(&signal).copied(),
            "{text:?} on {signal}"
        );
    }
}

fn action(text: &str) -> Option<ExitAction> {
    match text.trim().to_ascii_lowercase().as_str() {
        "stop" => Some(ExitAction::Stop),
        "restart" => Some(ExitAction::Restart),
        "exit" => Some(ExitAction::Exit),
        _ => None,
    }
}

fn check_policy(text: &str) {
    let parsed = OnExitPolicy::parse(text);
    // The model: codes (or `*`, kept as `None`) to actions, each at most once.
    let expected = model(
        text,
        |s| match s.trim() {
            "*" => Some(None),
            code => code.parse::<u8>().ok().map(Some),
        },
        action,
    );
    assert_eq!(parsed.is_ok(), expected.is_some(), "{text:?}: {parsed:?}");
    let (Ok(policy), Some(expected)) = (parsed, expected) else {
        return;
    };
    let otherwise = expected.get(&None).copied().unwrap_or(ExitAction::Exit);
    for c in 0..=255u8 {
        let want = expected.get(&Some(c)).copied().unwrap_or(otherwise);
        assert_eq!(policy.action_for(i32::from(c)), want, "{text:?} on {c}");
    }
    for c in OUT_OF_RANGE {
        assert_eq!(policy.action_for(c), otherwise, "{text:?} on {c}");
    }
    let fallback = policy.fallback();
    assert_ne!(fallback, ExitAction::Restart, "{text:?}");
    if otherwise != ExitAction::Restart {
        assert_eq!(fallback, otherwise, "{text:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_signal(&text);
    check_duration(&text);
    check_exit_code_map(&text);
    check_signal_map(&text);
    check_policy(&text);
    // Each piece of a map on its own, as the parsers see them.
    for piece in text.split([',', '=']).take(64) {
        check_signal(piece);
        check_duration(piece);
    }
});
