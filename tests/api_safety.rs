//! The local API safe by default, with the real binary: a non-loopback address is refused
//! without a token (64, naming both ways out), `--api-guard-reads` puts the GET routes that
//! show the match behind the token, and the default address gives way when 7070 is held by
//! another socket or is the game's own mapped port — the game still starts and reaches its
//! agent at the URL it was given. An address the user gave stays an error (`api_binary.rs`).

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::Signal;
use support::{agent_command, start_with_api, wait_until, Running, FAKE_GAME};

/// The tests that use port 7070 take turns (other test binaries run before or after).
static PORT_7070: Mutex<()> = Mutex::new(());

fn marker(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("api-safety-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn a_non_loopback_address_without_a_token_is_refused_naming_both_ways_out() {
    for (how, addr) in [
        ("flag", "0.0.0.0:0"),
        ("flag", "[::]:0"),
        ("env", "0.0.0.0:0"),
    ] {
        let started = marker("refused");
        let mut command = agent_command();
        if how == "env" {
            command.env("EDGEGAP_AGENT_API_ADDR", addr);
        } else {
            command.args(["--api-addr", addr]);
        }
        let output = command
            .args(["--", FAKE_GAME, "--touch", started.to_str().unwrap()])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{how} {addr}: {log}");
        for named in [
            "--api-addr",
            "EDGEGAP_AGENT_API_ADDR",
            "not a loopback address",
            "--api-token",
            "EDGEGAP_AGENT_API_TOKEN",
            "--api-insecure-no-token",
            "EDGEGAP_AGENT_API_INSECURE_NO_TOKEN",
        ] {
            assert!(
                log.contains(named),
                "{how} {addr}: {named} not named: {log}"
            );
        }
        assert!(!started.exists(), "{how} {addr}: the game was started");
    }
    // The guard without a token to guard with.
    let output = agent_command()
        .args(["--api-guard-reads", "--", FAKE_GAME])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{log}");
    assert!(
        log.contains("--api-guard-reads") && log.contains("--api-token"),
        "{log}"
    );
}

#[test]
fn a_non_loopback_address_is_served_with_a_token_or_the_insecure_opt_out() {
    // With the explicit opt-out: served, with a warning that says what it means.
    let (mut agent, addr) = start_with_api(
        &["--api-addr", "0.0.0.0:0", "--api-insecure-no-token"],
        &["--api-call", "POST:/v1/ready"],
    );
    assert!(addr.ip().is_unspecified(), "{addr}");
    assert!(agent.wait_line("API POST /v1/ready").contains("-> 202"));
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 143);
    let log = agent.stderr();
    assert!(
        log.contains(
            "has no token (--api-insecure-no-token): anyone who can reach it can end the match"
        ),
        "{log}"
    );

    // With a token (from the environment), and the reads still open: said once at start.
    let mut command = agent_command();
    command
        .env("EDGEGAP_AGENT_API_ADDR", "0.0.0.0:0")
        .env("EDGEGAP_AGENT_API_TOKEN", "tok-exposed-1")
        .args([
            "--",
            FAKE_GAME,
            "--api-call",
            "POST:/v1/ready",
            "--exit",
            "0",
        ]);
    let mut agent = Running::start(command);
    assert!(agent.wait_line("API POST /v1/ready").contains("-> 202"));
    assert_eq!(agent.exit_code(), 0);
    let log = agent.stderr();
    assert_eq!(
        log.matches("--api-guard-reads puts them behind the token")
            .count(),
        1,
        "{log}"
    );
}

/// Everything a GET route answers without a token, and with `token`.
fn get_both_ways(addr: SocketAddr, path: &str, token: &str) -> (u16, u16) {
    let bearer = format!("Bearer {token}");
    let with = http::call(addr, "GET", path, &[("Authorization", &bearer)], b"").unwrap();
    (http::get(addr, path).status, with.status)
}

#[test]
fn with_the_guard_the_get_routes_that_show_the_match_need_the_token() {
    let token = "tok-guard-7Qx";
    let (mut agent, addr) = start_with_api(
        &["--api-token", token, "--api-guard-reads"],
        &[
            "--api-call",
            "GET:/v1/status",
            "--api-call",
            "POST:/v1/ready",
        ],
    );
    // The game sends its token: its reads are served.
    assert!(agent.wait_line("API GET /v1/status").contains("-> 200"));
    assert!(agent.wait_line("API POST /v1/ready").contains("-> 202"));
    for path in ["/v1/deployment", "/v1/status", "/v1/players", "/metrics"] {
        let (without, with) = get_both_ways(addr, path, token);
        assert_eq!((without, with), (401, 200), "{path}");
        let refused = http::get(addr, path);
        assert_eq!(refused.header("www-authenticate"), Some("Bearer"), "{path}");
        assert_eq!(refused.json()["error"], "unauthorized", "{path}");
        let (_, wrong) = get_both_ways(addr, path, "not-it");
        assert_eq!(wrong, 401, "{path}");
    }
    // Probes stay open: health checks rarely carry a secret.
    assert_eq!(http::get(addr, "/healthz").status, 200);
    assert_eq!(http::get(addr, "/readyz").status, 200);
    // A guarded refusal is counted, and shows nothing of the match.
    let refused = http::get(addr, "/v1/status");
    assert!(!refused.body.contains("state"), "{}", refused.body);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 143);

    // Without the guard, a token guards the POST routes only (as documented).
    let (mut agent, addr) = start_with_api(&["--api-token", token], &[]);
    agent.wait_ready();
    for path in ["/v1/deployment", "/v1/status", "/v1/players", "/metrics"] {
        assert_eq!(http::get(addr, path).status, 200, "{path}");
    }
    assert_eq!(
        http::call(addr, "POST", "/v1/ready", &[], b"")
            .unwrap()
            .status,
        401
    );
    agent.signal(Signal::SIGKILL);
}

