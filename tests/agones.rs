//! The Agones SDK REST API end to end on the emulator: a game written only against Agones's
//! REST SDK (examples/agones_game.rs) runs unchanged under `edgegap-agent --agones`, and its
//! deployment ends with exactly one self-stop; `/shutdown` called many times is still one.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::json;
use support::emulator::Emu;
use support::{AGENT, DEADLINE, FAKE_GAME};

/// examples/agones_game.rs, built beside the agent (`cargo build --release --examples`).
fn agones_game() -> PathBuf {
    let path = Path::new(AGENT)
        .parent()
        .unwrap()
        .join("examples")
        .join("agones_game");
    assert!(
        path.exists(),
        "{} is missing: build it first, e.g. `cargo build --release --bins --examples`",
        path.display()
    );
    path
}

#[test]
fn the_agones_example_game_runs_unchanged_and_its_deployment_ends_with_one_self_stop() {
    let emu = Emu::start(&[]);
    let game = agones_game();
    let command = [
        AGENT,
        "--api-addr",
        "127.0.0.1:0",
        "--agones",
        "--agones-addr",
        "127.0.0.1:0",
        "--",
        game.to_str().unwrap(),
        "--health",
        "200ms",
        "--match",
        "1s",
    ];
    let ports = json!([{"port": 7777, "protocol": "UDP", "name": "game", "to_check": false}]);
    let app = emu.app_with_version(json!({ "command": command, "ports": ports }));
    let id = emu.deploy(&app, json!({}));

    let status = emu.wait_status(&id, "Status.TERMINATED", DEADLINE * 2);
    assert_eq!(status["running"], false);
    let events = emu.events(&id);
    assert_eq!(events["self_stop_calls"], 1, "{events}");
    let logs = emu.logs(&id)["logs"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for line in [
        "[agones-game] ready".to_owned(),
        format!("[agones-game] gameserver name={id} state=Ready"),
        "[agones-game] label map=dust set".to_owned(),
        r#"[agones-game] player-1 connected: {"bool":true}"#.to_owned(),
        r#"[agones-game] player count: {"count":"1"}"#.to_owned(),
        r#"[agones-game] player-1 disconnected: {"bool":true}"#.to_owned(),
        "[agones-game] shutdown requested; waiting for SIGTERM".to_owned(),
    ] {
        assert!(
            logs.lines().any(|l| l.starts_with(&line)),
            "no {line:?} in {logs}"
        );
    }
    assert!(!logs.contains("failed"), "{logs}");
    assert!(
        logs.contains(agones_shutdown_reason()),
        "the match end names the SDK's Shutdown: {logs}"
    );
}

fn agones_shutdown_reason() -> &'static str {
    edgegap_agent::agones::SHUTDOWN_REASON
}

#[test]
fn shutdown_called_many_times_is_one_self_stop() {
    let emu = Emu::start(&[]);
    let command = [
        AGENT,
        "--api-addr",
        "127.0.0.1:0",
        "--agones",
        "--agones-addr",
        "127.0.0.1:0",
        "--",
        FAKE_GAME,
        "--print-env",
        "AGONES_SDK_HTTP_PORT",
    ];
    let ports = json!([{"port": 7777, "protocol": "UDP", "name": "game", "to_check": false}]);
    let app = emu.app_with_version(json!({ "command": command, "ports": ports }));
    let id = emu.deploy(&app, json!({}));
    let port: u16 = emu
        .printed_env(&id, "AGONES_SDK_HTTP_PORT")
        .parse()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let gs = http::get(addr, "/gameserver").json();
    assert_eq!(gs["object_meta"]["name"], id.as_str(), "{gs}");

    let callers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                http::call(addr, "POST", "/shutdown", &[], b"{}").map(|r| (r.status, r.body))
            })
        })
        .collect();
    for caller in callers {
        // The agent may already be gone when a late call arrives: only answers are checked.
        if let Ok((status, body)) = caller.join().unwrap() {
            assert_eq!((status, body.trim()), (200, "{}"));
        }
    }
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE * 2);
    let events = emu.events(&id);
    assert_eq!(events["self_stop_calls"], 1, "{events}");
}
