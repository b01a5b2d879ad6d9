//! Helpers for black-box tests of the real binaries: start the agent around the fake game,
//! read its output as it comes, and wait for conditions under deadlines (never sleep and
//! then assert).
#![allow(dead_code)]

#[cfg(feature = "container-tests")]
pub mod docker;

use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::Pid;

// What the emulator's tests need too lives in the workspace's `test-support` crate; each
// test target uses a part of it.
#[allow(unused_imports)]
pub use edgegap_test_support::{emulator, scratch_dir, wait_until, Running, DEADLINE};

pub const AGENT: &str = env!("CARGO_BIN_EXE_edgegap-agent");
pub const FAKE_GAME: &str = env!("CARGO_BIN_EXE_fake-game");

/// The example game server (examples/game_server.rs), built beside the agent: `cargo test`
/// builds examples, but a run limited to one test target (`--test NAME`) does not.
pub fn example_game() -> PathBuf {
    let path = Path::new(AGENT)
        .parent()
        .unwrap()
        .join("examples")
        .join("game_server");
    assert!(
        path.exists(),
        "{} is missing: build it with the same profile and features first, e.g. \
         `cargo build --release --features container-tests --bins --examples`",
        path.display()
    );
    path
}

/// The agent's command with every `EDGEGAP_AGENT_*`/`ARBITRIUM_*` variable of the test's
/// own environment removed, so the developer's shell cannot change a test's meaning, and the
/// local API on a free port (tests run in parallel; the default 7070 would collide).
pub fn agent_command() -> Command {
    let mut command = Command::new(AGENT);
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("EDGEGAP_AGENT_") || key_text.starts_with("ARBITRIUM_") {
            command.env_remove(&key);
        }
    }
    command.env("EDGEGAP_AGENT_API_ADDR", "127.0.0.1:0");
    command
}

/// Starts the agent (its API on a free port) around the fake game with `game_args`; the game
/// prints the `EDGEGAP_AGENT_URL` it was given, which tells the test the API's address.
pub fn start_with_api(agent_args: &[&str], game_args: &[&str]) -> (Running, std::net::SocketAddr) {
    start_with_api_env(&[], agent_args, game_args)
}

/// As [`start_with_api`], with `env` added to the agent's environment (e.g. `ARBITRIUM_*`).
pub fn start_with_api_env(
    env: &[(&str, &str)],
    agent_args: &[&str],
    game_args: &[&str],
) -> (Running, std::net::SocketAddr) {
    let mut command = agent_command();
    command
        .envs(env.iter().copied())
        .args(agent_args)
        .args(["--", FAKE_GAME, "--print-env", "EDGEGAP_AGENT_URL"])
        .args(game_args);
    let mut agent = Running::start(command);
    let line = agent.wait_line("ENV EDGEGAP_AGENT_URL=");
    let url = &line["ENV EDGEGAP_AGENT_URL=".len()..];
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("{url:?} is not http://IP:PORT: {e}"));
    (agent, addr)
}

/// The lines of a file, or none if it does not exist yet.
pub fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|text| text.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The processes whose parent is `parent`, with their state letter (`Z` for a zombie).
pub fn children_of(parent: Pid) -> Vec<(Pid, char)> {
    let mut children = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return children;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name, which is in parentheses and may contain spaces.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid: i32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == parent.as_raw() {
            children.push((Pid::from_raw(pid), state));
        }
    }
    children
}
