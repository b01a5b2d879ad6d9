//! `GET /watch/gameserver`: the GameServer streamed as grpc-gateway streams a server-side
//! stream — one `{"result": <GameServer>}` JSON object per line, the current one first,
//! then one each time it changes (the agent's status, the roster, the SDK state, or a
//! reservation lapsing). Nothing is polled: the stream waits on the status channel, the SDK's
//! change channel and the reservation's end.
//!
//! Bounded: at most [`MAX_WATCHERS`] streams at once (429 `RESOURCE_EXHAUSTED` beyond), each
//! slot freed when its client goes; a line the client does not take within
//! [`LINE_TIMEOUT`] ends its stream, so a reader that stalls cannot keep a slot.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Body, Bytes, Frame, SizeHint};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::routes::answer;
use super::sdk::{refuse, Code};
use super::Agones;

/// The most `/watch/gameserver` streams open at once.
pub const MAX_WATCHERS: usize = 16;
/// How long a client has to take one line of its stream.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// A response body: whole, or lines sent as they come.
pub enum AgonesBody {
    Whole(Full<Bytes>),
    Lines(mpsc::Receiver<Bytes>),
}

impl AgonesBody {
    /// A whole JSON response.
    pub fn whole(status: StatusCode, bytes: Bytes) -> Response<AgonesBody> {
        let mut response = Response::new(AgonesBody::Whole(Full::new(bytes)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

impl Body for AgonesBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            AgonesBody::Whole(full) => Pin::new(full).poll_frame(cx),
            AgonesBody::Lines(lines) => lines
                .poll_recv(cx)
                .map(|line| line.map(|bytes| Ok(Frame::data(bytes)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            AgonesBody::Whole(full) => full.is_end_stream(),
            AgonesBody::Lines(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            AgonesBody::Whole(full) => full.size_hint(),
            AgonesBody::Lines(_) => SizeHint::default(),
        }
    }
}

/// Starts a stream, or refuses it when [`MAX_WATCHERS`] are open.
pub fn watch(agones: &Arc<Agones>) -> Response<AgonesBody> {
    let Ok(slot) = Arc::clone(&agones.watchers).try_acquire_owned() else {
        return answer(Err(refuse(
            Code::ResourceExhausted,
            format!("at most {MAX_WATCHERS} /watch/gameserver streams are served at once"),
        )));
    };
    let (lines, receiver) = mpsc::channel(1);
    let agones = Arc::clone(agones);
    tokio::spawn(async move {
        let _slot = slot;
        stream(&agones, lines).await;
    });
    let mut response = Response::new(AgonesBody::Lines(receiver));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn stream(agones: &Agones, lines: mpsc::Sender<Bytes>) {
    let mut status = agones.api.status.clone();
    let mut changes = agones.changes.subscribe();
    let mut last: Option<Value> = None;
    loop {
        let (game_server, lapse) = agones.snapshot();
        if last.as_ref() != Some(&game_server) {
            let mut line = serde_json::to_vec(&json!({"result": &game_server})).unwrap_or_default();
            line.push(b'\n');
            match tokio::time::timeout(LINE_TIMEOUT, lines.send(Bytes::from(line))).await {
                Ok(Ok(())) => last = Some(game_server),
                // The client went, or does not read: end the stream and free the slot.
                _ => return,
            }
        }
        let lapse = async {
            match lapse {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = status.changed() => if changed.is_err() { return },
            changed = changes.changed() => if changed.is_err() { return },
            () = lapse => {}
            () = lines.closed() => return,
        }
    }
}
