//! The local file system back-end, jailed by a `cap_std` directory handle.

mod list;
mod meta;
mod positional;
mod sweep;
mod write;

pub use sweep::Swept;

use std::fmt;
use std::io::{Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use cap_fs_ext::OpenOptionsSyncExt;
use cap_std::ambient_authority;
use cap_std::fs::{Dir, MetadataExt, OpenOptions};

use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::storage::{
    DirStream, EntryKind, FileReader, FileWriter, Metadata, OpenMode, PositionalFile, Space, Storage,
    WriteMode,
};

/// A [`Storage`] on the local file system, confined to one root directory.
///
/// Every operation resolves paths through a `cap_std::fs::Dir` handle opened on the root, so
/// symlinks and `..` can never lead outside it (escapes fail with `PermissionDenied`); blocking
/// calls run on Tokio's blocking pool.
///
/// Uploads in [`WriteMode::Create`] and [`WriteMode::Unique`] are written to a temporary file in
/// the target directory (named with [`TEMP_PREFIX`](crate::TEMP_PREFIX)) and renamed into place on
/// commit. `Unique` first reserves the chosen name by creating it empty with `create_new` (trying
/// `name`, `name.1` … `name.99`, then random suffixes), so concurrent uploads never pick the same
/// name and nothing existing is overwritten; the data replaces the empty placeholder on commit and
/// the placeholder is removed on abort.
#[derive(Clone)]
pub struct LocalFs {
    root: Arc<Dir>,
}

impl fmt::Debug for LocalFs {
    // The host path is deliberately not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalFs").finish_non_exhaustive()
    }
}

impl LocalFs {
    /// Opens (creating it and its parents if missing) the host directory `root` as a jail.
    pub fn open(root: &Path) -> std::io::Result<LocalFs> {
        std::fs::create_dir_all(root)?;
        let dir = Dir::open_ambient_dir(root, ambient_authority())?;
        Ok(LocalFs { root: Arc::new(dir) })
    }

    /// Runs a blocking closure against the root handle on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Dir) -> Result<T> + Send + 'static,
    {
        let root = Arc::clone(&self.root);
        blocking(move || f(&root)).await
    }
}

#[async_trait]
impl Storage for LocalFs {
    async fn metadata(&self, path: &[u8]) -> Result<Metadata> {
        let rel = VPath::parse(path)?.rel();
        self.run(move |root| Ok(convert_metadata(&root.metadata(rel)?)))
            .await
    }

    async fn list(&self, path: &[u8]) -> Result<Box<dyn DirStream>> {
        let rel = VPath::parse(path)?.rel();
        let stream = list::LocalDirStream::open(Arc::clone(&self.root), rel).await?;
        Ok(Box::new(stream))
    }

    async fn open_read(&self, path: &[u8], offset: u64) -> Result<Box<dyn FileReader>> {
        let rel = VPath::parse(path)?.rel();
        check_offset(offset)?;
        let file = self
            .run(move |root| {
                // Non-blocking open so a FIFO planted in the tree cannot hang a blocking thread.
                let mut options = OpenOptions::new();
                options.read(true).nonblock(true);
                let file = root.open_with(rel, &options)?;
                check_regular(&file.metadata()?)?;
                let mut file = file.into_std();
                file.seek(SeekFrom::Start(offset))?;
                Ok(file)
            })
            .await?;
        Ok(Box::new(LocalReader {
            file: Arc::new(file),
            buf: Vec::new(),
        }))
    }

    async fn open_write(&self, path: &[u8], mode: WriteMode) -> Result<Box<dyn FileWriter>> {
        let vpath = VPath::parse(path)?;
        let writer = write::open(Arc::clone(&self.root), vpath, mode).await?;
        Ok(Box::new(writer))
    }

    async fn create_dir(&self, path: &[u8]) -> Result<()> {
        let vpath = VPath::parse(path)?;
        if vpath.is_root() {
            return Err(ErrorKind::AlreadyExists.into());
        }
        let rel = vpath.rel();
        self.run(move |root| Ok(root.create_dir(rel)?)).await
    }

    async fn remove_dir(&self, path: &[u8]) -> Result<()> {
        let vpath = VPath::parse(path)?;
        if vpath.is_root() {
            return Err(ErrorKind::PermissionDenied.into());
        }
        let rel = vpath.rel();
        self.run(move |root| {
            if !root.symlink_metadata(&rel)?.is_dir() {
                return Err(ErrorKind::NotADirectory.into());
            }
            Ok(root.remove_dir(rel)?)
        })
        .await
    }

    async fn remove_file(&self, path: &[u8]) -> Result<()> {
        let vpath = VPath::parse(path)?;
        if vpath.is_root() {
            return Err(ErrorKind::IsADirectory.into());
        }
        let rel = vpath.rel();
        self.run(move |root| {
            if root.symlink_metadata(&rel)?.is_dir() {
                return Err(ErrorKind::IsADirectory.into());
            }
            Ok(root.remove_file(rel)?)
        })
        .await
    }

