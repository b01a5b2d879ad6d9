//! The platform side of the real binary, black box. `edgegap-agent self-stop` against a fake
//! platform, with the platform's variables set on the child only: each documented exit code,
//! and the token never in what the agent prints. Wrap mode: malformed metadata is a warning
//! and the game still runs; local mode is said once.

#[path = "support/fake_platform.rs"]
mod fake_platform;

use std::process::{Command, Output};

use fake_platform::{FakePlatform, Reply};

const TOKEN: &str = "cli-token-Qw7-must-not-appear";
const PATH: &str = "/v1/self/stop/c0653765de3b/ap-9";

/// Runs `edgegap-agent self-stop ARGS` with exactly `vars` as its environment.
async fn self_stop(vars: &[(&str, String)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_edgegap-agent"));
    command.env_clear().arg("self-stop").args(args);
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!all.contains(TOKEN), "the token leaked:\n{all}");
    output
}

fn platform_vars(fake: &FakePlatform) -> Vec<(&'static str, String)> {
    vec![
        ("ARBITRIUM_REQUEST_ID", "c0653765de3b".to_owned()),
        ("ARBITRIUM_DELETE_URL", fake.url(PATH)),
        ("ARBITRIUM_DELETE_TOKEN", TOKEN.to_owned()),
    ]
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const FAST: &[&str] = &[
    "--self-stop-max-attempts=3",
    "--self-stop-initial-backoff=10ms",
    "--self-stop-max-backoff=20ms",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_and_already_gone_exit_0() {
    for (reply, words) in [(200, "accepted"), (202, "accepted"), (404, "already gone")] {
        let fake = FakePlatform::start().await;
        fake.set_default(Reply::Status(reply));
        let output = self_stop(&platform_vars(&fake), &[]).await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "{reply}: {}",
            stderr(&output)
        );
        assert!(stderr(&output).contains(words), "{}", stderr(&output));
        let requests = fake.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(
            (requests[0].method.as_str(), requests[0].path.as_str()),
            ("DELETE", PATH)
        );
        assert_eq!(requests[0].header("authorization"), Some(TOKEN.as_bytes()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_exits_77_without_retry() {
    let fake = FakePlatform::start().await;
    fake.set_default(Reply::Status(401));
    let output = self_stop(&platform_vars(&fake), &[]).await;
    assert_eq!(output.status.code(), Some(77), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("status 401"),
        "{}",
        stderr(&output)
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_up_exits_69_after_the_configured_attempts() {
    let fake = FakePlatform::start().await;
    fake.set_default(Reply::Status(503));
    let output = self_stop(&platform_vars(&fake), FAST).await;
    assert_eq!(output.status.code(), Some(69), "{}", stderr(&output));
    assert_eq!(fake.requests().len(), 3);
    let text = stderr(&output);
    for expected in [
        "attempt=1",
        "attempt=2",
        "attempt=3",
        "status 503",
        "next_delay_ms",
    ] {
        assert!(text.contains(expected), "{expected}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_env_twins_set_the_policy() {
    let fake = FakePlatform::start().await;
    fake.set_default(Reply::Status(500));
    let mut vars = platform_vars(&fake);
    vars.push(("EDGEGAP_AGENT_SELF_STOP_MAX_ATTEMPTS", "2".to_owned()));
    vars.push(("EDGEGAP_AGENT_SELF_STOP_INITIAL_BACKOFF", "5ms".to_owned()));
    let output = self_stop(&vars, &[]).await;
    assert_eq!(output.status.code(), Some(69), "{}", stderr(&output));
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_configured_exits_64_naming_the_variables() {
    let output = self_stop(&[], &[]).await;
    assert_eq!(output.status.code(), Some(64));
    let text = stderr(&output);
    assert!(
        text.contains(
            "not configured (local mode): ARBITRIUM_DELETE_URL and ARBITRIUM_DELETE_TOKEN are not set"
        ),
        "{text}"
    );

    let vars = [
        ("ARBITRIUM_DELETE_URL", "not-a-url".to_owned()),
        ("ARBITRIUM_DELETE_TOKEN", TOKEN.to_owned()),
    ];
    let output = self_stop(&vars, &[]).await;
    assert_eq!(output.status.code(), Some(64));
    assert!(
        stderr(&output)
            .contains("ARBITRIUM_DELETE_URL=\"not-a-url\": expected an http:// or https:// URL"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_exit_64_naming_the_flag() {
    let vars = [("EDGEGAP_AGENT_SELF_STOP_DEADLINE", "1s".to_owned())];
    let output = self_stop(&vars, &[]).await;
    assert_eq!(output.status.code(), Some(64));
    assert!(
        stderr(&output).contains(
            "--self-stop-attempt-timeout (5s) must not be longer than --self-stop-deadline (1s)"
        ),
        "{}",
        stderr(&output)
    );

    let output = self_stop(&[], &["--self-stop-max-attempts=many"]).await;
    assert_eq!(output.status.code(), Some(64));
    assert!(stderr(&output).contains("many"), "{}", stderr(&output));

    let fake = FakePlatform::start().await;
    let output = self_stop(&platform_vars(&fake), &["--ca-file=/nonexistent/ca.pem"]).await;
    assert_eq!(output.status.code(), Some(64));
    assert!(
        stderr(&output).contains("--ca-file /nonexistent/ca.pem: cannot read it"),
        "{}",
        stderr(&output)
    );
    assert_eq!(fake.requests().len(), 0);
}

/// A bad CA file set by `EDGEGAP_AGENT_CA_FILE` is an error naming the variable as well as
/// the flag, the path and what is wrong with it; set by the flag, only the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_ca_file_from_the_environment_names_the_variable() {
    let fake = FakePlatform::start().await;
    let from_variable = "(the value came from the environment variable EDGEGAP_AGENT_CA_FILE)";
    let not_pem = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    for (path, problem) in [
        (
            "/nonexistent/ca.pem",
            "cannot read it: No such file or directory",
        ),
        (not_pem, "expected PEM certificates (no certificate found)"),
    ] {
        let mut vars = platform_vars(&fake);
        vars.push(("EDGEGAP_AGENT_CA_FILE", path.to_owned()));
        let output = self_stop(&vars, &[]).await;
        assert_eq!(output.status.code(), Some(64));
        let text = stderr(&output);
        assert!(
            text.contains(&format!("--ca-file {path} {from_variable}: {problem}")),
            "{text}"
        );

        // The flag wins over the variable, and the error is about the flag's value.
        let output = self_stop(&vars, &[&format!("--ca-file={path}")]).await;
        assert_eq!(output.status.code(), Some(64));
        let text = stderr(&output);
        assert!(
            text.contains(&format!("--ca-file {path}: {problem}")),
            "{text}"
        );
        assert!(!text.contains("EDGEGAP_AGENT_CA_FILE"), "{text}");
    }
    assert_eq!(fake.requests().len(), 0);

    // Wrap mode: the same error, and the game never starts.
    let output = Command::new(env!("CARGO_BIN_EXE_edgegap-agent"))
        .env_clear()
        .env("EDGEGAP_AGENT_CA_FILE", "/nonexistent/ca.pem")
        .args(["--", "/bin/sh", "-c", "echo GAME-STARTED"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let text = stderr(&output);
    assert!(
        text.contains(&format!(
            "--ca-file /nonexistent/ca.pem {from_variable}: cannot read it"
        )),
        "{text}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("GAME-STARTED"));
}

/// Wrap mode: malformed metadata is a warning naming the variable, and the game still runs.
#[test]
fn malformed_metadata_does_not_stop_the_game() {
    let output = Command::new(env!("CARGO_BIN_EXE_edgegap-agent"))
        .env_clear()
        .env("ARBITRIUM_REQUEST_ID", "c0653765de3b")
        .env("ARBITRIUM_DEPLOYMENT_VCPU_UNITS", "lots")
        .env("ARBITRIUM_PORTS_MAPPING", "{broken")
        .env("ARBITRIUM_DELETE_TOKEN", TOKEN)
        .args(["--", env!("CARGO_BIN_EXE_fake-game"), "--exit", "3"])
        .output()
        .unwrap();
    let text = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(3),
        "the game ran and its code passed through:\n{text}"
    );
    assert!(
        text.contains("ARBITRIUM_DEPLOYMENT_VCPU_UNITS=\"lots\": expected a whole number"),
        "{text}"
    );
    assert!(
        text.contains("ARBITRIUM_PORTS_MAPPING=\"{broken\": expected a JSON object"),
        "{text}"
    );
    assert!(text.contains("WARN"), "{text}");
    assert!(!text.contains("local mode"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
}

/// Wrap mode outside Edgegap: local mode is said exactly once.
#[test]
fn local_mode_is_said_once() {
    let output = Command::new(env!("CARGO_BIN_EXE_edgegap-agent"))
        .env_clear()
        .args(["--", env!("CARGO_BIN_EXE_fake-game"), "--exit", "0"])
        .output()
        .unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_eq!(text.matches("running in local mode").count(), 1, "{text}");
}

/// With the default policy a self-stop may retry for 15 minutes; whoever runs it can end it:
/// SIGINT (Ctrl-C) exits 130, SIGTERM 143, at once, saying the request may have reached the
/// platform or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_and_sigterm_end_a_retrying_self_stop_at_once() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use std::time::{Duration, Instant};

    for (signal, code) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143)] {
        let fake = FakePlatform::start().await;
        fake.set_default(Reply::Status(503));
        let mut command = Command::new(env!("CARGO_BIN_EXE_edgegap-agent"));
        command
            .env_clear()
            .arg("self-stop")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (name, value) in platform_vars(&fake) {
            command.env(name, value);
        }
        let child = command.spawn().unwrap();
        // Retrying: the platform has answered 503 at least twice.
        let deadline = Instant::now() + Duration::from_secs(20);
        while fake.requests().len() < 2 {
            assert!(Instant::now() < deadline, "no retries seen");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let sent = Instant::now();
        kill(Pid::from_raw(child.id() as i32), signal).unwrap();
        let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        let took = sent.elapsed();
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(code), "{signal}: {text}");
        assert!(took < Duration::from_secs(2), "{signal}: took {took:?}");
        assert!(
            text.contains("self-stop interrupted") && text.contains(signal.as_str()),
            "{text}"
        );
        assert!(!text.contains(TOKEN), "the token leaked:\n{text}");
    }
}
