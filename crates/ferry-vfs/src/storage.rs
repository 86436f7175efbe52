//! The storage trait and the plain data types it exchanges.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::error::Result;
use crate::{EntryKind, StoredDigests, VPath};

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

/// What a back-end can do. The policy layer ([`UserFs`](crate::UserFs)) and the front ends look here
/// and choose an honest behaviour, or a clear refusal, for what it cannot; no method pretends.
///
/// `Default` is a back-end that can do none of the optional things (all `false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// [`Storage::rename`] of files, with and without replacing the target. Atomic on the local
    /// back-end; on object stores a copy then a delete (a failure between the two leaves both
    /// names, never neither), see docs/storage.md.
    pub rename: bool,
    /// [`Storage::rename`] of directories.
    pub rename_dir: bool,
    /// [`WriteMode::Append`].
    pub append: bool,
    /// [`Storage::open_file`]: reads and writes at any offset ([`PositionalFile`]). Without it SFTP
    /// reads through [`FileReader`]s and writes through one [`FileWriter`] in order.
    pub random_write: bool,
    /// [`Storage::set_modified`].
    pub set_modified: bool,
    /// [`Storage::set_mode`].
    pub set_mode: bool,
    /// Hard links (no operation yet: reserved so that front ends can advertise it once there is one).
    pub hard_links: bool,
    /// [`Storage::space`].
    pub space: bool,
    /// [`FileReader::zero_copy`] can return a host file (sendfile).
    pub zero_copy_read: bool,
    /// [`FileWriter::zero_copy`] can return a host file for zero-copy receiving (splice) of a new
    /// file's bytes, still committed atomically.
    pub zero_copy_write: bool,
    /// [`WriteMode::Resume`]: the file becomes its bytes before the offset plus the new bytes.
    pub resume: bool,
}

/// How [`Storage::open_write`] writes a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// New content for the path, visible under its name only when the writer is committed (it
    /// replaces an existing file atomically then). With `exclusive` the open fails with
    /// `AlreadyExists` if the path exists, and a second exclusive open of it fails while the first
    /// is in progress.
    New {
        /// Refuse to replace an existing file.
        exclusive: bool,
    },
    /// A resumed upload: the file keeps its bytes before `offset` and the written bytes follow; the
    /// file must exist and be at least `offset` long unless `offset` is 0. Only where
    /// [`Capabilities::resume`].
    Resume {
        /// Where the new bytes start.
        offset: u64,
    },
    /// Append to the file, creating it if missing. Only where [`Capabilities::append`].
    Append,
}

/// Options for [`Storage::open_write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// How the file is written.
    pub mode: WriteMode,
    /// Unix permission bits (`mode & 0o777`) for a new file, where the back-end has them; a replaced
    /// file keeps its own.
    pub unix_mode: Option<u32>,
}

impl WriteOptions {
    /// A new file replacing any existing one on commit.
    pub fn replace() -> Self {
        WriteOptions {
            mode: WriteMode::New { exclusive: false },
            unix_mode: None,
        }
    }

    /// Options with `mode` and no permission bits.
    pub fn with_mode(mode: WriteMode) -> Self {
        WriteOptions {
            mode,
            unix_mode: None,
        }
    }
}

