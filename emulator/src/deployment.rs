//! A deployment's process life, as the platform runs a container (its environment is built
//! in `environment.rs`): the process in its own group with its output captured, SEEKING → DEPLOYING → READY
//! (readiness probes), the stop sequence (SIGTERM to the group, SIGKILL after the grace
//! period), the restart policy applied to each exit code, `max_duration`, and the webhooks.
//! One task per deployment owns its process; everything else talks to it through the store.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::{sleep, timeout, Instant};

pub use super::environment::{launch, Launch, Runner};
use super::store::{DeployedPort, Deployment, Status};
use super::{fleets, say, views, webhook, Emulator};

/// Delay before a restart, so `always` with a process that exits at once does not spin.
const RESTART_DELAY: Duration = Duration::from_millis(100);
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// `docker run`'s own failure (no such image, daemon error), as opposed to the container's.
const DOCKER_RUN_FAILED: i32 = 125;

/// Changes the deployment `id`, if it still exists.
fn update<T>(
    emulator: &Emulator,
    id: &str,
    change: impl FnOnce(&mut Deployment) -> T,
) -> Option<T> {
    emulator.lock().deployments.get_mut(id).map(change)
}

/// The code the platform reports: the exit code, or 128 + the signal that ended it.
fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Signals the deployment: its process group, or (`--docker`) its container.
async fn signal(container: Option<&str>, pid: Option<u32>, signal: Signal) {
    match container {
        Some(name) => {
            // Fails harmlessly when the container is already gone.
            let _ = Command::new("docker")
                .args(["kill", "--signal", signal.as_str(), name])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
        }
        None => signal_group(pid, signal),
    }
}

fn signal_group(pid: Option<u32>, signal: Signal) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // ESRCH (the group is already gone) is the expected end, not an error.
        let _ = killpg(Pid::from_raw(pid), signal);
    }
}

enum Ended {
    Exited(i32),
    Stop,
    MaxDuration,
}

/// Runs the deployment to its end (TERMINATED or ERROR); its external ports are released
/// before the final status is set, so a client that sees it sees them gone.
pub async fn run(emulator: Arc<Emulator>, mut launch: Launch) {
    let (status, detail) = live(&emulator, &mut launch).await;
    launch.forwarding.stop().await;
    if let Some(name) = &launch.container {
        emulator.guard.forget_container(name);
    }
    finish(&emulator, &launch.request_id, status, detail);
}

/// Whether a stop was asked before READY (carried out once READY or ERROR is reached).
fn stop_deferred(emulator: &Emulator, id: &str) -> bool {
    update(emulator, id, |d| d.stop_when_ready).unwrap_or(false)
}

