//! The I/O-free vocabulary that ferry's storage layer (`ferry-vfs`) shares with the protocol cores.
//!
//! - [`VPath`]: the one normalised virtual path type (and its one normaliser), used by the FTP session,
//!   the SFTP server, the policy layer and every storage back-end.
//! - [`ErrorKind`]: what went wrong with a storage operation, independent of the protocol that reports it
//!   (FTP maps it to 550/553/452/451/421…, SFTP to `SSH_FX_*`).
//! - [`EntryKind`]: what a directory entry is.
//! - [`Permissions`]: what a user may do, checked by the policy layer for both protocols.
//!
//! What it deliberately does not do: any I/O, any async runtime, any protocol wording. It has no
//! dependencies so that the sans-I/O FTP core can use it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod path;

use std::fmt;

pub use path::{PathError, VPath};

/// What kind of object a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link that could not be followed (dangling, or leading outside the jail).
    Symlink,
    /// Anything else (device, FIFO, socket).
    Other,
}

/// What went wrong, independent of the protocol that will report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The path (or one of its parents) does not exist.
    NotFound,
    /// The operation is refused: the user's permissions, host permissions, a symlink leading
    /// outside the jail, a read-only file system, or an operation on the root itself.
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
    /// The back-end cannot do this operation (see its capabilities).
    Unsupported,
    /// A temporary failure of the back-end (throttled, unavailable): the client may retry later.
    /// FTP answers 451, SFTP `SSH_FX_FAILURE` with a message.
    Transient,
    /// The back-end did not answer in time: the client may retry later. FTP answers 451, SFTP
    /// `SSH_FX_FAILURE` with a message.
    TimedOut,
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
            ErrorKind::Unsupported => "operation not supported by the storage back-end",
            ErrorKind::Transient => "storage temporarily unavailable, try again later",
            ErrorKind::TimedOut => "storage did not answer in time, try again later",
            ErrorKind::Io => "local I/O error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// What a user may do. Checked by the policy layer (`ferry_vfs::UserFs`) for FTP and SFTP alike.
///
/// The rule for metadata: reading the metadata of a path the client names (FTP `SIZE`, `MDTM`,
/// `MLST`, `CWD`; SFTP `STAT`, `LSTAT`) needs no permission; listing the names in a directory (FTP
/// `LIST`, `NLST`, `MLSD`, `STAT <dir>`; SFTP `OPENDIR`) needs [`list`](Permissions::list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions {
    /// List the contents of directories.
    pub list: bool,
    /// Download files.
    pub read: bool,
    /// Upload files (create, overwrite, append, resume) and change their metadata.
    pub write: bool,
    /// Delete files and directories.
    pub delete: bool,
    /// Rename files and directories.
    pub rename: bool,
    /// Create directories.
    pub mkdir: bool,
}

impl Permissions {
    /// Every permission.
    pub fn all() -> Self {
        Permissions {
            list: true,
            read: true,
            write: true,
            delete: true,
            rename: true,
            mkdir: true,
        }
    }

    /// Listing and downloading only.
    pub fn read_only() -> Self {
        Permissions {
            list: true,
            read: true,
            ..Permissions::default()
        }
    }
}
