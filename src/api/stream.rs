//! Answers that wait or stream: a [`JsonLines`] response body fed by a task, and the bound
//! on clients waiting at once ([`WaitingClients`]).
//!
//! A stream's lines are made by a task of their own and handed to the body through a channel
//! of one line: a client that does not read holds at most that line and its socket's buffers.
//! When the client goes away, hyper drops the body, the channel closes, and the task (with the
//! client's [`WaitingSlot`]) ends at once ([`LineSender::closed`]).

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::{Body, Bytes, Frame, SizeHint};
use serde_json::Value;
use tokio::sync::mpsc;

/// The most clients that may wait at once on one server (long polls and streams together).
pub const MAX_WAITING_CLIENTS: usize = 64;

/// A response body of JSON lines, one object a line, for as long as its sender lives.
pub struct JsonLines {
    lines: mpsc::Receiver<Bytes>,
}

/// Where a stream's task writes its lines.
pub struct LineSender {
    lines: mpsc::Sender<Bytes>,
}

/// A new stream: the body to answer with, and the sender its task writes to.
pub fn json_lines() -> (LineSender, JsonLines) {
    let (lines, receiver) = mpsc::channel(1);
    (LineSender { lines }, JsonLines { lines: receiver })
}

impl LineSender {
    /// Sends one line (`value` and a newline); false once the client is gone.
    pub async fn send(&self, value: &Value) -> bool {
        let mut line = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        line.push(b'\n');
        self.lines.send(Bytes::from(line)).await.is_ok()
    }

    /// Completes when the client is gone (its body dropped).
    pub async fn closed(&self) {
        self.lines.closed().await;
    }
}

impl Body for JsonLines {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.get_mut()
            .lines
            .poll_recv(cx)
            .map(|line| line.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Counts the clients waiting on a server, up to a limit.
#[derive(Debug)]
pub struct WaitingClients {
    waiting: Arc<AtomicUsize>,
    max: usize,
}

impl Default for WaitingClients {
    fn default() -> WaitingClients {
        WaitingClients::with_max(MAX_WAITING_CLIENTS)
    }
}

impl WaitingClients {
    pub fn with_max(max: usize) -> WaitingClients {
        WaitingClients {
            waiting: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A slot for one more waiting client, or `None` at the limit. The slot is given back
    /// when it is dropped (the answer sent, or the client gone).
    pub fn enter(&self) -> Option<WaitingSlot> {
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| WaitingSlot {
                waiting: Arc::clone(&self.waiting),
            })
    }

    /// How many clients wait now.
    pub fn len(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// True when no client waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The limit.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// One waiting client's place; see [`WaitingClients::enter`].
#[derive(Debug)]
pub struct WaitingSlot {
    waiting: Arc<AtomicUsize>,
}

impl Drop for WaitingSlot {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_given_back_on_drop() {
        let clients = WaitingClients::with_max(2);
        let a = clients.enter().unwrap();
        let b = clients.enter().unwrap();
        assert!(clients.enter().is_none());
        assert_eq!(clients.len(), 2);
        drop(a);
        let c = clients.enter().unwrap();
        drop((b, c));
        assert!(clients.is_empty());
    }

    #[tokio::test]
    async fn a_stream_ends_its_sender_when_the_body_is_dropped() {
        let (sender, body) = json_lines();
        assert!(sender.send(&serde_json::json!({"a": 1})).await);
        drop(body);
        sender.closed().await;
        assert!(!sender.send(&serde_json::json!({"a": 2})).await);
    }
}
