//! `GET /watch/gameserver`: the GameServer streamed as grpc-gateway streams a server-side
//! stream — one `{"result": <GameServer>}` JSON object per line, the current one first,
//! then one each time it changes (the agent's status, the roster, the SDK state, or a
//! reservation lapsing). Nothing is polled: the stream waits on the status channel, the SDK's
//! change channel and the reservation's end.
//!
//! It is the agent API's streaming machinery (`api::json_lines`): a task per stream feeding
//! a one-line channel, at most [`MAX_WAITING_CLIENTS`](crate::api::MAX_WAITING_CLIENTS)
//! streams on this server (429 `RESOURCE_EXHAUSTED` beyond), each slot freed when its client
//! goes; a client that stops taking lines is cut by the server's answer limit.

use std::sync::Arc;

use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::Response;
use serde_json::{json, Value};

use super::routes::answer;
use super::sdk::{refuse, Code};
use super::Agones;
use crate::api::{json_lines, ResponseBody};

/// Starts a stream, or refuses it when the server's waiting clients are at their limit.
pub fn watch(agones: &Arc<Agones>) -> Response<ResponseBody> {
    let Some(slot) = agones.watchers.enter() else {
        return answer(Err(refuse(
            Code::ResourceExhausted,
            format!(
                "at most {} /watch/gameserver streams are served at once",
                agones.watchers.max()
            ),
        )));
    };
    let (lines, body) = json_lines();
    let agones = Arc::clone(agones);
    tokio::spawn(async move {
        let _slot = slot;
        let mut status = agones.api.status.clone();
        let mut changes = agones.changes.subscribe();
        let mut last: Option<Value> = None;
        loop {
            let (game_server, lapse) = agones.snapshot();
            if last.as_ref() != Some(&game_server) {
                if !lines.send(&json!({"result": &game_server})).await {
                    return;
                }
                last = Some(game_server);
            }
            let lapse = async {
                match lapse {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = status.changed() => if changed.is_err() {
                    // The supervisor is gone: the agent exits soon; nothing more to say.
                    lines.closed().await;
                    return;
                },
                changed = changes.changed() => if changed.is_err() { return },
                () = lapse => {}
                () = lines.closed() => return,
            }
        }
    });
    let mut response = Response::new(ResponseBody::Right(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
