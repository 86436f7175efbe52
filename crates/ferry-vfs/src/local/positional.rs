//! Positional file access for the local back-end (SFTP): `pread`/`pwrite` on a shared handle, with
//! new content going to a temp file that is renamed into place on commit (for exclusive creation,
//! over the empty placeholder that reserved the name at open).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;
use cap_std::fs::PermissionsExt;
use cap_std::fs::{Dir, File, FileExt, Permissions};

use super::write::{inherit, reserve_and_create_temp, Pending};
use super::{blocking, check_regular, convert_metadata, digests, write_options};
use crate::digest::{Digester, Digests};
use crate::error::{Error, ErrorKind, Result};
use crate::path::HostPath;
use crate::storage::{Metadata, OpenMode, PositionalFile};

/// Opens `vpath` in `mode`.
pub(super) async fn open(
    root: Arc<Dir>,
    vpath: &HostPath<'_>,
    mode: OpenMode,
    keep_checksums: bool,
) -> Result<LocalFile> {
    let rel = vpath.rel();
    let split = vpath.split();
    blocking(move || match mode {
        OpenMode::Read | OpenMode::InPlace { .. } => {
            let mut options = write_options();
            match mode {
                OpenMode::InPlace { read, append } => {
                    options.read(read).write(true).append(append);
                }
                _ => {
                    options.read(true).write(false);
                }
            }
            let file = root.open_with(&rel, &options)?;
            check_regular(&file.metadata()?)?;
            let readable = match mode {
                OpenMode::InPlace { read, .. } => {
                    // Written in place: whatever checksums were kept no longer apply.
                    digests::forget(&file);
                    read
                }
                _ => true,
            };
            Ok(LocalFile::new(file, None, readable, false))
        }
        OpenMode::Replace {
            read,
            exclusive,
            mode,
        } => {
            let Some((parent_rel, name)) = split else {
                return Err(ErrorKind::IsADirectory.into());
            };
            let parent = root.open_dir(&parent_rel)?;
            match parent.symlink_metadata(&name) {
                Ok(md) if md.is_dir() => return Err(ErrorKind::IsADirectory.into()),
                Ok(_) if exclusive => return Err(ErrorKind::AlreadyExists.into()),
                _ => {}
            }
            // Exclusive (as with OpenSSH): a second exclusive open of the name fails at once.
            let (temp, file) = reserve_and_create_temp(&parent, &name, exclusive)?;
            let file = {
                drop(file);
                // The temp was created write-only; reopen it for reading and writing (reads of a
                // write-only open are refused by `LocalFile::read_at`; the checksums read back
                // writes that landed ahead of the hashed prefix).
                let mut options = write_options();
                options.read(true).write(true);
                match parent.open_with(&temp, &options) {
                    Ok(rw) => rw,
                    Err(e) => {
                        let _ = parent.remove_file(&temp);
                        if exclusive {
                            let _ = parent.remove_file(&name);
                        }
                        return Err(e.into());
                    }
                }
            };
            // An overwrite keeps the old file's mode (and owner); the client's mode is for new files.
            // Set after the reopen above, which a read-only mode would refuse.
            let inherited = !exclusive && inherit(&parent, &name, &file);
            if let (Some(mode), false) = (mode, inherited) {
                if let Err(e) = file.set_permissions(Permissions::from_mode(mode & 0o777)) {
                    let _ = parent.remove_file(&temp);
                    if exclusive {
                        let _ = parent.remove_file(&name);
                    }
                    return Err(e.into());
                }
            }
            let pending = Pending {
                parent,
                temp,
                name,
                reserved: exclusive,
            };
            Ok(LocalFile::new(
                file,
                Some((pending, exclusive)),
                read,
                keep_checksums,
            ))
        }
    })
    .await
}

/// An open file shared by concurrent requests.
pub(super) struct LocalFile {
    file: Arc<File>,
    /// The temp file of a `Replace` open and whether it is exclusive, until committed.
    pending: Mutex<Option<(Pending, bool)>>,
    /// Checksums of a `Replace` upload, while its writes make one run from offset 0.
    seq: Arc<Mutex<Option<InOrder>>>,
    /// Whether the client opened it for reading.
    readable: bool,
}

/// Most writes ahead of the hashed prefix remembered (SFTP clients pipeline up to 64, and the
/// requests run concurrently, so they land slightly out of order).
const MAX_AHEAD: usize = 256;

/// Checksums of a file written at offsets: bytes are hashed as soon as they extend the hashed
/// prefix; a write that lands ahead is remembered (its range only) and read back from the file
/// once the gap before it is filled. A write that overlaps what is hashed, a truncation, or too
/// many writes ahead end it: nothing is kept and checksums are computed on demand.
struct InOrder {
    digester: Digester,
    /// Bytes hashed: the prefix `0..next`.
    next: u64,
    /// Written ranges beyond `next`: start → end.
    ahead: BTreeMap<u64, u64>,
}

