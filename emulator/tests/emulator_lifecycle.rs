//! A deployment's life under the emulator, black-box with the fake game: the injected
//! environment, readiness, self-stop, SIGTERM and grace, the restart policy per exit code,
//! max duration, bulk stop, webhooks and the quick start. Time windows, never sleeps.

use std::time::{Duration, Instant};

use edgegap_test_support::emulator::{self, free_port, request, Emu, Recorder};
use edgegap_test_support::{fake_game, Running, DEADLINE};
use serde_json::{json, Value};

const EMULATOR: &str = env!("CARGO_BIN_EXE_edgegap-emulator");

const CONTRACT_VARS: [&str; 16] = [
    "ARBITRIUM_REQUEST_ID",
    "ARBITRIUM_PUBLIC_IP",
    "ARBITRIUM_HOST_ID",
    "ARBITRIUM_PORTS_MAPPING",
    "ARBITRIUM_PORT_GAME_PORT_INTERNAL",
    "ARBITRIUM_PORT_GAME_PORT_EXTERNAL",
    "ARBITRIUM_PORT_GAME_PORT_PROTOCOL",
    "ARBITRIUM_DEPLOYMENT_LOCATION",
    "ARBITRIUM_DEPLOYMENT_TAGS",
    "ARBITRIUM_DEPLOYMENT_VCPU_UNITS",
    "ARBITRIUM_DEPLOYMENT_MEMORY_MB",
    "ARBITRIUM_DELETE_URL",
    "ARBITRIUM_DELETE_TOKEN",
    "ARBITRIUM_CONTEXT_URL",
    "ARBITRIUM_CONTEXT_TOKEN",
    "VERSION_VAR",
];

#[test]
fn the_injected_environment_matches_the_contract() {
    let emu = Emu::start(&[]);
    let mut args = Vec::new();
    for var in CONTRACT_VARS.iter().chain(&["DEPLOY_VAR"]) {
        args.extend(["--print-env", var]);
    }
    let fields = json!({
        "ports": [{"port": 7777, "protocol": "UDP", "name": "game-port"}],
        "envs": [{"key": "VERSION_VAR", "value": "from-version"}],
        "req_cpu": 512, "req_memory": 1024,
    });
    let mut command = vec![fake_game()];
    command.extend(args.iter().copied());
    let mut fields = fields;
    fields["command"] = json!(command);
    let app = emu.app_with_version(fields);
    let id = emu.deploy(
        &app,
        json!({"tags": ["eu", "ranked"], "environment_variables": [{"key": "DEPLOY_VAR", "value": "from-deploy"}]}),
    );
    let env = |var: &str| emu.printed_env(&id, var);
    assert_eq!(env("ARBITRIUM_REQUEST_ID"), id);
    assert_eq!(env("ARBITRIUM_PUBLIC_IP"), "127.0.0.1");
    assert!(!env("ARBITRIUM_HOST_ID").is_empty());
    let external: u16 = env("ARBITRIUM_PORT_GAME_PORT_EXTERNAL").parse().unwrap();
    assert_eq!(env("ARBITRIUM_PORT_GAME_PORT_INTERNAL"), "7777");
    assert_eq!(env("ARBITRIUM_PORT_GAME_PORT_PROTOCOL"), "UDP");
    let mapping: Value = serde_json::from_str(&env("ARBITRIUM_PORTS_MAPPING")).unwrap();
    assert_eq!(
        mapping,
        json!({"ports": {"game-port": {"name": "game-port", "internal": 7777, "external": external,
            "protocol": "UDP", "tls_upgrade": false, "link": format!("localhost:{external}"),
            "proxy": external}}})
    );
    let location: Value = serde_json::from_str(&env("ARBITRIUM_DEPLOYMENT_LOCATION")).unwrap();
    for field in [
        "city",
        "country",
        "continent",
        "administrative_division",
        "timezone",
        "latitude",
        "longitude",
    ] {
        assert!(location.get(field).is_some(), "location lacks {field}");
    }
    assert_eq!(env("ARBITRIUM_DEPLOYMENT_TAGS"), "eu,ranked");
    assert_eq!(env("ARBITRIUM_DEPLOYMENT_VCPU_UNITS"), "512");
    assert_eq!(env("ARBITRIUM_DEPLOYMENT_MEMORY_MB"), "1024");
    let delete_url = env("ARBITRIUM_DELETE_URL");
    let prefix = format!("http://{}/v1/self/stop/{id}/", emu.addr);
    assert!(delete_url.starts_with(&prefix), "{delete_url}");
    assert!(delete_url.len() > prefix.len());
    assert!(env("ARBITRIUM_DELETE_TOKEN").len() >= 16);
    assert!(
        env("ARBITRIUM_CONTEXT_URL").starts_with(&format!("http://{}/v1/context/{id}/", emu.addr))
    );
    assert!(env("ARBITRIUM_CONTEXT_TOKEN").len() >= 16);
    assert_ne!(
        env("ARBITRIUM_CONTEXT_TOKEN"),
        env("ARBITRIUM_DELETE_TOKEN")
    );
    assert_eq!(env("VERSION_VAR"), "from-version");
    assert_eq!(env("DEPLOY_VAR"), "from-deploy");
    assert_eq!(emu.status(&id)["ports"]["game-port"]["external"], external);
}

