//! What production throws at a PID 1 and its API, bounded in count and time and on loopback
//! only: a signal storm while the API is under load, and API abuse (a thousand idle
//! connections, slowloris heads, oversized and malformed bodies) — the agent stays
//! responsive, its memory stays bounded, and the game is unaffected.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::{start_with_api, Running, DEADLINE};

/// The agent around a fake game that prints every signal it gets, and the API's address.
fn start() -> (Running, SocketAddr) {
    let (mut agent, addr) = start_with_api(&[], &["--record-signals", "-", "--ignore-term"]);
    agent.wait_ready();
    (agent, addr)
}

fn rss_kib(agent: &Running) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.pid())).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Keeps `connections` keep-alive clients busy with `GET /healthz` until `stop`; counts
/// answers and errors.
fn load(
    addr: SocketAddr,
    connections: usize,
    stop: Arc<AtomicBool>,
) -> (
    Arc<AtomicU64>,
    Arc<AtomicU64>,
    Vec<std::thread::JoinHandle<()>>,
) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let threads = (0..connections)
        .map(|_| {
            let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut conn = http::Conn::connect(addr).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    match conn.request("GET", "/healthz", &[], b"") {
                        Ok(reply) if reply.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    (ok, failed, threads)
}

/// 10,000 signals of four kinds while 8 clients hammer the API: every one reaches the game.
/// A batch of the four kinds is sent at once (distinct signals never merge); the next batch
/// goes once the game has printed all four, since the kernel itself merges a repeat of a
/// signal that is still pending.
#[test]
fn a_signal_storm_under_api_load_loses_no_signal() {
    let (mut agent, addr) = start();
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, threads) = load(addr, 8, stop.clone());
    let kinds = [
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ];
    let batches = 2_500;
    let started = Instant::now();
    for batch in 0..batches {
        for signal in kinds {
            agent.signal(signal);
        }
        let mut seen = Vec::new();
        while seen.len() < kinds.len() {
            let line = agent.wait_line("SIG");
            assert!(!seen.contains(&line), "batch {batch}: {line} arrived twice");
            seen.push(line);
        }
    }
    let storm = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "API errors during the storm"
    );
    assert!(ok.load(Ordering::Relaxed) > 0);
    // The agent is still alive and answering, and the game still runs.
    assert_eq!(http::get(addr, "/healthz").status, 200);
    assert!(agent.child.try_wait().unwrap().is_none());
    eprintln!(
        "10,000 signals in {storm:?} with {} API answers alongside",
        ok.load(Ordering::Relaxed)
    );
    agent.signal(Signal::SIGKILL);
}

/// A thousand connections held open, slowloris heads, oversized bodies, invalid UTF-8 and
/// absurdly nested JSON: the agent answers the well-behaved client promptly throughout, its
/// memory stays bounded, and the game keeps running and getting its signals.
#[test]
fn api_abuse_leaves_the_agent_responsive_and_the_game_unaffected() {
    let (mut agent, addr) = start();
    let rss_before = rss_kib(&agent);

    let idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let mut slowloris: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            stream
        })
        .collect();

    let probe = |what: &str| {
        let asked = Instant::now();
        let reply = http::get(addr, "/healthz");
        assert_eq!(reply.status, 200, "{what}");
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{what}: /healthz took {:?}",
            asked.elapsed()
        );
    };
    probe("with 1000 idle connections and 50 slowloris heads");

    // Oversized: a declared 1 MiB body is refused with 413 before it is sent...
    let head = b"POST /v1/match/end HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n";
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(head).unwrap();
    let mut answer = Vec::new();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = stream.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 413"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    // ...and one pushed anyway is cut off (write errors are the expected outcome).
    let mut stream = TcpStream::connect(addr).unwrap();
    let _ = stream
        .write_all(head)
        .and_then(|()| stream.write_all(&vec![b'x'; 1024 * 1024]));
    // Invalid UTF-8 and absurd nesting: 400 with a JSON error, nothing else happens.
    let reply = http::call(
        addr,
        "POST",
        "/v1/players/connect",
        &[],
        b"{\"id\": \"\xff\xfe\"}",
    )
    .unwrap();
    assert_eq!(reply.status, 400, "{}", reply.body);
    let nested = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    let reply = http::call(addr, "POST", "/v1/match/end", &[], nested.as_bytes()).unwrap();
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.json()["error"].is_string());
    // A path of garbage and a header of garbage.
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.write_all(b"\x00\x01\x02 /\xff HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    raw.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = raw.read_to_end(&mut answer);
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    probe("after the malformed requests");

    // The game is unaffected: still running, still getting its signals, match not ended.
    agent.signal(Signal::SIGUSR1);
    assert_eq!(agent.wait_line("SIG"), "SIGUSR1");
    assert_eq!(http::get(addr, "/v1/status").json()["state"], "starting");

    // The slowloris heads are cut off by the header read timeout (5 s).
    for stream in &mut slowloris {
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut buffer = [0u8; 256];
        let read = stream.read(&mut buffer);
        assert!(
            matches!(read, Ok(0) | Err(_)) || buffer.starts_with(b"HTTP/1.1 408"),
            "{read:?}"
        );
    }
    probe("after the slowloris heads were dropped");

    let rss_after = rss_kib(&agent);
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    eprintln!("agent RSS: {rss_before} KiB before, {rss_after} KiB with 1000 connections open");
    drop(idle);
    agent.signal(Signal::SIGKILL);
}
