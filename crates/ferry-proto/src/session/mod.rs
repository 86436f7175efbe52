//! The FTP session state machine: everything one control connection *means*, with no I/O.
//!
//! The glue feeds input with `handle_*` methods (lines, urgent signals, results of the authentication,
//! storage, passive-listener and transfer actions it was asked to run, and timeouts), always passing `now`,
//! and drains [`Output`]s with [`Session::poll_output`]. The glue never decides what a reply says; the session
//! never touches a socket, file or clock.
//!
//! Sequencing lives here: while an action is outstanding (a password check, a storage request, a passive
//! listener being opened, a transfer) further command lines are held in order and run when it completes,
//! except the commands RFC 959 allows during a transfer (ABOR, STAT, NOOP), which are answered at once.
//! QUIT and REIN during a transfer therefore wait for the transfer's end reply, as RFC 959 §4.1.1 requires.

mod commands;
mod data;
mod hash;
mod types;

pub use hash::{HashError, HashRequest, HashValue};
pub use types::*;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime};

use crate::addr::{format_epsv_reply, format_pasv_reply};
use crate::command::{Command, ParseError, TransferType};
use crate::limits;
use crate::path::VPath;
use crate::reply::{Reply, ReplyCode};
use crate::telnet::Urgent;

/// The login phase; pre-login, only a short allow-list of commands is legal.
#[derive(Debug, Clone)]
enum Phase {
    AwaitUser,
    AwaitPass { user: String },
    LoggedIn(Login),
}

/// The prepared data connection for the next transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataSetup {
    None,
    Passive,
    Active,
}

/// An action the session waits for before running further commands.
#[derive(Debug, Clone)]
enum Waiting {
    Nothing,
    Auth,
    Storage(Pending),
    Passive(PassiveFamily),
    Transfer(Running),
    /// `234` was sent; the glue is running the control connection's TLS handshake.
    Tls,
    /// `200` to CCC was sent; the glue is ending TLS on the control connection.
    Ccc,
    /// A checksum is being computed.
    Hash(hash::PendingHash),
}

/// What a storage request was for, so its result can be turned into the right reply.
#[derive(Debug, Clone)]
enum Pending {
    Cwd(VPath),
    Mkd(VPath),
    Rmd,
    Dele,
    Rnfr(VPath),
    Rnto,
    Size,
    Mdtm,
    Mfmt(VPath, SystemTime),
    Mlst(VPath),
    StatPath,
    SiteQuota,
}

#[derive(Debug, Clone)]
struct Running {
    what: String,
    aborting: bool,
    unique: bool,
    bytes: u64,
}

/// One control connection's FTP state.
#[derive(Debug)]
pub struct Session {
    config: Config,
    peer: SocketAddr,
    local: SocketAddr,
    phase: Phase,
    cwd: VPath,
    transfer_type: TransferType,
    restart: u64,
    rename_from: Option<VPath>,
    data: DataSetup,
    epsv_all: bool,
    /// The control connection is TLS.
    tls: bool,
    /// CCC ended TLS on the control connection; the session's TLS state still protects data.
    cleared: bool,
    /// PBSZ was sent under TLS (RFC 4217 §8: it must precede PROT).
    pbsz: bool,
    /// PROT P is in force: data connections are TLS.
    prot_private: bool,
    waiting: Waiting,
    held: VecDeque<Result<Command, ParseError>>,
    outputs: VecDeque<Output>,
    failed_logins: u32,
    connected_at: Instant,
    last_activity: Instant,
    closed: bool,
    /// FXP allowed for the logged-in user: PORT/EPRT to any address (security opt-out).
    danger_allow_fxp: bool,
    /// The `HASH` algorithm (`OPTS HASH`).
    hash_algorithm: crate::hash::Algorithm,
    /// The range of the next `HASH` (`RANG`).
    hash_range: Option<crate::hash::Range>,
}

