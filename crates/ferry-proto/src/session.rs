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

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use crate::addr::{format_epsv_reply, format_pasv_reply, EpsvArg};
use crate::command::{Command, Opts, ParseError, Secret, TransferType, IMPLEMENTED_VERBS};
use crate::limits;
use crate::listing::{format_mdtm, parse_list_args, Entry, EntryKind, FactPerms, MLST_FACTS_FEAT};
use crate::path::{PathError, VPath};
use crate::reply::{Reply, ReplyCode};
use crate::telnet::Urgent;

/// What a logged-in user may do. Mirrors `ferry-auth`'s permissions without depending on it.
pub type Permissions = FactPerms;

/// Session settings that do not change during a connection.
#[derive(Debug, Clone)]
pub struct Config {
    /// Text of the 220 greeting.
    pub greeting: String,
    /// Time allowed from connect to a successful login before `421`.
    pub login_timeout: Duration,
    /// Time allowed without a command (and no transfer running) before `421`.
    pub idle_timeout: Duration,
    /// Failed PASS attempts on one connection before `421` and close.
    pub max_login_attempts: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            greeting: "ferry FTP server ready".to_owned(),
            login_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(300),
            max_login_attempts: limits::MAX_LOGIN_ATTEMPTS,
        }
    }
}

/// The outcome of an [`Output::Authenticate`] request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The user name as it should appear in logs and STAT.
    pub user: String,
    /// What the user may do.
    pub permissions: Permissions,
}

/// Storage errors as the session needs to distinguish them (the glue maps its storage crate's kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsError {
    /// The path does not exist.
    NotFound,
    /// The storage refused access, or the path would leave the jail.
    PermissionDenied,
    /// The target exists.
    AlreadyExists,
    /// A directory was needed.
    NotADirectory,
    /// A file was needed.
    IsADirectory,
    /// RMD of a directory with entries.
    DirectoryNotEmpty,
    /// The name is not allowed by the storage.
    InvalidName,
    /// Quota or disk space exhausted.
    QuotaExceeded,
    /// The back-end cannot do this.
    Unsupported,
    /// Local I/O failure.
    Io,
}

/// A storage request the session asks the glue to run; answer with [`Session::handle_storage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageRequest {
    /// Metadata of a path (answer [`StorageOk::Entry`]).
    Stat(VPath),
    /// Up to [`limits::MAX_STAT_ENTRIES`] entries of a directory, or the entry of a file, for STAT over the
    /// control channel (answer [`StorageOk::Entries`]).
    ListBrief(VPath),
    /// Create a directory (answer [`StorageOk::Done`]).
    CreateDir(VPath),
    /// Remove an empty directory.
    RemoveDir(VPath),
    /// Remove a file.
    RemoveFile(VPath),
    /// Rename.
    Rename {
        /// Existing path.
        from: VPath,
        /// New path.
        to: VPath,
    },
    /// Set the modification time.
    SetModified(VPath, SystemTime),
}

/// A successful storage result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageOk {
    /// The action was done.
    Done,
    /// Metadata; `name` is the base name (empty for the root).
    Entry(Entry),
    /// Entries for STAT over the control channel.
    Entries {
        /// At most [`limits::MAX_STAT_ENTRIES`] entries.
        entries: Vec<Entry>,
        /// True when there were more than the limit.
        truncated: bool,
        /// Wall-clock time of the listing, for the six-month rule of `ls -l` dates.
        listed_at: SystemTime,
    },
}

/// Which data-connection family a passive listener must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassiveFamily {
    /// PASV: the advertised address must be IPv4.
    V4,
    /// EPSV: the same family as the control connection; only the port is advertised.
    Any,
}

/// What to store for an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// STOR: a new file, visible under its name only when complete.
    Create,
    /// APPE: append to the file (created if missing).
    Append,
    /// REST n + STOR: write from offset n of the existing file.
    At(u64),
    /// STOU: a new file under a unique name derived from the path.
    Unique,
}

/// Which listing format a LIST-like transfer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// LIST: `/bin/ls -l` lines.
    Long,
    /// NLST: names only.
    Names,
    /// MLSD: RFC 3659 facts.
    Machine,
}

