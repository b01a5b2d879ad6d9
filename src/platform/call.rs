//! The platform calls and the one retry loop they share.
//!
//! [`call_with_retry`] runs one call under a [`RetryPolicy`], one connection per attempt (a
//! handful of calls per deployment need no pool), every resolved address tried in turn within
//! the attempt, and logs every attempt with its number, its status or error class and the
//! next delay. The token goes into the `authorization` header here, and this is the only
//! place any [`Secret`] is exposed.

use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, HOST, RETRY_AFTER, USER_AGENT};
use hyper::{HeaderMap, Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::rustls::pki_types::ServerName;
use tracing::{info, warn};

use super::client::HttpClient;
use super::retry::{GiveUpReason, JitterSource, Next, RetryPolicy};
use super::secret::Secret;

/// Bodies larger than this are refused (a context document is a few KB).
const MAX_BODY: usize = 1 << 20;
/// How much of an error answer's body is logged.
const BODY_EXCERPT: usize = 200;

/// One platform call: what it is (for the log), and where it goes.
pub struct Call<'a> {
    pub what: &'static str,
    pub method: Method,
    pub url: &'a Uri,
    pub token: &'a Secret,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    /// The platform gave a final answer (anything but 5xx, 429 and 408).
    Answered {
        status: StatusCode,
        body: Vec<u8>,
        attempts: u32,
    },
    /// No final answer within the policy's attempts and deadline.
    GaveUp { attempts: u32, last_error: String },
}

/// 5xx, 429 and 408 (the server timed the request out: nothing was done, so trying again is
/// safe) are worth another try; everything else is the platform's final word.
pub fn is_retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// Runs `call` until a final answer, the last attempt, or the deadline.
pub async fn call_with_retry(
    client: &HttpClient,
    policy: &RetryPolicy,
    jitter: &mut dyn JitterSource,
    call: Call<'_>,
) -> CallResult {
    let what = call.what;
    let start = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt = attempt.saturating_add(1);
        let budget = policy.attempt_budget(start.elapsed());
        let attempt_ends = Instant::now() + budget;
        let sent = tokio::time::timeout(budget, send(client, &call, attempt_ends)).await;
        let (failure, retry_after) = match sent {
            Ok(Ok((status, _, body))) if !is_retryable(status) => {
                if status.is_success() {
                    info!(what, attempt, status = status.as_u16(), "platform answered");
                } else {
                    let body = excerpt(&body, call.token);
                    info!(what, attempt, status = status.as_u16(), %body, "platform answered");
                }
                return CallResult::Answered {
                    status,
                    body,
                    attempts: attempt,
                };
            }
            Ok(Ok((status, headers, body))) => {
                let body = excerpt(&body, call.token);
                let failure = if body.is_empty() {
                    format!("status {}", status.as_u16())
                } else {
                    format!("status {}: {body:?}", status.as_u16())
                };
                (failure, retry_after(&headers))
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

/// The start of an error answer's body, for the log: at most [`BODY_EXCERPT`] bytes as lossy
/// UTF-8, the call's token redacted should the platform echo it. The log formatter escapes
/// whatever else it carries (newlines, ANSI escapes), so it stays on its line.
fn excerpt(body: &[u8], token: &Secret) -> String {
    let cut = &body[..body.len().min(BODY_EXCERPT)];
    let mut text = String::from_utf8_lossy(cut).trim().to_owned();
    let secret = token.expose();
    if !secret.is_empty() {
        text = text.replace(secret, super::secret::REDACTED);
    }
    if body.len() > BODY_EXCERPT {
        text.push('…');
    }
    text
}

/// One attempt, to be over by `attempt_ends`: resolve, connect, send, read the status and
/// the body (at most [`MAX_BODY`]).
async fn send(
    client: &HttpClient,
    call: &Call<'_>,
    attempt_ends: Instant,
) -> Result<(StatusCode, HeaderMap, Vec<u8>), String> {
    let url = call.url;
    let https = url.scheme_str() == Some("https");
    let host = url.host().ok_or("request error: the URL has no host")?;
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addresses = match bare_host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        // Half of the attempt at most: the other half is for connecting and the exchange.
        Err(_) => client
            .resolver
            .lookup(bare_host, time_left(attempt_ends) / 2)
            .await
            .map_err(|e| format!("dns error: {e}"))?,
    };
    let stream = connect(call.what, &addresses, port, attempt_ends).await?;
    let mut token = HeaderValue::from_str(call.token.expose())
        .map_err(|_| "request error: the token is not a valid header value".to_owned())?;
    token.set_sensitive(true);
    let authority = match url.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::builder()
        .method(call.method.clone())
        .uri(path)
        .header(HOST, authority)
        .header(
            USER_AGENT,
            concat!("edgegap-agent/", env!("CARGO_PKG_VERSION")),
        )
        .header(AUTHORIZATION, token)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request error: {e}"))?;
    if !https {
        return exchange(TokioIo::new(stream), request).await;
    }
    let name = ServerName::try_from(bare_host.to_owned())
        .map_err(|e| format!("tls error: {bare_host:?} is not a server name ({e})"))?;
    let stream = client
        .tls()?
        .connect(name, stream)
        .await
        .map_err(|e| format!("tls error: {}", error_chain(&e)))?;
    exchange(TokioIo::new(stream), request).await
}

/// Tries each address in turn, each with a share of the attempt's remaining time (an equal
/// share of it for each address still to try; the last one gets all of it), so that one
/// address that black-holes connections cannot eat the attempt: the next is tried within it.
async fn connect(
    what: &'static str,
    addresses: &[IpAddr],
    port: u16,
    attempt_ends: Instant,
) -> Result<TcpStream, String> {
    let mut failures = Vec::new();
    for (index, ip) in addresses.iter().enumerate() {
        let address = SocketAddr::new(*ip, port);
        let still_to_try = u32::try_from(addresses.len() - index).unwrap_or(u32::MAX);
        let share = time_left(attempt_ends) / still_to_try;
        let failure = match tokio::time::timeout(share, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no connection within {}", show(share)),
        };
        // The last failure ends the attempt, whose error lists every address.
        if still_to_try > 1 {
            warn!(what, %address, error = %failure, "cannot connect; trying the next address");
        }
        failures.push(format!("{address}: {failure}"));
    }
    if failures.is_empty() {
        failures.push("no address to connect to".to_owned());
    }
    Err(format!("connect error: {}", failures.join("; ")))
}

fn time_left(until: Instant) -> Duration {
    until.saturating_duration_since(Instant::now())
}

/// HTTP/1.1 on one connection, driven in this task so that a timed-out attempt leaves
/// nothing running behind it.
async fn exchange<I>(
    io: I,
    request: Request<Empty<Bytes>>,
) -> Result<(StatusCode, HeaderMap, Vec<u8>), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("request error: {}", error_chain(&e)))?;
    let response = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request error: {}", error_chain(&e)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("body error: {e}"))?
            .to_bytes();
        Ok((status, headers, body.to_vec()))
    };
    let mut response = pin!(response);
    let mut connection = pin!(connection);
    tokio::select! {
        biased;
        result = &mut response => result,
        ended = &mut connection => match ended {
            // The connection is done (e.g. `connection: close`): what it read is delivered.
            Ok(()) => response.await,
            Err(error) => Err(format!("request error: {}", error_chain(&error))),
        },
    }
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

