//! One stream's state: its queue of entries, its writer (started at the first write), the
//! waits for it to be flushed, giving it up at exit, and its dropped counts and reports.

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::Notify;
use tracing::warn;

use super::writer::{self, write_fully};
use super::{Dropped, Name, Source, Written, QUEUE_LIMIT};

/// One standard stream: its queue, its writer thread, and its dropped counts.
pub struct Stream {
    pub(super) name: Name,
    pub(super) queue: Mutex<Queue>,
    /// Wakes the writer when entries arrive.
    pub(super) work: Condvar,
    /// Wakes blocking waiters when the queue is empty.
    pub(super) emptied: Condvar,
    /// Wakes async waiters when the queue is empty.
    pub(super) emptied_async: Notify,
    /// Dropped lines and bytes, by [`Source`].
    pub(super) dropped: [Counts; 2],
}

pub(super) struct Counts {
    lines: AtomicU64,
    bytes: AtomicU64,
}

impl Counts {
    const fn new() -> Counts {
        Counts {
            lines: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }
}

pub(super) struct Entry {
    pub(super) bytes: Vec<u8>,
    /// How much of `bytes` was taken into writes already (a large entry goes in pieces).
    pub(super) taken: usize,
    pub(super) source: Source,
}

impl Entry {
    pub(super) fn rest(&self) -> &[u8] {
        self.bytes.get(self.taken..).unwrap_or_default()
    }
}

pub(super) enum Writer {
    /// Starts at the first write; the file is the stream's (a dup of fd 1 or 2 when `None`).
    NotStarted(Option<File>),
    Thread,
    /// No thread could be started: writes are made by the caller, blocking, as a last resort.
    Direct(File),
    /// The stream cannot be written at all (its descriptor is closed).
    Closed,
}

pub(super) struct Queue {
    pub(super) writer: Writer,
    pub(super) entries: VecDeque<Entry>,
    /// Bytes queued, including the batch being written.
    pub(super) queued: usize,
    /// What the batch being written holds, by source.
    pub(super) in_flight: [Dropped; 2],
    /// The in-flight batch was counted as dropped when the stream was given up.
    pub(super) in_flight_given_up: bool,
    pub(super) given_up: bool,
    /// Dropped since the reader started lagging, until it catches up.
    pub(super) lagging: Option<Dropped>,
    /// The last write failed (reported once until one succeeds).
    pub(super) failing: bool,
}

/// Something worth a log line, made once the queue's lock is released.
pub(super) enum Report {
    Lagging,
    CaughtUp(Dropped),
    Failing(std::io::Error),
}

impl Stream {
    /// A stream writing to `file`, or to a dup of the standard descriptor `name` when `None`.
    pub(super) const fn new(name: Name, file: Option<File>) -> Stream {
        Stream {
            name,
            queue: Mutex::new(Queue {
                writer: Writer::NotStarted(file),
                entries: VecDeque::new(),
                queued: 0,
                in_flight: [Dropped { lines: 0, bytes: 0 }; 2],
                in_flight_given_up: false,
                given_up: false,
                lagging: None,
                failing: false,
            }),
            work: Condvar::new(),
            emptied: Condvar::new(),
            emptied_async: Notify::const_new(),
            dropped: [Counts::new(), Counts::new()],
        }
    }

    /// Queues `bytes` (whole lines, as a rule) to be written in order; never blocks on the
    /// stream's reader. Dropped and counted when the reader lags more than [`QUEUE_LIMIT`].
    pub fn write(&'static self, bytes: &[u8], source: Source) -> Written {
        if bytes.is_empty() {
            return Written::Queued;
        }
        let mut queue = self.lock();
        if matches!(queue.writer, Writer::NotStarted(_)) {
            self.start_writer(&mut queue);
        }
        if queue.given_up || matches!(queue.writer, Writer::Closed) {
            self.count_dropped(source, Dropped::of(bytes));
            return Written::Dropped;
        }
        if let Writer::Direct(file) = &mut queue.writer {
            if write_fully(file, bytes).is_err() {
                self.count_dropped(source, Dropped::of(bytes));
                return Written::Dropped;
            }
            return Written::Queued;
        }
        if queue.queued + bytes.len() > QUEUE_LIMIT {
            let dropped = Dropped::of(bytes);
            self.count_dropped(source, dropped);
            let first = queue.lagging.is_none();
            queue
                .lagging
                .get_or_insert_with(Dropped::default)
                .add(dropped);
            drop(queue);
            // A report about stderr could not reach its reader, and would come back here.
            if first && self.name != Name::Stderr {
                self.report(Report::Lagging);
            }
            return Written::Dropped;
        }
        queue.queued += bytes.len();
        queue.entries.push_back(Entry {
            bytes: bytes.to_vec(),
            taken: 0,
            source,
        });
        drop(queue);
        self.work.notify_one();
        Written::Queued
    }

