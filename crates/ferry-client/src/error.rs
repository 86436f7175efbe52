//! Errors, named for who is at fault, and whether trying again may help.

use std::io;

/// Everything a client operation can fail with. Messages never contain passwords.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller asked for something malformed (bad URL, a name with CR/LF/NUL, …).
    #[error("{0}")]
    Usage(String),
    /// The remote file or directory does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The server refused the operation (a permanent FTP 5xx reply or SFTP failure status).
    #[error("the server refused {what}: {reply}")]
    Refused {
        /// The operation, e.g. `RETR /a.txt`.
        what: String,
        /// The server's answer (code and text, or SFTP status message).
        reply: String,
    },
    /// The server answered with a transient failure (FTP 4xx, e.g. 421 too many connections).
    #[error("the server is temporarily unable to do {what}: {reply}")]
    Transient {
        /// The operation.
        what: String,
        /// The server's answer.
        reply: String,
    },
    /// Login failed.
    #[error("login failed: {0}")]
    Auth(String),
    /// The server sent something that is not the protocol (malformed or oversized replies, hostile names).
    #[error("the server sent something invalid: {0}")]
    Protocol(String),
    /// The server's certificate or host key is not trusted (changed, revoked, wrong pin); the message
    /// shows the fingerprints.
    #[error("{0}")]
    Trust(String),
    /// First contact: the server's certificate or host key is not known yet. Connecting again with
    /// `trust_on_first_use` accepts and records it; the message shows its fingerprint.
    #[error("{0}")]
    Unknown(String),
    /// The server did not answer in time.
    #[error("timed out after {secs} s waiting for {what} (flag --timeout)")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The limit that passed.
        secs: u64,
    },
    /// Network or local I/O failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: io::Error,
    },
    /// A local file operation failed.
    #[error("{what}: {source}")]
    Local {
        /// What was being done, with the local path.
        what: String,
        /// The cause.
        source: io::Error,
    },
    /// TLS failed for a reason other than trust.
    #[error("TLS: {0}")]
    Tls(String),
    /// SSH failed for a reason other than trust or login.
    #[error("SSH: {0}")]
    Ssh(String),
}

impl Error {
    /// An I/O error with context.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// A local file error with context.
    pub fn local(what: impl Into<String>, source: io::Error) -> Self {
        Error::Local {
            what: what.into(),
            source,
        }
    }

    /// Whether trying again later may succeed: timeouts, network errors, transient server replies.
    /// Documented in docs/client.md ("Exit codes and retries").
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transient { .. } | Error::Timeout { .. } => true,
            Error::Io { source, .. } => !matches!(
                source.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::AlreadyExists
            ),
            _ => false,
        }
    }
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;
