//! Fault injection, so a studio can rehearse an unreliable platform: the self-stop route
//! answering an error status (5xx, or 429 with `Retry-After`), hanging, or refusing the token,
//! for the next N calls; the context route going down; the SIGTERM of a stop delivered late;
//! a SIGKILL before the grace period ends. Set with flags at start (`--self-stop-fault`,
//! `--context-fault`, `--sigterm-delay`, `--kill-after`) or at run time through
//! `/emulator/v1/faults` (see `emulator_routes.rs`).
//!
//! A fault spec is comma-separated: `status=503`, `status=429,retry-after=2`, `hang`,
//! `hang=10s`, `refuse`, each with an optional `times=N` (default: every call from now on).

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{json, Value};

use super::deployments::DEFAULT_HANG;

/// What a faulty route does instead of its job.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer this status (`{"message"}`), with `Retry-After: <seconds>` if given.
    Status { code: u16, retry_after: Option<u64> },
    /// Hold the request this long, then answer 504.
    Hang { for_: Duration },
    /// Answer 401 as if the token were wrong.
    Refuse,
}

impl Fault {
    pub fn describe(&self) -> String {
        match self {
            Fault::Status {
                code,
                retry_after: Some(seconds),
            } => format!("status={code},retry-after={seconds}"),
            Fault::Status { code, .. } => format!("status={code}"),
            Fault::Hang { for_ } => format!("hang={}", humantime::format_duration(*for_)),
            Fault::Refuse => "refuse".to_owned(),
        }
    }
}

/// A fault for the next `times` calls (`None`: all of them).
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub fault: Fault,
    pub times: Option<u32>,
}

/// Parses a fault spec (see the module's doc); errors name the part that is wrong.
pub fn parse(spec: &str) -> Result<Rule, String> {
    let mut fault = None;
    let mut times = None;
    let mut retry_after = None;
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        match key {
            "status" => {
                let code: u16 = value
                    .parse()
                    .ok()
                    .filter(|c| (400..=599).contains(c))
                    .ok_or_else(|| format!("status={value}: expected an HTTP error status 400..599"))?;
                fault = Some(Fault::Status {
                    code,
                    retry_after: None,
                });
            }
            "retry-after" => {
                retry_after = Some(value.parse::<u64>().map_err(|_| {
                    format!("retry-after={value}: expected whole seconds")
                })?)
            }
            "hang" => {
                let for_ = if value.is_empty() {
                    DEFAULT_HANG
                } else {
                    humantime::parse_duration(value)
                        .map_err(|e| format!("hang={value}: {e}"))?
                };
                fault = Some(Fault::Hang { for_ });
            }
            "refuse" => fault = Some(Fault::Refuse),
            "down" => {
                fault = Some(Fault::Status {
                    code: 503,
                    retry_after: None,
                })
            }
            "times" => {
                times = Some(
                    value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("times={value}: expected a positive count"))?,
                )
            }
            other => {
                return Err(format!(
                    "{other:?}: expected status=CODE, retry-after=SECONDS, hang[=DURATION], refuse, down or times=N"
                ))
            }
        }
    }
    let mut fault = fault
        .ok_or_else(|| format!("{spec:?}: no fault given (status=CODE, hang, refuse or down)"))?;
    if let (
        Fault::Status {
            retry_after: slot, ..
        },
        Some(seconds),
    ) = (&mut fault, retry_after)
    {
        *slot = Some(seconds);
    } else if retry_after.is_some() {
        return Err(format!("{spec:?}: retry-after goes with status=CODE"));
    }
    Ok(Rule { fault, times })
}

/// The faults in force, consumed call by call.
#[derive(Debug, Default)]
pub struct Faults {
    pub self_stop: VecDeque<Rule>,
    pub context: VecDeque<Rule>,
    /// A stop's SIGTERM is sent this long after the stop was asked.
    pub sigterm_delay: Option<Duration>,
    /// SIGKILL this long after SIGTERM, whatever the grace period.
    pub kill_after: Option<Duration>,
}

fn next(rules: &mut VecDeque<Rule>) -> Option<Fault> {
    let rule = rules.front_mut()?;
    let fault = rule.fault.clone();
    if let Some(times) = &mut rule.times {
        *times -= 1;
        if *times == 0 {
            rules.pop_front();
        }
    }
    Some(fault)
}

impl Faults {
    pub fn next_self_stop(&mut self) -> Option<Fault> {
        next(&mut self.self_stop)
    }

    pub fn next_context(&mut self) -> Option<Fault> {
        next(&mut self.context)
    }

    pub fn to_json(&self) -> Value {
        let rules = |rules: &VecDeque<Rule>| -> Vec<Value> {
            rules
                .iter()
                .map(|r| json!({"fault": r.fault.describe(), "times": r.times}))
                .collect()
        };
        json!({
            "self_stop": rules(&self.self_stop),
            "context": rules(&self.context),
            "sigterm_delay_ms": self.sigterm_delay.map(|d| d.as_millis() as u64),
            "kill_after_ms": self.kill_after.map(|d| d.as_millis() as u64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_are_consumed_in_order() {
        let mut faults = Faults::default();
        faults
            .self_stop
            .push_back(parse("status=503,times=2").unwrap());
        faults
            .self_stop
            .push_back(parse("status=429,retry-after=3,times=1").unwrap());
        assert_eq!(
            faults.next_self_stop(),
            Some(Fault::Status {
                code: 503,
                retry_after: None
            })
        );
        assert_eq!(
            faults.next_self_stop(),
            Some(Fault::Status {
                code: 503,
                retry_after: None
            })
        );
        assert_eq!(
            faults.next_self_stop(),
            Some(Fault::Status {
                code: 429,
                retry_after: Some(3)
            })
        );
        assert_eq!(faults.next_self_stop(), None);
        faults.context.push_back(parse("down").unwrap());
        for _ in 0..5 {
            assert!(faults.next_context().is_some(), "down lasts");
        }
        assert_eq!(
            parse("hang=2s").unwrap().fault,
            Fault::Hang {
                for_: Duration::from_secs(2)
            }
        );
        assert_eq!(parse("refuse,times=1").unwrap().times, Some(1));
        for bad in [
            "",
            "status=200",
            "times=0,refuse",
            "hang=soon",
            "retry-after=1,refuse",
            "explode",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
