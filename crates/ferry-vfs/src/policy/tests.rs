use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::storage::FileWriter;
use crate::{LocalFs, MemoryFs};

fn v(p: &str) -> VPath {
    VPath::parse(p.as_bytes()).expect("path")
}

fn kind<T>(r: Result<T>) -> Option<ErrorKind> {
    r.err().map(|e| e.kind())
}

async fn put(fs: &UserFs, p: &str, how: Upload, data: &[u8]) -> Result<u64> {
    let w = fs.upload(&v(p), how, None).await?;
    Box::new(w).commit_with(data.to_vec()).await
}

async fn get(fs: &dyn Storage, p: &str) -> Vec<u8> {
    let mut r = fs.open_read(&v(p), 0).await.expect("open");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn each_operation_needs_its_permission_and_stat_needs_none() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryFs::new());
    let admin = UserFs::new(Arc::clone(&storage), Protocol::Ftp, "admin", Permissions::all());
    admin.create_dir(&v("/d"), None).await.expect("mkdir");
    put(&admin, "/f", Upload::Replace, b"data").await.expect("put");
    let nobody = UserFs::new(storage, Protocol::Sftp, "nobody", Permissions::default());
    let denied = Some(ErrorKind::PermissionDenied);
    assert!(
        nobody.stat(&v("/f")).await.is_ok(),
        "a named path's metadata needs no permission"
    );
    assert_eq!(kind(nobody.list(&v("/d")).await), denied);
    assert_eq!(kind(nobody.open_read(&v("/f"), 0).await), denied);
    assert_eq!(kind(nobody.upload(&v("/g"), Upload::Replace, None).await), denied);
    assert_eq!(kind(nobody.create_dir(&v("/e"), None).await), denied);
    assert_eq!(kind(nobody.remove_file(&v("/f")).await), denied);
    assert_eq!(kind(nobody.remove_dir(&v("/d")).await), denied);
    assert_eq!(kind(nobody.rename(&v("/f"), &v("/g"), false).await), denied);
    assert_eq!(
        kind(nobody.set_modified(&v("/f"), SystemTime::now()).await),
        denied
    );
}

#[tokio::test]
async fn resume_and_append_are_refused_clearly_without_the_capability() {
    let fs = UserFs::new(Arc::new(MemoryFs::new()), Protocol::Ftp, "u", Permissions::all());
    put(&fs, "/f", Upload::Replace, b"abc").await.expect("put");
    for how in [Upload::Resume(2), Upload::Append] {
        let e = fs.upload(&v("/f"), how, None).await.expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.message().contains("memory storage back-end"), "{}", e.message());
    }
    let e = fs.rename(&v("/f"), &v("/g"), true).await.expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(get(fs.inner.storage.as_ref(), "/f").await, b"abc", "nothing lost");
}

#[tokio::test]
async fn unique_uploads_never_replace_and_exclusive_refuses_existing() {
    let fs = UserFs::new(Arc::new(MemoryFs::new()), Protocol::Ftp, "u", Permissions::all());
    put(&fs, "/n", Upload::Replace, b"0").await.expect("put");
    let w = fs.upload(&v("/n"), Upload::Unique, None).await.expect("unique");
    assert_eq!(w.final_name(), b"n.1");
    Box::new(w).commit_with(b"1".to_vec()).await.expect("commit");
    assert_eq!(get(fs.inner.storage.as_ref(), "/n").await, b"0");
    assert_eq!(get(fs.inner.storage.as_ref(), "/n.1").await, b"1");
    assert_eq!(
        kind(fs.upload(&v("/n"), Upload::Exclusive, None).await),
        Some(ErrorKind::AlreadyExists)
    );
}

#[tokio::test]
async fn local_rename_without_replace_refuses_an_existing_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Arc::new(LocalFs::open(dir.path()).expect("open"));
    let fs = UserFs::new(storage.clone(), Protocol::Sftp, "u", Permissions::all());
    put(&fs, "/a", Upload::Replace, b"a").await.expect("put");
    put(&fs, "/b", Upload::Replace, b"b").await.expect("put");
    assert_eq!(
        kind(fs.rename(&v("/a"), &v("/b"), false).await),
        Some(ErrorKind::AlreadyExists)
    );
    assert_eq!(get(storage.as_ref(), "/b").await, b"b");
    fs.rename(&v("/a"), &v("/c"), false)
        .await
        .expect("rename to a new name");
    fs.rename(&v("/c"), &v("/b"), true).await.expect("replace");
    assert_eq!(get(storage.as_ref(), "/b").await, b"a");
    // Append on local is a real append; resume keeps the bytes before the offset.
    put(&fs, "/b", Upload::Append, b"bc").await.expect("append");
    put(&fs, "/b", Upload::Resume(2), b"CD").await.expect("resume");
    assert_eq!(get(storage.as_ref(), "/b").await, b"abCD");
    assert_eq!(
        kind(put(&fs, "/b", Upload::Resume(9), b"x").await),
        Some(ErrorKind::OffsetOutOfRange),
        "no hole of zeros the client never sent"
    );
}