fn self_stop(emu: &Emu, id: &str, token: &str) -> emulator::Resp {
    let url = emu.printed_env(id, "ARBITRIUM_DELETE_URL");
    let path = url
        .strip_prefix(&format!("http://{}", emu.addr))
        .unwrap()
        .to_owned();
    request(
        &emu.addr,
        "DELETE",
        &path,
        &[("authorization", token)],
        None,
    )
}

#[test]
fn deploy_ready_self_stop_sigterm_terminated() {
    let emu = Emu::start(&[]);
    let port = free_port().to_string();
    let game = [
        "--print-env",
        "ARBITRIUM_DELETE_URL",
        "--print-env",
        "ARBITRIUM_DELETE_TOKEN",
        "--record-signals",
        "-",
        "--on-term-exit",
        "0",
        "--listen-tcp-env",
        "ARBITRIUM_PORT_GAME_INTERNAL",
        "--listen-delay-ms",
        "700",
    ];
    let fields = json!({"ports": [{"port": port.parse::<u16>().unwrap(), "protocol": "TCP", "name": "game", "to_check": true}]});
    let id = emu.deploy_game(fields, &game);
    // Not READY before the probed port accepts connections.
    let early = emu.status(&id)["current_status"].clone();
    assert!(
        early == "Status.SEEKING" || early == "Status.DEPLOYING",
        "{early}"
    );
    emu.wait_status(&id, "Status.READY", DEADLINE);
    assert!(emu.logs(&id)["logs"]
        .as_str()
        .unwrap()
        .contains(&format!("LISTENING {port}")));

    assert_eq!(self_stop(&emu, &id, "wrong-token").status, 401);
    assert_eq!(self_stop(&emu, &id, "").status, 401);
    let key = format!("token {}", emulator::KEY);
    assert_eq!(
        self_stop(&emu, &id, &key).status,
        401,
        "the operator key is not the token"
    );
    assert_eq!(emu.events(&id)["self_stop_calls"], 0);
    let token = emu.printed_env(&id, "ARBITRIUM_DELETE_TOKEN");
    let other_point = format!("/v1/self/stop/{id}/00000000");
    let resp = request(
        &emu.addr,
        "DELETE",
        &other_point,
        &[("authorization", &token)],
        None,
    );
    assert_eq!(resp.status, 404, "wrong access point: {}", resp.body);
    let unknown = "/v1/self/stop/000000000000/00000000";
    let resp = request(
        &emu.addr,
        "DELETE",
        unknown,
        &[("authorization", &token)],
        None,
    );
    assert_eq!(resp.status, 404);
    assert_eq!(emu.status(&id)["current_status"], "Status.READY");
    let resp = self_stop(&emu, &id, &token);
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(
        resp.json()["message"],
        format!("Instance {id} will be deleted")
    );
    assert_eq!(resp.json()["deployment_summary"]["request_id"], id.as_str());

    let status = emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
    assert_eq!(status["running"], false);
    assert!(status["removal_time"].is_string());
    emu.wait_log_line(&id, "SIGTERM");
    assert!(emu.logs(&id)["logs"]
        .as_str()
        .unwrap()
        .contains("EXITING code=0"));
    assert_eq!(emu.logs(&id)["crash_data"]["exit_code"], 0);
    let events = emu.events(&id);
    assert_eq!(events["self_stop_calls"], 1);
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["signal"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["SIGTERM"],
        "no SIGKILL for a game that exits in time"
    );
    assert_eq!(
        self_stop(&emu, &id, &token).status,
        404,
        "already terminated"
    );
    assert_eq!(emu.events(&id)["self_stop_calls"], 1);
}

