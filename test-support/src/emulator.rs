//! Driving the real `edgegap-emulator` (its own tests, and the agent's tests that run the
//! agent on it): start it on `127.0.0.1:0`, talk to it with a tiny raw HTTP/1.1 client over
//! `std::net::TcpStream`, and poll deployments under deadlines (never sleep and then assert).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{emulator_binary, fake_game, Running, DEADLINE};

pub const KEY: &str = "test-api-key";

/// A response: status, headers (names lower-cased) and body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The `message` of an error body.
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {:?}", self.body))
            .to_owned()
    }
}

/// One HTTP/1.1 request with `Connection: close`; the whole response.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Resp {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" || method == "PATCH" {
        head.push_str("Content-Type: application/json\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) and close before reading a large body: keep its answer.
    let _ = stream.write_all(body.as_bytes());
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response: {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    Resp {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A running emulator.
pub struct Emu {
    pub process: Running,
    pub addr: String,
}

static NAMES: AtomicU32 = AtomicU32::new(0);

/// A name no other test in this process uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", NAMES.fetch_add(1, Ordering::SeqCst))
}

impl Emu {
    pub fn start(args: &[&str]) -> Emu {
        Emu::start_on("127.0.0.1:0", args)
    }

    /// As [`Emu::start`], listening on `listen` (e.g. the Docker bridge gateway, port 0):
    /// the deployments' `ARBITRIUM_*` URLs then point there.
    pub fn start_on(listen: &str, args: &[&str]) -> Emu {
        let mut command = Command::new(emulator_binary());
        command
            .args(["--listen", listen, "--api-token", KEY])
            .args(args);
        let mut process = Running::start(command);
        let line = process.wait_line("edgegap-emulator listening on http://");
        let addr = line.rsplit("http://").next().unwrap().trim().to_owned();
        Emu { process, addr }
    }

    /// A request with the operator's key.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let auth = format!("token {KEY}");
        let body = body.map(|b| b.to_string());
        request(
            &self.addr,
            method,
            path,
            &[("Authorization", &auth)],
            body.as_deref(),
        )
    }

    pub fn create_app(&self, name: &str) {
        let body = json!({"name": name, "is_active": true, "image": ""});
        let resp = self.call("POST", "/v1/app", Some(body));
        assert_eq!(resp.status, 200, "{}", resp.body);
    }

    /// Creates an app with one version `v` (the fields over working defaults); returns the app.
    pub fn app_with_version(&self, fields: Value) -> String {
        let app = unique("app");
        self.create_app(&app);
        let mut version = version_body("v", &[fake_game()]);
        for (key, value) in fields.as_object().unwrap() {
            version[key] = value.clone();
        }
        let resp = self.call("POST", &format!("/v1/app/{app}/version"), Some(version));
        assert_eq!(resp.status, 200, "{}", resp.body);
        app
    }

    /// Deploys version `v` of `app`; returns the request id.
    pub fn deploy(&self, app: &str, extra: Value) -> String {
        let mut body = json!({"application": app, "version": "v"});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        let resp = self.call("POST", "/v2/deployments", Some(body));
        assert_eq!(resp.status, 202, "{}", resp.body);
        resp.json()["request_id"].as_str().unwrap().to_owned()
    }

    /// An app with a version running the fake game with `game_args`, deployed; the request id.
    pub fn deploy_game(&self, fields: Value, game_args: &[&str]) -> String {
        let mut command = vec![fake_game()];
        command.extend_from_slice(game_args);
        let mut fields = fields;
        fields["command"] = json!(command);
        let app = self.app_with_version(fields);
        self.deploy(&app, json!({}))
    }

    pub fn status(&self, id: &str) -> Value {
        let resp = self.call("GET", &format!("/v1/status/{id}"), None);
        assert_eq!(resp.status, 200, "{}", resp.body);
        resp.json()
    }

    /// Polls until `current_status` is `want`; returns the status response.
    pub fn wait_status(&self, id: &str, want: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let status = self.status(id);
            if status["current_status"] == want {
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "deployment {id} not {want} within {within:?}: {status}\nlogs: {}\nevents: {}",
                    self.logs(id)["logs"],
                    self.events(id)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The container logs, also after termination (the emulator's own route: the documented
    /// one stops serving them once the deployment is terminated).
    pub fn logs(&self, id: &str) -> Value {
        self.call("GET", &format!("/emulator/v1/deployments/{id}/logs"), None)
            .json()
    }

    pub fn events(&self, id: &str) -> Value {
        self.call(
            "GET",
            &format!("/emulator/v1/deployments/{id}/events"),
            None,
        )
        .json()
    }

    /// Polls the container logs until a line starts with `prefix`; returns the line.
    pub fn wait_log_line(&self, id: &str, prefix: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let logs = self.logs(id)["logs"].as_str().unwrap_or("").to_owned();
            if let Some(line) = logs.lines().find(|l| l.starts_with(prefix)) {
                return line.to_owned();
            }
            if Instant::now() >= deadline {
                panic!("no log line starting with {prefix:?} in {id}: {logs}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The value the fake game printed for `--print-env VAR`.
    pub fn printed_env(&self, id: &str, var: &str) -> String {
        let line = self.wait_log_line(id, &format!("ENV {var}"));
        line.strip_prefix(&format!("ENV {var}="))
            .unwrap_or_else(|| panic!("{var} unset: {line}"))
            .to_owned()
    }
}

impl Drop for Emu {
    /// SIGTERM, so the emulator stops its deployments (SIGTERM, grace, SIGKILL) before it
    /// exits; a SIGKILLed emulator would leave its games running.
    fn drop(&mut self) {
        if self.process.child.try_wait().ok().flatten().is_none() {
            self.process.signal(nix::sys::signal::Signal::SIGTERM);
            let _ = super::wait_until(Duration::from_secs(15), || {
                self.process.child.try_wait().ok().flatten().is_some()
            });
        }
    }
}

/// A valid version body running `command`.
pub fn version_body(name: &str, command: &[&str]) -> Value {
    json!({
        "name": name,
        "docker_repository": "registry.local",
        "docker_image": "studio/game",
        "docker_tag": "1.0.0",
        "req_cpu": 256,
        "req_memory": 512,
        "command": command,
    })
}

/// The highest port an app version may name (the documents' `maximum: 59999`); the kernel's
/// ephemeral range goes higher, so a port the OS picks must be checked.
pub const MAX_VERSION_PORT: u16 = 59_999;

/// A TCP listener on 127.0.0.1 at a free port an app version may name.
pub fn bind_tcp() -> TcpListener {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        if listener.local_addr().unwrap().port() <= MAX_VERSION_PORT {
            return listener;
        }
    }
}

/// A UDP socket on 127.0.0.1 at a free port an app version may name.
pub fn bind_udp() -> std::net::UdpSocket {
    loop {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        if socket.local_addr().unwrap().port() <= MAX_VERSION_PORT {
            return socket;
        }
    }
}

/// A free local TCP port an app version may name (bound then released).
pub fn free_port() -> u16 {
    bind_tcp().local_addr().unwrap().port()
}

/// A local HTTP server that records the path and body of every request and answers 200.
pub struct Recorder {
    pub url: String,
    pub seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Recorder {
    pub fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut raw = Vec::new();
                let mut buffer = [0u8; 8192];
                // Read the head, then as much body as Content-Length says.
                loop {
                    let n = stream.read(&mut buffer).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    raw.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&raw);
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                let (n, v) = l.split_once(':')?;
                                n.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                            sink.lock().unwrap().push((path, body.to_owned()));
                            break;
                        }
                    }
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Recorder { url, seen }
    }

    /// Waits until a request to `path` arrived; returns its body as JSON.
    pub fn wait_for(&self, path: &str) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let found = self
                .seen
                .lock()
                .unwrap()
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, b)| b.clone());
            if let Some(body) = found {
                return serde_json::from_str(&body).unwrap();
            }
            assert!(Instant::now() < deadline, "no webhook to {path}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
