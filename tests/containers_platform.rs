//! The agent in real containers talking to a platform on the host, reached through the Docker
//! bridge gateway (`--features container-tests`, a real Docker engine): `--restart
//! on-failure:3` with a finished match self-stopping once through `edgegap-emulator`, and the
//! static binary's HTTPS and name resolution (a test CA passed by env, `/etc/hosts` written by
//! Docker, no NSS) in a `FROM scratch` image and in the Debian image.
//!
//! Needs the release binaries: `cargo build --release --features container-tests --bins
//! --examples`, then `cargo test --release --features container-tests --test
//! containers_platform`.

mod support;

#[path = "support/fake_platform.rs"]
mod fake_platform;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use fake_platform::FakePlatform;
use serde_json::json;
use support::docker::{
    bridge_gateway, debian_image, docker, docker_ok, require_engine, unique, wait_until_slow,
    Container, Image,
};
use support::emulator::Emu;
use support::AGENT;

/// Bound for a container to get going or settle: generous for a loaded CI machine.
const SETTLE: Duration = Duration::from_secs(30);

#[test]
fn restart_on_failure_with_a_finished_match_self_stops_once_at_the_emulator_on_the_host() {
    require_engine();
    let gateway = bridge_gateway();
    // The platform, on the host, where containers reach it: the bridge gateway.
    let emu = Emu::start_on(&format!("{gateway}:0"), &[]);
    assert!(emu.addr.starts_with(&format!("{gateway}:")), "{}", emu.addr);
    // A deployment owned by a host process (the fake game, running until it is stopped); its
    // injected self-stop URL and token are the ones the container gets.
    let id = emu.deploy_game(
        json!({}),
        &[
            "--print-env",
            "ARBITRIUM_REQUEST_ID",
            "--print-env",
            "ARBITRIUM_DELETE_URL",
            "--print-env",
            "ARBITRIUM_DELETE_TOKEN",
        ],
    );
    let request_id = emu.printed_env(&id, "ARBITRIUM_REQUEST_ID");
    let url = emu.printed_env(&id, "ARBITRIUM_DELETE_URL");
    let token = emu.printed_env(&id, "ARBITRIUM_DELETE_TOKEN");
    assert_eq!(request_id, id);
    assert!(
        url.starts_with(&format!("http://{gateway}:")) && url.contains(&id),
        "{url}"
    );
    assert_eq!(emu.events(&id)["self_stop_calls"], 0);

    let image = Image::with_games("restart-emu", "scratch");
    let env = [
        format!("ARBITRIUM_REQUEST_ID={request_id}"),
        format!("ARBITRIUM_DELETE_URL={url}"),
        format!("ARBITRIUM_DELETE_TOKEN={token}"),
    ];
    // The game exits 0 once it said READY: policy `stop` ends the match, the agent self-stops;
    // the platform's SIGTERM goes to the host process that owns the deployment, not to this
    // container, so after --self-stop-wait the agent ends itself with the game's code, 0.
    let finishing = Container::run(
        "finish-emu",
        &[
            "--restart",
            "on-failure:3",
            "-e",
            &env[0],
            "-e",
            &env[1],
            "-e",
            &env[2],
            &image.name,
            "--on-exit",
            "0=stop,*=exit",
            "--self-stop-wait",
            "1s",
            "--",
            "/game/fake-game",
            "--exit",
            "0",
        ],
    );
    finishing.wait_exited(SETTLE);
    let logs = finishing.logs();
    assert_eq!(finishing.exit_code(), 0, "{logs}");
    assert_eq!(finishing.inspect("{{.RestartCount}}"), "0", "{logs}");
    assert_eq!(logs.matches("READY pid=").count(), 1, "{logs}");
    // The DELETE came from the agent in the container, and the emulator accepted it.
    assert_eq!(
        logs.matches("asking the platform to stop this deployment")
            .count(),
        1,
        "{logs}"
    );
    assert!(
        logs.contains("self-stop accepted (status 200, after 1 attempt(s))"),
        "{logs}"
    );
    // The platform's SIGTERM went to the deployment's owner on the host, not here: the agent
    // ended itself once --self-stop-wait had passed, with the game's code.
    assert!(logs.contains("exiting code=0"), "{logs}");
    assert!(!logs.contains(&token), "the token leaked:\n{logs}");
    let events = emu.events(&id);
    assert_eq!(events["self_stop_calls"], 1, "{events}");
    // The emulator stopped the deployment it owns: the self-stop was the real one.
    emu.wait_status(&id, "Status.TERMINATED", SETTLE);
    // Still one, and the container did not come back.
    assert_eq!(emu.events(&id)["self_stop_calls"], 1);
    assert_eq!(finishing.status(), "exited");
    assert_eq!(finishing.inspect("{{.RestartCount}}"), "0");
}

