//! The HTTP client for platform calls and the one retry loop they share.
//!
//! TLS is rustls with the embedded webpki roots (the image has no CA bundle), plus an optional
//! extra root from `--ca-file` (for a local TLS platform in tests). Names resolve through
//! [`super::dns::Resolver`], which needs no glibc NSS (the binary is static). Redirects are
//! not followed: the token is for the URL the platform gave and for no other.
//!
//! [`call_with_retry`] runs one call under a [`RetryPolicy`] and logs every attempt with its
//! number, its status or error class and the next delay. The token goes into the
//! `authorization` header here, and this is the only place any [`Secret`] is exposed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Client, Method, StatusCode, Url};
use tokio::time::Instant;
use tracing::{info, warn};

use super::dns::Resolver;
use super::retry::{GiveUpReason, JitterSource, Next, RetryPolicy};
use super::secret::Secret;

/// Bodies larger than this are cut (a context document is a few KB).
const MAX_BODY: usize = 1 << 20;

/// How platform calls reach the platform.
#[derive(Debug, Clone, Default, Args)]
pub struct HttpOptions {
    /// A PEM file of extra CA certificates to trust besides the embedded web roots.
    #[arg(long, env = "EDGEGAP_AGENT_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--ca-file {path}: cannot read it: {source}")]
    ReadCa {
        path: String,
        source: std::io::Error,
    },
    #[error("--ca-file {path}: expected PEM certificates ({detail})")]
    BadCa { path: String, detail: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// Builds the client every platform call uses, resolving names with the system's
/// `/etc/hosts` and `/etc/resolv.conf`.
pub fn build_client(options: &HttpOptions) -> Result<Client, ClientError> {
    build_client_with_resolver(options, Resolver::system())
}

/// As [`build_client`], with the resolver given (tests pin names to 127.0.0.1).
pub fn build_client_with_resolver(
    options: &HttpOptions,
    resolver: Resolver,
) -> Result<Client, ClientError> {
    let mut builder = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(resolver))
        .user_agent(concat!("edgegap-agent/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &options.ca_file {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| ClientError::ReadCa {
            path: shown.clone(),
            source,
        })?;
        let certificates =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ClientError::BadCa {
                path: shown.clone(),
                detail: e.to_string(),
            })?;
        if certificates.is_empty() {
            return Err(ClientError::BadCa {
                path: shown,
                detail: "no certificate found".to_owned(),
            });
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder
        .build()
        .map_err(|e| ClientError::Build(error_chain(&e)))
}

/// One platform call: what it is (for the log), and where it goes.
pub struct Call<'a> {
    pub what: &'static str,
    pub method: Method,
    pub url: &'a Url,
    pub token: &'a Secret,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    /// The platform gave a final answer (anything but 5xx and 429).
    Answered {
        status: StatusCode,
        body: Vec<u8>,
        attempts: u32,
    },
    /// No final answer within the policy's attempts and deadline.
    GaveUp { attempts: u32, last_error: String },
}

/// 5xx and 429 are worth another try; everything else is the platform's final word.
pub fn is_retryable(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// Runs `call` until a final answer, the last attempt, or the deadline.
pub async fn call_with_retry(
    client: &Client,
    policy: &RetryPolicy,
    jitter: &mut dyn JitterSource,
    call: Call<'_>,
) -> CallResult {
    let what = call.what;
    let start = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let budget = policy.attempt_budget(start.elapsed());
        let (failure, retry_after) = match tokio::time::timeout(budget, send(client, &call)).await {
            Ok(Ok((status, _, body))) if !is_retryable(status) => {
                info!(what, attempt, status = status.as_u16(), "platform answered");
                return CallResult::Answered {
                    status,
                    body,
                    attempts: attempt,
                };
            }
            Ok(Ok((status, headers, _))) => {
                (format!("status {}", status.as_u16()), retry_after(&headers))
            }
            Ok(Err(error)) => (error, None),
            Err(_) => (format!("timeout after {}", show(budget)), None),
        };
        match policy.next(attempt, start.elapsed(), retry_after, jitter) {
            Next::RetryAfter(delay) => {
                warn!(
                    what,
                    attempt,
                    error = %failure,
                    retry_after_ms = retry_after.map(|d| d.as_millis() as u64),
                    next_delay_ms = delay.as_millis() as u64,
                    "attempt failed; retrying"
                );
                tokio::time::sleep(delay).await;
            }
            Next::GiveUp(reason) => {
                let why = match reason {
                    GiveUpReason::Attempts => format!("after {attempt} attempts"),
                    GiveUpReason::Deadline => format!(
                        "at the {} deadline, after {attempt} attempts",
                        show(policy.deadline())
                    ),
                };
                let last_error = format!("{failure}; gave up {why}");
                warn!(what, attempt, error = %failure, "attempt failed; giving up {why}");
                return CallResult::GaveUp {
                    attempts: attempt,
                    last_error,
                };
            }
        }
    }
}

/// One attempt: the request, the status, and the body (cut at [`MAX_BODY`]).
async fn send(
    client: &Client,
    call: &Call<'_>,
) -> Result<(StatusCode, HeaderMap, Vec<u8>), String> {
    let mut token = HeaderValue::from_str(call.token.expose())
        .map_err(|_| "the token is not a valid header value".to_owned())?;
    token.set_sensitive(true);
    let mut response = client
        .request(call.method.clone(), call.url.clone())
        .header(AUTHORIZATION, token)
        .send()
        .await
        .map_err(|e| classify(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok((status, headers, body))
}

/// `connect error: ...`, `timeout: ...`, `request error: ...`, with the causes.
fn classify(error: &reqwest::Error) -> String {
    let class = if error.is_connect() {
        "connect error"
    } else if error.is_timeout() {
        "timeout"
    } else if error.is_body() || error.is_decode() {
        "body error"
    } else {
        "request error"
    };
    format!("{class}: {}", error_chain(error))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After` in its seconds form (the HTTP-date form is ignored: the backoff applies).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn show(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}
