//! The writer thread of a stream, and what it writes at a time: up to `PIPE_BUF` bytes of
//! entries, cut after a newline, which a pipe takes whole or not at all.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::sync::PoisonError;
use std::time::Duration;

use super::stream::{Entry, Report, Stream};
use super::{Dropped, Source};

/// Writes up to this size are atomic on a pipe (POSIX `PIPE_BUF` on Linux).
const PIPE_BUF: usize = 4096;
/// How long the writer waits before retrying a stream that someone made non-blocking.
const WOULD_BLOCK_PAUSE: Duration = Duration::from_millis(5);

/// The writer thread: takes up to `PIPE_BUF` bytes of entries in order (see
/// [`take_batch`]), writes them, and repeats. Blocking here is what this thread is for.
pub(super) fn write_out(stream: &'static Stream, mut out: File) {
    let mut batch: Vec<u8> = Vec::with_capacity(PIPE_BUF);
    loop {
        batch.clear();
        let mut parts = [Dropped::default(); 2];
        {
            let mut queue = stream.lock();
            while queue.entries.is_empty() {
                queue = stream
                    .work
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            take_batch(&mut queue.entries, &mut batch, &mut parts);
            queue.in_flight = parts;
            queue.in_flight_given_up = false;
        }
        let result = write_fully(&mut out, &batch);
        let report = {
            let mut queue = stream.lock();
            let given_up = std::mem::take(&mut queue.in_flight_given_up);
            queue.in_flight = [Dropped::default(); 2];
            if !given_up {
                queue.queued = queue.queued.saturating_sub(batch.len());
            }
            let mut report = None;
            match result {
                Ok(()) => {
                    queue.failing = false;
                    // Counted as dropped when the stream was given up; it made it after all.
                    if given_up {
                        for source in Source::ALL {
                            stream.uncount_dropped(source, parts[source as usize]);
                        }
                    }
                }
                Err(error) => {
                    if !given_up {
                        for source in Source::ALL {
                            stream.count_dropped(source, parts[source as usize]);
                        }
                    }
                    if !std::mem::replace(&mut queue.failing, true) {
                        report = Some(Report::Failing(error));
                    }
                }
            }
            if queue.entries.is_empty() {
                stream.wake_flushers();
                if report.is_none() {
                    report = queue.lagging.take().map(Report::CaughtUp);
                }
            }
            report
        };
        if let Some(report) = report {
            stream.report(report);
        }
    }
}

/// Moves the next write's bytes from the front of `entries` into `batch`: whole entries while
/// they fit in `PIPE_BUF`; from an entry too large to fit, a piece of at most `PIPE_BUF` that
/// ends after a newline when there is one (a line longer than that goes in pieces). `parts`
/// gets what the batch holds by source.
pub(super) fn take_batch(
    entries: &mut VecDeque<Entry>,
    batch: &mut Vec<u8>,
    parts: &mut [Dropped; 2],
) {
    while let Some(entry) = entries.front_mut() {
        let rest = entry.rest();
        let room = PIPE_BUF.saturating_sub(batch.len());
        if rest.len() <= room {
            batch.extend_from_slice(rest);
            parts[entry.source as usize].add(Dropped::of(rest));
            entries.pop_front();
            continue;
        }
        if batch.is_empty() {
            let window = rest.get(..PIPE_BUF).unwrap_or(rest);
            let cut = window
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(window.len(), |at| at + 1);
            let piece = window.get(..cut).unwrap_or(window);
            batch.extend_from_slice(piece);
            parts[entry.source as usize].add(Dropped::of_piece(piece, false));
            entry.taken += cut;
        }
        return;
    }
}

/// Writes all of `bytes`, waiting out a stream someone else made non-blocking.
pub(super) fn write_fully(out: &mut File, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match out.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(WOULD_BLOCK_PAUSE);
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
