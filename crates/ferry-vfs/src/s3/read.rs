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

/// A directory listing: OpenDAL fetches one page of keys (S3 returns up to 1,000) when the caller
/// has consumed the previous one, so memory stays flat however large the directory.
pub struct S3DirStream {
    pub(super) dir: String,
    pub(super) lister: opendal::Lister,
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
            batch.push(DirEntry {
                name: name.as_bytes().to_vec(),
                metadata: entry_metadata(entry.metadata(), entry.path().ends_with('/')),
            });
        }
        Ok(batch)
    }
}