/// The deployment's process life, restarts included; returns how it ended.
async fn live(emulator: &Arc<Emulator>, launch: &mut Launch) -> (Status, Option<String>) {
    let id = launch.request_id.clone();
    let deadline = max_duration_deadline(emulator, launch.spec.max_duration);
    update(emulator, &id, |d| d.set_status(Status::Deploying));
    let mut probing = false;
    loop {
        let mut child = match spawn(emulator, launch) {
            Ok(child) => child,
            Err(error) => {
                let program = launch.command.first().map_or("", String::as_str);
                let detail = format!("cannot start {program:?}: {error}");
                say(&format!("deployment {id}: {detail}"));
                return (Status::Error, Some(detail));
            }
        };
        let pid = child.id();
        update(emulator, &id, |d| {
            d.pid = pid;
            d.container = launch.container.clone();
        });
        if let Some(pid) = pid {
            emulator.guard.watch_group(pid);
        }
        if let Some(name) = &launch.container {
            emulator.guard.watch_container(name);
        }
        if !probing {
            probing = true;
            tokio::spawn(readiness(
                emulator.clone(),
                id.clone(),
                launch.ports.clone(),
            ));
        }
        let ended = tokio::select! {
            status = child.wait() => Ended::Exited(status.map_or(-1, exit_code)),
            _ = stop_requested(&mut launch.stop) => Ended::Stop,
            _ = until(deadline) => Ended::MaxDuration,
        };
        let code = match ended {
            Ended::Exited(code) => code,
            Ended::Stop | Ended::MaxDuration => {
                if let Ended::MaxDuration = ended {
                    update(emulator, &id, |d| d.event(json!({"event": "max_duration"})));
                }
                let grace = Duration::from_secs(launch.spec.termination_grace_period_seconds);
                let code =
                    stop_sequence(emulator, &id, &mut child, pid, &launch.container, grace).await;
                record_exit(emulator, &id, code);
                forget(emulator, pid);
                return (Status::Terminated, None);
            }
        };
        // What a container's end does to anything left in it.
        signal_group(pid, Signal::SIGKILL);
        record_exit(emulator, &id, code);
        forget(emulator, pid);
        if launch.container.is_some() && code == DOCKER_RUN_FAILED {
            let detail = "docker run failed (exit 125): see the container logs".to_owned();
            return (Status::Error, Some(detail));
        }
        let stopping = *launch.stop.borrow() || stop_deferred(emulator, &id);
        if stopping || !launch.spec.restart_policy.restarts(code) {
            return (Status::Terminated, None);
        }
        update(emulator, &id, |d| {
            d.restart_count += 1;
            d.event(json!({"event": "restart", "after_exit_code": code}));
        });
        tokio::select! {
            _ = sleep(RESTART_DELAY) => {}
            _ = stop_requested(&mut launch.stop) => {
                return (Status::Terminated, None);
            }
            _ = until(deadline) => {
                update(emulator, &id, |d| d.event(json!({"event": "max_duration"})));
                return (Status::Terminated, None);
            }
        }
    }
}

