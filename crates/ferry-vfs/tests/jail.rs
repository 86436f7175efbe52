//! The local back-end never lets a path or a symlink lead outside its root.

mod common;

use std::os::unix::fs::symlink;

use common::{list_names, read_all, upload, Jail, WriteMode};
use ferry_vfs::{EntryKind, ErrorKind};

fn assert_denied<T: std::fmt::Debug>(result: ferry_vfs::Result<T>, what: &str) {
    let err = result.expect_err(what);
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{what}");
}

/// A jail with `/out -> ../outside` (relative escape) and `/etc -> /etc` (absolute).
fn escaping_jail() -> Jail {
    let jail = Jail::new();
    symlink("../outside", jail.host("out")).expect("symlink out");
    symlink("/etc", jail.host("etc")).expect("symlink etc");
    symlink("../outside/secret.txt", jail.host("secret")).expect("symlink secret");
    jail
}

#[tokio::test]
async fn dot_dot_paths_never_leave_the_root() {
    // `..` stops at the root when the path is normalised, so this names `/outside/secret.txt`
    // inside the jail, which does not exist.
    let jail = Jail::new();
    let path = b"/../outside/secret.txt";
    assert_eq!(
        jail.fs.metadata(path).await.expect_err("dotdot").kind(),
        ErrorKind::NotFound
    );
    let err = jail.fs.open_read(path, 0).await.expect_err("dotdot");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(jail.fs.metadata(b"/..").await.expect("root").kind, EntryKind::Dir);
}

#[tokio::test]
async fn absolute_symlink_to_etc_is_refused() {
    let jail = escaping_jail();
    assert_denied(jail.fs.metadata(b"/etc/passwd").await, "metadata");
    assert_denied(read_all(&jail.fs, b"/etc/passwd", 0).await, "read");
    assert_denied(jail.fs.list(b"/etc").await, "list");
    assert_denied(jail.fs.metadata(b"/etc").await, "metadata of link");
}

#[tokio::test]
async fn absolute_symlink_into_the_jail_itself_is_refused() {
    let jail = Jail::new();
    std::fs::write(jail.host("inner.txt"), b"inner").expect("write");
    symlink(jail.host("inner.txt"), jail.host("abs")).expect("symlink");
    assert_denied(read_all(&jail.fs, b"/abs", 0).await, "read through absolute link");
}

#[tokio::test]
async fn relative_symlink_escape_is_refused_for_reads_and_listing() {
    let jail = escaping_jail();
    assert_denied(
        read_all(&jail.fs, b"/out/secret.txt", 0).await,
        "read via dir link",
    );
    assert_denied(read_all(&jail.fs, b"/secret", 0).await, "read via file link");
    assert_denied(jail.fs.metadata(b"/out/secret.txt").await, "metadata");
    assert_denied(jail.fs.metadata(b"/secret").await, "metadata of file link");
    assert_denied(jail.fs.list(b"/out").await, "list");
    assert_denied(jail.fs.scoped(b"/out", false).await, "scoped");
}

#[tokio::test]
async fn relative_symlink_escape_is_refused_for_writes() {
    let jail = escaping_jail();
    for mode in [
        WriteMode::Create,
        WriteMode::Unique,
        WriteMode::Append,
        WriteMode::At(0),
    ] {
        assert_denied(
            jail.fs.open_write(b"/out/new.txt", mode).await,
            "write into linked dir",
        );
    }
    assert_denied(
        jail.fs.open_write(b"/secret", WriteMode::Append).await,
        "append via file link",
    );
    assert_denied(
        jail.fs.open_write(b"/secret", WriteMode::At(1)).await,
        "resume via file link",
    );
    assert_denied(jail.fs.create_dir(b"/out/newdir").await, "mkdir");
    assert_denied(
        jail.fs
            .set_modified(b"/secret", std::time::SystemTime::now())
            .await,
        "mtime",
    );
    assert!(!jail.outside().join("new.txt").exists());
    assert!(!jail.outside().join("newdir").exists());
    assert_eq!(common::host_names(&jail.outside()), vec!["secret.txt"]);
    assert_eq!(
        std::fs::read(jail.outside().join("secret.txt")).expect("read"),
        b"top secret"
    );
}

#[tokio::test]
async fn create_over_an_escaping_file_link_replaces_the_link_not_the_target() {
    let jail = escaping_jail();
    upload(&jail.fs, b"/secret", WriteMode::Create, b"mine")
        .await
        .expect("upload");
    assert_eq!(
        std::fs::read(jail.outside().join("secret.txt")).expect("read"),
        b"top secret"
    );
    assert!(!jail.host("secret").is_symlink());
    assert_eq!(std::fs::read(jail.host("secret")).expect("read"), b"mine");
}

