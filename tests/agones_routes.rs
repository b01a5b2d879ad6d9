//! The Agones SDK REST API (`--agones`) of the real agent binary: every route of the
//! fixture of Agones's swagger with its method (405 otherwise) and the shapes of its answers
//! (proto field names, int64 as strings, `{"bool"}` and `{"count"}` wrappers,
//! `{"code", "message", "details"}` errors); the GameServer built from the deployment and its
//! states; the options. `tests/agones_state.rs` has players, labels, Counters, Lists, watch.

#[allow(dead_code)]
#[path = "support/agones_sdk.rs"]
mod agones_sdk;
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::net::SocketAddr;

use agones_sdk::{assert_error, sdk, start};
use serde_json::{json, Value};
use support::{agent_command, wait_until, Running, DEADLINE};

#[test]
fn every_route_of_the_fixture_answers_with_its_method_and_405_otherwise() {
    let (_agent, _api, addr) = start();
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/agones_sdk_routes.json")).unwrap();
    // A List and a Counter to address, and not /shutdown (it ends the match) nor the watch.
    assert_eq!(sdk(addr, "PATCH", "/v1beta1/lists/l", json!({})).0, 200);
    for route in fixture["routes"].as_array().unwrap() {
        let method = route["method"].as_str().unwrap();
        let path = route["path"]
            .as_str()
            .unwrap()
            .replace("{name}", "l")
            .replace("{playerID}", "p");
        if path == "/shutdown" || path == "/watch/gameserver" {
            continue;
        }
        let body = match path.as_str() {
            "/metadata/label" | "/metadata/annotation" => json!({"key": "k", "value": "v"}),
            "/alpha/player/connect" | "/alpha/player/disconnect" => json!({"playerID": "p"}),
            p if p.ends_with("Value") => json!({"value": "v"}),
            p if p.contains("/counters/") && method == "PATCH" => json!({"countDiff": "1"}),
            _ if method == "GET" => Value::Null,
            _ => json!({}),
        };
        let (status, answer) = sdk(addr, method, &path, body);
        assert_eq!(status, 200, "{method} {path}: {answer}");
        for field in route["response"].as_object().into_iter().flatten() {
            let (name, kind) = (field.0.as_str(), field.1.as_str().unwrap_or(""));
            let value = &answer[name];
            match kind {
                "int64" => assert!(value.is_string(), "{method} {path}: {name} {answer}"),
                "boolean" => assert!(value.is_boolean(), "{method} {path}: {name} {answer}"),
                "string[]" => assert!(value.is_array(), "{method} {path}: {name} {answer}"),
                _ => assert!(!value.is_null(), "{method} {path}: {name} {answer}"),
            }
        }
        let wrong = if method == "DELETE" { "GET" } else { "DELETE" };
        let reply = http::call(addr, wrong, &path, &[], b"").unwrap();
        assert_eq!(reply.status, 405, "{wrong} {path}");
        assert!(
            reply.header("allow").is_some_and(|a| a.contains(method)),
            "{path}"
        );
        assert_eq!(reply.json()["code"], 12);
    }
    assert_error(sdk(addr, "GET", "/nothing", Value::Null), 404, 5);
}

