//! The Agones SDK REST API (`--agones`) of the real agent binary, route by route: status
//! codes, bodies in Agones's shape (proto field names, int64 as strings, `{"bool"}` and
//! `{"count"}` wrappers, `{"code", "message", "details"}` errors), the one player set shared
//! with the agent's own API, label keys, Counters and Lists bounds, and the options.

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::net::SocketAddr;

use serde_json::{json, Value};
use support::{agent_command, start_with_api, wait_until, Running, DEADLINE};

/// The agent with `--agones` on a free port around the fake game: the agent, its API's
/// address and the Agones SDK's address (from the `AGONES_SDK_HTTP_PORT` the game got).
fn start() -> (Running, SocketAddr, SocketAddr) {
    let (mut agent, api) = start_with_api(
        &["--agones", "--agones-addr", "127.0.0.1:0"],
        &["--print-env", "AGONES_SDK_HTTP_PORT"],
    );
    let line = agent.wait_line("ENV AGONES_SDK_HTTP_PORT=");
    let port: u16 = line["ENV AGONES_SDK_HTTP_PORT=".len()..].parse().unwrap();
    (agent, api, SocketAddr::from(([127, 0, 0, 1], port)))
}

fn sdk(addr: SocketAddr, method: &str, path: &str, body: Value) -> (u16, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let reply = http::call(addr, method, path, &[], body.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (reply.status, reply.json())
}

/// An error in the gateway's shape with this HTTP status and gRPC code.
fn assert_error((status, body): (u16, Value), want_status: u16, code: i64) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["details"], json!([]), "{body}");
}

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
fn agones_and_the_agent_api_share_one_player_set() {
    let (_agent, api, addr) = start();
    let connect = |id: &str| {
        sdk(
            addr,
            "POST",
            "/alpha/player/connect",
            json!({"playerID": id}),
        )
    };
    assert_eq!(connect("ann"), (200, json!({"bool": true})));
    assert_eq!(connect("ann"), (200, json!({"bool": false})));
    let players = http::get(api, "/v1/players").json();
    assert_eq!(players, json!({"count": 1, "players": ["ann"]}));
    let reply = http::call(api, "POST", "/v1/players/connect", &[], br#"{"id":"bob"}"#).unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        sdk(addr, "GET", "/alpha/player/connected/bob", Value::Null),
        (200, json!({"bool": true}))
    );
    assert_eq!(
        sdk(addr, "GET", "/alpha/player/connected/eve", Value::Null),
        (200, json!({"bool": false}))
    );
    assert_eq!(
        sdk(addr, "GET", "/alpha/player/count", Value::Null),
        (200, json!({"count": "2"}))
    );
    assert_eq!(
        sdk(addr, "GET", "/alpha/player/connected", Value::Null),
        (200, json!({"list": ["ann", "bob"]}))
    );
    // The agent's status counts them too (what the idle and empty timeouts read).
    assert!(wait_until(DEADLINE, || http::get(api, "/v1/status").json()
        ["players"]
        == 2));

    // Capacity: refused as Agones refuses it, and a player already in is not refused.
    assert_eq!(
        sdk(addr, "PUT", "/alpha/player/capacity", json!({"count": "2"})),
        (200, json!({}))
    );
    assert_eq!(
        sdk(addr, "GET", "/alpha/player/capacity", Value::Null),
        (200, json!({"count": "2"}))
    );
    assert_error(connect("cy"), 500, 2);
    assert_eq!(connect("bob"), (200, json!({"bool": false})));
    assert_error(
        sdk(
            addr,
            "PUT",
            "/alpha/player/capacity",
            json!({"count": "-1"}),
        ),
        400,
        3,
    );

    assert_eq!(
        sdk(
            addr,
            "POST",
            "/alpha/player/disconnect",
            json!({"playerID": "ann"})
        ),
        (200, json!({"bool": true}))
    );
    assert_eq!(
        sdk(
            addr,
            "POST",
            "/alpha/player/disconnect",
            json!({"playerID": "ann"})
        ),
        (200, json!({"bool": false}))
    );
    assert_eq!(
        http::get(api, "/v1/players").json()["players"],
        json!(["bob"])
    );
    let gs = sdk(addr, "GET", "/gameserver", Value::Null).1;
    assert_eq!(
        gs["status"]["players"],
        json!({"count": "1", "capacity": "2", "ids": ["bob"]})
    );
    // Ids follow the agent's rule; a percent-encoded id in a path is decoded.
    assert_error(connect(""), 400, 3);
    assert_error(connect(&"x".repeat(257)), 400, 3);
    assert_error(connect("a\nb"), 400, 3);
    assert_error(
        sdk(
            addr,
            "POST",
            "/alpha/player/connect",
            json!({"playerID": 5}),
        ),
        400,
        3,
    );
    sdk(addr, "PUT", "/alpha/player/capacity", json!({"count": 0}));
    assert_eq!(connect("d d"), (200, json!({"bool": true})));
    assert_eq!(
        sdk(addr, "GET", "/alpha/player/connected/d%20d", Value::Null),
        (200, json!({"bool": true}))
    );
}

