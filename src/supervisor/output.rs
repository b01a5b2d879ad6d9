//! Output that flows through the agent: the game's stdout and stderr when `--end-on-log` is
//! set (passed on byte for byte, in order, whole lines at a time, and scanned), and the
//! pre-stop hook's output (logged). Whole lines keep the agent's own log lines from ever
//! landing in the middle of one of the game's.
//!
//! Lines are handed to [`crate::stdio`]'s writers, which never block the agent: a reader
//! that stalls costs dropped (and counted) lines, never a frozen timer or API. At the agent's
//! exit, [`PassThroughs::end`] reads what the ended processes left in their pipes — all
//! they wrote is there once they are reaped — without waiting for a pipe's end, which a
//! process the game left behind may hold open.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};
use tracing::{info, warn};

use crate::lifecycle::Event;
use crate::stdio::{self, Source};

/// A line longer than this is passed on in pieces rather than held back.
const MAX_LINE: usize = 64 * 1024;
/// How much of a matching line is kept as the match-end reason.
const REASON_CHARS: usize = 200;
/// How much is read from a pipe at a time.
const CHUNK: usize = 16 * 1024;

/// Where the lines go.
#[derive(Debug, Clone, Copy)]
pub enum Sink {
    Stdout,
    Stderr,
    /// One log event per line, naming the source (e.g. the pre-stop hook).
    Log(&'static str),
}

/// The tasks passing output through, and the signal that tells them to finish.
pub struct PassThroughs {
    tasks: Vec<JoinHandle<()>>,
    /// Set once, at exit: the time by which each task must have finished.
    finish: watch::Sender<Option<Instant>>,
}

impl Default for PassThroughs {
    fn default() -> Self {
        PassThroughs {
            tasks: Vec::new(),
            finish: watch::channel(None).0,
        }
    }
}

impl PassThroughs {
    /// Starts a task that reads `fd` and passes each line to `sink`; the first line matching
    /// `matcher` is reported as [`Event::LogLineMatched`]. It runs to the pipe's end, or to
    /// [`PassThroughs::finish`].
    pub fn start(
        &mut self,
        fd: OwnedFd,
        sink: Sink,
        matcher: Option<regex_lite::Regex>,
        events: UnboundedSender<Event>,
    ) {
        let receiver = match pipe::Receiver::from_owned_fd(fd) {
            Ok(receiver) => receiver,
            Err(error) => {
                warn!(%error, ?sink, "cannot read an output pipe");
                return;
            }
        };
        // Tasks of earlier runs of the game end at their pipe's end: forget those.
        self.tasks.retain(|task| !task.is_finished());
        let lines = Lines {
            sink,
            matcher,
            events,
            pending: Vec::new(),
        };
        self.tasks.push(tokio::spawn(copy_lines(
            receiver,
            lines,
            self.finish.subscribe(),
        )));
    }

    /// The agent's last step, once the game (and the hook) are reaped: passes on the rest of
    /// their output and writes out everything queued until half `kill_margin` past
    /// `kill_deadline` — the platform's SIGKILL comes a whole margin past it — then logs the
    /// exit and lets the last lines out in a quarter margin more. What cannot be written by
    /// then is counted and reported (on stderr, if stderr is not what stalled), not waited for.
    pub async fn end(&mut self, kill_deadline: Instant, kill_margin: Duration, code: i32) {
        let output_deadline = later(kill_deadline, kill_margin / 2);
        let last_lines_deadline = later(output_deadline, kill_margin / 4);
        if !self.finish(output_deadline).await {
            warn!("the game's output could not all be read in time: exiting without the rest");
        }
        if timeout_at(output_deadline, stdio::flushed()).await.is_err() {
            stdio::give_up_unflushed();
        }
        stdio::report_dropped();
        info!(code, "exiting");
        if timeout_at(last_lines_deadline, stdio::flushed())
            .await
            .is_err()
        {
            stdio::give_up_unflushed();
        }
    }

