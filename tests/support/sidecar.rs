//! Helpers for the sidecar-mode tests: the agent with no command, its platform a fake on
//! 127.0.0.1:0, its API address read from its log.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Command;

use crate::fake_platform::{on_own_runtime, FakePlatform};
use crate::support::{agent_command, wait_until, Running, DEADLINE};

pub const STOP_PATH: &str = "/v1/self/stop/5f2c8e1a9b7d/ap-3";
pub const DELETE_TOKEN: &str = "sidecar-dt-Hq4Wz8Lp";

/// A fake platform on a runtime of its own (kept alive with it).
pub struct Platform {
    _runtime: tokio::runtime::Runtime,
    pub fake: FakePlatform,
}

impl Platform {
    pub fn start() -> Platform {
        let (runtime, fake) = on_own_runtime(FakePlatform::start);
        Platform {
            _runtime: runtime,
            fake,
        }
    }

    /// The self-stops the platform received (every request must be one).
    pub fn self_stops(&self) -> usize {
        let requests = self.fake.requests();
        for request in &requests {
            assert_eq!(
                (request.method.as_str(), request.path.as_str()),
                ("DELETE", STOP_PATH)
            );
        }
        requests.len()
    }

    /// Waits until the platform has received `n` self-stops.
    pub fn wait_self_stops(&self, n: usize) {
        assert!(
            wait_until(DEADLINE, || self.self_stops() >= n),
            "{} self-stops, expected {n}",
            self.self_stops()
        );
    }
}

/// The agent in sidecar mode (no command), its self-stop pointed at `platform`.
pub fn sidecar_command(platform: &Platform) -> Command {
    let mut command = agent_command();
    command
        .env("ARBITRIUM_REQUEST_ID", "5f2c8e1a9b7d")
        .env("ARBITRIUM_PUBLIC_IP", "127.0.0.1")
        .env("ARBITRIUM_DELETE_URL", platform.fake.url(STOP_PATH))
        .env("ARBITRIUM_DELETE_TOKEN", DELETE_TOKEN);
    command
}

/// Waits for `text` in the agent's log.
pub fn wait_log(agent: &Running, text: &str) {
    assert!(
        wait_until(DEADLINE, || agent.stderr().contains(text)),
        "no {text:?} in the log:\n{}",
        agent.stderr()
    );
}

/// The API's address, from the agent's `local API listening addr=...` line.
pub fn api_addr(agent: &Running) -> SocketAddr {
    wait_log(agent, "local API listening addr=");
    let stderr = agent.stderr();
    let start =
        stderr.find("local API listening addr=").unwrap() + "local API listening addr=".len();
    let addr = stderr[start..].split_whitespace().next().unwrap();
    addr.parse()
        .unwrap_or_else(|e| panic!("{addr:?} is not IP:PORT: {e}"))
}

/// Whether the process is gone or a zombie (it exited, whoever reaps it).
pub fn has_exited(pid: nix::unistd::Pid) -> bool {
    crate::support::state_of(pid).is_none_or(|s| s == 'Z')
}

/// The agent is still running, some time after `what`: its API still answers (`/v1/status`:
/// `/healthz` is 503 once the watched game is gone).
pub fn assert_serving(agent: &mut Running, addr: SocketAddr, what: &str) {
    assert!(
        agent.child.try_wait().unwrap().is_none(),
        "the agent exited after {what}:\n{}",
        agent.stderr()
    );
    let reply = crate::http::get(addr, "/v1/status");
    assert_eq!(reply.status, 200, "after {what}");
}
