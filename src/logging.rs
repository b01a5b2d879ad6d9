//! The agent's own log lines, on stderr, marked as the agent's so they can be told apart from
//! the game's output that shares the stream. Each event is formatted whole into one buffer and
//! queued as one entry of stderr's writer ([`crate::stdio`]), which never splits it, so an
//! agent line is never split by a line of the game's. Logging never waits for stderr's
//! reader: while it lags more than the writer's buffer, the agent's lines are dropped and
//! counted (`edgegap_agent_output_dropped_lines_total{stream="stderr",source="agent"}`).
//!
//! A small `tracing` subscriber of our own rather than `tracing-subscriber`'s: the agent logs
//! events only (no spans), and this costs the static binary a tenth of the size. The formats
//! are those of `tracing-subscriber`'s `fmt`:
//! - text: `[edgegap-agent] 2026-11-26T01:02:03.456789Z  INFO message key=value key="text"`;
//! - JSON: `{"timestamp":"...","level":"INFO","message":"...","key":value,"target":"edgegap_agent::..."}`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// The marker that starts every text line the agent writes.
pub const TEXT_PREFIX: &str = "[edgegap-agent]";

/// How the agent's log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `[edgegap-agent] <time> <LEVEL> message key=value`
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(format: LogFormat, max_level: LevelFilter) {
    let logger = Logger {
        format,
        max_level,
        next_span: AtomicU64::new(1),
    };
    // Fails only if a subscriber is already installed, and then that one logs.
    let _ = tracing::subscriber::set_global_default(logger);
}

struct Logger {
    format: LogFormat,
    max_level: LevelFilter,
    next_span: AtomicU64,
}

impl Subscriber for Logger {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= &self.max_level
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max_level)
    }

    // The agent opens no spans; ids are handed out so that a library's would not break.
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed).max(1))
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let line = match self.format {
            LogFormat::Text => text_line(event),
            LogFormat::Json => json_line(event),
        };
        // A whole line, queued; dropped and counted if stderr's reader lags too far.
        crate::stdio::stderr().write(line.as_bytes(), crate::stdio::Source::Agent);
    }
}

fn text_line(event: &Event<'_>) -> String {
    let mut fields = TextFields::default();
    event.record(&mut fields);
    let level = event.metadata().level();
    format!(
        "{TEXT_PREFIX} {} {level:>5} {}{}\n",
        timestamp(),
        fields.message,
        fields.rest
    )
}

fn json_line(event: &Event<'_>) -> String {
    let mut fields = JsonFields::default();
    event.record(&mut fields);
    let metadata = event.metadata();
    let mut line = String::with_capacity(128 + fields.0.len());
    line.push_str("{\"timestamp\":");
    push_json_string(&mut line, &timestamp());
    line.push_str(",\"level\":");
    push_json_string(&mut line, metadata.level().as_str());
    line.push_str(&fields.0);
    line.push_str(",\"target\":");
    push_json_string(&mut line, metadata.target());
    line.push_str("}\n");
    line
}

/// `message` first, then ` name=value` for the other fields: strings quoted and escaped,
/// `%value` fields as Display, the rest as Debug.
#[derive(Default)]
struct TextFields {
    message: String,
    rest: String,
}

impl Visit for TextFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

/// `,"name":value` for every field: numbers and booleans as JSON, the rest as strings.
#[derive(Default)]
struct JsonFields(String);

impl JsonFields {
    fn key(&mut self, field: &Field) {
        self.0.push(',');
        push_json_string(&mut self.0, field.name());
        self.0.push(':');
    }
}

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.key(field);
        push_json_string(&mut self.0, &format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_string(&mut self.0, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }
}

fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Now as RFC 3339 UTC with microseconds, e.g. `2026-11-26T01:02:03.456789Z`.
fn timestamp() -> String {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since_epoch.subsec_micros()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_become_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_783), (2026, 11, 26));
        assert_eq!(civil_from_days(20_818), (2026, 12, 31));
        assert_eq!(civil_from_days(20_819), (2027, 1, 1));
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        push_json_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn text_and_json_lines_carry_the_message_and_fields() {
        // Events need a dispatcher to be recorded: format one through a scoped subscriber.
        struct Capture(std::sync::Mutex<Vec<String>>);
        impl Subscriber for Capture {
            fn enabled(&self, _: &Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &Attributes<'_>) -> Id {
                Id::from_u64(1)
            }
            fn record(&self, _: &Id, _: &Record<'_>) {}
            fn record_follows_from(&self, _: &Id, _: &Id) {}
            fn event(&self, event: &Event<'_>) {
                let mut lines = self.0.lock().unwrap();
                lines.push(text_line(event));
                lines.push(json_line(event));
            }
            fn enter(&self, _: &Id) {}
            fn exit(&self, _: &Id) {}
        }
        let capture = std::sync::Arc::new(Capture(std::sync::Mutex::new(Vec::new())));
        tracing::subscriber::with_default(capture.clone(), || {
            let addr = "127.0.0.1:7070";
            tracing::info!(pid = 42, reason = "done", addr = %addr, ok = true, "game \"x\" started");
        });
        let lines = capture.0.lock().unwrap();
        let text = &lines[0];
        assert!(text.starts_with("[edgegap-agent] 20"), "{text}");
        assert!(
            text.ends_with(
                "Z  INFO game \"x\" started pid=42 reason=\"done\" addr=127.0.0.1:7070 ok=true\n"
            ),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(json["level"], "INFO");
        assert_eq!(json["message"], "game \"x\" started");
        assert_eq!(json["pid"], 42);
        assert_eq!(json["reason"], "done");
        assert_eq!(json["addr"], "127.0.0.1:7070");
        assert_eq!(json["ok"], true);
        assert!(json["target"]
            .as_str()
            .unwrap()
            .starts_with("edgegap_agent"));
        assert!(json["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
