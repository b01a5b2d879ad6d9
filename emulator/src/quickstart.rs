//! The emulator's command line, and the quick start: with a command after `--`, create app
//! `quickstart`, version `local` (its ports, grace period, restart policy, max duration and
//! env from the flags, the command standing in for the image) and deploy it, through the same
//! handlers the HTTP API uses; stream its output; end when the deployment is over, with the
//! process's last exit code (1 if it never started). With `--docker`, the first word after
//! `--` is a local image (`name:tag`) and the rest its arguments: `edgegap-emulator --docker
//! --port game:7777/udp -- my-game:1.0 --level 3`. Without a command, only serve the API.
//! SIGINT or SIGTERM to the emulator stops every deployment (SIGTERM, grace, SIGKILL) first.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use clap::Parser;
use serde_json::{json, Value};

use super::deploy::{create, DeployRequest};
use super::faults::{self, Faults, Rule};
use super::fleets::{self, PrivateHost};
use super::store::Status;
use super::{apps, random_hex, say, start, stop_all, Emulator, Settings};

/// Emulates the Edgegap platform locally: its API, and the life of deployments.
#[derive(Parser, Debug)]
#[command(name = "edgegap-emulator", version)]
pub struct Cli {
    /// Address the API listens on (`127.0.0.1:0` picks a free port).
    #[arg(
        long,
        default_value = "127.0.0.1:7000",
        env = "EDGEGAP_EMULATOR_LISTEN"
    )]
    pub listen: SocketAddr,
    /// The API key (`Authorization: token <key>`); a random one is printed when not given.
    #[arg(long, env = "EDGEGAP_EMULATOR_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Quick start: a port `name:PORT/protocol[:check]`, e.g. `game:7777/udp`, `web:8080/tcp:check`.
    #[arg(long = "port", value_parser = parse_port)]
    pub ports: Vec<Value>,
    /// Quick start: `termination_grace_period_seconds` as a duration (5s..3600s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub grace_period: Option<Duration>,
    /// Quick start: `restart_policy`.
    #[arg(long, value_parser = ["always", "never", "on_failure"])]
    pub restart_policy: Option<String>,
    /// Quick start: `max_duration` in minutes (-1..1440).
    #[arg(long, allow_negative_numbers = true)]
    pub max_duration: Option<i64>,
    /// Testing knob: how long one `max_duration` minute lasts in the emulator.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub max_duration_unit: Duration,
    /// Quick start: a version env var `KEY=VALUE` (repeatable).
    #[arg(long = "env", value_parser = parse_env)]
    pub envs: Vec<Value>,
    /// Run each version's image (`docker_repository/docker_image:docker_tag`; `local`
    /// repository: an image of this machine) with `docker run --network host`; the version's
    /// `command`, if any, is passed to the image's entrypoint. With a quick start, the first
    /// word after `--` is the local image (`name:tag`), the rest its arguments.
    #[arg(long)]
    pub docker: bool,
    /// A private-fleet host `FLEET/HOST:CPU_UNITS:MEMORY_MB` (repeatable), for
    /// `POST /v2/private-fleets:deploy`, e.g. `test-fleet/alpha-1:4096:8192`.
    #[arg(long = "private-host", value_parser = fleets::parse_host)]
    pub private_hosts: Vec<PrivateHost>,
    /// Fault: the self-stop route misbehaves, e.g. `status=503,times=3`,
    /// `status=429,retry-after=2,times=1`, `hang=10s,times=1`, `refuse,times=2` (repeatable;
    /// in order; without `times`, for every call).
    #[arg(long = "self-stop-fault", value_parser = faults::parse)]
    pub self_stop_faults: Vec<Rule>,
    /// Fault: the context route misbehaves, e.g. `down` (503 for every call),
    /// `status=500,times=2`, `hang=5s` (repeatable).
    #[arg(long = "context-fault", value_parser = faults::parse)]
    pub context_faults: Vec<Rule>,
    /// Fault: a stop's SIGTERM is sent this long after the stop was asked.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub sigterm_delay: Option<Duration>,
    /// Fault: SIGKILL this long after SIGTERM, before the grace period ends.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub kill_after: Option<Duration>,
    /// How often each deployment's processes are sampled for `GET /v1/metrics/deployment`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub metrics_interval: Duration,
    /// Report each port's external port as its internal port instead of allocating one and
    /// forwarding it (on 127.0.0.1) to the internal port.
    #[arg(long)]
    pub same_ports: bool,
    /// How long a UDP client of a forwarded port may be silent (both ways) before its relay
    /// socket is closed; its next datagram opens a new one.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub udp_idle_timeout: Duration,
    /// Quick start: the command to deploy, standing in for the version's image.
    #[arg(last = true)]
    pub command: Vec<String>,
}

fn parse_port(text: &str) -> Result<Value, String> {
    let usage = || format!("expected name:PORT/protocol[:check], got {text:?}");
    let (name, rest) = text.split_once(':').ok_or_else(usage)?;
    let (number, rest) = rest.split_once('/').ok_or_else(usage)?;
    let (protocol, check) = match rest.split_once(':') {
        Some((protocol, "check")) => (protocol, true),
        Some(_) => return Err(usage()),
        None => (rest, false),
    };
    let port: u16 = number.parse().map_err(|_| usage())?;
    Ok(json!({"name": name, "port": port, "protocol": protocol.to_uppercase(), "to_check": check}))
}

