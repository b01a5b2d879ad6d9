//! The example game server (examples/game_server.rs) against a fake agent API on 127.0.0.1:0
//! that records every request: the routes, bodies and bearer token it sends; its port from the
//! platform's variable; its line protocol; saving on SIGTERM; and carrying on without the API.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;

use nix::sys::signal::Signal;
use support::{example_game, lines_of, scratch_dir, wait_until, Running, DEADLINE};

#[derive(Debug, Clone, PartialEq)]
struct Request {
    method: String,
    path: String,
    authorization: Option<String>,
    body: String,
}

/// A fake of the agent's API: answers each route as the agent will, and records the requests.
/// `/v1/deployment` is sent chunked, as an HTTP server may.
struct FakeApi {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeApi {
    fn start() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let recorded = recorded.clone();
                thread::spawn(move || serve(stream, &recorded));
            }
        });
        FakeApi { url, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn count(&self, method: &str, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    fn wait_for(&self, method: &str, path: &str, times: usize) -> Request {
        assert!(
            wait_until(DEADLINE, || self.count(method, path) >= times),
            "no {method} {path} (x{times}); requests: {:?}",
            self.requests()
        );
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .nth(times - 1)
            .unwrap()
    }
}

fn serve(stream: TcpStream, recorded: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut words = line.split_whitespace();
    let (method, path) = (
        words.next().unwrap().to_owned(),
        words.next().unwrap().to_owned(),
    );
    let (mut length, mut authorization) = (0, None);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap(),
            "authorization" => authorization = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    recorded.lock().unwrap().push(Request {
        method: method.clone(),
        path: path.clone(),
        authorization,
        body: String::from_utf8(body).unwrap(),
    });
    let mut stream = stream;
    let response = match (method.as_str(), path.as_str()) {
        ("GET", "/v1/deployment") => {
            let json = r#"{"request_id":"c0653765de3b","public_ip":"100.10.0.85","ports":[{"name":"gameport","internal":7777,"external":31669,"protocol":"UDP","join_address":"c0653765de3b.pr.edgegap.net:31669"}]}"#;
            let (a, b) = json.split_at(40);
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                a.len(),
                b.len()
            )
        }
        ("POST", "/v1/match/end") => reply(202, r#"{"state":"ending"}"#),
        ("POST", _) => reply(200, "{}"),
        _ => reply(404, r#"{"error":"no such route"}"#),
    };
    let _ = stream.write_all(response.as_bytes());
}

fn reply(status: u16, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One line to the game over TCP, and its reply.
fn tell(port: u16, line: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    writeln!(stream, "{line}").unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    reply.trim().to_owned()
}

fn game_command() -> Command {
    let mut command = Command::new(example_game());
    command.env_clear();
    command
}

#[test]
fn the_example_game_drives_the_agent_api_as_specified() {
    let api = FakeApi::start();
    let port = free_port();
    let save = scratch_dir("example-game").join("save");
    let mut command = game_command();
    command
        .env("EDGEGAP_AGENT_URL", &api.url)
        .env("EDGEGAP_AGENT_API_TOKEN", "local-secret")
        // The platform's port, under the name the game is told to use.
        .env("ARBITRIUM_PORT_GAME_PORT_INTERNAL", port.to_string())
        .args(["--port-name", "game-port", "--bind", "127.0.0.1"])
        .args(["--heartbeat", "100ms", "--end-delay", "3s"])
        .args(["--save-file", save.to_str().unwrap()]);
    let mut game = Running::start(command);
    game.wait_line("[game] READY");
    assert!(
        game.stdout_seen.iter().any(|l| l
            == "[game] deployment c0653765de3b join address c0653765de3b.pr.edgegap.net:31669"),
        "{:?}",
        game.stdout_seen
    );
    let deployment = api.wait_for("GET", "/v1/deployment", 1);
    assert_eq!(deployment.authorization, None);
    let ready = api.wait_for("POST", "/v1/ready", 1);
    assert_eq!(ready.authorization.as_deref(), Some("Bearer local-secret"));

    assert_eq!(tell(port, "JOIN alice"), "OK joined alice");
    assert_eq!(
        api.wait_for("POST", "/v1/players/connect", 1).body,
        r#"{"id":"alice"}"#
    );
    assert_eq!(tell(port, "LEAVE alice"), "OK left alice");
    assert_eq!(tell(port, "LEAVE alice"), "ERR alice is not in the match");
    assert_eq!(
        api.wait_for("POST", "/v1/players/disconnect", 1).body,
        r#"{"id":"alice"}"#
    );
    assert_eq!(tell(port, "JOIN bob"), "OK joined bob");
    let heartbeat = api.wait_for("POST", "/v1/heartbeat", 3);
    assert_eq!(
        heartbeat.authorization.as_deref(),
        Some("Bearer local-secret")
    );

    // END asks the agent to end the match, once; the game serves on until the agent stops it.
    assert_eq!(tell(port, "END"), "OK ending");
    assert_eq!(tell(port, "END"), "OK ending");
    let end = api.wait_for("POST", "/v1/match/end", 1);
    assert_eq!(
        end.body,
        r#"{"reason":"a player asked for it","delay":"3s"}"#
    );
    assert_eq!(tell(port, "PING"), "PONG");
    assert_eq!(api.count("POST", "/v1/match/end"), 1);

    // The agent's SIGTERM after the delay: save, exit 0.
    game.signal(Signal::SIGTERM);
    assert_eq!(game.exit_code(), 0);
    game.wait_line("[game] SAVED");
    let saved = lines_of(&save);
    assert!(saved.contains(&"players=bob".to_owned()), "{saved:?}");
}

#[test]
fn without_the_agent_api_the_game_serves_and_a_timed_match_end_exits_0() {
    let port = free_port();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let mut command = game_command();
    command.env("EDGEGAP_AGENT_URL", &closed).args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--match-duration",
        "1s",
    ]);
    let mut game = Running::start(command);
    game.wait_line("[game] READY");
    assert!(
        game.stdout_seen
            .iter()
            .any(|l| l.starts_with("[game] ready: agent API unreachable")),
        "{:?}",
        game.stdout_seen
    );
    // Still serving players without the agent.
    assert_eq!(tell(port, "JOIN carol"), "OK joined carol");
    game.wait_line("[game] MATCH OVER (the match time is up)");
    game.wait_line("[game] SAVED");
    // A clean exit, which the agent's default `0=stop` turns into the end of the match.
    assert_eq!(game.exit_code(), 0);
}

#[test]
fn a_game_told_to_ignore_sigterm_keeps_serving() {
    let port = free_port();
    let mut command = game_command();
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--ignore-term",
    ]);
    let mut game = Running::start(command);
    game.wait_line("[game] READY");
    game.signal(Signal::SIGTERM);
    game.wait_line("[game] SIGTERM received: ignoring it");
    assert_eq!(tell(port, "PING"), "PONG");
    game.signal(Signal::SIGINT);
    game.wait_line("[game] SAVED");
    assert_eq!(game.exit_code(), 0);
}