fn max_duration_deadline(emulator: &Emulator, minutes: i64) -> Option<Instant> {
    let minutes = u32::try_from(minutes).ok().filter(|m| *m > 0)?;
    // A deadline too far to represent never comes: no deadline, not a panic.
    Instant::now().checked_add(emulator.settings.minute.saturating_mul(minutes))
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    // An error means the sender (the store's record) is gone: never, while the task lives.
    if stop.wait_for(|requested| *requested).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// SIGTERM to the group, wait up to `grace`, then SIGKILL; returns the exit code.
async fn stop_sequence(
    emulator: &Emulator,
    id: &str,
    child: &mut Child,
    pid: Option<u32>,
    container: &Option<String>,
    grace: Duration,
) -> i32 {
    update(emulator, id, |d| d.set_status(Status::Terminating));
    let (delay, kill_after) = {
        let faults = emulator.faults();
        (faults.sigterm_delay, faults.kill_after)
    };
    if let Some(delay) = delay {
        update(emulator, id, |d| {
            d.event(json!({"event": "fault", "sigterm_delay_ms": delay.as_millis() as u64}))
        });
        // The process may end by itself meanwhile; its exit is then the stop's result.
        if let Ok(status) = timeout(delay, child.wait()).await {
            signal_group(pid, Signal::SIGKILL);
            return status.map_or(-1, exit_code);
        }
    }
    update(emulator, id, |d| {
        d.event(json!({"event": "signal", "signal": "SIGTERM"}));
    });
    let container = container.as_deref();
    signal(container, pid, Signal::SIGTERM).await;
    let kill_at = kill_after.map_or(grace, |early| early.min(grace));
    let code = match timeout(kill_at, child.wait()).await {
        Ok(status) => status.map_or(-1, exit_code),
        Err(_) => {
            update(emulator, id, |d| {
                d.event(json!({"event": "signal", "signal": "SIGKILL",
                    "after_ms": kill_at.as_millis() as u64, "grace_seconds": grace.as_secs()}))
            });
            signal(container, pid, Signal::SIGKILL).await;
            child.wait().await.map_or(-1, exit_code)
        }
    };
    signal_group(pid, Signal::SIGKILL);
    code
}

fn record_exit(emulator: &Emulator, id: &str, code: i32) {
    update(emulator, id, |d| {
        d.last_exit_code = Some(code);
        if code != 0 {
            d.crash_logs = Some(d.logs.text());
        }
        d.pid = None;
        d.event(json!({"event": "exit", "exit_code": code}));
    });
}

fn forget(emulator: &Emulator, pid: Option<u32>) {
    if let Some(pid) = pid {
        emulator.guard.forget_group(pid);
    }
}

fn finish(emulator: &Emulator, id: &str, status: Status, detail: Option<String>) {
    let mut store = emulator.lock();
    let Some(d) = store.deployments.get_mut(id) else {
        return;
    };
    if detail.is_some() {
        d.error_detail = detail;
    }
    d.set_status(status);
    let mut hooks = Vec::new();
    if status == Status::Error {
        hooks.push((d.webhook_on_error.clone(), views::status(d)));
        if d.stop_when_ready {
            // The stop asked before READY is carried out now that ERROR is reached.
            d.event(json!({"event": "deferred_stop", "on": "Status.ERROR"}));
            d.set_status(Status::Terminated);
            hooks.push((d.webhook_on_terminated.clone(), views::status(d)));
        }
    } else {
        hooks.push((d.webhook_on_terminated.clone(), views::status(d)));
    }
    let room = (d.host_id.clone(), d.spec.req_cpu, d.spec.req_memory);
    fleets::release(&mut store, room);
    drop(store);
    for (url, body) in hooks {
        if let Some(url) = url {
            webhook::fire(url, body);
        }
    }
}

fn spawn(emulator: &Arc<Emulator>, launch: &Launch) -> std::io::Result<Child> {
    let (program, args) = launch
        .command
        .split_first()
        .ok_or_else(|| std::io::Error::other("the command is empty"))?;
    let mut command = Command::new(program);
    command.args(args).env_clear();
    for (key, value) in std::env::vars_os() {
        let name = key.to_string_lossy();
        // The docker client also needs to find its daemon.
        let docker = launch.container.is_some()
            && (name.starts_with("DOCKER_") || name == "XDG_RUNTIME_DIR");
        if name == "PATH" || name == "HOME" || docker {
            command.env(&key, value);
        }
    }
    command
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn()?;
    if let Some(out) = child.stdout.take() {
        tokio::spawn(capture(
            emulator.clone(),
            launch.request_id.clone(),
            out,
            false,
        ));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(capture(
            emulator.clone(),
            launch.request_id.clone(),
            err,
            true,
        ));
    }
    update(emulator, &launch.request_id, |d| {
        d.event(json!({"event": "started", "pid": child.id()}))
    });
    Ok(child)
}

/// Copies one output stream, line by line, into the log ring (and echoes it if asked).
async fn capture(
    emulator: Arc<Emulator>,
    id: String,
    stream: impl AsyncRead + Unpin,
    is_err: bool,
) {
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buffer)
            .trim_end_matches(['\n', '\r'])
            .to_owned();
        if emulator.settings.echo_output {
            if is_err {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
        update(&emulator, &id, |d| d.logs.push(line));
    }
}

/// Marks the deployment READY once every TCP `to_check` port accepts a connection.
async fn readiness(emulator: Arc<Emulator>, id: String, ports: Vec<DeployedPort>) {
    let probed: Vec<u16> = ports
        .iter()
        .filter(|p| p.port.to_check && !p.port.is_udp())
        .map(|p| p.port.port)
        .collect();
    loop {
        if update(&emulator, &id, |d| d.status) != Some(Status::Deploying) {
            return;
        }
        let mut all_up = true;
        for port in &probed {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                all_up = false;
                break;
            }
        }
        if all_up {
            let hook = update(&emulator, &id, |d| {
                if d.status != Status::Deploying {
                    return None;
                }
                d.set_status(Status::Ready);
                if d.stop_when_ready {
                    // The stop asked before READY is carried out now.
                    d.event(json!({"event": "deferred_stop", "on": "Status.READY"}));
                    let _ = d.stop.send(true);
                }
                Some((d.webhook_on_ready.clone(), views::status(d)))
            });
            if let Some(Some((Some(url), body))) = hook {
                webhook::fire(url, body);
            }
            return;
        }
        sleep(PROBE_EVERY).await;
    }
}
