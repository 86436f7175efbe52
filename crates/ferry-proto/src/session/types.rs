//! The values the session exchanges with the glue: its actions ([`Output`]) and the results the glue
//! reports back.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::command::Secret;
use crate::limits;
use crate::listing::Entry;
use crate::path::VPath;
use crate::reply::Reply;
pub use ferry_vfs_types::ErrorKind;

/// What a logged-in user may do (the storage layer's type, checked there for FTP and SFTP alike).
pub use ferry_vfs_types::Permissions;

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
    /// FTPS (RFC 4217) settings for this connection.
    pub tls: TlsSettings,
    /// Longest byte range `HASH`/`X…` checksums are computed for on demand; 0 turns them off (and FEAT
    /// no longer offers `HASH`).
    pub hash_max_size: u64,
}

/// Whether the control connection must, may or cannot use TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsPolicy {
    /// No TLS: AUTH is refused and FEAT does not offer it. The default, since TLS needs a certificate.
    #[default]
    Off,
    /// AUTH TLS is offered; cleartext logins are allowed too.
    Optional,
    /// Logins need TLS: a cleartext USER is refused with 530.
    Required,
}

/// FTPS settings of one connection, decided by the glue from its listener and the peer's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TlsSettings {
    /// Control-channel policy. Anything but `Off` needs a certificate in the glue.
    pub policy: TlsPolicy,
    /// Whether data connections must be protected (`PROT P`) while the control channel is TLS.
    pub require_protected_data: bool,
    /// The connection came in on an implicit-TLS listener: TLS is up before the greeting and data is
    /// protected unless the client asks for `PROT C`.
    pub implicit: bool,
    /// Accept CCC (clear the control channel after login). Off by default; never on implicit listeners.
    pub allow_ccc: bool,
}
impl Default for Config {
    fn default() -> Self {
        Self {
            greeting: "ferry FTP server ready".to_owned(),
            login_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(300),
            max_login_attempts: limits::MAX_LOGIN_ATTEMPTS,
            tls: TlsSettings::default(),
            hash_max_size: crate::hash::DEFAULT_MAX_SIZE,
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
    /// The user's own FTPS requirements, which override the listener's.
    pub tls: LoginTls,
}

/// Per-user FTPS overrides, reported with a successful login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginTls {
    /// The user may log in only over TLS, even where the listener makes TLS optional. Checked after the
    /// password, so that the reply does not tell which accounts exist.
    pub required: bool,
    /// Overrides whether this user's data connections must be protected under a TLS control channel.
    pub protected_data: Option<bool>,
}

/// A failed storage request: the storage layer's neutral kind and, if it gave one, a detail a client
/// may read (e.g. which back-end cannot append). The reply code follows the kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Client-safe text that replaces the kind's default reply text.
    pub detail: Option<String>,
}

impl From<ErrorKind> for FsError {
    fn from(kind: ErrorKind) -> Self {
        FsError { kind, detail: None }
    }
}

/// A storage request the session asks the glue to run; answer with [`super::Session::handle_storage`].
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
    /// The user's quota usage and limits, as lines of text (answer [`StorageOk::Text`]).
    Quota,
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
    /// Lines of text for a multi-line reply (SITE QUOTA).
    Text(Vec<String>),
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
    /// An active data connection could not leave from the configured source port `port` (below 1024,
    /// and the server lacks the privilege): 425 saying so.
    SourcePortDenied {
        /// The source port the server was configured to use.
        port: u16,
    },
    /// The data connection broke or the peer did not finish cleanly: 426.
    ConnectionLost,
    /// The transfer was cancelled after [`Output::AbortTransfer`].
    Aborted,
    /// The data connection's TLS handshake failed, or it did not resume this control connection's TLS
    /// session: 522, and no data moved.
    DataTlsRefused(DataTlsError),
}

/// Why a protected data connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataTlsError {
    /// The handshake completed but did not resume the control connection's session.
    NotResumed,
    /// The handshake failed.
    Handshake,
}

/// An action for the glue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this reply on the control connection.
    Reply(Reply),
    /// Verify these credentials; answer with [`super::Session::handle_auth`].
    Authenticate {
        /// User name given with USER.
        user: String,
        /// Password given with PASS.
        password: Secret,
    },
    /// Run a storage request; answer with [`super::Session::handle_storage`].
    Storage(StorageRequest),
    /// Compute a checksum by reading the file; answer with [`super::Session::handle_hash`].
    Hash(super::HashRequest),
    /// Drop any passive listener or active target and open a new passive listener; answer with
    /// [`super::Session::handle_passive`] giving the address to advertise.
    OpenPassive(PassiveFamily),
    /// Drop any passive listener; the next transfer connects to this address (already checked to be the
    /// control peer's address with a port ≥ 1024; any address ≥ 1024 when FXP is allowed).
    SetActive(SocketAddr),
    /// Drop any passive listener or active target.
    ResetData,
    /// Run this transfer over the prepared data connection; report with [`super::Session::handle_transfer`].
    Transfer(Transfer),
    /// Cancel the running transfer; then report [`TransferEvent::Aborted`] (or how it ended if it already had).
    AbortTransfer,
    /// Flush the replies sent so far (the last is `234`), discard any cleartext input already received,
    /// and run the TLS handshake on the control connection; answer with [`super::Session::handle_tls`].
    StartTls,
    /// Flush the replies sent so far (the last is `200` to CCC), then end TLS on the control connection
    /// (close_notify both ways) and continue in the clear; answer with
    /// [`super::Session::handle_tls_stopped`].
    StopTls,
    /// Flush the replies sent so far and close the control connection.
    Close,
}
