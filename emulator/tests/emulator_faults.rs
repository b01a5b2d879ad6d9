//! The fault switchboard itself, on the wire: what a faulty self-stop and context route
//! answer (status, `Retry-After`, a hang's 504, a refused token), that each fault lasts the
//! number of calls asked, the admin route (`/emulator/v1/faults`: add, show, clear), and a
//! bad fault flag refused at start. `tests/emulator_faults.rs` at the workspace root runs the
//! real agent against each fault.

use std::time::Instant;

use edgegap_test_support::emulator::{request, Emu, Resp};
use edgegap_test_support::{Running, DEADLINE};
use serde_json::json;

const EMULATOR: &str = env!("CARGO_BIN_EXE_edgegap-emulator");

fn header<'a>(resp: &'a Resp, name: &str) -> Option<&'a str> {
    resp.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A deployment whose self-stop URL and token the test holds.
fn deployment(emu: &Emu) -> (String, String, String) {
    let id = emu.deploy_game(
        json!({}),
        &[
            "--print-env",
            "ARBITRIUM_DELETE_URL",
            "--print-env",
            "ARBITRIUM_DELETE_TOKEN",
        ],
    );
    emu.wait_status(&id, "Status.READY", DEADLINE);
    let url = emu.printed_env(&id, "ARBITRIUM_DELETE_URL");
    let path = url
        .strip_prefix(&format!("http://{}", emu.addr))
        .unwrap()
        .to_owned();
    let token = emu.printed_env(&id, "ARBITRIUM_DELETE_TOKEN");
    (id, path, token)
}

#[test]
fn self_stop_faults_answer_as_asked_for_as_many_calls_as_asked() {
    let emu = Emu::start(&[
        "--self-stop-fault",
        "status=429,retry-after=2,times=1",
        "--self-stop-fault",
        "refuse,times=1",
        "--self-stop-fault",
        "hang=300ms,times=1",
    ]);
    let (id, path, token) = deployment(&emu);
    let call = || {
        request(
            &emu.addr,
            "DELETE",
            &path,
            &[("authorization", &token)],
            None,
        )
    };
    let first = call();
    assert_eq!(first.status, 429, "{}", first.body);
    assert_eq!(header(&first, "retry-after"), Some("2"));
    assert!(first.message().contains("injected fault"));
    let second = call();
    assert_eq!(second.status, 401, "the right token, refused");
    let started = Instant::now();
    let third = call();
    assert_eq!(third.status, 504);
    assert!(started.elapsed().as_millis() >= 300, "held for the hang");
    let fourth = call();
    assert_eq!(
        fourth.status, 200,
        "the faults are used up: {}",
        fourth.body
    );
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
    let events = emu.events(&id);
    let faults = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "self_stop_fault")
        .count();
    assert_eq!(faults, 3, "{events}");
    assert_eq!(events["self_stop_calls"], 1);
}

#[test]
fn the_admin_route_adds_shows_and_clears_faults() {
    let emu = Emu::start(&[]);
    let resp = emu.call(
        "POST",
        "/emulator/v1/faults",
        Some(
            json!({"self_stop": ["status=503,times=2"], "context": "down",
                    "sigterm_delay": "1s", "kill_after": "2s"}),
        ),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    let shown = emu.call("GET", "/emulator/v1/faults", None).json();
    assert_eq!(
        shown["self_stop"],
        json!([{"fault": "status=503", "times": 2}])
    );
    assert_eq!(
        shown["context"],
        json!([{"fault": "status=503", "times": null}])
    );
    assert_eq!(shown["sigterm_delay_ms"], 1000);
    assert_eq!(shown["kill_after_ms"], 2000);
    let bad = emu.call(
        "POST",
        "/emulator/v1/faults",
        Some(json!({"self_stop": "explode"})),
    );
    assert_eq!(bad.status, 400);
    assert!(bad.message().starts_with("self_stop"), "{}", bad.body);
    assert_eq!(emu.call("DELETE", "/emulator/v1/faults", None).status, 204);
    let cleared = emu.call("GET", "/emulator/v1/faults", None).json();
    assert_eq!(cleared["self_stop"], json!([]));
    assert_eq!(cleared["sigterm_delay_ms"], json!(null));
    let unauthorized = request(&emu.addr, "GET", "/emulator/v1/faults", &[], None);
    assert_eq!(
        unauthorized.status, 401,
        "the operator key guards the switchboard"
    );
}

#[test]
fn a_bad_fault_flag_is_refused_at_start() {
    let mut command = std::process::Command::new(EMULATOR);
    command.args(["--listen", "127.0.0.1:0", "--self-stop-fault", "status=200"]);
    let mut emulator = Running::start(command);
    assert_eq!(emulator.exit_code(), 2);
    assert!(
        emulator.stderr().contains("status=200"),
        "{}",
        emulator.stderr()
    );
}
