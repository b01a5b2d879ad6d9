//! Log lines cannot be forged, black box, in text and JSON: a match-end reason, a player id,
//! a platform's error body and a pre-stop hook's output, each carrying a newline followed by a
//! fake agent line, carriage returns, ANSI escape sequences, Unicode line separators and
//! bidirectional overrides (and invalid UTF-8 where the channel can carry it), reach the
//! agent's log; every byte the agent writes on stderr is then valid UTF-8, every line is one
//! of its own (text: the marker and a real timestamp; JSON: one object), no line carries a
//! control character, and the forged text is there, escaped, inside its one line.

#[path = "support/fake_platform.rs"]
mod fake_platform;
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use fake_platform::{on_own_runtime, FakePlatform, Reply};
use support::{agent_command, scratch_dir, DEADLINE, FAKE_GAME};

/// A match-end reason (as JSON escapes): a newline and a fake agent ERROR line, a carriage
/// return, ANSI sequences that clear the screen and colour the rest.
const REASON_JSON: &str = r"blue won\n[edgegap-agent] 2020-01-01T00:00:00.000000Z ERROR forged reason line\r\u001b[2J\u001b[31mred";
const REASON: &str = "blue won\n[edgegap-agent] 2020-01-01T00:00:00.000000Z ERROR forged reason line\r\u{1b}[2J\u{1b}[31mred";
/// A player id with a line separator and a right-to-left override (control characters are
/// refused in ids: see `api_post_routes.rs`).
const PLAYER_JSON: &str = r"p1\u2028[edgegap-agent] forged id\u202e";
const PLAYER: &str = "p1\u{2028}[edgegap-agent] forged id\u{202e}";
/// The platform's answer to the self-stop: a fake line, ANSI, and bytes that are not UTF-8.
const PLATFORM_BODY: &[u8] =
    b"denied\n[edgegap-agent] 2020-01-01T00:00:00.000000Z ERROR forged platform line\r\x1b[31m\xff\xfe end";
/// The pre-stop hook (`printf`, words split on spaces, so `\040` is a space): an ANSI line
/// ending in a carriage return, then a fake agent line with a byte that is not UTF-8.
const HOOK: &str = r"printf \033[31mhook-red\r\n[edgegap-agent]\040forged\040hook\040line\377\n";