#[test]
fn a_game_ignoring_sigterm_is_killed_at_the_grace_period() {
    let emu = Emu::start(&[]);
    let id = emu.deploy_game(
        json!({"termination_grace_period_seconds": 5}),
        &["--ignore-term", "--record-signals", "-"],
    );
    emu.wait_status(&id, "Status.READY", DEADLINE);
    // The platform's READY (no port to check) can come before the game has set up its
    // SIGTERM handling; the game's own READY line says it has.
    emu.wait_log_line(&id, "READY");
    let asked = Instant::now();
    let resp = emu.call("DELETE", &format!("/v1/stop/{id}"), None);
    assert_eq!(resp.status, 200, "{}", resp.body);
    emu.wait_status(&id, "Status.TERMINATING", DEADLINE);
    emu.wait_status(&id, "Status.TERMINATED", Duration::from_secs(20));
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_millis(4900) && took < Duration::from_secs(9),
        "killed after {took:?}, grace 5 s"
    );
    emu.wait_log_line(&id, "SIGTERM");
    assert_eq!(emu.logs(&id)["crash_data"]["exit_code"], 137);
    let events = emu.events(&id);
    assert_eq!(events["stop_calls"], 1);
    assert!(events.to_string().contains("SIGKILL"));
    let again = emu.call("DELETE", &format!("/v1/stop/{id}"), None);
    assert_eq!(again.status, 410, "already terminated: {}", again.body);
}

/// As documented: 202 before READY, and the stop is carried out once READY is reached.
#[test]
fn a_stop_before_ready_is_accepted_with_202_and_carried_out_once_ready() {
    let emu = Emu::start(&[]);
    let port = free_port();
    let fields =
        json!({"ports": [{"port": port, "protocol": "TCP", "name": "game", "to_check": true}]});
    // The game listens only after 1.5 s: until then the deployment is DEPLOYING.
    let game = [
        "--listen-tcp-env",
        "ARBITRIUM_PORT_GAME_INTERNAL",
        "--listen-delay-ms",
        "1500",
        "--record-signals",
        "-",
        "--on-term-exit",
        "0",
    ];
    let id = emu.deploy_game(fields, &game);
    emu.wait_status(&id, "Status.DEPLOYING", DEADLINE);
    let resp = emu.call("DELETE", &format!("/v1/stop/{id}"), None);
    assert_eq!(resp.status, 202, "{}", resp.body);
    assert!(resp.message().contains(&id));
    // Not stopped yet: the game is still starting.
    assert_eq!(emu.status(&id)["current_status"], "Status.DEPLOYING");
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
    let events = emu.events(&id)["events"].as_array().unwrap().clone();
    let position = |wanted: &dyn Fn(&Value) -> bool| events.iter().position(wanted);
    let ready = position(&|e| e["status"] == "Status.READY").expect("READY was reached");
    let sigterm = position(&|e| e["signal"] == "SIGTERM").expect("SIGTERM was sent");
    assert!(ready < sigterm, "SIGTERM only once READY: {events:?}");
    emu.wait_log_line(&id, "SIGTERM");
}

