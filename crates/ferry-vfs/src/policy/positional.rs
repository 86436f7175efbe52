//! Positional files opened through the policy layer: the quota hook sees every write and the
//! observer sees the end of the transfer (on CLOSE, or when the handle is dropped).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use async_trait::async_trait;

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
    pub(super) started: Instant,
    pub(super) bytes: AtomicU64,
    pub(super) ended: AtomicBool,
}

impl Accounted {
    fn end(&self, result: std::result::Result<(), Option<crate::ErrorKind>>) {
        if self.ended.swap(true, Ordering::Relaxed) {
            return;
        }
        let bytes = self.bytes.load(Ordering::Relaxed);
        let inner = &self.fs.inner;
        let op = if self.writing {
            inner
                .quota
                .upload_ended(&inner.user, &self.path, bytes, result.is_ok());
            FsOp::Upload
        } else {
            FsOp::Download
        };
        self.fs.emit(op, &self.path, None, bytes, self.started, result);
    }
}

#[async_trait]
impl PositionalFile for Accounted {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let data = self.inner.read_at(offset, len).await?;
        if !self.writing {
            self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        Ok(data)
    }

    async fn write_at(&self, offset: u64, data: Vec<u8>) -> Result<()> {
        let len = data.len() as u64;
        let inner = &self.fs.inner;
        inner.quota.add_bytes(&inner.user, len)?;
        self.inner.write_at(offset, data).await?;
        self.bytes.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    async fn metadata(&self) -> Result<Metadata> {
        self.inner.metadata().await
    }

    async fn set_len(&self, len: u64) -> Result<()> {
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
