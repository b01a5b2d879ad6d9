//! The emulator's live systems with real processes: metrics sampled from a deployment that
//! burns CPU and receives bytes through its forwarded port; private-fleet capacity taken,
//! overflowing to the cloud location, and given back; and the guard: a SIGKILLed emulator
//! leaves no game (nor the game's own child) behind.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use edgegap_test_support::emulator::{free_port, Emu};
use edgegap_test_support::{fake_game, scratch_dir, wait_until, DEADLINE};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

fn numbers(series: &Value) -> Vec<f64> {
    series["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().parse::<f64>().unwrap())
        .collect()
}

#[test]
fn metrics_are_sampled_from_the_deployments_processes_and_traffic() {
    let emu = Emu::start(&["--metrics-interval", "100ms"]);
    let port = free_port();
    // A shell that burns a CPU (shared with other work: at least 10% of one is asked), with the fake game (its child) accepting on the web port.
    let script = format!(
        "{} --listen-tcp-env ARBITRIUM_PORT_WEB_INTERNAL & while :; do :; done",
        fake_game()
    );
    let app = emu.app_with_version(json!({
        "command": ["/bin/sh", "-c", script],
        "ports": [{"port": port, "protocol": "TCP", "name": "web"}],
    }));
    let id = emu.deploy(&app, json!({}));
    let status = emu.wait_status(&id, "Status.READY", DEADLINE);
    let external = status["ports"]["web"]["external"].as_u64().unwrap() as u16;
    let mut player = TcpStream::connect(("127.0.0.1", external)).unwrap();
    // The game accepts and never reads: 8 KiB fit in any loopback socket buffer.
    player.write_all(&[7u8; 8_192]).unwrap();

    let path = format!("/v1/metrics/deployment/{id}?raw=true");
    let mut metrics = Value::Null;
    let sampled = wait_until(DEADLINE, || {
        metrics = emu.call("GET", &path, None).json();
        let received = numbers(&metrics["total"]["receive_total"]);
        let cpu = numbers(&metrics["cpu"]);
        received.last().is_some_and(|r| *r >= 8_192.0) && cpu.iter().any(|c| *c >= 10.0)
    });
    assert!(sampled, "the busy loop and the 8 KiB show: {metrics:#}");
    assert!(
        numbers(&metrics["mem"]).iter().all(|m| *m > 0.0),
        "{metrics:#}"
    );
    assert!(
        numbers(&metrics["network"]["receive"])
            .iter()
            .any(|r| *r > 0.0),
        "a receive rate: {metrics:#}"
    );
    let raw_points = metrics["cpu"]["datasets"].as_array().unwrap().len();
    assert!(raw_points >= 2);

    // Averaged over steps, and limited to the window asked for.
    let stepped = emu
        .call(
            "GET",
            &format!("/v1/metrics/deployment/{id}?steps=1h"),
            None,
        )
        .json();
    assert_eq!(
        stepped["cpu"]["datasets"].as_array().unwrap().len(),
        1,
        "one step"
    );
    let cpu = numbers(&metrics["cpu"]);
    let mean = cpu.iter().sum::<f64>() / cpu.len() as f64;
    let averaged = numbers(&stepped["cpu"])[0];
    assert!(
        (averaged - mean).abs() < 30.0,
        "{averaged} vs {mean}: the raw samples' mean, roughly"
    );
    let before = "2001-01-01 00:00:00.00";
    let empty = emu
        .call(
            "GET",
            &format!(
                "/v1/metrics/deployment/{id}?start_time={}&end_time={}",
                before.replace(' ', "%20"),
                "2001-01-02%2000:00:00.00"
            ),
            None,
        )
        .json();
    assert!(
        empty["cpu"]["datasets"].as_array().unwrap().is_empty(),
        "nothing sampled in 2001"
    );
    emu.call("DELETE", &format!("/v1/stop/{id}"), None);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
}

#[test]
fn private_hosts_lend_their_capacity_and_overflow_to_the_cloud() {
    let emu = Emu::start(&["--private-host", "fleet-a/small:300:600"]);
    let app = emu.app_with_version(json!({}));
    let deploy = |emu: &Emu| {
        let body = json!({"application": app, "version": "v", "private_host_ids": ["small"]});
        let resp = emu.call("POST", "/v2/private-fleets:deploy", Some(body));
        assert_eq!(resp.status, 202, "{}", resp.body);
        resp.json()["request_id"].as_str().unwrap().to_owned()
    };
    let hosts = |emu: &Emu| {
        emu.call("GET", "/v2/private-fleets/fleet-a/hosts", None)
            .json()
    };
    let first = deploy(&emu);
    assert_eq!(emu.events(&first)["host_id"], "small");
    assert_eq!(hosts(&emu)["data"][0]["allocated_cpu_units"], 256);
    assert_eq!(hosts(&emu)["data"][0]["allocated_memory_mb"], 512);
    // No room left for another 256 units: the second overflows to the cloud location.
    let second = deploy(&emu);
    assert_eq!(emu.events(&second)["host_id"], Value::Null);
    assert_eq!(emu.status(&second)["location"]["city"], "Localhost");
    assert_eq!(emu.status(&first)["location"]["city"], "small");
    emu.call("DELETE", &format!("/v1/stop/{first}"), None);
    emu.wait_status(&first, "Status.TERMINATED", DEADLINE);
    assert_eq!(
        hosts(&emu)["data"][0]["allocated_cpu_units"],
        0,
        "given back"
    );
    let third = deploy(&emu);
    assert_eq!(emu.events(&third)["host_id"], "small");
    for id in [&second, &third] {
        emu.call("DELETE", &format!("/v1/stop/{id}"), None);
    }
}

/// Gone: no such process, or a zombie only waiting for init to reap it.
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn pid_in(line: &str) -> i32 {
    line.rsplit("pid=").next().unwrap().trim().parse().unwrap()
}

#[test]
fn a_sigkilled_emulator_leaves_no_game_behind() {
    let mut emu = Emu::start(&[]);
    let record = scratch_dir("guard").join("signals");
    let record = record.to_str().unwrap();
    let id = emu.deploy_game(json!({}), &["--grandchild", "--record-signals", record]);
    let game = pid_in(&emu.wait_log_line(&id, "READY pid="));
    let grandchild = pid_in(&emu.wait_log_line(&id, "GRANDCHILD-READY pid="));
    assert!(!gone(game) && !gone(grandchild));
    emu.process.signal(Signal::SIGKILL);
    emu.process.wait_exit(DEADLINE);
    let ended = wait_until(Duration::from_secs(10), || gone(game) && gone(grandchild));
    assert!(
        ended,
        "game {game} and its child {grandchild} outlived the emulator"
    );
    assert!(
        emu.process.stderr().contains("guard: the emulator is gone"),
        "{}",
        emu.process.stderr()
    );
}