#[test]
fn labels_and_annotations_are_validated_prefixed_and_bounded() {
    let (_agent, _api, addr) = start();
    let label = |key: &str, value: &str| {
        sdk(
            addr,
            "PUT",
            "/metadata/label",
            json!({"key": key, "value": value}),
        )
    };
    assert_eq!(label("map", "dust"), (200, json!({})));
    let note = json!({"key": "note", "value": "free text / with spaces"});
    assert_eq!(
        sdk(addr, "PUT", "/metadata/annotation", note),
        (200, json!({}))
    );
    let gs = sdk(addr, "GET", "/gameserver", Value::Null).1;
    assert_eq!(
        gs["object_meta"]["labels"],
        json!({"agones.dev/sdk-map": "dust"})
    );
    assert_eq!(
        gs["object_meta"]["annotations"],
        json!({"agones.dev/sdk-note": "free text / with spaces"})
    );
    for bad in ["", "a/b", "with space", "trail-", "é", &"k".repeat(60)] {
        assert_error(label(bad, "v"), 400, 3);
    }
    assert_error(label("ok", "not valid"), 400, 3);
    assert_error(label("ok", &"v".repeat(64)), 400, 3);
    assert_eq!(label(&"k".repeat(59), "").0, 200);
    for i in 0..62 {
        assert_eq!(label(&format!("k{i}"), "v").0, 200, "{i}");
    }
    assert_error(label("one-too-many", "v"), 429, 8);
    let big = json!({"key": "big", "value": "x".repeat(4097)});
    assert_error(sdk(addr, "PUT", "/metadata/annotation", big), 400, 3);
}

#[test]
fn counters_and_lists_keep_agones_bounds() {
    let (_agent, _api, addr) = start();
    assert_error(
        sdk(addr, "GET", "/v1beta1/counters/rooms", Value::Null),
        404,
        5,
    );
    let patch = |body: Value| sdk(addr, "PATCH", "/v1beta1/counters/rooms", body);
    assert_eq!(
        patch(json!({"capacity": "3"})),
        (200, json!({"name": "rooms", "count": "0", "capacity": "3"}))
    );
    assert_eq!(patch(json!({"countDiff": "2"})).1["count"], "2");
    assert_error(patch(json!({"countDiff": "2"})), 400, 11);
    assert_error(patch(json!({"count": "-1"})), 400, 11);
    assert_eq!(patch(json!({"count_diff": -1})).1["count"], "1");
    assert_eq!(
        sdk(addr, "GET", "/v1alpha1/counters/rooms", Value::Null).1["count"],
        "1"
    );
    assert_error(patch(json!({"count": "1x"})), 400, 3);

    let list = "/v1beta1/lists/maps";
    assert_error(
        sdk(
            addr,
            "POST",
            &format!("{list}:addValue"),
            json!({"value": "a"}),
        ),
        404,
        5,
    );
    let created = sdk(
        addr,
        "PATCH",
        list,
        json!({"capacity": "2", "values": ["a", "a"]}),
    );
    assert_eq!(
        created,
        (
            200,
            json!({"name": "maps", "capacity": "2", "values": ["a"]})
        )
    );
    let add = |v: &str| {
        sdk(
            addr,
            "POST",
            &format!("{list}:addValue"),
            json!({"value": v}),
        )
    };
    assert_error(add("a"), 409, 6);
    assert_eq!(add("b").1["values"], json!(["a", "b"]));
    assert_error(add("c"), 400, 11);
    assert_error(
        sdk(
            addr,
            "POST",
            &format!("{list}:removeValue"),
            json!({"value": "c"}),
        ),
        404,
        5,
    );
    assert_eq!(
        sdk(
            addr,
            "POST",
            &format!("{list}:removeValue"),
            json!({"value": "a"})
        )
        .1["values"],
        json!(["b"])
    );
    assert_error(
        sdk(addr, "PATCH", list, json!({"capacity": "1001"})),
        400,
        11,
    );
    assert_error(
        sdk(addr, "POST", &format!("{list}:addValue"), json!({})),
        400,
        3,
    );
    let gs = sdk(addr, "GET", "/gameserver", Value::Null).1;
    assert_eq!(
        gs["status"]["counters"],
        json!({"rooms": {"count": "1", "capacity": "3"}})
    );
    assert_eq!(
        gs["status"]["lists"],
        json!({"maps": {"capacity": "2", "values": ["b"]}})
    );
    for i in 0..63 {
        assert_eq!(
            sdk(addr, "PATCH", &format!("/v1beta1/counters/c{i}"), json!({})).0,
            200
        );
    }
    assert_error(
        sdk(addr, "PATCH", "/v1beta1/counters/too-many", json!({})),
        429,
        8,
    );
}

#[test]
fn the_watch_streams_the_current_game_server_then_each_change() {
    use std::io::{BufRead, BufReader, Write};
    let (_agent, _api, addr) = start();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
        .write_all(b"GET /watch/gameserver HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    // The body is chunked: read lines, keep the JSON ones.
    let mut next_result = || loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended");
        if let Ok(value) = serde_json::from_str::<Value>(line.trim()) {
            return value;
        }
    };
    let first = next_result();
    assert_eq!(first["result"]["status"]["state"], "Scheduled", "{first}");
    sdk(
        addr,
        "PUT",
        "/metadata/label",
        json!({"key": "phase", "value": "lobby"}),
    );
    let second = next_result();
    assert_eq!(
        second["result"]["object_meta"]["labels"]["agones.dev/sdk-phase"], "lobby",
        "{second}"
    );
    sdk(addr, "POST", "/ready", json!({}));
    let mut seen = next_result();
    while seen["result"]["status"]["state"] != "Ready" {
        seen = next_result();
    }
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
