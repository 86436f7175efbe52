//! Every bound of the SFTP server in one place, and the connection counter.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Longest SFTP packet accepted from a client (length field excluded): a 256 KiB write plus header.
pub const MAX_PACKET_LEN: usize = 256 * 1024 + 1024;
/// Most bytes returned by one READ, and advertised as `max-read-length` (limits@openssh.com).
/// Below 256 KiB so the DATA reply fits the 256 KiB packet limit of OpenSSH's client.
pub const MAX_READ_LEN: usize = 256 * 1024 - 1024;
/// Most bytes one WRITE may carry, advertised as `max-write-length`.
pub const MAX_WRITE_LEN: usize = 256 * 1024 - 1024;
/// Bytes of received but not yet started requests one SFTP session may hold; more ends the
/// session. Input is read even while [`MAX_IN_FLIGHT`] requests run (see `sftp::run`), so this is
/// what bounds a client that sends faster than the server works; OpenSSH's client never gets near
/// it (64 requests of at most 256 KiB), nor does rclone's default of 64 outstanding 32 KiB writes
/// per file with 4 files at once.
pub const MAX_BUFFERED: usize = 16 * 1024 * 1024;
/// Bytes of requests in progress and of replies not yet handed to the SSH channel, per SFTP
/// session. A request starts only when its packet plus the largest reply it can produce
/// ([`MAX_READ_LEN`] for a READ) fit, so a client that pipelines READs without reading the replies
/// holds at most this much of them; with [`MAX_BUFFERED`] of received requests and the SSH
/// channel's own queue this bounds a session's memory (docs/sftp.md, "Memory"). 4 MiB keeps 64
/// OpenSSH-sized (32 KiB) or 16 maximal (255 KiB) reads in flight.
pub const IN_PROGRESS_BUDGET: usize = 4 * 1024 * 1024;
/// Open file and directory handles per SFTP session.
pub const MAX_HANDLES: usize = 256;
/// Requests of one SFTP session being processed at once; further requests wait, received, in
/// the session's buffer (up to [`MAX_BUFFERED`]). OpenSSH's client keeps up to 64 in flight.
pub const MAX_IN_FLIGHT: usize = 64;
/// Longest path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 4096;
/// Directory entries per READDIR reply.
pub const READDIR_BATCH: usize = 64;
/// Session channels (SFTP sessions) open at once on one SSH connection.
pub const MAX_SFTP_CHANNELS: usize = 4;
/// Longest extension name accepted (longer ones are unsupported anyway).
pub const MAX_EXTENSION_NAME: usize = 64;

/// Connection limits; over a limit the connection is closed before the SSH handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once, all clients together.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
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

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Counts open connections.
#[derive(Debug)]
pub(crate) struct Tracker {
    limits: ConnectionLimits,
    counts: Arc<Mutex<Counts>>,
}

/// One connection's place in the count; released on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    ip: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl Tracker {
    pub(crate) fn new(limits: ConnectionLimits) -> Self {
        Tracker {
            limits,
            counts: Arc::default(),
        }
    }

    /// A slot for a connection from `ip`, or `None` over a limit.
    pub(crate) fn acquire(&self, ip: IpAddr) -> Option<Slot> {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let from_ip = c.per_ip.get(&ip).copied().unwrap_or(0);
        if c.total >= self.limits.max_connections || from_ip >= self.limits.max_per_ip {
            return None;
        }
        c.total += 1;
        c.per_ip.insert(ip, from_ip + 1);
        Some(Slot {
            ip,
            counts: Arc::clone(&self.counts),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        let left = c.per_ip.get(&self.ip).map_or(0, |n| n.saturating_sub(1));
        if left == 0 {
            c.per_ip.remove(&self.ip);
        } else {
            c.per_ip.insert(self.ip, left);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_and_slots_release() {
        let t = Tracker::new(ConnectionLimits {
            max_connections: 2,
            max_per_ip: 1,
        });
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let c: IpAddr = [10, 0, 0, 3].into();
        let s = t.acquire(a).expect("first");
        assert!(t.acquire(a).is_none(), "per ip");
        let _t = t.acquire(b).expect("other ip");
        assert!(t.acquire(c).is_none(), "total");
        drop(s);
        assert!(t.acquire(a).is_some());
    }
}
