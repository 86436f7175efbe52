//! The S3 back-end against a real S3 server (s3s-fs, started once for this test binary): uploads,
//! aborts, ranged reads, directories, renames, resume and listings — checked both through the
//! back-end and by looking at what the server really stores.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

// The test kit's S3 server module, used on its own (the whole kit depends on this crate).
#[path = "../../ferry-testkit/src/s3.rs"]
#[allow(dead_code)]
mod s3kit;

use ferry_vfs::s3::S3Fs;
use ferry_vfs::{EntryKind, ErrorKind, Storage, VPath, WriteMode, WriteOptions};
use s3kit::{bucket, TestBucket};

fn v(path: &str) -> VPath {
    VPath::parse(path.as_bytes()).expect("path")
}

fn new() -> WriteOptions {
    WriteOptions::replace()
}

fn with(mode: WriteMode) -> WriteOptions {
    WriteOptions::with_mode(mode)
}

fn with_resume(offset: u64) -> WriteOptions {
    with(WriteMode::Resume { offset })
}

async fn open(b: &TestBucket) -> S3Fs {
    S3Fs::connect(&b.config("")).await.expect("connect to s3s-fs")
}

/// Deterministic, incompressible-looking test data.
fn data(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

async fn put(fs: &S3Fs, path: &str, bytes: &[u8]) {
    let mut w = fs.open_write(&v(path), new()).await.expect("open_write");
    for chunk in bytes.chunks(64 * 1024) {
        w.write_owned(chunk.to_vec()).await.expect("write");
    }
    assert_eq!(w.commit().await.expect("commit"), bytes.len() as u64);
}

async fn get(fs: &S3Fs, path: &str, offset: u64) -> Vec<u8> {
    let mut r = fs.open_read(&v(path), offset).await.expect("open_read");
    let mut out = Vec::new();
    let mut buf = vec![0; 100_000];
    loop {
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

async fn names(fs: &S3Fs, path: &str) -> Vec<(String, EntryKind)> {
    let mut stream = fs.list(&v(path)).await.expect("list");
    let mut all = Vec::new();
    loop {
        let batch = stream.next_batch(100).await.expect("next_batch");
        if batch.is_empty() {
            break;
        }
        all.extend(
            batch
                .into_iter()
                .map(|e| (String::from_utf8(e.name).expect("utf-8"), e.metadata.kind)),
        );
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_appears_only_on_commit_and_reads_back_from_any_offset() {
    let b = bucket();
    let fs = open(&b).await;
    // Over two parts (5 MiB each), so this is a real multipart upload.
    let bytes = data(12 * 1024 * 1024 + 123, 1);
    let mut w = fs.open_write(&v("/big.bin"), new()).await.expect("open");
    for chunk in bytes.chunks(1 << 20) {
        w.write_owned(chunk.to_vec()).await.expect("write");
    }
    assert!(b.object("big.bin").is_none(), "object visible before commit");
    assert_eq!(w.commit().await.expect("commit"), bytes.len() as u64);
    assert_eq!(
        b.object("big.bin").as_deref(),
        Some(&bytes[..]),
        "stored object differs"
    );
    assert_eq!(get(&fs, "/big.bin", 0).await, bytes);
    assert_eq!(get(&fs, "/big.bin", 7_000_001).await, &bytes[7_000_001..]);
    assert!(get(&fs, "/big.bin", bytes.len() as u64).await.is_empty());
    let md = fs.metadata(&v("/big.bin")).await.expect("metadata");
    assert_eq!((md.kind, md.size), (EntryKind::File, bytes.len() as u64));
    assert!(b.pending_uploads().is_empty(), "{:?}", b.pending_uploads());
}

#[tokio::test(flavor = "multi_thread")]
async fn small_and_empty_files_round_trip() {
    let b = bucket();
    let fs = open(&b).await;
    put(&fs, "/empty", b"").await;
    put(&fs, "/small.txt", b"hello").await;
    assert_eq!(b.object("empty").as_deref(), Some(&b""[..]));
    assert_eq!(get(&fs, "/small.txt", 1).await, b"ello");
    assert_eq!(
        names(&fs, "/").await,
        vec![
            ("empty".into(), EntryKind::File),
            ("small.txt".into(), EntryKind::File)
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_and_drop_leave_no_object_and_no_parts() {
    let b = bucket();
    let fs = open(&b).await;
    put(&fs, "/keep.bin", b"old content").await;
    for (path, how) in [
        ("/aborted.bin", "abort"),
        ("/dropped.bin", "drop"),
        ("/keep.bin", "abort"),
    ] {
        let mut w = fs.open_write(&v(path), new()).await.expect("open");
        // Three parts' worth: at least two part uploads have started.
        w.write_owned(data(16 * 1024 * 1024, 2)).await.expect("write");
        assert!(
            !b.pending_uploads().is_empty(),
            "no multipart upload started for {path}"
        );
        match how {
            "abort" => w.abort().await,
            _ => drop(w),
        }
    }
    let settled = wait_until(Duration::from_secs(10), || b.pending_uploads().is_empty());
    assert!(settled, "uploads left behind: {:?}", b.pending_uploads());
    assert!(b.object("aborted.bin").is_none());
    assert!(b.object("dropped.bin").is_none());
    assert_eq!(
        b.object("keep.bin").as_deref(),
        Some(&b"old content"[..]),
        "abort touched the old object"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_keeps_the_bytes_before_the_offset_and_replaces_only_on_commit() {
    let b = bucket();
    let fs = open(&b).await;
    let old = data(6 * 1024 * 1024, 3);
    put(&fs, "/r.bin", &old).await;

    // REST 5000000 + STOR: the first 5,000,000 old bytes, then the new ones.
    let new = data(3 * 1024 * 1024, 4);
    let mut w = fs
        .open_write(&v("/r.bin"), with_resume(5_000_000))
        .await
        .expect("resume");
    w.write_owned(new.clone()).await.expect("write");
    assert_eq!(
        b.object("r.bin").as_deref(),
        Some(&old[..]),
        "old object changed before commit"
    );
    assert_eq!(w.commit().await.expect("commit"), new.len() as u64);
    let mut want = old[..5_000_000].to_vec();
    want.extend_from_slice(&new);
    assert_eq!(b.object("r.bin").as_deref(), Some(&want[..]));

    // APPE: everything, then the new bytes.
    let mut w = fs
        .open_write(&v("/r.bin"), with(WriteMode::Append))
        .await
        .expect("append");
    w.write_owned(b"tail".to_vec()).await.expect("write");
    w.commit().await.expect("commit");
    want.extend_from_slice(b"tail");
    assert_eq!(b.object("r.bin").as_deref(), Some(&want[..]));

    // An aborted resume leaves the object as it was.
    let mut w = fs
        .open_write(&v("/r.bin"), with_resume(10))
        .await
        .expect("resume");
    w.write_owned(b"never".to_vec()).await.expect("write");
    w.abort().await;
    assert_eq!(b.object("r.bin").as_deref(), Some(&want[..]));

    // Past the end, or on a missing file: refused, nothing written.
    let past = fs
        .open_write(&v("/r.bin"), with_resume(want.len() as u64 + 1))
        .await;
    assert_eq!(past.err().map(|e| e.kind()), Some(ErrorKind::OffsetOutOfRange));
    let missing = fs.open_write(&v("/nope.bin"), with_resume(5)).await;
    assert_eq!(missing.err().map(|e| e.kind()), Some(ErrorKind::NotFound));
    // APPE to a missing file creates it.
    let mut w = fs
        .open_write(&v("/new.log"), with(WriteMode::Append))
        .await
        .expect("append new");
    w.write_owned(b"first".to_vec()).await.expect("write");
    w.commit().await.expect("commit");
    assert_eq!(b.object("new.log").as_deref(), Some(&b"first"[..]));
    assert!(b.pending_uploads().is_empty(), "{:?}", b.pending_uploads());
}

#[tokio::test(flavor = "multi_thread")]
async fn implied_directories_are_listed_and_rmdir_refuses_non_empty_ones() {
    let b = bucket();
    let fs = open(&b).await;
    // Keys written by another S3 client: `a/` and `a/b/` exist only as prefixes.
    std::fs::create_dir_all(b.dir().join("a/b")).expect("mkdir");
    std::fs::write(b.dir().join("a/b/c.txt"), b"c").expect("object");
    std::fs::write(b.dir().join("a/top.txt"), b"t").expect("object");
    assert_eq!(
        names(&fs, "/a").await,
        vec![("b".into(), EntryKind::Dir), ("top.txt".into(), EntryKind::File)]
    );
    assert_eq!(
        fs.metadata(&v("/a/b")).await.expect("stat dir").kind,
        EntryKind::Dir
    );
    assert_eq!(
        fs.remove_dir(&v("/a")).await.err().map(|e| e.kind()),
        Some(ErrorKind::DirectoryNotEmpty)
    );
    assert_eq!(
        fs.remove_file(&v("/a")).await.err().map(|e| e.kind()),
        Some(ErrorKind::IsADirectory)
    );
    assert_eq!(
        fs.remove_dir(&v("/a/top.txt")).await.err().map(|e| e.kind()),
        Some(ErrorKind::NotADirectory)
    );
    assert_eq!(
        fs.list(&v("/a/top.txt")).await.err().map(|e| e.kind()),
        Some(ErrorKind::NotADirectory)
    );
    assert_eq!(
        fs.metadata(&v("/nothing")).await.err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    // A file's parent must exist, as on a disk.
    let orphan = fs.open_write(&v("/no/such/dir.txt"), new()).await;
    assert_eq!(orphan.err().map(|e| e.kind()), Some(ErrorKind::NotFound));
    fs.remove_file(&v("/a/b/c.txt")).await.expect("rm");
    assert_eq!(
        b.object("a/top.txt").as_deref(),
        Some(&b"t"[..]),
        "rm removed a neighbour"
    );
    assert!(b.object("a/b/c.txt").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn rename_moves_files_and_refuses_non_empty_directories() {
    let b = bucket();
    let fs = open(&b).await;
    // `d/` exists as the prefix of an object another client wrote.
    std::fs::create_dir_all(b.dir().join("d")).expect("mkdir");
    std::fs::write(b.dir().join("d/seed"), b"seed").expect("object");
    put(&fs, "/d/one.txt", b"one").await;
    put(&fs, "/two.txt", b"two").await;
    fs.rename(&v("/d/one.txt"), &v("/d/renamed.txt"), false)
        .await
        .expect("rename");
    assert!(b.object("d/one.txt").is_none());
    assert_eq!(b.object("d/renamed.txt").as_deref(), Some(&b"one"[..]));
    // Replaces an existing file, as rename(2) does.
    fs.rename(&v("/two.txt"), &v("/d/renamed.txt"), true)
        .await
        .expect("rename over");
    assert_eq!(b.object("d/renamed.txt").as_deref(), Some(&b"two"[..]));
    // Without replace, an existing target is refused and both stay.
    assert_eq!(
        fs.rename(&v("/d/renamed.txt"), &v("/d/seed"), false)
            .await
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::AlreadyExists)
    );
    assert_eq!(b.object("d/seed").as_deref(), Some(&b"seed"[..]));
    // So is an exclusive upload over an existing file.
    let exclusive = fs
        .open_write(&v("/d/seed"), with(WriteMode::New { exclusive: true }))
        .await;
    assert_eq!(exclusive.err().map(|e| e.kind()), Some(ErrorKind::AlreadyExists));
    assert_eq!(
        fs.rename(&v("/d"), &v("/e"), false).await.err().map(|e| e.kind()),
        Some(ErrorKind::DirectoryNotEmpty)
    );
    assert_eq!(
        b.object("d/renamed.txt").as_deref(),
        Some(&b"two"[..]),
        "refused rename changed something"
    );
    assert_eq!(
        fs.rename(&v("/missing"), &v("/x"), false)
            .await
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn non_empty_directory_rename_copies_everything_when_allowed() {
    let b = bucket();
    let mut config = b.config("");
    config.danger_allow_dir_rename = true;
    let fs = S3Fs::connect(&config).await.expect("connect");
    std::fs::create_dir_all(b.dir().join("src/sub")).expect("mkdir");
    std::fs::write(b.dir().join("src/sub/x"), b"x").expect("object");
    std::fs::write(b.dir().join("src/y"), b"y").expect("object");
    fs.rename(&v("/src"), &v("/dst"), false)
        .await
        .expect("rename dir");
    assert_eq!(b.object("dst/sub/x").as_deref(), Some(&b"x"[..]));
    assert_eq!(b.object("dst/y").as_deref(), Some(&b"y"[..]));
    assert!(b.object("src/y").is_none() && b.object("src/sub/x").is_none());
    assert_eq!(
        fs.rename(&v("/dst"), &v("/dst/sub/in"), false)
            .await
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::MoveIntoItself)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mtime_is_stored_as_rclone_metadata() {
    let b = bucket();
    let fs = open(&b).await;
    put(&fs, "/m.txt", b"content").await;
    let t = UNIX_EPOCH + Duration::new(1_500_000_000, 250_000_000);
    fs.set_modified(&v("/m.txt"), t).await.expect("set mtime");
    assert_eq!(fs.metadata(&v("/m.txt")).await.expect("stat").modified, Some(t));
    assert_eq!(
        b.object("m.txt").as_deref(),
        Some(&b"content"[..]),
        "content changed"
    );
    let recent = fs
        .metadata(&v("/m.txt"))
        .await
        .expect("stat")
        .modified
        .expect("mtime");
    assert!(recent < SystemTime::now() - Duration::from_secs(3600));
}

#[tokio::test(flavor = "multi_thread")]
async fn scoped_store_stays_under_its_prefix() {
    let b = bucket();
    let fs = open(&b).await;
    let home = fs.scoped(&v("/home/alice"), true).await.expect("scoped");
    put_dyn(&*home, "/note.txt", b"hi").await;
    assert_eq!(b.object("home/alice/note.txt").as_deref(), Some(&b"hi"[..]));
    assert_eq!(home.metadata(&v("/")).await.expect("root").kind, EntryKind::Dir);
    assert_eq!(
        home.remove_dir(&v("/")).await.err().map(|e| e.kind()),
        Some(ErrorKind::PermissionDenied)
    );
    // The settings' prefix is another level of the same.
    let prefixed = S3Fs::connect(&b.config("tenant/")).await.expect("connect");
    std::fs::create_dir_all(b.dir().join("tenant")).expect("mkdir");
    put(&prefixed, "/f", b"f").await;
    assert_eq!(b.object("tenant/f").as_deref(), Some(&b"f"[..]));
}

async fn put_dyn(fs: &dyn Storage, path: &str, bytes: &[u8]) {
    let mut w = fs.open_write(&v(path), new()).await.expect("open_write");
    w.write_owned(bytes.to_vec()).await.expect("write");
    w.commit().await.expect("commit");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_bucket_fails_at_connect_with_the_bucket_named() {
    let b = bucket();
    let mut config = b.config("");
    config.bucket = "no-such-bucket".into();
    let err = S3Fs::connect(&config).await.expect_err("missing bucket accepted");
    assert!(err.to_string().contains("no-such-bucket"), "{err}");
    let mut config = b.config("");
    config.secret_access_key = Some("wrong".into());
    assert!(S3Fs::connect(&config).await.is_err(), "wrong secret accepted");
}

fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while !cond() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

#[tokio::test(flavor = "multi_thread")]
async fn made_directories_are_listed_used_and_removed_when_empty() {
    let b = bucket();
    let fs = open(&b).await;
    fs.create_dir(&v("/new")).await.expect("mkdir");
    assert_eq!(
        fs.create_dir(&v("/new")).await.err().map(|e| e.kind()),
        Some(ErrorKind::AlreadyExists)
    );
    assert_eq!(names(&fs, "/").await, vec![("new".into(), EntryKind::Dir)]);
    assert_eq!(fs.metadata(&v("/new")).await.expect("stat").kind, EntryKind::Dir);
    assert!(names(&fs, "/new").await.is_empty(), "the hidden marker is listed");
    fs.create_dir(&v("/new/sub")).await.expect("mkdir nested");
    put(&fs, "/new/sub/f.txt", b"f").await;
    assert_eq!(
        fs.remove_dir(&v("/new/sub")).await.err().map(|e| e.kind()),
        Some(ErrorKind::DirectoryNotEmpty)
    );
    fs.remove_file(&v("/new/sub/f.txt")).await.expect("rm");
    // Still there once empty, as on a disk.
    assert_eq!(
        fs.metadata(&v("/new/sub")).await.expect("stat").kind,
        EntryKind::Dir
    );
    fs.remove_dir(&v("/new/sub")).await.expect("rmdir");
    // An empty directory renames without the danger setting.
    fs.rename(&v("/new"), &v("/renamed"), false)
        .await
        .expect("rename empty dir");
    assert_eq!(names(&fs, "/").await, vec![("renamed".into(), EntryKind::Dir)]);
    fs.remove_dir(&v("/renamed")).await.expect("rmdir");
    assert!(names(&fs, "/").await.is_empty());
    assert_eq!(
        fs.metadata(&v("/renamed")).await.err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    // The hidden marker's name is not a client's to use.
    let reserved = fs.open_write(&v("/.ferry-dir"), new()).await;
    assert_eq!(reserved.err().map(|e| e.kind()), Some(ErrorKind::InvalidName));
}

// ----- the same semantics on a second S3 implementation: moto, seen only through the S3 API -----

async fn open_moto() -> (TestBucket, S3Fs) {
    let b = s3kit::moto_bucket();
    let fs = S3Fs::connect(&b.config("")).await.expect("connect to moto");
    (b, fs)
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_uploads_resumes_and_aborts_like_s3s_fs() {
    let (_b, fs) = open_moto().await;
    let bytes = data(11 * 1024 * 1024, 7);
    put(&fs, "/big.bin", &bytes).await;
    assert_eq!(get(&fs, "/big.bin", 3).await, &bytes[3..]);
    let mut w = fs
        .open_write(&v("/big.bin"), with_resume(6_000_000))
        .await
        .expect("resume");
    w.write_owned(b"tail".to_vec()).await.expect("write");
    w.commit().await.expect("commit");
    let mut want = bytes[..6_000_000].to_vec();
    want.extend_from_slice(b"tail");
    assert_eq!(get(&fs, "/big.bin", 0).await, want);
    // An aborted multipart upload leaves neither a new object nor a changed old one.
    for path in ["/big.bin", "/never.bin"] {
        let mut w = fs.open_write(&v(path), new()).await.expect("open");
        w.write_owned(data(12 * 1024 * 1024, 8)).await.expect("write");
        w.abort().await;
    }
    assert_eq!(get(&fs, "/big.bin", 0).await, want);
    assert_eq!(
        fs.metadata(&v("/never.bin")).await.err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_directories_renames_and_mtime() {
    let (_b, fs) = open_moto().await;
    fs.create_dir(&v("/d")).await.expect("mkdir");
    fs.create_dir(&v("/d/e")).await.expect("mkdir nested");
    assert_eq!(names(&fs, "/d").await, vec![("e".into(), EntryKind::Dir)]);
    put(&fs, "/d/e/f", b"f").await;
    assert_eq!(
        fs.remove_dir(&v("/d/e")).await.err().map(|e| e.kind()),
        Some(ErrorKind::DirectoryNotEmpty)
    );
    assert_eq!(
        fs.rename(&v("/d"), &v("/x"), false).await.err().map(|e| e.kind()),
        Some(ErrorKind::DirectoryNotEmpty)
    );
    fs.rename(&v("/d/e/f"), &v("/d/g"), false)
        .await
        .expect("rename file");
    assert_eq!(get(&fs, "/d/g", 0).await, b"f");
    assert_eq!(
        fs.metadata(&v("/d/e/f")).await.err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    fs.remove_dir(&v("/d/e")).await.expect("rmdir now empty");
    let t = UNIX_EPOCH + Duration::from_secs(1_400_000_000);
    fs.set_modified(&v("/d/g"), t).await.expect("mtime");
    assert_eq!(fs.metadata(&v("/d/g")).await.expect("stat").modified, Some(t));
    assert_eq!(get(&fs, "/d/g", 0).await, b"f");
    assert_eq!(names(&fs, "/d").await, vec![("g".into(), EntryKind::File)]);
}

/// An operator on the bucket that is not ferry: another S3 tool writing objects.
fn other_tool(b: &TestBucket) -> opendal::Operator {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let builder = opendal::services::S3::default()
        .bucket(&b.name)
        .region("us-east-1")
        .endpoint(&b.endpoint)
        .access_key_id(s3kit::ACCESS_KEY)
        .secret_access_key(s3kit::SECRET_KEY)
        .disable_config_load()
        .disable_ec2_metadata();
    opendal::Operator::new(builder).expect("operator").finish()
}

#[tokio::test(flavor = "multi_thread")]
async fn digests_are_kept_as_metadata_and_never_served_stale() {
    use ferry_vfs::{Digests, StoredDigests};
    let b = bucket();
    let fs = open(&b).await;
    let content = data(300_000, 7);
    put(&fs, "/d.bin", &content).await;
    let kept = |size: usize, bytes: &[u8]| {
        Some(StoredDigests {
            size: size as u64,
            digests: Digests::of(bytes),
        })
    };
    assert_eq!(
        fs.stored_digests(&v("/d.bin")).await.expect("digests"),
        kept(content.len(), &content)
    );
    // A new mtime rewrites the object: the value is computed again; a rename copies it along.
    fs.set_modified(&v("/d.bin"), UNIX_EPOCH + Duration::from_secs(1_500_000_000))
        .await
        .expect("mtime");
    fs.rename(&v("/d.bin"), &v("/e.bin"), false)
        .await
        .expect("rename");
    assert_eq!(
        fs.stored_digests(&v("/e.bin")).await.expect("digests"),
        kept(content.len(), &content)
    );
    // A resumed upload hashes the copied prefix too.
    let mut w = fs
        .open_write(&v("/e.bin"), with_resume(1000))
        .await
        .expect("resume");
    w.write_owned(b"tail".to_vec()).await.expect("write");
    w.commit().await.expect("commit");
    let mut resumed = content[..1000].to_vec();
    resumed.extend_from_slice(b"tail");
    assert_eq!(
        fs.stored_digests(&v("/e.bin")).await.expect("digests"),
        kept(resumed.len(), &resumed)
    );

    // Replaced by another tool that even copies ferry's header onto other bytes of the same size:
    // the ETag (the new content's MD5) no longer matches.
    let other = other_tool(&b);
    let forged = fs
        .stored_digests(&v("/e.bin"))
        .await
        .expect("digests")
        .map(|s| format!("1 {} {}", s.size, s.digests.encode()))
        .expect("value");
    let mut evil = resumed.clone();
    evil[0] ^= 1;
    other
        .write_with("e.bin", evil)
        .user_metadata([("ferry-digests".to_owned(), forged)])
        .await
        .expect("other tool's put");
    assert_eq!(fs.stored_digests(&v("/e.bin")).await.expect("digests"), None);
    // Written by another tool without it: nothing.
    other.write("plain.bin", content.clone()).await.expect("put");
    assert_eq!(fs.stored_digests(&v("/plain.bin")).await.expect("digests"), None);

    // An object of more than one part (5 MiB) is a multipart upload, whose metadata is fixed before
    // the checksums are known: none is kept (docs/storage.md).
    put(&fs, "/big.bin", &data(6 << 20, 8)).await;
    assert_eq!(fs.stored_digests(&v("/big.bin")).await.expect("digests"), None);
    assert_eq!(
        fs.stored_digests(&v("/missing")).await.err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_show_the_stored_mtime() {
    let b = bucket();
    let fs = open(&b).await;
    for i in 0..40 {
        put(&fs, &format!("/f{i:02}"), b"x").await;
    }
    fs.create_dir(&v("/sub")).await.expect("mkdir");
    let t = |i: u64| UNIX_EPOCH + Duration::new(1_300_000_000 + i, 500);
    for i in (0..40).step_by(3) {
        fs.set_modified(&v(&format!("/f{i:02}")), t(i))
            .await
            .expect("mtime");
    }
    let mut stream = fs.list(&v("/")).await.expect("list");
    let mut seen = 0;
    loop {
        let batch = stream.next_batch(7).await.expect("batch");
        if batch.is_empty() {
            break;
        }
        for e in batch {
            let name = String::from_utf8(e.name).expect("utf-8");
            let Some(i) = name.strip_prefix('f').and_then(|n| n.parse::<u64>().ok()) else {
                assert_eq!(name, "sub");
                continue;
            };
            seen += 1;
            let modified = e.metadata.modified.expect("mtime");
            if i % 3 == 0 {
                assert_eq!(modified, t(i), "{name}: the stored mtime");
            } else {
                assert!(modified > SystemTime::now() - Duration::from_secs(3600), "{name}");
            }
        }
    }
    assert_eq!(seen, 40);
}
