use std::collections::VecDeque;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::OwnedFd;

use super::*;

/// A stream writing into a fresh pipe, and the pipe's read end (left unread until the test
/// reads it: a stalled reader).
fn piped_stream() -> (&'static Stream, File) {
    let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
    let stream = Box::leak(Box::new(Stream::new(Name::Stdout, Some(File::from(write)))));
    (stream, File::from(read))
}

/// Reads everything the pipe holds without blocking.
fn read_available(reader: &mut File) -> Vec<u8> {
    nix::fcntl::fcntl(
        &*reader,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return out,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn lines_are_written_whole_and_in_order() {
    let (stream, mut reader) = piped_stream();
    let mut expected = Vec::new();
    for i in 0..1000 {
        let line = format!("line {i}\n");
        assert_eq!(stream.write(line.as_bytes(), Source::Game), Written::Queued);
        expected.extend_from_slice(line.as_bytes());
    }
    assert!(stream.wait_flushed(Instant::now() + Duration::from_secs(10)));
    assert_eq!(read_available(&mut reader), expected);
    assert!(stream.dropped(Source::Game).is_none());
}

#[test]
fn a_stalled_reader_never_blocks_the_writer_and_every_dropped_line_is_counted() {
    let (stream, mut reader) = piped_stream();
    let line = [b'x'; 99].iter().chain(b"\n").copied().collect::<Vec<u8>>();
    let lines = 40_000; // 4 MB: a 64 KiB pipe plus a 1 MiB queue take about a third
    let started = Instant::now();
    let mut dropped = 0u64;
    for _ in 0..lines {
        if stream.write(&line, Source::Game) == Written::Dropped {
            dropped += 1;
        }
    }
    // Queueing never waited for the reader.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(dropped > 0);
    assert_eq!(
        stream.dropped(Source::Game),
        Dropped {
            lines: dropped,
            bytes: dropped * 100
        }
    );
    // Still stalled: not flushed by the deadline.
    assert!(!stream.wait_flushed(Instant::now() + Duration::from_millis(50)));
    // The reader catches up: everything that was not dropped arrives, in order.
    let mut received = Vec::new();
    let drained = Instant::now() + Duration::from_secs(20);
    loop {
        // Flushed before a read that finds the pipe empty: nothing more can come.
        let flushed = stream.is_flushed();
        let chunk = read_available(&mut reader);
        if flushed && chunk.is_empty() {
            break;
        }
        received.extend(chunk);
        assert!(Instant::now() < drained, "never flushed");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(received.len() as u64, (lines - dropped) * 100);
    assert!(received.chunks(100).all(|l| l == line.as_slice()));
    // The count stays what was dropped; once caught up, writes are queued again.
    assert_eq!(stream.write(&line, Source::Agent), Written::Queued);
    assert!(stream.wait_flushed(Instant::now() + Duration::from_secs(10)));
    assert!(stream.dropped(Source::Agent).is_none());
}

#[test]
fn giving_up_counts_what_is_queued_and_drops_later_writes() {
    let (stream, reader) = piped_stream();
    let line = [b'y'; 1023]
        .iter()
        .chain(b"\n")
        .copied()
        .collect::<Vec<u8>>();
    let mut queued = 0u64;
    for _ in 0..2000 {
        if stream.write(&line, Source::Game) == Written::Queued {
            queued += 1;
        }
    }
    assert!(!stream.wait_flushed(Instant::now() + Duration::from_millis(50)));
    let before = stream.dropped(Source::Game);
    stream.give_up();
    assert!(stream.is_flushed());
    let after = stream.dropped(Source::Game);
    // What the pipe took was written (whole 4 KiB batches); the rest of the queue, and the
    // batch the writer is blocked on, are counted.
    let capacity = nix::fcntl::fcntl(&reader, nix::fcntl::FcntlArg::F_GETPIPE_SZ).unwrap();
    let written = before.lines + queued - after.lines;
    assert_eq!(
        written,
        capacity as u64 / 1024,
        "{before:?} {after:?} queued={queued}"
    );
    assert_eq!(stream.write(b"late\n", Source::Agent), Written::Dropped);
    assert_eq!(
        stream.dropped(Source::Agent),
        Dropped { lines: 1, bytes: 5 }
    );
}

#[test]
fn a_closed_reader_counts_the_failed_writes() {
    let (stream, reader) = piped_stream();
    drop(reader);
    assert_eq!(stream.write(b"one\ntwo\n", Source::Game), Written::Queued);
    assert_eq!(stream.write(b"three", Source::Game), Written::Queued);
    assert!(stream.wait_flushed(Instant::now() + Duration::from_secs(10)));
    assert_eq!(
        stream.dropped(Source::Game),
        Dropped {
            lines: 3,
            bytes: 13
        }
    );
}

#[tokio::test]
async fn flushed_resolves_once_the_writer_has_written_everything() {
    let (stream, mut reader) = piped_stream();
    for _ in 0..100 {
        stream.write(b"abc\n", Source::Agent);
    }
    tokio::time::timeout(Duration::from_secs(10), stream.flushed())
        .await
        .unwrap();
    assert_eq!(read_available(&mut reader).len(), 400);
}

#[test]
fn writes_are_whole_lines_of_at_most_pipe_buf() {
    use super::stream::Entry;
    use super::writer::take_batch;
    let entry = |text: &[u8], source| Entry {
        bytes: text.to_vec(),
        taken: 0,
        source,
    };
    let line_of = |n: usize| {
        let mut line = vec![b'a'; n - 1];
        line.push(b'\n');
        line
    };
    let mut entries = VecDeque::new();
    // Small entries go together; a large one is cut after its last newline within 4 KiB.
    entries.push_back(entry(b"one\n", Source::Agent));
    entries.push_back(entry(b"two\n", Source::Game));
    entries.push_back(entry(
        &[line_of(3000), line_of(3000)].concat(),
        Source::Game,
    ));
    // A line longer than a write goes in pieces, counted once.
    entries.push_back(entry(&line_of(9000), Source::Game));
    let mut writes = Vec::new();
    while !entries.is_empty() {
        let (mut batch, mut parts) = (Vec::new(), [Dropped::default(); 2]);
        take_batch(&mut entries, &mut batch, &mut parts);
        assert!(!batch.is_empty() && batch.len() <= 4096, "{}", batch.len());
        writes.push((batch.len(), parts));
    }
    let game = |lines, bytes| {
        let mut parts = [Dropped::default(); 2];
        parts[Source::Game as usize] = Dropped { lines, bytes };
        parts
    };
    let mut first = game(1, 4);
    first[Source::Agent as usize] = Dropped { lines: 1, bytes: 4 };
    assert_eq!(
        writes,
        [
            (8, first),
            (3000, game(1, 3000)),
            (3000, game(1, 3000)),
            (4096, game(0, 4096)),
            (4096, game(0, 4096)),
            (808, game(1, 808)),
        ]
    );
}
