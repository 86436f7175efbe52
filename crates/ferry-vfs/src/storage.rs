//! The storage trait and the plain data types it exchanges.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::error::Result;

/// What kind of object a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link that could not be followed (dangling, or leading outside the jail).
    Symlink,
    /// Anything else (device, FIFO, socket).
    Other,
}

/// Facts about one file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The kind of object.
    pub kind: EntryKind,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, if the back-end knows it.
    pub modified: Option<SystemTime>,
    /// Unix permission bits (`mode & 0o7777`), if the back-end has them.
    pub mode: Option<u32>,
    /// Number of hard links (1 where the back-end has no such notion).
    pub nlink: u64,
    /// A string that identifies the object within the back-end (e.g. device and inode), used for
    /// the MLSD `unique` fact.
    pub unique: Option<String>,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (a single component, raw bytes).
    pub name: Vec<u8>,
    /// The entry's metadata; symlinks that stay inside the jail are followed.
    pub metadata: Metadata,
}

/// How [`Storage::open_write`] treats the target file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Write a new file that replaces the target only when committed.
    Create,
    /// Append to the target, creating it if missing.
    Append,
    /// Truncate the existing target to this offset and write from there (resumed upload).
    /// The target must exist unless the offset is 0.
    At(u64),
    /// Write under a name derived from the requested one that does not exist yet.
    Unique,
}

/// A file store addressed by virtual absolute paths given as bytes (`b"/"` is the root).
///
/// Paths must already be normalised by the caller; implementations still refuse NUL bytes and
/// `.`/`..` components with [`ErrorKind::InvalidName`](crate::ErrorKind::InvalidName).
#[async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Metadata of `path`, following symlinks that stay inside the store.
    async fn metadata(&self, path: &[u8]) -> Result<Metadata>;

    /// Starts listing the directory `path`; fails with `NotADirectory` for a file.
    async fn list(&self, path: &[u8]) -> Result<Box<dyn DirStream>>;

    /// Opens the file `path` for reading from byte `offset`; fails with `IsADirectory` for a
    /// directory.
    async fn open_read(&self, path: &[u8], offset: u64) -> Result<Box<dyn FileReader>>;

    /// Opens the file `path` for writing in the given mode.
    async fn open_write(&self, path: &[u8], mode: WriteMode) -> Result<Box<dyn FileWriter>>;

    /// Creates the directory `path` (its parent must exist).
    async fn create_dir(&self, path: &[u8]) -> Result<()>;

    /// Removes the empty directory `path`; fails with `DirectoryNotEmpty` otherwise.
    async fn remove_dir(&self, path: &[u8]) -> Result<()>;

    /// Removes the file (or symlink) `path`; fails with `IsADirectory` for a directory.
    async fn remove_file(&self, path: &[u8]) -> Result<()>;

    /// Renames `from` to `to`, replacing a file at `to`.
    async fn rename(&self, from: &[u8], to: &[u8]) -> Result<()>;

    /// Sets the modification time of `path`.
    ///
    /// Metadata changes follow the rule opening does: refused (`PermissionDenied`) for a file with
    /// more than one name or anything but a regular file or directory, and never through a symlink
    /// that leaves the store.
    async fn set_modified(&self, path: &[u8], t: SystemTime) -> Result<()>;

    /// A new store jailed at the subdirectory `home`, created with its parents if `create`.
    async fn scoped(&self, home: &[u8], create: bool) -> Result<Arc<dyn Storage>>;

    // --- positional access (SFTP); the defaults answer `Unsupported` ---

    /// Opens `path` for reads and writes at arbitrary offsets (see [`OpenMode`]).
    async fn open_file(&self, path: &[u8], mode: OpenMode) -> Result<Box<dyn PositionalFile>> {
        let _ = (path, mode);
        Err(crate::ErrorKind::Unsupported.into())
    }

    /// Sets the Unix permission bits (`mode & 0o777`) of `path`, under the rule of
    /// [`set_modified`](Storage::set_modified).
    async fn set_mode(&self, path: &[u8], mode: u32) -> Result<()> {
        let _ = (path, mode);
        Err(crate::ErrorKind::Unsupported.into())
    }

    /// Space on the file system that holds the store.
    async fn space(&self) -> Result<Space> {
        Err(crate::ErrorKind::Unsupported.into())
    }
}

/// How [`Storage::open_file`] opens a file for positional access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read an existing file.
    Read,
    /// Write (and read, if `read`) an existing file in place; with `append` every write goes to
    /// the end of the file whatever its offset. Nothing is truncated.
    InPlace {
        /// Also allow reads.
        read: bool,
        /// Writes go to the end of the file.
        append: bool,
    },
    /// New content for `path`: written to a temporary file that replaces the target only when
    /// [`PositionalFile::commit`] is called (discarded otherwise). With `exclusive` the open fails
    /// with `AlreadyExists` if the target exists, and otherwise reserves the name at once (an empty
    /// file, removed again if the upload is discarded), so a second exclusive open fails too.
    /// Replacing an existing file keeps its permission bits (and, as root, its owner); `mode`
    /// applies to new files.
    Replace {
        /// Also allow reads (of what was written so far).
        read: bool,
        /// Refuse to replace an existing file.
        exclusive: bool,
        /// Unix permission bits for the new file (`mode & 0o777`), if not the default.
        mode: Option<u32>,
    },
}

