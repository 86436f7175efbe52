//! The upload policy: which [`WriteMode`] an upload request becomes on a back-end, and the writer
//! that accounts its bytes and reports its end.

use std::time::Instant;

use async_trait::async_trait;
use rand::Rng;

use super::{result_of, FsOp, Need, UploadEnd, UserFs};
use crate::error::{Error, ErrorKind, Result};
use crate::storage::{FileWriter, WriteMode, WriteOptions};
use crate::{EntryKind, VPath};

/// `Unique` tries `name`, `name.1` … `name.SEQUENTIAL_SUFFIXES`, then random suffixes.
const SEQUENTIAL_SUFFIXES: u32 = 99;
/// Random suffixes `Unique` tries before giving up.
const RANDOM_SUFFIXES: usize = 16;

/// What an upload does to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// New content that replaces any existing file atomically on commit (FTP STOR, SFTP
    /// CREAT|TRUNC).
    Replace,
    /// New content, refused if the file exists (SFTP CREAT|EXCL).
    Exclusive,
    /// Keep the first `offset` bytes of the existing file and write after them (FTP REST+STOR,
    /// SFTP writes to an existing file without TRUNC). Offset 0 is a [`Replace`](Upload::Replace).
    Resume(u64),
    /// Write after the end of the file, creating it if missing (FTP APPE, SFTP APPEND). On a
    /// back-end without append but with resume this is a resume at the current size.
    Append,
    /// New content under a name derived from the path that does not exist yet (FTP STOU).
    Unique,
}

/// An upload in progress: a [`FileWriter`] that checks the quota hook for every buffer and reports
/// the upload's end to the observer. Dropping it without commit abandons the upload.
#[derive(Debug)]
pub struct UploadWriter {
    inner: Option<Box<dyn FileWriter>>,
    fs: UserFs,
    path: VPath,
    started: Instant,
    bytes: u64,
    ticket: Ticket,
}

/// An upload's quota bookkeeping.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket {
    /// No file was at the path: the upload creates one.
    pub(super) new_file: bool,
    /// Size of the file the upload replaces or extends (0 if none).
    pub(super) replaced: u64,
    /// Size the file will have if committed now.
    pub(super) size: u64,
    /// Bytes reserved so far: how far `size` went beyond `replaced`.
    pub(super) reserved: u64,
}

impl Ticket {
    /// The file grows to `size`: the bytes to reserve beyond what is reserved already.
    pub(super) fn grow_to(&self, size: u64) -> u64 {
        size.saturating_sub(self.replaced).saturating_sub(self.reserved)
    }
}

impl UserFs {
    /// Opens an upload of `path`: needs `write`. `unix_mode` is for a new file (where the back-end
    /// has permission bits).
    ///
    /// Resume and append are done where the back-end can, or refused with `Unsupported` and a message
    /// naming the back-end; never stored as only the new bytes.
    pub async fn upload(&self, path: &VPath, how: Upload, unix_mode: Option<u32>) -> Result<UploadWriter> {
        self.check(Need::Write)?;
        if path.is_root() {
            return Err(ErrorKind::IsADirectory.into());
        }
        // What the quota needs: the size of the file replaced or extended (None: a new file).
        let existing = match how {
            Upload::Exclusive | Upload::Unique => None,
            Upload::Replace | Upload::Resume(0) => self.size_for_quota(path).await,
            Upload::Resume(_) | Upload::Append => match self.inner.quota.counts() {
                true => self.not_a_dir(path).await?,
                false => None,
            },
        };
        self.inner.quota.before_upload(&self.inner.user, path, existing)?;
        let base = match how {
            Upload::Resume(offset) => offset,
            Upload::Append => existing.unwrap_or(0),
            _ => 0,
        };
        let ticket = Ticket {
            new_file: existing.is_none(),
            replaced: existing.unwrap_or(0),
            size: base,
            reserved: 0,
        };
        match self.open_upload(path, how, unix_mode).await {
            Ok((writer, path)) => Ok(UploadWriter {
                inner: Some(writer),
                fs: self.clone(),
                path,
                started: Instant::now(),
                bytes: 0,
                ticket,
            }),
            Err(e) => {
                self.settle(path, &ticket, false);
                Err(e)
            }
        }
    }

    /// Releases an upload's reservations and accounts it if committed.
    pub(super) fn settle(&self, path: &VPath, ticket: &Ticket, committed: bool) {
        let end = UploadEnd {
            new_file: ticket.new_file,
            reserved: ticket.reserved,
            committed,
            size_change: ticket.size as i64 - ticket.replaced as i64,
        };
        self.inner.quota.upload_ended(&self.inner.user, path, &end);
    }

    async fn open_upload(
        &self,
        path: &VPath,
        how: Upload,
        unix_mode: Option<u32>,
    ) -> Result<(Box<dyn FileWriter>, VPath)> {
        let caps = self.inner.caps;
        let storage = &self.inner.storage;
        let options = |mode| WriteOptions { mode, unix_mode };
        let (writer, path) = match how {
            Upload::Replace | Upload::Resume(0) => (
                storage
                    .open_write(path, options(WriteMode::New { exclusive: false }))
                    .await?,
                path.clone(),
            ),
            Upload::Exclusive => (
                storage
                    .open_write(path, options(WriteMode::New { exclusive: true }))
                    .await?,
                path.clone(),
            ),
            Upload::Resume(offset) => {
                if !caps.resume {
                    return Err(self.unsupported("resuming an upload at an offset"));
                }
                self.not_a_dir(path).await?;
                (
                    storage
                        .open_write(path, options(WriteMode::Resume { offset }))
                        .await?,
                    path.clone(),
                )
            }
            Upload::Append => (self.open_append(path, unix_mode).await?, path.clone()),
            Upload::Unique => self.open_unique(path, unix_mode).await?,
        };
        Ok((writer, path))
    }

