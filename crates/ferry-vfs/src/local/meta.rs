//! Metadata changes (permission bits, times) under the same rule as opening a file.
//!
//! A change goes to the object a name leads to, and so can reach what opening it would: a hard link
//! planted in the root shares a file from outside it, and a symlink may point anywhere. So the
//! target is first pinned by a handle (opened through the jail, which refuses symlinks that leave
//! it), that handle's own metadata is checked like [`check_regular`](super::check_regular) checks a
//! file being opened (a regular file with one name, or a directory), and the change is made through
//! the handle, never through the name again: renaming a hard link over the checked name meanwhile
//! changes nothing.
//!
//! Every metadata change of the local back-end (and any future one: owner, extended attributes)
//! goes through [`change`].

use std::path::Path;
use std::time::SystemTime;

use cap_fs_ext::OpenOptionsMaybeDirExt;
use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt};

use super::digests;
use crate::error::{ErrorKind, Result};

/// One metadata change.
#[derive(Debug, Clone, Copy)]
pub(super) enum Change {
    /// Unix permission bits (`mode & 0o777`).
    Mode(u32),
    /// Modification time (the access time is left alone).
    Modified(SystemTime),
}

/// Applies `change` to `rel` inside `root` if the rule allows it (see the module doc).
pub(super) fn change(root: &Dir, rel: &Path, change: Change) -> Result<()> {
    #[cfg(target_os = "linux")]
    if let Ok(proc_fd) = rustix_linux_procfs::proc_self_fd() {
        return change_by_path_handle(root, rel, change, proc_fd);
    }
    change_by_open_file(root, rel, change)
}

/// Whether metadata of this object may be changed: a directory, or a regular file with one name.
pub(super) fn check_target(md: &cap_std::fs::Metadata) -> Result<()> {
    if md.is_dir() || (md.is_file() && md.nlink() == 1) {
        Ok(())
    } else {
        Err(ErrorKind::PermissionDenied.into())
    }
}

/// Linux: pins the object with an `O_PATH` handle (no read or write access needed, so a file with
/// mode 000 can still be given its permissions back) and changes it through its
/// `/proc/self/fd/N` magic link, which names exactly that inode.
#[cfg(target_os = "linux")]
fn change_by_path_handle(
    root: &Dir,
    rel: &Path,
    change: Change,
    proc_fd: std::os::fd::BorrowedFd<'static>,
) -> Result<()> {
    use rustix::fs::{AtFlags, Mode, Timespec, Timestamps, UTIME_OMIT};
    use rustix::path::DecInt;

    let mut options = OpenOptions::new();
    options.read(true).custom_flags(libc::O_PATH).maybe_dir(true);
    let handle = root.open_with(rel, &options)?;
    let md = handle.metadata()?;
    check_target(&md)?;
    let link = DecInt::from_fd(&handle);
    match change {
        Change::Mode(mode) => {
            let mode = Mode::from_bits_truncate(mode & 0o777);
            rustix::fs::chmodat(proc_fd, link.as_c_str(), mode, AtFlags::empty())
                .map_err(std::io::Error::from)?;
        }
        Change::Modified(t) => {
            let since = t
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_err(|_| ErrorKind::InvalidName)?;
            let times = Timestamps {
                last_access: Timespec {
                    tv_sec: 0,
                    tv_nsec: UTIME_OMIT,
                },
                last_modification: Timespec {
                    tv_sec: i64::try_from(since.as_secs()).map_err(|_| ErrorKind::InvalidName)?,
                    tv_nsec: since.subsec_nanos().into(),
                },
            };
            // Checksums kept on the file follow the new time if they are valid now, else go;
            // through a descriptor of exactly the pinned inode (reopened by its magic link).
            let file = md.is_file().then(|| {
                use rustix::fs::OFlags;
                let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
                rustix::fs::openat(proc_fd, link.as_c_str(), flags, Mode::empty())
                    .ok()
                    .map(std::fs::File::from)
            });
            let file = file.flatten();
            let valid = file.as_ref().and_then(digests::before_set_modified);
            rustix::fs::utimensat(proc_fd, link.as_c_str(), &times, AtFlags::empty())
                .map_err(std::io::Error::from)?;
            if let Some(file) = &file {
                digests::after_set_modified(file, valid);
            }
        }
    }
    Ok(())
}

/// Without procfs: opens the object for reading (not blocking on a FIFO), checks the open file
/// and changes it through the descriptor.
fn change_by_open_file(root: &Dir, rel: &Path, change: Change) -> Result<()> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags(libc::O_NONBLOCK).maybe_dir(true);
    let file = root.open_with(rel, &options)?;
    let is_file = file.metadata()?.is_file();
    check_target(&file.metadata()?)?;
    let file = file.into_std();
    match change {
        Change::Mode(mode) => {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))?;
        }
        Change::Modified(t) if is_file => {
            let valid = digests::before_set_modified(&file);
            file.set_modified(t)?;
            digests::after_set_modified(&file, valid);
        }
        Change::Modified(t) => file.set_modified(t)?,
    }
    Ok(())
}
