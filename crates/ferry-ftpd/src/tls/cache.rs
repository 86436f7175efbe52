//! The TLS 1.2 session cache of one control connection, allocated only when a session is stored.
//!
//! rustls' own memory cache reserves room for all its entries when it is made, about 4 KiB for 32
//! entries; with one cache per control connection that was a third of what an idle FTPS session cost,
//! though TLS 1.3 clients (resuming with tickets) never store anything in it.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rustls::server::StoresServerSessions;

/// Sessions (session ID → session state) of one control connection and its data connections; the oldest
/// is dropped when `limit` are stored.
#[derive(Debug)]
pub(crate) struct SessionCache {
    entries: Mutex<VecDeque<(Vec<u8>, Vec<u8>)>>,
    limit: usize,
}

impl SessionCache {
    /// An empty cache of at most `limit` sessions; nothing is allocated until the first is stored.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            entries: Mutex::new(VecDeque::new()),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<(Vec<u8>, Vec<u8>)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        if self.limit == 0 {
            return false;
        }
        let mut entries = self.lock();
        entries.retain(|(k, _)| *k != key);
        while entries.len() >= self.limit {
            entries.pop_front();
        }
        entries.push_back((key, value));
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.lock()
            .iter()
            .find(|(k, _)| k.as_slice() == key)
            .map(|(_, v)| v.clone())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut entries = self.lock();
        let at = entries.iter().position(|(k, _)| k.as_slice() == key)?;
        entries.remove(at).map(|(_, v)| v)
    }

    fn can_cache(&self) -> bool {
        self.limit > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_sessions_up_to_its_limit() {
        let cache = SessionCache::new(2);
        assert!(cache.put(b"a".to_vec(), b"1".to_vec()));
        assert!(cache.put(b"b".to_vec(), b"2".to_vec()));
        assert!(cache.put(b"a".to_vec(), b"3".to_vec()));
        assert!(cache.put(b"c".to_vec(), b"4".to_vec()));
        assert_eq!(cache.get(b"b"), None, "oldest dropped");
        assert_eq!(
            cache.get(b"a").as_deref(),
            Some(&b"3"[..]),
            "replaced, not duplicated"
        );
        assert_eq!(cache.take(b"c").as_deref(), Some(&b"4"[..]));
        assert_eq!(cache.get(b"c"), None, "taken");
        assert_eq!(cache.lock().len(), 1);
    }

    #[test]
    fn allocates_nothing_until_a_session_is_stored() {
        let cache = SessionCache::new(32);
        assert_eq!(cache.lock().capacity(), 0);
        assert_eq!(cache.get(b"x"), None);
        assert_eq!(cache.lock().capacity(), 0);
        assert!(cache.can_cache());
        assert!(!SessionCache::new(0).put(b"a".to_vec(), b"1".to_vec()));
    }
}
