//! SFTP file handles on back-ends without random access (object stores): reads through a
//! sequential reader reopened where a read does not continue the last one, and writes reassembled in
//! order in a bounded window over one streaming upload.
//!
//! SFTP clients pipeline writes (OpenSSH and paramiko keep up to 64 in flight) and the session runs
//! them concurrently, so they reach the handle slightly out of order. A write at the next expected
//! offset goes to the upload at once, followed by any buffered writes it makes contiguous; a write
//! ahead of it is buffered if it ends within [`WRITE_WINDOW`] bytes of that offset. A write before
//! the expected offset (a rewrite) or beyond the window fails with a clear `SSH_FX_FAILURE` message,
//! as does CLOSE while data is missing. Nothing is stored under the file's name unless CLOSE commits
//! a complete upload.

use std::collections::BTreeMap;
use std::time::SystemTime;

use async_trait::async_trait;
use ferry_vfs::{
    EntryKind, Error, ErrorKind, FileReader, FileWriter, Metadata, PositionalFile, Result, Upload,
    UploadWriter, UserFs, VPath,
};
use tokio::sync::Mutex;

/// How far ahead of the next expected byte a write may end and still be buffered: 64 writes of
/// 64 KiB (OpenSSH and paramiko send 64 of 32 KiB). This bounds the memory one handle holds.
pub(crate) const WRITE_WINDOW: u64 = 64 * 64 * 1024;

/// A handle on a back-end without random access.
#[derive(Debug)]
pub(crate) struct StreamFile {
    fs: UserFs,
    path: VPath,
    read: Mutex<Option<(u64, Box<dyn FileReader>)>>,
    write: Mutex<Window>,
    /// A modification time set on the handle, applied after the upload is committed.
    mtime: std::sync::Mutex<Option<SystemTime>>,
    /// Bytes read, and when the handle was opened, for the download event on CLOSE.
    read_bytes: std::sync::atomic::AtomicU64,
    opened: std::time::Instant,
}

/// How the upload starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Opened for reading only.
    None,
    /// Opened now (new content, append).
    Open,
    /// An existing file opened without TRUNC: the upload resumes at the first write's offset (the
    /// file keeps its bytes before it), opened when that write comes.
    ResumeAtFirstWrite,
}

#[derive(Debug, Default)]
struct Window {
    writer: Option<UploadWriter>,
    lazy: bool,
    /// Offset of the next byte the upload expects; `None` until the first write of a lazy upload.
    next: Option<u64>,
    /// Writes ahead of `next`, by offset.
    ahead: BTreeMap<u64, Vec<u8>>,
    /// What failed: every later write and CLOSE report it.
    failed: Option<(ErrorKind, String)>,
    done: bool,
}

fn failure(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Io).detail(message.into())
}

impl StreamFile {
    /// A handle on `path`; with `writer` an upload opened already (its data starts at `offset`).
    pub(crate) fn new(
        fs: UserFs,
        path: VPath,
        start: Start,
        writer: Option<UploadWriter>,
        offset: u64,
    ) -> Self {
        let window = Window {
            writer,
            lazy: start == Start::ResumeAtFirstWrite,
            next: (start == Start::Open).then_some(offset),
            ..Window::default()
        };
        StreamFile {
            fs,
            path,
            read: Mutex::new(None),
            write: Mutex::new(window),
            mtime: std::sync::Mutex::new(None),
            read_bytes: std::sync::atomic::AtomicU64::new(0),
            opened: std::time::Instant::now(),
        }
    }

    /// A read-only handle on `path`, with `reader` opened at offset 0.
    pub(crate) fn reading(fs: UserFs, path: VPath, reader: Box<dyn FileReader>) -> Self {
        let file = StreamFile::new(fs, path, Start::None, None, 0);
        *file.read.try_lock().expect("a new handle is not locked") = Some((0, reader));
        file
    }

