//! JSON in and out: response builders, the `{"error", "detail"}` error body, and reading a
//! request body under the size limit.
//!
//! Every 4xx/5xx the API sends goes through [`error`], so a client always gets a JSON object
//! that names what was wrong. Bodies are read through `http_body_util::Limited`, and a
//! `Content-Length` over the limit is refused before anything is read; a body that does not
//! arrive in time (the server's [`BodyTimeout`]) gets 408 and the connection is closed.

use std::error::Error as StdError;

use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Body, Bytes};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{HeaderMap, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// The largest request body accepted, in bytes (64 KiB); larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The error a request body fails with when it has not arrived within the body read timeout.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} of its head",
            humantime::format_duration(self.0)
        )
    }
}

impl StdError for BodyTimeout {}

/// The body type of every response: whole, or a stream of JSON lines
/// ([`JsonLines`](super::stream::JsonLines)).
pub type ResponseBody = Either<Full<Bytes>, super::stream::JsonLines>;

/// A response with a JSON body.
pub fn json_response(status: StatusCode, value: &Value) -> Response<ResponseBody> {
    let mut bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    with_type(status, Bytes::from(bytes), "application/json")
}

/// A response with a plain-text body of the given content type.
pub fn with_type(
    status: StatusCode,
    body: Bytes,
    content_type: &'static str,
) -> Response<ResponseBody> {
    let mut response = Response::new(Either::Left(Full::new(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The error body every failure uses: `{"error": <what>, "detail": <why, specifically>}`.
pub fn error(status: StatusCode, what: &str, detail: impl Into<String>) -> Response<ResponseBody> {
    json_response(status, &json!({ "error": what, "detail": detail.into() }))
}

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] with 413.
pub async fn read_body<B>(headers: &HeaderMap, body: B) -> Result<Bytes, Response<ResponseBody>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match copy_body(Limited::new(body, MAX_BODY_BYTES)).await {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) if e.is::<BodyTimeout>() => {
            let mut response = error(StatusCode::REQUEST_TIMEOUT, "body timeout", e.to_string());
            // The rest of the body may still be on its way: the connection cannot be reused.
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            Err(response)
        }
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            "unreadable body",
            format!("the request body could not be read: {e}"),
        )),
    }
}

/// Reads a body into one buffer of its own. Each chunk is copied and let go at once: a chunk
/// kept (as `collect` keeps them) holds on to the whole read buffer it was cut from, so a
/// body sent a byte at a time would pin kilobytes per byte.
async fn copy_body<B: Body<Data = Bytes>>(body: B) -> Result<Bytes, B::Error> {
    let mut body = std::pin::pin!(body);
    let mut copied = Vec::new();
    while let Some(frame) = body.as_mut().frame().await {
        if let Ok(data) = frame?.into_data() {
            copied.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(copied))
}

fn too_large() -> Response<ResponseBody> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body too large",
        format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
    )
}

/// Parses a JSON body; an empty (or all-blank) body is `None`, for routes where it is optional.
pub fn parse_optional<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<Option<T>, Response<ResponseBody>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(bytes).map(Some).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "malformed JSON",
            format!("the request body is not the expected JSON: {e}"),
        )
    })
}

/// Parses a JSON body that is required.
pub fn parse_required<T: DeserializeOwned>(
    bytes: &[u8],
    expected: &str,
) -> Result<T, Response<ResponseBody>> {
    parse_optional(bytes)?.ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "missing body",
            format!("this route needs a JSON body: {expected}"),
        )
    })
}
