//! Metadata changes (permission bits, modification time) obey the rule opening does: never on a
//! file with more than one name, never through a symlink out of the root. The outside file's mode
//! and mtime must stay as they were.

mod common;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Jail;
use ferry_vfs::ErrorKind;

/// The outside file's mode and mtime, to compare before and after.
fn facts(path: &std::path::Path) -> (u32, SystemTime) {
    let md = std::fs::metadata(path).expect("stat outside");
    (md.permissions().mode() & 0o7777, md.modified().expect("mtime"))
}

async fn every_change_is_refused(jail: &Jail, name: &[u8]) {
    let secret = jail.outside().join("secret.txt");
    let before = facts(&secret);
    let err = jail.fs.set_mode(name, 0o777).await.expect_err("mode refused");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{name:?}");
    let t = UNIX_EPOCH + Duration::from_secs(946_684_800);
    let err = jail.fs.set_modified(name, t).await.expect_err("mtime refused");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{name:?}");
    assert_eq!(
        facts(&secret),
        before,
        "the outside file changed through {name:?}"
    );
}

#[tokio::test]
async fn metadata_changes_never_reach_a_hard_linked_outside_file() {
    let jail = Jail::new();
    let secret = jail.outside().join("secret.txt");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::hard_link(&secret, jail.host("linked")).expect("hard link");
    every_change_is_refused(&jail, b"/linked").await;
}

#[tokio::test]
async fn metadata_changes_never_follow_a_symlink_out_of_the_root() {
    let jail = Jail::new();
    let secret = jail.outside().join("secret.txt");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    symlink(&secret, jail.host("abs")).expect("absolute symlink");
    symlink("../outside/secret.txt", jail.host("rel")).expect("relative symlink");
    symlink("../outside", jail.host("dir")).expect("directory symlink");
    for name in [&b"/abs"[..], b"/rel", b"/dir/secret.txt"] {
        every_change_is_refused(&jail, name).await;
    }
    // The symlinked directory itself is outside too.
    let before = facts(&jail.outside());
    assert!(jail.fs.set_mode(b"/dir", 0o777).await.is_err());
    assert_eq!(facts(&jail.outside()), before);
}

#[tokio::test]
async fn metadata_changes_work_on_plain_files_dirs_and_inside_symlinks() {
    let jail = Jail::new();
    std::fs::write(jail.host("f"), b"x").expect("write");
    std::fs::create_dir(jail.host("d")).expect("mkdir");
    symlink("f", jail.host("to_f")).expect("inside symlink");
    let t = UNIX_EPOCH + Duration::from_secs(946_684_800);
    for (name, host) in [(&b"/f"[..], "f"), (b"/d", "d"), (b"/to_f", "f")] {
        jail.fs.set_mode(name, 0o640).await.expect("chmod");
        jail.fs.set_modified(name, t).await.expect("mtime");
        assert_eq!(facts(&jail.host(host)), (0o640, t), "{name:?}");
    }
    // A file with mode 000 can be given its permissions back.
    jail.fs.set_mode(b"/f", 0).await.expect("chmod 000");
    jail.fs.set_mode(b"/f", 0o644).await.expect("chmod back");
    assert_eq!(facts(&jail.host("f")).0, 0o644);
}
