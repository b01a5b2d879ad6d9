//! The open connections of the API and which one gives way when there are too many.
//!
//! Every connection is registered with its client's address and its [`Activity`]: since when
//! it has been waiting for its client (since it was accepted, or since its last answer), and
//! whether a request is in progress (for the answer deadline). When the server is full (or
//! out of file descriptors) it does not stop accepting: it closes one connection to make
//! room, chosen by [`Registry::evict_one`] — among the connections of the client address
//! holding the most, the one that has waited longest for its client. A request in progress
//! is not spared for being in progress: a body sent a byte a second is "in progress" too.
//! Its age is what protects a real request: one made now (the game's match end) is the
//! newest, and is answered within microseconds of its arrival. A fresh request is therefore
//! always taken at once, and the connections that give way are the ones doing least: idle,
//! slow to send, or not reading their answers.
//!
//! On loopback every local process is `127.0.0.1`, so "the client holding the most" is
//! everyone, and age alone decides: the newest connections (the game's request of the moment)
//! are the last to go. With a non-loopback `--api-addr`, a flood from one remote address
//! only ever evicts its own connections while it holds the most.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::Instant;

/// What one connection is doing, shared by its task (which updates it) and the registry
/// (which reads it to pick a connection to close).
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    /// Milliseconds after `epoch` since which the connection has been waiting for its client.
    waiting_since_ms: AtomicU64,
    /// A request's head has arrived and its answer is not made yet.
    answering: AtomicBool,
}

impl Activity {
    /// A connection accepted now.
    pub fn new(epoch: Instant) -> Activity {
        let activity = Activity {
            epoch,
            waiting_since_ms: AtomicU64::new(0),
            answering: AtomicBool::new(false),
        };
        activity.mark_waiting();
        activity
    }

    fn mark_waiting(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.waiting_since_ms.store(now, Ordering::Relaxed);
    }

    /// A request's head has arrived: the request is being answered.
    pub fn request_started(&self) {
        self.answering.store(true, Ordering::Relaxed);
    }

    /// The request's answer is made: the connection waits for its client again (to take the
    /// answer, then to send its next request).
    pub fn answered(&self) {
        self.mark_waiting();
        self.answering.store(false, Ordering::Relaxed);
    }

    fn answering(&self) -> bool {
        self.answering.load(Ordering::Relaxed)
    }

    fn waiting_since(&self) -> u64 {
        self.waiting_since_ms.load(Ordering::Relaxed)
    }

    /// When the connection will have waited `limit` for its client, as things stand.
    pub fn waiting_deadline(&self, limit: Duration) -> Instant {
        self.epoch + Duration::from_millis(self.waiting_since()) + limit
    }

    /// True when no request is being answered and the client has kept the connection
    /// waiting for `limit` or more.
    pub fn waited_past(&self, limit: Duration) -> bool {
        !self.answering() && Instant::now() >= self.waiting_deadline(limit)
    }
}

struct Entry {
    peer: IpAddr,
    activity: Arc<Activity>,
    /// Set once the connection's task is spawned.
    abort: Option<AbortHandle>,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    entries: HashMap<u64, Entry>,
    per_peer: HashMap<IpAddr, usize>,
}

impl Open {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        if let Some(count) = self.per_peer.get_mut(&entry.peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_peer.remove(&entry.peer);
            }
        }
        Some(entry)
    }
}

/// The open connections.
#[derive(Default)]
pub struct Registry {
    open: Mutex<Open>,
}

/// A registered connection; dropping it (when the connection's task ends, or is aborted)
/// removes it from the registry.
pub struct Registration {
    registry: Arc<Registry>,
    id: u64,
}

