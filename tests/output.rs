//! The game's output through the agent, black box: never lost, never blocking the agent.
//!
//! - A game that prints its last line and crashes: the line is on the agent's stdout (or
//!   stderr) in 100 of 100 runs with `--end-on-log`.
//! - A stdout or stderr that nobody reads (a FIFO whose reader never reads): the API still
//!   answers at once, SIGTERM still ends the game at grace minus margin and the agent right
//!   after, and what could not be written is counted in `/metrics` and reported on stderr
//!   (when stderr is not the stalled stream), line for line.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use support::{agent_command, scratch_dir, wait_until, Running, DEADLINE, FAKE_GAME};

/// Runs `runs` agents around `sh -c SCRIPT`, `batch` at a time, and returns how many put
/// `MAIN` as the last line of the stream the script wrote it to.
fn crash_runs(script: &'static str, on_stderr: bool, runs: usize, batch: usize) -> usize {
    let mut kept = 0;
    for _ in 0..runs / batch {
        let handles: Vec<_> = (0..batch)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut command = agent_command();
                    command.args(["--end-on-log", "^NEVER$", "--", "sh", "-c", script]);
                    let mut agent = Running::start(command);
                    assert_eq!(agent.exit_code(), 3, "{}", agent.stderr());
                    let stdout = agent.all_stdout();
                    let stderr = agent.stderr();
                    let (lines, other) = if on_stderr {
                        // The game's line sits among the agent's own, before "exiting".
                        let game: Vec<&str> = stderr
                            .lines()
                            .filter(|l| !l.starts_with("[edgegap-agent]"))
                            .collect();
                        (game, stdout)
                    } else {
                        (stdout.lines().collect(), String::new())
                    };
                    assert!(other.is_empty(), "unexpected stdout: {other:?}");
                    lines == ["MAIN"]
                })
            })
            .collect();
        kept += handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&kept| kept)
            .count();
    }
    kept
}

#[test]
fn the_last_stdout_line_of_a_crashing_game_is_passed_on_in_100_of_100_runs() {
    assert_eq!(crash_runs("echo MAIN; exit 3", false, 100, 10), 100);
}

#[test]
fn the_last_stderr_line_of_a_crashing_game_is_passed_on_in_100_of_100_runs() {
    assert_eq!(crash_runs("echo MAIN >&2; exit 3", true, 100, 10), 100);
}

/// A FIFO with a reader that never reads (until the test says so), and its write end to
/// give the agent as a stream.
fn stalled_fifo(dir: &Path, name: &str) -> (File, Stdio) {
    let path = dir.join(name);
    nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
    // Non-blocking: opening the read end does not wait for a writer, nor reading for data.
    let reader = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&path)
        .unwrap();
    let writer = OpenOptions::new().write(true).open(&path).unwrap();
    (reader, Stdio::from(writer))
}

/// Everything the FIFO holds (call it once every writer is gone).
fn read_all(mut reader: File) -> String {
    let mut out = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("reading the FIFO: {e}"),
        }
    }
    String::from_utf8(out).unwrap()
}

/// The API's address from the agent's "local API listening" line on stderr.
fn api_addr_from_stderr(agent: &Running) -> SocketAddr {
    let mut addr = None;
    assert!(
        wait_until(DEADLINE, || {
            addr = agent
                .stderr()
                .lines()
                .find_map(|l| {
                    l.split_once("local API listening addr=")
                        .map(|(_, a)| a.to_owned())
                })
                .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap());
            addr.is_some()
        }),
        "no API address in stderr:\n{}",
        agent.stderr()
    );
    addr.unwrap()
}

/// `GET path`, answered within a second: the agent is not frozen.
fn get_promptly(addr: SocketAddr, path: &str) -> http::Reply {
    let asked = Instant::now();
    let reply = http::get(addr, path);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "GET {path} took {:?}",
        asked.elapsed()
    );
    reply
}

/// The value of one sample of `/metrics`, e.g. `name{stream="stdout",source="game"}`.
fn metric(addr: SocketAddr, sample: &str) -> u64 {
    let text = get_promptly(addr, "/metrics").body;
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {sample} in\n{text}"))
        .parse()
        .unwrap()
}

fn dropped(stream: &str, source: &str, unit: &str) -> String {
    format!("edgegap_agent_output_dropped_{unit}_total{{stream=\"{stream}\",source=\"{source}\"}}")
}

/// The value of `key=N` in the agent's last log line that contains `marker` and `key=`.
fn logged_number(stderr: &str, marker: &str, key: &str) -> u64 {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains(marker) && l.contains(&format!(" {key}=")))
        .unwrap_or_else(|| panic!("no line with {marker:?} and {key}= in\n{stderr}"));
    line.split_once(&format!(" {key}="))
        .unwrap()
        .1
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// SIGTERM to an agent whose game ignores it, under `--grace-period 3s` (kill margin 1 s):
/// the game is killed at 2 s, and the agent exits with 137 before the platform's kill at 3 s.
fn stop_and_expect_the_grace_kill(agent: &mut Running) {
    let stop = Instant::now();
    agent.signal(Signal::SIGTERM);
    let (status, _) = agent.wait_exit(DEADLINE);
    let elapsed = stop.elapsed();
    assert_eq!(status.code(), Some(137), "{}", agent.stderr());
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_millis(3000),
        "exited {elapsed:?} after SIGTERM"
    );
}

const FLOOD_LINES: u64 = 30_000; // 3 MB of 100-byte lines: more than a pipe and the buffer

