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

/// Whether no container (running or stopped) has this name.
fn container_gone(name: &str) -> bool {
    let left = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("name={name}")])
        .output()
        .unwrap();
    left.stdout.is_empty()
}

#[test]
fn the_registry_lists_and_deletes_the_local_engines_tags() {
    let dir = scratch_dir("docker-registry");
    let tag = format!("registry-{}", std::process::id());
    let image = fake_game_image(&dir, &tag);
    // A second tag of the same artifact.
    let other = format!("{image}-copy");
    assert!(docker(&["tag", &image, &other]));
    let emu = Emu::start(&["--docker"]);
    let path = "/v1/container-registry/images/edgegap-emulator-test-game/tags";
    let listed = emu.call("GET", path, None).json();
    let find = |name: &str| -> serde_json::Value {
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tag"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("tag {name} not listed: {listed}"))
    };
    let ours = find(&tag);
    assert!(ours["artifact"]["image_hash"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(ours["artifact"]["size_mb"].as_f64().unwrap() > 0.0);
    let copy_tag = format!("{tag}-copy");
    assert!(ours["artifact"]["remaining_tags"]
        .as_array()
        .unwrap()
        .contains(&json!(copy_tag)));
    let resp = emu.call("DELETE", &format!("{path}/{copy_tag}"), None);
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(
        resp.json()["artifact"]["artifact_deleted"],
        false,
        "{tag} still holds it"
    );
    assert!(
        !docker(&["image", "inspect", &other]),
        "untagged in the engine"
    );
    let resp = emu.call(
        "POST",
        &format!("{path}/bulk-delete"),
        Some(json!({"tags": [tag, "no-such-tag"]})),
    );
    assert_eq!(resp.status, 207, "{}", resp.body);
    assert_eq!(resp.json()["summary"]["success"], 1);
    assert!(
        !docker(&["image", "inspect", &image]),
        "deleted in the engine"
    );
}

#[test]
fn the_quick_start_runs_an_image_with_docker() {
    let dir = scratch_dir("docker-quickstart");
    let tag = format!("quick-{}", std::process::id());
    let image = fake_game_image(&dir, &tag);
    let mut command = Command::new(edgegap_test_support::emulator_binary());
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--docker",
        "--restart-policy",
        "never",
        "--",
        &image,
        "--print-env",
        "ARBITRIUM_REQUEST_ID",
        "--run-ms",
        "100",
        "--exit",
        "4",
    ]);
    let mut quick = edgegap_test_support::Running::start(command);
    quick.wait_lines(&["ENV ARBITRIUM_REQUEST_ID=", "READY pid="]);
    assert_eq!(quick.exit_code(), 4, "{}", quick.stderr());
    docker(&["rmi", "-f", &image]);
}

#[test]
fn a_sigkilled_emulator_leaves_no_container_behind() {
    let dir = scratch_dir("docker-guard");
    let tag = format!("guard-{}", std::process::id());
    let image = fake_game_image(&dir, &tag);
    let mut emu = Emu::start(&["--docker"]);
    let app = emu.app_with_version(json!({
        "docker_repository": "local",
        "docker_image": "edgegap-emulator-test-game",
        "docker_tag": tag,
        "command": ["--ignore-term"],
    }));
    let id = emu.deploy(&app, json!({}));
    emu.wait_status(&id, "Status.READY", DEADLINE);
    emu.wait_log_line(&id, "READY");
    let name = format!("edgegap-emulator-{id}");
    assert!(!container_gone(&name));
    emu.process.signal(nix::sys::signal::Signal::SIGKILL);
    emu.process.wait_exit(DEADLINE);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !container_gone(&name) {
        assert!(
            Instant::now() < deadline,
            "container {name} outlived the emulator"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    docker(&["rmi", "-f", &image]);
}
