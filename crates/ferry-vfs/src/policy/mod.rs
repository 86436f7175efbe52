//! The protocol-neutral policy layer: what one user may do with their storage, decided once for FTP
//! and SFTP.
//!
//! [`UserFs`] wraps a user's (already jailed) [`Storage`] and:
//! - checks the user's [`Permissions`] with one rule for both protocols (see [`Permissions`] for the
//!   metadata rule: a named path's metadata needs no permission, listing a directory needs `list`);
//! - chooses the upload behaviour ([`Upload`]): atomic replace, exclusive create, resume, append,
//!   unique names, each done honestly on the back-end's [`Capabilities`] or refused clearly;
//! - renames with an explicit replace / no-replace flag decided atomically by the back-end;
//! - calls the [`Quota`] hook and reports finished operations to [`FsEvents`].
//!
//! Paths are [`VPath`]s, normalised once by the front end.

mod events;
mod positional;
mod rate;
mod upload;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub use events::{FsEvent, FsEvents, FsOp, NoEvents, NoQuota, Protocol, Quota, QuotaStatus, UploadEnd};
pub use rate::{RateLimit, Rates};
pub use upload::{Upload, UploadWriter};

use crate::error::{Error, ErrorKind, Result};
use crate::storage::{
    Capabilities, DirStream, FileReader, Metadata, OpenMode, PositionalFile, Space, Storage,
};
use crate::{EntryKind, Permissions, StoredDigests, VPath};

/// One user's view of their storage, with their permissions and the upload and rename policy.
/// Cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct UserFs {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    storage: Arc<dyn Storage>,
    caps: Capabilities,
    protocol: Protocol,
    user: String,
    perms: Permissions,
    events: Arc<dyn FsEvents>,
    quota: Arc<dyn Quota>,
    rates: Rates,
    /// One paced transfer request of this session at a time in each direction, so that a session
    /// with many requests in flight (SFTP) gets the same share of a shared limit as one with one.
    /// Made at the first paced request: a session that is never limited (most, and every idle one)
    /// keeps a null pointer instead of two locks.
    turns: std::sync::OnceLock<Box<Turns>>,
}

/// The locks that take paced requests one at a time, one per direction.
#[derive(Debug, Default)]
struct Turns {
    download: tokio::sync::Mutex<()>,
    upload: tokio::sync::Mutex<()>,
}

/// Which permission an operation needs.
#[derive(Debug, Clone, Copy)]
enum Need {
    List,
    Read,
    Write,
    Delete,
    Rename,
    Mkdir,
}

impl UserFs {
    /// `user`'s view of `storage` (jailed at their home) through `protocol`, without events or quota.
    pub fn new(
        storage: Arc<dyn Storage>,
        protocol: Protocol,
        user: impl Into<String>,
        perms: Permissions,
    ) -> Self {
        Self::with_hooks(
            storage,
            protocol,
            user,
            perms,
            Arc::new(NoEvents),
            Arc::new(NoQuota),
        )
    }

    /// As [`new`](UserFs::new), with an observer and a quota hook.
    pub fn with_hooks(
        storage: Arc<dyn Storage>,
        protocol: Protocol,
        user: impl Into<String>,
        perms: Permissions,
        events: Arc<dyn FsEvents>,
        quota: Arc<dyn Quota>,
    ) -> Self {
        Self::with_limits(storage, protocol, user, perms, events, quota, Rates::default())
    }

    /// As [`with_hooks`](UserFs::with_hooks), with bandwidth limits (usually shared by all of the
    /// user's sessions): downloads and uploads move no faster than `rates` allow, and a limited
    /// download is copied rather than sent zero-copy.
    pub fn with_limits(
        storage: Arc<dyn Storage>,
        protocol: Protocol,
        user: impl Into<String>,
        perms: Permissions,
        events: Arc<dyn FsEvents>,
        quota: Arc<dyn Quota>,
        rates: Rates,
    ) -> Self {
        UserFs {
            inner: Arc::new(Inner {
                caps: storage.capabilities(),
                storage,
                protocol,
                user: user.into(),
                perms,
                events,
                quota,
                rates,
                turns: std::sync::OnceLock::new(),
            }),
        }
    }

