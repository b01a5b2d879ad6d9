//! The agent's real self-stop against the emulator's platform: the emulator injects the
//! `ARBITRIUM_*` environment, the game's clean exit ends the match, the agent sends the one
//! DELETE with the injected token, and the emulator stops the deployment (SIGTERM).

mod support;

use serde_json::json;
use support::emulator::Emu;
use support::{AGENT, DEADLINE, FAKE_GAME};

#[test]
fn the_agent_stops_its_deployment_through_the_emulators_self_stop() {
    let emu = Emu::start(&[]);
    let command = [
        AGENT,
        "--api-addr",
        "127.0.0.1:0",
        "--",
        FAKE_GAME,
        "--print-env",
        "ARBITRIUM_DELETE_TOKEN",
        "--exit",
        "0",
    ];
    let ports = json!([{"port": 7777, "protocol": "UDP", "name": "game-port"}]);
    let app = emu.app_with_version(json!({ "command": command, "ports": ports }));
    let id = emu.deploy(&app, json!({}));

    let status = emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
    assert_eq!(status["running"], false);
    let events = emu.events(&id);
    assert_eq!(events["self_stop_calls"], 1, "{events}");
    let logs = emu.logs(&id)["logs"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // The emulator's ports mapping and per-port variables agree with the agent's parser.
    assert!(
        logs.contains("running on Edgegap") && logs.contains("ports=1"),
        "{logs}"
    );
    // The emulator counted the one DELETE above; its SIGTERM may reach the agent before the
    // 200 does, so the agent's "accepted" line is not always there.
    assert!(
        logs.contains("asking the platform to stop this deployment"),
        "{logs}"
    );
    assert!(
        !logs.contains("malformed platform variable"),
        "the emulator's env parses: {logs}"
    );
    // The game printed the token it was given; no line of the agent's carries it.
    let token = emu.printed_env(&id, "ARBITRIUM_DELETE_TOKEN");
    assert!(!token.is_empty());
    let agent_lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.starts_with("[edgegap-agent]"))
        .collect();
    assert!(!agent_lines.is_empty(), "{logs}");
    assert!(agent_lines.iter().all(|l| !l.contains(&token)), "{logs}");
}
