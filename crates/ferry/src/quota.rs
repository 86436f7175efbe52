//! `ferry user quota NAME --recount`: counts a user's files in storage.

use std::path::Path;

use anyhow::{Context, Result};
use ferry_auth::Usage;
use ferry_vfs::{EntryKind, LocalFs, Storage, VPath};

/// Entries read per listing call.
const BATCH: usize = 1024;

/// The files and bytes under `home` (a virtual home) in the files root.
pub async fn count(files_root: &Path, home: &str) -> Result<Usage> {
    let root = LocalFs::open(files_root).with_context(|| {
        format!(
            "cannot open the files root {} (`files_root`)",
            files_root.display()
        )
    })?;
    let home = VPath::parse(home.as_bytes()).with_context(|| format!("invalid home {home:?}"))?;
    let storage = match root.scoped(&home, false).await {
        Ok(s) => s,
        // No home directory yet: nothing stored.
        Err(e) if e.kind() == ferry_vfs::ErrorKind::NotFound => return Ok(Usage::default()),
        Err(e) => return Err(e).context("cannot open the user's home"),
    };
    let mut usage = Usage::default();
    let mut dirs = vec![VPath::root()];
    while let Some(dir) = dirs.pop() {
        let mut list = storage
            .list(&dir)
            .await
            .with_context(|| format!("cannot list {}", dir.display()))?;
        loop {
            let batch = list.next_batch(BATCH).await?;
            if batch.is_empty() {
                break;
            }
            for entry in batch {
                match entry.metadata.kind {
                    EntryKind::Dir => dirs.push(dir.join_name(&entry.name)?),
                    EntryKind::File => {
                        usage.files += 1;
                        usage.bytes += entry.metadata.size;
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(usage)
}
