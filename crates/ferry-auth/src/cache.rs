//! A short-lived memory of successful password verifications, and the bound on concurrent ones.
//!
//! Argon2id is slow on purpose (tens of milliseconds and ~19 MiB per verification). A client that
//! opens many connections with the same credentials (a login storm, a client opening one control
//! connection per transfer) would pay that every time, and unbounded concurrent verifications use
//! one blocking thread and 19 MiB each. So:
//!
//! - [`VerifyCache`] remembers, per user name, an HMAC-SHA-256 of the password that was verified
//!   (keyed by a random per-process key, so the cache never holds the password or an unkeyed hash
//!   of it), the stored Argon2id hash it was verified against, and an expiry. A login hits the
//!   cache only if the stored hash read from the database *now* is the same string (a password
//!   changed by the CLI in another process changes the hash and so misses) and the HMAC of the
//!   offered password matches in constant time. A wrong password can never hit: it has a
//!   different HMAC, and a miss always falls back to a full Argon2id verification.
//! - The cache is bounded ([`MAX_ENTRIES`]) and entries expire after [`TTL`].
//! - [`Verifiers`] is a semaphore with one permit per CPU: Argon2id work beyond that waits in line
//!   instead of taking blocking threads and memory away from transfers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::TryRngCore;
use sha2::Sha256;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::password::Password;

/// How long a successful verification is remembered.
pub(crate) const TTL: Duration = Duration::from_secs(300);
/// Users remembered at most; beyond that expired entries are dropped, then the oldest.
pub(crate) const MAX_ENTRIES: usize = 4096;

type HmacSha256 = Hmac<Sha256>;

/// Successful verifications, keyed by user name.
pub(crate) struct VerifyCache {
    key: [u8; 32],
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    tag: [u8; 32],
    stored_hash: String,
    expires: Instant,
}

impl std::fmt::Debug for VerifyCache {
    // Neither the key nor the tags are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyCache").finish_non_exhaustive()
    }
}

impl VerifyCache {
    /// An empty cache with a fresh random key; `None` if the OS has no randomness to give (the
    /// caller then works without a cache).
    pub(crate) fn new() -> Option<Self> {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.try_fill_bytes(&mut key).ok()?;
        Some(VerifyCache {
            key,
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `pw` was verified against exactly `stored_hash` for `user` within the TTL.
    pub(crate) fn hit(&self, user: &str, stored_hash: &str, pw: &Password, now: Instant) -> bool {
        let Some(mac) = self.mac(pw) else {
            return false;
        };
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(user) {
            Some(e) if e.expires > now && e.stored_hash == stored_hash => mac.verify_slice(&e.tag).is_ok(),
            _ => false,
        }
    }

    /// Remembers that `pw` matched `stored_hash` for `user`.
    pub(crate) fn remember(&self, user: &str, stored_hash: &str, pw: &Password, now: Instant) {
        let Some(mac) = self.mac(pw) else {
            return;
        };
        let tag: [u8; 32] = mac.finalize().into_bytes().into();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(user) {
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= MAX_ENTRIES {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(name, _)| name.clone());
                if let Some(name) = oldest {
                    entries.remove(&name);
                }
            }
        }
        entries.insert(
            user.to_owned(),
            Entry {
                tag,
                stored_hash: stored_hash.to_owned(),
                expires: now + TTL,
            },
        );
    }

    /// Forgets `user` (after a failed verification, a password change or a deletion).
    pub(crate) fn forget(&self, user: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(user);
    }

    fn mac(&self, pw: &Password) -> Option<HmacSha256> {
        let mut mac = HmacSha256::new_from_slice(&self.key).ok()?;
        mac.update(pw.expose().as_bytes());
        Some(mac)
    }
}

/// Bounds concurrent Argon2id work to one verification per CPU.
#[derive(Debug, Clone)]
pub(crate) struct Verifiers(Arc<Semaphore>);

impl Verifiers {
    pub(crate) fn new() -> Self {
        let n = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Verifiers(Arc::new(Semaphore::new(n)))
    }

    /// Waits for a turn.
    pub(crate) async fn acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.0.acquire().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::new(s.into())
    }

    #[test]
    fn a_wrong_password_never_hits() {
        let cache = VerifyCache::new().expect("cache");
        let now = Instant::now();
        cache.remember("alice", "$hash1", &pw("right"), now);
        assert!(cache.hit("alice", "$hash1", &pw("right"), now));
        assert!(!cache.hit("alice", "$hash1", &pw("wrong"), now));
        assert!(!cache.hit("alice", "$hash1", &pw("righ"), now));
        assert!(!cache.hit("alice", "$hash1", &pw(""), now));
        assert!(!cache.hit("bob", "$hash1", &pw("right"), now), "keyed by user");
    }

    #[test]
    fn a_changed_stored_hash_misses() {
        let cache = VerifyCache::new().expect("cache");
        let now = Instant::now();
        cache.remember("alice", "$hash1", &pw("right"), now);
        assert!(!cache.hit("alice", "$hash2", &pw("right"), now));
    }

    #[test]
    fn entries_expire() {
        let cache = VerifyCache::new().expect("cache");
        let now = Instant::now();
        cache.remember("alice", "$h", &pw("right"), now);
        assert!(cache.hit("alice", "$h", &pw("right"), now + TTL - Duration::from_secs(1)));
        assert!(!cache.hit("alice", "$h", &pw("right"), now + TTL));
    }

    #[test]
    fn forget_removes_the_entry() {
        let cache = VerifyCache::new().expect("cache");
        let now = Instant::now();
        cache.remember("alice", "$h", &pw("right"), now);
        cache.forget("alice");
        assert!(!cache.hit("alice", "$h", &pw("right"), now));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = VerifyCache::new().expect("cache");
        let now = Instant::now();
        for i in 0..MAX_ENTRIES + 10 {
            cache.remember(
                &format!("u{i}"),
                "$h",
                &pw("p"),
                now + Duration::from_millis(i as u64),
            );
        }
        let len = cache.entries.lock().map(|e| e.len()).unwrap_or(0);
        assert_eq!(len, MAX_ENTRIES);
        let last = format!("u{}", MAX_ENTRIES + 9);
        assert!(cache.hit(&last, "$h", &pw("p"), now));
        assert!(!cache.hit("u0", "$h", &pw("p"), now), "the oldest went first");
    }

    #[test]
    fn different_processes_use_different_keys() {
        let a = VerifyCache::new().expect("cache");
        let b = VerifyCache::new().expect("cache");
        assert_ne!(a.key, b.key);
    }
}
