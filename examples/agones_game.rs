//! An example game server written for Agones, with no dependency beyond std: it speaks only
//! the Agones SDK's REST API, at `http://127.0.0.1:$AGONES_SDK_HTTP_PORT` (9358 if unset),
//! as a game using Agones's REST SDK would. Run under `edgegap-agent --agones`, it runs
//! unchanged on Edgegap.
//!
//! What it does, printing each step on a line starting with `[agones-game]`:
//! 1. `POST /ready`, then `POST /health` every `--health` (default 500ms) on a thread;
//! 2. `GET /gameserver` and prints its name, state and address;
//! 3. `PUT /metadata/label` `{"key": "map", "value": "dust"}`;
//! 4. `POST /alpha/player/connect` then, after a moment, `/alpha/player/disconnect` for
//!    `player-1`, printing the SDK's `{"bool": ...}` answers;
//! 5. after `--match` (default 2s), `POST /shutdown`, and waits for the platform's SIGTERM
//!    (the default action of SIGTERM ends it).
//!
//! Usage: `agones_game [--health D] [--match D]` (D: `500ms`, `2s`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

macro_rules! say {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[agones-game] {}", format_args!($($arg)*));
        let _ = out.flush();
    }};
}

fn duration(text: &str) -> Duration {
    let parsed = if let Some(ms) = text.strip_suffix("ms") {
        ms.parse().ok().map(Duration::from_millis)
    } else {
        text.trim_end_matches('s')
            .parse()
            .ok()
            .map(Duration::from_secs_f64)
    };
    parsed.unwrap_or_else(|| {
        eprintln!("[agones-game] {text:?} is not a duration (500ms, 2s)");
        std::process::exit(64)
    })
}

/// One request to the SDK; the status code and body, or why it failed.
fn call(port: u16, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.trim().to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// A call that must succeed (200); its body.
fn sdk(port: u16, method: &str, path: &str, body: &str) -> String {
    match call(port, method, path, body) {
        Ok((200, body)) => body,
        Ok((status, body)) => {
            say!("{method} {path} failed: {status} {body}");
            std::process::exit(1)
        }
        Err(error) => {
            say!("{method} {path} failed: {error}");
            std::process::exit(1)
        }
    }
}

/// The string value of `"key":"..."` in a flat JSON text (enough for this example).
fn field<'a>(json: &'a str, key: &str) -> &'a str {
    let pattern = format!("\"{key}\":\"");
    json.find(&pattern)
        .map(|at| &json[at + pattern.len()..])
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
}

fn main() {
    let mut health = Duration::from_millis(500);
    let mut match_time = Duration::from_secs(2);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--health" => health = duration(&value),
            "--match" => match_time = duration(&value),
            other => {
                eprintln!("[agones-game] unknown option {other}; usage: agones_game [--health D] [--match D]");
                std::process::exit(64)
            }
        }
    }
    let port: u16 = std::env::var("AGONES_SDK_HTTP_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(9358);
    say!("Agones SDK at 127.0.0.1:{port}");

    sdk(port, "POST", "/ready", "{}");
    say!("ready");
    std::thread::spawn(move || loop {
        if let Err(error) = call(port, "POST", "/health", "{}") {
            say!("health failed: {error}");
        }
        std::thread::sleep(health);
    });

    let game_server = sdk(port, "GET", "/gameserver", "");
    say!(
        "gameserver name={} state={} address={}",
        field(&game_server, "name"),
        field(&game_server, "state"),
        field(&game_server, "address")
    );

    sdk(
        port,
        "PUT",
        "/metadata/label",
        r#"{"key":"map","value":"dust"}"#,
    );
    say!("label map=dust set");

    let joined = sdk(
        port,
        "POST",
        "/alpha/player/connect",
        r#"{"playerID":"player-1"}"#,
    );
    say!("player-1 connected: {joined}");
    let count = sdk(port, "GET", "/alpha/player/count", "");
    say!("player count: {count}");
    std::thread::sleep(match_time / 2);
    let left = sdk(
        port,
        "POST",
        "/alpha/player/disconnect",
        r#"{"playerID":"player-1"}"#,
    );
    say!("player-1 disconnected: {left}");
    std::thread::sleep(match_time / 2);

    sdk(port, "POST", "/shutdown", "{}");
    say!("shutdown requested; waiting for SIGTERM");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
