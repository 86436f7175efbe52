//! What the FTP and SFTP servers tell an observer (the metrics of the admin listener): sessions
//! opening and closing, login outcomes and finished transfers, each labelled with the protocol.
//!
//! The servers hold an optional `Arc<dyn Observer>`; every method has an empty default so an
//! observer implements only what it needs, and a server without one pays nothing. Calls are made
//! on the connection's task and must not block.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

/// The protocol a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// FTP without TLS on the control connection.
    Ftp,
    /// FTP with TLS on the control connection (explicit after `AUTH TLS`, or implicit).
    Ftps,
    /// SFTP over SSH.
    Sftp,
}

impl Protocol {
    /// The label value: `ftp`, `ftps` or `sftp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Ftp => "ftp",
            Protocol::Ftps => "ftps",
            Protocol::Sftp => "sftp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way file data moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server (STOR, APPE, STOU; SFTP write).
    Upload,
    /// Server to client (RETR; SFTP read).
    Download,
}

impl Direction {
    /// The label value: `upload` or `download`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
        }
    }
}

/// Receives the servers' events. All methods default to doing nothing.
pub trait Observer: Send + Sync + fmt::Debug {
    /// A connection was accepted and is being served (after the connection limits let it in).
    fn session_opened(&self, _protocol: Protocol) {}
    /// A session opened with [`Observer::session_opened`] ended (same protocol label).
    fn session_closed(&self, _protocol: Protocol) {}
    /// A login attempt ended: `ok` when the user is now logged in.
    fn login(&self, _protocol: Protocol, _ok: bool) {}
    /// A file transfer ended; `bytes` moved over the data connection (or SFTP channel), `ok` when it
    /// completed.
    fn transfer(&self, _protocol: Protocol, _direction: Direction, _bytes: u64, _ok: bool) {}
    /// An FTP data connection (for a transfer or a listing) failed, and the client got `reply`: 425 (no
    /// connection could be made), 426 (it broke) or 522 (its TLS was refused).
    fn data_connection_failed(&self, _protocol: Protocol, _reply: u16) {}
}

/// Counts a session for as long as it lives: `session_opened` now, `session_closed` when dropped
/// (also when the connection task ends by a panic).
#[derive(Debug)]
pub struct SessionGuard {
    observer: Option<Arc<dyn Observer>>,
    protocol: Protocol,
}

impl SessionGuard {
    /// Reports the session to `observer` (if any) and returns the guard that reports its end.
    pub fn open(observer: Option<Arc<dyn Observer>>, protocol: Protocol) -> Self {
        if let Some(o) = &observer {
            o.session_opened(protocol);
        }
        SessionGuard { observer, protocol }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if let Some(o) = &self.observer {
            o.session_closed(self.protocol);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    #[derive(Debug, Default)]
    struct Count(AtomicI64);

    impl Observer for Count {
        fn session_opened(&self, _p: Protocol) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        fn session_closed(&self, _p: Protocol) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn guard_reports_open_then_close() {
        let count = Arc::new(Count::default());
        let guard = SessionGuard::open(Some(count.clone() as Arc<dyn Observer>), Protocol::Sftp);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        drop(guard);
        assert_eq!(count.0.load(Ordering::Relaxed), 0);
    }
}