/// Under the real agent, the game follows its status with a long poll and hears of the match
/// end and of the stop (with the time it has left) as they happen, before any signal.
#[test]
fn under_the_agent_the_game_hears_of_the_match_end_and_the_stop_at_once() {
    let port = free_port();
    let mut command = support::agent_command();
    command.args(["--grace-period", "20s", "--"]);
    command.arg(example_game()).args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--end-delay",
        "60s",
        "--ignore-term",
    ]);
    let mut agent = Running::start(command);
    agent.wait_line("[game] READY");
    assert_eq!(tell(port, "END"), "OK ending");
    agent.wait_line("[game] agent: the match is ending (a player asked for it)");

    agent.signal(Signal::SIGTERM);
    let line = agent.wait_line("[game] agent: the server is being stopped, ");
    let left: u64 = line
        .trim_start_matches("[game] agent: the server is being stopped, ")
        .trim_end_matches(" ms left")
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"));
    // Grace 20 s minus the 1 s kill margin, less the moment it took.
    assert!((10_000..=19_000).contains(&left), "{line}");
    // The game ignores TERM; the second stop request sends it INT: it saves and exits.
    agent.signal(Signal::SIGINT);
    agent.wait_line("[game] SAVED");
    agent.wait_exit(DEADLINE);
}
