//! The machine's timers as deadlines: at most one per kind, the earliest awaited by the
//! driver. Started and cancelled only through the machine's actions.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::lifecycle::Timer;

#[derive(Debug, Default)]
pub struct Timers {
    deadlines: BTreeMap<Timer, Instant>,
}

impl Timers {
    /// Starts (or restarts) `timer` to fire `after` from now.
    pub fn start(&mut self, timer: Timer, after: Duration) {
        self.deadlines.insert(timer, Instant::now() + after);
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
            .min_by_key(|(_, at)| **at)
            .map(|(t, at)| (*t, *at));
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
}
