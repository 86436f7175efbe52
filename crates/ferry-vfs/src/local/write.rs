//! Uploads for the local back-end: temp file + rename, append, resume at offset, unique names.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Seek, SeekFrom};
use std::os::unix::ffi::OsStringExt;
use std::sync::Arc;

use async_trait::async_trait;
use cap_std::fs::{Dir, File};
use rand::Rng;

use super::fast::{self, Medium};
use super::{blocking, check_regular, digests, write_options};
use crate::digest::Digester;
use crate::error::{Error, ErrorKind, Result};
use crate::path::HostPath;
use crate::storage::{FileWriter, WriteMode, WriteOptions};
use crate::TEMP_PREFIX;

/// How many random temp names to try before giving up.
const TEMP_ATTEMPTS: usize = 16;

/// Opens a writer for `vpath` with `options`.
pub(super) async fn open(
    root: Arc<Dir>,
    vpath: &HostPath<'_>,
    options: WriteOptions,
    keep_checksums: bool,
    medium: Medium,
) -> Result<LocalWriter> {
    let Some((parent_rel, name)) = vpath.split() else {
        return Err(ErrorKind::IsADirectory.into());
    };
    let rel = vpath.rel();
    if let (WriteMode::New { exclusive }, true) = (options.mode, medium.in_memory()) {
        // In memory and on the root's file system: created here, and committed here if small.
        if let Some(dir) = fast::open_cached(&root, &parent_rel, fast::Open::Dir, medium) {
            let parent = Dir::from_std_file(dir);
            let mut writer = open_new(parent, name, exclusive, options.unix_mode, keep_checksums)?;
            writer.inline = true;
            return Ok(writer);
        }
    }
    blocking(move || match options.mode {
        WriteMode::New { exclusive } => {
            let parent = root.open_dir(&parent_rel)?;
            open_new(parent, name, exclusive, options.unix_mode, keep_checksums)
        }
        WriteMode::Append => {
            let mut options = write_options();
            options.append(true).create(true);
            let file = root.open_with(&rel, &options)?;
            check_regular(&file.metadata()?)?;
            // Only the new bytes pass through this writer: whatever was kept no longer applies.
            digests::forget(&file);
            Ok(LocalWriter::new(file, None))
        }
        WriteMode::Resume { offset } => {
            super::check_offset(offset)?;
            let mut options = write_options();
            options.create(offset == 0);
            let file = root.open_with(&rel, &options)?;
            let md = file.metadata()?;
            check_regular(&md)?;
            if md.len() < offset {
                // Resuming past the end would leave a hole of zeros the client never sent.
                return Err(ErrorKind::OffsetOutOfRange.into());
            }
            digests::forget(&file);
            let mut file = file.into_std();
            // Resumed upload: drop whatever followed the restart point, then write from there.
            file.set_len(offset)?;
            file.seek(SeekFrom::Start(offset))?;
            Ok(LocalWriter::new(File::from_std(file), None))
        }
    })
    .await
}

/// Opens a `New` upload of `name` in `parent`: a temp file, renamed over `name` at commit.
fn open_new(
    parent: Dir,
    name: OsString,
    exclusive: bool,
    unix_mode: Option<u32>,
    keep_checksums: bool,
) -> Result<LocalWriter> {
    // What is there now, looked up once (a new name costs one failed look-up): a directory, or a
    // symlink to one, is not replaced by a file; a file passes its permissions on.
    let old = parent.symlink_metadata(&name).ok();
    if old.as_ref().is_some_and(|md| {
        md.is_dir() || (md.is_symlink() && parent.metadata(&name).is_ok_and(|md| md.is_dir()))
    }) {
        return Err(ErrorKind::IsADirectory.into());
    }
    let (temp, file) = reserve_and_create_temp(&parent, &name, exclusive)?;
    let inherited = !exclusive && old.is_some_and(|md| inherit_from(&md, &file));
    if let (Some(mode), false) = (unix_mode, inherited) {
        use cap_std::fs::{Permissions, PermissionsExt};
        let _ = file.set_permissions(Permissions::from_mode(mode & 0o777));
    }
    let mut writer = LocalWriter::new(
        file,
        Some(Pending {
            parent,
            temp,
            name,
            reserved: exclusive,
        }),
    );
    writer.digester = keep_checksums.then(Digester::new);
    Ok(writer)
}

