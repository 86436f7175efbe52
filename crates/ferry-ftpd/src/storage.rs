//! Runs the session's storage requests through the user's policy layer ([`UserFs`]) and maps results
//! both ways.

use std::time::SystemTime;

use ferry_proto::listing::Entry;
use ferry_proto::path::VPath;
use ferry_proto::session::{FsError, StorageOk, StorageRequest};
use ferry_vfs::{EntryKind, Metadata, UserFs};

/// Runs one request.
pub(crate) async fn run(fs: &UserFs, request: StorageRequest) -> Result<StorageOk, FsError> {
    let r = match request {
        StorageRequest::Stat(path) => fs
            .stat(&path)
            .await
            .map(|meta| StorageOk::Entry(entry(name_of(&path), &meta))),
        StorageRequest::ListBrief(path) => list_brief(fs, &path).await,
        StorageRequest::CreateDir(path) => fs.create_dir(&path, None).await.map(|()| StorageOk::Done),
        StorageRequest::RemoveDir(path) => fs.remove_dir(&path).await.map(|()| StorageOk::Done),
        StorageRequest::RemoveFile(path) => fs.remove_file(&path).await.map(|()| StorageOk::Done),
        // RNTO replaces an existing file, as every FTP server does (and clients expect).
        StorageRequest::Rename { from, to } => fs.rename(&from, &to, true).await.map(|()| StorageOk::Done),
        StorageRequest::SetModified(path, t) => fs.set_modified(&path, t).await.map(|()| StorageOk::Done),
        StorageRequest::Quota => Ok(StorageOk::Text(quota_lines(fs))),
    };
    r.map_err(fs_error)
}

async fn list_brief(fs: &UserFs, path: &VPath) -> ferry_vfs::Result<StorageOk> {
    let listed_at = SystemTime::now();
    let meta = fs.stat(path).await?;
    if meta.kind != EntryKind::Dir {
        let entries = vec![entry(name_of(path), &meta)];
        return Ok(StorageOk::Entries {
            entries,
            truncated: false,
            listed_at,
        });
    }
    let max = ferry_proto::limits::MAX_STAT_ENTRIES;
    let mut stream = fs.list(path).await?;
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
        kind: m.kind,
        size: m.size,
        modified: m.modified,
        mode: m.mode,
        nlink: m.nlink,
        unique: m.unique.clone(),
    }
}

/// The session's view of a storage error: its kind and client-safe detail.
pub(crate) fn fs_error(e: ferry_vfs::Error) -> FsError {
    FsError {
        kind: e.kind(),
        detail: e.detail_text().map(str::to_owned),
    }
}

/// SITE QUOTA: usage against the quota and the bandwidth limits.
fn quota_lines(fs: &UserFs) -> Vec<String> {
    let limit = |n: u64| match n {
        0 => "unlimited".to_owned(),
        n => n.to_string(),
    };
    let mut lines = vec![format!("Quota for {}:", fs.user())];
    match fs.quota_status() {
        Some(q) => {
            lines.push(format!("bytes: {} of {} bytes used", q.bytes, limit(q.max_bytes)));
            lines.push(format!("files: {} of {} files used", q.files, limit(q.max_files)));
        }
        None => lines.push("no quota".to_owned()),
    }
    let kib = |r: u64| match r {
        0 => "unlimited".to_owned(),
        r => format!("{} KiB/s", r / 1024),
    };
    let rates = fs.rates();
    lines.push(format!("upload: {}", kib(rates.upload.rate())));
    lines.push(format!("download: {}", kib(rates.download.rate())));
    lines.push("End".to_owned());
    lines
}
