//! Connection limits: total and per client IP, with a guard that releases the slot when the
//! connection ends.

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
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            max_per_ip: 50,
        }
    }
}

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Total,
    PerIp,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
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
        let n = c.per_ip.entry(ip).or_insert(0);
        if *n >= self.limits.max_per_ip {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        c.total += 1;
        Ok(Slot {
            ip,
            counts: Arc::clone(&self.counts),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
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
}
