//! Temporary upload files left behind when ferry was killed mid-upload: all of them are removed at
//! start, and, while running, any that nobody has written to for [`STALE_AGE`].

use std::time::{Duration, SystemTime};

use ferry_vfs::LocalFs;
use tracing::{info, warn};

/// A temporary upload file untouched this long belongs to no running upload (the data connection's
/// stall timeout ends an upload long before).
pub const STALE_AGE: Duration = Duration::from_secs(3600);
/// How often the running server looks for stale temporary files.
pub const INTERVAL: Duration = Duration::from_secs(600);

/// Sweeps in the background: once now (files older than this start), then every [`INTERVAL`].
pub fn start(fs: LocalFs) {
    let started = SystemTime::now();
    tokio::spawn(async move {
        let mut before = started;
        loop {
            let sweeper = fs.clone();
            match tokio::task::spawn_blocking(move || sweeper.sweep_temp_files(before)).await {
                Ok(swept) => {
                    if swept.removed > 0 {
                        info!(
                            files = swept.removed,
                            bytes = swept.bytes,
                            "removed temporary files of unfinished uploads"
                        );
                    }
                    if swept.failed > 0 {
                        warn!(
                            files = swept.failed,
                            "cannot remove some temporary files of unfinished uploads (.ferry-upload.*.tmp)"
                        );
                    }
                }
                Err(e) => warn!(error = %e, "the sweep of temporary upload files failed"),
            }
            tokio::time::sleep(INTERVAL).await;
            before = SystemTime::now()
                .checked_sub(STALE_AGE)
                .unwrap_or(SystemTime::UNIX_EPOCH);
        }
    });
}
