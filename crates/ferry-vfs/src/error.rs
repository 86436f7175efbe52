//! The neutral error type every storage back-end returns.

use std::fmt;
use std::io;

/// What went wrong, independent of the protocol that will report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The path (or one of its parents) does not exist.
    NotFound,
    /// The operation is refused: host permissions, a symlink leading outside the jail, a
    /// read-only file system, or an operation on the root itself.
    PermissionDenied,
    /// The target already exists.
    AlreadyExists,
    /// A directory was expected but the path names something else.
    NotADirectory,
    /// The path names a directory where a file was expected.
    IsADirectory,
    /// The directory still has entries.
    DirectoryNotEmpty,
    /// The path or name is not acceptable (NUL byte, `.`/`..` component, reserved prefix, too long).
    InvalidName,
    /// No space left, or a disk quota or file size limit was hit.
    QuotaExceeded,
    /// A file offset (or size) beyond what a file or the storage can hold.
    OffsetOutOfRange,
    /// A directory cannot be moved into itself or one of its subdirectories.
    MoveIntoItself,
    /// The back-end cannot do this operation.
    Unsupported,
    /// Any other local I/O failure.
    Io,
}

impl ErrorKind {
    /// A short, fixed description that is safe to show to a client.
    pub fn describe(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "no such file or directory",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::NotADirectory => "not a directory",
            ErrorKind::IsADirectory => "is a directory",
            ErrorKind::DirectoryNotEmpty => "directory not empty",
            ErrorKind::InvalidName => "invalid file name",
            ErrorKind::QuotaExceeded => "storage quota exceeded",
            ErrorKind::OffsetOutOfRange => "offset out of range",
            ErrorKind::MoveIntoItself => "cannot move a directory into itself",
            ErrorKind::Unsupported => "operation not supported",
            ErrorKind::Io => "local I/O error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A storage error: a neutral [`ErrorKind`] plus, for logging, the underlying I/O error.
///
/// `Display` shows only the kind's fixed description, never a host path, so it can be sent to a
/// client. The I/O source (reachable through [`std::error::Error::source`]) is for server logs.
#[derive(Debug, thiserror::Error)]
#[error("{}", kind.describe())]
pub struct Error {
    kind: ErrorKind,
    #[source]
    source: Option<io::Error>,
}

/// Result of a storage operation.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind` without an underlying I/O error.
    pub fn new(kind: ErrorKind) -> Self {
        Error { kind, source: None }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
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
            source: Some(err),
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