    /// Refuses a directory before any data moves.
    async fn not_a_dir(&self, path: &VPath) -> Result<Option<u64>> {
        match self.inner.storage.metadata(path).await {
            Ok(m) if m.kind == EntryKind::Dir => Err(ErrorKind::IsADirectory.into()),
            Ok(m) => Ok(Some(m.size)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn open_append(&self, path: &VPath, unix_mode: Option<u32>) -> Result<Box<dyn FileWriter>> {
        let caps = self.inner.caps;
        if !caps.append && !caps.resume {
            return Err(self.unsupported("appending to a file"));
        }
        let size = self.not_a_dir(path).await?;
        let mode = match size {
            _ if caps.append => WriteMode::Append,
            Some(offset) => WriteMode::Resume { offset },
            None => WriteMode::New { exclusive: true },
        };
        self.inner
            .storage
            .open_write(path, WriteOptions { mode, unix_mode })
            .await
    }

    /// Reserves a name that does not exist yet with exclusive opens: `name`, `name.1` … `name.99`,
    /// then random suffixes.
    async fn open_unique(
        &self,
        path: &VPath,
        unix_mode: Option<u32>,
    ) -> Result<(Box<dyn FileWriter>, VPath)> {
        let name = path.file_name().unwrap_or_default().to_vec();
        let parent = path.parent();
        let sequential = (0..=SEQUENTIAL_SUFFIXES).map(|n| match n {
            0 => name.clone(),
            n => suffixed(&name, &n.to_string()),
        });
        let random =
            (0..RANDOM_SUFFIXES).map(|_| suffixed(&name, &format!("{:08x}", rand::rng().random::<u32>())));
        let options = WriteOptions {
            mode: WriteMode::New { exclusive: true },
            unix_mode,
        };
        for candidate in sequential.chain(random) {
            let Ok(target) = parent.join_name(&candidate) else {
                return Err(ErrorKind::InvalidName.into());
            };
            match self.inner.storage.open_write(&target, options).await {
                Ok(w) => return Ok((w, target)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ErrorKind::AlreadyExists.into())
    }
}

fn suffixed(name: &[u8], suffix: &str) -> Vec<u8> {
    let mut out = name.to_vec();
    out.push(b'.');
    out.extend_from_slice(suffix.as_bytes());
    out
}

impl UploadWriter {
    /// The path the upload is stored under (for [`Upload::Unique`] the one chosen).
    pub fn path(&self) -> &VPath {
        &self.path
    }

    /// The final file name (a single component).
    pub fn final_name(&self) -> &[u8] {
        self.path.file_name().unwrap_or_default()
    }

    fn end(&mut self, result: std::result::Result<(), Option<ErrorKind>>) {
        let fs = &self.fs;
        fs.settle(&self.path, &self.ticket, result.is_ok());
        fs.emit(FsOp::Upload, &self.path, None, self.bytes, self.started, result);
    }

    /// Reserves what `len` more bytes add beyond the replaced file's size.
    fn reserve(&mut self, len: u64) -> Result<()> {
        let more = self.ticket.grow_to(self.ticket.size + len);
        if more > 0 {
            self.fs.inner.quota.add_bytes(&self.fs.inner.user, more)?;
            self.ticket.reserved += more;
        }
        Ok(())
    }

    fn writer(&mut self) -> Result<&mut Box<dyn FileWriter>> {
        self.inner.as_mut().ok_or_else(|| Error::new(ErrorKind::Io))
    }
}

#[async_trait]
impl FileWriter for UploadWriter {
    async fn write_owned(&mut self, buf: Vec<u8>) -> Result<Vec<u8>> {
        let len = buf.len() as u64;
        self.reserve(len)?;
        self.fs.pace_upload(len).await;
        let out = self.writer()?.write_owned(buf).await?;
        self.bytes += len;
        self.ticket.size += len;
        Ok(out)
    }

    async fn commit(self: Box<Self>) -> Result<u64> {
        self.commit_with(Vec::new()).await
    }

    async fn commit_with(mut self: Box<Self>, last: Vec<u8>) -> Result<u64> {
        let len = last.len() as u64;
        if let Err(e) = self.reserve(len) {
            self.abort().await;
            return Err(e);
        }
        self.fs.pace_upload(len).await;
        let Some(inner) = self.inner.take() else {
            return Err(ErrorKind::Io.into());
        };
        let r = inner.commit_with(last).await;
        if r.is_ok() {
            self.bytes += len;
            self.ticket.size += len;
        }
        self.end(result_of(&r));
        r
    }

    async fn abort(mut self: Box<Self>) {
        if let Some(inner) = self.inner.take() {
            inner.abort().await;
        }
        self.end(Err(None));
    }

    fn zero_copy(&mut self) -> Option<std::fs::File> {
        // A limited upload is paced buffer by buffer.
        if self.fs.inner.rates.upload.is_limited() {
            return None;
        }
        self.inner.as_mut()?.zero_copy()
    }

    fn zero_copy_written(&mut self, n: u64) -> Result<()> {
        self.writer()?.zero_copy_written(n)?;
        // Reserved after the fact: the bytes are in the temp file, which an upload over quota
        // never commits.
        self.reserve(n)?;
        self.bytes += n;
        self.ticket.size += n;
        Ok(())
    }
}

impl Drop for UploadWriter {
    fn drop(&mut self) {
        if self.inner.take().is_some() {
            self.end(Err(None));
        }
    }
}
