//! The router and handlers of the Agones SDK routes: one `match` on (method, path), bodies
//! in and out as Agones's REST gateway (grpc-gateway) writes them — proto field names,
//! int64 as JSON strings (a number is accepted too), `{"bool": ...}` and `{"count": ...}`
//! wrappers, errors as `{"code", "message", "details": []}` with the gRPC code's HTTP status.

use std::error::Error as StdError;

use hyper::body::{Body, Bytes};
use hyper::header::{HeaderValue, ALLOW};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use super::sdk::{refuse, Code, Refusal, Reserve};
use super::Agones;
use crate::api::{check_player_id, json_response, read_body, JoinRefused, Joined, ResponseBody};
use crate::lifecycle::GameRequest;
use crate::units::MAX_MATCH_DURATION;

type Answer = Result<Value, Refusal>;

/// Answers one request.
pub async fn handle<B>(
    agones: &std::sync::Arc<Agones>,
    request: Request<B>,
) -> Response<ResponseBody>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = parts.method.clone();
    let allow = match segments.as_slice() {
        ["ready" | "health" | "shutdown" | "allocate" | "reserve"] => "POST",
        ["gameserver"] | ["watch", "gameserver"] => "GET",
        ["metadata", "label" | "annotation"] => "PUT",
        ["alpha", "player", "connect" | "disconnect"] => "POST",
        ["alpha", "player", "count" | "connected"] | ["alpha", "player", "connected", _] => "GET",
        ["alpha", "player", "capacity"] => "GET, PUT",
        ["v1beta1" | "v1alpha1", "counters", _] => "GET, PATCH",
        ["v1beta1" | "v1alpha1", "lists", name]
            if name.ends_with(":addValue") || name.ends_with(":removeValue") =>
        {
            "POST"
        }
        ["v1beta1" | "v1alpha1", "lists", _] => "GET, PATCH",
        _ => {
            return answer(Err(refuse(
                Code::NotFound,
                format!("no Agones SDK route {path}"),
            )))
        }
    };
    if !allow.split(", ").any(|m| m == method.as_str()) {
        let mut response = answer(Err(refuse(
            Code::Unimplemented,
            format!("{path} accepts {allow}, not {method}"),
        )));
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
        return response;
    }
    if method == Method::GET {
        return match segments.as_slice() {
            ["watch", "gameserver"] => super::watch::watch(agones),
            ["gameserver"] => answer(Ok(agones.game_server())),
            ["alpha", "player", "count"] => {
                answer(Ok(json!({"count": agones.api.players().len().to_string()})))
            }
            ["alpha", "player", "capacity"] => answer(Ok(
                json!({"count": agones.sdk().player_capacity.to_string()}),
            )),
            ["alpha", "player", "connected"] => answer(Ok(json!({"list": &*agones.api.players()}))),
            ["alpha", "player", "connected", id] => {
                answer(decode(id).map(|id| json!({"bool": agones.api.players().contains(&id)})))
            }
            [_, "counters", name] => answer(get_counter(agones, name)),
            [_, "lists", name] => answer(get_list(agones, name)),
            _ => answer(Err(refuse(
                Code::NotFound,
                format!("no Agones SDK route {path}"),
            ))),
        };
    }
    let body = match read_body(&parts.headers, body).await {
        Ok(bytes) => bytes,
        // The agent API's 408/413 answer: its status and headers kept, the body in the SDK's shape.
        Err(refused) => return reshape(refused),
    };
    let body = match parse(&body) {
        Ok(body) => body,
        Err(refusal) => return answer(Err(refusal)),
    };
    answer(act(agones, &parts, &segments, &body))
}

