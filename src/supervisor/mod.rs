//! Wrap mode: start the game server, forward signals to it, reap every zombie, run the match
//! lifecycle, stop the game with grace, and turn its end into the agent's exit code.
//!
//! This module is the async driver around the pure [`machine::Machine`]: it turns signals
//! (from the `sigwait` thread), reaped children (from the one `waitpid` owner), timers, log
//! lines, API requests and self-stop results into events, and carries out the actions the
//! machine returns. It decides nothing itself.

pub mod machine;
mod output;
pub mod policy;
mod timers;

use std::collections::VecDeque;
use std::ffi::OsString;
use std::future::Future;
use std::pin::Pin;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::exit_code;
use crate::os::{self, Output, SpawnError};
use machine::{Action, Event, Machine, MachineOptions, SelfStopResult};
use output::Sink;
pub use timers::Timers;

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
            SuperviseError::Spawn(error) => spawn_error_code(error),
            SuperviseError::SignalThread(_) => exit_code::INTERNAL,
        }
    }
}

fn spawn_error_code(error: &SpawnError) -> i32 {
    match error {
        SpawnError::NotFound { .. } => exit_code::NOT_FOUND,
        SpawnError::NotExecutable { .. } => exit_code::NOT_EXECUTABLE,
        SpawnError::Other { .. } => exit_code::INTERNAL,
    }
}

/// What the game server is started with.
pub struct Launch {
    pub command: Vec<OsString>,
    /// Variables added to the inherited environment (`EDGEGAP_AGENT_URL`, ...).
    pub extra_env: Vec<(&'static str, String)>,
    /// `--end-on-log`: the game's output is piped through the agent and scanned.
    pub end_on_log: Option<regex_lite::Regex>,
    /// `--pre-stop`.
    pub pre_stop: Option<Vec<OsString>>,
}

/// One self-stop sequence (single-flight and retried by the platform client).
pub type SelfStopCall = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = SelfStopResult> + Send>>>;

/// The channel other parts of the agent (the local API) feed events through.
pub fn event_channel() -> (UnboundedSender<Event>, UnboundedReceiver<Event>) {
    mpsc::unbounded_channel()
}

/// The supervisor's view of the running system, for the API's status.
pub struct Driver {
    machine: Machine,
    timers: Timers,
    launch: Launch,
    game: Option<Pid>,
    hook: Option<Pid>,
    started: Instant,
    events: UnboundedSender<Event>,
    self_stop: SelfStopCall,
}

/// Runs the game server to its end and returns the agent's exit code. The handled signals
/// must already be blocked in every thread ([`os::block_handled_signals`]).
pub async fn run(
    launch: Launch,
    options: MachineOptions,
    (events, mut inbox): (UnboundedSender<Event>, UnboundedReceiver<Event>),
    self_stop: SelfStopCall,
) -> Result<i32, SuperviseError> {
    let (signal_tx, mut signals) = mpsc::unbounded_channel();
    os::spawn_signal_waiter(signal_tx).map_err(SuperviseError::SignalThread)?;
    if os::is_pid1() {
        info!("running as PID 1: reaping every orphaned process");
    } else if let Err(error) = os::become_subreaper() {
        warn!(%error, "cannot become a child subreaper: orphans of the game will be reaped by the system's init");
    }

    let mut driver = Driver {
        machine: Machine::new(options),
        timers: Timers::default(),
        launch,
        game: None,
        hook: None,
        started: Instant::now(),
        events,
        self_stop,
    };
    // The first start is not retried: a game that cannot start is the agent's failure.
    let mut queue = VecDeque::from([driver.spawn_game()?]);
    loop {
        while let Some(event) = queue.pop_front() {
            if let Event::Signal(signal) = &event {
                info!(signal = signal.as_str(), "signal received");
            }
            let now = driver.started.elapsed();
            for action in driver.machine.handle(now, event) {
                if let Some(code) = driver.perform(action, &mut queue) {
                    // Reap whatever else already ended, so nothing is left as a zombie.
                    driver.reap(&mut queue);
                    info!(code, "exiting");
                    return Ok(code);
                }
            }
        }
        let event = tokio::select! {
            Some(signal) = signals.recv() => {
                if signal == Signal::SIGCHLD {
                    driver.reap(&mut queue);
                    continue;
                }
                Event::Signal(signal)
            }
            Some(event) = inbox.recv() => event,
            timer = driver.timers.next() => Event::TimerFired(timer),
        };
        queue.push_back(event);
    }
}

impl Driver {
    /// Starts the game; the event says whether it started.
    fn spawn_game(&mut self) -> Result<Event, SpawnError> {
        let output = if self.launch.end_on_log.is_some() {
            Output::Piped
        } else {
            Output::Inherit
        };
        let spawned = os::spawn_in_own_group(&self.launch.command, &self.launch.extra_env, output)?;
        info!(pid = spawned.pid.as_raw(), command = ?self.launch.command, "game server started");
        for (fd, sink) in [
            (spawned.stdout, Sink::Stdout),
            (spawned.stderr, Sink::Stderr),
        ] {
            if let Some(fd) = fd {
                output::pass_through(
                    fd,
                    sink,
                    self.launch.end_on_log.clone(),
                    self.events.clone(),
                );
            }
        }
        self.game = Some(spawned.pid);
        Ok(Event::ChildStarted)
    }

