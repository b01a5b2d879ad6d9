//! The deployment's context: `GET $ARBITRIUM_CONTEXT_URL` with `authorization:
//! $ARBITRIUM_CONTEXT_TOKEN`, under the same retry policy as the self-stop.
//!
//! The document has the shape of the platform's deployment status (`fqdn`, `public_ip`,
//! `ports` map, `location`, `tags`, ...). Every field is optional and unknown fields are
//! ignored, so the agent keeps working when the platform adds some; a field of the wrong type
//! makes the whole document malformed (reported, and the environment alone is served).

use hyper::{Method, Uri};

use super::call::{call_with_retry, Call, CallResult};
use super::client::HttpClient;
use super::retry::{JitterSource, RetryPolicy};
use super::secret::Secret;

/// The context document (the fields the agent uses): the contract's shape, which the emulator
/// serves.
pub use edgegap_contract::Context;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("the context cannot be fetched: ARBITRIUM_CONTEXT_URL and ARBITRIUM_CONTEXT_TOKEN are both needed")]
    NotConfigured,
    #[error("the platform refused the context request with status {status}")]
    Rejected { status: u16 },
    #[error("the context could not be fetched after {attempts} attempt(s): {last_error}")]
    GaveUp { attempts: u32, last_error: String },
    #[error("the context document is malformed: {0}")]
    Malformed(String),
}

/// Parses a context document.
pub fn parse_context(body: &[u8]) -> Result<Context, ContextError> {
    Context::from_json(body).map_err(|e| ContextError::Malformed(e.to_string()))
}

/// Fetches and parses the context document. `url` and `token` come from the environment
/// (`None` when absent or malformed there).
pub async fn fetch_context(
    client: &HttpClient,
    policy: &RetryPolicy,
    jitter: &mut dyn JitterSource,
    url: Option<&Uri>,
    token: Option<&Secret>,
) -> Result<Context, ContextError> {
    let (Some(url), Some(token)) = (url, token) else {
        return Err(ContextError::NotConfigured);
    };
    let call = Call {
        what: "context fetch",
        method: Method::GET,
        url,
        token,
    };
    match call_with_retry(client, policy, jitter, call).await {
        CallResult::Answered { status, body, .. } if status.is_success() => parse_context(&body),
        CallResult::Answered { status, .. } => Err(ContextError::Rejected {
            status: status.as_u16(),
        }),
        CallResult::GaveUp {
            attempts,
            last_error,
        } => Err(ContextError::GaveUp {
            attempts,
            last_error,
        }),
    }
}
