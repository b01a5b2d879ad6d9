//! What production throws at a PID 1 and its API, bounded in count and time and on loopback
//! only: a signal storm while the API is under load, API abuse (a thousand idle connections,
//! slowloris heads, oversized and malformed bodies), and a sustained flood of a thousand
//! slow-body and a thousand idle connections, reopened as fast as the agent closes them,
//! while the game ends its match — the agent stays responsive, its memory stays bounded, and
//! the game is unaffected and served within a second.

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
    proc_status_kib(agent, "VmRSS:")
}

/// A `/proc/<pid>/status` figure in KiB (`VmRSS:` now, `VmHWM:` the peak).
fn proc_status_kib(agent: &Running, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.pid())).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
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

/// One attacking connection: an idle one sends nothing; a slow one sends a request head
/// declaring a 1000-byte body, then one byte of it a second.
struct Attacker {
    slow: bool,
    stream: Option<TcpStream>,
}

const SLOW_HEAD: &[u8] = b"POST /v1/heartbeat HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n";

impl Attacker {
    /// Opens (again) the connection if the agent closed it; returns whether it did.
    fn keep_open(&mut self, addr: SocketAddr) -> bool {
        if let Some(stream) = &self.stream {
            let mut buffer = [0u8; 512];
            match stream.peek(&mut buffer) {
                // Still open, nothing said: keep it.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                // A 408 or EOF or a reset: the agent is done with it.
                _ => {}
            }
        }
        self.stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .ok()
            .and_then(|mut stream| {
                if self.slow {
                    stream.write_all(SLOW_HEAD).ok()?;
                }
                stream.set_nonblocking(true).ok()?;
                Some(stream)
            });
        true
    }

    fn dribble(&mut self) {
        if let (true, Some(stream)) = (self.slow, &mut self.stream) {
            let _ = stream.write(b"x");
        }
    }
}

