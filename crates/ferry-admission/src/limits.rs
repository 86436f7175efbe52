//! Connection limits: total, per client IP, and not yet logged in (pending), with a slot that releases
//! itself when the connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::cluster::{ClusterLimits, Lease};

/// Connection limits; over a limit the client is refused at once (FTP `421`, SSH: closed before the
/// handshake).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections open at once, all clients together.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_per_ip: usize,
    /// Connections open at once that have not logged in yet, all clients together. Lower than
    /// `max_connections`, so that connections which never log in cannot take every slot.
    pub max_pending: usize,
    /// Sessions logged in at once as one user (0: no limit). Anonymous FTP is not counted.
    pub max_per_user: usize,
    /// With a PostgreSQL user database shared by several nodes: `max_per_ip` counted across all of
    /// them (see [`crate::cluster`]). `None`: this node only.
    pub cluster: Option<Arc<ClusterLimits>>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            max_per_ip: 50,
            max_pending: 200,
            max_per_user: 0,
            cluster: None,
        }
    }
}

impl PartialEq for ConnectionLimits {
    fn eq(&self, other: &Self) -> bool {
        self.max_connections == other.max_connections
            && self.max_per_ip == other.max_per_ip
            && self.max_pending == other.max_pending
            && self.max_per_user == other.max_per_user
            && match (&self.cluster, &other.cluster) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

impl Eq for ConnectionLimits {}

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections`.
    Total,
    /// `max_per_ip`.
    PerIp,
    /// `max_pending`.
    Pending,
    /// `max_per_user`.
    PerUser,
    /// The user database, which keeps the limits of all nodes, cannot be reached (and the cluster
    /// fails closed).
    Unavailable,
}

impl Refusal {
    /// What to tell the client.
    pub fn text(self) -> &'static str {
        match self {
            Refusal::Total => "Too many connections; try again later",
            Refusal::PerIp => "Too many connections from your address; try again later",
            Refusal::Pending => "Too many connections waiting to log in; try again later",
            Refusal::PerUser => "Too many sessions of this user; try again later",
            Refusal::Unavailable => "Service temporarily unavailable; try again later",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    pending: usize,
    per_ip: HashMap<IpAddr, usize>,
    per_user: HashMap<String, usize>,
}

/// Counts open connections.
#[derive(Debug, Clone)]
pub struct Tracker {
    limits: Arc<Mutex<ConnectionLimits>>,
    counts: Arc<Mutex<Counts>>,
}

/// Holds one connection slot; releases it on drop.
#[derive(Debug)]
pub struct Slot {
    ip: IpAddr,
    pending: bool,
    counts: Arc<Mutex<Counts>>,
    /// The connection's lease in the cluster, if limits are shared.
    lease: Option<Lease>,
    /// The user it counts for, once logged in (with `max_per_user`).
    user: Option<String>,
}

impl Tracker {
    /// A tracker enforcing `limits`.
    pub fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits: Arc::new(Mutex::new(limits)),
            counts: Arc::default(),
        }
    }

    /// Enforces `limits` from now on (connections already open stay open, even over a lower limit).
    pub fn set_limits(&self, limits: ConnectionLimits) {
        *self.limits.lock().unwrap_or_else(PoisonError::into_inner) = limits;
    }

    /// A slot for a connection from `ip` (pending until [`Slot::logged_in`]), or the limit that refuses
    /// it.
    pub fn acquire(&self, ip: IpAddr) -> Result<Slot, Refusal> {
        let limits = self.limits.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if c.total >= limits.max_connections {
            return Err(Refusal::Total);
        }
        if c.pending >= limits.max_pending {
            return Err(Refusal::Pending);
        }
        let n = c.per_ip.entry(ip).or_insert(0);
        if *n >= limits.max_per_ip {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        c.total += 1;
        c.pending += 1;
        Ok(Slot {
            ip,
            pending: true,
            counts: Arc::clone(&self.counts),
            lease: None,
            user: None,
        })
    }

    /// The limits in force (a copy: they may change on reload).
    pub fn limits(&self) -> ConnectionLimits {
        self.limits.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// `slot`'s connection logged in as `user`: no longer pending, and (with `max_per_user`) one more
    /// session of `user`, unless that would exceed the limit.
    pub fn log_in(&self, slot: &mut Slot, user: &str) -> Result<(), Refusal> {
        let max_per_user = self.limits().max_per_user;
        if max_per_user > 0 && slot.user.is_none() {
            let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
            let n = c.per_user.entry(user.to_owned()).or_insert(0);
            if *n >= max_per_user {
                if *n == 0 {
                    c.per_user.remove(user);
                }
                return Err(Refusal::PerUser);
            }
            *n += 1;
            slot.user = Some(user.to_owned());
        }
        slot.logged_in();
        Ok(())
    }
}

impl Slot {
    /// Holds `lease` for as long as the slot.
    pub(crate) fn hold(&mut self, lease: Lease) {
        self.lease = Some(lease);
    }

    /// The connection's lease in the cluster, if it has one.
    pub(crate) fn lease_id(&self) -> Option<i64> {
        self.lease.as_ref().map(Lease::id)
    }

    /// The connection has logged in: it no longer counts as pending.
    pub fn logged_in(&mut self) {
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
        if let Some(user) = self.user.take() {
            if let Some(n) = c.per_user.get_mut(&user) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.per_user.remove(&user);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_per_user_are_limited_and_released() {
        let t = Tracker::new(ConnectionLimits {
            max_per_user: 2,
            ..ConnectionLimits::default()
        });
        let a: IpAddr = [10, 0, 0, 1].into();
        let mut s1 = t.acquire(a).expect("first");
        let mut s2 = t.acquire(a).expect("second");
        let mut s3 = t.acquire(a).expect("third");
        t.log_in(&mut s1, "alice").expect("first session");
        t.log_in(&mut s2, "alice").expect("second session");
        assert_eq!(t.log_in(&mut s3, "alice"), Err(Refusal::PerUser));
        t.log_in(&mut s3, "bob").expect("another user");
        drop(s1);
        let mut s4 = t.acquire(a).expect("fourth");
        t.log_in(&mut s4, "alice").expect("a session was released");
        drop((s2, s3, s4));
        assert!(t.counts.lock().expect("lock").per_user.is_empty());
    }

    #[test]
    fn per_ip_and_total_limits_refuse_and_release() {
        let t = Tracker::new(ConnectionLimits {
            max_connections: 3,
            max_per_ip: 2,
            max_pending: 3,
            max_per_user: 0,
            cluster: None,
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

    #[test]
    fn pending_limit_counts_only_connections_not_logged_in() {
        let t = Tracker::new(ConnectionLimits {
            max_connections: 10,
            max_per_ip: 10,
            max_pending: 2,
            max_per_user: 0,
            cluster: None,
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
