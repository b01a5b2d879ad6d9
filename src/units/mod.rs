//! The vocabulary of values every layer shares: durations (bounded, and deadlines that cannot
//! overflow), signals, and the `FROM=TO,...`
//! maps of the command line. Pure functions with no dependency on the rest of the crate,
//! fuzzed in `fuzz/` (target `maps`).

mod duration;
mod signal;

use std::collections::BTreeMap;

pub use duration::{
    at_most, deadline_after, parse_duration, parse_duration_at_most, MAX_DURATION,
    MAX_GRACE_PERIOD, MAX_MATCH_DURATION,
};
pub use signal::{parse_signal, SignalMap, FORWARDED_SIGNALS};

/// Splits `A=B,C=D` into pairs, rejecting entries not of the form `form` (e.g. `FROM=TO`)
/// and repeated keys. An empty or all-blank text is an empty map.
pub fn parse_pairs<K: Ord + Copy, V>(
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
