//! One session's reporting: the front ends call a [`SessionTap`] with what they know at the call
//! site (a path, a byte count, a result), and it fills in the rest (protocol, session number,
//! client, user) and tells the observer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

#[cfg(test)]
use crate::Outcome;
use crate::{Direction, Event, EventKind, LoginOutcome, Observer, Protocol};

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
        let outcome = if ok {
            LoginOutcome::Ok
        } else {
            LoginOutcome::Failed
        };
        self.login_result(user, method, outcome, None);
    }

    /// A login attempt by `user` with `method` ended with `outcome`, its credentials verified in
    /// `verification` (see [`Observer::login_attempt`]); on success the user is named in every
    /// later event of the session.
    pub fn login_result(
        &self,
        user: &str,
        method: &'static str,
        outcome: LoginOutcome,
        verification: Option<Duration>,
    ) {
        let ok = outcome == LoginOutcome::Ok;
        if ok {
            let mut s = self.state();
            (s.user, s.method) = (Some(user.to_owned()), Some(method));
        }
        let Some(o) = &self.observer else {
            return;
        };
        let protocol = self.protocol();
        o.login(protocol, ok);
        o.login_attempt(protocol, method, outcome, verification);
        let mut e = self.make(if ok {
            EventKind::Login
        } else {
            EventKind::LoginFailed
        });
        e.user = Some(user.to_owned());
        e.method = Some(method);
        match outcome {
            LoginOutcome::Ok => {}
            LoginOutcome::Failed => e = e.with_result(Err("wrong credentials or unknown user".to_owned())),
            LoginOutcome::Banned => e = e.with_result(Err("address banned".to_owned())),
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
    fn file_op(&self, kind: EventKind, path: &str, new_path: Option<&str>, result: Result<(), String>) {
        if self.observer.is_none() {
            return;
        }
        let mut e = self.make(kind);
        e.path = Some(path.to_owned());
        e.new_path = new_path.map(str::to_owned);
        self.emit(&e.with_result(result));
    }

    /// A transfer of `path` ended after `bytes` in `duration`.
    fn transfer(
        &self,
        direction: Direction,
        path: &str,
        bytes: u64,
        duration: Duration,
        result: Result<(), String>,
    ) {
        let Some(o) = &self.observer else { return };
        let protocol = self.protocol();
        o.transfer(protocol, direction, bytes, result.is_ok());
        o.transfer_duration(protocol, direction, duration, result.is_ok());
        let kind = match direction {
            Direction::Upload => EventKind::Upload,
            Direction::Download => EventKind::Download,
        };
        let mut e = self.make(kind);
        e.path = Some(path.to_owned());
        e.bytes = Some(bytes);
        o.event(&e.with_result(result).with_duration(duration));
    }

    /// One finished operation of a storage policy layer, whatever it was: `upload` and `download`
    /// are reported as transfers (with `bytes` and `duration`), the others as file operations. The
    /// single entry point for an adapter from a storage layer's own observer trait.
    pub fn fs_op(
        &self,
        kind: EventKind,
        path: &str,
        new_path: Option<&str>,
        bytes: u64,
        duration: Duration,
        result: Result<(), String>,
    ) {
        match kind {
            EventKind::Upload => self.transfer(Direction::Upload, path, bytes, duration, result),
            EventKind::Download => self.transfer(Direction::Download, path, bytes, duration, result),
            kind => self.file_op(kind, path, new_path, result),
        }
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
        // The event is not kept while the check runs: this future stays small inside the session's.
        let check = o.check_upload(&e);
        drop(e);
        match check {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicI64;

    #[derive(Debug, Default)]
    struct Record {
        events: Mutex<Vec<Event>>,
        active: AtomicI64,
        transfers: AtomicU64,
    }

    impl Observer for Record {
        fn session_opened(&self, _p: Protocol) {
            self.active.fetch_add(1, Ordering::Relaxed);
        }
        fn session_closed(&self, _p: Protocol) {
            self.active.fetch_sub(1, Ordering::Relaxed);
        }
        fn transfer(&self, _p: Protocol, _d: Direction, bytes: u64, _ok: bool) {
            self.transfers.fetch_add(bytes, Ordering::Relaxed);
        }
        fn event(&self, e: &Event) {
            self.events.lock().expect("lock").push(e.clone());
        }
    }

    #[test]
    fn a_session_reports_its_events_with_the_user_and_its_end() {
        let rec = Arc::new(Record::default());
        let tap = SessionTap::open(
            Some(rec.clone()),
            Protocol::Ftp,
            "192.0.2.1:5000".parse().expect("addr"),
        );
        assert_eq!(rec.active.load(Ordering::Relaxed), 1);
        tap.login("mallory", "password", false);
        tap.login("alice", "password", true);
        tap.set_protocol(Protocol::Ftps);
        tap.fs_op(EventKind::Rename, "/a", Some("/b"), 0, Duration::ZERO, Ok(()));
        tap.fs_op(
            EventKind::Upload,
            "/up",
            None,
            10,
            Duration::from_millis(1),
            Err("aborted".to_owned()),
        );
        tap.fs_op(
            EventKind::Download,
            "/d",
            None,
            7,
            Duration::from_millis(5),
            Ok(()),
        );
        drop(tap);
        assert_eq!(rec.active.load(Ordering::Relaxed), 0);
        assert_eq!(rec.transfers.load(Ordering::Relaxed), 17);
        let events = rec.events.lock().expect("lock");
        let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "session_start",
                "login_failed",
                "login",
                "rename",
                "upload",
                "download",
                "session_end"
            ]
        );
        assert_eq!(events[1].user.as_deref(), Some("mallory"));
        assert!(events[0].user.is_none());
        let rename = &events[3];
        assert_eq!(
            (rename.user.as_deref(), rename.protocol),
            (Some("alice"), Protocol::Ftps)
        );
        assert_eq!(rename.new_path.as_deref(), Some("/b"));
        let upload = &events[4];
        assert_eq!((upload.bytes, upload.result), (Some(10), Outcome::Failed));
        assert!(events.iter().all(|e| e.session == events[0].session));
        assert!(events[6].duration_ms.is_some());
    }
}

/// Hangs a session's tap on the storage policy layer: every upload, download, delete, rename,
/// mkdir and rmdir that goes through the user's [`ferry_vfs::UserFs`] becomes an event (log line,
/// xferlog entry, hook delivery, metrics), whatever the front end. Give it to
/// [`ferry_vfs::UserFs::with_hooks`]. The tap itself is the same hook without this wrapper's allocation
/// (an `Arc<SessionTap>` is an `Arc<dyn FsEvents>`), which is what a session held for a long time uses.
#[derive(Debug)]
pub struct TapEvents(pub Arc<SessionTap>);

impl SessionTap {
    fn report(&self, kind: EventKind, e: &ferry_vfs::FsEvent<'_>) {
        let result = match e.result {
            Ok(()) => Ok(()),
            Err(Some(k)) => Err(k.describe().to_owned()),
            Err(None) => Err("aborted".to_owned()),
        };
        let to = e.to.map(ferry_vfs::VPath::display);
        self.fs_op(
            kind,
            &e.path.display(),
            to.as_deref(),
            e.bytes,
            e.duration,
            result,
        );
    }
}

impl ferry_vfs::FsEvents for SessionTap {
    fn on_upload(&self, e: &ferry_vfs::FsEvent<'_>) {
        self.report(EventKind::Upload, e);
    }
    fn on_download(&self, e: &ferry_vfs::FsEvent<'_>) {
        self.report(EventKind::Download, e);
    }
    fn on_delete(&self, e: &ferry_vfs::FsEvent<'_>) {
        self.report(EventKind::Delete, e);
    }
    fn on_rename(&self, e: &ferry_vfs::FsEvent<'_>) {
        self.report(EventKind::Rename, e);
    }
    fn on_mkdir(&self, e: &ferry_vfs::FsEvent<'_>) {
        self.report(EventKind::Mkdir, e);
    }
    fn on_rmdir(&self, e: &ferry_vfs::FsEvent<'_>) {
        self.report(EventKind::Rmdir, e);
    }
}

impl ferry_vfs::FsEvents for TapEvents {
    fn on_upload(&self, e: &ferry_vfs::FsEvent<'_>) {
        self.0.on_upload(e);
    }
    fn on_download(&self, e: &ferry_vfs::FsEvent<'_>) {
        self.0.on_download(e);
    }
    fn on_delete(&self, e: &ferry_vfs::FsEvent<'_>) {
        self.0.on_delete(e);
    }
    fn on_rename(&self, e: &ferry_vfs::FsEvent<'_>) {
        self.0.on_rename(e);
    }
    fn on_mkdir(&self, e: &ferry_vfs::FsEvent<'_>) {
        self.0.on_mkdir(e);
    }
    fn on_rmdir(&self, e: &ferry_vfs::FsEvent<'_>) {
        self.0.on_rmdir(e);
    }
}
