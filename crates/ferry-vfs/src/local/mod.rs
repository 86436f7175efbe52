//! The local file system back-end, jailed by a `cap_std` directory handle.

mod digests;
mod fast;
mod homes;
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
use crate::path::HostPath;
use crate::storage::{
    Capabilities, DirStream, FileReader, FileWriter, Metadata, OpenMode, PositionalFile, Space, Storage,
    WriteOptions,
};
use crate::{EntryKind, StoredDigests, VPath};

/// A [`Storage`] on the local file system, confined to one root directory.
///
/// Every operation resolves paths through a `cap_std::fs::Dir` handle opened on the root, so
/// symlinks and `..` can never lead outside it (escapes fail with `PermissionDenied`); blocking
/// calls run on Tokio's blocking pool, except short ones known not to wait for a device (opening a
/// file whose path the kernel has cached; small uploads on tmpfs), which run where they are called.
/// [`Storage::scoped`] homes share one handle among the sessions that hold the same home, so an idle
/// session costs no descriptor of its own here.
///
/// Uploads in [`WriteMode::New`](crate::WriteMode::New) are written to a temporary file in the
/// target directory (named with [`TEMP_PREFIX`](crate::TEMP_PREFIX)) and renamed into place on
/// commit. An exclusive one first reserves the name by creating it empty with `create_new`, so a
/// second exclusive upload of it fails at once and nothing existing is overwritten; the data
/// replaces the empty placeholder on commit and the placeholder is removed on abort. `Resume` and
/// `Append` write in place.
///
/// Renames without replacing use `renameat2(RENAME_NOREPLACE)`; where the file system lacks it, a
/// file is hard-linked under the new name (which fails if it exists) and the old name removed.
#[derive(Clone)]
pub struct LocalFs {
    root: Arc<Dir>,
    /// Handles on the homes below `root` that sessions hold, shared by the sessions of one home. A
    /// home's own storage (one per session) has none: it is rarely scoped again, and an empty table
    /// in every idle session cost about 100 bytes each.
    homes: Option<Arc<homes::Homes>>,
    /// Whether uploads compute SHA-256, MD5 and CRC-32 and keep them beside the file.
    keep_checksums: bool,
    /// What the root is on: which short operations skip the blocking pool (see `fast`).
    medium: fast::Medium,
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
        Ok(LocalFs {
            medium: fast::Medium::of(&dir),
            root: Arc::new(dir),
            homes: Some(Arc::default()),
            keep_checksums: true,
        })
    }

    /// Whether uploads compute their SHA-256, MD5 and CRC-32 while writing and keep them in an
    /// extended attribute (on by default). Off, `HASH` and `check-file` compute checksums on
    /// demand; the CPU an upload costs is then the copy alone (the three digests together run at
    /// a few hundred MB/s per core, well below what a local disk and network take).
    pub fn keep_checksums(mut self, on: bool) -> LocalFs {
        self.keep_checksums = on;
        self
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
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            rename: true,
            rename_dir: true,
            append: true,
            random_write: true,
            set_modified: true,
            set_mode: true,
            hard_links: false,
            space: true,
            zero_copy_read: true,
            zero_copy_write: true,
            resume: true,
        }
    }

    fn backend_name(&self) -> &'static str {
        "local"
    }

    async fn metadata(&self, path: &VPath) -> Result<Metadata> {
        let rel = HostPath::check(path)?.rel();
        // Follows a last symlink (inside the jail), as `Dir::metadata` does. A new upload's
        // target is usually missing, which the cache can tell too.
        match fast::lookup_cached(&self.root, &rel, fast::Open::Inspect, self.medium) {
            fast::Cached::Open(file) => {
                if let Ok(md) = cap_std::fs::Metadata::from_file(&file) {
                    return Ok(convert_metadata(&md));
                }
            }
            fast::Cached::NotFound => {
                return Err(std::io::Error::from_raw_os_error(libc::ENOENT).into());
            }
            fast::Cached::Miss => {}
        }
        self.run(move |root| Ok(convert_metadata(&root.metadata(rel)?)))
            .await
    }

    async fn stored_digests(&self, path: &VPath) -> Result<Option<StoredDigests>> {
        let rel = HostPath::check(path)?.rel();
        self.run(move |root| {
            let mut options = OpenOptions::new();
            options.read(true).nonblock(true);
            let file = root.open_with(rel, &options)?;
            check_regular(&file.metadata()?)?;
            Ok(digests::load(&file.into_std()))
        })
        .await
    }

    async fn list(&self, path: &VPath) -> Result<Box<dyn DirStream>> {
        let rel = HostPath::check(path)?.rel();
        let stream = list::LocalDirStream::open(Arc::clone(&self.root), rel).await?;
        Ok(Box::new(stream))
    }

    async fn open_read(&self, path: &VPath, offset: u64) -> Result<Box<dyn FileReader>> {
        let rel = HostPath::check(path)?.rel();
        check_offset(offset)?;
        if let Some(file) = fast::open_cached(&self.root, &rel, fast::Open::Read, self.medium) {
            let (file, size) = ready_to_read(cap_std::fs::File::from_std(file), offset)?;
            return Ok(Box::new(LocalReader {
                file: Arc::new(file),
                size,
                buf: Vec::new(),
                // On the root's file system (the cached open does not cross mounts).
                inline: self.medium.in_memory(),
            }));
        }
        let file = self
            .run(move |root| {
                // Non-blocking open so a FIFO planted in the tree cannot hang a blocking thread.
                let mut options = OpenOptions::new();
                options.read(true).nonblock(true);
                ready_to_read(root.open_with(rel, &options)?, offset)
            })
            .await?;
        Ok(Box::new(LocalReader {
            file: Arc::new(file.0),
            size: file.1,
            buf: Vec::new(),
            // Possibly on another file system mounted below the root.
            inline: false,
        }))
    }

    async fn open_write(&self, path: &VPath, options: WriteOptions) -> Result<Box<dyn FileWriter>> {
        let vpath = HostPath::check(path)?;
        let writer = write::open(
            Arc::clone(&self.root),
            &vpath,
            options,
            self.keep_checksums,
            self.medium,
        )
        .await?;
        Ok(Box::new(writer))
    }

    async fn create_dir(&self, path: &VPath) -> Result<()> {
        let vpath = HostPath::check(path)?;
        if vpath.is_root() {
            return Err(ErrorKind::AlreadyExists.into());
        }
        let rel = vpath.rel();
        self.run(move |root| Ok(root.create_dir(rel)?)).await
    }

    async fn remove_dir(&self, path: &VPath) -> Result<()> {
        let vpath = HostPath::check(path)?;
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

    async fn remove_file(&self, path: &VPath) -> Result<()> {
        let vpath = HostPath::check(path)?;
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

    async fn rename(&self, from: &VPath, to: &VPath, replace: bool) -> Result<()> {
        let (from, to) = (HostPath::check(from)?, HostPath::check(to)?);
        let (Some((from_parent, from_name)), Some((to_parent, to_name))) = (from.split(), to.split()) else {
            return Err(ErrorKind::PermissionDenied.into());
        };
        let (from, to) = (from.rel(), to.rel());
        if to != from && to.starts_with(&from) {
            // Also the kernel's EINVAL, but that is mapped to "invalid name"; say what it is.
            return Err(ErrorKind::MoveIntoItself.into());
        }
        self.run(move |root| {
            if replace {
                return match root.rename(from, root, to) {
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(ErrorKind::MoveIntoItself.into()),
                    result => Ok(result?),
                };
            }
            // Both parents by handle (inside the jail); the last components are not followed.
            let (src, dst) = (root.open_dir(&from_parent)?, root.open_dir(&to_parent)?);
            rename_noreplace(&src, &from_name, &dst, &to_name)
        })
        .await
    }

    async fn set_modified(&self, path: &VPath, t: SystemTime) -> Result<()> {
        let rel = HostPath::check(path)?.rel();
        self.run(move |root| meta::change(root, &rel, meta::Change::Modified(t)))
            .await
    }

    async fn scoped(&self, home: &VPath, create: bool) -> Result<Arc<dyn Storage>> {
        let rel = HostPath::check(home)?.rel();
        let homes = self.homes.clone();
        let (dir, medium) = self
            .run(move |root| {
                let dir = match &homes {
                    Some(homes) => homes.open(root, &rel, create)?,
                    None => homes::Homes::open_unshared(root, &rel, create)?,
                };
                // The home may be a mount of its own.
                let medium = fast::Medium::of(&dir);
                Ok((dir, medium))
            })
            .await?;
        Ok(Arc::new(LocalFs {
            root: dir,
            homes: None,
            keep_checksums: self.keep_checksums,
            medium,
        }))
    }

    async fn open_file(&self, path: &VPath, mode: OpenMode) -> Result<Box<dyn PositionalFile>> {
        let vpath = HostPath::check(path)?;
        let file = positional::open(Arc::clone(&self.root), &vpath, mode, self.keep_checksums).await?;
        Ok(Box::new(file))
    }

    async fn set_mode(&self, path: &VPath, mode: u32) -> Result<()> {
        let rel = HostPath::check(path)?.rel();
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
/// ([`FileReader::zero_copy`]); [`read`](FileReader::read) runs on the blocking pool, into a
/// buffer kept across calls, or in place for a file in memory (tmpfs).
#[derive(Debug)]
struct LocalReader {
    file: Arc<std::fs::File>,
    size: u64,
    buf: Vec<u8>,
    /// The file is in memory: reads are copies that never wait, done where they are asked for.
    inline: bool,
}

#[async_trait]
impl FileReader for LocalReader {
    async fn read(&mut self, out: &mut [u8]) -> Result<usize> {
        use std::io::Read;
        if self.inline {
            return Ok((&*self.file).read(out)?);
        }
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

    fn size(&self) -> Option<u64> {
        Some(self.size)
    }

    fn zero_copy(&self) -> Option<&std::fs::File> {
        Some(&self.file)
    }
}

/// Renames `from_name` in `src` to `to_name` in `dst` unless `to_name` exists, atomically:
/// `renameat2(RENAME_NOREPLACE)`, or for a file on a file system without it a hard link under the
/// new name (refused if it exists) and the removal of the old name.
fn rename_noreplace(
    src: &Dir,
    from_name: &std::ffi::OsStr,
    dst: &Dir,
    to_name: &std::ffi::OsStr,
) -> Result<()> {
    use rustix::fs::{AtFlags, RenameFlags};
    let unsupported = |e: rustix::io::Errno| e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS;
    match rustix::fs::renameat_with(src, from_name, dst, to_name, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if unsupported(e) && !src.symlink_metadata(from_name)?.is_dir() => {
            rustix::fs::linkat(src, from_name, dst, to_name, AtFlags::empty())
                .map_err(std::io::Error::from)?;
            rustix::fs::unlinkat(src, from_name, AtFlags::empty()).map_err(std::io::Error::from)?;
            Ok(())
        }
        Err(e) if e == rustix::io::Errno::INVAL => Err(ErrorKind::MoveIntoItself.into()),
        Err(e) => Err(std::io::Error::from(e).into()),
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

/// Checks that `file` may be read (see [`check_regular`]) and moves to `offset`; returns it with its
/// size.
fn ready_to_read(file: cap_std::fs::File, offset: u64) -> Result<(std::fs::File, u64)> {
    let md = file.metadata()?;
    check_regular(&md)?;
    let mut file = file.into_std();
    // A file just opened is at its start.
    if offset != 0 {
        file.seek(SeekFrom::Start(offset))?;
    }
    Ok((file, md.len()))
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