/// A data transfer the glue must run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transfer {
    /// Send a file from `offset`.
    Retr {
        /// File to send.
        path: VPath,
        /// Start offset (REST).
        offset: u64,
        /// TYPE A: convert LF to CRLF on the way out.
        ascii: bool,
    },
    /// Receive a file.
    Stor {
        /// Target path (for STOU, the name hint).
        path: VPath,
        /// How to store it.
        mode: StoreMode,
        /// TYPE A: convert CRLF to LF on the way in.
        ascii: bool,
    },
    /// Send a listing of a directory (or of one file).
    List {
        /// What to list.
        path: VPath,
        /// Line format.
        format: ListFormat,
        /// Permissions for MLSD `perm` facts.
        permissions: Permissions,
        /// `-a`: include dot files.
        all: bool,
    },
}

/// How a transfer ended or progressed, reported by the glue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEvent {
    /// The storage side is open and the data connection is about to be used: send 150. `name` is the
    /// unique name chosen for STOU; `size` the file size for RETR (shown in the reply).
    Started {
        /// STOU's chosen name.
        name: Option<Vec<u8>>,
        /// Bytes that will be sent, when known.
        size: Option<u64>,
    },
    /// All data moved and (for uploads) the file is in place: 226.
    Finished {
        /// Bytes moved over the data connection.
        bytes: u64,
    },
    /// The storage side could not be opened, or failed during the transfer.
    StorageFailed(FsError),
    /// No data connection could be made (accept/connect timeout or refusal): 425.
    NoConnection,
    /// The data connection broke or the peer did not finish cleanly: 426.
    ConnectionLost,
    /// The transfer was cancelled after [`Output::AbortTransfer`].
    Aborted,
}

/// An action for the glue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this reply on the control connection.
    Reply(Reply),
    /// Verify these credentials; answer with [`Session::handle_auth`].
    Authenticate {
        /// User name given with USER.
        user: String,
        /// Password given with PASS.
        password: Secret,
    },
    /// Run a storage request; answer with [`Session::handle_storage`].
    Storage(StorageRequest),
    /// Drop any passive listener or active target and open a new passive listener; answer with
    /// [`Session::handle_passive`] giving the address to advertise.
    OpenPassive(PassiveFamily),
    /// Drop any passive listener; the next transfer connects to this address (already checked to be the
    /// control peer's address with a port ≥ 1024).
    SetActive(SocketAddr),
    /// Drop any passive listener or active target.
    ResetData,
    /// Run this transfer over the prepared data connection; report with [`Session::handle_transfer`].
    Transfer(Transfer),
    /// Cancel the running transfer; then report [`TransferEvent::Aborted`] (or how it ended if it already had).
    AbortTransfer,
    /// Flush the replies sent so far and close the control connection.
    Close,
}

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
}

#[derive(Debug, Clone)]
struct Running {
    what: String,
    started: bool,
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
    utf8: bool,
    waiting: Waiting,
    held: VecDeque<Result<Command, ParseError>>,
    outputs: VecDeque<Output>,
    failed_logins: u32,
    connected_at: Instant,
    last_activity: Instant,
    closed: bool,
}

