//! The agent as the entrypoint of real containers, on a real Docker engine (`--features
//! container-tests`; `.ci/run` runs them and fails without an engine). Images are built from the
//! host-built static binaries, FROM scratch or FROM a debootstrap'ed Debian (the stand-in for
//! Unity/Unreal server images): `docker stop` and the grace period, `docker run` arguments
//! adding to the example image's own, `--restart on-failure` and the exit-code policy, zombie
//! reaping as the container's PID 1.
//!
//! Needs the release binaries and the example: `cargo build --release --features
//! container-tests --bins --examples`, then `cargo test --release --features container-tests
//! --test containers`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use support::docker::{
    debian_image, docker, docker_ok, require_engine, unique, wait_until_slow, Container, Image,
};
use support::AGENT;

/// Bound for a container to get going or settle: generous for a loaded CI machine.
const SETTLE: Duration = Duration::from_secs(30);

/// Sends one line to the example game over TCP (the container's bridge address) and returns
/// the reply line.
fn tell_game(container: &Container, line: &str) -> String {
    let ip = container.inspect("{{.NetworkSettings.IPAddress}}");
    let mut stream = TcpStream::connect((ip.as_str(), 7777)).expect("connect to the game");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    writeln!(stream, "{line}").unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    reply.trim().to_owned()
}