/// An image of `base` holding only what is added: the agent and the test CA at /ca.pem.
fn agent_with_ca(what: &str, base: &str) -> Image {
    let ca = Path::new(support::docker::REPO).join("tests/support/test_ca.pem");
    Image::build(
        what,
        &format!(
            "FROM {base}\nCOPY edgegap-agent /edgegap-agent\nCOPY test_ca.pem /ca.pem\n\
             ENTRYPOINT [\"/edgegap-agent\"]\n"
        ),
        &[(Path::new(AGENT), "edgegap-agent"), (&ca, "test_ca.pem")],
    )
}

/// Every path in `image`'s filesystem as a container of it would have it.
fn files_of(image: &Image) -> Vec<String> {
    let name = unique("files");
    docker_ok(&["create", "--name", &name, &image.name]);
    let listing = std::process::Command::new("sh")
        .args(["-c", &format!("docker export {name} | tar -t")])
        .output()
        .expect("docker export | tar -t");
    let _ = docker(&["rm", "-f", &name]);
    assert!(listing.status.success(), "{listing:?}");
    String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

const TOKEN: &str = "ct-Token_9f/+=.~!*x y";

/// `docker run --rm --add-host platform.test:<gateway>` of `image` running `self-stop` with
/// the platform's variables and `extra` options; bounded by the small `--self-stop-*` values.
fn self_stop_in(image: &Image, gateway: &str, url: &str, extra: &[&str]) -> (i32, String) {
    let host = format!("platform.test:{gateway}");
    let url = format!("ARBITRIUM_DELETE_URL={url}");
    let token = format!("ARBITRIUM_DELETE_TOKEN={TOKEN}");
    let mut args = vec!["run", "--rm", "--add-host", &host, "-e", &url, "-e", &token];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        &image.name,
        "self-stop",
        "--self-stop-max-attempts=2",
        "--self-stop-initial-backoff=10ms",
        "--self-stop-max-backoff=20ms",
        "--self-stop-attempt-timeout=3s",
        "--self-stop-deadline=8s",
    ]);
    let Output {
        status,
        stdout,
        stderr,
    } = docker(&args);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    assert!(!all.contains(TOKEN), "the token leaked:\n{all}");
    (status.code().expect("docker run exited"), all)
}

#[test]
fn https_and_etc_hosts_work_in_scratch_and_debian_without_nss_and_the_ca_comes_from_env() {
    require_engine();
    let gateway = bridge_gateway();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let scratch = agent_with_ca("tls-scratch", "scratch");
    let debian = agent_with_ca("tls-debian", debian_image());

    // scratch holds the agent and the CA, nothing else: no NSS configuration or library, no
    // CA bundle, no libc.
    let files = files_of(&scratch);
    assert!(files.iter().any(|f| f == "edgegap-agent"), "{files:?}");
    assert!(files.iter().any(|f| f == "ca.pem"), "{files:?}");
    for absent in ["nsswitch", "libnss", "libc.so", "ca-certificates"] {
        assert!(
            !files.iter().any(|f| f.contains(absent)),
            "{absent} in {files:?}"
        );
    }
    // The Debian image is a real userland, with glibc's NSS (which the agent does not use).
    let files = files_of(&debian);
    assert!(files.iter().any(|f| f.ends_with("etc/nsswitch.conf")));

    for (image, path) in [
        (&scratch, "/v1/self/stop/ct-scratch/1"),
        (&debian, "/v1/self/stop/ct-debian/1"),
    ] {
        let fake = runtime.block_on(FakePlatform::start_tls_on(gateway));
        let url = format!("https://platform.test:{}{path}", fake.addr.port());
        let ip = gateway.to_string();

        // With the test CA from the environment: accepted, one DELETE, the token exactly.
        let (code, output) =
            self_stop_in(image, &ip, &url, &["-e", "EDGEGAP_AGENT_CA_FILE=/ca.pem"]);
        assert_eq!(code, 0, "{}: {output}", image.name);
        assert!(
            output.contains("self-stop accepted (status 200"),
            "{output}"
        );
        let requests = fake.requests();
        assert_eq!(requests.len(), 1, "{requests:?}");
        assert_eq!(
            (requests[0].method.as_str(), requests[0].path.as_str()),
            ("DELETE", path)
        );
        assert_eq!(requests[0].header("authorization"), Some(TOKEN.as_bytes()));
        assert_eq!(
            requests[0].header("host"),
            Some(format!("platform.test:{}", fake.addr.port()).as_bytes())
        );
        assert_eq!(fake.failed_handshakes(), 0);

        // Without it the certificate is not trusted: every attempt fails in the handshake,
        // no request reaches the platform, and the call gives up with 69.
        let (code, output) = self_stop_in(image, &ip, &url, &[]);
        assert_eq!(code, 69, "{}: {output}", image.name);
        assert!(
            output.contains(
                "self-stop failed after 2 attempt(s): tls error: invalid peer certificate"
            ),
            "{output}"
        );
        assert_eq!(fake.requests().len(), 1);
        assert!(
            wait_until_slow(SETTLE, || fake.failed_handshakes() == 2),
            "failed handshakes: {}; {output}",
            fake.failed_handshakes()
        );
    }
}
