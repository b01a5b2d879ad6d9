//! The agent's real self-stop against the emulator's platform: the emulator injects the
//! `ARBITRIUM_*` environment, the game's clean exit ends the match, the agent sends the one
//! DELETE with the injected token, and the emulator stops the deployment (SIGTERM). And the
//! whole environment the real emulator injects parses in the agent's parser without a problem.
//! The game itself never sees the platform's tokens unless `--pass-platform-tokens` is given.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use edgegap_agent::platform::PlatformEnv;
use serde_json::json;
use support::emulator::Emu;
use support::{AGENT, DEADLINE, FAKE_GAME};

/// Every `ARBITRIUM_*` variable the real emulator gives a deployment parses in the agent's
/// parser with no problem, and the typed values agree with the emulator's status response.
#[test]
fn the_emulators_whole_environment_parses_without_a_problem() {
    let emu = Emu::start(&[]);
    let ports = json!([
        {"port": 7777, "protocol": "UDP", "name": "game-port"},
        // The fake game listens on none: no readiness check (`to_check` defaults to true).
        {"port": 8080, "protocol": "TCP", "name": "web", "to_check": false},
        {"port": 9000, "protocol": "TCP/UDP", "name": "Voice_2", "to_check": false},
    ]);
    let command = [FAKE_GAME, "--print-env-prefix", "ARBITRIUM_"];
    let app = emu.app_with_version(json!({ "command": command, "ports": ports }));
    let id = emu.deploy(&app, json!({"tags": ["eu", "ranked", "a,b"]}));
    emu.wait_log_line(&id, "ENV-END ARBITRIUM_");
    let logs = emu.logs(&id)["logs"].as_str().unwrap().to_owned();
    let variables: Vec<(String, String)> = logs
        .lines()
        .filter_map(|line| line.strip_prefix("ENV "))
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    // The identity, the mapping, 3 x 3 per-port variables, location, tags, resources, and the
    // two URLs with their tokens.
    assert_eq!(variables.len(), 21, "{variables:?}");

    let (env, problems) = PlatformEnv::from_iter(variables);
    assert_eq!(problems, [], "the emulator's environment: {logs}");
    let status = emu.status(&id);
    assert_eq!(env.request_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        env.public_ip.map(|ip| ip.to_string()),
        status["public_ip"].as_str().map(str::to_owned)
    );
    assert_eq!(env.ports.len(), 3);
    for (name, port) in &env.ports {
        let served = &status["ports"][name];
        assert_eq!(served["internal"], port.internal, "{name}");
        assert_eq!(served["external"], port.external, "{name}");
        assert_eq!(served["protocol"], port.protocol.as_str(), "{name}");
    }
    assert_eq!(env.tags, ["eu", "ranked", "a,b"]);
    assert_eq!(
        env.location.and_then(|l| l.city),
        status["location"]["city"].as_str().map(str::to_owned)
    );
    assert!(env.delete_url.is_some() && env.delete_token.is_some());
    assert!(env.context_url.is_some() && env.context_token.is_some());
    emu.call("DELETE", &format!("/v1/stop/{id}"), None);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
}

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
    // The game was not given the token the agent used (the emulator accepted only it).
    let line = emu.wait_log_line(&id, "ENV ARBITRIUM_DELETE_TOKEN");
    assert_eq!(line, "ENV ARBITRIUM_DELETE_TOKEN unset", "{logs}");
    assert!(
        logs.contains("ARBITRIUM_DELETE_TOKEN and ARBITRIUM_CONTEXT_TOKEN removed from the game server's environment"),
        "{logs}"
    );
}

/// The deployment the API serves starts as the environment's view and is then merged with
/// the platform's context (fetched from `ARBITRIUM_CONTEXT_URL` with its token): the `fqdn`
/// only the context has appears, and no token ever does.
#[test]
fn the_api_serves_the_deployment_merged_with_the_fetched_context() {
    let emu = Emu::start(&[]);
    // The tokens passed on, so the game can show the test the context token to look for.
    let command = [
        AGENT,
        "--api-addr",
        "127.0.0.1:0",
        "--pass-platform-tokens",
        "--",
        FAKE_GAME,
    ];
    let command: Vec<&str> = command
        .into_iter()
        .chain([
            "--print-env",
            "EDGEGAP_AGENT_URL",
            "--print-env",
            "ARBITRIUM_CONTEXT_TOKEN",
        ])
        .collect();
    let ports = json!([{"port": 7777, "protocol": "UDP", "name": "game-port"}]);
    let app = emu.app_with_version(json!({ "command": command, "ports": ports }));
    let id = emu.deploy(&app, json!({}));
    let url = emu.printed_env(&id, "EDGEGAP_AGENT_URL");
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let context_token = emu.printed_env(&id, "ARBITRIUM_CONTEXT_TOKEN");

    let mut deployment = serde_json::Value::Null;
    let merged = support::wait_until(DEADLINE, || {
        deployment = http::get(addr, "/v1/deployment").json();
        deployment["fqdn"].is_string()
    });
    assert!(merged, "the context was not merged: {deployment}");
    assert_eq!(deployment["request_id"], id.as_str());
    assert_eq!(deployment["ports"][0]["name"], "game-port");
    assert!(!deployment.to_string().contains(&context_token));
    let logs = emu.logs(&id)["logs"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !logs
            .lines()
            .filter(|l| l.starts_with("[edgegap-agent]"))
            .any(|l| l.contains(&context_token)),
        "{logs}"
    );
    emu.call("DELETE", &format!("/v1/stop/{id}"), None);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
}
