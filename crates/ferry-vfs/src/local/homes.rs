//! Home-directory handles shared by the sessions that use the same home.
//!
//! Each session works through a directory handle opened on its home (the jail). Ten thousand idle sessions
//! of one user would otherwise hold ten thousand handles on the same directory, one descriptor each beside
//! their sockets. [`Homes`] hands out the handle already open for a home as long as some session holds it,
//! so a session costs one descriptor: its socket.
//!
//! A shared handle is checked before it is handed out: if the path no longer names the directory the
//! handle is open on (the home was renamed away, or removed and made again), a new handle is opened, so a
//! new session always starts in the directory its path names now, as it would with a handle of its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use cap_std::fs::{Dir, MetadataExt};

use crate::error::Result;

/// Entries kept before the first sweep of homes no longer held by any session.
const FIRST_SWEEP: usize = 64;

/// Open home handles by path relative to the root, held weakly: a handle closes with its last session.
#[derive(Default)]
pub(super) struct Homes {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    open: HashMap<PathBuf, Weak<Dir>>,
    /// Size of `open` at which entries whose handle has closed are swept out.
    sweep_at: usize,
}

impl Homes {
    /// The handle on `rel` below `root` (created first if `create`): the one some session already holds
    /// if it is still open on the directory `rel` names, else a new one. Blocking.
    pub(super) fn open(&self, root: &Dir, rel: &Path, create: bool) -> Result<Arc<Dir>> {
        if create {
            root.create_dir_all(rel)?;
        }
        if let Some(held) = self.held(rel) {
            // Resolved the way `open_dir` resolves it (symlinks followed, inside the jail).
            let now = root.metadata(rel)?;
            let then = held.dir_metadata()?;
            if now.is_dir() && (now.dev(), now.ino()) == (then.dev(), then.ino()) {
                return Ok(held);
            }
        }
        let dir = Arc::new(root.open_dir(rel)?);
        self.keep(rel, &dir);
        Ok(dir)
    }

    /// A handle of its own on `rel` below `root` (created first if `create`). Blocking.
    pub(super) fn open_unshared(root: &Dir, rel: &Path, create: bool) -> Result<Arc<Dir>> {
        if create {
            root.create_dir_all(rel)?;
        }
        Ok(Arc::new(root.open_dir(rel)?))
    }

    /// The handle on `rel` if a session still holds one.
    fn held(&self, rel: &Path) -> Option<Arc<Dir>> {
        self.lock().open.get(rel).and_then(Weak::upgrade)
    }

    fn keep(&self, rel: &Path, dir: &Arc<Dir>) {
        let mut inner = self.lock();
        inner.open.insert(rel.to_path_buf(), Arc::downgrade(dir));
        if inner.open.len() >= inner.sweep_at {
            inner.open.retain(|_, held| held.strong_count() > 0);
            // Twice the homes still held: sweeping costs O(1) per insertion on average.
            inner.sweep_at = (inner.open.len() * 2).max(FIRST_SWEEP);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Entries in the table (held or not yet swept), for tests.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;

    fn root() -> (tempfile::TempDir, Dir) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).expect("open");
        (tmp, dir)
    }

    #[test]
    fn sessions_of_one_home_share_one_handle() {
        let (_tmp, root) = root();
        let homes = Homes::default();
        let a = homes.open(&root, Path::new("alice"), true).expect("first");
        let b = homes.open(&root, Path::new("alice"), false).expect("second");
        assert!(Arc::ptr_eq(&a, &b));
        let c = homes.open(&root, Path::new("bob"), true).expect("other home");
        assert!(!Arc::ptr_eq(&a, &c));
    }

    #[test]
    fn a_replaced_home_gets_a_new_handle() {
        let (tmp, root) = root();
        let homes = Homes::default();
        let old = homes.open(&root, Path::new("alice"), true).expect("first");
        std::fs::rename(tmp.path().join("alice"), tmp.path().join("gone")).expect("rename");
        std::fs::create_dir(tmp.path().join("alice")).expect("mkdir");
        std::fs::write(tmp.path().join("alice/new.txt"), b"new").expect("write");
        let new = homes.open(&root, Path::new("alice"), false).expect("again");
        assert!(!Arc::ptr_eq(&old, &new));
        assert!(new.exists("new.txt"));
        assert!(!old.exists("new.txt"));
    }

    #[test]
    fn a_removed_home_is_not_found_even_while_held() {
        let (tmp, root) = root();
        let homes = Homes::default();
        let _held = homes.open(&root, Path::new("alice"), true).expect("first");
        std::fs::remove_dir(tmp.path().join("alice")).expect("rmdir");
        assert!(homes.open(&root, Path::new("alice"), false).is_err());
    }

    #[test]
    fn closed_homes_are_swept_out() {
        let (_tmp, root) = root();
        let homes = Homes::default();
        for i in 0..FIRST_SWEEP * 3 {
            let dir = homes
                .open(&root, Path::new(&format!("h{i}")), true)
                .expect("open");
            drop(dir);
        }
        assert!(homes.len() <= FIRST_SWEEP, "{} entries kept", homes.len());
    }
}
