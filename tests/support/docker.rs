//! Helpers for the container tests (`--features container-tests`): images built with
//! `docker build` from the host-built static binaries (no registry), containers with unique
//! names that are always removed, and waits on a container's state under deadlines.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{example_game, wait_until, AGENT, FAKE_GAME};

/// The repository root, for the Dockerfiles and scripts under docker/.
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The image docker/debian-rootfs.sh makes: a debootstrap'ed Debian, as Unity/Unreal use.
pub const DEBIAN_IMAGE: &str = "edgegap-test-debian:bookworm";

/// Runs `docker ARGS...` and returns its output, whatever the exit status.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run the docker client")
}

/// Runs `docker ARGS...`, asserts it succeeded, and returns its stdout, trimmed.
pub fn docker_ok(args: &[&str]) -> String {
    let output = docker(args);
    assert!(
        output.status.success(),
        "docker {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A name no other test (of this or a concurrent run) uses.
pub fn unique(what: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "edgegap-ct-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// An image with a unique tag, removed when dropped.
pub struct Image {
    pub name: String,
}

impl Image {
    /// `docker build` with `dockerfile` (a path under the repository, or the text itself when
    /// it starts with `FROM`) and a fresh context holding `files` as (source, name in context).
    pub fn build(what: &str, dockerfile: &str, files: &[(&Path, &str)]) -> Image {
        let name = format!("{}:test", unique(what));
        let context = std::env::temp_dir().join(unique(&format!("ctx-{what}")));
        std::fs::create_dir_all(&context).unwrap();
        for (source, target) in files {
            std::fs::copy(source, context.join(target))
                .unwrap_or_else(|e| panic!("copy {} into the context: {e}", source.display()));
        }
        let dockerfile_path = if dockerfile.starts_with("FROM") {
            let path = context.join("Dockerfile.test");
            std::fs::write(&path, dockerfile).unwrap();
            path
        } else {
            Path::new(REPO).join(dockerfile)
        };
        // --no-cache: the legacy builder's cache reuses intermediate images, which another
        // test's `image rm` may delete mid-build ("unknown parent image ID").
        let output = docker(&[
            "build",
            "--no-cache",
            "-q",
            "-f",
            dockerfile_path.to_str().unwrap(),
            "-t",
            &name,
            context.to_str().unwrap(),
        ]);
        let _ = std::fs::remove_dir_all(&context);
        assert!(
            output.status.success(),
            "docker build of {dockerfile} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Image { name }
    }

    /// docker/Dockerfile.prebuilt: the agent alone, FROM scratch.
    pub fn agent() -> Image {
        Image::build(
            "agent",
            "docker/Dockerfile.prebuilt",
            &[(Path::new(AGENT), "edgegap-agent")],
        )
    }

    /// docker/example-game/Dockerfile: the agent and the example game, FROM scratch.
    pub fn example_game() -> Image {
        let game = example_game();
        Image::build(
            "example-game",
            "docker/example-game/Dockerfile",
            &[(Path::new(AGENT), "edgegap-agent"), (&game, "game_server")],
        )
    }

    /// `base` (scratch or a distribution image) with the agent at /edgegap-agent, the example
    /// game at /game/server and the fake game at /game/fake-game, the agent as entrypoint.
    pub fn with_games(what: &str, base: &str) -> Image {
        let game = example_game();
        let dockerfile = format!(
            "FROM {base}\nCOPY edgegap-agent /edgegap-agent\nCOPY game_server /game/server\n\
             COPY fake-game /game/fake-game\nENTRYPOINT [\"/edgegap-agent\"]\n"
        );
        Image::build(
            what,
            &dockerfile,
            &[
                (Path::new(AGENT), "edgegap-agent"),
                (&game, "game_server"),
                (Path::new(FAKE_GAME), "fake-game"),
            ],
        )
    }

    pub fn size_bytes(&self) -> u64 {
        docker_ok(&["image", "inspect", "-f", "{{.Size}}", &self.name])
            .parse()
            .unwrap()
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker(&["image", "rm", "-f", &self.name]);
    }
}

/// Makes (once, cached) the Debian image with docker/debian-rootfs.sh.
pub fn debian_image() -> &'static str {
    let status = Command::new(Path::new(REPO).join("docker/debian-rootfs.sh"))
        .status()
        .expect("run docker/debian-rootfs.sh");
    assert!(status.success(), "docker/debian-rootfs.sh failed: {status}");
    DEBIAN_IMAGE
}

/// A container with a unique name, removed (`docker rm -f`) when dropped.
pub struct Container {
    pub name: String,
}

impl Container {
    /// `docker run -d --name <unique> OPTIONS... IMAGE ARGS...`; `options` end with the image.
    pub fn run(what: &str, options: &[&str]) -> Container {
        let name = unique(what);
        let mut args = vec!["run", "-d", "--name", &name];
        args.extend_from_slice(options);
        let container = Container { name: name.clone() };
        docker_ok(&args);
        container
    }

    /// `docker inspect -f FORMAT`.
    pub fn inspect(&self, format: &str) -> String {
        docker_ok(&["inspect", "-f", format, &self.name])
    }

    pub fn status(&self) -> String {
        self.inspect("{{.State.Status}}")
    }

    pub fn exit_code(&self) -> i32 {
        self.inspect("{{.State.ExitCode}}").parse().unwrap()
    }

    /// The container's output so far: the game's stdout and the agent's stderr, each in order.
    pub fn logs(&self) -> String {
        let output = docker(&["logs", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    /// Waits until the logs contain `needle` at least `times` times.
    pub fn wait_logs(&self, needle: &str, times: usize, within: Duration) {
        assert!(
            wait_until_slow(within, || self.logs().matches(needle).count() >= times),
            "{needle:?} not {times} times in the logs of {} within {within:?}:\n{}",
            self.name,
            self.logs()
        );
    }

    /// Waits until the container has stopped (and, under a restart policy, is not restarting).
    pub fn wait_exited(&self, within: Duration) {
        assert!(
            wait_until_slow(within, || self.status() == "exited"),
            "{} still {} after {within:?}; logs:\n{}",
            self.name,
            self.status(),
            self.logs()
        );
    }

    /// `docker stop -t SECONDS`; returns how long the stop took.
    pub fn stop(&self, seconds: u32) -> Duration {
        let started = Instant::now();
        docker_ok(&["stop", "-t", &seconds.to_string(), &self.name]);
        started.elapsed()
    }

    /// The host pid of the container's PID 1 (0 once it has stopped).
    pub fn host_pid(&self) -> i32 {
        self.inspect("{{.State.Pid}}").parse().unwrap()
    }

    /// The container's processes as `docker top` sees them: (pid, state) with state `Z` for
    /// a zombie.
    pub fn processes(&self) -> Vec<(String, String)> {
        docker_ok(&["top", &self.name, "-o", "pid,stat"])
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
            })
            .collect()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}

/// `wait_until` for conditions that run the docker client: poll every 100 ms, not 5 ms.
pub fn wait_until_slow(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    wait_until(within, || {
        if condition() {
            return true;
        }
        std::thread::sleep(
            Duration::from_millis(100).min(deadline.saturating_duration_since(Instant::now())),
        );
        false
    })
}

/// The host as containers on the default bridge see it: the bridge network's gateway
/// (`docker network inspect bridge`, IPAM.Config[0].Gateway), or, when the engine leaves that
/// empty, the IPv4 address of the bridge's interface (docker0), which is the same address.
pub fn bridge_gateway() -> std::net::IpAddr {
    let gateway = docker_ok(&[
        "network",
        "inspect",
        "bridge",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
    ]);
    if let Some(ip) = gateway.split_whitespace().find_map(|g| g.parse().ok()) {
        return ip;
    }
    let interface = docker_ok(&[
        "network",
        "inspect",
        "bridge",
        "-f",
        "{{index .Options \"com.docker.network.bridge.name\"}}",
    ]);
    let output = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", &interface])
        .output()
        .expect("run ip");
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .skip_while(|word| *word != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next()?.parse().ok())
        .unwrap_or_else(|| {
            panic!("no gateway for the bridge network (interface {interface:?}): {text}")
        })
}

/// Fails the test, with the reason, when the Docker engine is not reachable: these tests are
/// only compiled with `--features container-tests`, so a missing engine is an error.
pub fn require_engine() {
    let output = docker(&["info", "-f", "{{.ServerVersion}}"]);
    assert!(
        output.status.success(),
        "the container tests need a running Docker engine (`docker info` failed): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
