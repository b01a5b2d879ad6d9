//! Wrap mode: start the game server, forward signals to it, reap every zombie, run the match
//! lifecycle, stop the game with grace, and turn its end into the agent's exit code.
//!
//! This module is the async driver around the pure [`Machine`]: it turns signals
//! (read from a `signalfd` on this runtime), reaped children (from the one `waitpid` owner)
//! and the end of what the game left in its process group, timers, log lines, API requests
//! and self-stop results into events, and carries out the actions the machine returns. It
//! decides nothing itself.

mod output;
mod processes;
mod report;
pub mod sidecar;
pub mod timers;

use std::collections::VecDeque;
use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::exit_code;
use crate::lifecycle::{
    Action, AgentStatus, Event, GameRequest, Machine, MachineOptions, Roster, Timer,
};
use crate::os::{self, SpawnError};
use output::PassThroughs;
use timers::Timers;

/// Why wrap mode could not run the game at all.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("cannot take signals (signalfd): {0}")]
    Signals(std::io::Error),
    #[error("cannot watch the process (pidfd): {0}")]
    Watch(std::io::Error),
}

impl SuperviseError {
    pub fn exit_code(&self) -> i32 {
        match self {
            SuperviseError::Spawn(error) => spawn_error_code(error),
            SuperviseError::Signals(_) | SuperviseError::Watch(_) => exit_code::INTERNAL,
        }
    }
}

fn spawn_error_code(error: &SpawnError) -> i32 {
    match error {
        SpawnError::NotFound { .. } | SpawnError::MissingInterpreter { .. } => exit_code::NOT_FOUND,
        SpawnError::NotExecutable { .. } | SpawnError::ExecFormat { .. } => {
            exit_code::NOT_EXECUTABLE
        }
        SpawnError::Other { .. } => exit_code::INTERNAL,
    }
}

/// What the game server is started with.
pub struct Launch {
    pub command: Vec<OsString>,
    /// Variables added to the inherited environment (`EDGEGAP_AGENT_URL`, ...).
    pub extra_env: Vec<(&'static str, String)>,
    /// Variables removed from the inherited environment (the platform's tokens, by default),
    /// for the game and the pre-stop hook alike.
    pub remove_env: Vec<&'static str>,
    /// `--end-on-log`: the game's output is piped through the agent and scanned.
    pub end_on_log: Option<regex_lite::Regex>,
    /// `--pre-stop`.
    pub pre_stop: Option<Vec<OsString>>,
    /// `--kill-margin`: the agent's SIGKILL comes this long before the platform's. At exit, the
    /// agent takes up to half of it to pass on the game's last output, and a quarter more for
    /// its own last lines.
    pub kill_margin: std::time::Duration,
}

/// Asks the platform to stop the deployment, once: `Ok` when it accepted (its SIGTERM will
/// come), `Err(why)` when it will not happen. The caller makes it single-flight and retried.
pub type SelfStopCall =
    Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>>;

/// The supervisor's side of the local API: the game's requests it receives, the status it
/// publishes, and the roster of players it shares with the API (the one set: the driver
/// empties it on a restart in place and tells the machine its size).
pub struct ApiLink {
    pub requests: UnboundedReceiver<GameRequest>,
    pub status: watch::Sender<AgentStatus>,
    pub roster: Roster,
}

/// The driver's state: the machine, its timers, and the processes it started.
struct Driver {
    machine: Machine,
    timers: Timers,
    launch: Launch,
    game: Option<Pid>,
    /// The game's process group (its id is the game's pid), until nothing is left in it.
    group: Option<Pid>,
    hook: Option<Pid>,
    /// Where the agent was started: the game is always started there, though the agent
    /// itself moves to `/` once the game runs.
    start_directory: Option<PathBuf>,
    started: Instant,
    events: UnboundedSender<Event>,
    self_stop: SelfStopCall,
    status: watch::Sender<AgentStatus>,
    roster: Roster,
    /// When the current stop's kill timer fires (kept after it fired, for the status).
    kill_deadline: Option<Instant>,
    /// A stop's time from its start to the kill timer (grace period minus kill margin).
    kill_after: std::time::Duration,
    /// The tasks passing the game's (and the hook's) output through, when it is piped.
    output: PassThroughs,
}

/// How often the driver looks whether the group the game left is empty yet. A process of it
/// that is the agent's child tells by its SIGCHLD; one whose parent is elsewhere does not.
const GROUP_POLL: Duration = Duration::from_millis(100);

/// Runs the game server to its end and returns the agent's exit code, for the agent to exit
/// with at once (what the driver holds is not dropped). The handled signals must already be
/// blocked in every thread ([`os::block_handled_signals`]); `options`' `is_pid1` is filled in
/// here.
pub async fn run(
    launch: Launch,
    options: MachineOptions,
    self_stop: SelfStopCall,
    api: ApiLink,
) -> Result<i32, SuperviseError> {
    let ApiLink {
        mut requests,
        status,
        roster,
    } = api;
    let (events, mut inbox) = mpsc::unbounded_channel();
    let mut signals = os::Signals::new().map_err(SuperviseError::Signals)?;
    let is_pid1 = os::is_pid1();
    if is_pid1 {
        info!("running as PID 1: reaping every orphaned process");
    } else if let Err(error) = os::become_subreaper() {
        warn!(%error, "cannot become a child subreaper: orphans of the game will be reaped by the system's init");
    }

    let start_directory = match os::start_directory() {
        Ok(dir) => Some(dir),
        Err(error) => {
            warn!(%error, "cannot tell the agent's working directory: staying in it");
            None
        }
    };
    let kill_after = options.kill_after;
    let mut driver = Driver {
        machine: Machine::new(MachineOptions { is_pid1, ..options }),
        timers: Timers::default(),
        launch,
        game: None,
        group: None,
        hook: None,
        start_directory,
        started: Instant::now(),
        events,
        self_stop,
        status,
        roster,
        kill_deadline: None,
        kill_after,
        output: PassThroughs::default(),
    };
    // The first start is not retried: a game that cannot start is the agent's failure.
    let mut queue = VecDeque::from([driver.spawn_game()?]);
    // Hold no directory busy (dumb-init does the same); restarts still start in it.
    if driver.start_directory.is_some() {
        if let Err(error) = os::leave_start_directory() {
            warn!(%error, "cannot move the agent's working directory to /");
            driver.start_directory = None;
        }
    }
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
                    driver.publish();
                    driver.finish_output(code).await;
                    // The agent exits next: what the driver holds (the platform client, the
                    // signalfd, ...) is left to the kernel, which frees it all at once, rather
                    // than dropped piece by piece.
                    std::mem::forget(driver);
                    std::mem::forget(signals);
                    return Ok(code);
                }
            }
        }
        driver.publish();
        let left_group = driver.game.is_none() && driver.group.is_some();
        let event = tokio::select! {
            signal = signals.recv() => match signal {
                Ok(Signal::SIGCHLD) => {
                    driver.reap(&mut queue);
                    continue;
                }
                Ok(signal) => Event::Signal(signal),
                Err(error) => {
                    error!(%error, "cannot read signals");
                    return Err(SuperviseError::Signals(error));
                }
            },
            () = tokio::time::sleep(GROUP_POLL), if left_group => {
                driver.check_group(&mut queue);
                continue;
            }
            Some(event) = inbox.recv() => event,
            Some(request) = requests.recv() => {
                driver.note_request(&request);
                event_for_request(request, &driver.roster)
            }
            timer = driver.timers.next() => {
                if timer == Timer::Idle {
                    // A join may be on its way in the request channel: decide on the roster
                    // as it is now.
                    queue.push_back(Event::Players(driver.roster.len()));
                }
                Event::TimerFired(timer)
            }
        };
        queue.push_back(event);
    }
}