    /// Lines and bytes from `source` that were not written, over the agent's life.
    pub fn dropped(&self, source: Source) -> Dropped {
        let counts = &self.dropped[source as usize];
        Dropped {
            lines: counts.lines.load(Ordering::Relaxed),
            bytes: counts.bytes.load(Ordering::Relaxed),
        }
    }

    /// Resolves once everything queued so far has been written (or given up).
    pub async fn flushed(&self) {
        loop {
            let emptied = self.emptied_async.notified();
            tokio::pin!(emptied);
            emptied.as_mut().enable();
            if self.is_flushed() {
                return;
            }
            emptied.await;
        }
    }

    /// Waits (blocking) until everything queued is written or `deadline` passes; true when
    /// written.
    pub fn wait_flushed(&self, deadline: Instant) -> bool {
        let mut queue = self.lock();
        while !queue.is_flushed() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            queue = self
                .emptied
                .wait_timeout(queue, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    pub fn is_flushed(&self) -> bool {
        self.lock().is_flushed()
    }

    /// Counts everything queued (and the batch being written) as dropped, and drops later
    /// writes at once: for the agent's exit, when its time to write has run out.
    pub fn give_up(&self) {
        let mut queue = self.lock();
        queue.given_up = true;
        for entry in std::mem::take(&mut queue.entries) {
            self.count_dropped(entry.source, Dropped::of(entry.rest()));
        }
        if queue.in_flight.iter().any(|d| !d.is_none()) {
            queue.in_flight_given_up = true;
            for source in Source::ALL {
                self.count_dropped(source, queue.in_flight[source as usize]);
            }
        }
        queue.queued = 0;
        drop(queue);
        self.wake_flushers();
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn count_dropped(&self, source: Source, dropped: Dropped) {
        let counts = &self.dropped[source as usize];
        counts.lines.fetch_add(dropped.lines, Ordering::Relaxed);
        counts.bytes.fetch_add(dropped.bytes, Ordering::Relaxed);
    }

    pub(super) fn uncount_dropped(&self, source: Source, dropped: Dropped) {
        let counts = &self.dropped[source as usize];
        counts.lines.fetch_sub(dropped.lines, Ordering::Relaxed);
        counts.bytes.fetch_sub(dropped.bytes, Ordering::Relaxed);
    }

    pub(super) fn wake_flushers(&self) {
        self.emptied.notify_all();
        self.emptied_async.notify_waiters();
    }

    /// Opens the stream and starts its writer thread (with the lock held: one start only).
    fn start_writer(&'static self, queue: &mut Queue) {
        let Writer::NotStarted(file) = std::mem::replace(&mut queue.writer, Writer::Closed) else {
            return;
        };
        let file = match file {
            Some(file) => file,
            // A dup, so the stream is written without std's buffer or lock; close-on-exec, so
            // the game inherits fd 1 and 2 themselves rather than these copies.
            None => match self.standard_descriptor() {
                Ok(file) => file,
                Err(_) => return, // fd 1 or 2 is closed: nothing can be written there
            },
        };
        let spare = file.try_clone();
        let spawned = std::thread::Builder::new()
            .name(format!("{}-writer", self.name.as_str()))
            // It only copies bytes and, rarely, formats a log line: a small stack will do.
            .stack_size(128 * 1024)
            .spawn(move || writer::write_out(self, file));
        queue.writer = match (spawned, spare) {
            (Ok(_), _) => Writer::Thread,
            (Err(_), Ok(file)) => Writer::Direct(file),
            (Err(_), Err(_)) => Writer::Closed,
        };
    }

    fn standard_descriptor(&self) -> std::io::Result<File> {
        let owned = match self.name {
            Name::Stdout => std::io::stdout().as_fd().try_clone_to_owned(),
            Name::Stderr => std::io::stderr().as_fd().try_clone_to_owned(),
        }?;
        Ok(File::from(owned))
    }

    /// Logs a report. Never called with the queue locked: the log line is itself queued (on
    /// stderr).
    pub(super) fn report(&self, report: Report) {
        let stream = self.name.as_str();
        match report {
            Report::Lagging => warn!(
                stream,
                limit_bytes = QUEUE_LIMIT,
                "the stream's reader is not keeping up: output that does not fit the agent's buffer is dropped and counted (edgegap_agent_output_dropped_bytes_total) until it catches up"
            ),
            Report::CaughtUp(dropped) => warn!(
                stream,
                lines = dropped.lines,
                bytes = dropped.bytes,
                "the stream's reader caught up; output was dropped while it lagged"
            ),
            // A failing stderr cannot carry the report.
            Report::Failing(_) if self.name == Name::Stderr => {}
            Report::Failing(error) => warn!(
                stream,
                %error,
                "cannot write to the stream: its output is dropped and counted"
            ),
        }
    }
}

impl Queue {
    pub(super) fn is_flushed(&self) -> bool {
        self.queued == 0 || self.given_up
    }
}
