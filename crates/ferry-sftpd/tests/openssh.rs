//! OpenSSH `sftp` (batch mode) and `scp` against ferry.

mod common;

use common::*;

#[test]
fn sftp_put_get_ls_mkdir_rename_rm_rmdir() {
    if skip_unless("sftp") {
        return;
    }
    let s = TestServer::start();
    write_random(&s.local("up.bin"), 300_000, 1);
    let run = s.sftp_batch(
        "mkdir /dir\nput up.bin /dir/a.bin\nls -l /dir\nrename /dir/a.bin /dir/b.bin\nget /dir/b.bin down.bin\n",
    );
    run.assert_success();
    assert!(run.stdout.contains("a.bin"), "ls shows the upload:\n{}", run.dump());
    assert_eq!(sha256_file(&s.local("down.bin")), sha256_file(&s.local("up.bin")));
    assert_eq!(sha256_file(&s.path("dir/b.bin")), sha256_file(&s.local("up.bin")));
    assert!(!s.path("dir/a.bin").exists());
    assert_eq!(names(&s.path("dir")), ["b.bin"], "no temp files left behind");

    // rmdir of a non-empty directory fails; rm then rmdir works.
    s.sftp_batch("rmdir /dir\n").assert_failure();
    s.sftp_batch("rm /dir/b.bin\nrmdir /dir\n").assert_success();
    assert!(!s.path("dir").exists());
}