/// The open connections the agent reports in `/metrics`.
fn open_connections(addr: SocketAddr) -> u64 {
    let metrics = http::get(addr, "/metrics").body;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("edgegap_agent_api_connections "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no connection gauge in {metrics}"))
}

fn metric(addr: SocketAddr, name: &str) -> u64 {
    let metrics = http::get(addr, "/metrics").body;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A thousand connections sending a body a byte a second and a thousand idle ones, each
/// reopened as soon as the agent closes it (a sustained attack, not a burst), while the game
/// ends its match through the API: its request is answered within a second, the open
/// connections never exceed the cap, and the agent's memory stays bounded.
#[test]
fn the_game_ends_its_match_within_a_second_through_a_thousand_slow_bodies_and_a_thousand_idle_connections(
) {
    let trigger = std::env::temp_dir().join(format!("storm-trigger-{}", std::process::id()));
    let _ = std::fs::remove_file(&trigger);
    let (mut agent, addr) = start_with_api(
        &[],
        &[
            "--api-calls-after",
            trigger.to_str().unwrap(),
            "--api-call",
            r#"POST:/v1/match/end:{"reason":"blue team won","delay":"60s"}"#,
        ],
    );
    agent.wait_ready();
    let rss_before = rss_kib(&agent);

    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let reopened = Arc::new(AtomicU64::new(0));
    let attack = {
        let (stop, rounds, reopened) = (stop.clone(), rounds.clone(), reopened.clone());
        std::thread::spawn(move || {
            let mut attackers: Vec<Attacker> = (0..2000)
                .map(|i| Attacker {
                    slow: i % 2 == 0,
                    stream: None,
                })
                .collect();
            while !stop.load(Ordering::Relaxed) {
                let round = Instant::now();
                for attacker in &mut attackers {
                    if attacker.keep_open(addr) {
                        reopened.fetch_add(1, Ordering::Relaxed);
                    }
                    attacker.dribble();
                }
                rounds.fetch_add(1, Ordering::Relaxed);
                // A byte a second for each slow body.
                if let Some(rest) = Duration::from_secs(1).checked_sub(round.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
        })
    };
    // Two full rounds: 2000 connections opened, and every one the agent closed reopened.
    assert!(support::wait_until(DEADLINE, || rounds
        .load(Ordering::Relaxed)
        >= 2));
    let open = open_connections(addr);
    assert!(
        open <= edgegap_agent::api::MAX_CONNECTIONS as u64,
        "{open} connections open"
    );
    assert!(
        metric(
            addr,
            "edgegap_agent_api_connections_cut_total{reason=\"evicted\"}"
        ) > 0,
        "2000 connections, and none evicted"
    );

    // The game ends its match now.
    let asked = Instant::now();
    std::fs::write(&trigger, b"go").unwrap();
    let answer = agent.wait_line("API POST /v1/match/end");
    let took = asked.elapsed();
    assert!(answer.contains("-> 202"), "{answer}");
    assert!(
        took < Duration::from_secs(1),
        "the game's match end took {took:?} under the flood"
    );
    let status = http::get(addr, "/v1/status").json();
    assert_eq!(status["state"], "ending", "{status}");
    assert_eq!(status["reason"], "blue team won", "{status}");

    // Keep the flood up past the body and head deadlines (5 s): slow bodies are cut with
    // 408, idle connections at the head deadline, and memory stays bounded throughout.
    let until = rounds.load(Ordering::Relaxed) + 7;
    assert!(support::wait_until(DEADLINE, || rounds
        .load(Ordering::Relaxed)
        >= until));
    let open = open_connections(addr);
    assert!(
        open <= edgegap_agent::api::MAX_CONNECTIONS as u64,
        "{open} open"
    );
    let cut_by_deadline = metric(
        addr,
        "edgegap_agent_api_requests_total{route=\"heartbeat\",code=\"408\"}",
    ) + metric(
        addr,
        "edgegap_agent_api_connections_cut_total{reason=\"head_timeout\"}",
    );
    let rss_during = rss_kib(&agent);
    let peak = proc_status_kib(&agent, "VmHWM:");
    stop.store(true, Ordering::Relaxed);
    attack.join().unwrap();
    eprintln!(
        "match end answered in {took:?} under the flood; agent RSS {rss_before} KiB before, \
         {rss_during} KiB during, peak {peak} KiB; {} connections reopened; {cut_by_deadline} \
         cut by a deadline; {open} open",
        reopened.load(Ordering::Relaxed)
    );
    assert!(
        peak < rss_before + 20 * 1024,
        "peak RSS {peak} KiB, from {rss_before} KiB before the flood"
    );
    // The game is unaffected: still running, the match ending as it asked.
    assert!(agent.child.try_wait().unwrap().is_none());
    agent.signal(Signal::SIGTERM);
    let _ = std::fs::remove_file(&trigger);
}

/// With its file descriptors exhausted (`prlimit --nofile=64`), the agent keeps accepting by
/// closing its longest-waiting connection: a fresh request is still answered at once.
#[test]
fn out_of_file_descriptors_the_agent_still_answers_a_fresh_request() {
    let agent_env = support::agent_command();
    let mut command = std::process::Command::new("prlimit");
    for (key, value) in agent_env.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command.args([
        "--nofile=64:64",
        "--",
        support::AGENT,
        "--",
        support::FAKE_GAME,
    ]);
    command.args(["--print-env", "EDGEGAP_AGENT_URL"]);
    let mut agent = Running::start(command);
    let line = agent.wait_line("ENV EDGEGAP_AGENT_URL=");
    let addr = http::addr_of(&line["ENV EDGEGAP_AGENT_URL=".len()..]);
    agent.wait_ready();
    // Far more idle connections than the agent has descriptors for.
    let idle: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok())
        .collect();
    assert_eq!(idle.len(), 200);
    for attempt in 0..5 {
        let asked = Instant::now();
        let reply = http::get(addr, "/healthz");
        assert_eq!(reply.status, 200, "attempt {attempt}");
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "attempt {attempt} took {:?}",
            asked.elapsed()
        );
    }
    assert!(
        metric(
            addr,
            "edgegap_agent_api_connections_cut_total{reason=\"evicted\"}"
        ) > 0,
        "no connection was evicted: the limit was not reached"
    );
    drop(idle);
    agent.signal(Signal::SIGKILL);
}
