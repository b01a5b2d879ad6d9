//! `edgegap-emulator`, library part: a local stand-in for the Edgegap platform API, so a game
//! server's whole life (deploy, readiness, self-stop, SIGTERM, grace, SIGKILL, restart policy,
//! max duration) runs on a laptop without an account, and so a studio's backend can be
//! written against it and then pointed at the platform. A workspace member of its own: the
//! agent's package does not depend on it, so the shipped agent carries none of it. What it
//! shares with the agent (the `ARBITRIUM_*` names and formats, the context document) comes
//! from `edgegap-contract`.
//!
//! The routes, their documented answers and the emulator's known differences are the
//! README's table ("The emulator"); the facts they follow are the seed documents (Versioning
//! with its OpenAPI per endpoint; Dedicated Servers with fields and example answers),
//! extracted into `emulator/conformance/endpoints.json` and checked by
//! `emulator/tests/conformance.rs`, and, where the seed documents are silent, Edgegap's
//! published OpenAPI (`edgegap/openapi-specification`, `edgegap-v1-openapi.yaml` and
//! `edgegap-v2-openapi.yaml`) and the typed client generated from
//! `https://api.edgegap.com/swagger.json` (`RJ/bevygap`, `edgegap_async/`: the context
//! document's `Deployment` model, `session_config`, the integer access point).
//!
//! # Emulator choices (documented, not the platform's word)
//!
//! - A version's `command` (a list of strings, accepted on input and never shown back) is the
//!   local stand-in for its image. With `--docker`, the image itself runs: `docker run --rm
//!   --network host --name edgegap-emulator-<id> -e KEY... <docker_repository>/<docker_image>:
//!   <docker_tag> [command...]` (repository `local`: an image of this machine); env values
//!   reach the docker client through its environment, never its arguments; signals go through
//!   `docker kill --signal`; `docker run` exiting 125 (no such image, daemon error) →
//!   `Status.ERROR`. Registry credentials are stored, never shown, and not used to pull.
//! - Defaults: `termination_grace_period_seconds` 5, `restart_policy` always, `max_duration`
//!   1440 (-1 or 0: no limit), port `name` = the port number, `to_check` true.
//! - External ports: a free port on 127.0.0.1 per named port, forwarded to the internal port
//!   (`forward.rs`); `--same-ports` reports external = internal and forwards nothing. `link`
//!   is `localhost:<external>`, `proxy` the forwarding port.
//! - READY once every `to_check` port that is not UDP accepts a TCP connection on
//!   127.0.0.1:internal (probed every 100 ms); at once when there is none. A stop before
//!   READY answers 202 and is carried out once READY or ERROR is reached.
//! - `always` and `on_failure` restart after 100 ms. One `max_duration` minute lasts
//!   `--max-duration-unit` (default 60 s; a testing knob).
//! - Whatever ends the emulator, its deployments end with it (`guard.rs`).

#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod apps;
mod bulk;
pub mod clock;
mod deploy;
pub mod deployment;
mod deployments;
mod emulator_routes;
mod environment;
pub mod faults;
mod fields;
pub mod fleets;
pub mod forward;
pub mod guard;
pub mod http;
mod listing;
pub mod metrics;
pub mod quickstart;
mod registry;
pub mod store;
mod tags;
pub mod validate;
mod version_ports;
mod views;
mod webhook;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;

use faults::Faults;
use fleets::PrivateHost;
use guard::Guard;
use store::Store;

/// What the operator chose at start.
#[derive(Clone, Debug)]
pub struct Settings {
    pub api_token: String,
    /// How long one `max_duration` minute lasts.
    pub minute: Duration,
    /// Report external port = internal port instead of allocating (and forwarding) one.
    pub same_ports: bool,
    /// How long a UDP client may be silent before its relay socket is closed.
    pub udp_idle: Duration,
    /// Echo every deployment's output on the emulator's own stdout/stderr.
    pub echo_output: bool,
    /// Run each version's image with the Docker CLI instead of its `command`.
    pub docker: bool,
    /// How often each deployment's processes are sampled for its metrics.
    pub metrics_interval: Duration,
}

/// The running emulator: its settings, its bound address and its state.
pub struct Emulator {
    pub settings: Settings,
    pub addr: SocketAddr,
    store: Mutex<Store>,
    /// Locked after `store` when both are needed, never before.
    faults: Mutex<Faults>,
    pub guard: Guard,
}

impl Emulator {
    /// Locks the state. A panic while holding it cannot leave it half-changed in a way that
    /// matters more than stopping the emulator would, so a poisoned lock is used as is.
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the faults in force.
    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Binds the API address (`127.0.0.1:0` picks a free port) and serves in the background,
/// with the given private hosts and faults.
pub async fn start(
    listen: SocketAddr,
    settings: Settings,
    hosts: Vec<PrivateHost>,
    faults: Faults,
) -> std::io::Result<Arc<Emulator>> {
    let listener = TcpListener::bind(listen).await?;
    let mut store = Store::default();
    for host in hosts {
        store.hosts.insert(host.host_id.clone(), host);
    }
    let emulator = Arc::new(Emulator {
        settings,
        addr: listener.local_addr()?,
        store: Mutex::new(store),
        faults: Mutex::new(faults),
        guard: Guard::start(),
    });
    tokio::spawn(http::serve(listener, http::routes(emulator.clone())));
    Ok(emulator)
}

/// Starts the stop sequence of every deployment still alive and waits until all are over.
pub async fn stop_all(emulator: &Emulator) {
    {
        let mut store = emulator.lock();
        for deployment in store.deployments.values_mut() {
            if !deployment.status.is_final() {
                deployment.event(serde_json::json!({"event": "emulator_shutdown"}));
                let _ = deployment.stop.send(true);
            }
        }
    }
    while emulator
        .lock()
        .deployments
        .values()
        .any(|d| !d.status.is_final())
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` random bytes as lowercase hex, from the kernel's generator.
pub fn random_hex(n: usize) -> std::io::Result<String> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A random access point number (1..=65536), from the kernel's generator.
pub fn random_number() -> std::io::Result<u32> {
    let mut bytes = [0u8; 2];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(u32::from(u16::from_be_bytes(bytes)) + 1)
}

/// One line of the emulator's own on stderr, marked as the emulator's.
pub fn say(message: &str) {
    eprintln!("[edgegap-emulator] {message}");
}
