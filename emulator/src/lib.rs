//! `edgegap-emulator`, library part: a local stand-in for the Edgegap platform API, so a game
//! server's whole life (deploy, readiness, self-stop, SIGTERM, grace, SIGKILL, restart policy,
//! max duration) runs on a laptop without an account. A workspace member of its own: the
//! agent's package does not depend on it, so the shipped agent carries none of it. What it
//! shares with the agent (the `ARBITRIUM_*` names and formats, the context document) comes
//! from `edgegap-contract`.
//!
//! # Routes
//!
//! Paths, field names, status codes and the `{"message": ...}` error body follow the Edgegap
//! API reference ("seed documents": Versioning; Dedicated Servers / Deployments) as summarised
//! in `edgegap-contract.md`, checked against the public sources named in the last column:
//! **\[V\]** docs.edgegap.com/docs/api/versioning (OpenAPI: `POST /v1/app`, `Error.message`,
//! `Authorization` API key); **\[D\]** docs.edgegap.com/docs/api/dedicated-servers (OpenAPI
//! `DeploymentV2`: `application`, `version`, `users` required; `InjectedEnvVariable`:
//! `key`, `value` up to 4 KB, `is_hidden`; `V1DeployFilter`: `field`, `values`,
//! `filter_type`); **\[R\]** the generated `edgegap` crate 0.1.0 docs (`DeploymentsApi` paths,
//! `AppVersionPayload`, `AppVersionList`, `ApiModelContainerlogs`, the pagination object);
//! **\[C\]** `edgegap-contract.md` (status fields, PORT object, self-stop, statuses).
//! "unconfirmed" marks a shape no source states; it is the obvious choice, kept in one place.
//!
//! | Method | Path | Auth | Answers | Source |
//! |---|---|---|---|---|
//! | POST | `/v1/app` | key | 200 app; 400 invalid (`name` 3..64); 409 exists | \[V\]; codes unconfirmed |
//! | GET | `/v1/apps?page&limit` | key | 200 `{applications, total_count, pagination}` | \[R\] pagination; list key unconfirmed |
//! | GET, PATCH, DELETE | `/v1/app/{app}` | key | 200 app / 200 app / 204 (versions go with it); 404 | \[R\]; 204 unconfirmed |
//! | POST | `/v1/app/{app}/version` | key | 200 `{success, version}`; 400; 404 app; 409 | \[R\] `AppVersionPayload`; envelope unconfirmed |
//! | GET | `/v1/app/{app}/versions?page&limit` | key | 200 `{versions, total_count, pagination}` | \[R\] `AppVersionList` |
//! | GET, PATCH, DELETE | `/v1/app/{app}/version/{v}` | key | 200 version / `{success, version}`; 404 | \[R\] |
//! | POST | `/v2/deployments` | key | 202 `{request_id, request_dns, request_app, request_version, request_user_count, city, country, continent, administrative_division, tags}`; 400; 404 | \[D\] body; response per v1 `Request` model, unconfirmed for v2 |
//! | GET | `/v1/status/{id}` | key | 200 status (fields below); 404 | \[C\], \[R\] |
//! | DELETE | `/v1/stop/{id}` | key | 200 (202 before READY) `{message, deployment_summary}`; 404 unknown or terminated | \[C\]; 404-when-terminated unconfirmed |
//! | DELETE | `/v1/self/stop/{id}/{access_point_id}` | `authorization: <ARBITRIUM_DELETE_TOKEN>` | 200 `{message: "Instance <id> will be deleted", deployment_summary}`; 401 wrong/missing token; 404 unknown or already terminated | \[C\]; 404-when-terminated unconfirmed |
//! | GET | `/v1/deployments?page&limit` | key | 200 `{data, total_count, pagination}` (active deployments) | \[R\] |
//! | POST | `/v1/deployments/bulk-stop` | key | 200 `{processable: [{request_id}], unprocessable: []}`; body `{filters: [{field, values, filter_type}]}`, fields `tags`, `app_name`, `app_version`, `request_id`; types `any` (default), `all`, `not` | \[D\] filter object; response and types unconfirmed |
//! | GET | `/v1/deployment/{id}/container-logs` | key | 200 `{logs, encoding, crash_logs, crash_data: {exit_code, message, restart_count}, logs_link}` | \[R\] `ApiModelContainerlogs` |
//! | GET, POST | `/v1/deployments/{id}/tags` | key | 200 `{tags: [{name}]}` / 201 `{name}`; 409 exists | \[R\] paths; shapes unconfirmed |
//! | GET, DELETE | `/v1/deployments/{id}/tags/{name}` | key | 200 `{name}` / 204; 404 | \[R\] paths; shapes unconfirmed |
//! | GET | `/v1/locations` | key | 200 `{locations: [<the single local location>]}` | shape unconfirmed |
//! | GET | `/v1/context/{id}/{n}` | `authorization: <ARBITRIUM_CONTEXT_TOKEN>` | 200 the status response; 401; 404 | \[C\] path form; shape unconfirmed |
//! | GET | `/emulator/v1/deployments/{id}/events` | key | 200 `{self_stop_calls, stop_calls, restart_count, events}` | emulator-only, for tests |
//!
//! The status response has `request_id, fqdn, app_name, app_version, current_status`
//! (`Status.SEEKING|DEPLOYING|READY|TERMINATING|TERMINATED|ERROR`), `current_status_label,
//! running, whitelisting_active, start_time, removal_time, elapsed_time, last_status, error,
//! error_detail, ports` (name → PORT), `public_ip, sessions, location, tags, sockets,
//! sockets_usage, command, arguments, max_duration`, plus the emulator's `restart_count`.
//! Hidden env values (`is_hidden`) are never returned: they read "This value is set and
//! encrypted" (wording unconfirmed).
//!
//! # Emulator choices (documented, not the platform's word)
//!
//! - A version's `command` (a list of strings) is the local stand-in for its image; the
//!   documented `docker_*` fields are still required and stored. With `--docker`, the image
//!   itself runs: `docker run --rm --network host --name edgegap-emulator-<id> -e KEY...
//!   <docker_repository>/<docker_image>:<docker_tag> [command...]` (repository `local`: an
//!   image of this machine, `<docker_image>:<docker_tag>`); env values reach the docker client
//!   through its environment, never its arguments; signals go through `docker kill --signal`;
//!   `docker run` exiting 125 (no such image, daemon error) → `Status.ERROR`. Registry
//!   credentials (`private_username`/`private_token`) are stored but not used to pull.
//! - Defaults: `termination_grace_period_seconds` 5, `restart_policy` always, `max_duration`
//!   1440 (-1 or 0: no limit), port `name` = the port number.
//! - External ports: a free port on 127.0.0.1 per named port, bound from deploy until the
//!   deployment is over (released before it reads TERMINATED or ERROR) and forwarded to
//!   `127.0.0.1:<internal>` as the platform forwards external to internal: TCP spliced both
//!   ways, UDP relayed with one upstream socket per client address closed after
//!   `--udp-idle-timeout` (default 60 s) of silence, `TCP/UDP` both on one number (see
//!   `forward.rs`). So the join address `127.0.0.1:<external>` works, while the game still
//!   binds its internal port and a game that confuses the two is caught. `--same-ports`
//!   reports external = internal and forwards nothing. `link` is `localhost:<external>`.
//! - The `ARBITRIUM_*` variables, the PORT objects, the location and the context document
//!   are written with `edgegap_contract`, which the agent reads with.
//!   `ARBITRIUM_DEPLOYMENT_TAGS` is comma-separated (a JSON array when commas cannot carry
//!   the tags, e.g. one holds a comma). The process gets only `PATH` and `HOME` from the
//!   emulator's environment, then the version's `envs`, the deployment's
//!   `environment_variables`, then the `ARBITRIUM_*` variables.
//! - READY once every `to_check` port that is not UDP accepts a TCP connection on
//!   127.0.0.1:internal (probed every 100 ms); at once when there is none. The status stays
//!   READY across restarts. A process that cannot start → `Status.ERROR`. A process that exits
//!   and is not restarted → `Status.TERMINATED` whatever its code (kept in `crash_data`).
//! - `always` and `on_failure` restart after 100 ms. One `max_duration` minute lasts
//!   `--max-duration-unit` (default 60 s; a testing knob).

#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod apps;
mod bulk;
pub mod deployment;
mod deployments;
mod environment;
pub mod forward;
pub mod http;
pub mod quickstart;
pub mod store;
mod tags;
pub mod validate;
mod webhook;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;

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
}

/// The running emulator: its settings, its bound address and its state.
pub struct Emulator {
    pub settings: Settings,
    pub addr: SocketAddr,
    store: Mutex<Store>,
}

impl Emulator {
    /// Locks the state. A panic while holding it cannot leave it half-changed in a way that
    /// matters more than stopping the emulator would, so a poisoned lock is used as is.
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Binds the API address (`127.0.0.1:0` picks a free port) and serves in the background.
pub async fn start(listen: SocketAddr, settings: Settings) -> std::io::Result<Arc<Emulator>> {
    let listener = TcpListener::bind(listen).await?;
    let emulator = Arc::new(Emulator {
        settings,
        addr: listener.local_addr()?,
        store: Mutex::new(Store::default()),
    });
    tokio::spawn(http::serve(listener, emulator.clone()));
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

/// One line of the emulator's own on stderr, marked as the emulator's.
pub fn say(message: &str) {
    eprintln!("[edgegap-emulator] {message}");
}