/// A temp file waiting to be renamed over its final name.
pub(super) struct Pending {
    /// Handle on the target directory (the rename happens inside it).
    pub(super) parent: Dir,
    /// The temp file's name in `parent`.
    pub(super) temp: OsString,
    /// The final name in `parent`.
    pub(super) name: OsString,
    /// Whether `name` is an empty placeholder we created (exclusive) and must remove on abort.
    pub(super) reserved: bool,
}

impl Pending {
    /// Removes the temp file (and the placeholder); errors are ignored, nothing else can be done.
    pub(super) fn discard(self) {
        let _ = self.parent.remove_file(&self.temp);
        if self.reserved {
            let _ = self.parent.remove_file(&self.name);
        }
    }

    /// [`discard`](Pending::discard) on the blocking pool.
    async fn discard_in_background(self) {
        let _ = tokio::task::spawn_blocking(move || self.discard()).await;
    }
}

/// A file being uploaded.
///
/// Writes go to a plain `std::fs::File` on the blocking pool, one pool task per buffer, with the
/// buffer moved there and back ([`FileWriter::write_owned`]), not copied.
pub(super) struct LocalWriter {
    /// `None` while a write runs on the blocking pool, and after close.
    file: Option<std::fs::File>,
    written: u64,
    /// `Some` for `New` until committed or aborted.
    pending: Option<Pending>,
    /// Checksums of everything written, for a `New` upload (kept beside the file at commit).
    digester: Option<Digester>,
    /// The file is in memory (tmpfs): a small commit and an abort run where they are called.
    inline: bool,
}

impl fmt::Debug for LocalWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalWriter")
            .field("written", &self.written)
            .field("pending", &self.pending.is_some())
            .finish()
    }
}

impl LocalWriter {
    fn new(file: File, pending: Option<Pending>) -> LocalWriter {
        LocalWriter {
            file: Some(file.into_std()),
            written: 0,
            pending,
            digester: None,
            inline: false,
        }
    }

    /// Closes the file. Writes are synchronous on the blocking pool, so nothing is buffered here;
    /// a write that failed or was cancelled left no file behind, which is an error.
    async fn close(&mut self) -> Result<()> {
        match self.file.take() {
            Some(file) => {
                drop(file);
                Ok(())
            }
            None => Err(ErrorKind::Io.into()),
        }
    }
}

#[async_trait]
impl FileWriter for LocalWriter {
    async fn write_owned(&mut self, buf: Vec<u8>) -> Result<Vec<u8>> {
        use std::io::Write;
        let mut file = self.file.take().ok_or_else(|| Error::new(ErrorKind::Io))?;
        let mut digester = self.digester.take();
        // Hashed on the same blocking thread right after the write, from the same buffer.
        let (file, buf, digester, written) = blocking(move || {
            let written = file.write_all(&buf);
            if let (Some(d), Ok(())) = (digester.as_mut(), &written) {
                d.update(&buf);
            }
            Ok((file, buf, digester, written))
        })
        .await?;
        self.file = Some(file);
        self.digester = digester;
        written?;
        self.written += buf.len() as u64;
        Ok(buf)
    }

    async fn commit(self: Box<Self>) -> Result<u64> {
        self.commit_with(Vec::new()).await
    }

    async fn commit_with(mut self: Box<Self>, last: Vec<u8>) -> Result<u64> {
        let file = self.file.take();
        let pending = self.pending.take();
        let digester = self.digester.take();
        let written = self.written + last.len() as u64;
        if self.inline && last.len() <= fast::INLINE_WRITE_MAX {
            return finish(file, pending, digester, &last).map(|()| written);
        }
        // One trip to the blocking pool: the last write, close, and the rename into place.
        blocking(move || finish(file, pending, digester, &last).map(|()| written)).await
    }

    fn zero_copy(&mut self) -> Option<std::fs::File> {
        // Only a new file, whose bytes go to a temp file until commit; checksums need the bytes.
        if self.pending.is_none() || self.digester.is_some() {
            return None;
        }
        self.file.as_ref()?.try_clone().ok()
    }

    fn zero_copy_written(&mut self, n: u64) -> Result<()> {
        if self.pending.is_none() || self.file.is_none() {
            return Err(ErrorKind::Unsupported.into());
        }
        self.written += n;
        Ok(())
    }