#[test]
fn the_restart_policy_applies_to_the_exit_code() {
    let emu = Emu::start(&[]);
    let mut cases = Vec::new();
    for policy in ["always", "on_failure", "never"] {
        for code in [0, 3] {
            let id = emu.deploy_game(
                json!({"restart_policy": policy}),
                &["--exit", &code.to_string()],
            );
            cases.push((policy, code, id));
        }
    }
    for (policy, code, id) in &cases {
        let restarts = *policy == "always" || (*policy == "on_failure" && *code != 0);
        if restarts {
            let deadline = Instant::now() + DEADLINE;
            while emu.events(id)["restart_count"].as_u64().unwrap() < 2 {
                assert!(
                    Instant::now() < deadline,
                    "{policy} x {code}: not restarted"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_ne!(
                emu.status(id)["current_status"],
                "Status.TERMINATED",
                "{policy} x {code}"
            );
            emu.call("DELETE", &format!("/v1/stop/{id}"), None);
            emu.wait_status(id, "Status.TERMINATED", DEADLINE);
        } else {
            emu.wait_status(id, "Status.TERMINATED", DEADLINE);
            assert_eq!(emu.events(id)["restart_count"], 0, "{policy} x {code}");
        }
        let logs = emu.logs(id);
        if !restarts {
            assert_eq!(logs["crash_data"]["exit_code"], *code, "{policy} x {code}");
            assert_eq!(logs["crash_data"]["restart_count"], 0);
            assert_eq!(
                logs["logs"].as_str().unwrap().matches("READY pid=").count(),
                1
            );
        } else {
            assert!(logs["logs"].as_str().unwrap().matches("READY pid=").count() >= 2);
        }
    }
}

#[test]
fn max_duration_ends_the_deployment_through_the_stop_sequence() {
    let emu = Emu::start(&["--max-duration-unit", "1s"]);
    let id = emu.deploy_game(json!({"max_duration": 2}), &["--record-signals", "-"]);
    let started = Instant::now();
    emu.wait_status(&id, "Status.READY", DEADLINE);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "{took:?}"
    );
    emu.wait_log_line(&id, "SIGTERM");
    assert!(emu.events(&id).to_string().contains("max_duration"));
}

#[test]
fn bulk_stop_stops_the_deployments_the_filters_match() {
    let emu = Emu::start(&[]);
    let app = emu.app_with_version(json!({}));
    let a = emu.deploy(&app, json!({"tags": ["match", "eu"]}));
    let b = emu.deploy(&app, json!({"tags": ["match"]}));
    let c = emu.deploy(&app, json!({"tags": ["other"]}));
    for id in [&a, &b, &c] {
        emu.wait_status(id, "Status.READY", DEADLINE);
    }
    let resp = emu.call("POST", "/v1/deployments/bulk-stop", Some(json!({})));
    assert_eq!(resp.status, 400);
    let untyped =
        json!({"filters": [{"field": "tags", "values": ["match"], "filter_type": "any"}]});
    let resp = emu.call("POST", "/v1/deployments/bulk-stop", Some(untyped));
    assert_eq!(
        resp.status, 400,
        "fields are request_id and deployment_tags"
    );
    assert!(resp.message().contains("deployment_tags"), "{}", resp.body);
    let resp = emu.call(
        "POST",
        "/v1/deployments/bulk-stop",
        Some(json!({"filters": [{"field": "deployment_tags", "values": ["match"], "filter_type": "any"}]})),
    );
    assert_eq!(resp.status, 202, "{}", resp.body);
    let mut stopped: Vec<String> = resp.json()["processable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["request_id"].as_str().unwrap().to_owned())
        .collect();
    stopped.sort();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(stopped, expected);
    emu.wait_status(&a, "Status.TERMINATED", DEADLINE);
    emu.wait_status(&b, "Status.TERMINATED", DEADLINE);
    assert_eq!(emu.status(&c)["current_status"], "Status.READY");
    let list = emu.call("GET", "/v1/deployments", None).json();
    assert_eq!(list["total_count"], 1);
    assert_eq!(list["data"][0]["request_id"], c.as_str());
}

#[test]
fn webhooks_are_posted_on_ready_and_terminated() {
    let emu = Emu::start(&[]);
    let hooks = Recorder::start();
    let app = emu.app_with_version(json!({}));
    let id = emu.deploy(
        &app,
        json!({
            "webhook_on_ready": {"url": format!("{}/ready", hooks.url)},
            "webhook_on_error": {"url": format!("{}/error", hooks.url)},
            "webhook_on_terminated": {"url": format!("{}/terminated", hooks.url)},
        }),
    );
    let ready = hooks.wait_for("/ready");
    assert_eq!(ready["request_id"], id.as_str());
    assert_eq!(ready["current_status"], "Status.READY");
    emu.call("DELETE", &format!("/v1/stop/{id}"), None);
    let done = hooks.wait_for("/terminated");
    assert_eq!(done["current_status"], "Status.TERMINATED");

    let broken = emu.app_with_version(json!({"command": ["/nonexistent/game-server"]}));
    let id = emu.deploy(
        &broken,
        json!({"webhook_on_error": {"url": format!("{}/error", hooks.url)}}),
    );
    let status = emu.wait_status(&id, "Status.ERROR", DEADLINE);
    assert!(status["error_detail"]
        .as_str()
        .unwrap()
        .contains("/nonexistent/game-server"));
    assert_eq!(hooks.wait_for("/error")["request_id"], id.as_str());
}

#[test]
fn the_quick_start_streams_output_and_exits_with_the_last_exit_code() {
    let mut command = std::process::Command::new(EMULATOR);
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--port",
        "game:7777/udp",
        "--grace-period",
        "5s",
        "--restart-policy",
        "never",
        "--env",
        "MODE=quick",
        "--",
        fake_game(),
        "--print-env",
        "MODE",
        "--print-env",
        "ARBITRIUM_PORT_GAME_PROTOCOL",
        "--run-ms",
        "100",
        "--exit",
        "3",
    ]);
    let mut quick = Running::start(command);
    quick.wait_lines(&[
        "ENV MODE=quick",
        "ENV ARBITRIUM_PORT_GAME_PROTOCOL=UDP",
        "READY pid=",
    ]);
    assert_eq!(quick.exit_code(), 3);
    assert!(
        quick.stderr().contains("Status.TERMINATED"),
        "{}",
        quick.stderr()
    );
}