    /// What the back-end can do.
    pub fn capabilities(&self) -> Capabilities {
        self.inner.caps
    }

    /// The back-end's name (`"local"`, `"memory"` …).
    pub fn backend_name(&self) -> &'static str {
        self.inner.storage.backend_name()
    }

    /// The user's permissions.
    pub fn permissions(&self) -> Permissions {
        self.inner.perms
    }

    /// The user's name.
    pub fn user(&self) -> &str {
        &self.inner.user
    }

    /// The front end.
    pub fn protocol(&self) -> Protocol {
        self.inner.protocol
    }

    fn check(&self, need: Need) -> Result<()> {
        let p = &self.inner.perms;
        let ok = match need {
            Need::List => p.list,
            Need::Read => p.read,
            Need::Write => p.write,
            Need::Delete => p.delete,
            Need::Rename => p.rename,
            Need::Mkdir => p.mkdir,
        };
        if ok {
            Ok(())
        } else {
            Err(ErrorKind::PermissionDenied.into())
        }
    }

    fn emit(
        &self,
        op: FsOp,
        path: &VPath,
        to: Option<&VPath>,
        bytes: u64,
        started: Instant,
        result: std::result::Result<(), Option<ErrorKind>>,
    ) {
        let event = FsEvent {
            protocol: self.inner.protocol,
            user: &self.inner.user,
            op,
            path,
            to,
            bytes,
            duration: started.elapsed(),
            result,
        };
        let events = &self.inner.events;
        match op {
            FsOp::Upload => events.on_upload(&event),
            FsOp::Download => events.on_download(&event),
            FsOp::Delete => events.on_delete(&event),
            FsOp::Rename => events.on_rename(&event),
            FsOp::Mkdir => events.on_mkdir(&event),
            FsOp::Rmdir => events.on_rmdir(&event),
        }
    }

    fn unsupported(&self, what: &str) -> Error {
        Error::new(ErrorKind::Unsupported).detail(format!(
            "{what} is not supported by the {} storage back-end",
            self.backend_name()
        ))
    }

    /// Metadata of a path the client names: no permission needed.
    pub async fn stat(&self, path: &VPath) -> Result<Metadata> {
        self.inner.storage.metadata(path).await
    }

    /// Lists a directory: needs `list`.
    pub async fn list(&self, path: &VPath) -> Result<Box<dyn DirStream>> {
        self.check(Need::List)?;
        self.inner.storage.list(path).await
    }

    /// Opens a file for download from `offset`: needs `read`. Report the end with
    /// [`downloaded`](UserFs::downloaded).
    pub async fn open_read(&self, path: &VPath, offset: u64) -> Result<Box<dyn FileReader>> {
        self.check(Need::Read)?;
        let reader = self.inner.storage.open_read(path, offset).await?;
        if self.inner.rates.download.is_limited() {
            return Ok(Box::new(rate::Throttled {
                inner: reader,
                fs: self.clone(),
            }));
        }
        Ok(reader)
    }

    /// The checksums the back-end kept for the file `path` when it was stored, if it keeps them and
    /// they still describe the file: needs `read`. `None` means compute them on demand.
    pub async fn stored_digests(&self, path: &VPath) -> Result<Option<StoredDigests>> {
        self.check(Need::Read)?;
        self.inner.storage.stored_digests(path).await
    }

    fn turns(&self) -> &Turns {
        self.inner.turns.get_or_init(Box::default)
    }

    /// Waits until `bytes` more may be sent to the user under their download limit.
    pub(crate) async fn pace_download(&self, bytes: u64) {
        if self.inner.rates.download.is_limited() {
            let _turn = self.turns().download.lock().await;
            self.inner.rates.download.take(bytes).await;
        }
    }

    /// Waits until `bytes` more may be received from the user under their upload limit.
    pub(crate) async fn pace_upload(&self, bytes: u64) {
        if self.inner.rates.upload.is_limited() {
            let _turn = self.turns().upload.lock().await;
            self.inner.rates.upload.take(bytes).await;
        }
    }

    /// The user's quota usage and limits, if a quota is kept.
    pub fn quota_status(&self) -> Option<QuotaStatus> {
        self.inner.quota.status()
    }

    /// The user's bandwidth limits.
    pub fn rates(&self) -> &Rates {
        &self.inner.rates
    }

    /// The size of the file at `path` if the quota hook counts usage and a file is there.
    async fn size_for_quota(&self, path: &VPath) -> Option<u64> {
        if !self.inner.quota.counts() {
            return None;
        }
        match self.inner.storage.metadata(path).await {
            Ok(m) if m.kind == EntryKind::File => Some(m.size),
            _ => None,
        }
    }

    /// Reports a finished download of `bytes` from `path` started at `started`.
    pub fn downloaded(
        &self,
        path: &VPath,
        bytes: u64,
        started: Instant,
        result: std::result::Result<(), ErrorKind>,
    ) {
        self.emit(FsOp::Download, path, None, bytes, started, result.map_err(Some));
    }

    /// Creates a directory: needs `mkdir`. `mode` (SFTP MKDIR's permission bits) is part of the
    /// creation, applied where the back-end has permission bits (ignored elsewhere).
    pub async fn create_dir(&self, path: &VPath, mode: Option<u32>) -> Result<()> {
        self.check(Need::Mkdir)?;
        let started = Instant::now();
        let mut r = self.inner.storage.create_dir(path).await;
        if let (Ok(()), Some(mode), true) = (&r, mode, self.inner.caps.set_mode) {
            r = self.inner.storage.set_mode(path, mode).await;
        }
        self.emit(FsOp::Mkdir, path, None, 0, started, result_of(&r));
        r
    }

    /// Removes an empty directory: needs `delete`; the root is never removed.
    pub async fn remove_dir(&self, path: &VPath) -> Result<()> {
        self.check(Need::Delete)?;
        if path.is_root() {
            return Err(Error::new(ErrorKind::PermissionDenied).detail("cannot remove the root directory"));
        }
        let started = Instant::now();
        let r = self.inner.storage.remove_dir(path).await;
        self.emit(FsOp::Rmdir, path, None, 0, started, result_of(&r));
        r
    }

    /// Removes a file: needs `delete`.
    pub async fn remove_file(&self, path: &VPath) -> Result<()> {
        self.check(Need::Delete)?;
        let size = self.size_for_quota(path).await;
        let started = Instant::now();
        let r = self.inner.storage.remove_file(path).await;
        if r.is_ok() {
            self.inner.quota.file_removed(&self.inner.user, path, size);
        }
        self.emit(FsOp::Delete, path, None, 0, started, result_of(&r));
        r
    }

    /// Renames `from` to `to`: needs `rename`. With `replace` an existing file at `to` is replaced
    /// atomically; without it the rename fails with `AlreadyExists` if `to` exists (decided by the
    /// back-end in the same step, no probe). Neither may be the root.
    pub async fn rename(&self, from: &VPath, to: &VPath, replace: bool) -> Result<()> {
        self.check(Need::Rename)?;
        if from.is_root() || to.is_root() {
            return Err(Error::new(ErrorKind::PermissionDenied).detail("cannot rename the root directory"));
        }
        let caps = self.inner.caps;
        if !caps.rename {
            return Err(self.unsupported("renaming"));
        }
        if !caps.rename_dir && self.inner.storage.metadata(from).await?.kind == EntryKind::Dir {
            return Err(self.unsupported("renaming a directory"));
        }
        // A file replaced by the rename is removed as far as the quota is concerned.
        let replaced = match replace {
            true => self.size_for_quota(to).await,
            false => None,
        };
        let started = Instant::now();
        let r = self.inner.storage.rename(from, to, replace).await;
        if let (Ok(()), Some(size)) = (&r, replaced) {
            self.inner.quota.file_removed(&self.inner.user, to, Some(size));
        }
        self.emit(FsOp::Rename, from, Some(to), 0, started, result_of(&r));
        r
    }

    /// Sets a modification time: needs `write`.
    pub async fn set_modified(&self, path: &VPath, t: SystemTime) -> Result<()> {
        self.check(Need::Write)?;
        if !self.inner.caps.set_modified {
            return Err(self.unsupported("setting modification times"));
        }
        self.inner.storage.set_modified(path, t).await
    }

    /// Sets permission bits: needs `write`.
    pub async fn set_mode(&self, path: &VPath, mode: u32) -> Result<()> {
        self.check(Need::Write)?;
        if !self.inner.caps.set_mode {
            return Err(self.unsupported("setting permission bits"));
        }
        self.inner.storage.set_mode(path, mode).await
    }

    /// Space on the storage: no permission needed. Where the user has a quota, the quota is the size
    /// and what is left of it the free space.
    pub async fn space(&self) -> Result<Space> {
        if !self.inner.caps.space {
            return Err(self.unsupported("reporting free space"));
        }
        let mut space = self.inner.storage.space().await?;
        if let Some(q) = self.quota_status() {
            limit_space(&mut space, &q);
        }
        Ok(space)
    }

    /// Opens a file for positional access (SFTP on back-ends with random writes): `Read` needs
    /// `read`; the writing modes need `write` (and `read` too if they also read). The quota hook sees
    /// every write and the observer the end of the transfer (commit, or drop).
    pub async fn open_file(&self, path: &VPath, mode: OpenMode) -> Result<Box<dyn PositionalFile>> {
        let mut ticket = None;
        match mode {
            OpenMode::Read => self.check(Need::Read)?,
            OpenMode::InPlace { read, .. } | OpenMode::Replace { read, .. } => {
                self.check(Need::Write)?;
                if read {
                    self.check(Need::Read)?;
                }
            }
        }
        if !self.inner.caps.random_write {
            return Err(self.unsupported("random access"));
        }
        let append = matches!(mode, OpenMode::InPlace { append: true, .. });
        if !matches!(mode, OpenMode::Read) {
            let existing = match mode {
                OpenMode::Replace { exclusive: true, .. } => None,
                _ => self.size_for_quota(path).await,
            };
            self.inner.quota.before_upload(&self.inner.user, path, existing)?;
            let size = match mode {
                OpenMode::InPlace { .. } => existing.unwrap_or(0),
                _ => 0,
            };
            ticket = Some(upload::Ticket {
                new_file: existing.is_none(),
                replaced: existing.unwrap_or(0),
                size,
                reserved: 0,
            });
        }
        let inner = match self.inner.storage.open_file(path, mode).await {
            Ok(f) => f,
            Err(e) => {
                if let Some(t) = &ticket {
                    self.settle(path, t, false);
                }
                return Err(e);
            }
        };
        Ok(Box::new(positional::Accounted {
            inner,
            fs: self.clone(),
            path: path.clone(),
            writing: ticket.is_some(),
            append,
            started: Instant::now(),
            bytes: std::sync::atomic::AtomicU64::new(0),
            ended: std::sync::atomic::AtomicBool::new(false),
            ticket: std::sync::Mutex::new(ticket.unwrap_or(upload::Ticket {
                new_file: false,
                replaced: 0,
                size: 0,
                reserved: 0,
            })),
            refused: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Checks that the user may write (for front ends that must refuse before any other check).
    pub fn may_write(&self) -> Result<()> {
        self.check(Need::Write)
    }

    /// Checks that the user may read.
    pub fn may_read(&self) -> Result<()> {
        self.check(Need::Read)
    }
}

/// What the user's quota leaves of the storage's space: the quota as the size and what is left of
/// it as free (never more than the storage has free).
fn limit_space(space: &mut Space, q: &QuotaStatus) {
    if q.max_bytes != 0 {
        let unit = space.fragment_size.max(1);
        let left = q.max_bytes.saturating_sub(q.bytes) / unit;
        space.blocks = q.max_bytes / unit;
        space.blocks_free = space.blocks_free.min(left);
        space.blocks_available = space.blocks_available.min(left);
    }
    if q.max_files != 0 {
        let left = q.max_files.saturating_sub(q.files);
        space.files = q.max_files;
        space.files_free = space.files_free.min(left);
        space.files_available = space.files_available.min(left);
    }
}

fn result_of<T>(r: &Result<T>) -> std::result::Result<(), Option<ErrorKind>> {
    match r {
        Ok(_) => Ok(()),
        Err(e) => Err(Some(e.kind())),
    }
}

#[cfg(test)]
mod tests;
