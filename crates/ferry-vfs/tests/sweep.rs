//! Sweeping temporary upload files: only `.ferry-upload.*.tmp` files written before the cut-off go, in
//! every directory under the root; other files, fresh uploads and anything behind a symbolic link stay.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, SystemTime};

use ferry_vfs::LocalFs;

fn file(path: &Path, age: Duration) {
    std::fs::write(path, b"partial upload").expect("write");
    let when = SystemTime::now() - age;
    File::options()
        .write(true)
        .open(path)
        .expect("open")
        .set_modified(when)
        .expect("set mtime");
}

#[test]
fn stale_temp_files_are_removed_and_everything_else_stays() {
    let root = tempfile::tempdir().expect("root");
    let outside = tempfile::tempdir().expect("outside");
    let r = root.path();
    std::fs::create_dir_all(r.join("a/b")).expect("mkdir");
    let hour = Duration::from_secs(3600);
    file(&r.join(".ferry-upload.0001.tmp"), 2 * hour);
    file(&r.join("a/b/.ferry-upload.0002.tmp"), 2 * hour);
    file(&r.join("a/.ferry-upload.0003.tmp"), Duration::ZERO); // an upload in progress
    file(&r.join("a/.ferry-upload.notes"), 2 * hour); // not ours: wrong suffix
    file(&r.join("report.tmp"), 2 * hour);
    file(&outside.path().join(".ferry-upload.0004.tmp"), 2 * hour);
    std::os::unix::fs::symlink(outside.path(), r.join("link")).expect("symlink");

    let fs = LocalFs::open(r).expect("open");
    let swept = fs.sweep_temp_files(SystemTime::now() - hour);
    assert_eq!(swept.removed, 2, "{swept:?}");
    assert_eq!(swept.bytes, 2 * b"partial upload".len() as u64);
    assert!(!r.join(".ferry-upload.0001.tmp").exists());
    assert!(!r.join("a/b/.ferry-upload.0002.tmp").exists());
    assert!(r.join("a/.ferry-upload.0003.tmp").exists(), "fresh upload kept");
    assert!(r.join("a/.ferry-upload.notes").exists());
    assert!(r.join("report.tmp").exists());
    assert!(
        outside.path().join(".ferry-upload.0004.tmp").exists(),
        "symbolic links are not followed"
    );

    // At start-up the cut-off is the start time: every earlier temp file goes.
    let swept = fs.sweep_temp_files(SystemTime::now() + Duration::from_secs(1));
    assert_eq!(swept.removed, 1);
    assert!(!r.join("a/.ferry-upload.0003.tmp").exists());
}