#[test]
fn docker_stop_reaches_the_example_game_which_saves_and_exits_0_in_time() {
    require_engine();
    let image = Image::example_game();
    let game = Container::run(
        "stop-example",
        &[&image.name, "--port", "7777", "--save-file", "/save.txt"],
    );
    game.wait_logs("[game] READY", 1, SETTLE);
    // The game reached its agent's API (bound before the game started) and said it is ready.
    assert!(
        game.logs().contains("[game] ready: agent answered 202"),
        "{}",
        game.logs()
    );
    assert!(
        game.logs().contains("the game server says it is ready"),
        "{}",
        game.logs()
    );
    assert_eq!(tell_game(&game, "PING"), "PONG");
    assert_eq!(tell_game(&game, "JOIN alice"), "OK joined alice");
    // The same commands work over UDP, one per datagram.
    let udp = UdpSocket::bind("0.0.0.0:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let ip = game.inspect("{{.NetworkSettings.IPAddress}}");
    udp.send_to(b"JOIN bob", (ip.as_str(), 7777)).unwrap();
    let mut reply = [0u8; 64];
    let n = udp.recv(&mut reply).unwrap();
    assert_eq!(&reply[..n], b"OK joined bob\n");
    assert_eq!(tell_game(&game, "LEAVE bob"), "OK left bob");

    let took = game.stop(5);
    let logs = game.logs();
    assert_eq!(game.exit_code(), 0, "{logs}");
    assert!(
        took < Duration::from_secs(4),
        "docker stop took {took:?}: {logs}"
    );
    assert!(
        logs.contains("[game] SIGTERM received: saving and exiting"),
        "{logs}"
    );
    assert!(logs.contains("[game] SAVED"), "{logs}");
    // What the game saved on SIGTERM is in the stopped container.
    let saved = std::env::temp_dir().join(unique("save"));
    docker_ok(&[
        "cp",
        &format!("{}:/save.txt", game.name),
        saved.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&saved).unwrap();
    let _ = std::fs::remove_file(&saved);
    assert!(text.contains("players=alice"), "{text}");
}

/// The image's ENTRYPOINT holds the game's fixed arguments, so `docker run <image> ARGS` adds
/// ARGS to them: `--match-duration 5s` keeps the image's `--heartbeat 5s` (a CMD would have been
/// replaced, and the heartbeats silently dropped).
#[test]
fn docker_run_arguments_add_to_the_example_games_own_and_keep_its_heartbeat() {
    require_engine();
    let image = Image::example_game();
    let game = Container::run(
        "run-args",
        &[
            "-e",
            "EDGEGAP_AGENT_LOG=debug",
            &image.name,
            "--match-duration",
            "5s",
        ],
    );
    assert_eq!(
        game.inspect("{{json .Path}} {{json .Args}}"),
        r#""/edgegap-agent" ["--","/game/server","--port","7777","--heartbeat","5s","--match-duration","5s"]"#
    );
    // The agent hears the game's heartbeats, and the match ends after the 5 s asked for.
    game.wait_logs("heartbeat from the game server", 1, SETTLE);
    game.wait_logs("[game] MATCH OVER (the match time is up)", 1, SETTLE);
    game.wait_exited(SETTLE);
    let logs = game.logs();
    assert_eq!(game.exit_code(), 0, "{logs}");
    assert!(logs.contains("[game] SAVED"), "{logs}");
}

#[test]
fn docker_stop_of_a_game_that_dies_of_sigterm_exits_143_or_as_mapped() {
    require_engine();
    let image = Image::with_games("stop-fake", "scratch");
    let game = ["--", "/game/fake-game", "--record-signals", "-"];
    let plain = Container::run("stop-143", &[&[image.name.as_str()][..], &game].concat());
    let mapped = Container::run(
        "stop-mapped",
        &[
            &[
                "-e",
                "EDGEGAP_AGENT_EXIT_CODE_MAP=143=0",
                image.name.as_str(),
            ][..],
            &game,
        ]
        .concat(),
    );
    for container in [&plain, &mapped] {
        container.wait_logs("READY pid=", 1, SETTLE);
    }
    for (container, expected) in [(&plain, 143), (&mapped, 0)] {
        let took = container.stop(5);
        let logs = container.logs();
        assert_eq!(container.exit_code(), expected, "{logs}");
        assert!(took < Duration::from_secs(4), "took {took:?}: {logs}");
        // The fake game recorded the forwarded signal before dying of it.
        assert!(logs.lines().any(|l| l == "SIGTERM"), "{logs}");
    }
}

#[test]
fn a_game_that_ignores_sigterm_is_killed_by_the_agent_before_dockers_own_sigkill() {
    require_engine();
    let image = Image::example_game();
    let game = Container::run(
        "ignore-term",
        &[
            "-e",
            "EDGEGAP_AGENT_GRACE_PERIOD=4s",
            "-e",
            "EDGEGAP_AGENT_KILL_MARGIN=1s",
            "-e",
            "EDGEGAP_AGENT_EXIT_CODE_MAP=",
            &image.name,
            "--ignore-term",
        ],
    );
    game.wait_logs("[game] READY", 1, SETTLE);
    // Docker would SIGKILL at 10 s; the agent kills the game at 4 s - 1 s = 3 s and exits 137.
    let took = game.stop(10);
    let logs = game.logs();
    assert_eq!(game.exit_code(), 137, "{logs}");
    assert!(
        took >= Duration::from_millis(2800) && took < Duration::from_secs(8),
        "docker stop took {took:?}, expected about 3 s: {logs}"
    );
    assert!(
        logs.contains("[game] SIGTERM received: ignoring it"),
        "{logs}"
    );
    assert!(logs.contains("grace period over"), "{logs}");
}

#[test]
fn restart_on_failure_restarts_crashes_but_a_finished_match_ends_the_container() {
    require_engine();
    let image = Image::with_games("restart", "scratch");
    let policy = ["--restart", "on-failure:3", image.name.as_str()];
    let agent = ["--on-exit", "0=stop,*=exit", "--", "/game/server"];
    let crashing = Container::run(
        "crash",
        &[
            &policy[..],
            &agent,
            &["--exit-after", "100ms", "--exit-code", "3"],
        ]
        .concat(),
    );
    // The match ends after 1 s: the game tells its agent, which ends the match (self-stop is
    // "not configured" in local mode, so the agent stops the game itself and exits 0); the
    // game saves on SIGTERM and exits 0, and the platform's on-failure policy ends there.
    let finishing = Container::run(
        "finish",
        &[&policy[..], &agent, &["--match-duration", "1s"]].concat(),
    );

    assert!(
        wait_until_slow(SETTLE, || crashing.inspect("{{.RestartCount}}") == "3"
            && crashing.status() == "exited"),
        "restart count {} status {}; logs:\n{}",
        crashing.inspect("{{.RestartCount}}"),
        crashing.status(),
        crashing.logs()
    );
    let logs = crashing.logs();
    assert_eq!(crashing.exit_code(), 3, "{logs}");
    assert_eq!(
        logs.matches("[game] exiting with code 3").count(),
        4,
        "{logs}"
    );

    finishing.wait_exited(SETTLE);
    let logs = finishing.logs();
    assert_eq!(finishing.exit_code(), 0, "{logs}");
    assert_eq!(finishing.inspect("{{.RestartCount}}"), "0", "{logs}");
    assert!(
        logs.contains("[game] MATCH OVER (the match time is up)"),
        "{logs}"
    );
    assert!(
        logs.contains("match ended: the game ended the match: the match time is up"),
        "{logs}"
    );
    assert!(logs.contains("[game] SAVED"), "{logs}");
}

#[test]
fn as_the_containers_pid_1_the_agent_reaps_every_orphan() {
    require_engine();
    let orphans = 200;
    let image = Image::with_games("zombies", "scratch");
    let game = Container::run(
        "zombies",
        &[
            &image.name,
            "--log-level",
            "debug",
            "--",
            "/game/fake-game",
            "--orphans",
            &orphans.to_string(),
            "--orphan-ms",
            "200",
        ],
    );
    game.wait_logs("ORPHANED 200", 1, SETTLE);
    // The orphans existed and were re-parented to the agent, PID 1 of the container.
    game.wait_logs("running as PID 1", 1, SETTLE);
    game.wait_logs("reaped an orphaned process", orphans, SETTLE);
    // What is left is the agent and the game: no zombie.
    assert!(
        wait_until_slow(SETTLE, || {
            let processes = game.processes();
            processes.len() == 2 && processes.iter().all(|(_, stat)| !stat.starts_with('Z'))
        }),
        "processes in the container: {:?}",
        game.processes()
    );
    assert_eq!(
        game.logs().matches("reaped an orphaned process").count(),
        orphans
    );
    game.stop(5);
    assert_eq!(game.exit_code(), 143, "{}", game.logs());
}

/// Runs the same three scenarios in `image` and returns their exit codes: a crash code passed
/// through, a game that dies of `docker stop`'s SIGTERM, the example game saving on SIGTERM.
fn exit_codes_in(image: &Image) -> [i32; 3] {
    let crash = Container::run(
        "crash",
        &[
            &image.name,
            "--on-exit",
            "*=exit",
            "--",
            "/game/server",
            "--exit-after",
            "100ms",
            "--exit-code",
            "3",
        ],
    );
    let dies = Container::run(
        "dies",
        &[
            &image.name,
            "--",
            "/game/fake-game",
            "--record-signals",
            "-",
        ],
    );
    let saves = Container::run("saves", &[&image.name, "--", "/game/server"]);
    dies.wait_logs("READY pid=", 1, SETTLE);
    saves.wait_logs("[game] READY", 1, SETTLE);
    dies.stop(5);
    saves.stop(5);
    crash.wait_exited(SETTLE);
    assert!(saves.logs().contains("[game] SAVED"), "{}", saves.logs());
    [crash.exit_code(), dies.exit_code(), saves.exit_code()]
}

#[test]
fn the_same_static_agent_behaves_the_same_in_debian_and_in_scratch() {
    require_engine();
    let debian = Image::with_games("debian", debian_image());
    // It is a real Debian userland, unlike scratch.
    let version = docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/cat",
        &debian.name,
        "/etc/debian_version",
    ]);
    assert!(version.starts_with("12."), "{version}");
    let scratch = Image::with_games("scratch", "scratch");
    assert!(!docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/cat",
        &scratch.name,
        "/etc/debian_version"
    ])
    .status
    .success());

    assert_eq!(exit_codes_in(&debian), [3, 143, 0]);
    assert_eq!(exit_codes_in(&scratch), [3, 143, 0]);
}

#[test]
fn the_agent_image_holds_only_the_static_binary() {
    require_engine();
    let image = Image::agent();
    let binary = std::fs::metadata(Path::new(AGENT)).unwrap().len();
    let size = image.size_bytes();
    eprintln!("agent image {}: {size} bytes (binary {binary})", image.name);
    assert!(
        size >= binary && size - binary < 64 * 1024,
        "image {size} bytes, binary {binary}"
    );
    // It runs with nothing else in the image: the agent's own --version.
    let version = docker_ok(&["run", "--rm", &image.name, "--version"]);
    assert!(version.starts_with("edgegap-agent "), "{version}");
    let example = Image::example_game();
    eprintln!(
        "example game image {}: {} bytes",
        example.name,
        example.size_bytes()
    );
}
