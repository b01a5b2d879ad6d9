//! `edgegap-emulator --docker`: a version's image run with the Docker CLI, the fake game as
//! the container's PID 1 (a `FROM scratch` image of the static binary, built here). Needs a
//! Docker engine: built only with the `container-tests` feature, which `.ci/run` turns on.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgegap_test_support::emulator::{request, Emu};
use edgegap_test_support::{fake_game, scratch_dir, DEADLINE};
use serde_json::json;

fn docker(args: &[&str]) -> bool {
    Command::new("docker")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Builds `edgegap-emulator-test-game:<tag>` from the fake game.
fn fake_game_image(dir: &Path, tag: &str) -> String {
    assert!(docker(&["info"]), "no Docker engine answers `docker info`");
    std::fs::copy(fake_game(), dir.join("fake-game")).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY fake-game /fake-game\nENTRYPOINT [\"/fake-game\"]\n",
    )
    .unwrap();
    let image = format!("edgegap-emulator-test-game:{tag}");
    let built = Command::new("docker")
        .args(["build", "-q", "-t", &image])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    image
}

#[test]
fn a_docker_deployment_runs_the_image_and_stops_with_grace() {
    let dir = scratch_dir("docker-image");
    let tag = std::process::id().to_string();
    let image = fake_game_image(&dir, &tag);
    let emu = Emu::start(&["--docker"]);
    let app = emu.app_with_version(json!({
        "docker_repository": "local",
        "docker_image": "edgegap-emulator-test-game",
        "docker_tag": tag,
        "termination_grace_period_seconds": 5,
        "envs": [{"key": "SECRET", "value": "hidden-in-docker", "is_hidden": true}],
        // Arguments to the image's ENTRYPOINT (the fake game).
        "command": ["--print-env", "ARBITRIUM_DELETE_URL", "--print-env", "ARBITRIUM_DELETE_TOKEN",
                    "--print-env", "SECRET", "--record-signals", "-", "--on-term-exit", "0"],
    }));
    let id = emu.deploy(&app, json!({}));
    emu.wait_status(&id, "Status.READY", DEADLINE);
    assert_eq!(emu.printed_env(&id, "SECRET"), "hidden-in-docker");
    let url = emu.printed_env(&id, "ARBITRIUM_DELETE_URL");
    let token = emu.printed_env(&id, "ARBITRIUM_DELETE_TOKEN");
    let path = url.strip_prefix(&format!("http://{}", emu.addr)).unwrap();
    let resp = request(
        &emu.addr,
        "DELETE",
        path,
        &[("authorization", &token)],
        None,
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    emu.wait_status(&id, "Status.TERMINATED", DEADLINE);
    emu.wait_log_line(&id, "SIGTERM");
    assert_eq!(emu.logs(&id)["crash_data"]["exit_code"], 0);

    // A game that ignores SIGTERM is killed at the grace period.
    let stubborn = emu.app_with_version(json!({
        "docker_repository": "local",
        "docker_image": "edgegap-emulator-test-game",
        "docker_tag": tag,
        "termination_grace_period_seconds": 5,
        "command": ["--ignore-term"],
    }));
    let id = emu.deploy(&stubborn, json!({}));
    emu.wait_status(&id, "Status.READY", DEADLINE);
    // The game's own READY line: its SIGTERM handling is set up (the platform's READY, with
    // no port to check, can come first).
    emu.wait_log_line(&id, "READY");
    let asked = Instant::now();
    assert_eq!(
        emu.call("DELETE", &format!("/v1/stop/{id}"), None).status,
        200
    );
    emu.wait_status(&id, "Status.TERMINATED", Duration::from_secs(20));
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_millis(4900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(emu.logs(&id)["crash_data"]["exit_code"], 137);
    let name = format!("name=edgegap-emulator-{id}");
    let left = Command::new("docker")
        .args(["ps", "-aq", "--filter", &name])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "the container is removed");

    // An image that does not exist: Status.ERROR.
    let missing = emu.app_with_version(json!({
        "docker_repository": "local",
        "docker_image": "edgegap-emulator-test-no-such-image",
        "docker_tag": "0",
    }));
    let id = emu.deploy(&missing, json!({}));
    let status = emu.wait_status(&id, "Status.ERROR", DEADLINE);
    assert!(status["error_detail"]
        .as_str()
        .unwrap()
        .contains("docker run"));
    drop(emu);
    docker(&["rmi", "-f", &image]);
}