    /// Tells every task to pass on what its pipe holds now and end, and waits for them until
    /// `deadline`; false if some did not end in time. Call it once the processes writing to
    /// the pipes are reaped: everything they wrote is then in the pipes.
    async fn finish(&mut self, deadline: Instant) -> bool {
        self.finish.send_replace(Some(deadline));
        let all = async {
            for task in self.tasks.drain(..) {
                let _ = task.await;
            }
        };
        timeout_at(deadline, all).await.is_ok()
    }
}

/// `base + after`, saturating at a year past `base` rather than overflowing.
pub fn later(base: Instant, after: Duration) -> Instant {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    base.checked_add(after.min(YEAR)).unwrap_or(base)
}

async fn copy_lines(
    mut receiver: pipe::Receiver,
    mut lines: Lines,
    mut finish: watch::Receiver<Option<Instant>>,
) {
    let mut chunk = vec![0u8; CHUNK];
    let deadline = loop {
        tokio::select! {
            read = receiver.read(&mut chunk) => match read {
                Ok(0) | Err(_) => break None,
                Ok(n) => lines.take(chunk.get(..n).unwrap_or_default()),
            },
            changed = finish.changed() => {
                // The deadline; a dropped sender (the driver is gone) means now.
                break Some(match changed {
                    Ok(()) => finish.borrow().unwrap_or_else(Instant::now),
                    Err(_) => Instant::now(),
                });
            }
        }
    };
    if let Some(deadline) = deadline {
        read_what_is_left(receiver, &mut lines, &mut chunk, deadline);
    }
    lines.end();
}

/// Reads what the pipe holds now, without waiting for more: the writers are gone, so this is
/// the last of their output (a process they left behind may keep the pipe open, and may
/// write on; the deadline bounds that). Read from the descriptor itself: the runtime's
/// readiness may not have seen the last writes yet, and `try_read` would trust it.
fn read_what_is_left(
    receiver: pipe::Receiver,
    lines: &mut Lines,
    chunk: &mut [u8],
    deadline: Instant,
) {
    let Ok(fd) = receiver.into_nonblocking_fd() else {
        return;
    };
    let mut pipe = std::fs::File::from(fd);
    while Instant::now() < deadline {
        match pipe.read(chunk) {
            Ok(0) => return,
            Ok(n) => lines.take(chunk.get(..n).unwrap_or_default()),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return, // WouldBlock: nothing more is there
        }
    }
}

/// Splits what is read into whole lines, passes them on and scans them.
struct Lines {
    sink: Sink,
    matcher: Option<regex_lite::Regex>,
    events: UnboundedSender<Event>,
    /// The start of a line whose end has not been read yet.
    pending: Vec<u8>,
}

impl Lines {
    fn take(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if let Some(last) = self.pending.iter().rposition(|&b| b == b'\n') {
            let rest = self.pending.split_off(last + 1);
            let whole = std::mem::replace(&mut self.pending, rest);
            self.pass(&whole);
        }
        if self.pending.len() >= MAX_LINE {
            let long = std::mem::take(&mut self.pending);
            self.pass(&long);
        }
    }

    /// Passes on the last, unterminated line, if any.
    fn end(&mut self) {
        let last = std::mem::take(&mut self.pending);
        self.pass(&last);
    }

    /// Passes on `bytes` (whole lines, or a piece of a long or last line) and scans each line.
    fn pass(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match self.sink {
            // One entry for all the lines read at once; the writer keeps them in order.
            Sink::Stdout => {
                stdio::stdout().write(bytes, Source::Game);
            }
            Sink::Stderr => {
                stdio::stderr().write(bytes, Source::Game);
            }
            Sink::Log(source) => {
                for line in bytes.split_inclusive(|&b| b == b'\n') {
                    let text = String::from_utf8_lossy(line);
                    info!(source, line = %text.trim_end(), "output");
                }
            }
        }
        if self.matcher.is_some() {
            for line in bytes.split_inclusive(|&b| b == b'\n') {
                self.scan(line);
            }
        }
    }

    fn scan(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let matched = self
            .matcher
            .as_ref()
            .is_some_and(|m| m.is_match(text.trim_end_matches(['\n', '\r'])));
        if matched {
            // One report is enough: the match ends once.
            self.matcher = None;
            let reason: String = text.trim_end().chars().take(REASON_CHARS).collect();
            let _ = self.events.send(Event::LogLineMatched(reason));
        }
    }
}
