//! The emulator's whole state, in memory behind one mutex: apps with their versions (the
//! documented fields as validated, so they round-trip), deployments (typed, with their log
//! ring, tags, metrics series and an event journal), the private-fleet hosts and the registry
//! tags deleted through the API. Nothing here does I/O; handlers lock, read or change, and
//! unlock before awaiting anything. The JSON views of a deployment are in `views.rs`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use edgegap_contract::{Location, PlatformPort, PortsMapping};
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::fleets::PrivateHost;
use super::forward::Traffic;
use super::metrics::Series;
use super::validate::{Port, VersionSpec};

/// A deployment's life, as the platform names it (`current_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Seeking,
    Deploying,
    Ready,
    Terminating,
    Terminated,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Seeking => "Status.SEEKING",
            Status::Deploying => "Status.DEPLOYING",
            Status::Ready => "Status.READY",
            Status::Terminating => "Status.TERMINATING",
            Status::Terminated => "Status.TERMINATED",
            Status::Error => "Status.ERROR",
        }
    }

    /// The lower-case name the list's `query` filters compare with (`ready`, `error`, ...).
    pub fn filter_name(self) -> &'static str {
        match self {
            Status::Seeking => "seeking",
            Status::Deploying => "deploying",
            Status::Ready => "ready",
            Status::Terminating => "terminating",
            Status::Terminated => "terminated",
            Status::Error => "error",
        }
    }

    /// Whether the deployment is over (no process, nothing more will happen).
    pub fn is_final(self) -> bool {
        matches!(self, Status::Terminated | Status::Error)
    }
}

/// An app (the documented `Application` fields) and its versions by name.
pub struct App {
    pub name: String,
    pub is_active: bool,
    pub image: String,
    pub create_time: SystemTime,
    pub last_updated: SystemTime,
    pub versions: BTreeMap<String, Version>,
}

/// A version: the payload as sent (what updates merge over), its documented fields as
/// validated (what the API shows: no `private_token`, hidden env values masked), and its
/// typed view used to deploy it.
pub struct Version {
    pub sent: Map<String, Value>,
    pub shown: Map<String, Value>,
    pub spec: VersionSpec,
    pub create_time: SystemTime,
    pub last_updated: SystemTime,
}

/// One port of a deployment: the version's port plus the external port allocated locally.
#[derive(Clone, Debug)]
pub struct DeployedPort {
    pub port: Port,
    pub external: u16,
}

/// A deployment tag, with its times.
#[derive(Clone, Debug)]
pub struct DeploymentTag {
    pub name: String,
    pub create_time: SystemTime,
    pub last_updated: SystemTime,
}

impl DeploymentTag {
    pub fn new(name: String) -> DeploymentTag {
        let now = SystemTime::now();
        DeploymentTag {
            name,
            create_time: now,
            last_updated: now,
        }
    }
}

/// Where the deployment's output goes: a ring of the most recent lines, bounded in bytes.
#[derive(Default)]
pub struct LogRing {
    lines: VecDeque<String>,
    bytes: usize,
}

/// How much container output the emulator keeps per deployment.
pub const LOG_RING_BYTES: usize = 1024 * 1024;

