//! An example game server that uses the agent the way a real one would, with no dependencies
//! beyond std and nix (so it builds static and runs in a `FROM scratch` image next to the agent).
//!
//! What it does, in order:
//! 1. takes its port from the platform: `ARBITRIUM_PORT_<NAME>_INTERNAL` (`--port-name`, default
//!    `GAMEPORT`), else `--port` (default 7777);
//! 2. binds TCP and UDP on that port and serves a line protocol, one command per line (TCP) or
//!    per datagram (UDP): `JOIN <id>`, `LEAVE <id>`, `END`, `PING`; answers `OK ...`/`ERR ...`;
//! 3. reads the deployment context (`GET /v1/deployment`) from the agent at `EDGEGAP_AGENT_URL`,
//!    and declares itself ready (`POST /v1/ready`) once bound;
//! 4. reports players joining and leaving, heartbeats every `--heartbeat`, and follows the
//!    agent's status with a long poll (`GET /v1/status?wait=30s&after=<version>`), saying when
//!    the match is ending or the server is being stopped, with the milliseconds left;
//! 5. ends the match through the agent (`POST /v1/match/end`) after `--match-duration` or on `END`;
//!    if the agent cannot be reached it saves and exits 0, which the agent's default exit-code
//!    policy (`0=stop`) also treats as the end of the match;
//! 6. on SIGTERM (the platform stopping the deployment) saves (`--save-file`, and prints `SAVED`)
//!    and exits 0 well inside the grace period.
//!
//! If the agent's API is unreachable it logs that and keeps serving: the match matters more
//! than the metadata. Flags for tests: `--ignore-term`, `--exit-after D --exit-code N`.
//!
//! Every line it prints starts with `[game]`, so it is easy to tell from the agent's lines.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

macro_rules! say {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[game] {}", format_args!($($arg)*));
        let _ = out.flush();
    }};
}

struct Options {
    port_name: String,
    port: u16,
    bind: String,
    heartbeat: Option<Duration>,
    match_duration: Option<Duration>,
    end_delay: String,
    save_file: Option<String>,
    ignore_term: bool,
    exit_after: Option<Duration>,
    exit_code: i32,
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "[game] {problem}\nusage: game_server [--port-name NAME] [--port N] [--bind ADDR] \
         [--heartbeat D] [--match-duration D] [--end-delay D] [--save-file PATH] \
         [--ignore-term] [--exit-after D] [--exit-code N]   (D: 500ms, 5s, 2m, 0 = off)"
    );
    std::process::exit(64);
}

/// `500ms`, `5s`, `2m` or bare seconds; zero means "off".
fn duration(text: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let seconds: f64 = number
        .parse()
        .unwrap_or_else(|_| usage(&format!("{text:?} is not a duration")));
    (seconds > 0.0).then(|| Duration::from_secs_f64(seconds * scale))
}

fn parse_options() -> Options {
    let mut options = Options {
        port_name: "GAMEPORT".into(),
        port: 7777,
        bind: "0.0.0.0".into(),
        heartbeat: Some(Duration::from_secs(5)),
        match_duration: None,
        end_delay: "5s".into(),
        save_file: None,
        ignore_term: false,
        exit_after: None,
        exit_code: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--port-name" => options.port_name = value().to_uppercase().replace('-', "_"),
            "--port" => options.port = value().parse().unwrap_or_else(|_| usage("bad --port")),
            "--bind" => options.bind = value(),
            "--heartbeat" => options.heartbeat = duration(&value()),
            "--match-duration" => options.match_duration = duration(&value()),
            "--end-delay" => options.end_delay = value(),
            "--save-file" => options.save_file = Some(value()),
            "--ignore-term" => options.ignore_term = true,
            "--exit-after" => options.exit_after = duration(&value()),
            "--exit-code" => {
                options.exit_code = value().parse().unwrap_or_else(|_| usage("bad --exit-code"))
            }
            other => usage(&format!("unknown flag {other}")),
        }
    }
    // The platform's port mapping wins over the flag: it is what the outside world reaches.
    let var = format!("ARBITRIUM_PORT_{}_INTERNAL", options.port_name);
    if let Ok(text) = std::env::var(&var) {
        match text.parse() {
            Ok(port) => options.port = port,
            Err(_) => say!("{var}={text:?} is not a port; using {}", options.port),
        }
    }
    options
}

