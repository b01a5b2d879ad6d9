//! What the agent does when the game exits on its own: the `--on-exit` policy, the restart
//! budget and its backoff. Pure values and maths, no clocks.

use std::collections::BTreeMap;

use crate::units::parse_pairs;
use std::time::Duration;

/// What to do with a game that exited with some code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitAction {
    /// End the match: self-stop, then exit (with the code, per `--exit-code-map`).
    Stop,
    /// Start the game again in place, within the restart budget.
    Restart,
    /// Exit with the code and let the platform's restart policy decide.
    Exit,
}

impl ExitAction {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "stop" => Ok(ExitAction::Stop),
            "restart" => Ok(ExitAction::Restart),
            "exit" => Ok(ExitAction::Exit),
            other => Err(format!(
                "{other:?} is not an action (expected stop, restart or exit)"
            )),
        }
    }
}

/// `--on-exit 0=stop,3=restart,*=exit`: an action per exit code (128+N for signal N), and
/// one for every other code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnExitPolicy {
    by_code: BTreeMap<u8, ExitAction>,
    otherwise: ExitAction,
}

impl Default for OnExitPolicy {
    /// `0=stop,*=exit`: a game that ends cleanly ends the match; a crash is left to the
    /// platform's restart policy.
    fn default() -> Self {
        OnExitPolicy {
            by_code: BTreeMap::from([(0, ExitAction::Stop)]),
            otherwise: ExitAction::Exit,
        }
    }
}

impl OnExitPolicy {
    pub const DEFAULT_TEXT: &'static str = "0=stop,*=exit";

    pub fn parse(text: &str) -> Result<Self, String> {
        // Keyed by the code, `None` standing for `*`.
        let pairs = parse_pairs(
            text,
            "CODE=ACTION",
            |code| match code.trim() {
                "*" => Ok(None),
                code => code
                    .parse::<u8>()
                    .map(Some)
                    .map_err(|_| format!("{code:?} is not an exit code (expected 0..=255 or *)")),
            },
            ExitAction::parse,
        )?;
        let otherwise = pairs.get(&None).copied().unwrap_or(ExitAction::Exit);
        let by_code = pairs
            .into_iter()
            .filter_map(|(code, action)| code.map(|code| (code, action)))
            .collect();
        Ok(OnExitPolicy { by_code, otherwise })
    }

    pub fn action_for(&self, code: i32) -> ExitAction {
        u8::try_from(code)
            .ok()
            .and_then(|c| self.by_code.get(&c).copied())
            .unwrap_or(self.otherwise)
    }

    /// Whether any code (or `*`) says `restart`.
    pub fn restarts_any(&self) -> bool {
        self.otherwise == ExitAction::Restart
            || self.by_code.values().any(|a| *a == ExitAction::Restart)
    }

    /// What applies once the restart budget is spent: the `*` action, or `exit` when `*`
    /// itself says restart.
    pub fn fallback(&self) -> ExitAction {
        match self.otherwise {
            ExitAction::Restart => ExitAction::Exit,
            other => other,
        }
    }
}

/// At most `max_restarts` restarts within any `window`; the n-th consecutive restart waits
/// `initial_backoff * 2^n`, capped at `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBudget {
    pub max_restarts: u32,
    pub window: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl RestartBudget {
    /// Whether one more restart fits, given the times (since start) of earlier restarts.
    pub fn allows(&self, earlier: &[Duration], now: Duration) -> bool {
        let recent = earlier
            .iter()
            .filter(|&&at| now.saturating_sub(at) < self.window)
            .count();
        u32::try_from(recent).unwrap_or(u32::MAX) < self.max_restarts
    }

    /// The wait before restart number `attempt` (0 for the first).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_stops_on_0_and_exits_otherwise() {
        let policy = OnExitPolicy::parse(OnExitPolicy::DEFAULT_TEXT).unwrap();
        assert_eq!(policy, OnExitPolicy::default());
        assert_eq!(policy.action_for(0), ExitAction::Stop);
        assert_eq!(policy.action_for(1), ExitAction::Exit);
        assert_eq!(policy.action_for(143), ExitAction::Exit);
    }

    #[test]
    fn codes_and_the_wildcard_map_to_actions() {
        let policy = OnExitPolicy::parse("0=stop, 3=restart,137=RESTART,*=stop").unwrap();
        assert_eq!(policy.action_for(3), ExitAction::Restart);
        assert_eq!(policy.action_for(137), ExitAction::Restart);
        assert_eq!(policy.action_for(42), ExitAction::Stop);
        assert_eq!(policy.fallback(), ExitAction::Stop);
        assert_eq!(
            OnExitPolicy::parse("*=restart").unwrap().fallback(),
            ExitAction::Exit
        );
        assert_eq!(
            OnExitPolicy::parse("").unwrap().action_for(0),
            ExitAction::Exit
        );
    }

    #[test]
    fn bad_policies_name_the_bad_part() {
        assert!(OnExitPolicy::parse("0")
            .unwrap_err()
            .contains("CODE=ACTION"));
        assert!(OnExitPolicy::parse("0=reboot")
            .unwrap_err()
            .contains("\"reboot\""));
        assert!(OnExitPolicy::parse("256=stop")
            .unwrap_err()
            .contains("\"256\""));
        assert!(OnExitPolicy::parse("1=stop,1=exit")
            .unwrap_err()
            .contains("twice"));
        assert!(OnExitPolicy::parse("*=stop,*=exit")
            .unwrap_err()
            .contains("twice"));
    }

    fn budget() -> RestartBudget {
        RestartBudget {
            max_restarts: 3,
            window: Duration::from_secs(60),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
        }
    }

    #[test]
    fn the_budget_counts_restarts_inside_the_window_only() {
        let s = Duration::from_secs;
        assert!(budget().allows(&[], s(0)));
        assert!(budget().allows(&[s(1), s(2)], s(3)));
        assert!(!budget().allows(&[s(1), s(2), s(3)], s(4)));
        // The first restart has left the window.
        assert!(budget().allows(&[s(1), s(2), s(3)], s(61)));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = Duration::from_secs;
        let delays: Vec<_> = (0..6).map(|n| budget().backoff(n)).collect();
        assert_eq!(delays, [s(1), s(2), s(4), s(5), s(5), s(5)]);
        assert_eq!(budget().backoff(u32::MAX), s(5));
    }
}
