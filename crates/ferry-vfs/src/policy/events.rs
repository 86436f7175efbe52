//! Hooks on the policy layer: an observer of file operations and a quota callback.

use std::time::Duration;

use crate::error::Result;
use crate::{ErrorKind, VPath};

/// Which front end a user works through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// FTP or FTPS.
    Ftp,
    /// SFTP.
    Sftp,
}

impl Protocol {
    /// `"ftp"` or `"sftp"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Ftp => "ftp",
            Protocol::Sftp => "sftp",
        }
    }
}

/// Which operation an [`FsEvent`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsOp {
    /// A file was stored (or the upload failed or was abandoned).
    Upload,
    /// A file was sent.
    Download,
    /// A file was removed.
    Delete,
    /// A file or directory was renamed (`to` is set).
    Rename,
    /// A directory was created.
    Mkdir,
    /// A directory was removed.
    Rmdir,
}

/// One finished file operation, as [`FsEvents`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct FsEvent<'a> {
    /// The front end.
    pub protocol: Protocol,
    /// The user's name.
    pub user: &'a str,
    /// What was done.
    pub op: FsOp,
    /// The path (the source of a rename).
    pub path: &'a VPath,
    /// The target of a rename.
    pub to: Option<&'a VPath>,
    /// Bytes moved (uploads and downloads; 0 otherwise).
    pub bytes: u64,
    /// How long the operation took (for transfers: from open to commit or end).
    pub duration: Duration,
    /// `Ok`; `Err(Some(kind))` if it failed; `Err(None)` for an upload abandoned (aborted, or
    /// dropped without commit), see [`FsEvent::aborted`].
    pub result: std::result::Result<(), Option<ErrorKind>>,
}

impl FsEvent<'_> {
    /// Whether the operation was abandoned (an upload aborted or dropped) rather than failed.
    pub fn aborted(&self) -> bool {
        self.result == Err(None)
    }
}

/// An observer of file operations on the policy layer (logs, hooks, metrics hang here). Every method
/// has a no-op default, so an observer implements only what it needs. Called on the task that did
/// the operation: implementations must not block.
pub trait FsEvents: Send + Sync + std::fmt::Debug {
    /// An upload ended (committed, failed or abandoned).
    fn on_upload(&self, event: &FsEvent<'_>) {
        let _ = event;
    }
    /// A download ended.
    fn on_download(&self, event: &FsEvent<'_>) {
        let _ = event;
    }
    /// A file removal was attempted.
    fn on_delete(&self, event: &FsEvent<'_>) {
        let _ = event;
    }
    /// A rename was attempted.
    fn on_rename(&self, event: &FsEvent<'_>) {
        let _ = event;
    }
    /// A directory creation was attempted.
    fn on_mkdir(&self, event: &FsEvent<'_>) {
        let _ = event;
    }
    /// A directory removal was attempted.
    fn on_rmdir(&self, event: &FsEvent<'_>) {
        let _ = event;
    }
}

/// The observer that observes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl FsEvents for NoEvents {}

/// How an upload ended, as a [`Quota`] hook is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadEnd {
    /// The upload created a file (no file was at its path when it opened): a file slot was
    /// reserved by [`Quota::before_upload`] and is now released.
    pub new_file: bool,
    /// Bytes reserved through [`Quota::add_bytes`] (now released).
    pub reserved: u64,
    /// Whether the upload was committed (its file is now stored).
    pub committed: bool,
    /// If committed: how much the stored bytes changed (new size minus the size of the file it
    /// replaced or extended).
    pub size_change: i64,
}

/// A user's usage and quota (0 = unlimited), as a [`Quota`] hook reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaStatus {
    /// Bytes stored.
    pub bytes: u64,
    /// Files stored.
    pub files: u64,
    /// Most bytes allowed (0 = unlimited).
    pub max_bytes: u64,
    /// Most files allowed (0 = unlimited).
    pub max_files: u64,
}

/// A quota hook: may refuse an upload or the bytes of one, and is told what was stored and removed.
/// Every method has a permissive default.
///
/// The policy layer reserves, then settles: [`before_upload`](Quota::before_upload) reserves a file
/// for an upload that creates one, [`add_bytes`](Quota::add_bytes) reserves the bytes by which the
/// upload grows beyond the file it replaces (so replacing a file costs only the difference), and
/// [`upload_ended`](Quota::upload_ended) releases both and, if committed, accounts the change.
pub trait Quota: Send + Sync + std::fmt::Debug {
    /// Whether the hook counts usage. If so, the policy layer learns the size of the file an upload
    /// replaces and of a file removed (one metadata call each); if not, it passes `None`.
    fn counts(&self) -> bool {
        false
    }
    /// Before an upload opens; `existing` is the size of the file at the path (the one replaced,
    /// resumed or appended to), `None` if the upload creates a file. Refuse with
    /// [`ErrorKind::QuotaExceeded`].
    fn before_upload(&self, user: &str, path: &VPath, existing: Option<u64>) -> Result<()> {
        let _ = (user, path, existing);
        Ok(())
    }
    /// Before an upload's file grows by `bytes` more beyond the size of the file it replaces;
    /// refuse with [`ErrorKind::QuotaExceeded`] (the upload then fails and is not committed).
    fn add_bytes(&self, user: &str, bytes: u64) -> Result<()> {
        let _ = (user, bytes);
        Ok(())
    }
    /// An upload that [`before_upload`](Quota::before_upload) allowed ended.
    fn upload_ended(&self, user: &str, path: &VPath, end: &UploadEnd) {
        let _ = (user, path, end);
    }
    /// The user's usage and limits, for SITE QUOTA and statvfs (`None`: no quota is kept).
    fn status(&self) -> Option<QuotaStatus> {
        None
    }
    /// A file of `size` bytes (if known) was removed (deleted, or replaced by a rename).
    fn file_removed(&self, user: &str, path: &VPath, size: Option<u64>) {
        let _ = (user, path, size);
    }
}

/// No quota.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoQuota;

impl Quota for NoQuota {}
