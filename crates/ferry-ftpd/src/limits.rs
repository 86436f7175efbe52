//! Connection limits: total, per client IP, and not yet logged in (pending), with a guard that releases
//! the slot when the connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Connection limits; over a limit the client gets `421` and is disconnected at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Control connections open at once, all clients together.
    pub max_connections: usize,
    /// Control connections open at once from one IP address.
    pub max_per_ip: usize,
    /// Control connections open at once that have not logged in yet, all clients together. Lower than
    /// `max_connections`, so that connections which never log in cannot take every slot.
    pub max_pending: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            max_per_ip: 50,
            max_pending: 200,
        }
    }
}

/// Password verifications run at once, server-wide: one per CPU (at least 2). Each Argon2id
/// verification takes tens of milliseconds of CPU and 19 MiB of memory, so a burst of logins would
/// otherwise cost memory in proportion to its size; further logins wait their turn (in order).
fn max_concurrent_logins() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// Turns for password checks: at most [`max_concurrent_logins`] at once server-wide, and one at a time
/// per client address, so that a guessing burst from one address cannot take every turn and keep
/// other clients from logging in.
#[derive(Debug)]
pub(crate) struct LoginGate {
    global: Arc<tokio::sync::Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, Arc<tokio::sync::Semaphore>>>,
}

/// A turn; the address's entry is removed when nobody else holds or waits for it.
#[derive(Debug)]
pub(crate) struct LoginTurn<'a> {
    gate: &'a LoginGate,
    ip: IpAddr,
    permits: Option<(
        tokio::sync::OwnedSemaphorePermit,
        tokio::sync::OwnedSemaphorePermit,
    )>,
}

impl LoginGate {
    pub(crate) fn new() -> Self {
        LoginGate {
            global: Arc::new(tokio::sync::Semaphore::new(max_concurrent_logins())),
            per_ip: Mutex::default(),
        }
    }

    /// Waits for this address's turn, then for a server-wide one.
    pub(crate) async fn enter(&self, ip: IpAddr) -> Option<LoginTurn<'_>> {
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

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Total,
    PerIp,
    Pending,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    pending: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Counts open connections.
#[derive(Debug, Clone)]
pub(crate) struct Tracker {
    limits: ConnectionLimits,
    counts: Arc<Mutex<Counts>>,
}

/// Holds one connection slot; releases it on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    ip: IpAddr,
    pending: bool,
    counts: Arc<Mutex<Counts>>,
}

impl Tracker {
    pub(crate) fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits,
            counts: Arc::default(),
        }
    }

    pub(crate) fn acquire(&self, ip: IpAddr) -> Result<Slot, Refusal> {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if c.total >= self.limits.max_connections {
            return Err(Refusal::Total);
        }
        if c.pending >= self.limits.max_pending {
            return Err(Refusal::Pending);
        }
        let n = c.per_ip.entry(ip).or_insert(0);
        if *n >= self.limits.max_per_ip {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        c.total += 1;
        c.pending += 1;
        Ok(Slot {
            ip,
            pending: true,
            counts: Arc::clone(&self.counts),
        })
    }
}

impl Slot {
    /// The connection has logged in: it no longer counts as pending.
    pub(crate) fn logged_in(&mut self) {
        if std::mem::take(&mut self.pending) {
            let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            c.pending = c.pending.saturating_sub(1);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if self.pending {
            c.pending = c.pending.saturating_sub(1);
        }
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_total_limits_refuse_and_release() {
        let t = Tracker::new(ConnectionLimits {
            max_connections: 3,
            max_per_ip: 2,
            max_pending: 3,
        });
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let s1 = t.acquire(a).expect("first");
        let _s2 = t.acquire(a).expect("second");
        assert_eq!(t.acquire(a).unwrap_err(), Refusal::PerIp);
        let _s3 = t.acquire(b).expect("other ip");
        assert_eq!(t.acquire(b).unwrap_err(), Refusal::Total);
        drop(s1);
        assert!(t.acquire(a).is_ok());
    }

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

    #[test]
    fn pending_limit_counts_only_connections_not_logged_in() {
        let t = Tracker::new(ConnectionLimits {
            max_connections: 10,
            max_per_ip: 10,
            max_pending: 2,
        });
        let a: IpAddr = [10, 0, 0, 1].into();
        let mut s1 = t.acquire(a).expect("first");
        let s2 = t.acquire(a).expect("second");
        assert_eq!(t.acquire(a).unwrap_err(), Refusal::Pending);
        s1.logged_in();
        s1.logged_in(); // idempotent
        let s3 = t.acquire(a).expect("a pending slot was freed by the login");
        assert_eq!(t.acquire(a).unwrap_err(), Refusal::Pending);
        drop(s2);
        drop(s3);
        let _s4 = t.acquire(a).expect("released on drop");
        let _s5 = t.acquire(a).expect("released on drop");
        drop(s1); // a logged-in slot does not release a pending one
        assert_eq!(t.acquire(a).unwrap_err(), Refusal::Pending);
    }
}
