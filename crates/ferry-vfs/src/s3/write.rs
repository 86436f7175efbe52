//! Streaming multipart uploads: client bytes are cut into parts of growing size and handed to
//! OpenDAL one at a time; nothing touches local disk.
//!
//! Checksums: the OpenDAL writer is opened only when the first full part must be sent, or at
//! commit. An object smaller than one part (a resumed upload's copied prefix included) is hashed
//! through a [`Digester`] on the blocking pool at commit and stored as one PutObject that carries
//! its checksums as user metadata (`X-Amz-Meta-Ferry-Digests`). A multipart upload's metadata is
//! fixed when it starts, before the checksums are known, so larger objects are not hashed at all
//! and get their checksums on demand (docs/storage.md).
//!
//! Memory: OpenDAL keeps the last part it was given until the next one arrives (so that a small
//! file becomes one PutObject) and uploads it while the caller waits. So at any time an upload holds
//! at most two parts: the one being uploaded (or held back) and the one being filled.

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;

use super::parts::{part_size, MAX_OBJECT};
use super::{map_err, map_io, S3Fs};
use crate::digest::Digester;
use crate::error::{ErrorKind, Result};
use crate::storage::FileWriter;

/// An upload in progress; dropped without [`commit`](FileWriter::commit) it is aborted (the
/// multipart upload and its parts are deleted in the background).
pub struct S3Writer {
    /// The OpenDAL writer, once opened (see the module doc).
    inner: Option<opendal::Writer>,
    /// How to open it, until it is.
    opening: Option<Opening>,
    op: opendal::Operator,
    /// Checksums of every byte of the object so far.
    digester: Option<Digester>,
    /// A part being handed to OpenDAL, in a task of its own: cancelling the caller (ABOR, a reset,
    /// a lost session) must not cut OpenDAL's write short, or a CreateMultipartUpload that the
    /// server carried out would be forgotten and its upload never aborted. The writer comes back
    /// with the task's result.
    in_flight: Option<InFlight>,
    key: String,
    /// The part being filled.
    buf: Vec<u8>,
    /// Parts handed to OpenDAL so far.
    parts: u64,
    /// Bytes of the object so far (a resumed upload's copied prefix included).
    total: u64,
    /// Bytes given through [`FileWriter`] methods.
    written: u64,
}

impl fmt::Debug for S3Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Writer")
            .field("key", &self.key)
            .field("parts", &self.parts)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

type InFlight = tokio::task::JoinHandle<(opendal::Writer, opendal::Result<()>)>;

/// What the OpenDAL writer is opened with.
#[derive(Debug)]
struct Opening {
    mtime: Option<String>,
    exclusive: bool,
}

impl S3Writer {
    /// A writer for `key`, with `mtime` (seconds since the epoch, rclone's format) as object
    /// metadata if given; with `exclusive` the upload completes only if `key` does not exist then.
    pub(super) async fn open(
        fs: &S3Fs,
        key: String,
        mtime: Option<String>,
        exclusive: bool,
    ) -> Result<S3Writer> {
        Ok(S3Writer {
            inner: None,
            opening: Some(Opening { mtime, exclusive }),
            op: fs.op.clone(),
            digester: Some(Digester::new()),
            in_flight: None,
            key,
            buf: Vec::new(),
            parts: 0,
            total: 0,
            written: 0,
        })
    }

