//! One session's reporting: the front ends call a [`SessionTap`] with what they know at the call
//! site (a path, a byte count, a result), and it fills in the rest (protocol, session number,
//! client, user) and tells the observer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::{Direction, Event, EventKind, Observer, Protocol};

/// Session numbers, unique within the process.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// Counts a session for as long as it lives: `session_opened` now, `session_closed` when dropped
/// (also when the connection task ends by a panic). Kept for callers that need only the count;
/// [`SessionTap`] does this and reports events too.
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

/// What changes during a session.
#[derive(Debug)]
struct State {
    protocol: Protocol,
    user: Option<String>,
    method: Option<&'static str>,
}

/// One session's link to the observer: `session_start` when opened, `session_end` when dropped,
/// and the events in between.
#[derive(Debug)]
pub struct SessionTap {
    observer: Option<Arc<dyn Observer>>,
    /// The protocol the session was counted under (the metrics' gauge goes down under the same).
    opened_as: Protocol,
    id: u64,
    client: SocketAddr,
    started: Instant,
    state: Mutex<State>,
}

impl SessionTap {
    /// Reports a new session of `client` to `observer` (if any).
    pub fn open(observer: Option<Arc<dyn Observer>>, protocol: Protocol, client: SocketAddr) -> Arc<Self> {
        let tap = SessionTap {
            observer,
            opened_as: protocol,
            id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            client,
            started: Instant::now(),
            state: Mutex::new(State {
                protocol,
                user: None,
                method: None,
            }),
        };
        if let Some(o) = &tap.observer {
            o.session_opened(protocol);
            o.event(&tap.make(EventKind::SessionStart));
        }
        Arc::new(tap)
    }

    /// A tap that reports nothing (tests, tools).
    pub fn none(protocol: Protocol, client: SocketAddr) -> Arc<Self> {
        Self::open(None, protocol, client)
    }

    /// The session's number, as the events show it.
    pub fn id(&self) -> u64 {
        self.id
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The protocol from now on (FTP becomes FTPS after `AUTH TLS`).
    pub fn set_protocol(&self, protocol: Protocol) {
        self.state().protocol = protocol;
    }

    /// The protocol now.
    pub fn protocol(&self) -> Protocol {
        self.state().protocol
    }

    /// An event of `kind` with the session's fields filled in.
    pub fn make(&self, kind: EventKind) -> Event {
        let state = self.state();
        let mut e = Event::new(kind, state.protocol, self.id, self.client);
        e.user = state.user.clone();
        e.method = state.method;
        e
    }

    fn emit(&self, e: &Event) {
        if let Some(o) = &self.observer {
            o.event(e);
        }
    }

    /// A login attempt by `user` with `method` ended; on success the user is named in every later
    /// event of the session.
    pub fn login(&self, user: &str, method: &'static str, ok: bool) {
        let Some(o) = &self.observer else {
            if ok {
                let mut s = self.state();
                (s.user, s.method) = (Some(user.to_owned()), Some(method));
            }
            return;
        };
        o.login(self.protocol(), ok);
        if ok {
            let mut s = self.state();
            (s.user, s.method) = (Some(user.to_owned()), Some(method));
        }
        let mut e = self.make(if ok {
            EventKind::Login
        } else {
            EventKind::LoginFailed
        });
        e.user = Some(user.to_owned());
        e.method = Some(method);
        if !ok {
            e = e.with_result(Err("wrong credentials or unknown user".to_owned()));
        }
        o.event(&e);
    }

    /// The login defender banned the client's address until `until`.
    pub fn banned(&self, until: SystemTime) {
        let mut e = self.make(EventKind::Ban);
        e.until = Some(crate::time::rfc3339(until));
        self.emit(&e);
    }

    /// A file operation (`delete`, `rename`, `mkdir`, `rmdir`) on `path` (to `new_path` for a rename)
    /// ended.
    pub fn file_op(&self, kind: EventKind, path: &str, new_path: Option<&str>, result: Result<(), String>) {
        if self.observer.is_none() {
            return;
        }
        let mut e = self.make(kind);
        e.path = Some(path.to_owned());
        e.new_path = new_path.map(str::to_owned);
        self.emit(&e.with_result(result));
    }

    /// A transfer of `path` ended after `bytes` in `duration`.
    pub fn transfer(
        &self,
        direction: Direction,
        path: &str,
        bytes: u64,
        duration: Duration,
        result: Result<(), String>,
    ) {
        let Some(o) = &self.observer else { return };
        o.transfer(self.protocol(), direction, bytes, result.is_ok());
        let kind = match direction {
            Direction::Upload => EventKind::Upload,
            Direction::Download => EventKind::Download,
        };
        let mut e = self.make(kind);
        e.path = Some(path.to_owned());
        e.bytes = Some(bytes);
        o.event(&e.with_result(result).with_duration(duration));
    }

    /// An FTP data connection failed and the client got `reply` (425, 426 or 522).
    pub fn data_connection_failed(&self, reply: u16) {
        if let Some(o) = &self.observer {
            o.data_connection_failed(self.protocol(), reply);
        }
    }

    /// Whether an upload of `path` may start: asks the observer's pre-upload check (if any).
    /// `Err(reason)` refuses it.
    pub async fn check_upload(&self, path: &str) -> Result<(), String> {
        let Some(o) = &self.observer else {
            return Ok(());
        };
        let mut e = self.make(EventKind::Upload);
        e.path = Some(path.to_owned());
        match o.check_upload(&e) {
            Some(check) => check.await,
            None => Ok(()),
        }
    }
}

impl Drop for SessionTap {
    fn drop(&mut self) {
        if let Some(o) = &self.observer {
            o.session_closed(self.opened_as);
            let e = self
                .make(EventKind::SessionEnd)
                .with_duration(self.started.elapsed());
            o.event(&e);
        }
    }
}

/// One SFTP file handle's transfer: bytes counted as they move, reported once when the handle is
/// closed (or, as not completed, when it is dropped without a close).
#[derive(Debug)]
pub struct TransferTap {
    session: Arc<SessionTap>,
    direction: Direction,
    path: String,
    started: Instant,
    bytes: AtomicU64,
    reported: AtomicBool,
}

impl TransferTap {
    /// Starts counting a transfer of `path`.
    pub fn new(session: Arc<SessionTap>, direction: Direction, path: String) -> Self {
        TransferTap {
            session,
            direction,
            path,
            started: Instant::now(),
            bytes: AtomicU64::new(0),
            reported: AtomicBool::new(false),
        }
    }

    /// `n` more bytes moved.
    pub fn add(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// The transfer ended; only the first call reports.
    pub fn finish(&self, result: Result<(), String>) {
        if self.reported.swap(true, Ordering::Relaxed) {
            return;
        }
        self.session.transfer(
            self.direction,
            &self.path,
            self.bytes.load(Ordering::Relaxed),
            self.started.elapsed(),
            result,
        );
    }
}

impl Drop for TransferTap {
    fn drop(&mut self) {
        self.finish(Err("not completed: the file was not closed".to_owned()));
    }
}
