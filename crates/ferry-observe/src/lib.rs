//! What the FTP and SFTP servers tell their observers, and the observers ferry ships.
//!
//! The servers hold an optional `Arc<dyn Observer>` and report through a [`SessionTap`], one per
//! connection: sessions opening and closing, login outcomes, file operations and finished
//! transfers, each as an [`Event`] with the same fields for every protocol (plus the older
//! counting calls the metrics use). Every [`Observer`] method has an empty default, so an observer
//! implements only what it needs, and a server without one pays nothing. Calls are made on the
//! connection's task and must not block: the sinks here hand their work to a background thread or
//! task (a bounded queue; when it is full, work is dropped and counted, never waited for).
//!
//! The sinks: [`EventLog`] (every event as one `tracing` line at info, target `ferry::event`),
//! [`Xferlog`] (transfers in the wu-ftpd/ProFTPD xferlog format, through a [`LogFile`] that
//! reopens on request for logrotate) and [`Hooks`] (commands and HTTP POSTs on events, with
//! retries, and the optional pre-upload check). [`Fanout`] sends every call to several observers.
//!
//! What it deliberately does not do: install a tracing subscriber, read settings, or serve the
//! metrics (the `ferry` binary does those).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod event;
mod eventlog;
mod file;
pub mod hooks;
mod tap;
mod time;
mod xferlog;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use event::{Event, EventKind, Outcome};
pub use eventlog::EventLog;
pub use file::LogFile;
pub use hooks::{HookConfig, Hooks};
pub use tap::{SessionGuard, SessionTap, TapEvents};
pub use xferlog::Xferlog;

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

impl serde::Serialize for Protocol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
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

/// How a login attempt ended, for [`Observer::login_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginOutcome {
    /// The user is logged in.
    Ok,
    /// Refused: wrong credentials, an unknown or disabled user, or the check could not be made.
    Failed,
    /// Refused without a check: the client's address was banned by the login defender.
    Banned,
}

impl LoginOutcome {
    /// The label value: `ok`, `failed` or `banned`.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Ok => "ok",
            LoginOutcome::Failed => "failed",
            LoginOutcome::Banned => "banned",
        }
    }
}

/// The answer of a pre-upload check: `Err(reason)` refuses the upload.
pub type UploadCheck = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Receives the servers' events. All methods default to doing nothing.
pub trait Observer: Send + Sync + fmt::Debug {
    /// A connection was accepted and is being served (after the connection limits let it in).
    fn session_opened(&self, _protocol: Protocol) {}
    /// A session opened with [`Observer::session_opened`] ended (same protocol label).
    fn session_closed(&self, _protocol: Protocol) {}
    /// A login attempt ended: `ok` when the user is now logged in.
    fn login(&self, _protocol: Protocol, _ok: bool) {}
    /// A login attempt ended (reported together with [`Observer::login`], with more detail): its
    /// `method` (`password`, `publickey`, `keyboard-interactive` or `anonymous`), how it ended, and
    /// how long the credentials took to verify, from their arrival to the verdict (the wait for a
    /// login turn and the check itself: Argon2, the user database); `None` when they were not
    /// checked (a banned address). The failed-login delay is not part of it.
    fn login_attempt(
        &self,
        _protocol: Protocol,
        _method: &'static str,
        _outcome: LoginOutcome,
        _verification: Option<Duration>,
    ) {
    }
    /// A connection was refused before it could send any credentials, because its address is
    /// banned.
    fn connection_banned(&self, _protocol: Protocol) {}
    /// A file transfer ended; `bytes` moved over the data connection (or SFTP channel), `ok` when it
    /// completed.
    fn transfer(&self, _protocol: Protocol, _direction: Direction, _bytes: u64, _ok: bool) {}
    /// A file transfer ended after `duration` (reported together with [`Observer::transfer`]).
    fn transfer_duration(&self, _protocol: Protocol, _direction: Direction, _duration: Duration, _ok: bool) {}
    /// An FTP data connection (for a transfer or a listing) failed, and the client got `reply`: 425 (no
    /// connection could be made), 426 (it broke) or 522 (its TLS was refused).
    fn data_connection_failed(&self, _protocol: Protocol, _reply: u16) {}
    /// Something happened (sessions, logins, file operations, transfers, bans), with every detail.
    fn event(&self, _event: &Event) {}
    /// A hook delivery ended: `action` is `command` or `http`; `outcome` is `ok`, `retry` (an
    /// attempt failed and will be retried), `failed` (every attempt failed) or `dropped` (the queue
    /// was full).
    fn hook_delivered(&self, _action: &'static str, _outcome: &'static str) {}
    /// An upload is about to start (`event` is the `upload` event it will become, without bytes):
    /// `Some(check)` to decide whether it may; `None` lets it start.
    fn check_upload(&self, _event: &Event) -> Option<UploadCheck> {
        None
    }
}

/// Sends every call to each of several observers, in order (the first check that decides is used).
#[derive(Debug, Default)]
pub struct Fanout(pub Vec<Arc<dyn Observer>>);

impl Observer for Fanout {
    fn session_opened(&self, p: Protocol) {
        self.0.iter().for_each(|o| o.session_opened(p));
    }
    fn session_closed(&self, p: Protocol) {
        self.0.iter().for_each(|o| o.session_closed(p));
    }
    fn login(&self, p: Protocol, ok: bool) {
        self.0.iter().for_each(|o| o.login(p, ok));
    }
    fn login_attempt(
        &self,
        p: Protocol,
        method: &'static str,
        outcome: LoginOutcome,
        verification: Option<Duration>,
    ) {
        self.0
            .iter()
            .for_each(|o| o.login_attempt(p, method, outcome, verification));
    }
    fn connection_banned(&self, p: Protocol) {
        self.0.iter().for_each(|o| o.connection_banned(p));
    }
    fn transfer(&self, p: Protocol, d: Direction, bytes: u64, ok: bool) {
        self.0.iter().for_each(|o| o.transfer(p, d, bytes, ok));
    }
    fn transfer_duration(&self, p: Protocol, d: Direction, duration: Duration, ok: bool) {
        self.0
            .iter()
            .for_each(|o| o.transfer_duration(p, d, duration, ok));
    }
    fn data_connection_failed(&self, p: Protocol, reply: u16) {
        self.0.iter().for_each(|o| o.data_connection_failed(p, reply));
    }
    fn event(&self, e: &Event) {
        self.0.iter().for_each(|o| o.event(e));
    }
    fn hook_delivered(&self, action: &'static str, outcome: &'static str) {
        self.0.iter().for_each(|o| o.hook_delivered(action, outcome));
    }
    fn check_upload(&self, e: &Event) -> Option<UploadCheck> {
        self.0.iter().find_map(|o| o.check_upload(e))
    }
}