    async fn rename(&self, from: &[u8], to: &[u8]) -> Result<()> {
        let (from, to) = (VPath::parse(from)?, VPath::parse(to)?);
        if from.is_root() || to.is_root() {
            return Err(ErrorKind::PermissionDenied.into());
        }
        let (from, to) = (from.rel(), to.rel());
        if to != from && to.starts_with(&from) {
            // Also the kernel's EINVAL, but that is mapped to "invalid name"; say what it is.
            return Err(ErrorKind::MoveIntoItself.into());
        }
        self.run(move |root| match root.rename(from, root, to) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(ErrorKind::MoveIntoItself.into()),
            result => Ok(result?),
        })
        .await
    }

    async fn set_modified(&self, path: &[u8], t: SystemTime) -> Result<()> {
        let rel = VPath::parse(path)?.rel();
        self.run(move |root| meta::change(root, &rel, meta::Change::Modified(t)))
            .await
    }

    async fn scoped(&self, home: &[u8], create: bool) -> Result<Arc<dyn Storage>> {
        let rel = VPath::parse(home)?.rel();
        let dir = self
            .run(move |root| {
                if create {
                    root.create_dir_all(&rel)?;
                }
                Ok(root.open_dir(rel)?)
            })
            .await?;
        Ok(Arc::new(LocalFs { root: Arc::new(dir) }))
    }

    async fn open_file(&self, path: &[u8], mode: OpenMode) -> Result<Box<dyn PositionalFile>> {
        let vpath = VPath::parse(path)?;
        let file = positional::open(Arc::clone(&self.root), vpath, mode).await?;
        Ok(Box::new(file))
    }

    async fn set_mode(&self, path: &[u8], mode: u32) -> Result<()> {
        let rel = VPath::parse(path)?.rel();
        self.run(move |root| meta::change(root, &rel, meta::Change::Mode(mode)))
            .await
    }

    async fn space(&self) -> Result<Space> {
        self.run(|root| {
            let s = rustix::fs::fstatvfs(root).map_err(std::io::Error::from)?;
            Ok(Space {
                block_size: s.f_bsize,
                fragment_size: s.f_frsize,
                blocks: s.f_blocks,
                blocks_free: s.f_bfree,
                blocks_available: s.f_bavail,
                files: s.f_files,
                files_free: s.f_ffree,
                files_available: s.f_favail,
                name_max: s.f_namemax,
            })
        })
        .await
    }
}

/// A file being read.
///
/// Holds a plain `std::fs::File` so that front ends can send it with `sendfile`
/// ([`FileReader::local_file`]); [`read`](FileReader::read) runs on the blocking pool, into a
/// buffer kept across calls.
#[derive(Debug)]
struct LocalReader {
    file: Arc<std::fs::File>,
    buf: Vec<u8>,
}

#[async_trait]
impl FileReader for LocalReader {
    async fn read(&mut self, out: &mut [u8]) -> Result<usize> {
        use std::io::Read;
        let file = Arc::clone(&self.file);
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(out.len(), 0);
        let (buf, n) = blocking(move || {
            let n = (&*file).read(&mut buf);
            Ok((buf, n))
        })
        .await?;
        let n = n?;
        let (Some(dst), Some(src)) = (out.get_mut(..n), buf.get(..n)) else {
            return Err(ErrorKind::Io.into());
        };
        dst.copy_from_slice(src);
        self.buf = buf;
        Ok(n)
    }

    fn local_file(&self) -> Option<&std::fs::File> {
        Some(&self.file)
    }
}

/// Runs `f` on the blocking pool, mapping a failed task to `ErrorKind::Io`.
async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(ErrorKind::Io)),
    }
}

/// Refuses anything but a regular file for reading or writing data.
fn check_regular(md: &cap_std::fs::Metadata) -> Result<()> {
    if md.is_dir() {
        Err(ErrorKind::IsADirectory.into())
    } else if !md.is_file() {
        Err(ErrorKind::PermissionDenied.into())
    } else if md.nlink() > 1 {
        // A hard link is the file itself, wherever its other names are: one planted in the root by
        // someone with host access could share a file from outside it. Such files are not opened.
        Err(ErrorKind::PermissionDenied.into())
    } else {
        Ok(())
    }
}

/// Refuses a file offset no file can reach (`off_t` is signed).
fn check_offset(offset: u64) -> Result<()> {
    if offset > i64::MAX as u64 {
        Err(ErrorKind::OffsetOutOfRange.into())
    } else {
        Ok(())
    }
}

/// Options for opening an existing-or-new file for writing without blocking on FIFOs.
fn write_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).nonblock(true);
    options
}

/// Converts cap-std metadata to ours.
fn convert_metadata(md: &cap_std::fs::Metadata) -> Metadata {
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Other
    };
    Metadata {
        kind,
        size: md.len(),
        modified: md.modified().ok().map(cap_std::time::SystemTime::into_std),
        mode: Some(md.mode() & 0o7777),
        nlink: md.nlink(),
        unique: Some(format!("{:x}.{:x}", md.dev(), md.ino())),
    }
}

/// The bytes of a single-component name.
fn name_bytes(name: &std::ffi::OsStr) -> Vec<u8> {
    name.as_bytes().to_vec()
}
