//! The agent's own log lines, on stderr, marked as the agent's so they can be told apart from
//! the game's output that shares the stream. Each event is formatted whole and written with a
//! single `write`, so an agent line is never split by a line of the game's.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogFormat, LoggingOptions};

/// The marker that starts every text line the agent writes.
pub const TEXT_PREFIX: &str = "[edgegap-agent]";

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(options: &LoggingOptions) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(options.log_level)
        .with_ansi(false);
    match options.log_format {
        LogFormat::Text => builder
            .event_format(Prefixed(Format::default().with_target(false)))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

/// Puts [`TEXT_PREFIX`] in front of the default text format.
struct Prefixed<F>(F);

impl<S, N, F> FormatEvent<S, N> for Prefixed<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "{TEXT_PREFIX} ")?;
        self.0.format_event(ctx, writer, event)
    }
}
