//! Short operations on the calling thread, without a round trip to the blocking pool.
//!
//! Every local operation used to run on Tokio's blocking pool: a small file cost one to three hand-overs
//! between threads (each a wake-up and a context switch on both sides), more than the work itself. Some
//! operations can be known not to wait for a device, and those run where they are called:
//!
//! - **Opening and inspecting a file whose path the kernel has cached** ([`open_cached`]):
//!   `openat2` with `RESOLVE_CACHED` fails with `EAGAIN` instead of reading a directory from disk, so
//!   it never waits; `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` keep it inside the jail exactly like
//!   `cap-std`'s own resolution, and `RESOLVE_NO_XDEV` keeps it on the root's file system (whose kind
//!   was checked, see [`Medium`]). `fstat` of an open local file is a memory read. Any failure falls
//!   back to the ordinary path on the pool, which also gives the usual error.
//! - **Everything small on a file system in memory** (tmpfs, ramfs: [`Medium::Memory`]): lookups
//!   (also of names not seen yet), creating, reading, writing a small last piece, renaming and removing
//!   touch no device at all, so a small upload is opened and committed, and a small file read, on the
//!   calling thread (after a same-file-system lookup of its directory). On disk file systems those
//!   steps can wait for the journal or for write-back, and stay on the pool.
//!
//! Network and FUSE file systems ([`Medium::Other`]) never take a fast path: their lookups and opens
//! may wait for a server.

use std::fs::File;
use std::path::Path;

use cap_std::fs::Dir;

/// What the jail's root directory lives on, which decides the fast paths allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Medium {
    /// tmpfs or ramfs: no operation waits for a device.
    Memory,
    /// A local disk file system (ext2/3/4, XFS, Btrfs, F2FS): cached lookups and `fstat` do not wait.
    Disk,
    /// Anything else (network, FUSE, unknown): no fast path.
    Other,
}

impl Medium {
    /// The kind of file system `dir` is on.
    pub(super) fn of(dir: &Dir) -> Medium {
        imp::medium(dir)
    }

    /// Whether small creations, writes, renames and removals may run on the calling thread.
    pub(super) fn in_memory(self) -> bool {
        self == Medium::Memory
    }
}

/// Largest last piece of an upload written on the calling thread at commit (memory file systems);
/// larger ones are copied on the pool.
pub(super) const INLINE_WRITE_MAX: usize = 256 * 1024;

/// How a cached open opens its target.
#[derive(Debug, Clone, Copy)]
pub(super) enum Open {
    /// A file for reading, non-blocking (a FIFO cannot hang the thread).
    Read,
    /// A directory, for operations inside it.
    Dir,
    /// Whatever the path names, only to `fstat` it (`O_PATH`).
    Inspect,
}

/// Opens `rel` beneath `root` (on `medium`, the root's file system) where that cannot wait for a
/// device — on a disk, only if the kernel has every component cached — and the path stays on the
/// root's file system and inside the jail; `None` otherwise (the caller takes the ordinary path).
pub(super) fn open_cached(root: &Dir, rel: &Path, how: Open, medium: Medium) -> Option<File> {
    match lookup_cached(root, rel, how, medium) {
        Cached::Open(file) => Some(file),
        Cached::NotFound | Cached::Miss => None,
    }
}

/// What a cached open found.
#[derive(Debug)]
pub(super) enum Cached {
    Open(File),
    /// The kernel knows the name does not exist: every component before it was resolved from the
    /// cache, inside the jail, and the last one is known missing (a negative cache entry).
    NotFound,
    /// Not answerable from the cache (or not tried: [`Medium::Other`]), outside the jail or on
    /// another file system, or any other error: ask the ordinary path.
    Miss,
}

/// Like [`open_cached`], but also tells a name known not to exist.
pub(super) fn lookup_cached(root: &Dir, rel: &Path, how: Open, medium: Medium) -> Cached {
    match medium {
        // In memory every lookup is a memory operation, even of a name not seen yet.
        Medium::Memory => imp::open_beneath(root, rel, how, false),
        Medium::Disk => imp::open_beneath(root, rel, how, true),
        Medium::Other => Cached::Miss,
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::fs::File;
    use std::path::Path;

    use cap_std::fs::Dir;
    use rustix::fs::{Mode, OFlags, ResolveFlags};

    use super::{Cached, Medium, Open};

    // File system magic numbers (statfs(2), linux/magic.h).
    const TMPFS: i64 = 0x0102_1994;
    const RAMFS: i64 = 0x8584_58f6;
    const EXT234: i64 = 0xef53;
    const XFS: i64 = 0x5846_5342;
    const BTRFS: i64 = 0x9123_683e;
    const F2FS: i64 = 0xf2f5_2010;

    pub(super) fn medium(dir: &Dir) -> Medium {
        let Ok(fs) = rustix::fs::fstatfs(dir) else {
            return Medium::Other;
        };
        #[allow(clippy::unnecessary_cast)] // `f_type`'s type differs between architectures.
        match fs.f_type as i64 {
            TMPFS | RAMFS => Medium::Memory,
            EXT234 | XFS | BTRFS | F2FS => Medium::Disk,
            _ => Medium::Other,
        }
    }

    pub(super) fn open_beneath(root: &Dir, rel: &Path, how: Open, cached_only: bool) -> Cached {
        let flags = OFlags::CLOEXEC
            | match how {
                Open::Read => OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
                Open::Dir => OFlags::RDONLY | OFlags::DIRECTORY,
                // `O_PATH` takes no other access flags.
                Open::Inspect => OFlags::PATH,
            };
        let mut resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV;
        if cached_only {
            resolve |= ResolveFlags::CACHED;
        }
        match rustix::fs::openat2(root, rel, flags, Mode::empty(), resolve) {
            Ok(fd) => Cached::Open(File::from(fd)),
            Err(rustix::io::Errno::NOENT) => Cached::NotFound,
            Err(_) => Cached::Miss,
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::fs::File;
    use std::path::Path;

    use cap_std::fs::Dir;

    use super::{Cached, Medium, Open};

    pub(super) fn medium(_dir: &Dir) -> Medium {
        Medium::Other
    }

    pub(super) fn open_beneath(_root: &Dir, _rel: &Path, _how: Open, _cached_only: bool) -> Cached {
        Cached::Miss
    }
}