    async fn abort(mut self: Box<Self>) {
        let _ = self.close().await;
        if let Some(pending) = self.pending.take() {
            if self.inline {
                pending.discard();
            } else {
                pending.discard_in_background().await;
            }
        }
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        // Dropped without commit or abort (e.g. the session task was cancelled): a quick
        // synchronous unlink is acceptable here.
        if let Some(pending) = self.pending.take() {
            self.file.take();
            pending.discard();
        }
    }
}

/// Ends an upload: writes `last`, keeps the checksums, closes the file and renames a temp file into
/// place; on failure the temp file is removed.
fn finish(
    file: Option<std::fs::File>,
    pending: Option<Pending>,
    digester: Option<Digester>,
    last: &[u8],
) -> Result<()> {
    use std::io::Write;
    let Some(mut file) = file else {
        // An earlier write failed or was cancelled.
        if let Some(pending) = pending {
            pending.discard();
        }
        return Err(ErrorKind::Io.into());
    };
    if let Err(e) = file.write_all(last) {
        drop(file);
        if let Some(pending) = pending {
            pending.discard();
        }
        return Err(e.into());
    }
    if let (Some(mut digester), Some(_)) = (digester, &pending) {
        digester.update(last);
        // On the temp file's own descriptor, before it appears under its name.
        digests::store(&file, &digester.finish());
    }
    drop(file);
    if let Some(pending) = pending {
        if let Err(e) = pending
            .parent
            .rename(&pending.temp, &pending.parent, &pending.name)
        {
            pending.discard();
            return Err(e.into());
        }
    }
    Ok(())
}

/// Creates a fresh `.ferry-upload.<hex>.tmp` file in `dir`.
pub(super) fn create_temp(dir: &Dir) -> Result<(OsString, File)> {
    for _ in 0..TEMP_ATTEMPTS {
        let mut name = TEMP_PREFIX.to_vec();
        name.extend_from_slice(format!("{:016x}.tmp", rand::rng().random::<u64>()).as_bytes());
        let name = OsString::from_vec(name);
        match create_new(dir, &name) {
            Ok(file) => return Ok((name, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ErrorKind::AlreadyExists.into())
}

/// Reserves `name` in `dir` by creating it empty; fails with `AlreadyExists` if it exists.
/// A temporary file in `dir` for an upload of `name`. With `exclusive`, the name is taken first (empty,
/// `create_new`), so a second exclusive upload or open of it fails at once rather than one of them
/// losing at commit; the placeholder goes again if the temporary file cannot be made.
pub(super) fn reserve_and_create_temp(dir: &Dir, name: &OsStr, exclusive: bool) -> Result<(OsString, File)> {
    if exclusive {
        reserve(dir, name)?;
    }
    create_temp(dir).inspect_err(|_| {
        if exclusive {
            let _ = dir.remove_file(name);
        }
    })
}

pub(super) fn reserve(dir: &Dir, name: &OsStr) -> Result<()> {
    create_new(dir, name).map(drop).map_err(Error::from)
}

/// Gives `temp`, about to replace `name`, the old file's permission bits and, where the server may
/// (as root), its owner and group, as overwriting the file in place would keep them. Only a regular
/// file with one name passes its facts on; returns whether it did.
pub(super) fn inherit(dir: &Dir, name: &OsStr, temp: &File) -> bool {
    dir.symlink_metadata(name)
        .is_ok_and(|old| inherit_from(&old, temp))
}

/// [`inherit`] from the old file's metadata (`symlink_metadata`), already looked up.
fn inherit_from(old: &cap_std::fs::Metadata, temp: &File) -> bool {
    use cap_std::fs::{MetadataExt, Permissions, PermissionsExt};
    if !old.is_file() || old.nlink() != 1 {
        return false;
    }
    // Owner first: chown clears set-id bits, and the mode below has none anyway. Refused (EPERM)
    // unless running as root or already the owner, which is fine either way.
    let _ = rustix::fs::fchown(
        temp,
        Some(rustix::fs::Uid::from_raw(old.uid())),
        Some(rustix::fs::Gid::from_raw(old.gid())),
    );
    temp.set_permissions(Permissions::from_mode(old.mode() & 0o777))
        .is_ok()
}

fn create_new(dir: &Dir, name: &OsStr) -> std::io::Result<File> {
    let mut options = write_options();
    options.create_new(true);
    dir.open_with(name, &options)
}
