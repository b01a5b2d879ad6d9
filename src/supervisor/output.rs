//! Output that flows through the agent: the game's stdout and stderr when `--end-on-log` is
//! set (passed on byte for byte, in order, a whole line at a time, and scanned), and the
//! pre-stop hook's output (logged). Whole lines keep the agent's own log lines from ever
//! landing in the middle of one of the game's.

use std::io::Write;
use std::os::fd::OwnedFd;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::lifecycle::Event;

/// A line longer than this is passed on in pieces rather than held back.
const MAX_LINE: usize = 64 * 1024;
/// How much of a matching line is kept as the match-end reason.
const REASON_CHARS: usize = 200;

/// Where the lines go.
#[derive(Debug, Clone, Copy)]
pub enum Sink {
    Stdout,
    Stderr,
    /// One log event per line, naming the source (e.g. the pre-stop hook).
    Log(&'static str),
}

/// Starts a task that reads `fd` to its end and passes each line to `sink`; the first line
/// matching `matcher` is reported as [`Event::LogLineMatched`]. The task ends at the pipe's
/// end; the agent awaits it before exiting, so the game's last lines are not lost.
pub fn pass_through(
    fd: OwnedFd,
    sink: Sink,
    matcher: Option<regex_lite::Regex>,
    events: UnboundedSender<Event>,
) -> Option<JoinHandle<()>> {
    let receiver = match pipe::Receiver::from_owned_fd(fd) {
        Ok(receiver) => receiver,
        Err(error) => {
            warn!(%error, ?sink, "cannot read an output pipe");
            return None;
        }
    };
    Some(tokio::spawn(copy_lines(receiver, sink, matcher, events)))
}

async fn copy_lines(
    mut receiver: pipe::Receiver,
    sink: Sink,
    mut matcher: Option<regex_lite::Regex>,
    events: UnboundedSender<Event>,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let read = match receiver.read(&mut chunk).await {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        if read == 0 {
            if !pending.is_empty() {
                emit(&pending, sink, &mut matcher, &events);
            }
            return;
        }
        pending.extend_from_slice(&chunk[..read]);
        let mut start = 0;
        while let Some(offset) = pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + offset + 1;
            emit(&pending[start..end], sink, &mut matcher, &events);
            start = end;
        }
        pending.drain(..start);
        if pending.len() >= MAX_LINE {
            emit(&pending, sink, &mut matcher, &events);
            pending.clear();
        }
    }
}

fn emit(
    line: &[u8],
    sink: Sink,
    matcher: &mut Option<regex_lite::Regex>,
    events: &UnboundedSender<Event>,
) {
    match sink {
        // Write errors (a closed stdout) are ignored: the pipe must still be drained, or
        // the game would block on a full pipe.
        Sink::Stdout => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line).and_then(|()| out.flush());
        }
        Sink::Stderr => {
            let _ = std::io::stderr().lock().write_all(line);
        }
        Sink::Log(source) => {
            let text = String::from_utf8_lossy(line);
            info!(source, line = %text.trim_end(), "output");
        }
    }
    let matched = matcher
        .as_ref()
        .is_some_and(|m| m.is_match(String::from_utf8_lossy(line).trim_end_matches(['\n', '\r'])));
    if matched {
        // One report is enough: the match ends once.
        *matcher = None;
        let text = String::from_utf8_lossy(line);
        let reason: String = text.trim_end().chars().take(REASON_CHARS).collect();
        let _ = events.send(Event::LogLineMatched(reason));
    }
}