    async fn read_from(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut slot = self.read.lock().await;
        let reader = match slot.take() {
            Some((pos, reader)) if pos == offset => reader,
            // A read that does not continue the last one reopens at its offset.
            _ => self.fs.open_read(&self.path, offset).await?,
        };
        let mut reader = reader;
        let mut buf = vec![0u8; len];
        let mut filled = 0;
        while filled < len {
            let n = reader.read(buf.get_mut(filled..).unwrap_or_default()).await?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        self.read_bytes
            .fetch_add(filled as u64, std::sync::atomic::Ordering::Relaxed);
        *slot = Some((offset + filled as u64, reader));
        Ok(buf)
    }
}

impl Window {
    fn check(&self) -> Result<()> {
        match &self.failed {
            Some((kind, message)) => Err(Error::new(*kind).detail(message.clone())),
            None if self.done => Err(failure("the upload is already closed")),
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.failed = Some((e.kind(), e.message().into_owned()));
        // Dropping the writer abandons the upload: nothing is stored.
        self.writer = None;
        self.ahead.clear();
        e
    }

    async fn write(&mut self, fs: &UserFs, path: &VPath, offset: u64, data: Vec<u8>) -> Result<()> {
        self.check()?;
        if self.lazy && self.next.is_none() {
            match fs.upload(path, Upload::Resume(offset), None).await {
                Ok(w) => {
                    self.writer = Some(w);
                    self.next = Some(offset);
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
        let next = self.next.unwrap_or(0);
        let end = offset.saturating_add(data.len() as u64);
        if offset < next {
            return Err(self.fail(failure(format!(
                "write at offset {offset} goes back before offset {next}, which this storage \
                 back-end ({}) has already received; it only takes writes in order",
                fs.backend_name()
            ))));
        }
        if end - next > WRITE_WINDOW {
            return Err(self.fail(failure(format!(
                "write at offset {offset} is more than {WRITE_WINDOW} bytes ahead of the data \
                 received so far ({next} bytes); this storage back-end ({}) takes writes in order",
                fs.backend_name()
            ))));
        }
        if offset > next {
            if self.ahead.insert(offset, data).is_some() {
                return Err(self.fail(failure(format!("two writes at offset {offset}"))));
            }
            return Ok(());
        }
        self.append(data).await?;
        while let Some(entry) = self.ahead.first_entry() {
            let next = self.next.unwrap_or(0);
            if *entry.key() > next {
                break;
            }
            let (start, data) = entry.remove_entry();
            if start < next {
                return Err(self.fail(failure(format!(
                    "writes overlap at offset {start}; this storage back-end takes each byte once"
                ))));
            }
            self.append(data).await?;
        }
        Ok(())
    }

    async fn append(&mut self, data: Vec<u8>) -> Result<()> {
        let len = data.len() as u64;
        let Some(writer) = self.writer.as_mut() else {
            return Err(failure("the upload is not open"));
        };
        if let Err(e) = writer.write_owned(data).await {
            return Err(self.fail(e));
        }
        self.next = Some(self.next.unwrap_or(0) + len);
        Ok(())
    }

    async fn commit(&mut self) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        self.check()?;
        self.done = true;
        if let Some(&first) = self.ahead.keys().next() {
            let next = self.next.unwrap_or(0);
            return Err(self.fail(failure(format!(
                "closed with data missing between offsets {next} and {first}; nothing was stored"
            ))));
        }
        match self.writer.take() {
            Some(w) => Box::new(w).commit().await.map(|_| true),
            None => Ok(false),
        }
    }
}

#[async_trait]
impl PositionalFile for StreamFile {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        if self.write.lock().await.writer.is_some() {
            return Err(failure(
                "this storage back-end cannot read a file while it is being written",
            ));
        }
        self.read_from(offset, len).await
    }

    async fn write_at(&self, offset: u64, data: Vec<u8>) -> Result<()> {
        self.write
            .lock()
            .await
            .write(&self.fs, &self.path, offset, data)
            .await
    }

    async fn metadata(&self) -> Result<Metadata> {
        let window = self.write.lock().await;
        if let (Some(next), false) = (window.next, window.done) {
            // Being written: what has been received so far.
            return Ok(Metadata {
                kind: EntryKind::File,
                size: next,
                modified: None,
                mode: None,
                nlink: 1,
                unique: None,
            });
        }
        drop(window);
        self.fs.stat(&self.path).await
    }

    async fn set_len(&self, _len: u64) -> Result<()> {
        Err(Error::new(ErrorKind::Unsupported).detail(format!(
            "the {} storage back-end cannot truncate or extend an open file",
            self.fs.backend_name()
        )))
    }

    async fn set_modified(&self, t: SystemTime) -> Result<()> {
        let writing = {
            let window = self.write.lock().await;
            window.writer.is_some() || window.lazy && !window.done
        };
        if writing {
            // Applied once the upload is stored (OpenSSH `put -p` sets it before CLOSE).
            *self
                .mtime
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(t);
            return Ok(());
        }
        self.fs.set_modified(&self.path, t).await
    }

    async fn set_mode(&self, _mode: u32) -> Result<()> {
        Err(Error::new(ErrorKind::Unsupported).detail(format!(
            "the {} storage back-end has no permission bits",
            self.fs.backend_name()
        )))
    }

    async fn sync(&self) -> Result<()> {
        Err(Error::new(ErrorKind::Unsupported).detail(format!(
            "the {} storage back-end stores a file when it is closed, not before",
            self.fs.backend_name()
        )))
    }

    async fn commit(&self) -> Result<()> {
        if self.read.lock().await.take().is_some() {
            let bytes = self.read_bytes.load(std::sync::atomic::Ordering::Relaxed);
            self.fs.downloaded(&self.path, bytes, self.opened, Ok(()));
        }
        let stored = self.write.lock().await.commit().await?;
        let mtime = self
            .mtime
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let (true, Some(t)) = (stored, mtime) {
            self.fs.set_modified(&self.path, t).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferry_vfs::{MemoryFs, Permissions, Protocol, Storage};

    use super::*;

    fn setup() -> (UserFs, VPath) {
        let fs = UserFs::new(Arc::new(MemoryFs::new()), Protocol::Sftp, "u", Permissions::all());
        (fs, VPath::parse(b"/f").expect("path"))
    }

    async fn open(fs: &UserFs, path: &VPath) -> StreamFile {
        let w = fs.upload(path, Upload::Replace, None).await.expect("upload");
        StreamFile::new(fs.clone(), path.clone(), Start::Open, Some(w), 0)
    }

    async fn content(fs: &UserFs, path: &VPath) -> Vec<u8> {
        let file = StreamFile::new(fs.clone(), path.clone(), Start::None, None, 0);
        file.read_at(0, 1 << 20).await.expect("read")
    }

    #[tokio::test]
    async fn out_of_order_writes_within_the_window_are_reassembled() {
        let (fs, path) = setup();
        let file = open(&fs, &path).await;
        let chunks: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 1000]).collect();
        for i in [1usize, 0, 3, 2, 9, 4, 5, 8, 6, 7] {
            file.write_at(i as u64 * 1000, chunks[i].clone())
                .await
                .expect("write");
        }
        assert!(fs.stat(&path).await.is_err(), "nothing visible before CLOSE");
        file.commit().await.expect("commit");
        assert_eq!(content(&fs, &path).await, chunks.concat());
    }

    #[tokio::test]
    async fn writes_outside_the_window_or_backwards_fail_clearly_and_store_nothing() {
        let (fs, path) = setup();
        let file = open(&fs, &path).await;
        let e = file.write_at(WRITE_WINDOW, vec![1]).await.expect_err("too far");
        assert!(e.message().contains("ahead"), "{}", e.message());
        assert!(file.commit().await.is_err());
        assert!(fs.stat(&path).await.is_err());

        let file = open(&fs, &path).await;
        file.write_at(0, vec![1; 10]).await.expect("write");
        let e = file.write_at(5, vec![2; 10]).await.expect_err("backwards");
        assert!(e.message().contains("in order"), "{}", e.message());
        assert!(file.commit().await.is_err());
        assert!(fs.stat(&path).await.is_err());
    }

    #[tokio::test]
    async fn close_with_a_gap_stores_nothing() {
        let (fs, path) = setup();
        let file = open(&fs, &path).await;
        file.write_at(0, vec![1; 10]).await.expect("write");
        file.write_at(20, vec![1; 10]).await.expect("buffered");
        let e = file.commit().await.expect_err("gap");
        assert!(
            e.message().contains("missing between offsets 10 and 20"),
            "{}",
            e.message()
        );
        assert!(fs.stat(&path).await.is_err());
    }

    #[tokio::test]
    async fn reads_at_any_offset_reopen_the_reader() {
        let (fs, path) = setup();
        let file = open(&fs, &path).await;
        file.write_at(0, (0..=255u8).collect()).await.expect("write");
        file.commit().await.expect("commit");
        let file = StreamFile::new(fs.clone(), path.clone(), Start::None, None, 0);
        assert_eq!(
            file.read_at(250, 10).await.expect("read"),
            vec![250, 251, 252, 253, 254, 255]
        );
        assert_eq!(file.read_at(0, 2).await.expect("read"), vec![0, 1]);
        assert_eq!(file.read_at(2, 2).await.expect("read"), vec![2, 3]);
        assert!(file.read_at(256, 2).await.expect("eof").is_empty());
        let storage: &dyn Storage = &MemoryFs::new();
        assert!(!storage.capabilities().random_write);
    }
}
