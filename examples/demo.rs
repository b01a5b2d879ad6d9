//! `cargo demo`: the whole Edgegap lifecycle on this machine, in one command.
//!
//! It builds what it needs (the agent, the emulator and the example game server), then runs
//! the example game under the agent on the local emulator:
//!
//! ```text
//! edgegap-emulator --port gameport:7777/tcp --grace-period 10s --
//!     edgegap-agent --grace-period 10s -- game_server --match-duration 10s [ARGS...]
//! ```
//!
//! and plays a player: once the game prints its join address (the external port, which the
//! emulator forwards to the game as the platform does), `alice` joins through it and the demo
//! shows what the agent then reports. The match ends after its duration, the game asks for 5 s
//! to show the results, the agent self-stops the deployment once, the emulator sends SIGTERM,
//! the game saves and exits 0. Arguments after `cargo demo --` go to the game (e.g.
//! `--match-duration 1m` for time to try things by hand).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let game_args: Vec<String> = std::env::args().skip(1).collect();
    let bin = match build() {
        Ok(bin) => bin,
        Err(error) => {
            eprintln!("[demo] {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut command = Command::new(bin.join("edgegap-emulator"));
    command
        .args(["--port", "gameport:7777/tcp", "--grace-period", "10s", "--"])
        .arg(bin.join("edgegap-agent"))
        .args(["--grace-period", "10s", "--"])
        .arg(bin.join("examples").join("game_server"));
    if game_args.iter().any(|a| a == "--match-duration") {
        command.args(&game_args);
    } else {
        command.args(["--match-duration", "10s"]).args(&game_args);
    }
    let started = Instant::now();
    let mut emulator = match command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            eprintln!("[demo] cannot start the emulator: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Every line of the emulator (which passes the agent's and the game's on) is shown as it
    // comes, and scanned for what the player needs.
    let (lines, seen) = mpsc::channel();
    for stream in [
        emulator
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        emulator
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                println!("{line}");
                let _ = lines.send(line);
            }
        });
    }
    drop(lines);
    play(&seen, started);
    let status = emulator.wait();
    let elapsed = started.elapsed().as_secs_f64();
    match status {
        Ok(status) if status.success() => {
            println!("[demo] the deployment ended after {elapsed:.1} s: the emulator exited with the game's code 0");
            ExitCode::SUCCESS
        }
        Ok(status) => {
            println!("[demo] the emulator exited with {status} after {elapsed:.1} s");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("[demo] cannot wait for the emulator: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the agent, the emulator and the example game with the profile this demo was built
/// with, and returns the directory they are in.
fn build() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    // <target>/<triple>/<profile>/examples/demo
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("this program is not in a cargo target directory")?
        .to_path_buf();
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("release")
        .to_owned();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("[demo] building the agent, the emulator and the example game ({profile} profile)");
    let status = Command::new(cargo)
        .args(["build", "--profile", &profile])
        .args(["--bin", "edgegap-agent", "--bin", "edgegap-emulator"])
        .args(["--example", "game_server"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build failed: {status}"));
    }
    Ok(profile_dir)
}

/// The demo's player: joins through the game's join address once the game says it is ready,
/// shows what the agent reports, then leaves. Returns when the emulator's output ends.
fn play(seen: &mpsc::Receiver<String>, started: Instant) {
    let mut join_address = None;
    let mut agent_url = None;
    for line in seen.iter() {
        if let Some(url) = after(&line, "local API listening").and_then(|rest| after(rest, "url="))
        {
            agent_url = Some(url.trim().to_owned());
        }
        if let Some(address) = after(&line, "join address ") {
            join_address = Some(address.trim().to_owned());
        }
        if line.ends_with("[game] READY") {
            if let (Some(address), Some(url)) = (&join_address, &agent_url) {
                visit(address, url, started);
            }
        }
    }
}

fn visit(join_address: &str, agent_url: &str, started: Instant) {
    let at = started.elapsed().as_secs_f64();
    let mut player = match TcpStream::connect(join_address) {
        Ok(stream) => stream,
        Err(error) => {
            println!("[demo] +{at:.1}s cannot reach the game at its join address {join_address}: {error}");
            return;
        }
    };
    let _ = player.set_read_timeout(Some(Duration::from_secs(5)));
    let answer = say(&mut player, "JOIN alice");
    println!("[demo] +{at:.1}s alice joined through the join address {join_address}: {answer}");
    let players = http_get(agent_url, "/v1/players");
    println!("[demo] the agent's GET /v1/players: {players}");
    let answer = say(&mut player, "LEAVE alice");
    println!("[demo] alice left: {answer}");
    println!("[demo] now the match runs to its end; the agent will self-stop the deployment");
}

fn say(stream: &mut TcpStream, line: &str) -> String {
    if writeln!(stream, "{line}").is_err() {
        return "(the game closed the connection)".into();
    }
    let mut answer = String::new();
    let mut reader = BufReader::new(&*stream);
    match reader.read_line(&mut answer) {
        Ok(_) => answer.trim().to_owned(),
        Err(error) => format!("(no answer: {error})"),
    }
}

/// A bare HTTP/1.0 GET on the agent's loopback API (the demo needs no HTTP client).
fn http_get(url: &str, path: &str) -> String {
    let Some(address) = url.strip_prefix("http://") else {
        return format!("(not an http URL: {url})");
    };
    let Ok(mut stream) = TcpStream::connect(address) else {
        return format!("(cannot reach {url})");
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_once("\r\n\r\n")
        .map_or(response.clone(), |(_, body)| body.trim().to_owned())
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|at| &line[at + marker.len()..])
}
