//! Black-box tests of the API with the real binary and the fake game calling it: the API is up
//! before the game, the token reaches the game, the API answers during the grace period, the
//! default address is loopback, a taken address stops everything with 64, and the API holds
//! 10,000 requests from 64 connections while signals still reach the game promptly.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const AGENT: &str = env!("CARGO_BIN_EXE_edgegap-agent");
const GAME: &str = env!("CARGO_BIN_EXE_fake-game");

/// Waits for `condition` until `deadline` passes; panics with `what` if it never holds.
fn wait_for(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

struct Agent {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    addr: SocketAddr,
}

fn command(agent_args: &[&str], game_args: &[&str]) -> Command {
    let mut command = Command::new(AGENT);
    command
        .args(agent_args)
        .arg("--")
        .arg(GAME)
        .args(["--print-env", "EDGEGAP_AGENT_URL"])
        .args(game_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars() {
        if name.starts_with("EDGEGAP_AGENT_") {
            command.env_remove(name);
        }
    }
    command
}

impl Agent {
    /// Starts the agent on `127.0.0.1:0` and learns the API's address from the game, which
    /// prints the `EDGEGAP_AGENT_URL` it was given.
    fn start(agent_args: &[&str], game_args: &[&str]) -> Agent {
        let mut args = vec!["--api-addr", "127.0.0.1:0"];
        args.extend_from_slice(agent_args);
        let mut child = command(&args, game_args).spawn().unwrap();
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let mut agent = Agent {
            child,
            stdout,
            stderr,
            addr: "0.0.0.0:0".parse().unwrap(),
        };
        let line = agent.line(|l| l.starts_with("ENV EDGEGAP_AGENT_URL="));
        agent.addr = http::addr_of(line.trim_start_matches("ENV EDGEGAP_AGENT_URL="));
        agent
    }

    /// The next stdout line of the game that matches, within 10 s.
    fn line(&self, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if matches(&line) => return line,
                Ok(_) => continue,
                Err(e) => panic!(
                    "no matching line from the game ({e}); stderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let mut status = None;
        wait_for("the agent to exit", deadline, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status.unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn the_game_reaches_its_api_with_the_token_and_its_messages_reach_the_supervisor() {
    let mut agent = Agent::start(
        &["--api-token", "tok-123-secret"],
        &[
            "--print-env",
            "EDGEGAP_AGENT_API_TOKEN",
            "--api-call",
            "POST:/v1/ready",
            "--api-call",
            r#"POST:/v1/players/connect:{"id":"p1"}"#,
            "--api-call",
            r#"POST:/v1/match/end:{"reason":"done","delay":"60s"}"#,
        ],
    );
    assert!(agent.addr.ip().is_loopback());
    agent.line(|l| l == "ENV EDGEGAP_AGENT_API_TOKEN=tok-123-secret");
    agent.line(|l| l.starts_with("API POST /v1/ready -> 202"));
    agent.line(|l| l.starts_with("API POST /v1/players/connect -> 200"));
    agent.line(|l| l.starts_with("API POST /v1/match/end -> 202"));

    wait_for(
        "the supervisor to apply the game's messages",
        Duration::from_secs(5),
        || {
            let status = http::get(agent.addr, "/v1/status").json();
            status["ready"] == true && status["state"] == "ending" && status["players"] == 1
        },
    );
    let status = http::get(agent.addr, "/v1/status").json();
    assert_eq!(status["reason"], "done");
    assert_eq!(http::get(agent.addr, "/readyz").status, 200);
    assert_eq!(http::get(agent.addr, "/healthz").status, 200);
    let refused = http::call(agent.addr, "POST", "/v1/heartbeat", &[], b"").unwrap();
    assert_eq!(refused.status, 401);

    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(10)).code(), Some(143));
    let log = agent.stderr();
    assert!(log.contains("local API listening addr=127.0.0.1:"), "{log}");
    assert!(log.contains("reason=\"done\""), "{log}");
    assert!(
        !log.contains("tok-123-secret"),
        "the token was logged:\n{log}"
    );
}

#[test]
fn the_api_answers_while_the_game_is_in_its_grace_period() {
    let mut agent = Agent::start(&["--grace-period", "3s"], &["--ignore-term"]);
    agent.line(|l| l.starts_with("READY"));
    assert_eq!(http::get(agent.addr, "/healthz").status, 200);
    agent.signal(Signal::SIGTERM);
    let mut status = serde_json::Value::Null;
    wait_for(
        "the status to show stopping",
        Duration::from_secs(5),
        || {
            status = http::get(agent.addr, "/v1/status").json();
            status["state"] == "stopping"
        },
    );
    let ms_left = status["ms_left"].as_u64().unwrap();
    assert!(ms_left > 0 && ms_left <= 2000, "ms_left = {ms_left}");
    assert!(status["deadline_unix_ms"].as_u64().unwrap() > 0);
    let health = http::get(agent.addr, "/healthz");
    assert_eq!(health.status, 503);
    assert!(health.body.contains("being stopped"), "{}", health.body);
    let metrics = http::get(agent.addr, "/metrics").body;
    assert!(metrics.contains("edgegap_agent_lifecycle_state{state=\"stopping\"} 1"));
    // Still answering later in the grace period, with less time left.
    let later = http::get(agent.addr, "/v1/status").json();
    assert!(later["ms_left"].as_u64().unwrap() <= ms_left);
    assert_eq!(agent.wait_exit(Duration::from_secs(10)).code(), Some(137));
}

#[test]
fn the_default_address_is_loopback() {
    let help = Command::new(AGENT).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[env: EDGEGAP_AGENT_API_ADDR=]"), "{help}");
    assert!(help.contains("[default: 127.0.0.1:7070]"), "{help}");

    // Run with the default address. Another process may hold 7070: then the error names the
    // address it tried, which proves the same thing. Either way nothing binds a public address.
    let output = command(&[], &["--exit", "0"]).output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    let listened = log.contains("local API listening addr=127.0.0.1:7070 ");
    let refused = log.contains("cannot bind the local API to 127.0.0.1:7070");
    assert!(listened || refused, "{log}");
    assert_eq!(
        output.status.code(),
        Some(if listened { 0 } else { 64 }),
        "{log}"
    );
}

#[test]
fn a_taken_address_ends_the_agent_with_64_before_the_game_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let marker = std::env::temp_dir().join(format!("api-bind-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let output = command(
        &["--api-addr", &addr],
        &["--touch", marker.to_str().unwrap()],
    )
    .output()
    .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{log}");
    assert!(
        log.contains(&format!("cannot bind the local API to {addr}")),
        "{log}"
    );
    assert!(!marker.exists(), "the game was started without its API");
}

#[test]
fn ten_thousand_requests_from_64_connections_while_a_signal_reaches_the_game() {
    const TOTAL: usize = 10_000;
    const CONNECTIONS: usize = 64;
    let record = std::env::temp_dir().join(format!("api-load-{}.signals", std::process::id()));
    let _ = std::fs::remove_file(&record);
    let mut agent = Agent::start(&[], &["--record-signals", record.to_str().unwrap()]);
    agent.line(|l| l.starts_with("READY"));

    let issued = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (issued, answered, errors) = (issued.clone(), answered.clone(), errors.clone());
            let addr = agent.addr;
            std::thread::spawn(move || {
                let mut conn = match http::Conn::connect(addr) {
                    Ok(conn) => conn,
                    Err(e) => return errors.lock().unwrap().push(format!("connect: {e}")),
                };
                loop {
                    let n = issued.fetch_add(1, Ordering::Relaxed);
                    if n >= TOTAL {
                        return;
                    }
                    let (method, path, expected) = match n % 10 {
                        0 => ("POST", "/v1/heartbeat", 202),
                        1 => ("GET", "/v1/status", 200),
                        2 => ("GET", "/metrics", 200),
                        _ => ("GET", "/healthz", 200),
                    };
                    match conn.request(method, path, &[], b"") {
                        Ok(reply) if reply.status == expected => {}
                        Ok(reply) => errors
                            .lock()
                            .unwrap()
                            .push(format!("{path}: {}", reply.status)),
                        Err(e) => return errors.lock().unwrap().push(format!("{path}: {e}")),
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    // Under load, a forwarded signal still reaches the game promptly.
    wait_for("the load to be under way", Duration::from_secs(30), || {
        answered.load(Ordering::Relaxed) >= 1000
    });
    let sent = Instant::now();
    agent.signal(Signal::SIGUSR1);
    wait_for("SIGUSR1 to reach the game", Duration::from_secs(2), || {
        std::fs::read_to_string(&record).is_ok_and(|t| t.contains("SIGUSR1"))
    });
    let delivered_after = sent.elapsed();
    let in_flight = answered.load(Ordering::Relaxed) < TOTAL;

    for worker in workers {
        worker.join().unwrap();
    }
    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert_eq!(answered.load(Ordering::Relaxed), TOTAL);
    eprintln!(
        "SIGUSR1 reached the game after {delivered_after:?} (load still running: {in_flight})"
    );

    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.wait_exit(Duration::from_secs(10)).code(), Some(143));
    let _ = std::fs::remove_file(&record);
}