fn parse_env(text: &str) -> Result<Value, String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))?;
    Ok(json!({"key": key, "value": value, "is_hidden": false}))
}

/// Runs the emulator; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let generated = cli.api_token.is_none();
    let api_token = match cli.api_token.clone().map_or_else(|| random_hex(16), Ok) {
        Ok(token) => token,
        Err(error) => {
            say(&format!("cannot make an API key: {error}"));
            return 70;
        }
    };
    let settings = Settings {
        api_token: api_token.clone(),
        minute: cli.max_duration_unit,
        same_ports: cli.same_ports,
        udp_idle: cli.udp_idle_timeout,
        echo_output: !cli.command.is_empty(),
        docker: cli.docker,
        metrics_interval: cli.metrics_interval.max(Duration::from_millis(10)),
    };
    let faults = Faults {
        self_stop: cli.self_stop_faults.clone().into(),
        context: cli.context_faults.clone().into(),
        sigterm_delay: cli.sigterm_delay,
        kill_after: cli.kill_after,
    };
    let emulator = match start(cli.listen, settings, cli.private_hosts.clone(), faults).await {
        Ok(emulator) => emulator,
        Err(error) => {
            say(&format!("cannot listen on {}: {error}", cli.listen));
            return 69;
        }
    };
    // On stdout, so scripts and tests can read the address (and a generated key).
    println!("edgegap-emulator listening on http://{}", emulator.addr);
    if generated {
        println!("edgegap-emulator API key: {api_token} (send `Authorization: token <key>`)");
    }
    if cli.command.is_empty() {
        wait_for_signal().await;
        stop_all(&emulator).await;
        return 0;
    }
    let id = match deploy(&emulator, &cli).await {
        Ok(id) => id,
        Err(message) => {
            say(&message);
            return 64;
        }
    };
    say(&format!("deployment {id} of quickstart/local started"));
    tokio::select! {
        _ = wait_for_signal() => stop_all(&emulator).await,
        _ = wait_final(&emulator, &id) => {}
    }
    let store = emulator.lock();
    let Some(deployment) = store.deployments.get(&id) else {
        return 70;
    };
    say(&format!(
        "deployment {id} is {}",
        deployment.status.as_str()
    ));
    match (deployment.status, deployment.last_exit_code) {
        (Status::Error, _) => 1,
        (_, Some(code)) => code.clamp(0, 255),
        (_, None) => 0,
    }
}

async fn deploy(emulator: &std::sync::Arc<Emulator>, cli: &Cli) -> Result<String, String> {
    let body = |value: Value| Bytes::from(value.to_string());
    let app = json!({"name": "quickstart", "is_active": true, "image": ""});
    apps::create_app(State(emulator.clone()), body(app))
        .await
        .map_err(|e| format!("cannot create app quickstart: {}", e.message))?;
    let (repository, image, tag, command) = if cli.docker {
        let (reference, args) = cli
            .command
            .split_first()
            .ok_or_else(|| "--docker: give the image after --".to_owned())?;
        let (image, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
        ("local", image.to_owned(), tag.to_owned(), args.to_vec())
    } else {
        (
            "local",
            "quickstart".to_owned(),
            "local".to_owned(),
            cli.command.clone(),
        )
    };
    let mut version = json!({
        "name": "local",
        "docker_repository": repository,
        "docker_image": image,
        "docker_tag": tag,
        "req_cpu": 1024,
        "req_memory": 1024,
        "ports": cli.ports,
        "envs": cli.envs,
    });
    if !command.is_empty() {
        version["command"] = json!(command);
    }
    if let Some(grace) = cli.grace_period {
        version["termination_grace_period_seconds"] = json!(grace.as_secs_f64().ceil() as u64);
    }
    if let Some(policy) = &cli.restart_policy {
        version["restart_policy"] = json!(policy);
    }
    if let Some(minutes) = cli.max_duration {
        version["max_duration"] = json!(minutes);
    }
    apps::create_version(
        State(emulator.clone()),
        axum::extract::Path("quickstart".to_owned()),
        body(version),
    )
    .await
    .map_err(|e| format!("invalid quick-start version: {}", e.message))?;
    let request = DeployRequest {
        app: "quickstart".to_owned(),
        version: Some("local".to_owned()),
        tags: Vec::new(),
        env: Vec::new(),
        hooks: [None, None, None],
        private_host_ids: Vec::new(),
        command: String::new(),
        arguments: String::new(),
    };
    create(emulator, request)
        .map(|created| created.request_id)
        .map_err(|e| format!("cannot deploy: {}", e.message))
}

async fn wait_final(emulator: &Emulator, id: &str) {
    loop {
        let done = emulator
            .lock()
            .deployments
            .get(id)
            .is_none_or(|d| d.status.is_final());
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        say("cannot watch SIGINT/SIGTERM; stop the emulator with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => say("SIGINT: stopping every deployment"),
        _ = term.recv() => say("SIGTERM: stopping every deployment"),
    }
}
