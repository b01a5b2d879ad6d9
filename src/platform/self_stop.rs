//! The self-stop client: `DELETE $ARBITRIUM_DELETE_URL` with `authorization:
//! $ARBITRIUM_DELETE_TOKEN`, asking the platform to stop this deployment gracefully.
//!
//! [`SelfStop`] is single-flight and idempotent: the first [`SelfStop::stop`] starts the one
//! sequence of attempts in its own task (so a caller that gives up waiting does not cancel
//! it), and every caller, concurrent or later, gets a clone of that sequence's outcome.
//! 2xx is accepted; 404 means the deployment is already gone or stopping; 401/403 (and any
//! other final 4xx/3xx) are rejected without retry; 5xx, 429, 408, timeouts and connection
//! errors are retried under the [`RetryPolicy`]. The outcome carries how many attempts were
//! made, so every attempt can be counted by how it ended ([`SelfStopOutcome::attempt_classes`]).

use std::fmt;
use std::sync::{Arc, Mutex};

use hyper::{Method, StatusCode, Uri};
use tokio::sync::watch;
use tracing::{info, warn};

use super::call::{call_with_retry, Call, CallResult};
use super::client::HttpClient;
use super::env::{EnvProblem, PlatformEnv, DELETE_TOKEN, DELETE_URL};
use super::retry::{JitterSource, RetryPolicy, SplitMix64};
use super::secret::Secret;
use crate::exit_code;

/// Where the DELETE goes and the token it carries.
#[derive(Debug, Clone)]
pub struct SelfStopTarget {
    pub url: Uri,
    pub token: Secret,
}

impl SelfStopTarget {
    /// The target from the environment, or why there is none (naming the variables).
    pub fn from_env(env: &PlatformEnv, problems: &[EnvProblem]) -> Result<Self, String> {
        if !env.on_edgegap {
            return Err(format!(
                "self-stop is not configured (local mode): {DELETE_URL} and {DELETE_TOKEN} are not set"
            ));
        }
        match (&env.delete_url, &env.delete_token) {
            (Some(url), Some(token)) => Ok(SelfStopTarget {
                url: url.clone(),
                token: token.clone(),
            }),
            _ => {
                let mut why: Vec<String> = problems
                    .iter()
                    .filter(|p| p.variable == DELETE_URL || p.variable == DELETE_TOKEN)
                    .map(ToString::to_string)
                    .collect();
                for (name, missing) in [
                    (DELETE_URL, env.delete_url.is_none()),
                    (DELETE_TOKEN, env.delete_token.is_none()),
                ] {
                    if missing && !why.iter().any(|w| w.starts_with(name)) {
                        why.push(format!("{name} is not set"));
                    }
                }
                Err(format!(
                    "self-stop is not configured: {} (the platform injects both on Edgegap)",
                    why.join("; ")
                ))
            }
        }
    }
}

/// How one attempt of a self-stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptClass {
    /// 2xx: the platform accepted the stop.
    Accepted,
    /// 404: the deployment is already stopping or gone.
    AlreadyStopping,
    /// A network error, a timeout, 5xx, 429 or 408: retried (unless it was the last).
    Retryable,
    /// 401/403 or another final refusal: not retried.
    Fatal,
}

impl AttemptClass {
    pub const ALL: [AttemptClass; 4] = [
        AttemptClass::Accepted,
        AttemptClass::AlreadyStopping,
        AttemptClass::Retryable,
        AttemptClass::Fatal,
    ];

    /// A stable name (the `outcome` label of the metric).
    pub fn label(self) -> &'static str {
        match self {
            AttemptClass::Accepted => "accepted",
            AttemptClass::AlreadyStopping => "already_stopping",
            AttemptClass::Retryable => "retryable_error",
            AttemptClass::Fatal => "fatal_error",
        }
    }
}

/// How the self-stop ended. Cloned to every caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfStopOutcome {
    /// 2xx: the platform will stop the deployment (SIGTERM follows).
    Accepted { status: u16, attempts: u32 },
    /// 404: the deployment is already gone or stopping.
    AlreadyGone { attempts: u32 },
    /// 401/403 (or another final refusal): retrying cannot help. `attempts` counts the
    /// retryable failures before it too.
    Rejected { status: u16, attempts: u32 },
    /// No final answer within the policy's attempts and deadline.
    GaveUp { attempts: u32, last_error: String },
    /// No delete URL or token: the agent cannot stop its deployment itself.
    NotConfigured { reason: String },
}

impl SelfStopOutcome {
    /// True when the deployment is stopping (accepted or already gone).
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Accepted { .. } | Self::AlreadyGone { .. })
    }

    /// How each attempt ended, in order. Only a retryable failure is retried, so every
    /// attempt before the last was one; the last is what ended the sequence (itself a
    /// retryable failure when the policy gave up).
    pub fn attempt_classes(&self) -> Vec<AttemptClass> {
        let (attempts, last) = match self {
            Self::Accepted { attempts, .. } => (*attempts, AttemptClass::Accepted),
            Self::AlreadyGone { attempts } => (*attempts, AttemptClass::AlreadyStopping),
            Self::Rejected { attempts, .. } => (*attempts, AttemptClass::Fatal),
            Self::GaveUp { attempts, .. } => (*attempts, AttemptClass::Retryable),
            Self::NotConfigured { .. } => (0, AttemptClass::Fatal),
        };
        let retried = usize::try_from(attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        let mut classes = vec![AttemptClass::Retryable; retried];
        if attempts > 0 {
            classes.push(last);
        }
        classes
    }

    /// The `edgegap-agent self-stop` exit code for this outcome.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Accepted { .. } | Self::AlreadyGone { .. } => exit_code::SUCCESS,
            Self::Rejected { .. } => exit_code::SELF_STOP_REJECTED,
            Self::GaveUp { .. } => exit_code::SELF_STOP_GAVE_UP,
            Self::NotConfigured { .. } => exit_code::USAGE,
        }
    }
}