impl Session {
    /// A new session for a connection from `peer` to our `local` address; queues the 220 greeting.
    pub fn new(config: Config, peer: SocketAddr, local: SocketAddr, now: Instant) -> Self {
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
            utf8: true,
            waiting: Waiting::Nothing,
            held: VecDeque::new(),
            outputs: VecDeque::new(),
            failed_logins: 0,
            connected_at: now,
            last_activity: now,
            closed: false,
        };
        let greeting = s.config.greeting.clone();
        s.reply(ReplyCode::SERVICE_READY, greeting);
        s
    }

    /// The next action for the glue, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Session::handle_timeout`] should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        match (&self.phase, &self.waiting) {
            (_, Waiting::Transfer(_) | Waiting::Auth | Waiting::Storage(_) | Waiting::Passive(_)) => None,
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

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<&str> {
        match &self.phase {
            Phase::LoggedIn(login) => Some(&login.user),
            _ => None,
        }
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
            running.started = true;
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

    fn push(&mut self, out: Output) {
        self.outputs.push_back(out);
    }

    fn reply(&mut self, code: ReplyCode, text: impl Into<Vec<u8>>) {
        self.push(Output::Reply(Reply::new(code, text)));
    }

    fn close_with(&mut self, code: ReplyCode, text: &str) {
        if matches!(self.waiting, Waiting::Transfer(_)) {
            self.push(Output::AbortTransfer);
        }
        self.reply(code, text);
        self.push(Output::Close);
        self.closed = true;
        self.held.clear();
        self.waiting = Waiting::Nothing;
    }

    fn abor_after_failure(&mut self, aborting: bool) {
        if aborting {
            self.reply(ReplyCode::CLOSING_DATA, "ABOR: transfer had already ended");
        }
    }

    fn run_held(&mut self) {
        while matches!(self.waiting, Waiting::Nothing) && !self.closed {
            let Some(next) = self.held.pop_front() else { break };
            self.run(next);
        }
    }

    fn mode_name(&self) -> &'static str {
        match self.transfer_type {
            TransferType::Ascii => "ASCII",
            TransferType::Image => "BINARY",
        }
    }

    fn login(&self) -> Option<&Login> {
        match &self.phase {
            Phase::LoggedIn(login) => Some(login),
            _ => None,
        }
    }

    fn run(&mut self, parsed: Result<Command, ParseError>) {
        let cmd = match parsed {
            Ok(cmd) => cmd,
            Err(e) => {
                self.rename_from = None;
                return self.reply(e.code, e.message);
            }
        };
        // RNTO must immediately follow RNFR: any other command forgets the pending rename.
        let rename_from = self.rename_from.take();
        // REST survives data-connection set-up (clients send it before or after PASV) and is consumed by
        // the next transfer command.
        let restart = match cmd {
            Command::Retr(_)
            | Command::Stor(_)
            | Command::Appe(_)
            | Command::Stou(_)
            | Command::List(_)
            | Command::Nlst(_)
            | Command::Mlsd(_) => std::mem::take(&mut self.restart),
            _ => 0,
        };
        // Session-level commands legal in every phase.
        match &cmd {
            Command::Quit => return self.close_with(ReplyCode::CLOSING_CONTROL, "Goodbye"),
            Command::Noop => return self.reply(ReplyCode::COMMAND_OK, "NOOP ok"),
            Command::Syst => return self.reply(ReplyCode::SYSTEM_TYPE, "UNIX Type: L8"),
            Command::Feat => return self.feat(),
            Command::Help(topic) => return self.help(topic.as_deref()),
            Command::Opts(opts) => return self.opts(opts),
            Command::Abor => return self.reply(ReplyCode::DATA_OPEN_NO_TRANSFER, "No transfer to abort"),
            Command::Security(verb) => {
                return self.reply(
                    ReplyCode::NOT_IMPLEMENTED,
                    format!("{verb} not supported: no TLS configured"),
                )
            }
            Command::Unsupported(verb) => {
                return self.reply(ReplyCode::NOT_IMPLEMENTED, format!("{verb} not implemented"))
            }
            Command::Unknown(verb) => {
                let verb = if verb.is_empty() { "(empty)" } else { verb.as_str() };
                return self.reply(ReplyCode::SYNTAX_ERROR, format!("Unknown command {verb}"));
            }
            Command::Smnt(_) => return self.reply(ReplyCode::NOT_IMPLEMENTED, "SMNT not implemented"),
            Command::User(name) => return self.user_cmd(name.clone()),
            Command::Pass(pw) => return self.pass_cmd(pw.clone()),
            Command::Rein => return self.rein(),
            _ => {}
        }
        if self.login().is_none() {
            let text = match self.phase {
                Phase::AwaitPass { .. } => "Send PASS first",
                _ => "Please log in with USER and PASS",
            };
            return self.reply(ReplyCode::NOT_LOGGED_IN, text);
        }
        match cmd {
            Command::Acct(_) => self.reply(ReplyCode::SUPERFLUOUS, "ACCT not needed"),
            Command::Allo => self.reply(ReplyCode::SUPERFLUOUS, "ALLO not needed"),
            Command::Pwd => {
                let cwd = self.cwd.clone();
                self.push(Output::Reply(Reply::path_created(
                    cwd.as_bytes(),
                    "is the current directory",
                )));
            }
            Command::Cwd(arg) => self.with_path(&arg, |s, path| {
                s.storage(Pending::Cwd(path.clone()), StorageRequest::Stat(path))
            }),
            Command::Cdup => {
                let path = self.cwd.parent();
                self.storage(Pending::Cwd(path.clone()), StorageRequest::Stat(path));
            }
            Command::Type(t) => {
                self.transfer_type = t;
                let text = match t {
                    TransferType::Ascii => "Type set to A",
                    TransferType::Image => "Type set to I",
                };
                self.reply(ReplyCode::COMMAND_OK, text);
            }
            Command::Stru => self.reply(ReplyCode::COMMAND_OK, "Structure set to F"),
            Command::Mode => self.reply(ReplyCode::COMMAND_OK, "Mode set to S"),
            Command::Rest(n) => {
                self.restart = n;
                self.reply(
                    ReplyCode::FILE_ACTION_PENDING,
                    format!("Restarting at {n}; send STOR or RETR"),
                );
            }
            Command::Port(addr) => self.active(SocketAddr::V4(addr)),
            Command::Eprt(addr) => self.active(addr),
            Command::Pasv => self.passive(PassiveFamily::V4),
            Command::Epsv(arg) => self.epsv(arg),
            Command::Retr(arg) => self.retr(&arg, restart),
            Command::Stor(arg) => {
                let mode = if restart > 0 {
                    StoreMode::At(restart)
                } else {
                    StoreMode::Create
                };
                self.stor(&arg, mode)
            }
            Command::Appe(arg) => self.stor(&arg, StoreMode::Append),
            Command::Stou(arg) => {
                let arg = arg.unwrap_or_else(|| b"ferry-upload".to_vec());
                self.stor(&arg, StoreMode::Unique)
            }
            Command::List(arg) => self.list(arg.as_deref(), ListFormat::Long),
            Command::Nlst(arg) => self.list(arg.as_deref(), ListFormat::Names),
            Command::Mlsd(arg) => self.list(arg.as_deref(), ListFormat::Machine),
            Command::Mlst(arg) => {
                if self.denied(|p| p.list) {
                    return;
                }
                let arg = arg.unwrap_or_default();
                self.with_path(&arg, |s, path| {
                    s.storage(Pending::Mlst(path.clone()), StorageRequest::Stat(path))
                })
            }
            Command::Stat(None) => self.stat_server(),
            Command::Stat(Some(arg)) => {
                if self.denied(|p| p.list) {
                    return;
                }
                let args = parse_list_args(Some(&arg));
                let arg = args.path.unwrap_or_default();
                self.with_path(&arg, |s, path| {
                    s.storage(Pending::StatPath, StorageRequest::ListBrief(path))
                })
            }
            Command::Size(arg) => self.with_path(&arg, |s, path| {
                s.storage(Pending::Size, StorageRequest::Stat(path))
            }),
            Command::Mdtm(arg) => self.with_path(&arg, |s, path| {
                s.storage(Pending::Mdtm, StorageRequest::Stat(path))
            }),
            Command::Mfmt(time, arg) => {
                if self.denied(|p| p.write) {
                    return;
                }
                self.with_path(&arg, |s, path| {
                    s.storage(
                        Pending::Mfmt(path.clone(), time),
                        StorageRequest::SetModified(path, time),
                    )
                })
            }
            Command::Mkd(arg) => {
                if self.denied(|p| p.mkdir) {
                    return;
                }
                self.with_path(&arg, |s, path| {
                    s.storage(Pending::Mkd(path.clone()), StorageRequest::CreateDir(path))
                })
            }
            Command::Rmd(arg) => {
                if self.denied(|p| p.delete) {
                    return;
                }
                self.with_path(&arg, |s, path| {
                    if path.is_root() {
                        return s.reply(ReplyCode::FILE_UNAVAILABLE, "Cannot remove the root directory");
                    }
                    s.storage(Pending::Rmd, StorageRequest::RemoveDir(path))
                })
            }
            Command::Dele(arg) => {
                if self.denied(|p| p.delete) {
                    return;
                }
                self.with_path(&arg, |s, path| {
                    s.storage(Pending::Dele, StorageRequest::RemoveFile(path))
                })
            }
            Command::Rnfr(arg) => {
                if self.denied(|p| p.rename) {
                    return;
                }
                self.with_path(&arg, |s, path| {
                    if path.is_root() {
                        return s.reply(ReplyCode::FILE_UNAVAILABLE, "Cannot rename the root directory");
                    }
                    s.storage(Pending::Rnfr(path.clone()), StorageRequest::Stat(path))
                })
            }
            Command::Rnto(arg) => match rename_from {
                None => self.reply(ReplyCode::BAD_SEQUENCE, "RNFR required first"),
                Some(from) => self.with_path(&arg, |s, to| {
                    if to.is_root() {
                        return s.reply(
                            ReplyCode::NAME_NOT_ALLOWED,
                            "Cannot rename onto the root directory",
                        );
                    }
                    s.storage(Pending::Rnto, StorageRequest::Rename { from, to })
                }),
            },
            Command::Site(arg) => self.site(&arg),
            // Handled above for every phase.
            Command::Quit
            | Command::Noop
            | Command::Syst
            | Command::Feat
            | Command::Help(_)
            | Command::Opts(_)
            | Command::Abor
            | Command::Security(_)
            | Command::Unsupported(_)
            | Command::Unknown(_)
            | Command::Smnt(_)
            | Command::User(_)
            | Command::Pass(_)
            | Command::Rein => {}
        }
    }

    fn user_cmd(&mut self, name: String) {
        if self.login().is_some() {
            return self.reply(
                ReplyCode::BAD_SEQUENCE,
                "Already logged in; use REIN to change user",
            );
        }
        if name.len() > limits::MAX_USER || name.chars().any(char::is_control) {
            return self.reply(ReplyCode::ARGUMENT_ERROR, "Invalid user name");
        }
        // Always 331, whether or not the user exists.
        self.phase = Phase::AwaitPass { user: name };
        self.reply(ReplyCode::NEED_PASSWORD, "Password required");
    }

    fn pass_cmd(&mut self, password: Secret) {
        match std::mem::replace(&mut self.phase, Phase::AwaitUser) {
            Phase::AwaitPass { user } => {
                self.waiting = Waiting::Auth;
                self.push(Output::Authenticate { user, password });
            }
            Phase::LoggedIn(login) => {
                self.phase = Phase::LoggedIn(login);
                self.reply(ReplyCode::BAD_SEQUENCE, "Already logged in");
            }
            Phase::AwaitUser => self.reply(ReplyCode::BAD_SEQUENCE, "Send USER first"),
        }
    }

    fn rein(&mut self) {
        self.phase = Phase::AwaitUser;
        self.cwd = VPath::root();
        self.transfer_type = TransferType::Image;
        self.restart = 0;
        self.rename_from = None;
        self.data = DataSetup::None;
        self.epsv_all = false;
        self.push(Output::ResetData);
        self.reply(ReplyCode::SERVICE_READY, "Session reinitialised; log in again");
    }

    fn feat(&mut self) {
        let lines: Vec<Vec<u8>> = [
            "Extensions supported:",
            "EPRT",
            "EPSV",
            "MDTM",
            "MFMT",
            MLST_FACTS_FEAT,
            "PASV",
            "REST STREAM",
            "SIZE",
            "TVFS",
            "UTF8",
            "End",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        self.push(Output::Reply(Reply::multi(ReplyCode::SYSTEM_STATUS, lines)));
    }

    fn help(&mut self, topic: Option<&str>) {
        if let Some(topic) = topic {
            let topic = topic.trim().to_ascii_uppercase();
            return if IMPLEMENTED_VERBS.contains(&topic.as_str()) {
                self.reply(ReplyCode::HELP, format!("{topic} is implemented"))
            } else {
                self.reply(ReplyCode::ARGUMENT_ERROR, format!("Unknown command {topic}"))
            };
        }
        let mut lines = vec![b"The following commands are recognized:".to_vec()];
        for chunk in IMPLEMENTED_VERBS.chunks(10) {
            lines.push(chunk.join(" ").into_bytes());
        }
        lines.push(b"Help OK".to_vec());
        self.push(Output::Reply(Reply::multi(ReplyCode::HELP, lines)));
    }

    fn opts(&mut self, opts: &Opts) {
        match opts {
            Opts::Utf8(on) => {
                self.utf8 = *on;
                self.reply(
                    ReplyCode::COMMAND_OK,
                    if *on {
                        "UTF8 mode enabled"
                    } else {
                        "UTF8 mode disabled"
                    },
                );
            }
            // ferry always sends every fact it has; clients ignore extra ones (RFC 3659 §7.9 allows it).
            Opts::Mlst(_) => self.reply(
                ReplyCode::COMMAND_OK,
                "MLST OPTS type;size;modify;perm;unique;unix.mode;",
            ),
        }
    }

    fn site(&mut self, arg: &str) {
        let word = arg
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match word.as_str() {
            "HELP" => self.reply(ReplyCode::HELP, "SITE commands: HELP"),
            _ => self.reply(
                ReplyCode::PARAMETER_NOT_IMPLEMENTED,
                format!("SITE {word} not supported"),
            ),
        }
    }

    fn denied(&mut self, allowed: impl Fn(&Permissions) -> bool) -> bool {
        let ok = self.login().is_some_and(|l| allowed(&l.permissions));
        if !ok {
            self.reply(ReplyCode::FILE_UNAVAILABLE, "Permission denied");
        }
        !ok
    }

    fn with_path(&mut self, arg: &[u8], then: impl FnOnce(&mut Self, VPath)) {
        match self.cwd.resolve(arg) {
            Ok(path) => then(self, path),
            Err(e) => self.path_error(e),
        }
    }

    fn path_error(&mut self, e: PathError) {
        let text = match e {
            PathError::Nul => "File name not allowed",
            PathError::TooLong => "Path too long",
            PathError::NameTooLong => "File name too long",
        };
        self.reply(ReplyCode::NAME_NOT_ALLOWED, text);
    }

    fn storage(&mut self, pending: Pending, request: StorageRequest) {
        self.waiting = Waiting::Storage(pending);
        self.push(Output::Storage(request));
    }

    fn storage_reply(&mut self, pending: Pending, result: Result<StorageOk, FsError>) {
        let ok = match result {
            Ok(ok) => ok,
            Err(e) => {
                let (code, text) = fs_reply(e);
                return self.reply(code, text);
            }
        };
        match (pending, ok) {
            (Pending::Cwd(path), StorageOk::Entry(e)) => {
                if e.kind != EntryKind::Dir {
                    return self.reply(ReplyCode::FILE_UNAVAILABLE, "Not a directory");
                }
                if self.denied(|p| p.list) {
                    return;
                }
                self.cwd = path;
                self.reply(ReplyCode::FILE_ACTION_OK, "Directory changed");
            }
            (Pending::Mkd(path), StorageOk::Done) => {
                self.push(Output::Reply(Reply::path_created(path.as_bytes(), "created")));
            }
            (Pending::Rmd, StorageOk::Done) => self.reply(ReplyCode::FILE_ACTION_OK, "Directory removed"),
            (Pending::Dele, StorageOk::Done) => self.reply(ReplyCode::FILE_ACTION_OK, "File deleted"),
            (Pending::Rnfr(path), StorageOk::Entry(_)) => {
                self.rename_from = Some(path);
                self.reply(ReplyCode::FILE_ACTION_PENDING, "Ready for RNTO");
            }
            (Pending::Rnto, StorageOk::Done) => self.reply(ReplyCode::FILE_ACTION_OK, "Rename successful"),
            (Pending::Size, StorageOk::Entry(e)) => match e.kind {
                EntryKind::File => self.reply(ReplyCode::FILE_STATUS, e.size.to_string()),
                _ => self.reply(ReplyCode::FILE_UNAVAILABLE, "Not a plain file"),
            },
            (Pending::Mdtm, StorageOk::Entry(e)) => match (e.kind, e.modified) {
                (EntryKind::File, Some(t)) => self.reply(ReplyCode::FILE_STATUS, format_mdtm(t)),
                (EntryKind::File, None) => {
                    self.reply(ReplyCode::FILE_UNAVAILABLE, "Modification time unknown")
                }
                _ => self.reply(ReplyCode::FILE_UNAVAILABLE, "Not a plain file"),
            },
            (Pending::Mfmt(path, time), StorageOk::Done) => {
                let mut text = format!("Modify={}; ", format_mdtm(time)).into_bytes();
                text.extend_from_slice(path.file_name().unwrap_or(b"/"));
                self.reply(ReplyCode::FILE_STATUS, text);
            }
            (Pending::Mlst(path), StorageOk::Entry(mut e)) => {
                let perms = self.login().map(|l| l.permissions).unwrap_or_default();
                // MLST names the entry by the path as asked (RFC 3659 §7.3.1 allows the full pathname).
                e.name = path.as_bytes().to_vec();
                // Reply::multi sends middle lines with exactly one leading space, as RFC 3659 §7.2 wants.
                let mut line = Vec::new();
                crate::listing::write_mlsx_facts(&mut line, &e, perms);
                let mut first = b"Listing ".to_vec();
                first.extend_from_slice(path.as_bytes());
                self.push(Output::Reply(Reply::multi(
                    ReplyCode::FILE_ACTION_OK,
                    vec![first, line, b"End".to_vec()],
                )));
            }
            (
                Pending::StatPath,
                StorageOk::Entries {
                    entries,
                    truncated,
                    listed_at,
                },
            ) => {
                let mut lines = vec![b"Status follows:".to_vec()];
                for e in &entries {
                    let mut l = Vec::new();
                    crate::listing::write_list_line(&mut l, e, listed_at);
                    while l.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        l.pop();
                    }
                    lines.push(l);
                }
                if truncated {
                    lines.push(
                        format!("(listing truncated at {} entries; use LIST)", entries.len()).into_bytes(),
                    );
                }
                lines.push(b"End of status".to_vec());
                self.push(Output::Reply(Reply::multi(ReplyCode::FILE_STATUS, lines)));
            }
            (_, _) => self.reply(
                ReplyCode::LOCAL_ERROR,
                "Internal error: unexpected storage result",
            ),
        }
    }

    fn stat_server(&mut self) {
        let mut lines = vec![b"ferry FTP server status:".to_vec()];
        lines.push(format!("Connected from {}", self.peer.ip()).into_bytes());
        match &self.phase {
            Phase::LoggedIn(l) => lines.push(format!("Logged in as {}", l.user).into_bytes()),
            _ => lines.push(b"Not logged in".to_vec()),
        }
        lines.push(format!("TYPE: {}, STRU: F, MODE: S", self.mode_name()).into_bytes());
        let data = match self.data {
            DataSetup::None => "none",
            DataSetup::Passive => "passive listener ready",
            DataSetup::Active => "active target set",
        };
        lines.push(format!("Data connection: {data}").into_bytes());
        if let Waiting::Transfer(r) = &self.waiting {
            lines.push(format!("Transferring {}: {} bytes so far", r.what, r.bytes).into_bytes());
        } else {
            lines.push(b"No transfer in progress".to_vec());
        }
        lines.push(b"End of status".to_vec());
        self.push(Output::Reply(Reply::multi(ReplyCode::SYSTEM_STATUS, lines)));
    }

    fn abort_running(&mut self) {
        if let Waiting::Transfer(r) = &mut self.waiting {
            if !r.aborting {
                r.aborting = true;
                self.push(Output::AbortTransfer);
            }
        }
    }

    fn active(&mut self, target: SocketAddr) {
        if self.epsv_all {
            return self.reply(
                ReplyCode::BAD_SEQUENCE,
                "EPSV ALL in effect; only EPSV is allowed",
            );
        }
        let peer_ip = canonical(self.peer.ip());
        if canonical(target.ip()) != peer_ip {
            return self.reply(
                ReplyCode::ARGUMENT_ERROR,
                "Active data connections only to your own address",
            );
        }
        if target.port() < 1024 {
            return self.reply(
                ReplyCode::ARGUMENT_ERROR,
                "Active data connections only to ports 1024 and above",
            );
        }
        self.data = DataSetup::Active;
        self.push(Output::SetActive(target));
        self.reply(ReplyCode::COMMAND_OK, "Active data connection target set");
    }

    fn passive(&mut self, family: PassiveFamily) {
        if self.epsv_all && family == PassiveFamily::V4 {
            return self.reply(
                ReplyCode::BAD_SEQUENCE,
                "EPSV ALL in effect; only EPSV is allowed",
            );
        }
        if family == PassiveFamily::V4 && canonical(self.local.ip()).is_ipv6() {
            return self.reply(ReplyCode::CANT_OPEN_DATA, "PASV is IPv4-only; use EPSV on IPv6");
        }
        self.data = DataSetup::None;
        self.waiting = Waiting::Passive(family);
        self.push(Output::OpenPassive(family));
    }

    fn epsv(&mut self, arg: EpsvArg) {
        match arg {
            EpsvArg::All => {
                self.epsv_all = true;
                self.reply(ReplyCode::COMMAND_OK, "EPSV ALL ok");
            }
            EpsvArg::Any => self.passive(PassiveFamily::Any),
            EpsvArg::Protocol(p) => {
                let ours = if canonical(self.local.ip()).is_ipv6() {
                    2
                } else {
                    1
                };
                if p == ours {
                    self.passive(PassiveFamily::Any)
                } else {
                    self.reply(
                        ReplyCode::PROTOCOL_NOT_SUPPORTED,
                        format!("Network protocol not supported, use ({ours})"),
                    )
                }
            }
        }
    }

    fn retr(&mut self, arg: &[u8], offset: u64) {
        if self.denied(|p| p.read) {
            return;
        }
        let ascii = self.transfer_type == TransferType::Ascii;
        self.with_path(arg, |s, path| {
            let what = path.display();
            s.start_transfer(what, false, Transfer::Retr { path, offset, ascii });
        });
    }

    fn stor(&mut self, arg: &[u8], mode: StoreMode) {
        if self.denied(|p| p.write) {
            return;
        }
        let ascii = self.transfer_type == TransferType::Ascii;
        self.with_path(arg, |s, path| {
            if path.is_root() {
                return s.reply(
                    ReplyCode::NAME_NOT_ALLOWED,
                    "Cannot store onto the root directory",
                );
            }
            let what = path.display();
            s.start_transfer(
                what,
                mode == StoreMode::Unique,
                Transfer::Stor { path, mode, ascii },
            );
        });
    }

    fn list(&mut self, arg: Option<&[u8]>, format: ListFormat) {
        if self.denied(|p| p.list) {
            return;
        }
        let (flags, path_arg) = match format {
            // MLSD takes a path, never flags.
            ListFormat::Machine => (Vec::new(), arg.map(<[u8]>::to_vec)),
            _ => {
                let a = parse_list_args(arg);
                (a.flags, a.path)
            }
        };
        let permissions = self.login().map(|l| l.permissions).unwrap_or_default();
        let all = flags.contains(&b'a');
        self.with_path(path_arg.as_deref().unwrap_or_default(), |s, path| {
            let what = format!("listing of {}", path.display());
            s.start_transfer(
                what,
                false,
                Transfer::List {
                    path,
                    format,
                    permissions,
                    all,
                },
            );
        });
    }

    fn start_transfer(&mut self, what: String, unique: bool, transfer: Transfer) {
        if self.data == DataSetup::None {
            return self.reply(ReplyCode::CANT_OPEN_DATA, "Use PORT, EPRT, PASV or EPSV first");
        }
        self.data = DataSetup::None;
        self.waiting = Waiting::Transfer(Running {
            what,
            started: false,
            aborting: false,
            unique,
            bytes: 0,
        });
        self.push(Output::Transfer(transfer));
    }
}

/// Maps a storage error to its reply.
pub fn fs_reply(e: FsError) -> (ReplyCode, &'static str) {
    match e {
        FsError::NotFound => (ReplyCode::FILE_UNAVAILABLE, "No such file or directory"),
        FsError::PermissionDenied => (ReplyCode::FILE_UNAVAILABLE, "Permission denied"),
        FsError::AlreadyExists => (ReplyCode::FILE_UNAVAILABLE, "File exists"),
        FsError::NotADirectory => (ReplyCode::FILE_UNAVAILABLE, "Not a directory"),
        FsError::IsADirectory => (ReplyCode::FILE_UNAVAILABLE, "Is a directory"),
        FsError::DirectoryNotEmpty => (ReplyCode::FILE_UNAVAILABLE, "Directory not empty"),
        FsError::InvalidName => (ReplyCode::NAME_NOT_ALLOWED, "File name not allowed"),
        FsError::QuotaExceeded => (ReplyCode::EXCEEDED_STORAGE, "Storage quota exceeded"),
        FsError::Unsupported => (
            ReplyCode::FILE_UNAVAILABLE,
            "Operation not supported by this storage",
        ),
        FsError::Io => (ReplyCode::LOCAL_ERROR, "Local error in processing"),
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}
