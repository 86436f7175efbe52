//! The neutral error type every storage back-end returns.

use std::borrow::Cow;
use std::io;

pub use ferry_vfs_types::ErrorKind;

/// A storage error: a neutral [`ErrorKind`], an optional detail for the client, and, for logging,
/// the underlying error.
///
/// `Display` shows the kind's fixed description and the detail, never a host path, so it can be sent
/// to a client. The source (reachable through [`std::error::Error::source`]) is for server logs.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    detail: Option<Cow<'static, str>>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Result of a storage operation.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind` without an underlying error.
    pub fn new(kind: ErrorKind) -> Self {
        Error {
            kind,
            detail: None,
            source: None,
        }
    }

    /// An error of `kind` caused by `source` (kept for logs, never shown to clients).
    pub fn with_source(kind: ErrorKind, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error {
            kind,
            detail: None,
            source: Some(source.into()),
        }
    }

    /// Adds a detail a client may see and act on (e.g. "this storage back-end has no append"); it must
    /// not contain host paths or secrets.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The client-safe detail, if any.
    pub fn detail_text(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The text to show a client: the detail if there is one, the kind's description otherwise.
    pub fn message(&self) -> Cow<'_, str> {
        match &self.detail {
            Some(d) => Cow::Borrowed(d.as_ref()),
            None => Cow::Borrowed(self.kind.describe()),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detail {
            Some(d) => write!(f, "{}: {d}", self.kind.describe()),
            None => f.write_str(self.kind.describe()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind)
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error {
            kind: classify(&err),
            detail: None,
            source: Some(Box::new(err)),
        }
    }
}

/// Maps an I/O error to a neutral kind, looking at the raw errno first because several useful
/// `io::ErrorKind`s are newer than our minimum Rust version.
fn classify(err: &io::Error) -> ErrorKind {
    if let Some(code) = err.raw_os_error() {
        if let Some(kind) = classify_errno(code) {
            return kind;
        }
    }
    match err.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
        io::ErrorKind::NotADirectory => ErrorKind::NotADirectory,
        io::ErrorKind::IsADirectory => ErrorKind::IsADirectory,
        io::ErrorKind::DirectoryNotEmpty => ErrorKind::DirectoryNotEmpty,
        io::ErrorKind::InvalidFilename | io::ErrorKind::InvalidInput => ErrorKind::InvalidName,
        io::ErrorKind::StorageFull => ErrorKind::QuotaExceeded,
        io::ErrorKind::FileTooLarge => ErrorKind::OffsetOutOfRange,
        io::ErrorKind::ReadOnlyFilesystem => ErrorKind::PermissionDenied,
        io::ErrorKind::Unsupported => ErrorKind::Unsupported,
        io::ErrorKind::TimedOut => ErrorKind::TimedOut,
        _ => ErrorKind::Io,
    }
}

fn classify_errno(code: i32) -> Option<ErrorKind> {
    let kind = match code {
        libc::ENOENT => ErrorKind::NotFound,
        libc::EACCES | libc::EPERM | libc::EROFS => ErrorKind::PermissionDenied,
        // Too many symlinks (including a loop) or a final-component symlink we refused to
        // follow: the server will not resolve it.
        libc::ELOOP => ErrorKind::PermissionDenied,
        libc::EEXIST => ErrorKind::AlreadyExists,
        libc::ENOTDIR => ErrorKind::NotADirectory,
        libc::EISDIR => ErrorKind::IsADirectory,
        libc::ENOTEMPTY => ErrorKind::DirectoryNotEmpty,
        libc::ENAMETOOLONG | libc::EINVAL => ErrorKind::InvalidName,
        libc::ENOSPC | libc::EDQUOT => ErrorKind::QuotaExceeded,
        // Past the largest file the file system (or the process's file size limit) allows.
        libc::EFBIG => ErrorKind::OffsetOutOfRange,
        // Rename across mount points inside the root.
        libc::EXDEV => ErrorKind::Unsupported,
        libc::ENOSYS | libc::EOPNOTSUPP => ErrorKind::Unsupported,
        libc::ETIMEDOUT => ErrorKind::TimedOut,
        _ => return None,
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_fixed_and_hides_the_io_message() {
        let io = io::Error::new(io::ErrorKind::NotFound, "/srv/secret/host/path");
        let err = Error::from(io);
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.to_string(), "no such file or directory");
    }

    #[test]
    fn raw_errno_values_map_to_neutral_kinds() {
        let cases = [
            (libc::ELOOP, ErrorKind::PermissionDenied),
            (libc::EXDEV, ErrorKind::Unsupported),
            (libc::ENOTEMPTY, ErrorKind::DirectoryNotEmpty),
            (libc::EISDIR, ErrorKind::IsADirectory),
            (libc::ENOTDIR, ErrorKind::NotADirectory),
            (libc::EDQUOT, ErrorKind::QuotaExceeded),
            (libc::ENOSPC, ErrorKind::QuotaExceeded),
            (libc::EFBIG, ErrorKind::OffsetOutOfRange),
            (libc::ENAMETOOLONG, ErrorKind::InvalidName),
            (libc::EROFS, ErrorKind::PermissionDenied),
            (libc::EIO, ErrorKind::Io),
        ];
        for (code, kind) in cases {
            assert_eq!(
                Error::from(io::Error::from_raw_os_error(code)).kind(),
                kind,
                "errno {code}"
            );
        }
    }

    #[test]
    fn cap_std_escape_error_is_permission_denied() {
        let io = io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a path led outside of the filesystem",
        );
        assert_eq!(Error::from(io).kind(), ErrorKind::PermissionDenied);
    }
}