/// A minimal HTTP/1.1 client for the agent's localhost API (`Connection: close`, JSON bodies).
/// A real server would use its engine's HTTP client; this one keeps the example dependency-free.
struct Api {
    /// `host:port` from `EDGEGAP_AGENT_URL` (`http://127.0.0.1:PORT`), when set.
    authority: Option<String>,
    token: Option<String>,
}

impl Api {
    fn from_env() -> Api {
        let authority = std::env::var("EDGEGAP_AGENT_URL").ok().and_then(|url| {
            let rest = url.strip_prefix("http://")?;
            Some(rest.split('/').next()?.to_owned())
        });
        let token = std::env::var("EDGEGAP_AGENT_API_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        Api { authority, token }
    }

    /// Sends one request; returns the status code and the body.
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String), String> {
        self.call_within(method, path, body, Duration::from_secs(2))
    }

    /// As [`Api::call`], waiting up to `timeout` for the answer (a long poll waits longer).
    fn call_within(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        timeout: Duration,
    ) -> Result<(u16, String), String> {
        let authority = self
            .authority
            .as_deref()
            .ok_or("EDGEGAP_AGENT_URL is not set (not running under the agent?)")?;
        let address: SocketAddr = authority
            .to_socket_addrs()
            .map_err(|e| format!("{authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("{authority}: no address"))?;
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
            .map_err(|e| format!("{address}: {e}"))?;
        stream.set_read_timeout(Some(timeout)).ok();
        stream.set_write_timeout(Some(timeout)).ok();
        let body = body.unwrap_or("");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
             Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let (Some(token), "POST") = (&self.token, method) {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .map_err(|e| e.to_string())?;
        let response = String::from_utf8_lossy(&response);
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or("malformed HTTP response")?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("malformed HTTP status line")?;
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        Ok((status, if chunked { dechunk(body) } else { body.into() }))
    }

    fn post(&self, path: &str, body: &str) -> Result<(u16, String), String> {
        self.call("POST", path, Some(body))
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The first string value of `"key"` in a JSON text (enough for this example; use serde_json).
fn json_str<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let after = &json[json.find(&format!("\"{key}\""))? + key.len() + 2..];
    let value = after.trim_start().strip_prefix(':')?.trim_start();
    let value = value.strip_prefix('"')?;
    Some(&value[..value.find('"')?])
}

/// The first whole-number value of `"key"` in a JSON text.
fn json_u64(json: &str, key: &str) -> Option<u64> {
    let after = &json[json.find(&format!("\"{key}\""))? + key.len() + 2..];
    let value = after.trim_start().strip_prefix(':')?.trim_start();
    let end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    value[..end].parse().ok()
}

/// Follows the agent's status without polling (`GET /v1/status?wait=30s&after=<version>`,
/// a long poll) and says when the match starts ending or the server is being stopped, with
/// the time left: the moment the agent knows, before any signal. A real game would start
/// its end-of-match flow or its save here.
fn watch_agent(api: &Api) {
    let mut version = 0;
    let mut state = String::new();
    loop {
        let path = format!("/v1/status?wait=30s&after={version}");
        match api.call_within("GET", &path, None, Duration::from_secs(35)) {
            Ok((200, body)) => {
                version = json_u64(&body, "version").unwrap_or(version);
                let now = json_str(&body, "state").unwrap_or("?").to_owned();
                if now != state {
                    match now.as_str() {
                        "ending" => say!(
                            "agent: the match is ending ({})",
                            json_str(&body, "reason").unwrap_or("no reason given")
                        ),
                        "stopping" => say!(
                            "agent: the server is being stopped, {} ms left",
                            json_u64(&body, "ms_left").unwrap_or(0)
                        ),
                        _ => {}
                    }
                    state = now;
                }
            }
            // An agent without the long poll, or none at all: nothing to follow.
            Ok(_) | Err(_) => return,
        }
    }
}

fn json_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c if c.is_control() => format!("\\u{:04x}", c as u32).chars().collect(),
            c => vec![c],
        })
        .collect()
}

struct Game {
    api: Api,
    options: Options,
    players: Mutex<BTreeSet<String>>,
    match_over: AtomicBool,
    started: Instant,
}

impl Game {
    /// A call whose failure is logged, not fatal: the match goes on without the agent.
    fn report(&self, what: &str, path: &str, body: &str) -> bool {
        match self.api.post(path, body) {
            Ok((status, _)) if (200..300).contains(&status) => {
                say!("{what}: agent answered {status}");
                true
            }
            Ok((status, body)) => {
                say!("{what}: agent answered {status}: {}", body.trim());
                false
            }
            Err(error) => {
                say!("{what}: agent API unreachable ({error}); carrying on");
                false
            }
        }
    }