impl Session {
    /// A new session for a connection from `peer` to our `local` address; queues the 220 greeting.
    pub fn new(config: Config, peer: SocketAddr, local: SocketAddr, now: Instant) -> Self {
        let implicit = config.tls.implicit && config.tls.policy != TlsPolicy::Off;
        let mut s = Self {
            config,
            peer,
            local,
            phase: Phase::AwaitUser,
            cwd: VPath::root(),
            transfer_type: TransferType::Image,
            restart: 0,
            rename_from: None,
            data: DataSetup::None,
            epsv_all: false,
            tls: implicit,
            cleared: false,
            pbsz: implicit,
            prot_private: implicit,
            waiting: Waiting::Nothing,
            held: VecDeque::new(),
            outputs: VecDeque::new(),
            failed_logins: 0,
            connected_at: now,
            last_activity: now,
            closed: false,
            danger_allow_fxp: false,
            hash_algorithm: crate::hash::Algorithm::Sha256,
            hash_range: None,
        };
        // Taken, not copied: it is said once, and a copy would stay with every session.
        let greeting = std::mem::take(&mut s.config.greeting);
        s.reply(ReplyCode::SERVICE_READY, greeting);
        s
    }

    /// The next action for the glue, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        let output = self.outputs.pop_front();
        if output.is_none() && self.outputs.capacity() > 0 {
            // Drained: an idle session keeps no output queue (thousands of idle sessions would each
            // hold room for several outputs otherwise).
            self.outputs = VecDeque::new();
        }
        output
    }

    /// When [`Session::handle_timeout`] should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        match (&self.phase, &self.waiting) {
            (
                _,
                Waiting::Transfer(_)
                | Waiting::Auth
                | Waiting::Storage(_)
                | Waiting::Passive(_)
                | Waiting::Tls
                | Waiting::Ccc
                | Waiting::Hash(_),
            ) => None,
            (Phase::LoggedIn(_), _) => Some(self.last_activity + self.config.idle_timeout),
            _ => Some(
                (self.connected_at + self.config.login_timeout)
                    .min(self.last_activity + self.config.idle_timeout),
            ),
        }
    }

    /// True once the session has asked to close; no further input is processed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The client's address, as given to [`Session::new`].
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The address the client connected to, as given to [`Session::new`].
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<&str> {
        match &self.phase {
            Phase::LoggedIn(login) => Some(&login.user),
            _ => None,
        }
    }

    /// True when the control connection is TLS (and not cleared by CCC).
    pub fn is_tls(&self) -> bool {
        self.tls && !self.cleared
    }

    /// True when data connections must be TLS: `PROT P` after TLS was established on the control
    /// connection (CCC does not change this, RFC 4217 §6).
    pub fn data_protected(&self) -> bool {
        self.tls && self.prot_private
    }

    /// Allows (or again refuses) FXP: `PORT`/`EPRT` to addresses other than the control peer's. The glue
    /// sets it for each successful login from its per-user policy, before [`Session::handle_auth`].
    /// Ports below 1024 stay refused either way.
    pub fn set_danger_allow_fxp(&mut self, allow: bool) {
        self.danger_allow_fxp = allow;
    }

    /// The current working directory.
    pub fn cwd(&self) -> &VPath {
        &self.cwd
    }

    /// Feeds one control line (Telnet-decoded, CRLF stripped).
    pub fn handle_line(&mut self, now: Instant, line: &[u8]) {
        if self.closed {
            return;
        }
        if let Waiting::Tls | Waiting::Ccc = self.waiting {
            // Cleartext sent after AUTH TLS, before the handshake: never executed (CVE-2011-1575). The glue
            // discards what it has buffered; this catches lines already decoded from the same read.
            return;
        }
        self.last_activity = now;
        let parsed = Command::parse(line);
        if let Waiting::Transfer(_) = self.waiting {
            // RFC 959: ABOR, STAT and NOOP are answered while a transfer runs; everything else waits.
            match &parsed {
                Ok(Command::Abor) => return self.abort_running(),
                Ok(Command::Stat(None)) => return self.stat_server(),
                Ok(Command::Noop) => return self.reply(ReplyCode::COMMAND_OK, "NOOP ok"),
                _ => {}
            }
        }
        if matches!(self.waiting, Waiting::Nothing) && self.held.is_empty() {
            self.run(parsed);
        } else if self.held.len() >= limits::MAX_PENDING_COMMANDS {
            self.close_with(
                ReplyCode::SERVICE_NOT_AVAILABLE,
                "Too many pipelined commands, closing",
            );
        } else {
            self.held.push_back(parsed);
        }
    }

    /// A control line longer than [`limits::MAX_LINE`] was discarded.
    pub fn handle_line_too_long(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.last_activity = now;
        self.reply(ReplyCode::SYNTAX_ERROR, "Command line too long");
    }

    /// Telnet IP or DM (the Synch that precedes an urgent ABOR): commands held but not yet started are
    /// discarded, as the Telnet Synch mechanism intends.
    pub fn handle_urgent(&mut self, now: Instant, _signal: Urgent) {
        self.last_activity = now;
        self.held.clear();
    }

    /// The answer to [`Output::Authenticate`]: `Some` when the credentials are good.
    pub fn handle_auth(&mut self, now: Instant, result: Option<Login>) {
        if !matches!(self.waiting, Waiting::Auth) {
            return;
        }
        self.waiting = Waiting::Nothing;
        self.last_activity = now;
        match result {
            Some(login) if login.tls.required && !self.is_tls() => {
                // The password was right, but this account may only log in over TLS.
                self.phase = Phase::AwaitUser;
                self.reply(
                    ReplyCode::NOT_LOGGED_IN,
                    "This account requires TLS: use AUTH TLS before logging in",
                );
            }
            Some(login) => {
                let text = format!("User {} logged in", login.user);
                self.phase = Phase::LoggedIn(login);
                self.cwd = VPath::root();
                self.reply(ReplyCode::LOGGED_IN, text);
            }
            None => {
                self.phase = Phase::AwaitUser;
                self.failed_logins += 1;
                if self.failed_logins >= self.config.max_login_attempts {
                    self.close_with(
                        ReplyCode::NOT_LOGGED_IN,
                        "Login incorrect; too many failures, closing",
                    );
                    return;
                }
                self.reply(ReplyCode::NOT_LOGGED_IN, "Login incorrect");
            }
        }
        self.run_held();
    }

    /// The answer to [`Output::StartTls`]: whether the control connection's TLS handshake succeeded. On
    /// failure the session closes (the connection is unusable).
    pub fn handle_tls(&mut self, now: Instant, ok: bool) {
        if !matches!(self.waiting, Waiting::Tls) {
            return;
        }
        self.waiting = Waiting::Nothing;
        self.last_activity = now;
        if ok {
            self.tls = true;
        } else {
            self.closed = true;
            self.held.clear();
            self.push(Output::Close);
        }
    }

    /// The answer to [`Output::StopTls`]: whether TLS ended cleanly on the control connection (both
    /// close_notify alerts exchanged). On failure the session closes.
    pub fn handle_tls_stopped(&mut self, now: Instant, ok: bool) {
        if !matches!(self.waiting, Waiting::Ccc) {
            return;
        }
        self.waiting = Waiting::Nothing;
        self.last_activity = now;
        if ok {
            self.cleared = true;
        } else {
            self.closed = true;
            self.held.clear();
            self.push(Output::Close);
        }
    }

    /// The answer to [`Output::Storage`].
    pub fn handle_storage(&mut self, now: Instant, result: Result<StorageOk, FsError>) {
        let Waiting::Storage(pending) = std::mem::replace(&mut self.waiting, Waiting::Nothing) else {
            return;
        };
        self.last_activity = now;
        self.storage_reply(pending, result);
        self.run_held();
    }

    /// The answer to [`Output::OpenPassive`]: the address to advertise, or `Err` if no listener could be
    /// opened (port range exhausted).
    pub fn handle_passive(&mut self, now: Instant, result: Result<SocketAddr, ()>) {
        let Waiting::Passive(family) = std::mem::replace(&mut self.waiting, Waiting::Nothing) else {
            return;
        };
        self.last_activity = now;
        match (family, result) {
            (PassiveFamily::V4, Ok(SocketAddr::V4(addr))) => {
                self.data = DataSetup::Passive;
                self.reply(ReplyCode::PASSIVE_MODE, format_pasv_reply(addr));
            }
            (PassiveFamily::Any, Ok(addr)) => {
                self.data = DataSetup::Passive;
                self.reply(ReplyCode::EXTENDED_PASSIVE_MODE, format_epsv_reply(addr.port()));
            }
            (PassiveFamily::V4, Ok(SocketAddr::V6(_))) => {
                self.push(Output::ResetData);
                self.reply(ReplyCode::CANT_OPEN_DATA, "PASV needs an IPv4 address; use EPSV");
            }
            (_, Err(())) => self.reply(ReplyCode::CANT_OPEN_DATA, "Cannot open passive connection"),
        }
        self.run_held();
    }

    /// Progress of the running transfer, in bytes; used by STAT. Cheap; call as often as convenient.
    pub fn handle_transfer_progress(&mut self, bytes: u64) {
        if let Waiting::Transfer(running) = &mut self.waiting {
            running.bytes = bytes;
        }
    }

    /// How the running transfer progressed or ended.
    pub fn handle_transfer(&mut self, now: Instant, event: TransferEvent) {
        let mode = self.mode_name();
        let Waiting::Transfer(running) = &mut self.waiting else {
            return;
        };
        self.last_activity = now;
        let aborting = running.aborting;
        let unique = running.unique;
        if let TransferEvent::Started { name, size } = event {
            let mut text = format!("Opening {mode} mode data connection for {}", running.what);
            if let Some(size) = size {
                text.push_str(&format!(" ({size} bytes)"));
            }
            let text = match name {
                // RFC 1123 §4.1.2.9: STOU's 150 reply names the file.
                Some(name) if unique => {
                    let mut t = b"FILE: ".to_vec();
                    t.extend_from_slice(&name);
                    t
                }
                _ => text.into_bytes(),
            };
            self.reply(ReplyCode::FILE_STATUS_OK, text);
            return;
        }
        self.waiting = Waiting::Nothing;
        match event {
            TransferEvent::Started { .. } => {}
            TransferEvent::Finished { bytes } => {
                self.reply(
                    ReplyCode::CLOSING_DATA,
                    format!("Transfer complete ({bytes} bytes)"),
                );
                if aborting {
                    self.reply(ReplyCode::CLOSING_DATA, "ABOR: transfer had already completed");
                }
            }
            TransferEvent::Aborted => {
                self.reply(ReplyCode::TRANSFER_ABORTED, "Transfer aborted");
                self.reply(ReplyCode::CLOSING_DATA, "ABOR successful");
            }
            TransferEvent::NoConnection => {
                self.reply(ReplyCode::CANT_OPEN_DATA, "Cannot open data connection");
                self.abor_after_failure(aborting);
            }
            TransferEvent::SourcePortDenied { port } => {
                let text = format!(
                    "Cannot open data connection: the server may not use source port {port}; use passive \
                     mode (PASV/EPSV)"
                );
                self.reply(ReplyCode::CANT_OPEN_DATA, text);
                self.abor_after_failure(aborting);
            }
            TransferEvent::ConnectionLost => {
                self.reply(
                    ReplyCode::TRANSFER_ABORTED,
                    "Data connection closed; transfer aborted",
                );
                self.abor_after_failure(aborting);
            }
            TransferEvent::StorageFailed(err) => {
                let (code, text) = fs_reply(err);
                self.reply(code, text);
                self.abor_after_failure(aborting);
            }
            TransferEvent::DataTlsRefused(err) => {
                let text = match err {
                    DataTlsError::NotResumed => {
                        "SSL connection failed: session reuse required (the data connection must resume \
                         this control connection's TLS session)"
                    }
                    DataTlsError::Handshake => {
                        "SSL connection failed: TLS handshake on the data connection failed"
                    }
                };
                self.reply(ReplyCode::PROTOCOL_NOT_SUPPORTED, text);
                self.abor_after_failure(aborting);
            }
        }
        self.run_held();
    }

    /// Call when `now` has reached [`Session::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.phase {
            Phase::LoggedIn(_) => self.close_with(ReplyCode::SERVICE_NOT_AVAILABLE, "Idle timeout, closing"),
            _ => self.close_with(ReplyCode::SERVICE_NOT_AVAILABLE, "Login timeout, closing"),
        }
    }

    // ----- internals -------------------------------------------------------------------------------------

    pub(super) fn push(&mut self, out: Output) {
        self.outputs.push_back(out);
    }

    pub(super) fn reply(&mut self, code: ReplyCode, text: impl Into<Vec<u8>>) {
        self.push(Output::Reply(Reply::new(code, text)));
    }

    pub(super) fn close_with(&mut self, code: ReplyCode, text: &str) {
        if matches!(self.waiting, Waiting::Transfer(_)) {
            self.push(Output::AbortTransfer);
        }
        self.reply(code, text);
        self.push(Output::Close);
        self.closed = true;
        self.held.clear();
        self.waiting = Waiting::Nothing;
    }

    pub(super) fn abor_after_failure(&mut self, aborting: bool) {
        if aborting {
            self.reply(ReplyCode::CLOSING_DATA, "ABOR: transfer had already ended");
        }
    }

    pub(super) fn run_held(&mut self) {
        while matches!(self.waiting, Waiting::Nothing) && !self.closed {
            let Some(next) = self.held.pop_front() else { break };
            self.run(next);
        }
    }

    pub(super) fn mode_name(&self) -> &'static str {
        match self.transfer_type {
            TransferType::Ascii => "ASCII",
            TransferType::Image => "BINARY",
        }
    }

    pub(super) fn login(&self) -> Option<&Login> {
        match &self.phase {
            Phase::LoggedIn(login) => Some(login),
            _ => None,
        }
    }
}

