//! Lifecycle benchmark: how long from the game's `POST /v1/match/end` until the platform
//! receives the agent's DELETE (the self-stop), measured against a minimal platform on
//! 127.0.0.1 that answers 200 at once. Each run is a fresh agent and game, so the figure
//! includes nothing cached. Prints a Markdown table; `BENCH_RUNS` (default 300) bounds it
//! (at most 100 runs here: each starts an agent).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The agent as it ships (the dist profile), which `benches/run.sh` builds alone and names in
/// `SHIPPED_AGENT`; the bench profile's own build when run by hand without it.
fn agent() -> &'static str {
    static AGENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    AGENT.get_or_init(|| {
        std::env::var("SHIPPED_AGENT")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_edgegap-agent").to_owned())
    })
}
const FAKE_GAME: &str = env!("CARGO_BIN_EXE_fake-game");

/// A platform that answers every request 200 and reports when each DELETE's head arrived.
fn platform() -> (u16, mpsc::Receiver<Instant>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let sender = sender.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    let arrived = Instant::now();
                    let is_delete = line.starts_with("DELETE ");
                    // Skip the rest of the head (no body in a DELETE).
                    let mut header = String::new();
                    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                        header.clear();
                    }
                    if is_delete {
                        let _ = sender.send(arrived);
                    }
                    let body = br#"{"message":"Instance will be deleted"}"#;
                    let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/json\r\n\r\n", body.len());
                    let stream = reader.get_mut();
                    let _ = stream
                        .write_all(reply.as_bytes())
                        .and_then(|()| stream.write_all(body));
                    line.clear();
                }
            });
        }
    });
    (port, receiver)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let runs = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300u64)
        .min(100);
    let (port, deletes) = platform();
    let mut samples = Vec::new();
    for _ in 0..runs {
        let mut agent = Command::new(agent())
            .args([
                "--api-addr",
                "127.0.0.1:0",
                "--log-level",
                "warn",
                "--self-stop-wait",
                "60s",
            ])
            .args([
                "--",
                FAKE_GAME,
                "--print-env",
                "EDGEGAP_AGENT_URL",
                "--on-term-exit",
                "0",
            ])
            .env("ARBITRIUM_REQUEST_ID", "c0653765de3b")
            .env("ARBITRIUM_PUBLIC_IP", "127.0.0.1")
            .env(
                "ARBITRIUM_DELETE_URL",
                format!("http://127.0.0.1:{port}/v1/self/stop/c0653765de3b/1"),
            )
            .env("ARBITRIUM_DELETE_TOKEN", "bench-token")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the agent");
        let mut lines = BufReader::new(agent.stdout.take().expect("stdout")).lines();
        let url = loop {
            let line = lines.next().expect("the game's output").expect("read");
            if let Some(url) = line.strip_prefix("ENV EDGEGAP_AGENT_URL=http://") {
                break url.to_owned();
            }
        };
        let mut api = TcpStream::connect(&url).expect("connect to the API");
        api.set_nodelay(true).expect("nodelay");
        let request = "POST /v1/match/end HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
        let asked = Instant::now();
        api.write_all(request.as_bytes()).expect("match end");
        let arrived = deletes
            .recv_timeout(Duration::from_secs(10))
            .expect("the DELETE");
        samples.push(arrived.saturating_duration_since(asked));
        let mut answer = [0u8; 512];
        let _ = api.read(&mut answer);
        // The platform's SIGTERM, as it follows an accepted self-stop.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(agent.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        agent.wait().expect("wait");
    }
    samples.sort();
    println!("| `POST /v1/match/end` → DELETE at the platform ({runs} runs, a fresh agent each) | median | p99 |");
    println!("|---|---|---|");
    println!(
        "| edgegap-agent, plain HTTP platform on 127.0.0.1 | {:.0} µs | {:.0} µs |",
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6
    );
}