/// The agent on the default address (no `--api-addr`, no variable), around a fake game that
/// prints the URL it was given and calls its API there; returns the agent and that address.
fn start_on_the_default_address(env: &[(&str, &str)], game: &[&str]) -> (Running, SocketAddr) {
    let mut command = agent_command();
    command
        .env_remove("EDGEGAP_AGENT_API_ADDR")
        .envs(env.iter().copied())
        .args(["--", FAKE_GAME, "--print-env", "EDGEGAP_AGENT_URL"])
        .args(game)
        .args(["--api-call", "POST:/v1/ready"]);
    let mut agent = Running::start(command);
    let line = agent.wait_line("ENV EDGEGAP_AGENT_URL=");
    let addr = http::addr_of(&line["ENV EDGEGAP_AGENT_URL=".len()..]);
    (agent, addr)
}

/// The sockets the process holds that listen on `port` (from its descriptors and the
/// kernel's table of TCP sockets).
fn listening_sockets_on(pid: nix::unistd::Pid, port: u16) -> usize {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target
                .strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(str::to_owned)
        })
        .collect();
    let mut count = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields[1].rsplit(':').next().unwrap();
            let listening = fields[3] == "0A";
            if listening
                && u16::from_str_radix(local_port, 16).unwrap() == port
                && inodes.iter().any(|inode| inode == fields[9])
            {
                count += 1;
            }
        }
    }
    count
}

#[test]
fn with_7070_held_by_another_socket_the_game_reaches_its_agent_on_another_port() {
    let _turn = PORT_7070.lock().unwrap_or_else(|p| p.into_inner());
    // Held by this socket, or by whoever holds it already: held either way.
    let _held = std::net::TcpListener::bind("127.0.0.1:7070");
    let (mut agent, addr) = start_on_the_default_address(&[], &[]);
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 7070);
    assert!(agent.wait_line("API POST /v1/ready").contains("-> 202"));
    // 202 is "accepted": the supervisor applies it a moment later.
    assert!(
        wait_until(Duration::from_secs(5), || http::get(addr, "/v1/status")
            .json()["ready"]
            == true),
        "the game's ready never reached the status"
    );
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 143);
    // Read once the agent has exited: its lines reach stderr through a writer thread.
    let log = agent.stderr();
    assert!(
        log.contains("the default local API address 127.0.0.1:7070 cannot be bound"),
        "{log}"
    );
    assert!(
        log.contains(&format!("listening on {addr} instead")),
        "{log}"
    );
}

#[test]
fn with_7070_the_games_mapped_port_the_game_gets_it_and_reaches_its_agent_elsewhere() {
    let _turn = PORT_7070.lock().unwrap_or_else(|p| p.into_inner());
    let mapping =
        r#"{"ports":{"game":{"name":"game","internal":7070,"external":31500,"protocol":"TCP"}}}"#;
    let env = [
        ("ARBITRIUM_REQUEST_ID", "a1b2c3d4e5f6"),
        ("ARBITRIUM_PORTS_MAPPING", mapping),
        ("ARBITRIUM_PORT_GAME_INTERNAL", "7070"),
        ("ARBITRIUM_PORT_GAME_EXTERNAL", "31500"),
        ("ARBITRIUM_PORT_GAME_PROTOCOL", "TCP"),
    ];
    let (mut agent, addr) =
        start_on_the_default_address(&env, &["--listen-tcp-env", "ARBITRIUM_PORT_GAME_INTERNAL"]);
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 7070);
    // The game binds its mapped port, and calls its agent at the URL it was given.
    agent.wait_lines(&["LISTENING 7070", "API POST /v1/ready -> 202"]);
    assert_eq!(
        listening_sockets_on(agent.pid(), 7070),
        0,
        "the agent holds 7070"
    );
    assert_eq!(listening_sockets_on(agent.pid(), addr.port()), 1);
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code(), 143);
    // Read once the agent has exited: its lines reach stderr through a writer thread.
    let log = agent.stderr();
    assert!(
        log.contains("127.0.0.1:7070 is an internal port of the deployment's port mapping"),
        "{log}"
    );
}