impl LogRing {
    pub fn push(&mut self, line: String) {
        self.bytes += line.len() + 1;
        self.lines.push_back(line);
        while self.bytes > LOG_RING_BYTES {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.len() + 1,
                None => break,
            }
        }
    }

    pub fn text(&self) -> String {
        let mut text = String::with_capacity(self.bytes);
        for line in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// A deployment: what was asked, what the emulator injected, and what happened since.
pub struct Deployment {
    pub request_id: String,
    pub seq: u64,
    pub app_name: String,
    pub version_name: String,
    pub spec: VersionSpec,
    pub status: Status,
    pub last_status: Option<Status>,
    pub start_time: SystemTime,
    pub started: Instant,
    pub removal_time: Option<SystemTime>,
    pub ports: Vec<DeployedPort>,
    pub tags: Vec<DeploymentTag>,
    /// The private host it runs on (`None`: the local cloud location).
    pub host_id: Option<String>,
    pub location: Location,
    pub access_point_id: u32,
    pub delete_token: String,
    pub context_token: String,
    pub context_number: u64,
    pub error_detail: Option<String>,
    pub restart_count: u32,
    pub last_exit_code: Option<i32>,
    /// The log ring as it was when the process last exited with a non-zero code.
    pub crash_logs: Option<String>,
    pub logs: LogRing,
    /// `/v1/deploy`'s container overrides, shown in the status response.
    pub command: String,
    pub arguments: String,
    /// Every stop, self-stop and lifecycle step, for `GET /emulator/v1/deployments/{id}/events`.
    pub events: Vec<Value>,
    pub self_stop_calls: u32,
    pub stop_calls: u32,
    /// A stop asked before READY or ERROR: carried out once either is reached.
    pub stop_when_ready: bool,
    /// Set to true to start the stop sequence (SIGTERM, grace, SIGKILL).
    pub stop: watch::Sender<bool>,
    pub webhook_on_ready: Option<String>,
    pub webhook_on_error: Option<String>,
    pub webhook_on_terminated: Option<String>,
    /// Bytes through the forwarded ports, counted by `forward.rs`.
    pub traffic: Arc<Traffic>,
    /// The sampled CPU, memory, disk and network series (`metrics.rs`).
    pub metrics: Series,
    /// The pid of the process running now (or of `docker run`), for sampling.
    pub pid: Option<u32>,
    /// The container's name under `--docker`.
    pub container: Option<String>,
}

impl Deployment {
    pub fn set_status(&mut self, status: Status) {
        if self.status != status {
            self.last_status = Some(self.status);
            self.status = status;
            self.event(json!({"event": "status", "status": status.as_str()}));
        }
        if status.is_final() && self.removal_time.is_none() {
            self.removal_time = Some(SystemTime::now());
        }
    }

    pub fn event(&mut self, mut event: Value) {
        if let Value::Object(map) = &mut event {
            let at = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            map.insert("at_ms".into(), json!(at));
        }
        self.events.push(event);
    }

    pub fn tag_names(&self) -> Vec<String> {
        self.tags.iter().map(|t| t.name.clone()).collect()
    }

    /// The deployment's ports as the contract describes them: `ARBITRIUM_PORTS_MAPPING`, and
    /// the `ports` of the status response and the context.
    pub fn ports_mapping(&self) -> PortsMapping {
        PortsMapping::new(self.ports.iter().map(platform_port))
    }

    /// The `PORT` objects of the status response, keyed by name.
    pub fn ports_json(&self) -> Value {
        serde_json::to_value(self.ports_mapping().ports).unwrap_or_default()
    }
}

/// The `fqdn` and the host part of each port `link`: locally, this machine.
pub const FQDN: &str = "localhost";
/// `ARBITRIUM_PUBLIC_IP` and `public_ip`: where the emulator forwards each external port.
pub const PUBLIC_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// One port as the contract's `PORT` object. `proxy` is the port the emulator's forwarder
/// listens on, the external one (`--same-ports`: the internal one, nothing forwards).
pub fn platform_port(deployed: &DeployedPort) -> PlatformPort {
    PlatformPort {
        name: Some(deployed.port.name.clone()),
        internal: Some(deployed.port.port),
        external: Some(deployed.external),
        protocol: Some(deployed.port.protocol.clone()),
        tls_upgrade: Some(deployed.port.tls_upgrade),
        link: Some(format!("{FQDN}:{}", deployed.external)),
        proxy: Some(deployed.external),
    }
}

/// The single local cloud location, as in the status response's `location`.
pub fn location() -> Location {
    let local = || Some("Local".to_owned());
    Location {
        city: Some("Localhost".to_owned()),
        country: local(),
        continent: local(),
        administrative_division: local(),
        timezone: Some("UTC".to_owned()),
        latitude: Some(0.0),
        longitude: Some(0.0),
    }
}

/// Everything, behind one mutex in `Emulator`.
#[derive(Default)]
pub struct Store {
    pub apps: BTreeMap<String, App>,
    pub deployments: BTreeMap<String, Deployment>,
    pub next_seq: u64,
    pub hosts: BTreeMap<String, PrivateHost>,
    /// `(image, tag)` pairs deleted through the container-registry routes.
    pub registry_deleted: BTreeSet<(String, String)>,
}

impl Store {
    /// Deployments in creation order.
    pub fn deployments_in_order(&self) -> Vec<&Deployment> {
        let mut all: Vec<&Deployment> = self.deployments.values().collect();
        all.sort_by_key(|d| d.seq);
        all
    }
}
