//! Short local operations run where they are called, without the blocking pool, only where they cannot
//! wait for a device, and with the same jail and upload rules as the pooled path.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{read_all, ByteFs, WriteMode};
use ferry_vfs::{ErrorKind, FileWriter, LocalFs};
use tempfile::TempDir;

/// Runs `f` on a single-threaded runtime and returns its output with the number of blocking-pool
/// threads it started (a current-thread runtime has no other threads).
fn run_counting_pool_threads<F: std::future::Future>(f: F) -> (F::Output, usize) {
    let started = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&started);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_start(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .expect("runtime");
    let out = runtime.block_on(f);
    drop(runtime);
    (out, started.load(Ordering::SeqCst))
}

/// A jail in a fresh directory under `base`, with `outside/secret.txt` next to its root.
fn jail_in(base: &Path) -> (TempDir, ByteFs) {
    let tmp = tempfile::tempdir_in(base).expect("tempdir");
    std::fs::create_dir(tmp.path().join("outside")).expect("outside dir");
    std::fs::write(tmp.path().join("outside/secret.txt"), b"top secret").expect("secret");
    let fs = LocalFs::open(&tmp.path().join("root")).expect("open jail");
    (tmp, ByteFs(Arc::new(fs)))
}

/// A jail on tmpfs (`/dev/shm`), where small uploads skip the pool too.
fn memory_jail() -> (TempDir, ByteFs) {
    let shm = Path::new("/dev/shm");
    assert!(
        shm.is_dir(),
        "these tests need /dev/shm (tmpfs) for a jail in memory; mount one there"
    );
    jail_in(shm)
}

#[test]
fn small_download_and_stat_on_a_disk_take_no_pool_thread() {
    // `tempfile` puts it in the temporary directory, a disk file system or tmpfs: either has the
    // cached-open fast path.
    let (tmp, fs) = jail_in(&std::env::temp_dir());
    std::fs::write(tmp.path().join("root/f.bin"), vec![7u8; 4096]).expect("write");
    let (result, threads) = run_counting_pool_threads(async {
        let meta = fs.metadata(b"/f.bin").await?;
        let reader = fs.open_read(b"/f.bin", 0).await?;
        Ok::<_, ferry_vfs::Error>((meta.size, reader.size(), reader.zero_copy().is_some()))
    });
    assert_eq!(result.expect("stat and open"), (4096, Some(4096), true));
    assert_eq!(
        threads, 0,
        "stat and open of a cached path used the blocking pool"
    );
}

#[test]
fn small_upload_and_download_in_memory_take_no_pool_thread() {
    let (tmp, fs) = memory_jail();
    std::fs::create_dir(tmp.path().join("root/up")).expect("mkdir");
    let (result, threads) = run_counting_pool_threads(async {
        // A new file's name is known missing from the cache (what the quota check asks).
        assert_eq!(
            fs.metadata(b"/up/f.bin").await.expect_err("before upload").kind(),
            ErrorKind::NotFound
        );
        let w = fs.open_write(b"/up/f.bin", WriteMode::Create).await?;
        w.commit_with(b"small file".to_vec()).await?;
        read_all(&fs, b"/up/f.bin", 0).await
    });
    assert_eq!(result.expect("upload then read"), b"small file");
    assert_eq!(
        threads, 0,
        "a small upload and download on tmpfs used the blocking pool"
    );
    // (Invisible until committed: the uploads tests check that on both paths.)
    let names: Vec<_> = std::fs::read_dir(tmp.path().join("root/up"))
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["f.bin"], "only the committed file, no temp file");
}

#[test]
fn aborted_upload_in_memory_leaves_nothing() {
    let (tmp, fs) = memory_jail();
    std::fs::write(tmp.path().join("root/keep.bin"), b"old").expect("write");
    let (result, threads) = run_counting_pool_threads(async {
        let w = fs.open_write(b"/keep.bin", WriteMode::Create).await?;
        w.abort().await;
        read_all(&fs, b"/keep.bin", 0).await
    });
    assert_eq!(result.expect("read"), b"old", "the previous file is untouched");
    assert_eq!(threads, 0);
    let names: Vec<_> = std::fs::read_dir(tmp.path().join("root"))
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["keep.bin"], "the temp file is gone");
}

#[test]
fn fast_paths_keep_the_jail_in_memory() {
    let (tmp, fs) = memory_jail();
    let root = tmp.path().join("root");
    symlink("../outside", root.join("out")).expect("symlink out");
    symlink("/etc", root.join("etc")).expect("symlink etc");
    std::fs::write(root.join("inner.txt"), b"inner").expect("write");
    symlink("inner.txt", root.join("link")).expect("inner link");
    std::fs::hard_link(tmp.path().join("outside/secret.txt"), root.join("hard")).expect("hard link");
    let (results, _) = run_counting_pool_threads(async {
        (
            fs.metadata(b"/out/secret.txt").await.map(|m| m.size),
            read_all(&fs, b"/out/secret.txt", 0).await,
            read_all(&fs, b"/etc/passwd", 0).await,
            read_all(&fs, b"/hard", 0).await,
            fs.open_write(b"/out/new.txt", WriteMode::Create).await.map(drop),
            read_all(&fs, b"/link", 0).await,
            read_all(&fs, b"/", 0).await,
        )
    });
    let denied = |r: Result<_, ferry_vfs::Error>, what: &str| {
        assert_eq!(
            r.map(drop).expect_err(what).kind(),
            ErrorKind::PermissionDenied,
            "{what}"
        )
    };
    denied(results.0.map(drop), "metadata through an escaping link");
    denied(results.1.map(drop), "read through a relative escaping link");
    denied(results.2.map(drop), "read through an absolute link");
    denied(results.3.map(drop), "read of a hard link to a file outside");
    denied(results.4, "upload through an escaping link");
    assert_eq!(
        results.5.expect("inner link"),
        b"inner",
        "links inside the jail are followed"
    );
    assert_eq!(results.6.expect_err("root").kind(), ErrorKind::IsADirectory);
    assert!(!tmp.path().join("outside/new.txt").exists());
}

#[test]
fn a_fifo_is_refused_without_hanging() {
    let (tmp, fs) = memory_jail();
    let status = std::process::Command::new("mkfifo")
        .arg(tmp.path().join("root/pipe"))
        .status()
        .expect("mkfifo (coreutils) must be installed");
    assert!(status.success(), "mkfifo failed");
    let (result, _) = run_counting_pool_threads(async { read_all(&fs, b"/pipe", 0).await });
    assert_eq!(result.expect_err("fifo").kind(), ErrorKind::PermissionDenied);
}