    fn command(&self, line: &str) -> String {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("PING"), None, _) => "PONG".into(),
            (Some("JOIN"), Some(id), None) => {
                self.players.lock().unwrap().insert(id.to_owned());
                let body = format!("{{\"id\":\"{}\"}}", json_escape(id));
                self.report(&format!("player {id} joined"), "/v1/players/connect", &body);
                format!("OK joined {id}")
            }
            (Some("LEAVE"), Some(id), None) => {
                if !self.players.lock().unwrap().remove(id) {
                    return format!("ERR {id} is not in the match");
                }
                let body = format!("{{\"id\":\"{}\"}}", json_escape(id));
                self.report(
                    &format!("player {id} left"),
                    "/v1/players/disconnect",
                    &body,
                );
                format!("OK left {id}")
            }
            (Some("END"), None, _) => {
                self.end_match("a player asked for it");
                "OK ending".into()
            }
            _ => format!("ERR unknown command {line:?} (JOIN <id>, LEAVE <id>, END, PING)"),
        }
    }

    /// Once only. If the agent cannot take the match end, save and exit 0 instead: under the
    /// agent's default `--on-exit 0=stop` a clean exit ends the match (and the deployment) too.
    fn end_match(&self, reason: &str) {
        if self.match_over.swap(true, Ordering::SeqCst) {
            return;
        }
        say!("MATCH OVER ({reason})");
        let body = format!(
            "{{\"reason\":\"{}\",\"delay\":\"{}\"}}",
            json_escape(reason),
            json_escape(&self.options.end_delay)
        );
        if !self.report("match end", "/v1/match/end", &body) {
            self.save();
            say!("exiting 0 so that the agent ends the match");
            std::process::exit(0);
        }
        // The agent now stops us (SIGTERM) after the delay; keep serving until then.
    }

    fn save(&self) {
        let players = self.players.lock().unwrap().clone();
        let state = format!(
            "uptime_ms={}\nplayers={}\n",
            self.started.elapsed().as_millis(),
            players.into_iter().collect::<Vec<_>>().join(",")
        );
        if let Some(path) = &self.options.save_file {
            if let Err(error) = std::fs::write(path, state) {
                say!("cannot save to {path}: {error}");
                return;
            }
        }
        say!("SAVED");
    }
}

fn serve_tcp(game: Arc<Game>, listener: TcpListener) {
    for stream in listener.incoming().flatten() {
        let game = game.clone();
        std::thread::spawn(move || {
            let Ok(mut writer) = stream.try_clone() else {
                return;
            };
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                let reply = game.command(line.trim());
                if writeln!(writer, "{reply}").is_err() {
                    return;
                }
            }
        });
    }
}