fn act(agones: &Agones, parts: &Parts, segments: &[&str], body: &Map<String, Value>) -> Answer {
    match (&parts.method, segments) {
        (_, ["ready"]) => {
            agones.change(|sdk| {
                sdk.allocated = false;
                sdk.reserved = None;
            });
            agones.send(GameRequest::Ready).map(|()| json!({}))
        }
        (_, ["health"]) => agones.send(GameRequest::Heartbeat).map(|()| json!({})),
        (_, ["shutdown"]) => agones.shutdown().map(|()| json!({})),
        (_, ["allocate"]) => {
            agones.change(|sdk| {
                sdk.allocated = true;
                sdk.reserved = None;
            });
            Ok(json!({}))
        }
        (_, ["reserve"]) => {
            let seconds = int64(body, &["seconds"])?.unwrap_or(0);
            if seconds < 0 || seconds as u64 > MAX_MATCH_DURATION.as_secs() {
                return Err(refuse(
                    Code::InvalidArgument,
                    format!(
                        "`seconds` must be 0 to {} (0: until allocated or shut down)",
                        MAX_MATCH_DURATION.as_secs()
                    ),
                ));
            }
            let reserve = match seconds {
                0 => Reserve::Indefinitely,
                s => Reserve::Until(
                    tokio::time::Instant::now() + std::time::Duration::from_secs(s as u64),
                ),
            };
            agones.change(|sdk| {
                sdk.allocated = false;
                sdk.reserved = Some(reserve);
            });
            Ok(json!({}))
        }
        (_, ["metadata", which]) => {
            let key = string(body, "key")?.unwrap_or_default();
            let value = string(body, "value")?.unwrap_or_default();
            agones
                .try_change(|sdk| match *which {
                    "label" => sdk.set_label(&key, &value),
                    _ => sdk.set_annotation(&key, &value),
                })
                .map(|()| json!({}))
        }
        (_, ["alpha", "player", "connect"]) => {
            let id = player_id(body)?;
            let capacity = agones.sdk().player_capacity;
            let capacity = (capacity > 0).then(|| usize::try_from(capacity).unwrap_or(usize::MAX));
            match agones.api.connect_player(&id, capacity) {
                Ok(Joined { new, .. }) => {
                    agones.changed();
                    Ok(json!({"bool": new}))
                }
                Err(JoinRefused::Full) => {
                    Err(refuse(Code::Unknown, "players are already at capacity"))
                }
                Err(JoinRefused::AgentExiting) => Err(exiting()),
            }
        }
        (_, ["alpha", "player", "disconnect"]) => {
            let id = player_id(body)?;
            match agones.api.disconnect_player(&id) {
                Ok(left) => {
                    agones.changed();
                    Ok(json!({"bool": left.is_some()}))
                }
                Err(_) => Err(exiting()),
            }
        }
        (_, ["alpha", "player", "capacity"]) => {
            let count = int64(body, &["count"])?.unwrap_or(0);
            if count < 0 {
                return Err(refuse(
                    Code::InvalidArgument,
                    format!("capacity {count} is below 0"),
                ));
            }
            agones.change(|sdk| sdk.player_capacity = count);
            Ok(json!({}))
        }
        (_, [_, "counters", name]) => {
            let name = decode(name)?;
            let count = int64(body, &["count"])?;
            let capacity = int64(body, &["capacity"])?;
            let diff = int64(body, &["countDiff", "count_diff"])?.unwrap_or(0);
            let counter =
                agones.try_change(|sdk| sdk.update_counter(&name, count, capacity, diff))?;
            Ok(
                json!({"name": name, "count": counter.count.to_string(), "capacity": counter.capacity.to_string()}),
            )
        }
        (method, [_, "lists", name]) => {
            let name = decode(name)?;
            let list = if let Some(name) = name.strip_suffix(":addValue") {
                let value = string(body, "value")?
                    .ok_or_else(|| refuse(Code::InvalidArgument, "`value` is required"))?;
                agones.try_change(|sdk| sdk.add_value(name, value))?
            } else if let Some(name) = name.strip_suffix(":removeValue") {
                let value = string(body, "value")?
                    .ok_or_else(|| refuse(Code::InvalidArgument, "`value` is required"))?;
                agones.try_change(|sdk| sdk.remove_value(name, &value))?
            } else if method == Method::PATCH {
                let capacity = int64(body, &["capacity"])?;
                let values = match body.get("values") {
                    None | Some(Value::Null) => None,
                    Some(Value::Array(items)) => Some(
                        items
                            .iter()
                            .map(|v| v.as_str().map(str::to_owned))
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| {
                                refuse(
                                    Code::InvalidArgument,
                                    "`values` must be an array of strings",
                                )
                            })?,
                    ),
                    Some(_) => {
                        return Err(refuse(
                            Code::InvalidArgument,
                            "`values` must be an array of strings",
                        ))
                    }
                };
                agones.try_change(|sdk| sdk.update_list(&name, capacity, values))?
            } else {
                return Err(refuse(Code::NotFound, "no such route"));
            };
            let name = name.split(':').next().unwrap_or_default();
            Ok(json!({"name": name, "capacity": list.capacity.to_string(), "values": list.values}))
        }
        _ => Err(refuse(Code::NotFound, "no such route")),
    }
}

