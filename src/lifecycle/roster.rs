//! The one set of connected players, shared by the local API and the driver.
//!
//! The API is the only writer of joins and leaves: it changes the set under its lock and
//! answers from it (`"new"`, `"count"`, `GET /v1/players`), then notifies the driver. The
//! driver empties it when the game is restarted in place — players do not survive a restart:
//! the new process holds none of the old connections, so a player who comes back connects
//! again and is new — and tells the machine its size, read here, whenever it may have
//! changed. No second copy exists that could drift from it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

/// A handle on the shared set; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Roster(Arc<Mutex<BTreeSet<String>>>);

impl Roster {
    /// The set, locked. Each change is one insert, remove or clear, so a panic while holding
    /// the lock cannot leave it half-changed and a poisoned lock is used as is.
    pub fn lock(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Empties the set (the game was restarted in place); returns how many were dropped.
    pub fn clear(&self) -> usize {
        std::mem::take(&mut *self.lock()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_set() {
        let api = Roster::default();
        let driver = api.clone();
        api.lock().insert("p1".into());
        assert_eq!(driver.len(), 1);
        assert_eq!(driver.clear(), 1);
        assert!(api.is_empty());
    }
}
