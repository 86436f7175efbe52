//! Streaming directory listings for the local back-end.

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use cap_std::fs::{Dir, ReadDir};

use super::{blocking, convert_metadata, name_bytes};
use crate::error::{ErrorKind, Result};
use crate::storage::{DirEntry, DirStream};
use crate::EntryKind;
use crate::TEMP_PREFIX;

/// Most entries read in one blocking call, whatever the caller asks for.
const MAX_BATCH: usize = 4096;

/// A listing that reads the directory incrementally: the `ReadDir` iterator is moved onto the
/// blocking pool for each batch and back, so the directory is never collected whole.
pub(super) struct LocalDirStream {
    /// The jail root: symlinked entries are resolved from here so that links to elsewhere in the
    /// jail are followed (a handle on the listed directory would refuse them).
    root: Arc<Dir>,
    /// The listed directory, relative to the root.
    rel: PathBuf,
    /// `None` once the listing ended (or a batch task was lost).
    entries: Option<ReadDir>,
}

impl fmt::Debug for LocalDirStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalDirStream")
            .field("done", &self.entries.is_none())
            .finish_non_exhaustive()
    }
}

impl LocalDirStream {
    /// Opens the directory `rel` (relative to `root`) for listing.
    pub(super) async fn open(root: Arc<Dir>, rel: PathBuf) -> Result<LocalDirStream> {
        let (root2, rel2) = (Arc::clone(&root), rel.clone());
        let entries = blocking(move || {
            // Check first so a file gives NotADirectory on every platform.
            if !root2.metadata(&rel2)?.is_dir() {
                return Err(ErrorKind::NotADirectory.into());
            }
            Ok(root2.read_dir(&rel2)?)
        })
        .await?;
        Ok(LocalDirStream {
            root,
            rel,
            entries: Some(entries),
        })
    }
}

#[async_trait]
impl DirStream for LocalDirStream {
    async fn next_batch(&mut self, max: usize) -> Result<Vec<DirEntry>> {
        let Some(mut entries) = self.entries.take() else {
            return Ok(Vec::new());
        };
        let max = max.clamp(1, MAX_BATCH);
        let (root, rel) = (Arc::clone(&self.root), self.rel.clone());
        let (entries, batch) = blocking(move || {
            let batch = read_batch(&root, &rel, &mut entries, max);
            Ok((entries, batch))
        })
        .await?;
        let batch = batch?;
        if !batch.is_empty() {
            self.entries = Some(entries);
        }
        Ok(batch)
    }
}

/// Reads up to `max` visible entries. Entries that vanish while being read are skipped.
fn read_batch(root: &Dir, rel: &Path, entries: &mut ReadDir, max: usize) -> Result<Vec<DirEntry>> {
    let mut batch = Vec::with_capacity(max.min(256));
    while batch.len() < max {
        let Some(entry) = entries.next() else { break };
        let entry = entry?;
        let name = entry.file_name();
        if name.as_bytes().starts_with(TEMP_PREFIX) {
            continue;
        }
        let metadata = match entry.file_type() {
            Ok(ft) if ft.is_symlink() => match root.metadata(rel.join(&name)) {
                Ok(target) => Ok(convert_metadata(&target)),
                // Dangling, looping or leading outside the jail: describe the link itself.
                Err(_) => entry.metadata().map(|md| {
                    let mut md = convert_metadata(&md);
                    md.kind = EntryKind::Symlink;
                    md
                }),
            },
            Ok(_) => entry.metadata().map(|md| convert_metadata(&md)),
            Err(e) => Err(e),
        };
        match metadata {
            Ok(metadata) => batch.push(DirEntry {
                name: name_bytes(&name),
                metadata,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(batch)
}