#[test]
fn the_game_server_is_built_from_the_deployment_in_agones_shape() {
    let env = [
        ("ARBITRIUM_REQUEST_ID", "c0ffee12"),
        ("ARBITRIUM_PUBLIC_IP", "203.0.113.9"),
        (
            "ARBITRIUM_PORTS_MAPPING",
            r#"{"ports":{"game":{"name":"game","internal":7777,"external":31001,"protocol":"UDP"}}}"#,
        ),
    ];
    let (mut agent, _api) = support::start_with_api_env(
        &env,
        &["--agones", "--agones-addr", "127.0.0.1:0"],
        &["--print-env", "AGONES_SDK_HTTP_PORT"],
    );
    let line = agent.wait_line("ENV AGONES_SDK_HTTP_PORT=");
    let addr = SocketAddr::from((
        [127, 0, 0, 1],
        line["ENV AGONES_SDK_HTTP_PORT=".len()..].parse().unwrap(),
    ));
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/agones_sdk_routes.json")).unwrap();
    let (status, gs) = sdk(addr, "GET", "/gameserver", Value::Null);
    assert_eq!(status, 200);
    for key in fixture["game_server"]["object_meta"].as_array().unwrap() {
        assert!(
            gs["object_meta"].get(key.as_str().unwrap()).is_some(),
            "{key}: {gs}"
        );
    }
    for key in fixture["game_server"]["object_meta_int64"]
        .as_array()
        .unwrap()
    {
        assert!(
            gs["object_meta"][key.as_str().unwrap()].is_string(),
            "{key}: {gs}"
        );
    }
    for key in fixture["game_server"]["status"].as_array().unwrap() {
        assert!(
            gs["status"].get(key.as_str().unwrap()).is_some(),
            "{key}: {gs}"
        );
    }
    assert_eq!(gs["object_meta"]["name"], "c0ffee12");
    assert_eq!(gs["status"]["state"], "Scheduled");
    assert_eq!(gs["status"]["address"], "203.0.113.9");
    assert_eq!(
        gs["status"]["ports"],
        json!([{"name": "game", "port": 31001}])
    );
    assert_eq!(
        gs["status"]["players"],
        json!({"count": "0", "capacity": "0", "ids": []})
    );

    assert_eq!(sdk(addr, "POST", "/ready", json!({})), (200, json!({})));
    let state = |addr| sdk(addr, "GET", "/gameserver", Value::Null).1["status"]["state"].clone();
    assert!(
        wait_until(DEADLINE, || state(addr) == "Ready"),
        "{}",
        state(addr)
    );
    assert_eq!(
        sdk(addr, "POST", "/reserve", json!({"seconds": "1"})).0,
        200
    );
    assert_eq!(state(addr), "Reserved");
    assert!(
        wait_until(DEADLINE, || state(addr) == "Ready"),
        "the reservation lapses"
    );
    assert_eq!(sdk(addr, "POST", "/reserve", json!({"seconds": 0})).0, 200);
    assert_eq!(state(addr), "Reserved");
    assert_eq!(sdk(addr, "POST", "/allocate", json!({})).0, 200);
    assert_eq!(state(addr), "Allocated");
    assert_error(
        sdk(addr, "POST", "/reserve", json!({"seconds": "-1"})),
        400,
        3,
    );
    assert_error(
        sdk(addr, "POST", "/reserve", json!({"seconds": "soon"})),
        400,
        3,
    );
    assert_error(sdk(addr, "POST", "/ready", json!([1])), 400, 3);
    let reply = http::call(addr, "POST", "/ready", &[], b"{not json").unwrap();
    assert_eq!(
        (reply.status, reply.json()["code"].clone()),
        (400, json!(3))
    );
}

#[test]
fn the_agones_address_must_be_loopback_and_free() {
    let mut command = agent_command();
    command.args(["--agones", "--agones-addr", "0.0.0.0:9358", "--", "true"]);
    let mut agent = Running::start(command);
    assert_eq!(agent.exit_code(), 64);
    assert!(
        agent.stderr().contains(
            "--agones-addr 0.0.0.0:9358 (EDGEGAP_AGENT_AGONES_ADDR) is not a loopback address"
        ),
        "{}",
        agent.stderr()
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut command = agent_command();
    command
        .env("EDGEGAP_AGENT_AGONES", "true")
        .env("EDGEGAP_AGENT_AGONES_ADDR", &addr)
        .args(["--", "true"]);
    let mut agent = Running::start(command);
    assert_eq!(agent.exit_code(), 64);
    assert!(
        agent.stderr().contains(&format!(
            "cannot bind the Agones SDK API to {addr} (--agones-addr / EDGEGAP_AGENT_AGONES_ADDR)"
        )),
        "{}",
        agent.stderr()
    );
}

/// The default 9358, taken by another socket, gives way to a free loopback port as the local
/// API's default does: the game is told the port it got and reaches the SDK there.
#[test]
fn a_taken_default_agones_port_gives_way_to_a_free_one_the_game_is_told() {
    // Held by this socket, or by whoever holds it already: held either way.
    let _held = std::net::TcpListener::bind("127.0.0.1:9358");
    let (mut agent, api) =
        support::start_with_api(&["--agones"], &["--print-env", "AGONES_SDK_HTTP_PORT"]);
    let line = agent.wait_line("ENV AGONES_SDK_HTTP_PORT=");
    let port: u16 = line["ENV AGONES_SDK_HTTP_PORT=".len()..].parse().unwrap();
    assert_ne!(port, 9358);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(sdk(addr, "POST", "/ready", json!({})).0, 200);
    assert!(wait_until(DEADLINE, || http::get(api, "/v1/status").json()
        ["ready"]
        == true));
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    agent.wait_exit(DEADLINE);
    let log = agent.stderr();
    assert!(
        log.contains("the default Agones SDK address 127.0.0.1:9358 cannot be bound"),
        "{log}"
    );
    assert!(
        log.contains(&format!("listening on {addr} instead")),
        "{log}"
    );
}