#[derive(Debug, Default)]
struct Recorder {
    seen: Mutex<Vec<(FsOp, String, u64, bool)>>,
}

impl FsEvents for Recorder {
    fn on_upload(&self, e: &FsEvent<'_>) {
        self.push(e);
    }
    fn on_delete(&self, e: &FsEvent<'_>) {
        self.push(e);
    }
    fn on_mkdir(&self, e: &FsEvent<'_>) {
        self.push(e);
    }
}

impl Recorder {
    fn push(&self, e: &FsEvent<'_>) {
        let mut seen = self.seen.lock().expect("lock");
        seen.push((e.op, e.path.display(), e.bytes, e.result.is_ok()));
    }
}

/// A quota of `limit` bytes that accounts committed uploads.
#[derive(Debug)]
struct Limit {
    limit: u64,
    used: AtomicU64,
    pending: AtomicU64,
}

impl Quota for Limit {
    fn add_bytes(&self, _user: &str, bytes: u64) -> Result<()> {
        let total =
            self.used.load(Ordering::SeqCst) + self.pending.fetch_add(bytes, Ordering::SeqCst) + bytes;
        if total > self.limit {
            self.pending.fetch_sub(bytes, Ordering::SeqCst);
            return Err(ErrorKind::QuotaExceeded.into());
        }
        Ok(())
    }

    fn upload_ended(&self, _user: &str, _path: &VPath, end: &UploadEnd) {
        self.pending.fetch_sub(end.reserved, Ordering::SeqCst);
        if end.committed {
            self.used
                .fetch_add(end.size_change.max(0) as u64, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn quota_hook_refuses_bytes_and_events_report_every_end() {
    let events = Arc::new(Recorder::default());
    let quota = Arc::new(Limit {
        limit: 10,
        used: AtomicU64::new(0),
        pending: AtomicU64::new(0),
    });
    let fs = UserFs::with_hooks(
        Arc::new(MemoryFs::new()),
        Protocol::Ftp,
        "u",
        Permissions::all(),
        events.clone(),
        quota.clone(),
    );
    put(&fs, "/a", Upload::Replace, b"123456")
        .await
        .expect("within quota");
    assert_eq!(
        kind(put(&fs, "/b", Upload::Replace, b"123456").await),
        Some(ErrorKind::QuotaExceeded)
    );
    assert!(
        fs.stat(&v("/b")).await.is_err(),
        "a refused upload stores nothing"
    );
    let mut w = fs.upload(&v("/c"), Upload::Replace, None).await.expect("open");
    w.write_owned(b"12".to_vec()).await.expect("write");
    drop(w);
    fs.create_dir(&v("/d"), None).await.expect("mkdir");
    fs.remove_file(&v("/a")).await.expect("rm");
    assert_eq!(quota.used.load(Ordering::SeqCst), 6);
    let seen = events.seen.lock().expect("lock").clone();
    assert_eq!(
        seen,
        vec![
            (FsOp::Upload, "/a".into(), 6, true),
            (FsOp::Upload, "/b".into(), 0, false),
            (FsOp::Upload, "/c".into(), 2, false),
            (FsOp::Mkdir, "/d".into(), 0, true),
            (FsOp::Delete, "/a".into(), 0, true),
        ]
    );
}

#[tokio::test]
async fn positional_uploads_report_their_bytes_to_the_hooks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = Arc::new(Recorder::default());
    let quota = Arc::new(Limit {
        limit: 5,
        used: AtomicU64::new(0),
        pending: AtomicU64::new(0),
    });
    let fs = UserFs::with_hooks(
        Arc::new(LocalFs::open(dir.path()).expect("open")),
        Protocol::Sftp,
        "u",
        Permissions::all(),
        events.clone(),
        quota.clone(),
    );
    let replace = OpenMode::Replace {
        read: false,
        exclusive: false,
        mode: None,
    };
    let file = fs.open_file(&v("/p"), replace).await.expect("open");
    file.write_at(0, b"abc".to_vec()).await.expect("write");
    file.write_at(3, b"def".to_vec())
        .await
        .expect_err("the file would grow over the quota");
    assert_eq!(
        kind(file.commit().await),
        Some(ErrorKind::QuotaExceeded),
        "an upload that crossed the quota is not committed"
    );
    drop(file);
    assert!(fs.stat(&v("/p")).await.is_err(), "nothing stored");
    let file = fs.open_file(&v("/p"), replace).await.expect("open");
    file.write_at(3, b"de".to_vec()).await.expect("write");
    file.write_at(0, b"abc".to_vec())
        .await
        .expect("rewrites inside the extent");
    file.commit().await.expect("commit");
    drop(file);
    let abandoned = fs.open_file(&v("/q"), replace).await.expect("open");
    drop(abandoned);
    assert_eq!(quota.used.load(Ordering::SeqCst), 5);
    assert_eq!(quota.pending.load(Ordering::SeqCst), 0);
    let seen = events.seen.lock().expect("lock").clone();
    assert_eq!(
        seen,
        vec![
            (FsOp::Upload, "/p".into(), 3, false),
            (FsOp::Upload, "/p".into(), 5, true),
            (FsOp::Upload, "/q".into(), 0, false)
        ]
    );
}