#[tokio::test]
async fn relative_symlink_escape_is_refused_for_rename_and_remove() {
    let jail = escaping_jail();
    std::fs::write(jail.host("a.txt"), b"a").expect("write");
    assert_denied(jail.fs.rename(b"/a.txt", b"/out/stolen").await, "rename target");
    assert_denied(
        jail.fs.rename(b"/out/secret.txt", b"/mine").await,
        "rename source",
    );
    assert_denied(jail.fs.remove_file(b"/out/secret.txt").await, "remove file");
    assert_denied(jail.fs.remove_dir(b"/out/x").await, "remove dir");
    assert!(jail.host("a.txt").exists());
    assert_eq!(common::host_names(&jail.outside()), vec!["secret.txt"]);
}

#[tokio::test]
async fn removing_an_escaping_link_removes_only_the_link() {
    let jail = escaping_jail();
    jail.fs.remove_file(b"/secret").await.expect("remove link");
    assert!(!jail.host("secret").is_symlink());
    assert!(jail.outside().join("secret.txt").exists());
}

#[tokio::test]
async fn symlink_loops_are_refused() {
    let jail = Jail::new();
    symlink("loop2", jail.host("loop1")).expect("symlink");
    symlink("loop1", jail.host("loop2")).expect("symlink");
    symlink("self", jail.host("self")).expect("symlink");
    for path in [&b"/loop1"[..], b"/self", b"/loop1/x"] {
        assert_denied(jail.fs.metadata(path).await, "metadata");
        assert_denied(jail.fs.open_read(path, 0).await, "read");
    }
    assert_denied(jail.fs.list(b"/loop2").await, "list");
}

#[tokio::test]
async fn symlinks_inside_the_jail_are_followed() {
    let jail = Jail::new();
    std::fs::create_dir_all(jail.host("dir/sub")).expect("mkdir");
    std::fs::write(jail.host("dir/file.txt"), b"inner").expect("write");
    std::fs::write(jail.host("top.txt"), b"top").expect("write");
    symlink("dir/file.txt", jail.host("link")).expect("symlink");
    symlink("../../top.txt", jail.host("dir/sub/up")).expect("symlink");
    symlink("dir", jail.host("dirlink")).expect("symlink");
    assert_eq!(
        read_all(&jail.fs, b"/link", 0).await.expect("read link"),
        b"inner"
    );
    assert_eq!(
        read_all(&jail.fs, b"/dir/sub/up", 0).await.expect("read up"),
        b"top"
    );
    assert_eq!(
        read_all(&jail.fs, b"/dirlink/file.txt", 0).await.expect("read"),
        b"inner"
    );
    let md = jail.fs.metadata(b"/link").await.expect("metadata");
    assert_eq!((md.kind, md.size), (EntryKind::File, 5));
    assert_eq!(list_names(&jail.fs, b"/dirlink").await.expect("list").len(), 2);
    upload(&jail.fs, b"/dirlink/new", WriteMode::Create, b"n")
        .await
        .expect("upload via link");
    assert!(jail.host("dir/new").is_file());
}

#[tokio::test]
async fn listing_follows_inner_links_and_marks_escaping_ones_as_symlinks() {
    let jail = escaping_jail();
    std::fs::create_dir(jail.host("sub")).expect("mkdir");
    std::fs::write(jail.host("top.txt"), b"top").expect("write");
    symlink("../top.txt", jail.host("sub/up")).expect("symlink");
    symlink("../../outside", jail.host("sub/away")).expect("symlink");
    symlink("missing", jail.host("sub/dangling")).expect("symlink");
    let mut stream = jail.fs.list(b"/sub").await.expect("list");
    let mut entries = stream.next_batch(10).await.expect("batch");
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let kinds: Vec<_> = entries
        .iter()
        .map(|e| (e.name.clone(), e.metadata.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (b"away".to_vec(), EntryKind::Symlink),
            (b"dangling".to_vec(), EntryKind::Symlink),
            (b"up".to_vec(), EntryKind::File),
        ]
    );
    assert_eq!(entries[2].metadata.size, 3);
}

#[tokio::test]
async fn scoped_home_cannot_reach_its_siblings_through_symlinks() {
    let jail = Jail::new();
    std::fs::create_dir_all(jail.host("home/alice")).expect("mkdir");
    std::fs::write(jail.host("home/bob.txt"), b"bob").expect("write");
    symlink("../bob.txt", jail.host("home/alice/bob")).expect("symlink");
    let alice = jail.fs.scoped(b"/home/alice", false).await.expect("scoped");
    assert_denied(read_all(&alice, b"/bob", 0).await, "read sibling");
}
