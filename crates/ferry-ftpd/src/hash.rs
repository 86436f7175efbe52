//! On-demand checksums for `HASH` and the `X…` verbs: the file is read through the storage in its own
//! task (the session's other work — the shutdown signal, reading further commands — goes on), and the
//! digest is computed off the async threads, chunk by chunk.

use ferry_proto::hash::Hasher;
use ferry_proto::session::{FsError, HashError, HashRequest, HashValue};
use ferry_vfs::{EntryKind, ErrorKind, UserFs};
use std::future::Future;

use tokio::task::JoinHandle;

use crate::storage::fs_error;

/// Bytes read and hashed per step.
const CHUNK: usize = 1 << 20;
/// Chunks up to this size are hashed on the async thread (a few microseconds); larger ones on the
/// blocking pool.
const INLINE: usize = 64 * 1024;

/// A checksum being computed; dropping it cancels the computation.
#[derive(Debug)]
pub(crate) struct Hashing(JoinHandle<Result<HashValue, HashError>>);

impl Hashing {
    /// Starts computing `request` over the user's storage.
    pub(crate) fn spawn(fs: UserFs, request: HashRequest) -> Self {
        Hashing(tokio::spawn(async move { compute(&fs, &request).await }))
    }

    /// The result, once computed.
    pub(crate) fn poll_result(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<HashValue, HashError>> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|joined| match joined {
                Ok(result) => result,
                Err(_) => Err(HashError::Storage(FsError::from(ErrorKind::Io))),
            })
    }
}

impl Drop for Hashing {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The digest kept when the file was stored, for a request covering the whole file (whatever its
/// size: nothing is read). Any failure to look it up just means computing it.
async fn stored(fs: &UserFs, request: &HashRequest, size: u64, len: u64) -> Option<Vec<u8>> {
    if request.range.start != 0 || len != size {
        return None;
    }
    let kept = fs.stored_digests(&request.path).await.ok().flatten()?;
    if kept.size != size {
        return None;
    }
    kept.digests.by_name(request.algorithm.sftp_name())
}

/// Reads the requested range and hashes it, refusing ranges over the limit before reading anything.
pub(crate) async fn compute(fs: &UserFs, request: &HashRequest) -> Result<HashValue, HashError> {
    let path = &request.path;
    fs.may_read().map_err(|e| HashError::Storage(fs_error(e)))?;
    let meta = fs.stat(path).await.map_err(|e| HashError::Storage(fs_error(e)))?;
    match meta.kind {
        EntryKind::File => {}
        EntryKind::Dir => return Err(HashError::Storage(FsError::from(ErrorKind::IsADirectory))),
        EntryKind::Symlink | EntryKind::Other => {
            return Err(HashError::Storage(FsError::from(ErrorKind::Unsupported)))
        }
    }
    let size = meta.size;
    let start = request.range.start;
    if start > size {
        return Err(HashError::BeyondEnd { size });
    }
    let end = request.range.end.map_or(size, |e| e.min(size));
    let len = end.saturating_sub(start);
    if let Some(digest) = stored(fs, request, size, len).await {
        return Ok(HashValue {
            digest,
            start,
            end: start + len,
        });
    }
    if len > request.max_size {
        return Err(HashError::TooLarge {
            size: len,
            limit: request.max_size,
        });
    }
    let mut reader = fs
        .open_read(path, start)
        .await
        .map_err(|e| HashError::Storage(fs_error(e)))?;
    let mut hasher = Hasher::new(request.algorithm);
    let mut remaining = len;
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK)).max(1)];
    while remaining > 0 {
        let want = buf.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = reader
            .read(buf.get_mut(..want).unwrap_or_default())
            .await
            .map_err(|e| HashError::Storage(fs_error(e)))?;
        if n == 0 {
            // The file shrank while it was read: the digest would not describe the range asked for.
            return Err(HashError::Storage(FsError::from(ErrorKind::Io)));
        }
        if n <= INLINE {
            hasher.update(buf.get(..n).unwrap_or_default());
        } else {
            let chunk = std::mem::take(&mut buf);
            let (h, b) = tokio::task::spawn_blocking(move || {
                hasher.update(chunk.get(..n).unwrap_or_default());
                (hasher, chunk)
            })
            .await
            .map_err(|_| HashError::Storage(FsError::from(ErrorKind::Io)))?;
            (hasher, buf) = (h, b);
        }
        remaining -= n as u64;
    }
    Ok(HashValue {
        digest: hasher.finish(),
        start,
        end: start + len,
    })
}