/// Space on a file system, in the units `statvfs(3)` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Preferred block size.
    pub block_size: u64,
    /// Fundamental block size (the unit of the block counts).
    pub fragment_size: u64,
    /// Blocks in total.
    pub blocks: u64,
    /// Free blocks.
    pub blocks_free: u64,
    /// Free blocks available to unprivileged users.
    pub blocks_available: u64,
    /// Inodes in total.
    pub files: u64,
    /// Free inodes.
    pub files_free: u64,
    /// Free inodes available to unprivileged users.
    pub files_available: u64,
    /// Longest file name.
    pub name_max: u64,
}

/// A file opened for positional reads and writes; all methods take `&self` so that requests at
/// different offsets can run at once.
///
/// Dropping it without [`commit`](PositionalFile::commit) discards a [`OpenMode::Replace`] upload.
#[async_trait]
pub trait PositionalFile: Send + Sync + std::fmt::Debug {
    /// Reads up to `len` bytes at `offset`; an empty vector means end of file.
    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>>;

    /// Writes all of `data` at `offset` (at the end of the file in append mode).
    async fn write_at(&self, offset: u64, data: Vec<u8>) -> Result<()>;

    /// Metadata of the open file.
    async fn metadata(&self) -> Result<Metadata>;

    /// Truncates or extends the file to `len` bytes.
    async fn set_len(&self, len: u64) -> Result<()>;

    /// Sets the modification time.
    async fn set_modified(&self, t: SystemTime) -> Result<()>;

    /// Sets the Unix permission bits (`mode & 0o777`).
    async fn set_mode(&self, mode: u32) -> Result<()>;

    /// Flushes the file's data to stable storage.
    async fn sync(&self) -> Result<()>;

    /// Closes the file; a [`OpenMode::Replace`] upload now appears under its final name.
    /// Later calls do nothing.
    async fn commit(&self) -> Result<()>;
}

/// A directory listing in progress.
#[async_trait]
pub trait DirStream: Send + std::fmt::Debug {
    /// Up to `max` further entries (at least one while any remain); an empty vector means the end.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<DirEntry>>;
}

/// A file opened for reading.
#[async_trait]
pub trait FileReader: Send + std::fmt::Debug {
    /// Reads into `buf`, returning the number of bytes read; 0 means end of file.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize>;

    /// The open host file, positioned at the offset given to
    /// [`open_read`](Storage::open_read), for back-ends that have one (the local back-end).
    ///
    /// Front ends use it for zero-copy sending (`sendfile`) and to learn the size without another
    /// storage round trip; it is only ever read from. Other back-ends return `None` (the default)
    /// and are read with [`read`](FileReader::read).
    fn local_file(&self) -> Option<&std::fs::File> {
        None
    }
}

/// A file opened for writing.
///
/// Dropping a writer without [`commit`](FileWriter::commit) behaves like
/// [`abort`](FileWriter::abort).
#[async_trait]
pub trait FileWriter: Send + std::fmt::Debug {
    /// Writes all of `buf`.
    async fn write_all(&mut self, buf: &[u8]) -> Result<()>;

    /// Writes all of `buf`, taking the buffer by value so that a back-end can hand it to another
    /// thread without copying it; returns the buffer for reuse.
    ///
    /// The default calls [`write_all`](FileWriter::write_all).
    async fn write_owned(&mut self, buf: Vec<u8>) -> Result<Vec<u8>> {
        self.write_all(&buf).await?;
        Ok(buf)
    }

    /// Finishes the upload: flushes and, for `Create`/`Unique`, moves the data under its final
    /// name. Returns the number of bytes written through this writer.
    async fn commit(self: Box<Self>) -> Result<u64>;

    /// Writes `last` and then commits, like [`write_owned`](FileWriter::write_owned) followed by
    /// [`commit`](FileWriter::commit); a back-end may do both in one step (the local one makes one
    /// trip to the blocking pool instead of two, which matters for small files).
    async fn commit_with(mut self: Box<Self>, last: Vec<u8>) -> Result<u64> {
        if !last.is_empty() {
            self.write_owned(last).await?;
        }
        self.commit().await
    }

    /// Abandons the upload: for `Create`/`Unique` nothing appears; for `Append`/`At` what was
    /// written so far is kept so the client can resume.
    async fn abort(self: Box<Self>);

    /// The final file name (a single component); for `Unique` the name that was chosen.
    fn final_name(&self) -> &[u8];
}