    /// Carries out one action; returns the exit code when the action is to exit.
    fn perform(&mut self, action: Action, queue: &mut VecDeque<Event>) -> Option<i32> {
        match action {
            Action::SignalGroup(signal) => self.signal_game(signal),
            Action::KillGroup => {
                self.signal_game(Signal::SIGKILL);
                if let Some(hook) = self.hook.take() {
                    let _ = os::send_to_group(hook, Signal::SIGKILL);
                }
            }
            Action::StartTimer(timer, after) => self.timers.start(timer, after),
            Action::CancelTimer(timer) => self.timers.cancel(timer),
            Action::CallSelfStop => {
                let call = (self.self_stop)();
                let events = self.events.clone();
                tokio::spawn(async move {
                    let _ = events.send(Event::SelfStopFinished(call.await));
                });
            }
            Action::SpawnChild => match self.spawn_game() {
                Ok(event) => queue.push_back(event),
                Err(error) => {
                    error!(%error, "cannot restart the game server");
                    queue.push_back(Event::ChildSpawnFailed(spawn_error_code(&error)));
                }
            },
            Action::RunPreStopHook(bound) => self.run_pre_stop_hook(bound, queue),
            Action::Note(note) => info!("{note}"),
            Action::Exit(code) => return Some(code),
        }
        None
    }

    fn signal_game(&self, signal: Signal) {
        let Some(game) = self.game else { return };
        debug!(
            signal = signal.as_str(),
            "signalling the game's process group"
        );
        if let Err(error) = os::send_to_group(game, signal) {
            error!(%error, signal = signal.as_str(), "cannot signal the game");
        }
    }

    fn run_pre_stop_hook(&mut self, bound: std::time::Duration, queue: &mut VecDeque<Event>) {
        let Some(command) = self.launch.pre_stop.clone() else {
            queue.push_back(Event::PreStopHookFinished);
            return;
        };
        match os::spawn_in_own_group(&command, &self.launch.extra_env, Output::Piped) {
            Ok(spawned) => {
                info!(
                    pid = spawned.pid.as_raw(),
                    ?command,
                    bound_ms = bound.as_millis() as u64,
                    "pre-stop hook started"
                );
                for fd in [spawned.stdout, spawned.stderr].into_iter().flatten() {
                    output::pass_through(fd, Sink::Log("pre-stop"), None, self.events.clone());
                }
                self.hook = Some(spawned.pid);
            }
            Err(error) => {
                error!(%error, "cannot run the pre-stop hook; stopping the game without it");
                queue.push_back(Event::PreStopHookFinished);
            }
        }
    }

    /// Reaps every terminated child and routes the game's and the hook's ends.
    fn reap(&mut self, queue: &mut VecDeque<Event>) {
        for reaped in os::reap_exited() {
            if Some(reaped.pid) == self.game {
                info!(pid = reaped.pid.as_raw(), outcome = %reaped.outcome, "game server ended");
                self.game = None;
                queue.push_back(Event::ChildExited(reaped.outcome));
            } else if Some(reaped.pid) == self.hook {
                info!(outcome = %reaped.outcome, "pre-stop hook ended");
                self.hook = None;
                queue.push_back(Event::PreStopHookFinished);
            } else {
                debug!(pid = reaped.pid.as_raw(), outcome = %reaped.outcome, "reaped an orphaned process");
            }
        }
    }
}
