//! Positional files opened through the policy layer: the quota hook sees every write and the
//! observer sees the end of the transfer (on CLOSE, or when the handle is dropped).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;

use super::upload::Ticket;
use super::{FsOp, UserFs};
use crate::error::Result;
use crate::storage::{Metadata, PositionalFile};
use crate::VPath;

/// A [`PositionalFile`] that reports to the user's hooks.
#[derive(Debug)]
pub(super) struct Accounted {
    pub(super) inner: Box<dyn PositionalFile>,
    pub(super) fs: UserFs,
    pub(super) path: VPath,
    /// Opened for writing (an upload) rather than reading (a download).
    pub(super) writing: bool,
    /// Every write goes to the end of the file.
    pub(super) append: bool,
    pub(super) started: Instant,
    pub(super) bytes: AtomicU64,
    pub(super) ended: AtomicBool,
    /// Quota bookkeeping of a writing open (`size` follows the file's extent).
    pub(super) ticket: Mutex<Ticket>,
    /// A write was refused by the quota: CLOSE does not commit (a `Replace` upload is discarded).
    pub(super) refused: AtomicBool,
}

impl Accounted {
    fn end(&self, result: std::result::Result<(), Option<crate::ErrorKind>>) {
        if self.ended.swap(true, Ordering::Relaxed) {
            return;
        }
        let bytes = self.bytes.load(Ordering::Relaxed);
        let op = if self.writing {
            let ticket = *self.ticket.lock().unwrap_or_else(|e| e.into_inner());
            self.fs.settle(&self.path, &ticket, result.is_ok());
            FsOp::Upload
        } else {
            FsOp::Download
        };
        self.fs.emit(op, &self.path, None, bytes, self.started, result);
    }
}

impl Accounted {
    /// The file's size becomes `to(size)` (a write of `len` bytes, or a truncation): reserves the
    /// growth beyond the replaced file with the quota, or refuses (and marks the upload refused).
    fn grow(&self, to: impl FnOnce(u64) -> u64, len: u64) -> Result<()> {
        let mut ticket = self.ticket.lock().unwrap_or_else(|e| e.into_inner());
        let size = if self.append {
            ticket.size.saturating_add(len)
        } else {
            to(ticket.size)
        };
        let more = ticket.grow_to(size);
        if more > 0 {
            let inner = &self.fs.inner;
            if let Err(e) = inner.quota.add_bytes(&inner.user, more) {
                self.refused.store(true, Ordering::Relaxed);
                return Err(e);
            }
            ticket.reserved += more;
        }
        ticket.size = size;
        Ok(())
    }
}

#[async_trait]
impl PositionalFile for Accounted {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let data = self.inner.read_at(offset, len).await?;
        if !self.writing {
            self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            self.fs.pace_download(data.len() as u64).await;
        }
        Ok(data)
    }

    async fn write_at(&self, offset: u64, data: Vec<u8>) -> Result<()> {
        let len = data.len() as u64;
        self.grow(|size| size.max(offset.saturating_add(len)), len)?;
        self.fs.pace_upload(len).await;
        self.inner.write_at(offset, data).await?;
        self.bytes.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    async fn metadata(&self) -> Result<Metadata> {
        self.inner.metadata().await
    }

    async fn set_len(&self, len: u64) -> Result<()> {
        if self.writing {
            self.grow(|_| len, 0)?;
        }
        self.inner.set_len(len).await
    }

    async fn set_modified(&self, t: SystemTime) -> Result<()> {
        self.inner.set_modified(t).await
    }

    async fn set_mode(&self, mode: u32) -> Result<()> {
        self.inner.set_mode(mode).await
    }

    async fn sync(&self) -> Result<()> {
        self.inner.sync().await
    }

    async fn commit(&self) -> Result<()> {
        if self.refused.load(Ordering::Relaxed) {
            // Nothing of an upload that crossed the quota is committed; the temp file of a
            // `Replace` open goes when the handle is dropped.
            self.end(Err(Some(crate::ErrorKind::QuotaExceeded)));
            return Err(crate::Error::new(crate::ErrorKind::QuotaExceeded)
                .detail("quota exceeded: a write was refused, so the upload is not stored"));
        }
        let r = self.inner.commit().await;
        self.end(super::result_of(&r));
        r
    }
}

impl Drop for Accounted {
    fn drop(&mut self) {
        // Dropped without CLOSE: an upload is abandoned; a download simply ended.
        let result = if self.writing { Err(None) } else { Ok(()) };
        self.end(result);
    }
}