fn serve_udp(game: Arc<Game>, socket: UdpSocket) {
    let mut buffer = [0u8; 1500];
    while let Ok((n, peer)) = socket.recv_from(&mut buffer) {
        let line = String::from_utf8_lossy(&buffer[..n]);
        let reply = game.command(line.trim());
        let _ = socket.send_to(format!("{reply}\n").as_bytes(), peer);
    }
}

fn main() {
    // Block the stop signals before any thread starts, so one thread can wait for them.
    let mut stop_signals = SigSet::empty();
    stop_signals.add(Signal::SIGTERM);
    stop_signals.add(Signal::SIGINT);
    stop_signals.thread_block().expect("block SIGTERM/SIGINT");

    let options = parse_options();
    let address = format!("{}:{}", options.bind, options.port);
    let listener = TcpListener::bind(&address).unwrap_or_else(|e| {
        eprintln!("[game] cannot bind tcp {address}: {e}");
        std::process::exit(1);
    });
    let socket = UdpSocket::bind(&address).unwrap_or_else(|e| {
        eprintln!("[game] cannot bind udp {address}: {e}");
        std::process::exit(1);
    });
    say!("LISTENING tcp+udp {address}");

    let game = Arc::new(Game {
        api: Api::from_env(),
        options,
        players: Mutex::new(BTreeSet::new()),
        match_over: AtomicBool::new(false),
        started: Instant::now(),
    });

    // Where players should connect: the agent knows the platform's mapping.
    match game.api.call("GET", "/v1/deployment", None) {
        Ok((200, body)) => say!(
            "deployment {} join address {}",
            json_str(&body, "request_id").unwrap_or("?"),
            json_str(&body, "join_address").unwrap_or("?")
        ),
        Ok((status, _)) => say!("deployment context: agent answered {status}"),
        Err(error) => say!("deployment context: agent API unreachable ({error}); carrying on"),
    }

    {
        let game = game.clone();
        std::thread::spawn(move || loop {
            let signal = stop_signals.wait().expect("sigwait");
            if game.options.ignore_term && signal == Signal::SIGTERM {
                say!("{} received: ignoring it (--ignore-term)", signal.as_str());
                continue;
            }
            say!("{} received: saving and exiting", signal.as_str());
            game.save();
            std::process::exit(0);
        });
    }
    {
        let (game, listener) = (game.clone(), listener);
        std::thread::spawn(move || serve_tcp(game, listener));
    }
    {
        let game = game.clone();
        std::thread::spawn(move || serve_udp(game, socket));
    }

    game.report("ready", "/v1/ready", "{}");
    say!("READY");
    {
        let game = game.clone();
        std::thread::spawn(move || watch_agent(&game.api));
    }

    if let Some(every) = game.options.heartbeat {
        let game = game.clone();
        std::thread::spawn(move || {
            // Logged when it changes only: a line every few seconds would drown the log.
            let mut was_ok = true;
            loop {
                std::thread::sleep(every);
                let result = game.api.post("/v1/heartbeat", "{}");
                match (&result, was_ok) {
                    (Err(error), true) => say!("heartbeat: agent API unreachable ({error})"),
                    (Ok(_), false) => say!("heartbeat: agent API reachable again"),
                    _ => {}
                }
                was_ok = result.is_ok();
            }
        });
    }
    if let Some(after) = game.options.exit_after {
        let code = game.options.exit_code;
        std::thread::spawn(move || {
            std::thread::sleep(after);
            say!("exiting with code {code} (--exit-after)");
            std::process::exit(code);
        });
    }
    match game.options.match_duration {
        Some(length) => {
            std::thread::sleep(length);
            game.end_match("the match time is up");
            loop {
                std::thread::park();
            }
        }
        None => loop {
            std::thread::park();
        },
    }
}