#[test]
fn a_stdout_nobody_reads_blocks_nothing_and_every_dropped_line_is_counted() {
    let dir = scratch_dir("stalled-stdout");
    let (reader, stdout) = stalled_fifo(&dir, "stdout");
    let mut command = agent_command();
    command
        .args(["--end-on-log", "^NEVER$", "--grace-period", "3s", "--"])
        .args([FAKE_GAME, "--ignore-term", "--flood-stdout"])
        .arg(FLOOD_LINES.to_string());
    let mut agent = Running::start_with(command, Some(stdout), None);
    let addr = api_addr_from_stderr(&agent);
    // The game wrote everything (its stderr passes through to the agent's, which is read).
    assert!(
        wait_until(DEADLINE, || agent.stderr().contains("FLOODED")),
        "{}",
        agent.stderr()
    );
    let game_dropped = dropped("stdout", "game", "lines");
    assert!(wait_until(DEADLINE, || metric(addr, &game_dropped) > 0));
    let status = get_promptly(addr, "/v1/status").json();
    assert_eq!(status["state"], "starting", "{status}");
    assert!(
        agent
            .stderr()
            .contains("WARN the stream's reader is not keeping up"),
        "{}",
        agent.stderr()
    );

    stop_and_expect_the_grace_kill(&mut agent);

    // Line for line: what reached the FIFO plus what the agent reported dropped is all the
    // game printed (READY and the flood), and what arrived is whole lines, in order.
    let stderr = agent.stderr();
    let reported = logged_number(&stderr, "output was dropped", "game_lines");
    let received = read_all(reader);
    let lines: Vec<&str> = received.lines().collect();
    assert_eq!(lines.len() as u64 + reported, FLOOD_LINES + 1, "{stderr}");
    assert!(lines.len() > 100, "{} lines reached the FIFO", lines.len());
    let mut last = 0u64;
    for line in lines.iter().filter(|l| !l.starts_with("READY")) {
        assert_eq!(line.len(), 99, "{line:?}");
        let n: u64 = line["flood ".len()..][..8].parse().unwrap();
        assert!(n > last, "{n} after {last}");
        last = n;
    }
    assert!(stderr.contains("stream=\"stdout\""), "{stderr}");
}

#[test]
fn a_stderr_nobody_reads_blocks_nothing_and_the_dropped_lines_are_counted() {
    let dir = scratch_dir("stalled-stderr");
    let (reader, stderr) = stalled_fifo(&dir, "stderr");
    let mut command = agent_command();
    command
        .args(["--end-on-log", "^NEVER$", "--grace-period", "3s", "--"])
        .args([
            FAKE_GAME,
            "--print-env",
            "EDGEGAP_AGENT_URL",
            "--ignore-term",
        ])
        .arg("--flood-stderr")
        .arg(FLOOD_LINES.to_string());
    let mut agent = Running::start_with(command, None, Some(stderr));
    let url = agent.wait_line("ENV EDGEGAP_AGENT_URL=");
    let addr = http::addr_of(&url["ENV EDGEGAP_AGENT_URL=".len()..]);
    agent.wait_line("FLOODED");
    assert!(wait_until(DEADLINE, || {
        metric(addr, &dropped("stderr", "game", "lines")) > 0
    }));
    let bytes = metric(addr, &dropped("stderr", "game", "bytes"));
    let lines = metric(addr, &dropped("stderr", "game", "lines"));
    assert_eq!(bytes, lines * 100);
    get_promptly(addr, "/v1/status");

    stop_and_expect_the_grace_kill(&mut agent);

    // Whatever reached the FIFO is whole lines: the game's 100-byte lines and the agent's.
    let received = read_all(reader);
    assert!(!received.is_empty());
    for line in received.lines() {
        assert!(
            line.starts_with("[edgegap-agent] ")
                || (line.starts_with("flood ") && line.len() == 99),
            "{line:?}"
        );
    }
}

#[test]
fn with_inherited_output_a_stderr_nobody_reads_never_blocks_the_agents_own_lines() {
    let dir = scratch_dir("stalled-inherited");
    let (reader, stderr) = stalled_fifo(&dir, "stderr");
    let mut command = agent_command();
    // No --end-on-log: the game writes to the FIFO itself (and blocks there, its own
    // business); the agent's debug lines, one per heartbeat, go there too.
    command
        .args(["--grace-period", "3s", "--log-level", "debug", "--"])
        .args([
            FAKE_GAME,
            "--print-env",
            "EDGEGAP_AGENT_URL",
            "--ignore-term",
        ])
        .arg("--flood-stderr")
        .arg(FLOOD_LINES.to_string());
    let mut agent = Running::start_with(command, None, Some(stderr));
    let url = agent.wait_line("ENV EDGEGAP_AGENT_URL=");
    let addr = http::addr_of(&url["ENV EDGEGAP_AGENT_URL=".len()..]);
    // More than the agent's buffer of its own lines, each request answered at once.
    let agent_dropped = dropped("stderr", "agent", "lines");
    let mut conn = http::Conn::connect(addr).unwrap();
    let mut sent = 0;
    while metric(addr, &agent_dropped) == 0 {
        for _ in 0..1000 {
            let asked = Instant::now();
            let reply = conn.request("POST", "/v1/heartbeat", &[], b"").unwrap();
            assert_eq!(reply.status, 202, "{}", reply.body);
            assert!(
                asked.elapsed() < Duration::from_secs(1),
                "{:?}",
                asked.elapsed()
            );
        }
        sent += 1000;
        assert!(
            sent <= 50_000,
            "no agent line dropped after {sent} heartbeats"
        );
    }
    assert_eq!(metric(addr, &dropped("stderr", "game", "lines")), 0);

    stop_and_expect_the_grace_kill(&mut agent);
    assert!(!read_all(reader).is_empty());
}