/// Runs one scenario in `format`; returns everything the agent wrote on stderr, raw.
fn scenario(format: &str) -> Vec<u8> {
    let (_runtime, platform) = on_own_runtime(FakePlatform::start);
    platform.set_default(Reply::Bytes(401, PLATFORM_BODY.to_vec()));
    let dir = scratch_dir(&format!("forgery-{format}"));
    let stderr_path = dir.join("stderr");
    let trigger = dir.join("trigger");
    let mut child = agent_command()
        .env("ARBITRIUM_REQUEST_ID", "a1b2c3d4e5f6")
        .env(
            "ARBITRIUM_DELETE_URL",
            platform.url("/v1/self/stop/a1b2c3d4e5f6/ap-1"),
        )
        .env("ARBITRIUM_DELETE_TOKEN", "dlt-forgery-test")
        .args([
            "--log-level=debug",
            &format!("--log-format={format}"),
            "--self-stop-max-attempts=1",
            "--grace-period=5s",
            "--pre-stop",
            HOOK,
            "--",
            FAKE_GAME,
            "--print-env",
            "EDGEGAP_AGENT_URL",
            "--api-calls-after",
            trigger.to_str().unwrap(),
            "--api-call",
            &format!(r#"POST:/v1/players/connect:{{"id":"{PLAYER_JSON}"}}"#),
            "--api-call",
            &format!(r#"POST:/v1/match/end:{{"reason":"{REASON_JSON}"}}"#),
            "--on-term-exit",
            "0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = stdout.next().expect("the game printed its URL").unwrap();
        if let Some(url) = line.strip_prefix("ENV EDGEGAP_AGENT_URL=") {
            break url.to_owned();
        }
    };
    let api = http::addr_of(&url);
    // Bodies that are not UTF-8 are refused whole: nothing of them is sent on or logged.
    for (path, body) in [
        ("/v1/match/end", &b"{\"reason\":\"\xff\xfe\n\x1b[31m\"}"[..]),
        ("/v1/players/connect", &b"{\"id\":\"\xc3\x28\"}"[..]),
    ] {
        let reply = http::call(api, "POST", path, &[], body).unwrap();
        assert_eq!(reply.status, 400, "{path}: {}", reply.body);
    }
    std::fs::write(&trigger, b"go").unwrap();
    let answers: Vec<String> = stdout.map_while(Result::ok).collect();
    let status = support::wait_until(DEADLINE, || child.try_wait().unwrap().is_some());
    assert!(status, "the agent did not exit");
    let answers = answers.join("\n");
    assert!(
        answers.contains("API POST /v1/players/connect -> 200"),
        "{answers}"
    );
    assert!(
        answers.contains("API POST /v1/match/end -> 202"),
        "{answers}"
    );
    std::fs::read(&stderr_path).unwrap()
}

/// A line may carry no control character and no line or paragraph separator.
fn assert_clean(line: &str) {
    let bad =
        |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}');
    assert!(
        !line.chars().any(bad),
        "a raw control character in {line:?}"
    );
}

#[test]
fn forged_text_stays_inside_its_one_text_line() {
    let raw = scenario("text");
    let log = String::from_utf8(raw).expect("the agent wrote invalid UTF-8");
    for line in log.lines() {
        assert_clean(line);
        // `[edgegap-agent] <timestamp of today> <LEVEL> ...`, never the forged 2020 one.
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some("[edgegap-agent]"), "{line:?}");
        let timestamp = words.next().unwrap_or_default();
        assert!(
            timestamp.ends_with('Z') && !timestamp.starts_with("2020"),
            "{line:?}"
        );
        let level = words.next().unwrap_or_default();
        assert!(
            ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level),
            "{line:?}"
        );
    }
    // Each forged text reached the log, escaped, inside a line of the agent's.
    for expected in [
        r"match ended: the game ended the match: blue won\n[edgegap-agent] 2020-01-01T00:00:00.000000Z ERROR forged reason line\r\u{1b}[2J\u{1b}[31mred",
        r#"reason="blue won\n[edgegap-agent] 2020-01-01T00:00:00.000000Z ERROR forged reason line\r\u{1b}[2J\u{1b}[31mred""#,
        r"player=p1\u{2028}[edgegap-agent] forged id\u{202e}",
        "denied\\n[edgegap-agent] 2020-01-01T00:00:00.000000Z ERROR forged platform line\\r\\u{1b}[31m\u{fffd}\u{fffd} end",
        r#"source="pre-stop" line=\u{1b}[31mhook-red"#,
        "line=[edgegap-agent] forged hook line\u{fffd}",
    ] {
        assert!(
            log.lines().any(|line| line.contains(expected)),
            "{expected:?} is not in one line of:\n{log}"
        );
    }
}

#[test]
fn forged_text_stays_inside_its_one_json_line() {
    let raw = scenario("json");
    let log = String::from_utf8(raw).expect("the agent wrote invalid UTF-8");
    let mut events = Vec::new();
    for line in log.lines() {
        assert_clean(line);
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line:?}"));
        assert!(
            event["timestamp"].is_string() && event["level"].is_string(),
            "{line}"
        );
        assert!(
            event["target"]
                .as_str()
                .unwrap()
                .starts_with("edgegap_agent"),
            "{line}"
        );
        events.push(event);
    }
    // The forged texts are kept exactly, as strings inside their event.
    let has = |field: &str, value: &str| events.iter().any(|e| e[field] == value);
    assert!(has("reason", REASON), "{log}");
    assert!(has("player", PLAYER), "{log}");
    assert!(has("line", "\u{1b}[31mhook-red"), "{log}");
    assert!(
        has("line", "[edgegap-agent] forged hook line\u{fffd}"),
        "{log}"
    );
    assert!(
        events.iter().any(|e| e["body"]
            .as_str()
            .is_some_and(|b| b.contains("ERROR forged platform line\r\u{1b}[31m\u{fffd}\u{fffd}"))),
        "{log}"
    );
}
