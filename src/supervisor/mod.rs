//! Wrap mode: start the game server, forward signals to it, reap every zombie, stop it with
//! grace, and turn its end into the agent's exit code.
//!
//! This module is the async driver around the pure [`machine::Machine`]: it turns signals
//! (from the `sigwait` thread), reaped children (from the one `waitpid` owner) and the kill
//! timer into events, and carries out the actions the machine returns. It also owns the
//! [`AgentStatus`] the local API serves: it publishes every change (starting → running with
//! the pid → stopping with the kill deadline → exited) and applies the API's commands to it.

pub mod machine;

use std::ffi::OsString;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::api::{AgentStatus, ApiCommand, Lifecycle};
use crate::config::SupervisorOptions;
use crate::exit_code;
use crate::os::{self, SpawnError};
use machine::{Action, Event, Machine};

/// Why wrap mode could not run the game at all.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("cannot start the signal thread: {0}")]
    SignalThread(std::io::Error),
}

impl SuperviseError {
    pub fn exit_code(&self) -> i32 {
        match self {
            SuperviseError::Spawn(SpawnError::NotFound { .. }) => exit_code::NOT_FOUND,
            SuperviseError::Spawn(SpawnError::NotExecutable { .. }) => exit_code::NOT_EXECUTABLE,
            SuperviseError::Spawn(SpawnError::Other { .. }) | SuperviseError::SignalThread(_) => {
                exit_code::INTERNAL
            }
        }
    }
}

/// What the game server is started with.
pub struct Launch<'a> {
    pub command: &'a [OsString],
    /// Variables added to the inherited environment (`EDGEGAP_AGENT_URL`, ...).
    pub extra_env: Vec<(&'static str, String)>,
}

/// The supervisor's side of the local API: the commands it receives and the status it
/// publishes.
pub struct ApiLink {
    pub commands: mpsc::UnboundedReceiver<ApiCommand>,
    pub status: watch::Sender<AgentStatus>,
}

/// Runs the game server to its end and returns the agent's exit code. The handled signals
/// must already be blocked in every thread ([`os::block_handled_signals`]).
pub async fn run(
    launch: Launch<'_>,
    options: SupervisorOptions,
    api: ApiLink,
) -> Result<i32, SuperviseError> {
    let ApiLink {
        mut commands,
        status,
    } = api;
    let (signal_tx, mut signals) = mpsc::unbounded_channel();
    os::spawn_signal_waiter(signal_tx).map_err(SuperviseError::SignalThread)?;
    if os::is_pid1() {
        info!("running as PID 1: reaping every orphaned process");
    } else if let Err(error) = os::become_subreaper() {
        warn!(%error, "cannot become a child subreaper: orphans of the game will be reaped by the system's init");
    }

    let child = os::spawn_in_own_group(launch.command, &launch.extra_env)?;
    info!(pid = child.as_raw(), command = ?launch.command, "game server started");
    status.send_modify(|s| {
        s.lifecycle = Lifecycle::Running;
        s.child_pid = Some(child.as_raw());
    });

    let mut machine = Machine::new(options);
    let mut kill_at: Option<Instant> = None;
    let mut api_open = true;
    loop {
        let event = tokio::select! {
            command = commands.recv(), if api_open => {
                match command {
                    Some(command) => apply_command(&status, command),
                    // Every API state is gone: nothing more will come.
                    None => api_open = false,
                }
                continue;
            },
            received = signals.recv() => match received {
                Some(Signal::SIGCHLD) => match reap(child) {
                    Some(outcome) => Event::ChildExited(outcome),
                    None => continue,
                },
                Some(signal) => Event::Signal(signal),
                // The signal thread is gone (it cannot end while we hold the receiver).
                None => continue,
            },
            () = sleep_until_deadline(kill_at) => {
                kill_at = None;
                Event::KillTimerFired
            }
        };
        if let Event::Signal(signal) = event {
            info!(signal = signal.as_str(), "signal received");
        }
        for action in machine.handle(event) {
            match action {
                Action::SignalGroup(signal) => {
                    debug!(
                        signal = signal.as_str(),
                        "signalling the game's process group"
                    );
                    if let Err(error) = os::send_to_group(child, signal) {
                        error!(%error, signal = signal.as_str(), "cannot signal the game");
                    }
                }
                Action::StartKillTimer(after) => {
                    info!(
                        kill_in_ms = after.as_millis() as u64,
                        "stopping the game; it is killed if still running then"
                    );
                    kill_at = Some(Instant::now() + after);
                    status.send_modify(|s| s.lifecycle = Lifecycle::stopping_in(after));
                }
                Action::KillGroup => {
                    warn!("grace period over: killing the game's process group");
                    if let Err(error) = os::send_to_group(child, Signal::SIGKILL) {
                        error!(%error, "cannot kill the game");
                    }
                }
                Action::Exit(code) => {
                    // Reap whatever else already ended, so nothing is left as a zombie.
                    reap(child);
                    info!(code, "exiting");
                    status.send_modify(|s| {
                        s.lifecycle = Lifecycle::Exited { code };
                        s.child_pid = None;
                    });
                    return Ok(code);
                }
            }
        }
    }
}

/// Applies one command from the local API to the published status. A match end is only
/// recorded and logged for now: the self-stop and the lifecycle events that follow it belong
/// to the state machine.
fn apply_command(status: &watch::Sender<AgentStatus>, command: ApiCommand) {
    match &command {
        ApiCommand::Ready => info!("the game server says it is ready"),
        ApiCommand::Heartbeat => debug!("heartbeat from the game server"),
        ApiCommand::MatchEnd { reason, delay } => info!(
            reason = reason.as_deref().unwrap_or("match ended"),
            delay_ms = delay.map(|d| d.as_millis() as u64),
            "the game server reports the end of the match"
        ),
        ApiCommand::PlayerConnected(id) => debug!(player = %id, "player connected"),
        ApiCommand::PlayerDisconnected(id) => debug!(player = %id, "player disconnected"),
    }
    status.send_modify(|s| s.apply(&command));
}

/// Reaps every terminated child and returns the main child's outcome if it was among them.
fn reap(child: Pid) -> Option<os::ChildOutcome> {
    let mut main_outcome = None;
    for reaped in os::reap_exited() {
        if reaped.pid == child {
            info!(pid = child.as_raw(), outcome = %reaped.outcome, "game server ended");
            main_outcome = Some(reaped.outcome);
        } else {
            debug!(pid = reaped.pid.as_raw(), outcome = %reaped.outcome, "reaped an orphaned process");
        }
    }
    main_outcome
}

async fn sleep_until_deadline(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