impl InOrder {
    /// Takes note of `data` written at `offset`; false when the checksums cannot be kept.
    fn wrote(&mut self, file: &File, offset: u64, data: &[u8]) -> bool {
        let end = offset + data.len() as u64;
        if data.is_empty() {
            return true;
        }
        if offset > self.next {
            let overlaps = self
                .ahead
                .range(..end)
                .next_back()
                .is_some_and(|(_, &e)| e > offset);
            if overlaps || self.ahead.len() >= MAX_AHEAD {
                return false;
            }
            self.ahead.insert(offset, end);
            return true;
        }
        if offset < self.next {
            return false;
        }
        self.digester.update(data);
        self.next = end;
        while let Some((&start, &stop)) = self.ahead.first_key_value() {
            if start > self.next {
                break;
            }
            if start < self.next {
                return false;
            }
            self.ahead.remove(&start);
            if !self.read_back(file, start, stop) {
                return false;
            }
            self.next = stop;
        }
        true
    }

    fn read_back(&mut self, file: &File, mut at: u64, stop: u64) -> bool {
        let mut buf = vec![0u8; usize::try_from(stop - at).unwrap_or(1 << 20).min(1 << 20)];
        while at < stop {
            let want = usize::try_from(stop - at).unwrap_or(buf.len()).min(buf.len());
            match file.read_at(&mut buf[..want], at) {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    self.digester.update(&buf[..n]);
                    at += n as u64;
                }
            }
        }
        true
    }

    /// The checksums, if the file is exactly the hashed run.
    fn finish(self, size: u64) -> Option<Digests> {
        (self.ahead.is_empty() && self.next == size).then(|| self.digester.finish())
    }
}

impl fmt::Debug for LocalFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalFile")
            .field("replace", &self.lock().is_some())
            .finish_non_exhaustive()
    }
}

impl LocalFile {
    fn new(file: File, pending: Option<(Pending, bool)>, readable: bool, keep_checksums: bool) -> LocalFile {
        LocalFile {
            readable,
            file: Arc::new(file),
            seq: Arc::new(Mutex::new(pending.as_ref().filter(|_| keep_checksums).map(
                |_| InOrder {
                    digester: Digester::new(),
                    next: 0,
                    ahead: BTreeMap::new(),
                },
            ))),
            pending: Mutex::new(pending),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Pending, bool)>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the file on the blocking pool.
    async fn with_file<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&File) -> Result<T> + Send + 'static,
    {
        let file = Arc::clone(&self.file);
        blocking(move || f(&file)).await
    }
}

#[async_trait]
impl PositionalFile for LocalFile {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        if !self.readable {
            return Err(Error::new(ErrorKind::PermissionDenied).detail("file not open for reading"));
        }
        if offset > i64::MAX as u64 {
            // No file reaches there: the end of file.
            return Ok(Vec::new());
        }
        self.with_file(move |file| {
            let mut buf = vec![0u8; len];
            let mut filled = 0;
            // Fill the buffer unless the file ends first (a short read is not the end of file).
            while filled < len {
                let n = file.read_at(&mut buf[filled..], offset + filled as u64)?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            buf.truncate(filled);
            Ok(buf)
        })
        .await
    }

    async fn write_at(&self, offset: u64, data: Vec<u8>) -> Result<()> {
        if offset
            .checked_add(data.len() as u64)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return Err(ErrorKind::OffsetOutOfRange.into());
        }
        let seq = Arc::clone(&self.seq);
        self.with_file(move |file| {
            file.write_all_at(&data, offset)?;
            let mut seq = seq.lock().unwrap_or_else(PoisonError::into_inner);
            if seq.as_mut().is_some_and(|s| !s.wrote(file, offset, &data)) {
                *seq = None;
            }
            Ok(())
        })
        .await
    }

    async fn metadata(&self) -> Result<Metadata> {
        self.with_file(|file| Ok(convert_metadata(&file.metadata()?)))
            .await
    }

    async fn set_len(&self, len: u64) -> Result<()> {
        // Simplest honest answer: a truncated or extended upload keeps no checksums.
        self.seq.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.with_file(move |file| Ok(file.set_len(len)?)).await
    }

    async fn set_modified(&self, t: SystemTime) -> Result<()> {
        self.with_file(move |file| {
            let std = file.try_clone()?.into_std();
            Ok(std.set_modified(t)?)
        })
        .await
    }

    async fn set_mode(&self, mode: u32) -> Result<()> {
        self.with_file(move |file| Ok(file.set_permissions(Permissions::from_mode(mode & 0o777))?))
            .await
    }

    async fn sync(&self) -> Result<()> {
        self.with_file(|file| Ok(file.sync_all()?)).await
    }

    async fn commit(&self) -> Result<()> {
        let Some((pending, _exclusive)) = self.lock().take() else {
            return Ok(());
        };
        let seq = self.seq.lock().unwrap_or_else(PoisonError::into_inner).take();
        let file = Arc::clone(&self.file);
        blocking(move || {
            if let (Some(seq), Ok(md)) = (seq, file.metadata()) {
                if let (Some(d), Ok(fd)) = (seq.finish(md.len()), file.try_clone()) {
                    digests::store(&fd.into_std(), &d);
                }
            }
            let (parent, temp, name) = (&pending.parent, &pending.temp, &pending.name);
            // rename(2) replaces the target atomically: for an exclusive upload that is the empty
            // placeholder reserved at open.
            let placed = parent.rename(temp, parent, name);
            if placed.is_err() {
                pending.discard();
            }
            placed.map_err(Error::from)
        })
        .await
    }
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        if let Some((pending, _)) = self.lock().take() {
            pending.discard();
        }
    }
}
