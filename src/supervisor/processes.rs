//! The processes the driver starts: the game (and the pre-stop hook) started in the agent's
//! start directory, the game's process group signalled, and what the one `waitpid` owner
//! reaps routed to the machine — the game's end, the hook's, and the end of what the game
//! left in its group.

use std::collections::VecDeque;

use nix::sys::signal::Signal;
use tracing::{debug, error, info};

use super::output::Sink;
use super::Driver;
use crate::lifecycle::Event;
use crate::os::{self, Output, SpawnError, SpawnSpec};

impl Driver {
    /// Starts the game; the event says whether it started.
    pub(super) fn spawn_game(&mut self) -> Result<Event, SpawnError> {
        let output = if self.launch.end_on_log.is_some() {
            Output::Piped
        } else {
            Output::Inherit
        };
        let spawned = os::spawn_in_own_group(&SpawnSpec {
            argv: &self.launch.command,
            set_env: &self.launch.extra_env,
            remove_env: &self.launch.remove_env,
            cwd: self.start_directory.as_deref(),
            output,
        })?;
        info!(pid = spawned.pid.as_raw(), command = ?self.launch.command, "game server started");
        for (fd, sink) in [
            (spawned.stdout, Sink::Stdout),
            (spawned.stderr, Sink::Stderr),
        ] {
            if let Some(fd) = fd {
                self.output.start(
                    fd,
                    sink,
                    self.launch.end_on_log.clone(),
                    self.events.clone(),
                );
            }
        }
        self.game = Some(spawned.pid);
        self.group = Some(spawned.pid);
        Ok(Event::ChildStarted)
    }

    /// Starts the game again in place. Players do not survive it: their connections died
    /// with the old process, so the roster is emptied first (the machine hears of it with
    /// `ChildStarted`), and a player who comes back connects again and is new.
    pub(super) fn restart_game(&mut self) -> Result<Event, SpawnError> {
        let dropped = self.roster.clear();
        if dropped > 0 {
            info!(
                players = dropped,
                "restarting the game: its players' connections are gone"
            );
        }
        self.spawn_game()
    }

    /// Signals the game's process group: the game and what it left there.
    pub(super) fn signal_game(&self, signal: Signal) {
        let Some(group) = self.group else { return };
        debug!(
            signal = signal.as_str(),
            "signalling the game's process group"
        );
        if let Err(error) = os::send_to_group(group, signal) {
            error!(%error, signal = signal.as_str(), "cannot signal the game");
        }
    }

    pub(super) fn run_pre_stop_hook(
        &mut self,
        bound: std::time::Duration,
        queue: &mut VecDeque<Event>,
    ) {
        let Some(command) = self.launch.pre_stop.clone() else {
            queue.push_back(Event::PreStopHookFinished);
            return;
        };
        match os::spawn_in_own_group(&SpawnSpec {
            argv: &command,
            set_env: &self.launch.extra_env,
            remove_env: &self.launch.remove_env,
            cwd: self.start_directory.as_deref(),
            output: Output::Piped,
        }) {
            Ok(spawned) => {
                info!(
                    pid = spawned.pid.as_raw(),
                    ?command,
                    bound_ms = bound.as_millis() as u64,
                    "pre-stop hook started"
                );
                for fd in [spawned.stdout, spawned.stderr].into_iter().flatten() {
                    self.output
                        .start(fd, Sink::Log("pre-stop"), None, self.events.clone());
                }
                self.hook = Some(spawned.pid);
            }
            Err(error) => {
                error!(%error, "cannot run the pre-stop hook; stopping the game without it");
                queue.push_back(Event::PreStopHookFinished);
            }
        }
    }

    /// Reaps every terminated child and routes the game's and the hook's ends, and the end
    /// of what the game left in its group.
    pub(super) fn reap(&mut self, queue: &mut VecDeque<Event>) {
        let mut game_ended = None;
        for reaped in os::reap_exited() {
            if Some(reaped.pid) == self.game {
                info!(pid = reaped.pid.as_raw(), outcome = %reaped.outcome, "game server ended");
                self.game = None;
                game_ended = Some(reaped.outcome);
            } else if Some(reaped.pid) == self.hook {
                info!(outcome = %reaped.outcome, "pre-stop hook ended");
                self.hook = None;
                queue.push_back(Event::PreStopHookFinished);
            } else {
                debug!(pid = reaped.pid.as_raw(), outcome = %reaped.outcome, "reaped an orphaned process");
            }
        }
        match game_ended {
            // Looked at once everything reaped now is gone: a group whose last processes
            // ended with the game is empty already.
            Some(outcome) => {
                let group_left = self.group.is_some_and(os::group_exists);
                if group_left {
                    info!("the game left processes in its process group");
                } else {
                    self.group = None;
                }
                queue.push_back(Event::ChildExited {
                    outcome,
                    group_left,
                });
            }
            None => self.check_group(queue),
        }
    }

    /// Once the game has ended: tells the machine when nothing is left in its group.
    pub(super) fn check_group(&mut self, queue: &mut VecDeque<Event>) {
        if let (None, Some(group)) = (self.game, self.group) {
            if !os::group_exists(group) {
                info!("nothing is left in the game's process group");
                self.group = None;
                queue.push_back(Event::GroupGone);
            }
        }
    }
}
