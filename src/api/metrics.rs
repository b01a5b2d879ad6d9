//! The agent's counters and their Prometheus text rendering (`GET /metrics`).
//!
//! Counters are plain atomics in fixed arrays: labels come from small closed sets (a route
//! name, never a raw path; a known status code or `other`; a self-stop outcome), so the
//! number of series is bounded whatever clients send. Gauges that the supervisor owns
//! (uptime, restarts, lifecycle state) are read from the published [`AgentStatus`] when
//! rendering; the players gauge from the API's own set; the dropped output from the stdout
//! and stderr writers ([`crate::stdio`]).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::routes::Route;
use crate::lifecycle::{AgentStatus, Lifecycle};
use crate::platform::{AttemptClass, SelfStopOutcome};
use crate::stdio;

/// Status codes that get their own label value; anything else is counted as `other`.
const STATUS_CODES: [u16; 10] = [200, 202, 400, 401, 404, 405, 408, 413, 500, 503];
const STATUS_SLOTS: usize = STATUS_CODES.len() + 1;

/// Why the API closed a connection its client had not closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionCut {
    /// No whole request head within the head timeout (idle keep-alive connections included).
    HeadTimeout,
    /// Closed to make room for a new connection.
    Evicted,
    /// Its client did not take an answer within the answer timeout.
    Stalled,
}

impl ConnectionCut {
    const ALL: [ConnectionCut; 3] = [
        ConnectionCut::HeadTimeout,
        ConnectionCut::Evicted,
        ConnectionCut::Stalled,
    ];

    fn label(self) -> &'static str {
        match self {
            ConnectionCut::HeadTimeout => "head_timeout",
            ConnectionCut::Evicted => "evicted",
            ConnectionCut::Stalled => "stalled",
        }
    }
}

/// The agent's counters. Shared (`Arc`) between the API and the self-stop's caller.
pub struct Metrics {
    requests: [[AtomicU64; STATUS_SLOTS]; Route::ALL.len()],
    self_stop: [AtomicU64; AttemptClass::ALL.len()],
    connections_open: AtomicU64,
    connections_cut: [AtomicU64; ConnectionCut::ALL.len()],
}

/// Counts one open connection until it is dropped.
pub struct OpenConnection<'a>(&'a Metrics);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: [const { [const { AtomicU64::new(0) }; STATUS_SLOTS] }; Route::ALL.len()],
            self_stop: [const { AtomicU64::new(0) }; AttemptClass::ALL.len()],
            connections_open: AtomicU64::new(0),
            connections_cut: [const { AtomicU64::new(0) }; ConnectionCut::ALL.len()],
        }
    }
}

impl Metrics {
    /// Counts one answered API request.
    pub fn record_request(&self, route: Route, status: u16) {
        let slot = STATUS_CODES
            .iter()
            .position(|&code| code == status)
            .unwrap_or(STATUS_CODES.len());
        if let Some(counter) = self
            .requests
            .get(route as usize)
            .and_then(|row| row.get(slot))
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a finished self-stop sequence's attempts, each by how it ended (the outcome
    /// carries them all, a final refusal's earlier retries included).
    pub fn record_self_stop(&self, outcome: &SelfStopOutcome) {
        for class in outcome.attempt_classes() {
            self.count_attempts(class, 1);
        }
    }

    fn count_attempts(&self, class: AttemptClass, attempts: u64) {
        if let Some(counter) = self.self_stop.get(class as usize) {
            counter.fetch_add(attempts, Ordering::Relaxed);
        }
    }

    /// Counts an open connection for as long as the returned guard lives.
    pub fn connection_opened(&self) -> OpenConnection<'_> {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self)
    }

    /// How many connections are open now.
    pub fn open_connections(&self) -> u64 {
        self.connections_open.load(Ordering::Relaxed)
    }

