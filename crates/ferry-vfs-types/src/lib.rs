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

    /// No permission at all.
    pub fn none() -> Self {
        Permissions::default()
    }

    fn flags(&self) -> [bool; 6] {
        [
            self.list,
            self.read,
            self.write,
            self.delete,
            self.rename,
            self.mkdir,
        ]
    }

    fn flag_mut(&mut self, word: &str) -> Option<&mut bool> {
        match word {
            "list" => Some(&mut self.list),
            "read" => Some(&mut self.read),
            "write" => Some(&mut self.write),
            "delete" => Some(&mut self.delete),
            "rename" => Some(&mut self.rename),
            "mkdir" => Some(&mut self.mkdir),
            _ => None,
        }
    }
}

/// Permission words in canonical order.
const PERMISSION_WORDS: [&str; 6] = ["list", "read", "write", "delete", "rename", "mkdir"];

/// A permission list that does not parse; the message names the offending word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionsError(String);

impl fmt::Display for PermissionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PermissionsError {}

impl std::str::FromStr for Permissions {
    type Err = PermissionsError;

    /// Parses `all`, `ro`, `none`, or a comma-separated list of `list`, `read`, `write`,
    /// `delete`, `rename`, `mkdir` (case-insensitive, spaces around words allowed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "all" => return Ok(Permissions::all()),
            "ro" => return Ok(Permissions::read_only()),
            "none" => return Ok(Permissions::none()),
            "" => return Err(PermissionsError("empty permission list".into())),
            _ => {}
        }
        let mut perms = Permissions::none();
        for word in s.split(',').map(str::trim) {
            match perms.flag_mut(word) {
                Some(flag) => *flag = true,
                None => {
                    return Err(PermissionsError(format!(
                        "unknown permission {word:?} (expected all, ro, none, or a comma list of {})",
                        PERMISSION_WORDS.join(", ")
                    )))
                }
            }
        }
        Ok(perms)
    }
}

impl fmt::Display for Permissions {
    /// The canonical comma list (`list,read`), or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = PERMISSION_WORDS
            .iter()
            .zip(self.flags())
            .filter(|(_, on)| *on)
            .map(|(word, _)| *word)
            .collect();
        if words.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&words.join(","))
        }
    }
}

#[cfg(test)]
mod permission_tests {
    use super::*;

    fn parse(s: &str) -> Permissions {
        s.parse().unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    #[test]
    fn keywords_parse_to_presets() {
        assert_eq!(parse("all"), Permissions::all());
        assert_eq!(parse("ro"), Permissions::read_only());
        assert_eq!(parse("none"), Permissions::none());
        assert_eq!(parse(" ALL "), Permissions::all());
    }

    #[test]
    fn comma_list_sets_only_named_flags() {
        let p = parse("read, write,mkdir");
        assert_eq!(
            p,
            Permissions {
                read: true,
                write: true,
                mkdir: true,
                ..Permissions::none()
            }
        );
    }

    #[test]
    fn unknown_word_is_named_in_the_error() {
        let err = "list,fly".parse::<Permissions>().expect_err("unknown");
        assert!(err.to_string().contains("\"fly\""), "{err}");
        assert!("list,,read".parse::<Permissions>().is_err());
        assert!("".parse::<Permissions>().is_err());
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        assert_eq!(
            Permissions::all().to_string(),
            "list,read,write,delete,rename,mkdir"
        );
        assert_eq!(Permissions::read_only().to_string(), "list,read");
        assert_eq!(Permissions::none().to_string(), "none");
        assert_eq!(parse("mkdir,list").to_string(), "list,mkdir");
        for bits in 0u8..64 {
            let p = Permissions {
                list: bits & 1 != 0,
                read: bits & 2 != 0,
                write: bits & 4 != 0,
                delete: bits & 8 != 0,
                rename: bits & 16 != 0,
                mkdir: bits & 32 != 0,
            };
            assert_eq!(parse(&p.to_string()), p);
        }
    }
}
