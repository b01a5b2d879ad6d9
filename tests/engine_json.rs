//! The engine snippets (`examples/engines/`) against the real agent. Each snippet builds its
//! bodies with its engine's JSON writer; here every tricky match-end reason and player id is
//! encoded exactly as that writer encodes it (its escaping rules reproduced from the engine's
//! source), POSTed to the real binary around the fake game, and must be accepted and reported
//! back unchanged (`GET /v1/status`, `GET /v1/players`), up to the documented limits:
//! match-end reasons of 512 bytes, player ids of 1 to 256 bytes without control characters.
//!
//! The writers:
//! - Unreal Engine 5, `FJsonSerializer` with a condensed `TJsonWriter`
//!   (`Runtime/Json/Public/Serialization/JsonWriter.h`, `WriteEscapedString`): `"` and `\`
//!   escaped, `\b \t \n \f \r` short, every other character below U+0020 as `\u%04x`
//!   (lower-case hex), everything else (`/`, non-ASCII) as is; `SetContentAsString` sends the
//!   UTF-16 `FString` as UTF-8.
//! - Godot 4, `JSON.stringify` (`core/io/json.cpp`, which quotes `String::json_escape` of
//!   `core/string/ustring.cpp`): replaces `\` `\b` `\f` `\n` `\r` `\t`, U+000B as `\v`, and `"`,
//!   and nothing else. `\v` is no JSON escape and a raw control character is not allowed in a
//!   JSON string, so the snippet's `_json_safe` first turns those characters into spaces; the
//!   test checks that the writer's output without it is refused, which is why it is there.
//! - Unity, `JsonUtility.ToJson`: native code whose escaping Unity does not document. The test
//!   sends both ways a conforming writer escapes: RapidJSON's (short escapes, other control
//!   characters as `\u00XX`, everything else as UTF-8) and all-ASCII (every character past
//!   U+007E as `\uXXXX`, astral ones as UTF-16 surrogate pairs, `/` as `\/`).

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::{start_with_api, wait_until, Running};

/// The longest match-end reason the README documents, in bytes of UTF-8 (`src/api/commands.rs`).
const MAX_REASON_BYTES: usize = 512;
/// The longest player id the README documents, in bytes of UTF-8.
const MAX_PLAYER_ID_BYTES: usize = 256;

/// One engine's JSON writer: what its snippet does to a text first, and the JSON string
/// literal (quotes included) the writer then writes for it.
struct Writer {
    name: &'static str,
    prepare: fn(&str) -> String,
    literal: fn(&str) -> String,
}

impl Writer {
    /// An object of string fields, as the writer lays it out: `{"k":"v",...}`, no spaces
    /// (Unreal's condensed policy, Godot's `stringify` without indent, Unity without
    /// `prettyPrint`), in the order the fields are set.
    fn object(&self, fields: &[(&str, &str)]) -> String {
        let members: Vec<String> = fields
            .iter()
            .map(|(key, value)| format!("{}:{}", (self.literal)(key), (self.literal)(value)))
            .collect();
        format!("{{{}}}", members.join(","))
    }

    fn match_end_body(&self, reason: &str) -> String {
        self.object(&[("reason", &(self.prepare)(reason)), ("delay", "60s")])
    }

    fn player_body(&self, id: &str) -> String {
        self.object(&[("id", &(self.prepare)(id))])
    }
}

fn unchanged(text: &str) -> String {
    text.to_owned()
}

/// The short escapes every writer here shares: `"`, `\`, and `\b \t \n \f \r`.
fn short_escape(c: char) -> Option<&'static str> {
    Some(match c {
        '"' => "\\\"",
        '\\' => "\\\\",
        '\u{8}' => "\\b",
        '\t' => "\\t",
        '\n' => "\\n",
        '\u{c}' => "\\f",
        '\r' => "\\r",
        _ => return None,
    })
}

/// Unreal Engine 5's `TJsonWriter::WriteEscapedString`.
fn unreal_literal(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match short_escape(c) {
            Some(escape) => out.push_str(escape),
            None if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            None => out.push(c),
        }
    }
    out + "\""
}

/// Godot 4's `String::json_escape`, replacement by replacement, in its order.
fn godot_literal(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('\u{8}', "\\b")
        .replace('\u{c}', "\\f")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
        .replace('\t', "\\t")
        .replace('\u{b}', "\\v")
        .replace('"', "\\\"");
    format!("\"{escaped}\"")
}

