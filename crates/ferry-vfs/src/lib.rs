//! Protocol-neutral storage for ferry.
//!
//! This crate defines the [`Storage`] trait that back-ends implement, the neutral
//! [`Error`]/[`ErrorKind`] the front ends map to their own reply codes, [`UserFs`], the one
//! policy layer through which the FTP and SFTP front ends touch a user's files (permissions, upload
//! and rename policy, quota and observer hooks), and three back-ends: [`LocalFs`], which keeps every
//! operation inside one directory on the host, [`s3::S3Fs`], which keeps files as objects in an
//! S3-compatible bucket (through OpenDAL), and [`MemoryFs`], an in-memory store with object-store
//! semantics only, for tests.
//!
//! # What it does
//! - Takes *virtual* paths as [`VPath`]s, normalised once by the front end (`/` is the root). Names
//!   are bytes, so non-UTF-8 names work. The local back-end refuses a component starting with the
//!   upload temp prefix with [`ErrorKind::InvalidName`].
//! - Says what each back-end can do ([`Storage::capabilities`]); optional operations answer
//!   [`ErrorKind::Unsupported`] where a back-end cannot do them.
//! - Jails [`LocalFs`] by directory handle (`cap_std::fs::Dir`), never by comparing path strings:
//!   symlinks that resolve outside the root (absolute symlinks, `../` escapes) are refused with
//!   [`ErrorKind::PermissionDenied`]; symlinks that stay inside are followed.
//! - Streams directory listings in batches and uploads through a temporary file that only appears
//!   under its final name when the writer is committed.
//! - Offers positional access for SFTP ([`Storage::open_file`] → [`PositionalFile`]): reads and
//!   writes at any offset that can run concurrently, with the same temp-file rule for new content
//!   ([`OpenMode::Replace`]).
//!
//! # What it deliberately does not do
//! - No FTP/SFTP semantics: no reply codes and no listing formats. Permission checks, upload and
//!   rename policy live in one protocol-neutral layer, [`UserFs`], that both front ends use; the
//!   [`Storage`] trait itself checks nothing about users.
//! - No printing and no logging setup.
//! - Unix only: names are raw bytes (`OsStrExt`) and errors are classified by errno.
//! - No reading or writing of files with more than one name: a hard link (possibly planted by someone
//!   with host access, to a file outside the root) is refused with [`ErrorKind::PermissionDenied`].
//!   It is still listed and can be deleted or renamed, which affects only the name inside the root.
//!   Metadata changes ([`Storage::set_mode`], [`Storage::set_modified`]) follow the same rule and go
//!   through a handle pinned before the check, never through the name again.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod digest;
mod error;
mod local;
mod memory;
mod path;
mod policy;
pub mod s3;
mod storage;

pub use digest::{Digester, Digests, StoredDigests};
pub use error::{Error, ErrorKind, Result};
pub use ferry_vfs_types::{EntryKind, PathError, Permissions, VPath};
pub use local::{LocalFs, Swept};
pub use memory::MemoryFs;
pub use policy::{
    FsEvent, FsEvents, FsOp, NoEvents, NoQuota, Protocol, Quota, QuotaStatus, RateLimit, Rates, Upload,
    UploadEnd, UploadWriter, UserFs,
};
pub use storage::{
    Capabilities, DirEntry, DirStream, FileReader, FileWriter, Metadata, OpenMode, PositionalFile, Space,
    Storage, WriteMode, WriteOptions,
};

/// Prefix of the temporary files uploads are written to before they are committed.
///
/// Such files are hidden from listings and names starting with it are refused as
/// [`ErrorKind::InvalidName`], so clients can neither see nor touch uploads in progress.
pub const TEMP_PREFIX: &[u8] = b".ferry-upload.";
