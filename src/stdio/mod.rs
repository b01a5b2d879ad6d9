//! The agent's stdout and stderr. Every byte the agent writes there — the game's output passed
//! through with `--end-on-log`, the agent's own log lines — is queued here and written by a
//! thread of the stream's own, so a reader that stalls (a FIFO nobody reads, a stuck log
//! collector) can stall only that thread: signals, timers, the API and the grace kill go on.
//!
//! Each stream's queue holds at most [`QUEUE_LIMIT`] bytes. What does not fit while the reader
//! lags, what fails to be written (a closed stream) and what is still queued when the agent
//! gives up at exit is dropped, whole entries (lines) at a time, and counted by stream and
//! source: `/metrics` serves the counts, and log lines on stderr report them (which reach the
//! reader only when stderr is not the stalled stream). Nothing is dropped silently.
//!
//! Entries are written in order, in `write`s of at most `PIPE_BUF` bytes cut after a newline
//! (several small entries together, a large one in pieces). A pipe takes such a write whole
//! or not at all, so a line (up to 4 KiB) is never split by another writer's (the game writes
//! to the same stream itself when its output is inherited), and a reader that stalls for good
//! holds whole lines: the one being written when the agent gives up is counted as dropped.

use std::time::{Duration, Instant};

use tracing::warn;

mod stream;
mod writer;

pub use stream::Stream;

/// How far (in bytes) a stream's reader may fall behind before output is dropped. Memory is
/// only used while it lags.
pub const QUEUE_LIMIT: usize = 1 << 20;

/// Which standard stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Name {
    Stdout,
    Stderr,
}

impl Name {
    pub const ALL: [Name; 2] = [Name::Stdout, Name::Stderr];

    pub fn as_str(self) -> &'static str {
        match self {
            Name::Stdout => "stdout",
            Name::Stderr => "stderr",
        }
    }
}

/// Whose output an entry is, for the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The game server's own output, passed through (`--end-on-log`).
    Game,
    /// The agent's log lines (and the pre-stop hook's output, which it logs).
    Agent,
}

impl Source {
    pub const ALL: [Source; 2] = [Source::Game, Source::Agent];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Game => "game",
            Source::Agent => "agent",
        }
    }
}

/// What happened to an entry handed to [`Stream::write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Queued,
    /// Not queued (the reader lags too far, or the stream was given up); counted.
    Dropped,
}

/// Lines and bytes that were not written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub lines: u64,
    pub bytes: u64,
}

impl Dropped {
    /// An entry's lines: each newline ends one, and an unterminated end is one more.
    fn of(bytes: &[u8]) -> Dropped {
        Dropped::of_piece(bytes, true)
    }

    /// A piece of an entry: an unterminated end counts as a line only at the entry's end
    /// (a line longer than a write is counted once, with its last piece).
    fn of_piece(bytes: &[u8], ends_entry: bool) -> Dropped {
        let newlines = bytes.iter().filter(|&&b| b == b'\n').count();
        let unterminated = ends_entry && bytes.last().is_some_and(|&b| b != b'\n');
        Dropped {
            lines: (newlines + usize::from(unterminated)) as u64,
            bytes: bytes.len() as u64,
        }
    }

    fn add(&mut self, other: Dropped) {
        self.lines += other.lines;
        self.bytes += other.bytes;
    }

    pub fn is_none(&self) -> bool {
        self.bytes == 0
    }
}

static STDOUT: Stream = Stream::new(Name::Stdout, None);
static STDERR: Stream = Stream::new(Name::Stderr, None);

/// The agent's stdout.
pub fn stdout() -> &'static Stream {
    &STDOUT
}

/// The agent's stderr.
pub fn stderr() -> &'static Stream {
    &STDERR
}

/// The stream called `name`.
pub fn stream(name: Name) -> &'static Stream {
    match name {
        Name::Stdout => stdout(),
        Name::Stderr => stderr(),
    }
}

/// Resolves once everything queued on both streams so far has been written (or given up).
pub async fn flushed() {
    stdout().flushed().await;
    stderr().flushed().await;
}

/// Gives up each stream that still has output queued: what is queued is counted as dropped,
/// and later writes are dropped and counted at once. For the agent's exit, once the time to
/// write has run out.
pub fn give_up_unflushed() {
    for name in Name::ALL {
        let stream = stream(name);
        if !stream.is_flushed() {
            stream.give_up();
        }
    }
}

/// One warning per stream that dropped output during the agent's life, with the totals.
pub fn report_dropped() {
    for name in Name::ALL {
        let game = stream(name).dropped(Source::Game);
        let agent = stream(name).dropped(Source::Agent);
        if game.is_none() && agent.is_none() {
            continue;
        }
        warn!(
            stream = name.as_str(),
            game_lines = game.lines,
            game_bytes = game.bytes,
            agent_lines = agent.lines,
            agent_bytes = agent.bytes,
            "output was dropped: the stream's reader fell behind or it could not be written"
        );
    }
}

/// For `main`'s very end: waits (blocking) until both streams are written or `within` has
/// passed, so the agent's last lines are not cut off by its exit.
pub fn flush_before_exit(within: Duration) {
    let deadline = Instant::now() + within;
    for name in Name::ALL {
        stream(name).wait_flushed(deadline);
    }
}

#[cfg(test)]
mod tests;
