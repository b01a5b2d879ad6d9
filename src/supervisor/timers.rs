//! The machine's timers as deadlines: at most one per kind, the earliest awaited by the
//! driver. Started and cancelled only through the machine's actions.
//!
//! A timer whose deadline cannot be represented (it lies past what an `Instant` holds) is
//! kept as running but never fires: any duration is accepted without a panic.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::lifecycle::{Action, Timer};
use crate::units::deadline_after;

#[derive(Debug, Default)]
pub struct Timers {
    /// `None`: running, but so far ahead that it never fires.
    deadlines: BTreeMap<Timer, Option<Instant>>,
}

impl Timers {
    /// Starts (or restarts) `timer` to fire `after` from now; returns its deadline (`None`
    /// when it is too far ahead to ever come).
    pub fn start(&mut self, timer: Timer, after: Duration) -> Option<Instant> {
        let deadline = deadline_after(Instant::now(), after);
        self.deadlines.insert(timer, deadline);
        deadline
    }

    /// Carries out the machine's timer actions (`StartTimer`, `CancelTimer`); returns the
    /// timer and its deadline for a start, `None` otherwise (other actions are not timers').
    pub fn apply(&mut self, action: &Action) -> Option<(Timer, Option<Instant>)> {
        match action {
            Action::StartTimer(timer, after) => Some((*timer, self.start(*timer, *after))),
            Action::CancelTimer(timer) => {
                self.cancel(*timer);
                None
            }
            _ => None,
        }
    }

    /// Whether `timer` is running.
    pub fn is_running(&self, timer: Timer) -> bool {
        self.deadlines.contains_key(&timer)
    }

    pub fn cancel(&mut self, timer: Timer) {
        self.deadlines.remove(&timer);
    }

    /// Waits for the earliest deadline, removes it and returns its timer; pending forever
    /// when none is set.
    pub async fn next(&mut self) -> Timer {
        let earliest = self
            .deadlines
            .iter()
            .filter_map(|(t, at)| at.map(|at| (*t, at)))
            .min_by_key(|(_, at)| *at);
        match earliest {
            Some((timer, at)) => {
                tokio::time::sleep_until(at).await;
                self.deadlines.remove(&timer);
                timer
            }
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_earliest_timer_fires_first_and_restarting_moves_it() {
        let mut timers = Timers::default();
        let start = Instant::now();
        timers.start(Timer::Kill, Duration::from_secs(10));
        timers.start(Timer::Idle, Duration::from_secs(5));
        timers.start(Timer::Idle, Duration::from_secs(20));
        timers.start(Timer::Empty, Duration::from_secs(7));
        timers.cancel(Timer::Empty);
        assert_eq!(timers.next().await, Timer::Kill);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        assert_eq!(timers.next().await, Timer::Idle);
        assert_eq!(start.elapsed(), Duration::from_secs(20));
        assert!(
            tokio::time::timeout(Duration::from_secs(3600), timers.next())
                .await
                .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_too_far_ahead_never_fires_and_does_not_hide_the_others() {
        let mut timers = Timers::default();
        assert_eq!(timers.start(Timer::MatchEndDelay, Duration::MAX), None);
        assert!(timers.is_running(Timer::MatchEndDelay));
        timers.start(Timer::Kill, Duration::from_secs(2));
        assert_eq!(timers.next().await, Timer::Kill);
        assert!(
            tokio::time::timeout(Duration::from_secs(365 * 24 * 3600), timers.next())
                .await
                .is_err()
        );
        timers.cancel(Timer::MatchEndDelay);
        assert!(!timers.is_running(Timer::MatchEndDelay));
    }
}