    /// Copies the first `len` bytes of the object `from` into this upload (resume, append, a new
    /// mtime): streamed with a ranged read, through the same bounded parts.
    pub(super) async fn copy_prefix(&mut self, fs: &S3Fs, from: &str, len: u64) -> Result<()> {
        use futures_util::StreamExt;
        if len == 0 {
            return Ok(());
        }
        let reader = fs.op.reader(from).await.map_err(|e| map_err(from, e))?;
        let mut stream = reader
            .into_bytes_stream(0..len)
            .await
            .map_err(|e| map_err(from, e))?;
        let mut copied = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| map_io(from, e))?;
            copied += chunk.len() as u64;
            self.push(&chunk).await?;
        }
        if copied != len {
            // The object changed under us: never build an object from a short prefix.
            tracing::warn!(
                key = from,
                expected = len,
                copied,
                "S3 object shrank while it was copied"
            );
            return Err(ErrorKind::Io.into());
        }
        Ok(())
    }

    /// Appends `data` to the part being filled, handing every full part to OpenDAL.
    async fn push(&mut self, mut data: &[u8]) -> Result<()> {
        if self.total.saturating_add(data.len() as u64) > MAX_OBJECT {
            return Err(ErrorKind::QuotaExceeded.into());
        }
        self.total += data.len() as u64;
        while !data.is_empty() {
            let want = usize::try_from(part_size(self.parts)).unwrap_or(usize::MAX);
            if self.buf.capacity() < want {
                self.buf.reserve_exact(want - self.buf.len());
            }
            let room = want - self.buf.len();
            let (head, tail) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(head);
            data = tail;
            if self.buf.len() == want {
                let part = std::mem::take(&mut self.buf);
                self.send(Bytes::from(part)).await?;
            }
        }
        Ok(())
    }

    /// Opens the OpenDAL writer with the metadata known now (`digests` for a one-part object).
    async fn open_inner(&mut self, digests: Option<String>) -> Result<()> {
        let Some(opening) = self.opening.take() else {
            return Err(ErrorKind::Io.into());
        };
        let mut metadata = Vec::new();
        if let Some(mtime) = opening.mtime {
            metadata.push((super::MTIME_KEY.to_owned(), mtime));
        }
        if let Some(digests) = digests {
            metadata.push((super::DIGESTS_KEY.to_owned(), digests));
        }
        let mut with = self
            .op
            .writer_with(&self.key)
            .concurrent(1)
            .if_not_exists(opening.exclusive);
        if !metadata.is_empty() {
            with = with.user_metadata(metadata);
        }
        self.inner = Some(with.await.map_err(|e| map_err(&self.key, e))?);
        Ok(())
    }

    /// Hands a full part to OpenDAL (the object becomes a multipart upload).
    async fn send(&mut self, part: Bytes) -> Result<()> {
        if self.inner.is_none() && self.in_flight.is_none() {
            self.open_inner(None).await?;
        }
        let Some(mut inner) = self.inner.take() else {
            return Err(ErrorKind::Io.into());
        };
        // A multipart upload's metadata was fixed when it started, so its checksums could not be
        // kept: hashing its parts would cost CPU for nothing.
        self.digester = None;
        self.in_flight = Some(tokio::spawn(async move {
            let result = inner.write(part).await;
            (inner, result)
        }));
        self.settle().await?.map_err(|e| map_err(&self.key, e))?;
        self.parts += 1;
        Ok(())
    }

    /// Waits for the part in flight, if any, and takes its writer back; its result is returned.
    async fn settle(&mut self) -> Result<opendal::Result<()>> {
        let Some(task) = self.in_flight.as_mut() else {
            return Ok(Ok(()));
        };
        let joined = task.await;
        self.in_flight = None;
        let (inner, result) = joined.map_err(|_| crate::error::Error::from(ErrorKind::Io))?;
        self.inner = Some(inner);
        Ok(result)
    }

    /// The last bytes of a one-part object: hashed, then the writer is opened with the checksums
    /// as metadata and they are sent as one PutObject.
    async fn send_whole(&mut self, last: Vec<u8>) -> Result<()> {
        let size = self.total;
        let (value, last) = match self.digester.take() {
            Some(mut d) => tokio::task::spawn_blocking(move || {
                d.update(&last);
                (Some(format!("1 {size} {}", d.finish().encode())), last)
            })
            .await
            .map_err(|_| ErrorKind::Io)?,
            None => (None, last),
        };
        self.open_inner(value).await?;
        if !last.is_empty() {
            let Some(inner) = self.inner.as_mut() else {
                return Err(ErrorKind::Io.into());
            };
            inner
                .write(Bytes::from(last))
                .await
                .map_err(|e| map_err(&self.key, e))?;
            self.parts += 1;
        }
        Ok(())
    }

    /// Completes the upload: the object appears under its name only now.
    async fn finish(&mut self) -> Result<u64> {
        let last = std::mem::take(&mut self.buf);
        if self.inner.is_none() {
            self.send_whole(last).await?;
        } else if !last.is_empty() {
            self.send(Bytes::from(last)).await?;
        }
        let Some(mut inner) = self.inner.take() else {
            return Err(ErrorKind::Io.into());
        };
        match inner.close().await {
            Ok(_) => Ok(self.written),
            Err(e) => {
                let err = map_err(&self.key, e);
                if let Err(e) = inner.abort().await {
                    tracing::warn!(key = %self.key, error = %e, "cannot abort a failed S3 upload");
                }
                Err(err)
            }
        }
    }

    /// Aborts the upload; what it had sent is deleted.
    pub(super) async fn cancel(&mut self) {
        self.buf = Vec::new();
        let _ = self.settle().await;
        if let Some(mut inner) = self.inner.take() {
            if let Err(e) = inner.abort().await {
                tracing::warn!(key = %self.key, error = %e, "cannot abort an S3 upload; a lifecycle rule removes its parts");
            }
        }
    }
}

#[async_trait]
impl FileWriter for S3Writer {
    async fn write_owned(&mut self, buf: Vec<u8>) -> Result<Vec<u8>> {
        self.push(&buf).await?;
        self.written += buf.len() as u64;
        Ok(buf)
    }

    async fn commit(mut self: Box<Self>) -> Result<u64> {
        self.finish().await
    }

    async fn abort(mut self: Box<Self>) {
        self.cancel().await;
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        let in_flight = self.in_flight.take();
        let inner = self.inner.take();
        if inner.is_none() && in_flight.is_none() {
            return;
        }
        let key = std::mem::take(&mut self.key);
        // Dropped without commit or abort (a reset data connection, a lost session): abort in the
        // background so no parts are left behind, once the part in flight (if any) is through.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let inner = match in_flight {
                        Some(task) => task.await.ok().map(|(inner, _)| inner),
                        None => inner,
                    };
                    let Some(mut inner) = inner else {
                        tracing::warn!(%key, "a dropped S3 upload's part task failed; a lifecycle rule removes its parts");
                        return;
                    };
                    if let Err(e) = inner.abort().await {
                        tracing::warn!(%key, error = %e, "cannot abort a dropped S3 upload; a lifecycle rule removes its parts");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(%key, "S3 upload dropped outside a runtime; a lifecycle rule removes its parts")
            }
        }
    }
}