fn get_counter(agones: &Agones, name: &str) -> Answer {
    let name = decode(name)?;
    let sdk = agones.sdk();
    let counter = sdk
        .counters
        .get(&name)
        .ok_or_else(|| refuse(Code::NotFound, format!("Counter {name:?} not found")))?;
    Ok(
        json!({"name": name, "count": counter.count.to_string(), "capacity": counter.capacity.to_string()}),
    )
}

fn get_list(agones: &Agones, name: &str) -> Answer {
    let name = decode(name)?;
    let sdk = agones.sdk();
    let list = sdk
        .lists
        .get(&name)
        .ok_or_else(|| refuse(Code::NotFound, format!("List {name:?} not found")))?;
    Ok(json!({"name": name, "capacity": list.capacity.to_string(), "values": list.values}))
}

fn exiting() -> Refusal {
    refuse(
        Code::Unavailable,
        "the agent is exiting: it no longer takes requests",
    )
}

fn player_id(body: &Map<String, Value>) -> Result<String, Refusal> {
    let id = string(body, "playerID")?.unwrap_or_default();
    check_player_id(&id)
        .map_err(|why| refuse(Code::InvalidArgument, why.replace("`id`", "`playerID`")))?;
    Ok(id)
}

/// An optional JSON object body (an empty body is `{}`, as the gateway reads it).
fn parse(bytes: &[u8]) -> Result<Map<String, Value>, Refusal> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(refuse(
            Code::InvalidArgument,
            "the request body must be a JSON object",
        )),
        Err(e) => Err(refuse(
            Code::InvalidArgument,
            format!("the request body is not JSON: {e}"),
        )),
    }
}

fn string(body: &Map<String, Value>, key: &str) -> Result<Option<String>, Refusal> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(refuse(
            Code::InvalidArgument,
            format!("`{key}` must be a string, not {other}"),
        )),
    }
}

/// An int64 field under any of its names: a JSON string (as the gateway writes int64) or a
/// number.
fn int64(body: &Map<String, Value>, keys: &[&str]) -> Result<Option<i64>, Refusal> {
    let Some((key, value)) = keys.iter().find_map(|k| body.get(*k).map(|v| (k, v))) else {
        return Ok(None);
    };
    let parsed = match value {
        Value::Null => return Ok(None),
        Value::String(text) => text.trim().parse::<i64>().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    parsed.map(Some).ok_or_else(|| {
        refuse(
            Code::InvalidArgument,
            format!("`{key}` must be an int64 (a string such as \"2\", or a number), not {value}"),
        )
    })
}

/// A path segment, percent-decoded.
fn decode(segment: &str) -> Result<String, Refusal> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(byte) = hex else {
                return Err(refuse(
                    Code::InvalidArgument,
                    format!("bad percent-encoding in {segment:?}"),
                ));
            };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| refuse(Code::InvalidArgument, format!("{segment:?} is not UTF-8")))
}

/// A JSON answer: 200 with the value, or the refusal's HTTP status with
/// `{"code", "message", "details": []}`.
pub fn answer(result: Answer) -> Response<ResponseBody> {
    let (status, value) = match result {
        Ok(value) => (StatusCode::OK, value),
        Err(Refusal { code, message }) => (
            StatusCode::from_u16(code.http()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            json!({"code": code as i32, "message": message, "details": []}),
        ),
    };
    json_response(status, &value)
}

/// The agent API's refusal of a body (408, 413, unreadable) in the SDK's error shape.
fn reshape(refused: Response<ResponseBody>) -> Response<ResponseBody> {
    let status = refused.status();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => Code::ResourceExhausted,
        StatusCode::REQUEST_TIMEOUT => Code::Unavailable,
        _ => Code::InvalidArgument,
    };
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "request bodies are limited to {} bytes",
            crate::api::MAX_BODY_BYTES
        ),
        StatusCode::REQUEST_TIMEOUT => "the request body did not arrive in time".to_owned(),
        _ => "the request body could not be read".to_owned(),
    };
    let mut response = answer(Err(refuse(code, message)));
    *response.status_mut() = status;
    for (name, value) in refused.headers() {
        if name != hyper::header::CONTENT_TYPE && name != hyper::header::CONTENT_LENGTH {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}