impl Registration {
    /// The connection's id in the registry.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(self.id);
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Open> {
        // Each change is a few map operations that cannot be left half done.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a connection from `peer` (IPv4-mapped addresses count as their IPv4 one).
    pub fn register(self: &Arc<Self>, peer: IpAddr, activity: Arc<Activity>) -> Registration {
        let peer = peer.to_canonical();
        let mut open = self.lock();
        open.next_id += 1;
        let id = open.next_id;
        open.entries.insert(
            id,
            Entry {
                peer,
                activity,
                abort: None,
            },
        );
        *open.per_peer.entry(peer).or_default() += 1;
        Registration {
            registry: Arc::clone(self),
            id,
        }
    }

    /// Gives the registry the means to close the connection's task. A connection that has
    /// already ended is not registered again.
    pub fn set_abort(&self, id: u64, abort: AbortHandle) {
        if let Some(entry) = self.lock().entries.get_mut(&id) {
            entry.abort = Some(abort);
        }
    }

    /// Closes one connection to make room (see the module doc for which); false when none
    /// can be closed.
    pub fn evict_one(&self) -> bool {
        let mut open = self.lock();
        let candidates = open.entries.iter().filter_map(|(&id, entry)| {
            entry.abort.as_ref()?;
            let held_by_peer = open.per_peer.get(&entry.peer).copied().unwrap_or(0);
            Some(Candidate {
                id,
                held_by_peer,
                waiting_since: entry.activity.waiting_since(),
            })
        });
        let Some(victim) = choose_victim(candidates) else {
            return false;
        };
        match open.remove(victim).and_then(|entry| entry.abort) {
            Some(abort) => {
                abort.abort();
                true
            }
            None => false,
        }
    }
}

/// What the choice of a connection to close looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    id: u64,
    held_by_peer: usize,
    waiting_since: u64,
}

/// The client address holding the most connections first; then the longest wait (the
/// earliest `waiting_since`); then the oldest id, so the choice is stable.
fn choose_victim(candidates: impl Iterator<Item = Candidate>) -> Option<u64> {
    candidates
        .max_by_key(|c| {
            (
                c.held_by_peer,
                std::cmp::Reverse(c.waiting_since),
                std::cmp::Reverse(c.id),
            )
        })
        .map(|c| c.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: u64, held_by_peer: usize, waiting_since: u64) -> Candidate {
        Candidate {
            id,
            held_by_peer,
            waiting_since,
        }
    }

    #[test]
    fn the_longest_waiting_connection_gives_way() {
        let victim = choose_victim(
            [
                candidate(1, 3, 500),
                candidate(2, 3, 100),
                candidate(3, 3, 900),
            ]
            .into_iter(),
        );
        assert_eq!(victim, Some(2));
    }

    #[test]
    fn ties_go_to_the_oldest_connection_and_none_is_no_choice() {
        let victim = choose_victim([candidate(7, 2, 300), candidate(4, 2, 300)].into_iter());
        assert_eq!(victim, Some(4));
        assert_eq!(choose_victim(std::iter::empty()), None);
    }

    #[test]
    fn the_client_holding_the_most_connections_gives_way_first() {
        // The game's old keep-alive connection (peer holding 1) outlives a flood's newer ones.
        let victim = choose_victim(
            [
                candidate(1, 1, 0),
                candidate(2, 1000, 700),
                candidate(3, 1000, 600),
            ]
            .into_iter(),
        );
        assert_eq!(victim, Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn activity_tracks_the_wait_for_the_client() {
        let activity = Activity::new(Instant::now());
        let limit = Duration::from_secs(10);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!activity.waited_past(limit));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(activity.waited_past(limit));
        activity.request_started();
        assert!(!activity.waited_past(limit), "a request is being answered");
        tokio::time::advance(Duration::from_secs(30)).await;
        activity.answered();
        assert!(!activity.waited_past(limit), "the wait starts again");
        assert_eq!(
            activity.waiting_deadline(limit),
            Instant::now() + limit,
            "measured from the answer"
        );
    }

    #[tokio::test]
    async fn registering_counts_per_client_and_eviction_aborts_the_task() {
        let registry = Arc::new(Registry::default());
        let epoch = Instant::now();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let first = registry.register(local, Arc::new(Activity::new(epoch)));
        let second = registry.register(mapped, Arc::new(Activity::new(epoch)));
        assert_eq!(registry.lock().per_peer.get(&local), Some(&2));
        assert!(!registry.evict_one(), "no task to close yet");
        let task = tokio::spawn(std::future::pending::<()>());
        registry.set_abort(first.id(), task.abort_handle());
        assert!(registry.evict_one());
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(registry.len(), 1);
        drop(first);
        drop(second);
        assert!(registry.is_empty());
        assert!(registry.lock().per_peer.is_empty());
    }
}
