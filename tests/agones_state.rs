//! The Agones SDK REST API's state with the real agent binary: the one player set shared
//! with the agent's own API, capacity, label keys, Counter and List bounds, and the watch
//! stream. `tests/agones_routes.rs` has the routes' shapes and the options.

#[allow(dead_code)]
#[path = "support/agones_sdk.rs"]
mod agones_sdk;
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use agones_sdk::{assert_error, sdk, start, start_with};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use support::{wait_until, DEADLINE};

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

/// The idle timeout runs from players who joined and left through the Agones SDK: the one
/// roster the agent's machine reads.
#[test]
fn the_idle_timeout_ends_the_match_from_players_tracked_through_agones() {
    let (mut agent, _api, addr) = start_with(&["--idle-timeout", "1s"]);
    assert_eq!(sdk(addr, "POST", "/ready", json!({})).0, 200);
    let player = json!({"playerID": "solo"});
    assert_eq!(
        sdk(addr, "POST", "/alpha/player/connect", player.clone()).1,
        json!({"bool": true})
    );
    assert_eq!(
        sdk(addr, "POST", "/alpha/player/disconnect", player).1,
        json!({"bool": true})
    );
    // Local mode: the match end cannot self-stop, so the agent stops the game and exits 0.
    let (_status, took) = agent.wait_exit(DEADLINE);
    assert!(took < DEADLINE);
    let stderr = agent.stderr();
    assert!(
        stderr.contains("match ended: no players left for the idle timeout"),
        "{stderr}"
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

/// A `/watch/gameserver` stream, read a `{"result"}` line at a time.
struct Watch {
    reader: BufReader<TcpStream>,
}

impl Watch {
    fn open(addr: SocketAddr) -> Watch {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream
            .write_all(b"GET /watch/gameserver HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        Watch {
            reader: BufReader::new(stream),
        }
    }

    /// The status line and headers, or the whole answer of a refused stream.
    fn status(&mut self) -> u16 {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// The next JSON line (the body is chunked: the size lines are skipped).
    fn next(&mut self) -> Value {
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).unwrap() > 0,
                "the stream ended"
            );
            if let Ok(value) = serde_json::from_str::<Value>(line.trim()) {
                return value;
            }
        }
    }
}

#[test]
fn the_watch_streams_the_current_game_server_then_each_change() {
    let (_agent, _api, addr) = start();
    let mut watch = Watch::open(addr);
    assert_eq!(watch.status(), 200);
    let first = watch.next();
    assert_eq!(first["result"]["status"]["state"], "Scheduled", "{first}");
    let label = json!({"key": "phase", "value": "lobby"});
    sdk(addr, "PUT", "/metadata/label", label);
    let second = watch.next();
    assert_eq!(
        second["result"]["object_meta"]["labels"]["agones.dev/sdk-phase"], "lobby",
        "{second}"
    );
    sdk(addr, "POST", "/ready", json!({}));
    let mut seen = watch.next();
    while seen["result"]["status"]["state"] != "Ready" {
        seen = watch.next();
    }
}

/// A stream with nothing to say outlives the server's 10 s answer limit, and a reservation
/// lapsing is a change the stream reports on its own.
#[test]
fn a_watch_outlives_the_answer_limit_and_reports_a_reservation_lapsing() {
    let (_agent, _api, addr) = start();
    sdk(addr, "POST", "/ready", json!({}));
    let mut watch = Watch::open(addr);
    assert_eq!(watch.status(), 200);
    let state = |value: &Value| value["result"]["status"]["state"].clone();
    let mut seen = watch.next();
    while state(&seen) != "Ready" {
        seen = watch.next();
    }
    let started = std::time::Instant::now();
    assert_eq!(
        sdk(addr, "POST", "/reserve", json!({"seconds": "12"})).0,
        200
    );
    assert_eq!(state(&watch.next()), "Reserved");
    assert_eq!(state(&watch.next()), "Ready");
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_secs(12), "{took:?}");
}

#[test]
fn watch_streams_are_bounded_and_freed_when_their_client_goes() {
    let (_agent, _api, addr) = start();
    let mut open: Vec<Watch> = (0..edgegap_agent::api::MAX_WAITING_CLIENTS)
        .map(|_| {
            let mut watch = Watch::open(addr);
            assert_eq!(watch.status(), 200);
            watch.next();
            watch
        })
        .collect();
    let (status, body) = sdk(addr, "GET", "/watch/gameserver", Value::Null);
    assert_error((status, body), 429, 8);
    open.pop();
    assert!(wait_until(DEADLINE, || {
        let mut watch = Watch::open(addr);
        watch.status() == 200
    }));
}
