//! Removing the temporary files of uploads that never finished (the server was killed mid-upload).

use std::os::unix::ffi::OsStrExt;
use std::time::SystemTime;

use cap_fs_ext::DirExt;
use cap_std::fs::Dir;

use super::LocalFs;
use crate::TEMP_PREFIX;

/// Directory levels below the root that a sweep descends.
const MAX_DEPTH: usize = 64;
/// Directory entries a sweep looks at before it stops (the rest waits for the next sweep).
const MAX_ENTRIES: usize = 1_000_000;

/// What a sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Temporary upload files removed.
    pub removed: usize,
    /// Bytes they held.
    pub bytes: u64,
    /// Temporary files that could not be removed.
    pub failed: usize,
}

impl LocalFs {
    /// Removes every `.ferry-upload.*.tmp` file under the root last written before `modified_before`:
    /// at start-up the start time (every upload of this process began later), while running a time well
    /// past the data timeout (an upload in progress writes its file continually). Symbolic links are
    /// never followed. Blocking: call it on a blocking thread.
    pub fn sweep_temp_files(&self, modified_before: SystemTime) -> Swept {
        let mut swept = Swept::default();
        let mut budget = MAX_ENTRIES;
        sweep_dir(&self.root, 0, modified_before, &mut budget, &mut swept);
        swept
    }
}

fn sweep_dir(dir: &Dir, depth: usize, before: SystemTime, budget: &mut usize, swept: &mut Swept) {
    let Ok(entries) = dir.entries() else { return };
    for entry in entries {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Ok(entry) = entry else { continue };
        // The entry's own type: a symbolic link is never followed.
        let Ok(kind) = entry.file_type() else { continue };
        let name = entry.file_name();
        if kind.is_dir() {
            if depth < MAX_DEPTH {
                if let Ok(sub) = dir.open_dir_nofollow(&name) {
                    sweep_dir(&sub, depth + 1, before, budget, swept);
                }
            }
            continue;
        }
        let bytes = name.as_bytes();
        if !kind.is_file() || !bytes.starts_with(TEMP_PREFIX) || !bytes.ends_with(b".tmp") {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        // Unknown age: left alone.
        let Ok(modified) = meta.modified().map(|t| t.into_std()) else {
            continue;
        };
        if modified >= before {
            continue;
        }
        match dir.remove_file(&name) {
            Ok(()) => {
                swept.removed += 1;
                swept.bytes += meta.len();
            }
            Err(_) => swept.failed += 1,
        }
    }
}