/// Maps a storage error to its reply: the code follows the kind, the text is the storage's detail if it
/// gave one.
pub fn fs_reply(e: FsError) -> (ReplyCode, String) {
    let (code, text) = match e.kind {
        ErrorKind::NotFound => (ReplyCode::FILE_UNAVAILABLE, "No such file or directory"),
        ErrorKind::PermissionDenied => (ReplyCode::FILE_UNAVAILABLE, "Permission denied"),
        ErrorKind::AlreadyExists => (ReplyCode::FILE_UNAVAILABLE, "File exists"),
        ErrorKind::NotADirectory => (ReplyCode::FILE_UNAVAILABLE, "Not a directory"),
        ErrorKind::IsADirectory => (ReplyCode::FILE_UNAVAILABLE, "Is a directory"),
        ErrorKind::DirectoryNotEmpty => (ReplyCode::FILE_UNAVAILABLE, "Directory not empty"),
        ErrorKind::InvalidName => (ReplyCode::NAME_NOT_ALLOWED, "File name not allowed"),
        ErrorKind::QuotaExceeded => (ReplyCode::EXCEEDED_STORAGE, "Storage quota exceeded"),
        ErrorKind::OffsetOutOfRange => (
            ReplyCode::INVALID_REST,
            "Offset out of range: beyond the largest file the storage can hold",
        ),
        ErrorKind::MoveIntoItself => (ReplyCode::NAME_NOT_ALLOWED, "Cannot move a directory into itself"),
        ErrorKind::Unsupported => (
            ReplyCode::FILE_UNAVAILABLE,
            "Operation not supported by this storage",
        ),
        ErrorKind::Transient => (
            ReplyCode::LOCAL_ERROR,
            "Storage temporarily unavailable; try again later",
        ),
        ErrorKind::TimedOut => (
            ReplyCode::LOCAL_ERROR,
            "Storage did not answer in time; try again later",
        ),
        ErrorKind::Io => (ReplyCode::LOCAL_ERROR, "Local error in processing"),
    };
    match e.detail {
        Some(detail) => (code, capitalised(&detail)),
        None => (code, text.to_owned()),
    }
}

/// `detail` with its first letter in upper case, as reply texts are written.
fn capitalised(detail: &str) -> String {
    let mut chars = detail.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    #[test]
    fn a_drained_session_keeps_no_output_queue() {
        let peer: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        let local: SocketAddr = "192.0.2.2:21".parse().unwrap();
        let now = Instant::now();
        let mut s = Session::new(Config::default(), peer, local, now);
        s.handle_line(now, b"NOOP");
        s.handle_line(now, b"SYST");
        let mut replies = 0;
        while let Some(output) = s.poll_output() {
            assert!(matches!(output, Output::Reply(_)));
            replies += 1;
        }
        assert_eq!(replies, 3, "greeting, NOOP, SYST");
        assert_eq!(s.outputs.capacity(), 0);
    }
}