/// A duration for a log line, to the nearest millisecond: an attempt cut to what is left of
/// the deadline would otherwise read "1s 999ms 999us 830ns".
fn show(duration: Duration) -> String {
    let millis = duration.as_nanos().saturating_add(500_000) / 1_000_000;
    let millis = u64::try_from(millis).unwrap_or(u64::MAX);
    humantime::format_duration(Duration::from_millis(millis)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_throttling_and_request_timeouts_are_retried_nothing_else() {
        for retried in [500, 502, 503, 504, 599, 429, 408] {
            assert!(
                is_retryable(StatusCode::from_u16(retried).unwrap()),
                "{retried}"
            );
        }
        for final_answer in [200, 202, 204, 301, 400, 401, 403, 404, 409, 410] {
            assert!(
                !is_retryable(StatusCode::from_u16(final_answer).unwrap()),
                "{final_answer}"
            );
        }
    }

    #[test]
    fn durations_in_log_lines_are_shown_to_the_millisecond() {
        assert_eq!(show(Duration::from_nanos(1_999_999_830)), "2s");
        assert_eq!(show(Duration::from_micros(400_400)), "400ms");
        assert_eq!(show(Duration::from_millis(1_250)), "1s 250ms");
    }

    #[test]
    fn an_error_body_is_logged_short_lossy_and_without_the_token() {
        let token = Secret::new("tok-123");
        let body = b"  denied: tok-123 \xff\xfe\n";
        assert_eq!(excerpt(body, &token), "denied: <redacted> \u{fffd}\u{fffd}");
        let long = vec![b'a'; BODY_EXCERPT + 10];
        let shown = excerpt(&long, &token);
        assert_eq!(shown.chars().count(), BODY_EXCERPT + 1);
        assert!(shown.ends_with('…'));
    }
}
