//! Runs the session's storage requests on `ferry-vfs` and maps results both ways.

use std::time::SystemTime;

use ferry_proto::listing::{Entry, EntryKind};
use ferry_proto::path::VPath;
use ferry_proto::session::{FsError, StorageOk, StorageRequest};
use ferry_vfs::{ErrorKind, Metadata, Storage};

/// Runs one request.
pub(crate) async fn run(storage: &dyn Storage, request: StorageRequest) -> Result<StorageOk, FsError> {
    let r = match request {
        StorageRequest::Stat(path) => storage
            .metadata(path.as_bytes())
            .await
            .map(|meta| StorageOk::Entry(entry(name_of(&path), &meta))),
        StorageRequest::ListBrief(path) => list_brief(storage, &path).await,
        StorageRequest::CreateDir(path) => storage
            .create_dir(path.as_bytes())
            .await
            .map(|()| StorageOk::Done),
        StorageRequest::RemoveDir(path) => storage
            .remove_dir(path.as_bytes())
            .await
            .map(|()| StorageOk::Done),
        StorageRequest::RemoveFile(path) => storage
            .remove_file(path.as_bytes())
            .await
            .map(|()| StorageOk::Done),
        StorageRequest::Rename { from, to } => storage
            .rename(from.as_bytes(), to.as_bytes())
            .await
            .map(|()| StorageOk::Done),
        StorageRequest::SetModified(path, t) => storage
            .set_modified(path.as_bytes(), t)
            .await
            .map(|()| StorageOk::Done),
    };
    r.map_err(fs_error)
}

async fn list_brief(storage: &dyn Storage, path: &VPath) -> ferry_vfs::Result<StorageOk> {
    let listed_at = SystemTime::now();
    let meta = storage.metadata(path.as_bytes()).await?;
    if meta.kind != ferry_vfs::EntryKind::Dir {
        let entries = vec![entry(name_of(path), &meta)];
        return Ok(StorageOk::Entries {
            entries,
            truncated: false,
            listed_at,
        });
    }
    let max = ferry_proto::limits::MAX_STAT_ENTRIES;
    let mut stream = storage.list(path.as_bytes()).await?;
    let mut entries = Vec::new();
    let mut truncated = false;
    loop {
        let batch = stream.next_batch(max + 1 - entries.len()).await?;
        if batch.is_empty() {
            break;
        }
        entries.extend(batch.iter().map(|d| entry(d.name.clone(), &d.metadata)));
        if entries.len() > max {
            entries.truncate(max);
            truncated = true;
            break;
        }
    }
    Ok(StorageOk::Entries {
        entries,
        truncated,
        listed_at,
    })
}

/// The base name of a path; `/` for the root.
pub(crate) fn name_of(path: &VPath) -> Vec<u8> {
    path.file_name().map_or_else(|| b"/".to_vec(), <[u8]>::to_vec)
}

/// Converts storage metadata into a listing entry.
pub(crate) fn entry(name: Vec<u8>, m: &Metadata) -> Entry {
    Entry {
        name,
        kind: match m.kind {
            ferry_vfs::EntryKind::File => EntryKind::File,
            ferry_vfs::EntryKind::Dir => EntryKind::Dir,
            ferry_vfs::EntryKind::Symlink => EntryKind::Symlink,
            ferry_vfs::EntryKind::Other => EntryKind::Other,
        },
        size: m.size,
        modified: m.modified,
        mode: m.mode,
        nlink: m.nlink,
        unique: m.unique.clone(),
    }
}

/// Maps a storage error kind to the session's.
pub(crate) fn fs_error(e: ferry_vfs::Error) -> FsError {
    match e.kind() {
        ErrorKind::NotFound => FsError::NotFound,
        ErrorKind::PermissionDenied => FsError::PermissionDenied,
        ErrorKind::AlreadyExists => FsError::AlreadyExists,
        ErrorKind::NotADirectory => FsError::NotADirectory,
        ErrorKind::IsADirectory => FsError::IsADirectory,
        ErrorKind::DirectoryNotEmpty => FsError::DirectoryNotEmpty,
        ErrorKind::InvalidName => FsError::InvalidName,
        ErrorKind::QuotaExceeded => FsError::QuotaExceeded,
        ErrorKind::OffsetOutOfRange => FsError::OffsetOutOfRange,
        ErrorKind::MoveIntoItself => FsError::MoveIntoItself,
        ErrorKind::Unsupported => FsError::Unsupported,
        ErrorKind::Io => FsError::Io,
    }
}