    /// Counts a connection the API closed, by why.
    pub fn record_cut(&self, cut: ConnectionCut) {
        if let Some(counter) = self.connections_cut.get(cut as usize) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many connections the API closed for `cut` (for tests and logs).
    pub fn cuts(&self, cut: ConnectionCut) -> u64 {
        self.connections_cut
            .get(cut as usize)
            .map_or(0, |counter| counter.load(Ordering::Relaxed))
    }

    /// How many requests to `route` were answered with `status` (for tests and logs).
    pub fn requests(&self, route: Route, status: u16) -> u64 {
        let slot = STATUS_CODES.iter().position(|&code| code == status);
        slot.and_then(|slot| self.requests.get(route as usize)?.get(slot))
            .map_or(0, |counter| counter.load(Ordering::Relaxed))
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    /// The metrics now; `players` and `waiting` (clients waiting for a status change) are
    /// read by the caller from the API's state.
    pub fn render(&self, status: &AgentStatus, players: usize, waiting: usize) -> String {
        let mut out = String::with_capacity(2048);
        let uptime = status.started_at.elapsed().as_secs_f64();
        gauge(
            &mut out,
            "edgegap_agent_uptime_seconds",
            "Time since the agent started.",
        );
        let _ = writeln!(out, "edgegap_agent_uptime_seconds {uptime:.3}");
        counter(
            &mut out,
            "edgegap_agent_child_restarts_total",
            "Times the game server was restarted in place.",
        );
        let _ = writeln!(
            out,
            "edgegap_agent_child_restarts_total {}",
            status.restarts
        );
        counter(
            &mut out,
            "edgegap_agent_self_stop_attempts_total",
            "Self-stop calls to the platform, by outcome.",
        );
        for outcome in AttemptClass::ALL {
            let value = self.self_stop[outcome as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "edgegap_agent_self_stop_attempts_total{{outcome=\"{}\"}} {value}",
                outcome.label()
            );
        }
        counter(
            &mut out,
            "edgegap_agent_api_requests_total",
            "Local API requests answered, by route and status code.",
        );
        for route in Route::ALL {
            for (slot, counter) in self.requests[route as usize].iter().enumerate() {
                let value = counter.load(Ordering::Relaxed);
                if value == 0 {
                    continue;
                }
                let code = STATUS_CODES
                    .get(slot)
                    .map_or_else(|| "other".to_owned(), u16::to_string);
                let _ = writeln!(
                    out,
                    "edgegap_agent_api_requests_total{{route=\"{}\",code=\"{code}\"}} {value}",
                    route.label()
                );
            }
        }
        render_dropped_output(&mut out);
        gauge(
            &mut out,
            "edgegap_agent_api_connections",
            "Local API connections open now.",
        );
        let open = self.connections_open.load(Ordering::Relaxed);
        let _ = writeln!(out, "edgegap_agent_api_connections {open}");
        counter(
            &mut out,
            "edgegap_agent_api_connections_cut_total",
            "Local API connections the agent closed: head timeout, evicted to make room, stalled answer.",
        );
        for cut in ConnectionCut::ALL {
            let value = self.connections_cut[cut as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "edgegap_agent_api_connections_cut_total{{reason=\"{}\"}} {value}",
                cut.label()
            );
        }
        gauge(
            &mut out,
            "edgegap_agent_api_waiting_clients",
            "Local API clients waiting for a status change now (long polls and event streams).",
        );
        let _ = writeln!(out, "edgegap_agent_api_waiting_clients {waiting}");
        gauge(
            &mut out,
            "edgegap_agent_players_connected",
            "Players connected, as reported by the game.",
        );
        let _ = writeln!(out, "edgegap_agent_players_connected {players}");
        gauge(
            &mut out,
            "edgegap_agent_lifecycle_state",
            "1 for the agent's current lifecycle state, 0 for the others.",
        );
        let current = status.lifecycle.name();
        for name in Lifecycle::NAMES {
            let _ = writeln!(
                out,
                "edgegap_agent_lifecycle_state{{state=\"{name}\"}} {}",
                u8::from(name == current)
            );
        }
        out
    }
}

/// Output the agent could not write (its reader lagged too far, or the stream was closed), by
/// stream and by whose it was: the game's passed-through output or the agent's own lines.
fn render_dropped_output(out: &mut String) {
    for (name, unit, help) in [
        (
            "edgegap_agent_output_dropped_lines_total",
            "lines",
            "Lines of output not written to stdout/stderr (reader too slow or stream closed), by stream and source.",
        ),
        (
            "edgegap_agent_output_dropped_bytes_total",
            "bytes",
            "Bytes of output not written to stdout/stderr (reader too slow or stream closed), by stream and source.",
        ),
    ] {
        counter(out, name, help);
        for stream in stdio::Name::ALL {
            for source in stdio::Source::ALL {
                let dropped = stdio::stream(stream).dropped(source);
                let value = if unit == "lines" {
                    dropped.lines
                } else {
                    dropped.bytes
                };
                let _ = writeln!(
                    out,
                    "{name}{{stream=\"{}\",source=\"{}\"}} {value}",
                    stream.as_str(),
                    source.as_str()
                );
            }
        }
    }
}

fn gauge(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

fn counter(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(outcome: SelfStopOutcome) -> [u64; 4] {
        let metrics = Metrics::default();
        metrics.record_self_stop(&outcome);
        AttemptClass::ALL.map(|class| metrics.self_stop[class as usize].load(Ordering::Relaxed))
    }

    #[test]
    fn every_attempt_of_a_sequence_is_counted_by_its_outcome() {
        assert_eq!(
            counts(SelfStopOutcome::Accepted {
                status: 200,
                attempts: 6
            }),
            [1, 0, 5, 0]
        );
        assert_eq!(
            counts(SelfStopOutcome::AlreadyGone { attempts: 1 }),
            [0, 1, 0, 0]
        );
        assert_eq!(
            counts(SelfStopOutcome::Rejected {
                status: 401,
                attempts: 1
            }),
            [0, 0, 0, 1]
        );
        // A refusal after three retried failures: all four attempts are counted.
        assert_eq!(
            counts(SelfStopOutcome::Rejected {
                status: 403,
                attempts: 4
            }),
            [0, 0, 3, 1]
        );
        let gave_up = SelfStopOutcome::GaveUp {
            attempts: 4,
            last_error: "timeout".into(),
        };
        assert_eq!(counts(gave_up), [0, 0, 4, 0]);
        assert_eq!(
            counts(SelfStopOutcome::NotConfigured {
                reason: "local".into()
            }),
            [0; 4]
        );
    }
}
