//! The emulator's whole state, in memory behind one mutex: apps with their versions (kept as
//! the JSON the client sent, validated, so every documented field round-trips), and
//! deployments (typed, with their log ring and an event journal for tests). Nothing here does
//! I/O; handlers lock, read or change, and unlock before awaiting anything.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Instant, SystemTime};

use edgegap_contract::{Context, Location, PlatformPort, PortsMapping};
use serde_json::{json, Map, Value};
use tokio::sync::watch;

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

    pub fn label(self) -> &'static str {
        match self {
            Status::Seeking => "Seeking",
            Status::Deploying => "Deploying",
            Status::Ready => "Ready",
            Status::Terminating => "Terminating",
            Status::Terminated => "Terminated",
            Status::Error => "Error",
        }
    }

    /// Whether the deployment is over (no process, nothing more will happen).
    pub fn is_final(self) -> bool {
        matches!(self, Status::Terminated | Status::Error)
    }
}

/// An app: its stored JSON (name, is_active, image, ... as sent) and its versions by name.
pub struct App {
    pub fields: Map<String, Value>,
    pub create_time: SystemTime,
    pub last_updated: SystemTime,
    pub versions: BTreeMap<String, Version>,
}

/// A version: the validated JSON as sent, plus its typed view used to deploy it.
pub struct Version {
    pub fields: Map<String, Value>,
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
    pub tags: Vec<String>,
    pub access_point_id: String,
    pub delete_token: String,
    pub context_token: String,
    pub context_number: u64,
    pub error_detail: Option<String>,
    pub restart_count: u32,
    pub last_exit_code: Option<i32>,
    pub logs: LogRing,
    /// Every stop, self-stop and lifecycle step, for `GET /emulator/v1/deployments/{id}/events`.
    pub events: Vec<Value>,
    pub self_stop_calls: u32,
    pub stop_calls: u32,
    /// Set to true to start the stop sequence (SIGTERM, grace, SIGKILL).
    pub stop: watch::Sender<bool>,
    pub webhook_on_ready: Option<String>,
    pub webhook_on_error: Option<String>,
    pub webhook_on_terminated: Option<String>,
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

    /// The deployment's ports as the contract describes them: `ARBITRIUM_PORTS_MAPPING`, and
    /// the `ports` of the status response and the context.
    pub fn ports_mapping(&self) -> PortsMapping {
        PortsMapping::new(self.ports.iter().map(platform_port))
    }

    /// The `PORT` objects of the status response, keyed by name.
    pub fn ports_json(&self) -> Value {
        serde_json::to_value(self.ports_mapping().ports).unwrap_or_default()
    }

    /// What the context URL serves and the status response starts from: the contract's
    /// context document.
    pub fn context(&self) -> Context {
        Context {
            request_id: Some(self.request_id.clone()),
            fqdn: Some(FQDN.to_owned()),
            public_ip: Some(PUBLIC_IP),
            ports: self.ports_mapping().ports,
            location: Some(location()),
            tags: Some(self.tags.clone()),
        }
    }

    /// The status response (`GET /v1/status/{request_id}`, the context URL, webhooks): the
    /// context document plus the deployment's state.
    pub fn status_json(&self) -> Value {
        let mut status = serde_json::to_value(self.context()).unwrap_or_default();
        let Value::Object(fields) = &mut status else {
            return status;
        };
        let state = json!({
            "app_name": self.app_name,
            "app_version": self.version_name,
            "current_status": self.status.as_str(),
            "current_status_label": self.status.label(),
            "running": self.status == Status::Ready,
            "whitelisting_active": false,
            "start_time": rfc3339(self.start_time),
            "removal_time": self.removal_time.map(rfc3339),
            "elapsed_time": self.started.elapsed().as_secs(),
            "last_status": self.last_status.map(Status::as_str),
            "error": self.status == Status::Error,
            "error_detail": self.error_detail,
            "sessions": [],
            "sockets": null,
            "sockets_usage": null,
            "command": null,
            "arguments": null,
            "max_duration": self.spec.max_duration,
            // Emulator extension: how often the restart policy restarted the process.
            "restart_count": self.restart_count,
        });
        if let Value::Object(state) = state {
            fields.extend(state);
        }
        status
    }
}

/// The `fqdn` and the host part of each port `link`: locally, this machine.
pub const FQDN: &str = "localhost";
/// `ARBITRIUM_PUBLIC_IP` and `public_ip`: where the emulator forwards each external port.
pub const PUBLIC_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// One port as the contract's `PORT` object.
pub fn platform_port(deployed: &DeployedPort) -> PlatformPort {
    PlatformPort {
        name: Some(deployed.port.name.clone()),
        internal: Some(deployed.port.port),
        external: Some(deployed.external),
        protocol: Some(deployed.port.protocol.clone()),
        tls_upgrade: Some(deployed.port.tls_upgrade),
        link: Some(format!("{FQDN}:{}", deployed.external)),
    }
}

/// The single local location, as in the status response's `location`.
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

/// [`location`] as JSON.
pub fn location_json() -> Value {
    serde_json::to_value(location()).unwrap_or_default()
}

pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Everything, behind one mutex in `Emulator`.
#[derive(Default)]
pub struct Store {
    pub apps: BTreeMap<String, App>,
    pub deployments: BTreeMap<String, Deployment>,
    pub next_seq: u64,
}

impl Store {
    /// Deployments in creation order.
    pub fn deployments_in_order(&self) -> Vec<&Deployment> {
        let mut all: Vec<&Deployment> = self.deployments.values().collect();
        all.sort_by_key(|d| d.seq);
        all
    }
}
