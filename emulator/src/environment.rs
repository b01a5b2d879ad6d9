//! What a deployment's process is given, exactly as the contract documents it: the version's
//! `envs`, the deployment's `environment_variables`, then the `ARBITRIUM_*` variables (request
//! id, public IP, host, ports mapping and per-port variables, location, tags, resources, the
//! delete and context URLs with their tokens), with the external ports `forward.rs` bound.

use edgegap_contract::{context_path, self_stop_path, InjectedEnv};
use tokio::sync::watch;

use super::fields::EnvVar;
use super::forward::Forwarding;
use super::store::{DeployedPort, Deployment, PUBLIC_IP};
use super::validate::VersionSpec;
use super::Emulator;

/// `ARBITRIUM_HOST_ID` of a deployment on the local cloud location (a private-fleet
/// deployment gets its host's id).
const HOST_ID: &str = "local-emulator";

/// What runs a deployment: a command on this machine, or (`--docker`) the version's image.
pub enum Runner {
    Process(Vec<String>),
    /// `image` is `docker_repository/docker_image:docker_tag` (`docker_image:docker_tag` when
    /// the repository is `local`); `args` (the version's `command`) override the image's CMD.
    Docker {
        image: String,
        args: Vec<String>,
    },
}

/// Everything the lifecycle task needs, taken from the deployment when it is created.
pub struct Launch {
    pub(super) request_id: String,
    /// The container's name, when the deployment runs under Docker.
    pub(super) container: Option<String>,
    pub(super) command: Vec<String>,
    pub(super) env: Vec<(String, String)>,
    pub(super) spec: VersionSpec,
    pub(super) ports: Vec<DeployedPort>,
    pub(super) stop: watch::Receiver<bool>,
    /// The external ports' forwarding, stopped when the deployment ends.
    pub(super) forwarding: Forwarding,
}

/// The environment exactly as the contract documents it, after the version's and the
/// deployment's own variables: the `ARBITRIUM_*` variables are written by the contract crate
/// (`edgegap_contract::InjectedEnv`) that the agent's parser reads with.
pub fn launch(
    emulator: &Emulator,
    d: &Deployment,
    runner: Runner,
    extra: &[EnvVar],
    stop: watch::Receiver<bool>,
    forwarding: Forwarding,
) -> Launch {
    let mut env: Vec<(String, String)> = Vec::new();
    for var in d.spec.envs.iter().chain(extra) {
        env.push((var.key.clone(), var.value.clone()));
    }
    let base = super::http::base_url(emulator.addr);
    let injected = InjectedEnv {
        request_id: d.request_id.clone(),
        public_ip: PUBLIC_IP,
        host_id: d.host_id.clone().unwrap_or_else(|| HOST_ID.to_owned()),
        ports: d.ports_mapping(),
        location: d.location.clone(),
        tags: d.tag_names(),
        // Validated as 1..=u32::MAX (`req_cpu`, `req_memory`).
        vcpu_units: u32::try_from(d.spec.req_cpu).unwrap_or(u32::MAX),
        memory_mb: u64::try_from(d.spec.req_memory).unwrap_or_default(),
        delete_url: format!("{base}{}", self_stop_path(&d.request_id, d.access_point_id)),
        delete_token: d.delete_token.clone(),
        context_url: format!("{base}{}", context_path(&d.request_id, d.context_number)),
        context_token: d.context_token.clone(),
    };
    env.extend(injected.variables());
    let (command, container) = match runner {
        Runner::Process(command) => (command, None),
        Runner::Docker { image, args } => {
            let name = format!("edgegap-emulator-{}", d.request_id);
            // The host network: the game binds its internal ports on this machine and
            // reaches the emulator's URLs on 127.0.0.1, exactly as a process would.
            let mut command: Vec<String> = ["docker", "run", "--rm", "--network", "host", "--name"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            command.push(name.clone());
            let mut keys: Vec<&String> = env.iter().map(|(k, _)| k).collect();
            keys.dedup();
            for key in keys {
                // `-e KEY` takes the value from the docker client's environment, so no
                // value (the tokens) shows in the process list.
                command.push("-e".to_owned());
                command.push(key.clone());
            }
            command.push(image);
            command.extend(args);
            (command, Some(name))
        }
    };
    Launch {
        request_id: d.request_id.clone(),
        container,
        command,
        env,
        spec: d.spec.clone(),
        ports: d.ports.clone(),
        stop,
        forwarding,
    }
}
