//! Downloads (one ranged GET from the requested offset) and listings (one page of keys at a time).

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;

use super::{entry_metadata, map_err, map_io};
use crate::error::Result;
use crate::storage::{DirEntry, DirStream, FileReader};

/// An object being read from an offset.
pub struct S3Reader {
    pub(super) key: String,
    pub(super) size: u64,
    pub(super) stream: opendal::FuturesBytesStream,
    pub(super) pending: Bytes,
}

impl fmt::Debug for S3Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Reader")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl FileReader for S3Reader {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        while self.pending.is_empty() {
            match self.stream.next().await {
                Some(chunk) => self.pending = chunk.map_err(|e| map_io(&self.key, e))?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }

    fn size(&self) -> Option<u64> {
        Some(self.size)
    }
}

/// Files of one listing whose stored modification time is looked up (one HEAD each); further
/// files show S3's Last-Modified. Bounds the cost of listing a huge directory.
pub(super) const LIST_MTIME_MAX: usize = 10_000;

/// HEAD requests of one listing in flight at once.
pub(super) const LIST_MTIME_CONCURRENCY: usize = 16;

/// A directory listing: OpenDAL fetches one page of keys (S3 returns up to 1,000) when the caller
/// has consumed the previous one, so memory stays flat however large the directory.
///
/// S3 listings carry no user metadata, so the modification time a client set (MFMT, SFTP setstat:
/// `X-Amz-Meta-Mtime`) is looked up with a HEAD of each file of the batch, at most
/// 16 at once and for at most 10,000 files per listing.
pub struct S3DirStream {
    pub(super) dir: String,
    pub(super) lister: opendal::Lister,
    pub(super) op: opendal::Operator,
    /// Files looked up so far.
    pub(super) looked_up: usize,
}

impl fmt::Debug for S3DirStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3DirStream")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl DirStream for S3DirStream {
    async fn next_batch(&mut self, max: usize) -> Result<Vec<DirEntry>> {
        let mut batch = Vec::new();
        let mut files = Vec::new();
        while batch.len() < max.max(1) {
            let Some(entry) = self.lister.next().await else {
                break;
            };
            let entry = entry.map_err(|e| map_err(&self.dir, e))?;
            // The directory's own marker object.
            if entry.path() == self.dir {
                continue;
            }
            let name = entry.name().trim_end_matches('/');
            if name.is_empty() || name == super::DIR_KEEP {
                continue;
            }
            let metadata = entry_metadata(entry.metadata(), entry.path().ends_with('/'));
            if metadata.kind == crate::EntryKind::File && self.looked_up < LIST_MTIME_MAX {
                self.looked_up += 1;
                files.push((batch.len(), entry.path().to_owned()));
            }
            batch.push(DirEntry {
                name: name.as_bytes().to_vec(),
                metadata,
            });
        }
        self.stored_mtimes(&mut batch, files).await;
        Ok(batch)
    }
}

impl S3DirStream {
    /// Replaces the Last-Modified of the `files` (index in `batch`, key) that have a stored
    /// modification time. A failed HEAD (say, the object was deleted meanwhile) keeps the listed
    /// time.
    async fn stored_mtimes(&self, batch: &mut [DirEntry], files: Vec<(usize, String)>) {
        let op = &self.op;
        let mut heads = futures_util::stream::iter(files)
            .map(|(i, key)| async move { (i, op.stat(&key).await) })
            .buffer_unordered(LIST_MTIME_CONCURRENCY);
        while let Some((i, head)) = heads.next().await {
            let Ok(md) = head else {
                continue;
            };
            let mtime = md
                .user_metadata()
                .and_then(|m| m.get(super::MTIME_KEY))
                .and_then(|v| super::parse_mtime(v));
            if let (Some(t), Some(entry)) = (mtime, batch.get_mut(i)) {
                entry.metadata.modified = Some(t);
            }
        }
    }
}