impl fmt::Display for SelfStopOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Accepted { status, attempts } => write!(f, "self-stop accepted (status {status}, after {attempts} attempt(s))"),
            Self::AlreadyGone { attempts } => write!(f, "the deployment is already gone or stopping (404, after {attempts} attempt(s))"),
            Self::Rejected { status: status @ (401 | 403), attempts } => write!(f, "self-stop rejected with status {status} (attempt {attempts}): check that ARBITRIUM_DELETE_TOKEN is the one the platform injected; not retried"),
            Self::Rejected { status, attempts } => write!(f, "self-stop refused with status {status} (attempt {attempts}); not retried"),
            Self::GaveUp { attempts, last_error } => write!(f, "self-stop failed after {attempts} attempt(s): {last_error}"),
            Self::NotConfigured { reason } => f.write_str(reason),
        }
    }
}

/// The single-flight self-stop handle; cheap to clone.
#[derive(Clone)]
pub struct SelfStop {
    inner: Arc<Inner>,
}

struct Inner {
    target: Result<SelfStopTarget, String>,
    client: HttpClient,
    policy: RetryPolicy,
    jitter: Mutex<Option<Box<dyn JitterSource>>>,
    flight: Mutex<Option<watch::Receiver<Option<SelfStopOutcome>>>>,
}

impl fmt::Debug for SelfStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfStop")
            .field("target", &self.inner.target)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl SelfStop {
    /// A handle for `target` (or the reason there is none), with entropy-seeded jitter.
    pub fn new(
        target: Result<SelfStopTarget, String>,
        client: HttpClient,
        policy: RetryPolicy,
    ) -> Self {
        Self::with_jitter(target, client, policy, Box::new(SplitMix64::from_entropy()))
    }

    /// As [`SelfStop::new`], with the jitter source chosen by the caller (tests).
    pub fn with_jitter(
        target: Result<SelfStopTarget, String>,
        client: HttpClient,
        policy: RetryPolicy,
        jitter: Box<dyn JitterSource>,
    ) -> Self {
        SelfStop {
            inner: Arc::new(Inner {
                target,
                client,
                policy,
                jitter: Mutex::new(Some(jitter)),
                flight: Mutex::new(None),
            }),
        }
    }

    /// Asks the platform to stop this deployment, once. Every call returns the outcome of
    /// the one sequence the first call started. Must run inside a tokio runtime.
    pub async fn stop(&self) -> SelfStopOutcome {
        let mut receiver = {
            let mut flight = self.inner.flight.lock().unwrap_or_else(|p| p.into_inner());
            match &*flight {
                Some(receiver) => receiver.clone(),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    let inner = Arc::clone(&self.inner);
                    tokio::spawn(async move {
                        let outcome = inner.run().await;
                        sender.send_replace(Some(outcome));
                    });
                    *flight = Some(receiver.clone());
                    receiver
                }
            }
        };
        let outcome = match receiver.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        };
        outcome.unwrap_or_else(ended_early)
    }
}

fn ended_early() -> SelfStopOutcome {
    SelfStopOutcome::GaveUp {
        attempts: 0,
        last_error: "the self-stop task ended without a result (runtime shutting down)".to_owned(),
    }
}

impl Inner {
    async fn run(&self) -> SelfStopOutcome {
        let target = match &self.target {
            Ok(target) => target,
            Err(reason) => {
                warn!("{reason}");
                return SelfStopOutcome::NotConfigured {
                    reason: reason.clone(),
                };
            }
        };
        info!(url = %target.url, "asking the platform to stop this deployment");
        let jitter = self.jitter.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut jitter = jitter.unwrap_or_else(|| Box::new(SplitMix64::from_entropy()));
        let call = Call {
            what: "self-stop",
            method: Method::DELETE,
            url: &target.url,
            token: &target.token,
        };
        let outcome = match call_with_retry(&self.client, &self.policy, jitter.as_mut(), call).await
        {
            CallResult::Answered {
                status, attempts, ..
            } if status.is_success() => SelfStopOutcome::Accepted {
                status: status.as_u16(),
                attempts,
            },
            CallResult::Answered {
                status: StatusCode::NOT_FOUND,
                attempts,
                ..
            } => SelfStopOutcome::AlreadyGone { attempts },
            CallResult::Answered {
                status, attempts, ..
            } => SelfStopOutcome::Rejected {
                status: status.as_u16(),
                attempts,
            },
            CallResult::GaveUp {
                attempts,
                last_error,
            } => SelfStopOutcome::GaveUp {
                attempts,
                last_error,
            },
        };
        match &outcome {
            SelfStopOutcome::Accepted { .. } | SelfStopOutcome::AlreadyGone { .. } => {
                info!("{outcome}")
            }
            _ => warn!("{outcome}"),
        }
        outcome
    }
}
