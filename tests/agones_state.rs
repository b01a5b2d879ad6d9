//! The Agones SDK REST API's state with the real agent binary: the one player set shared
//! with the agent's own API (and the idle timeout running from it), capacity, label keys,
//! Counter and List bounds. `tests/agones_routes.rs` has the routes' shapes and the options,
//! `tests/agones_watch.rs` the watch stream.

#[allow(dead_code)]
#[path = "support/agones_sdk.rs"]
mod agones_sdk;
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use agones_sdk::{assert_error, sdk, start, start_with};
use serde_json::{json, Value};
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
    // As Agones: an update must change something, and refusals read as Agones's do.
    assert_error(patch(json!({})), 400, 3);
    let (_, refused) = patch(json!({"countDiff": "9"}));
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .starts_with("out of range. "),
        "{refused}"
    );

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
    // Values beyond the capacity are cut, as Agones cuts them.
    let cut = sdk(
        addr,
        "PATCH",
        "/v1beta1/lists/cut",
        json!({"capacity": 1, "values": ["x", "y"]}),
    );
    assert_eq!(cut.1["values"], json!(["x"]));
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
        json!({"cut": {"capacity": "1", "values": ["x"]}, "maps": {"capacity": "2", "values": ["b"]}})
    );
    for i in 0..63 {
        assert_eq!(
            sdk(
                addr,
                "PATCH",
                &format!("/v1beta1/counters/c{i}"),
                json!({"count": "0"})
            )
            .0,
            200
        );
    }
    assert_error(
        sdk(
            addr,
            "PATCH",
            "/v1beta1/counters/too-many",
            json!({"count": "0"}),
        ),
        429,
        8,
    );
}