#[test]
fn the_quick_start_stops_its_deployment_on_sigterm() {
    let mut command = std::process::Command::new(EMULATOR);
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--",
        fake_game(),
        "--on-term-exit",
        "0",
    ]);
    let mut quick = Running::start(command);
    let game = quick.wait_ready();
    quick.signal(nix::sys::signal::Signal::SIGTERM);
    quick.wait_lines(&["EXITING code=0"]);
    assert_eq!(quick.exit_code(), 0);
    assert!(
        nix::sys::signal::kill(game, None).is_err(),
        "the game is gone with the emulator"
    );
}

#[test]
fn a_bad_quick_start_flag_is_reported() {
    let mut command = std::process::Command::new(EMULATOR);
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--port",
        "game:7777",
        "--",
        fake_game(),
    ]);
    let mut quick = Running::start(command);
    assert_eq!(quick.exit_code(), 2);
    assert!(
        quick.stderr().contains("name:PORT/protocol"),
        "{}",
        quick.stderr()
    );
    let mut command = std::process::Command::new(EMULATOR);
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--grace-period",
        "1s",
        "--",
        fake_game(),
    ]);
    let mut quick = Running::start(command);
    assert_eq!(quick.exit_code(), 64);
    assert!(
        quick.stderr().contains("termination_grace_period_seconds"),
        "{}",
        quick.stderr()
    );
}
