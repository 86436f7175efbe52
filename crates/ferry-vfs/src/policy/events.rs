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

/// A quota hook: may refuse an upload or the bytes of one, and is told what was stored and removed.
/// No quota feature uses it yet; every method has a permissive default.
pub trait Quota: Send + Sync + std::fmt::Debug {
    /// Before an upload opens; refuse with [`ErrorKind::QuotaExceeded`].
    fn before_upload(&self, user: &str, path: &VPath) -> Result<()> {
        let _ = (user, path);
        Ok(())
    }
    /// Before `bytes` more of an upload are written; refuse with [`ErrorKind::QuotaExceeded`] (the
    /// upload then fails and is not committed).
    fn add_bytes(&self, user: &str, bytes: u64) -> Result<()> {
        let _ = (user, bytes);
        Ok(())
    }
    /// An upload ended after `bytes` were written through it; `committed` tells whether they are
    /// now stored (otherwise an accounting implementation gives them back).
    fn upload_ended(&self, user: &str, path: &VPath, bytes: u64, committed: bool) {
        let _ = (user, path, bytes, committed);
    }
    /// A file was removed.
    fn file_removed(&self, user: &str, path: &VPath) {
        let _ = (user, path);
    }
}

/// No quota.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoQuota;

impl Quota for NoQuota {}
