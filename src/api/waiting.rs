//! Status without polling: `GET /v1/status?wait=<duration>&after=<version>` (a long poll)
//! and `GET /v1/events` (a stream of JSON lines).
//!
//! Every change the supervisor publishes bumps the status's `version`. A long poll answers
//! as soon as the version differs from `after` (a newer one; or an older one, which means the
//! agent was restarted and the client should start over), or with the unchanged status when
//! `wait` ends; without `after` it waits for the next change. A stream sends the status at
//! once and then after every change, as long as the client reads: a slow reader skips to the
//! latest status (versions may jump), it never gets a backlog. Both count against
//! [`MAX_WAITING_CLIENTS`](super::stream::MAX_WAITING_CLIENTS) and give their place back when
//! answered or when the client goes away. Heartbeats are not changes.

use std::time::Duration;

use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use tokio::sync::watch;

use super::json::{error, json_response, ResponseBody};
use super::state::ApiState;
use super::stream::json_lines;
use crate::lifecycle::AgentStatus;
use crate::units::parse_duration_at_most;

/// The longest `wait` a long poll may ask for.
pub const MAX_STATUS_WAIT: Duration = Duration::from_secs(300);

/// What a `GET /v1/status` query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusQuery {
    /// How long to wait for a change; `None` (or zero) answers at once.
    pub wait: Option<Duration>,
    /// The version the client has; `None` waits for the next change.
    pub after: Option<u64>,
}

impl StatusQuery {
    /// Parses `wait=<duration>&after=<version>` (both optional); anything else is an error
    /// naming it.
    pub fn parse(query: Option<&str>) -> Result<StatusQuery, String> {
        let mut parsed = StatusQuery::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "wait" => {
                    let wait = parse_duration_at_most(value, MAX_STATUS_WAIT, "5m")
                        .map_err(|why| format!("wait: {why}"))?;
                    parsed.wait = Some(wait);
                }
                "after" => {
                    let after = value.parse::<u64>().map_err(|_| {
                        format!("after: {value:?} is not a version (a whole number from a status's \"version\")")
                    })?;
                    parsed.after = Some(after);
                }
                other => {
                    return Err(format!(
                        "unknown query parameter {other:?} (GET /v1/status takes wait and after)"
                    ))
                }
            }
        }
        Ok(parsed)
    }
}

fn bad_query(detail: String) -> Response<ResponseBody> {
    error(StatusCode::BAD_REQUEST, "invalid query", detail)
}

fn too_many_waiting(state: &ApiState) -> Response<ResponseBody> {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many waiting clients",
        format!(
            "at most {} clients may wait for the status at once (long polls and GET /v1/events together); try again, or poll GET /v1/status",
            state.waiting.max()
        ),
    )
}

/// `GET /v1/status[?wait=..&after=..]`.
pub async fn status(state: &ApiState, query: Option<&str>) -> Response<ResponseBody> {
    let query = match StatusQuery::parse(query) {
        Ok(query) => query,
        Err(detail) => return bad_query(detail),
    };
    let mut status = state.status.clone();
    let seen = status.borrow_and_update().version;
    let wait = match query.wait {
        Some(wait) if !wait.is_zero() && query.after.is_none_or(|after| after == seen) => wait,
        _ => return current(&status),
    };
    let Some(_slot) = state.waiting.enter() else {
        return too_many_waiting(state);
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, status.changed()).await {
            Ok(Ok(())) if status.borrow_and_update().version == seen => continue,
            // A newer version; the supervisor gone (the agent is exiting); or time is up.
            Ok(_) | Err(_) => return current(&status),
        }
    }
}

fn current(status: &watch::Receiver<AgentStatus>) -> Response<ResponseBody> {
    json_response(StatusCode::OK, &status.borrow().to_json())
}

/// `GET /v1/events`: the status now, then after every change, one JSON object a line.
pub fn events(state: &ApiState) -> Response<ResponseBody> {
    let Some(slot) = state.waiting.enter() else {
        return too_many_waiting(state);
    };
    let (lines, body) = json_lines();
    let mut status = state.status.clone();
    tokio::spawn(async move {
        let _slot = slot;
        loop {
            let line = status.borrow_and_update().to_json();
            if !lines.send(&line).await {
                return;
            }
            tokio::select! {
                changed = status.changed() => {
                    if changed.is_err() {
                        // The supervisor is gone: the agent exits soon; nothing more to say.
                        lines.closed().await;
                        return;
                    }
                }
                () = lines.closed() => return,
            }
        }
    });
    let mut response = Response::new(ResponseBody::Right(body));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_or_name_what_is_wrong() {
        assert_eq!(StatusQuery::parse(None), Ok(StatusQuery::default()));
        assert_eq!(
            StatusQuery::parse(Some("wait=30s&after=7")),
            Ok(StatusQuery {
                wait: Some(Duration::from_secs(30)),
                after: Some(7)
            })
        );
        assert_eq!(
            StatusQuery::parse(Some("wait=2")).unwrap().wait,
            Some(Duration::from_secs(2))
        );
        for (query, names) in [
            ("wait=forever", "wait"),
            ("wait=6m", "wait"),
            ("wait=-1", "wait"),
            ("after=-1", "after"),
            ("after=18446744073709551616", "after"),
            ("after=", "after"),
            ("wiat=30s", "wiat"),
        ] {
            let why = StatusQuery::parse(Some(query)).unwrap_err();
            assert!(why.contains(names), "{query}: {why}");
        }
    }
}
