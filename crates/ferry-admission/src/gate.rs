//! Turns for password checks, server-wide and per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Password verifications run at once, server-wide: one per CPU (at least 2). Each Argon2id
/// verification takes tens of milliseconds of CPU and 19 MiB of memory, so a burst of logins would
/// otherwise cost memory in proportion to its size; further logins wait their turn (in order).
fn max_concurrent_logins() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// Turns for password checks: at most `max_concurrent_logins()` at once server-wide, and one at a time
/// per client address, so that a guessing burst from one address cannot take every turn and keep
/// other clients from logging in.
#[derive(Debug)]
pub struct LoginGate {
    global: Arc<tokio::sync::Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, Arc<tokio::sync::Semaphore>>>,
}

/// A turn; the address's entry is removed when nobody else holds or waits for it.
#[derive(Debug)]
pub struct LoginTurn<'a> {
    gate: &'a LoginGate,
    ip: IpAddr,
    permits: Option<(
        tokio::sync::OwnedSemaphorePermit,
        tokio::sync::OwnedSemaphorePermit,
    )>,
}

impl Default for LoginGate {
    fn default() -> Self {
        Self::new()
    }
}

impl LoginGate {
    /// A gate with one turn per CPU (at least 2).
    pub fn new() -> Self {
        LoginGate {
            global: Arc::new(tokio::sync::Semaphore::new(max_concurrent_logins())),
            per_ip: Mutex::default(),
        }
    }

    /// Waits for this address's turn, then for a server-wide one.
    pub async fn enter(&self, ip: IpAddr) -> Option<LoginTurn<'_>> {
        let mine = {
            let mut map = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(
                map.entry(ip)
                    .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(1))),
            )
        };
        let mut turn = LoginTurn {
            gate: self,
            ip,
            permits: None,
        };
        let own = mine.acquire_owned().await.ok()?;
        let global = Arc::clone(&self.global).acquire_owned().await.ok()?;
        turn.permits = Some((own, global));
        Some(turn)
    }
}

impl Drop for LoginTurn<'_> {
    fn drop(&mut self) {
        self.permits = None;
        let mut map = self.gate.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        // Only the map holds the address's semaphore: nobody holds or waits for a turn.
        if map.get(&self.ip).is_some_and(|s| Arc::strong_count(s) == 1) {
            map.remove(&self.ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn login_turns_are_one_per_address_and_entries_are_removed() {
        let gate = LoginGate::new();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = gate.enter(a).await.expect("turn");
        // A second turn for the same address waits; another address gets one at once.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), gate.enter(a)).await;
        assert!(waiting.is_err(), "two turns for one address");
        let other = gate.enter(b).await.expect("other address");
        drop(other);
        drop(first);
        let again = gate.enter(a).await.expect("turn after release");
        drop(again);
        assert!(
            gate.per_ip.lock().expect("lock").is_empty(),
            "entries left behind"
        );
    }
}
