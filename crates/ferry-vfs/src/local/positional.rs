//! Positional file access for the local back-end (SFTP): `pread`/`pwrite` on a shared handle, with
//! new content going to a temp file that is renamed (or, for exclusive creation, hard-linked) into
//! place on commit.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;
use cap_std::fs::PermissionsExt;
use cap_std::fs::{Dir, File, FileExt, Permissions};

use super::write::{create_temp, Pending};
use super::{blocking, check_regular, convert_metadata, write_options};
use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::storage::{Metadata, OpenMode, PositionalFile};

/// Opens `vpath` in `mode`.
pub(super) async fn open(root: Arc<Dir>, vpath: VPath, mode: OpenMode) -> Result<LocalFile> {
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
            Ok(LocalFile::new(file, None))
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
            let (temp, file) = create_temp(&parent)?;
            if let Some(mode) = mode {
                if let Err(e) = file.set_permissions(Permissions::from_mode(mode & 0o777)) {
                    let _ = parent.remove_file(&temp);
                    return Err(e.into());
                }
            }
            let file = if read {
                // The temp was created write-only; reopen it for reading and writing.
                let mut options = write_options();
                options.read(true).write(true);
                match parent.open_with(&temp, &options) {
                    Ok(rw) => rw,
                    Err(e) => {
                        let _ = parent.remove_file(&temp);
                        return Err(e.into());
                    }
                }
            } else {
                file
            };
            let pending = Pending {
                parent,
                temp,
                name,
                reserved: false,
            };
            Ok(LocalFile::new(file, Some((pending, exclusive))))
        }
    })
    .await
}

/// An open file shared by concurrent requests.
pub(super) struct LocalFile {
    file: Arc<File>,
    /// The temp file of a `Replace` open and whether it is exclusive, until committed.
    pending: Mutex<Option<(Pending, bool)>>,
}

impl fmt::Debug for LocalFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalFile")
            .field("replace", &self.lock().is_some())
            .finish_non_exhaustive()
    }
}

impl LocalFile {
    fn new(file: File, pending: Option<(Pending, bool)>) -> LocalFile {
        LocalFile {
            file: Arc::new(file),
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
            return Err(ErrorKind::QuotaExceeded.into());
        }
        self.with_file(move |file| Ok(file.write_all_at(&data, offset)?))
            .await
    }

    async fn metadata(&self) -> Result<Metadata> {
        self.with_file(|file| Ok(convert_metadata(&file.metadata()?)))
            .await
    }

    async fn set_len(&self, len: u64) -> Result<()> {
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
        let Some((pending, exclusive)) = self.lock().take() else {
            return Ok(());
        };
        blocking(move || {
            let (parent, temp, name) = (&pending.parent, &pending.temp, &pending.name);
            // link(2) refuses an existing target, so an exclusive upload never replaces a file
            // that appeared meanwhile; otherwise rename(2) replaces the target atomically.
            let placed = if exclusive {
                parent.hard_link(temp, parent, name)
            } else {
                parent.rename(temp, parent, name)
            };
            let linked = exclusive && placed.is_ok();
            let failed = placed.is_err();
            if linked || failed {
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