/// Starts the self-stop in a task of its own; its outcome comes back to the machine as an
/// event (`SelfStopAccepted` or `SelfStopFailed`). Wrap and sidecar mode alike.
fn call_self_stop(self_stop: &mut SelfStopCall, events: &UnboundedSender<Event>) {
    let call = self_stop();
    let events = events.clone();
    tokio::spawn(async move {
        let event = match call.await {
            Ok(()) => Event::SelfStopAccepted,
            Err(why) => Event::SelfStopFailed(why),
        };
        let _ = events.send(event);
    });
}

/// The machine's event for a request from the API. A join or a leave has already changed
/// the roster (or did, and a restart emptied it since): the machine learns the roster's size
/// as it is now, whatever the order the requests and the restart came in.
pub fn event_for_request(request: GameRequest, roster: &Roster) -> Event {
    match request {
        GameRequest::PlayerConnected(_) | GameRequest::PlayerDisconnected(_) => {
            Event::Players(roster.len())
        }
        request => Event::Game(request),
    }
}

impl Driver {
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
            Action::StartTimer(..) | Action::CancelTimer(_) => {
                if let Some((Timer::Kill, deadline)) = self.timers.apply(&action) {
                    self.kill_deadline = deadline;
                }
            }
            Action::CallSelfStop => call_self_stop(&mut self.self_stop, &self.events),
            Action::SpawnChild => match self.restart_game() {
                Ok(event) => queue.push_back(event),
                Err(error) => {
                    error!(%error, "cannot restart the game server");
                    queue.push_back(Event::ChildSpawnFailed(spawn_error_code(&error)));
                }
            },
            Action::RunPreStopHook(bound) => self.run_pre_stop_hook(bound, queue),
            Action::SuspendSelf => {
                info!("suspending the agent until SIGCONT (job control)");
                if let Err(error) = os::suspend_self() {
                    error!(%error, "cannot suspend the agent");
                }
            }
            Action::Note(note) => info!("{note}"),
            Action::Exit(code) => return Some(code),
        }
        None
    }

    /// The agent's last step: the rest of the output passed on, within the time left before
    /// the platform's SIGKILL (see [`PassThroughs::end`]), and the exit logged.
    async fn finish_output(&mut self, code: i32) {
        // With no stop under way, the kill deadline a stop starting now would have.
        let kill_deadline = self
            .kill_deadline
            .unwrap_or_else(|| output::later(Instant::now(), self.kill_after));
        self.output
            .end(kill_deadline, self.launch.kill_margin, code)
            .await;
    }

    /// Logs a request from the game (see [`report::note_request`]).
    fn note_request(&self, request: &GameRequest) {
        report::note_request(&self.status, request);
    }

    /// Publishes the machine's state to the API, if it changed.
    fn publish(&self) {
        let child_pid = self.game.map(Pid::as_raw);
        report::publish(
            &self.machine,
            &self.status,
            &self.roster,
            self.kill_deadline,
            child_pid,
        );
    }
}