/// A file store addressed by normalised virtual paths ([`VPath`], `/` is the store's root).
///
/// Back-ends refuse names they reserve (the local one: the upload temp prefix) with
/// [`ErrorKind::InvalidName`](crate::ErrorKind::InvalidName). Optional operations answer
/// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) unless [`Storage::capabilities`]
/// says otherwise; none has a default body.
#[async_trait]
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// What this back-end can do.
    fn capabilities(&self) -> Capabilities;

    /// A short fixed name for logs and metrics: `"local"`, `"memory"`, `"s3"` …
    fn backend_name(&self) -> &'static str;

    /// Metadata of `path`, following symlinks that stay inside the store.
    async fn metadata(&self, path: &VPath) -> Result<Metadata>;

    /// The checksums kept for the file `path` when it was stored, if this back-end keeps them and
    /// they still describe the file (same size, and on local the same modification time); `None`
    /// otherwise, and the caller computes them on demand. Never a value for other content.
    async fn stored_digests(&self, path: &VPath) -> Result<Option<StoredDigests>>;

    /// Starts listing the directory `path`; fails with `NotADirectory` for a file.
    async fn list(&self, path: &VPath) -> Result<Box<dyn DirStream>>;

    /// Opens the file `path` for reading from byte `offset`; fails with `IsADirectory` for a
    /// directory.
    async fn open_read(&self, path: &VPath, offset: u64) -> Result<Box<dyn FileReader>>;

    /// Opens the file `path` for writing; the only way to upload. Nothing appears under the
    /// final name (for [`WriteMode::New`]) until [`FileWriter::commit`]; dropping the writer or
    /// [`FileWriter::abort`] leaves the store as it was (for `Resume`/`Append`, back-ends that
    /// write in place keep what was written).
    async fn open_write(&self, path: &VPath, options: WriteOptions) -> Result<Box<dyn FileWriter>>;

    /// Creates the directory `path` (its parent must exist).
    async fn create_dir(&self, path: &VPath) -> Result<()>;

    /// Removes the empty directory `path`; fails with `DirectoryNotEmpty` otherwise.
    async fn remove_dir(&self, path: &VPath) -> Result<()>;

    /// Removes the file (or symlink) `path`; fails with `IsADirectory` for a directory.
    async fn remove_file(&self, path: &VPath) -> Result<()>;

    /// Renames `from` to `to`. With `replace` an existing file at `to` is replaced atomically;
    /// without it the rename fails with `AlreadyExists` if `to` exists, decided atomically by the
    /// back-end (no probe-then-rename race). Only where [`Capabilities::rename`] (and
    /// [`Capabilities::rename_dir`] for directories).
    async fn rename(&self, from: &VPath, to: &VPath, replace: bool) -> Result<()>;

    /// Sets the modification time of `path` (where [`Capabilities::set_modified`]).
    ///
    /// Metadata changes follow the rule opening does: refused (`PermissionDenied`) for a file with
    /// more than one name or anything but a regular file or directory, and never through a symlink
    /// that leaves the store.
    async fn set_modified(&self, path: &VPath, t: SystemTime) -> Result<()>;

    /// Sets the Unix permission bits (`mode & 0o777`) of `path`, under the rule of
    /// [`set_modified`](Storage::set_modified) (where [`Capabilities::set_mode`]).
    async fn set_mode(&self, path: &VPath, mode: u32) -> Result<()>;

    /// Space on the file system that holds the store (where [`Capabilities::space`]).
    async fn space(&self) -> Result<Space>;

    /// A new store jailed at the subdirectory `home`, created with its parents if `create`.
    async fn scoped(&self, home: &VPath, create: bool) -> Result<Arc<dyn Storage>>;

    /// Opens `path` for reads and writes at arbitrary offsets (see [`OpenMode`]); only where
    /// [`Capabilities::random_write`].
    async fn open_file(&self, path: &VPath, mode: OpenMode) -> Result<Box<dyn PositionalFile>>;
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

    /// The size of the whole file when it was opened, if the back-end learnt it while opening
    /// (front ends use it for the 150 reply without another round trip).
    fn size(&self) -> Option<u64>;

    /// The open host file, positioned at the offset given to
    /// [`open_read`](Storage::open_read), for back-ends with [`Capabilities::zero_copy_read`].
    ///
    /// Front ends use it for zero-copy sending (`sendfile`) and only ever read from it. Other
    /// back-ends return `None` (the default) and are read with [`read`](FileReader::read).
    fn zero_copy(&self) -> Option<&std::fs::File> {
        None
    }
}

/// A file being uploaded: the only upload path of the trait.
///
/// Dropping a writer without [`commit`](FileWriter::commit) behaves like
/// [`abort`](FileWriter::abort): nothing appears under the final name of a [`WriteMode::New`]
/// upload.
#[async_trait]
pub trait FileWriter: Send + std::fmt::Debug {
    /// Writes all of `buf`, taking the buffer by value so that a back-end can hand it to another
    /// thread (or an upload part) without copying it; returns a buffer for reuse (possibly empty).
    async fn write_owned(&mut self, buf: Vec<u8>) -> Result<Vec<u8>>;

    /// Finishes the upload: flushes and, for `New`, makes the data appear under its final name.
    /// Returns the number of bytes written through this writer.
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

    /// Abandons the upload: for `New` nothing appears; for `Resume`/`Append` a back-end writing in
    /// place keeps what was written so far so the client can resume.
    async fn abort(self: Box<Self>);

    /// For back-ends with [`Capabilities::zero_copy_write`]: a handle on the host file this upload
    /// writes (for `New`, the temporary file that [`commit`](FileWriter::commit) puts under the
    /// final name and [`abort`](FileWriter::abort) removes), sharing the writer's file position.
    ///
    /// A front end may write into it with zero-copy system calls (`splice`), only at its current
    /// position, and reports every such write with
    /// [`zero_copy_written`](FileWriter::zero_copy_written) before it calls anything else on the
    /// writer. `None` (the default, and wherever the bytes must pass through the writer: checksums
    /// kept at upload, bandwidth limits, resumed or appended uploads): use
    /// [`write_owned`](FileWriter::write_owned).
    fn zero_copy(&mut self) -> Option<std::fs::File> {
        None
    }

    /// Accounts `n` bytes written into the [`zero_copy`](FileWriter::zero_copy) file. Fails with
    /// `QuotaExceeded` when they take the user over their quota (the upload must then be
    /// aborted), and with `Unsupported` on a writer that gave no zero-copy file.
    fn zero_copy_written(&mut self, n: u64) -> Result<()> {
        let _ = n;
        Err(crate::ErrorKind::Unsupported.into())
    }
}
