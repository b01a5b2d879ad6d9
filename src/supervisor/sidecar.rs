//! Sidecar mode: the agent runs beside a game something else started (the image's own
//! entrypoint, `edgegap-agent & exec ./Server`, or the game spawning the agent). The same
//! [`Machine`] decides, with [`MachineOptions::sidecar`] set: the watched process (`--watch-pid`
//! or `--watch-parent`, through a pidfd) is the "game", never signalled, its end taken as exit
//! code 0; without one the game is assumed to run until the agent is stopped. This driver
//! spawns nothing, forwards no signal and reaps nothing: SIGCHLD is dropped, every other
//! signal but TERM and INT (the stops) is taken and ignored.
//!
//! The agent exits with its parent: the parent-death signal (SIGTERM) is asked for at start,
//! unless the parent is the watched process (its end then applies the match-end policy, which
//! the death signal would race). A parent already gone by then is a stop at once.

use std::collections::VecDeque;

use nix::sys::signal::Signal;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::report::{note_request, publish};
use super::timers::Timers;
use super::{call_self_stop, event_for_request, ApiLink, SelfStopCall, SuperviseError};
use crate::exit_code::ChildOutcome;
use crate::lifecycle::{Action, Event, Machine, MachineOptions, Timer};
use crate::os::{self, ProcessWatch, WatchError};

/// What sidecar mode watches (`--watch-pid`, `--watch-parent`, or neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchTarget {
    Nothing,
    Pid(i32),
    Parent,
}

/// Sidecar mode, set up: the process watched, and whether the parent was already gone.
#[derive(Debug)]
pub struct Sidecar {
    watch: Option<ProcessWatch>,
    parent_gone: bool,
}

impl Sidecar {
    /// Opens the watch and asks for the parent-death signal; call it before the runtime
    /// starts, as early as possible. A `--watch-pid` no process has, or a `--watch-parent`
    /// with no parent, is refused.
    pub fn prepare(target: WatchTarget) -> Result<Sidecar, WatchError> {
        let parent = os::parent_pid();
        let watch = match target {
            WatchTarget::Nothing => None,
            WatchTarget::Pid(pid) => Some(ProcessWatch::pid(pid)?),
            WatchTarget::Parent => Some(ProcessWatch::parent(parent)?),
        };
        let watches_parent = watch.as_ref().is_some_and(|w| w.watched_pid() == parent);
        let mut parent_gone = false;
        if !watches_parent && parent > 0 {
            match os::signal_on_parent_death(Signal::SIGTERM, parent) {
                Ok(alive) => parent_gone = !alive,
                Err(error) => {
                    warn!(%error, "cannot ask for a signal at the parent's death: the agent may outlive it")
                }
            }
        }
        Ok(Sidecar { watch, parent_gone })
    }

    /// What the start-up log line says is watched.
    pub fn describe(&self, target: WatchTarget) -> String {
        match (target, &self.watch) {
            (WatchTarget::Pid(pid), _) => format!("watching process {pid} (--watch-pid)"),
            (WatchTarget::Parent, Some(watch)) => format!(
                "watching its parent, process {} (--watch-parent)",
                watch.watched_pid()
            ),
            _ => "watching no process: the match ends through the API and the timeouts; the agent exits with its parent or on SIGTERM".into(),
        }
    }
}

/// Runs the match beside the game to its end; returns the agent's exit code. The handled
/// signals must already be blocked in every thread ([`os::block_handled_signals`]).
pub async fn run(
    sidecar: Sidecar,
    options: MachineOptions,
    mut self_stop: SelfStopCall,
    api: ApiLink,
) -> Result<i32, SuperviseError> {
    let ApiLink {
        mut requests,
        status,
        roster,
    } = api;
    let (events, mut inbox) = mpsc::unbounded_channel();
    let mut signals = os::Signals::new().map_err(SuperviseError::Signals)?;
    let Sidecar { watch, parent_gone } = sidecar;
    let mut watched = watch.as_ref().map(ProcessWatch::watched_pid);
    // Not shown in the status's JSON: no version bump, no waiting client woken.
    status.send_if_modified(|s| {
        s.game_unwatched = watched.is_none();
        false
    });
    let ended = async move {
        match watch {
            Some(watch) => watch.ended().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(ended);
    let mut machine = Machine::new(MachineOptions {
        sidecar: true,
        is_pid1: os::is_pid1(),
        ..options
    });
    let mut timers = Timers::default();
    let mut kill_deadline = None;
    let started = Instant::now();
    let mut queue = VecDeque::from([Event::ChildStarted]);
    if parent_gone {
        info!("the agent's parent is already gone: stopping");
        queue.push_back(Event::Signal(Signal::SIGTERM));
    }
    loop {
        while let Some(event) = queue.pop_front() {
            for action in machine.handle(started.elapsed(), event) {
                match action {
                    Action::StartTimer(..) | Action::CancelTimer(_) => {
                        if let Some((Timer::Kill, deadline)) = timers.apply(&action) {
                            kill_deadline = deadline;
                        }
                    }
                    Action::CallSelfStop => call_self_stop(&mut self_stop, &events),
                    Action::Note(note) => info!("{note}"),
                    Action::Exit(code) => {
                        publish(&machine, &status, &roster, kill_deadline, None);
                        info!(code, "exiting");
                        std::mem::forget(signals);
                        return Ok(code);
                    }
                    // Never decided in sidecar mode (the machine's property tests hold it).
                    other => debug!(?other, "not carried out in sidecar mode"),
                }
            }
        }
        publish(&machine, &status, &roster, kill_deadline, watched);
        let event = tokio::select! {
            signal = signals.recv() => match signal {
                // Nothing of the agent's to reap: it started no process.
                Ok(Signal::SIGCHLD) => continue,
                Ok(signal) => {
                    info!(signal = signal.as_str(), "signal received");
                    Event::Signal(signal)
                }
                Err(error) => {
                    error!(%error, "cannot read signals");
                    return Err(SuperviseError::Signals(error));
                }
            },
            result = &mut ended, if watched.is_some() => {
                let pid = watched.take();
                if let Err(error) = result {
                    error!(%error, "cannot watch the process");
                    return Err(SuperviseError::Watch(error));
                }
                info!(pid, "the watched process has ended: taken as exit code 0 for --on-exit");
                Event::ChildExited { outcome: ChildOutcome::Exited(0), group_left: false }
            }
            Some(event) = inbox.recv() => event,
            Some(request) = requests.recv() => {
                note_request(&status, &request);
                event_for_request(request, &roster)
            }
            timer = timers.next() => {
                if timer == Timer::Idle {
                    queue.push_back(Event::Players(roster.len()));
                }
                Event::TimerFired(timer)
            }
        };
        queue.push_back(event);
    }
}