/// The Godot snippet's `_json_safe`: `[\x00-\x07\x0B\x0E-\x1F]` becomes a space.
fn godot_json_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{0}'..='\u{7}' | '\u{b}' | '\u{e}'..='\u{1f}' => ' ',
            c => c,
        })
        .collect()
}

/// RapidJSON's `Writer::WriteString` (UTF-8 out): short escapes, other control characters
/// as `\u00XX` (upper-case hex), the rest as is.
fn rapidjson_literal(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match short_escape(c) {
            Some(escape) => out.push_str(escape),
            None if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            None => out.push(c),
        }
    }
    out + "\""
}

/// An all-ASCII writer: short escapes, `/` as `\/`, every other character outside printable
/// ASCII as `\uXXXX` of its UTF-16 code units (a surrogate pair past U+FFFF).
fn ascii_literal(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match (short_escape(c), c) {
            (Some(escape), _) => out.push_str(escape),
            (None, '/') => out.push_str("\\/"),
            (None, ' '..='~') => out.push(c),
            (None, _) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out + "\""
}

const UNREAL: Writer = Writer {
    name: "Unreal (FJsonSerializer, TJsonWriter)",
    prepare: unchanged,
    literal: unreal_literal,
};
const GODOT: Writer = Writer {
    name: "Godot (_json_safe, then JSON.stringify)",
    prepare: godot_json_safe,
    literal: godot_literal,
};
const UNITY_RAPIDJSON: Writer = Writer {
    name: "Unity (JsonUtility.ToJson), RapidJSON's escaping",
    prepare: unchanged,
    literal: rapidjson_literal,
};
const UNITY_ASCII: Writer = Writer {
    name: "Unity (JsonUtility.ToJson), all-ASCII escaping",
    prepare: unchanged,
    literal: ascii_literal,
};

/// Match-end reasons a game may well send.
const REASONS: &[(&str, &str)] = &[
    ("apostrophe", "Player's team won"),
    ("double quote", r#"the "blue" team won"#),
    ("backslash", r"C:\maps\arena, not \n nor \u0041"),
    ("slash", "blue/red </script> // 3/1"),
    ("newline", "line one\nline two\n"),
    ("carriage return", "line one\r\nline two\r"),
    ("tab", "score:\t3\t-\t1"),
    (
        "other control characters",
        "nul\u{0} soh\u{1} bel\u{7} bs\u{8} vt\u{b} ff\u{c} so\u{e} esc\u{1b} us\u{1f} del\u{7f} csi\u{9b}",
    ),
    (
        "non-ASCII",
        "Équipe « bleue » a gagné — 東京, Ελλάδα\u{a0}nbsp\u{2028}ls\u{2029}ps\u{feff}",
    ),
    (
        "emoji and astral characters",
        "🏆 GG 👍🏽 👨‍👩‍👧 𝄞 🇫🇷 \u{10ffff}",
    ),
    ("empty", ""),
];

/// Player ids a game may well report; the agent documents 1 to 256 bytes of UTF-8 without
/// control characters.
fn player_ids() -> Vec<String> {
    let mut ids: Vec<String> = [
        "O'Brien",
        r#"the "pro""#,
        r"DOMAIN\alice",
        "team/alice",
        "Zoë-東京-Ελλάδα",
        "🎮player👍🏽",
        "steam:76561198000000000",
        "new\nline",
        "cr\rhere",
        "tab\there",
        "soh\u{1}vt\u{b}",
        "del\u{7f}",
        "",
    ]
    .iter()
    .map(|id| (*id).to_owned())
    .collect();
    ids.push("🏆".repeat(MAX_PLAYER_ID_BYTES / 4)); // exactly 256 bytes
    ids.push(format!("{}é", "x".repeat(MAX_PLAYER_ID_BYTES - 2))); // 256, ending mid-way
    ids.push("x".repeat(MAX_PLAYER_ID_BYTES + 1)); // one byte too many
    ids
}

/// The agent's documented rule for a player id.
fn valid_player_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_PLAYER_ID_BYTES && !id.chars().any(char::is_control)
}

/// A reason of exactly the reason limit once `writer` has prepared it (in bytes of UTF-8, as
/// the agent counts them): every tricky character again and again, then ASCII to fill up.
fn longest_reason(writer: &Writer) -> String {
    let tricky: String = REASONS.iter().map(|(_, reason)| *reason).collect();
    let mut reason = String::new();
    let mut length = 0;
    for c in tricky.chars().cycle() {
        let prepared = (writer.prepare)(&c.to_string()).len();
        if length + prepared > MAX_REASON_BYTES - 8 {
            break;
        }
        length += prepared;
        reason.push(c);
    }
    reason.push_str(&"a".repeat(MAX_REASON_BYTES - length));
    reason
}

fn post(addr: SocketAddr, path: &str, body: &str) -> http::Reply {
    http::call(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// A fresh agent around the fake game, up and running.
fn agent() -> (Running, SocketAddr) {
    let (mut agent, addr) = start_with_api(&[], &[]);
    agent.wait_line("READY pid=");
    (agent, addr)
}

/// Ends the match of a fresh agent with `body` and checks the agent took `expected` as the
/// reason: 202 at once, then `GET /v1/status` in `ending` with that reason.
fn assert_match_end_accepted(writer: &Writer, what: &str, body: &str, expected: &str) {
    let (agent, addr) = agent();
    let reply = post(addr, "/v1/match/end", body);
    assert_eq!(
        reply.status, 202,
        "{}, {what}: the agent refused {body:?}: {}",
        writer.name, reply.body
    );
    assert_eq!(
        reply.json()["status"]["reason"],
        expected,
        "{}, {what}",
        writer.name
    );
    let mut status = Value::Null;
    let applied = wait_until(Duration::from_secs(10), || {
        status = http::get(addr, "/v1/status").json();
        status["state"] == "ending"
    });
    assert!(
        applied,
        "{}, {what}: status {status}; stderr:\n{}",
        writer.name,
        agent.stderr()
    );
    assert_eq!(status["trigger"], "api", "{}, {what}", writer.name);
    assert_eq!(status["reason"], expected, "{}, {what}", writer.name);
}

fn every_reason_is_accepted_and_reported_back(writer: &Writer) {
    for (what, reason) in REASONS {
        let body = writer.match_end_body(reason);
        assert_match_end_accepted(writer, what, &body, &(writer.prepare)(reason));
    }
    let reason = longest_reason(writer);
    let prepared = (writer.prepare)(&reason);
    assert_eq!(prepared.len(), MAX_REASON_BYTES, "{}", writer.name);
    let body = writer.match_end_body(&reason);
    assert_match_end_accepted(writer, "a reason at the 512-byte limit", &body, &prepared);
    // One byte more is refused, and says the limit.
    let (_agent, addr) = agent();
    let reply = post(
        addr,
        "/v1/match/end",
        &writer.match_end_body(&format!("{reason}a")),
    );
    assert_eq!(reply.status, 400, "{}: {}", writer.name, reply.body);
    assert!(
        reply.body.contains("at most 512"),
        "{}: {}",
        writer.name,
        reply.body
    );
}

fn every_valid_player_id_connects_and_disconnects(writer: &Writer) {
    let (_agent, addr) = agent();
    let mut connected: Vec<String> = Vec::new();
    for id in player_ids() {
        let sent = (writer.prepare)(&id);
        let reply = post(addr, "/v1/players/connect", &writer.player_body(&id));
        if valid_player_id(&sent) {
            assert_eq!(
                reply.status, 200,
                "{}, id {id:?}: {}",
                writer.name, reply.body
            );
            assert_eq!(reply.json()["id"], sent.as_str(), "{}", writer.name);
            connected.push(sent);
        } else {
            // Valid JSON, refused by the documented rule on ids, not as malformed.
            assert_eq!(
                reply.status, 400,
                "{}, id {id:?}: {}",
                writer.name, reply.body
            );
            assert_eq!(
                reply.json()["error"],
                "invalid player id",
                "{}, id {id:?}",
                writer.name
            );
        }
    }
    assert!(connected.len() >= 9, "{}: {connected:?}", writer.name);
    let listed = http::get(addr, "/v1/players").json();
    let mut listed: Vec<String> = listed["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    connected.sort();
    assert_eq!(listed, connected, "{}", writer.name);

    for id in &connected {
        let reply = post(addr, "/v1/players/disconnect", &writer.player_body(id));
        assert_eq!(
            reply.status, 200,
            "{}, id {id:?}: {}",
            writer.name, reply.body
        );
        assert_eq!(reply.json()["connected"], false, "{}", writer.name);
    }
    assert_eq!(
        http::get(addr, "/v1/players").json()["count"],
        0,
        "{}",
        writer.name
    );
}

#[test]
fn unreal_bodies_are_accepted() {
    every_reason_is_accepted_and_reported_back(&UNREAL);
    every_valid_player_id_connects_and_disconnects(&UNREAL);
}

#[test]
fn godot_bodies_are_accepted() {
    every_reason_is_accepted_and_reported_back(&GODOT);
    every_valid_player_id_connects_and_disconnects(&GODOT);
}

#[test]
fn unity_bodies_are_accepted_in_either_escaping() {
    for writer in [&UNITY_RAPIDJSON, &UNITY_ASCII] {
        every_reason_is_accepted_and_reported_back(writer);
        every_valid_player_id_connects_and_disconnects(writer);
    }
}

/// Why the Godot snippet has `_json_safe`: what `JSON.stringify` writes for U+000B (`\v`) and
/// for the other control characters it leaves raw is not JSON, and the agent says so.
#[test]
fn godot_without_json_safe_writes_bodies_that_are_not_json() {
    let (_agent, addr) = agent();
    for reason in [
        "vertical\u{b}tab",
        "start of heading \u{1}",
        "escape \u{1b}[0m",
    ] {
        let body = format!(
            "{{{}:{},{}:{}}}",
            godot_literal("reason"),
            godot_literal(reason),
            godot_literal("delay"),
            godot_literal("60s")
        );
        let reply = post(addr, "/v1/match/end", &body);
        assert_eq!(reply.status, 400, "{body:?}: {}", reply.body);
        assert_eq!(reply.json()["error"], "malformed JSON", "{body:?}");
        // The same reason through the snippet is accepted (above): only the spaces differ.
        assert!(valid_json(&GODOT.match_end_body(reason)), "{reason:?}");
    }
    // Nothing ended the match.
    let status = http::get(addr, "/v1/status").json();
    assert_eq!(status["state"], "starting", "{status}");
    assert!(status["reason"].is_null(), "{status}");
}

fn valid_json(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok()
}

/// The snippets as the README describes them: bodies from the engine's JSON writer, never
/// assembled by hand; the example game's calls (deployment, ready, heartbeats on a timer,
/// players joining and leaving, match end); the URL and token from the agent's variables.
#[test]
fn the_snippets_use_their_engines_json_writer_and_make_the_example_games_calls() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |path: &str| {
        std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let routes = [
        "/v1/deployment",
        "/v1/ready",
        "/v1/heartbeat",
        "/v1/players/connect",
        "/v1/players/disconnect",
        "/v1/match/end",
    ];
    let example = read("examples/game_server.rs");
    for route in routes {
        assert!(example.contains(route), "examples/game_server.rs: {route}");
    }

    let snippets: [(&str, String, &[&str]); 3] = [
        (
            "Unity",
            read("examples/engines/unity/EdgegapAgent.cs"),
            &["[Serializable]", "JsonUtility.ToJson(", "InvokeRepeating("],
        ),
        (
            "Unreal",
            read("examples/engines/unreal/EdgegapAgent.h")
                + &read("examples/engines/unreal/EdgegapAgent.cpp"),
            &[
                "MakeShared<FJsonObject>()",
                "SetStringField(",
                "TJsonWriterFactory<TCHAR, TCondensedJsonPrintPolicy<TCHAR>>::Create(",
                "FJsonSerializer::Serialize(",
                "AddTicker(",
            ],
        ),
        (
            "Godot",
            read("examples/engines/godot/edgegap_agent.gd"),
            &["JSON.stringify(", "Timer.new()", "_json_safe("],
        ),
    ];
    for (name, text, writer_calls) in snippets {
        for needle in routes.iter().chain(writer_calls).chain(&[
            "EDGEGAP_AGENT_URL",
            "EDGEGAP_AGENT_API_TOKEN",
            "Bearer ",
            "127.0.0.1:7070",
            "Lifecycle hooks",
        ]) {
            assert!(text.contains(needle), "the {name} snippet lacks {needle:?}");
        }
        // No JSON assembled or escaped by hand, and no port but the agent's default.
        for hand_made in [
            "{\\\"",
            "ReplaceCharWithEscapedChar",
            ".Replace(",
            "json_escape",
            "Printf(TEXT(\"{",
            "8899",
        ] {
            assert!(
                !text.contains(hand_made),
                "the {name} snippet has {hand_made:?}"
            );
        }
    }
}
