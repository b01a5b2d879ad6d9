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
//!
//! **One event, one line, whatever it carries.** Log lines carry text from outside the agent:
//! match-end reasons and player ids from the API, the pre-stop hook's output, commands and
//! paths, platform answers. This formatter is the one place that makes them safe, so no call
//! site has to: in text lines, every control character (C0, DEL, C1 — so no newline, carriage
//! return or ANSI escape sequence) and every Unicode line separator or bidirectional override
//! in the message or a field is written as an escape (`\n`, `\r`, `\t`, `\u{1b}`); in JSON
//! lines the same characters are `\uXXXX` escapes inside their string. Text that was not
//! UTF-8 reaches a log line only through a lossy conversion (U+FFFD). A text line therefore
//! always starts with [`TEXT_PREFIX`] and ends at its own newline; what the game itself
//! prints on the shared stream is the game's, passed through untouched.

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
        // `%value` fields and the message arrive here as Display output, raw: escaped whole.
        let formatted = format!("{value:?}");
        if field.name() == "message" {
            push_text_escaped(&mut self.message, &formatted);
        } else {
            let _ = write!(self.rest, " {}=", field.name());
            push_text_escaped(&mut self.rest, &formatted);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            push_text_escaped(&mut self.message, value);
        } else {
            // Quoted with Rust's escapes (which already cover controls), then the same pass
            // as everything else, so no character this module escapes can slip through.
            let _ = write!(self.rest, " {}=", field.name());
            push_text_escaped(&mut self.rest, &format!("{value:?}"));
        }
    }
}

/// True for the characters no log line may carry raw: C0 controls (newline, carriage return,
/// escape...), DEL and C1 controls (`char::is_control`), the Unicode line and paragraph
/// separators, and the bidirectional marks and overrides that make text read differently
/// from how it is stored.
fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Appends `text` to a text line with [`must_escape`] characters written as Rust-style
/// escapes (`\n`, `\r`, `\t`, `\u{1b}`).
fn push_text_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if must_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
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
            c if must_escape(c) => {
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

    /// The text and JSON lines `emit` logs, formatted through a scoped subscriber (events need
    /// a dispatcher to be recorded).
    fn lines_of(emit: impl FnOnce()) -> (String, String) {
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
        tracing::subscriber::with_default(capture.clone(), emit);
        let mut lines = capture.0.lock().unwrap();
        assert_eq!(lines.len(), 2);
        let json = lines.pop().unwrap();
        (lines.pop().unwrap(), json)
    }

    #[test]
    fn text_and_json_lines_carry_the_message_and_fields() {
        let (text, json) = lines_of(|| {
            let addr = "127.0.0.1:7070";
            tracing::info!(pid = 42, reason = "done", addr = %addr, ok = true, "game \"x\" started");
        });
        assert!(text.starts_with("[edgegap-agent] 20"), "{text}");
        assert!(
            text.ends_with(
                "Z  INFO game \"x\" started pid=42 reason=\"done\" addr=127.0.0.1:7070 ok=true\n"
            ),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
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

    /// Text from outside, in every position an event has (message, `%` Display field, `?`
    /// Debug field, string field), never starts a line or carries a control character.
    #[test]
    fn forged_text_stays_inside_its_one_line() {
        const FORGED: &str = "won\n[edgegap-agent] 2026-01-01T00:00:00Z ERROR forged\r\u{1b}[31mred\u{1b}[0m\u{9b}2J\u{7f}\u{0}\t\u{2028}\u{202e}end";
        /// A Debug impl that writes its text raw, as a careless one would.
        struct Raw(&'static str);
        impl std::fmt::Debug for Raw {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        let (text, json) = lines_of(|| {
            let shown = FORGED;
            let raw = Raw(FORGED);
            tracing::warn!(reason = FORGED, shown = %shown, raw = ?raw, "match ended: {FORGED}");
        });
        for line in [&text, &json] {
            assert_eq!(line.matches('\n').count(), 1, "{line}");
            assert!(line.ends_with('\n'), "{line}");
            let body = &line[..line.len() - 1];
            assert!(!body.chars().any(must_escape), "{line:?}");
        }
        assert!(text.starts_with(TEXT_PREFIX));
        assert_eq!(
            text.matches(TEXT_PREFIX).count(),
            5,
            "ours, and the forged one escaped 4 times"
        );
        assert!(
            text.contains(r"match ended: won\n[edgegap-agent] 2026-01-01T00:00:00Z ERROR forged\r\u{1b}[31mred\u{1b}[0m\u{9b}2J\u{7f}\u{0}\t\u{2028}\u{202e}end"),
            "{text}"
        );
        assert!(text.contains(r#" reason="won\n[edgegap-agent]"#), "{text}");
        // JSON keeps the text exactly, as escapes inside the strings.
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["reason"], FORGED);
        assert_eq!(value["shown"], FORGED);
        assert_eq!(value["raw"], FORGED);
        assert_eq!(value["message"], format!("match ended: {FORGED}"));
        for escape in [
            r"\u001b", r"\u009b", r"\u007f", r"\u0000", r"\u2028", r"\u202e", r"\n", r"\r",
        ] {
            assert!(json.contains(escape), "{escape} in {json}");
        }
    }
}
