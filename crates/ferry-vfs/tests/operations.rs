//! Every storage operation of the local back-end: success and error kinds.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, SystemTime};

use common::{list_names, read_all, upload, Jail, WriteMode};
use ferry_vfs::{EntryKind, ErrorKind};

#[tokio::test]
async fn open_creates_missing_root() {
    let jail = Jail::new();
    assert!(jail.host("").is_dir());
    let md = jail.fs.metadata(b"/").await.expect("root metadata");
    assert_eq!(md.kind, EntryKind::Dir);
}

#[tokio::test]
async fn metadata_reports_file_facts() {
    let jail = Jail::new();
    std::fs::write(jail.host("f.txt"), b"hello").expect("write");
    let md = jail.fs.metadata(b"/f.txt").await.expect("metadata");
    assert_eq!(md.kind, EntryKind::File);
    assert_eq!(md.size, 5);
    assert!(md.modified.is_some());
    assert!(md.mode.is_some_and(|m| m <= 0o7777));
    assert_eq!(md.nlink, 1);
    assert!(md.unique.is_some());
}

#[tokio::test]
async fn metadata_of_missing_path_is_not_found() {
    let jail = Jail::new();
    let err = jail.fs.metadata(b"/nope").await.expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.to_string(), "no such file or directory");
}

#[tokio::test]
async fn metadata_through_a_file_is_not_a_directory() {
    let jail = Jail::new();
    std::fs::write(jail.host("f"), b"x").expect("write");
    let err = jail.fs.metadata(b"/f/child").await.expect_err("through file");
    assert_eq!(err.kind(), ErrorKind::NotADirectory);
}

#[tokio::test]
async fn read_from_offset_returns_the_tail() {
    let jail = Jail::new();
    std::fs::write(jail.host("f"), b"0123456789").expect("write");
    assert_eq!(read_all(&jail.fs, b"/f", 0).await.expect("read"), b"0123456789");
    assert_eq!(read_all(&jail.fs, b"/f", 4).await.expect("read"), b"456789");
    assert_eq!(read_all(&jail.fs, b"/f", 100).await.expect("read"), b"");
}

#[tokio::test]
async fn read_of_directory_is_a_directory_and_missing_is_not_found() {
    let jail = Jail::new();
    std::fs::create_dir(jail.host("d")).expect("mkdir");
    let err = jail.fs.open_read(b"/d", 0).await.expect_err("dir");
    assert_eq!(err.kind(), ErrorKind::IsADirectory);
    let err = jail.fs.open_read(b"/", 0).await.expect_err("root");
    assert_eq!(err.kind(), ErrorKind::IsADirectory);
    let err = jail.fs.open_read(b"/missing", 0).await.expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn list_of_a_file_is_not_a_directory() {
    let jail = Jail::new();
    std::fs::write(jail.host("f"), b"x").expect("write");
    let err = jail.fs.list(b"/f").await.expect_err("file");
    assert_eq!(err.kind(), ErrorKind::NotADirectory);
    let err = jail.fs.list(b"/missing").await.expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn list_reports_kinds_and_sizes() {
    let jail = Jail::new();
    std::fs::create_dir(jail.host("d")).expect("mkdir");
    std::fs::write(jail.host("d/a"), b"abc").expect("write");
    std::fs::create_dir(jail.host("d/sub")).expect("mkdir");
    let mut stream = jail.fs.list(b"/d").await.expect("list");
    let mut entries = stream.next_batch(10).await.expect("batch");
    assert!(stream.next_batch(10).await.expect("end").is_empty());
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].name, b"a");
    assert_eq!(
        (entries[0].metadata.kind, entries[0].metadata.size),
        (EntryKind::File, 3)
    );
    assert_eq!(entries[1].name, b"sub");
    assert_eq!(entries[1].metadata.kind, EntryKind::Dir);
}

#[tokio::test]
async fn create_dir_then_duplicate_is_already_exists() {
    let jail = Jail::new();
    jail.fs.create_dir(b"/new").await.expect("mkdir");
    assert!(jail.host("new").is_dir());
    let err = jail.fs.create_dir(b"/new").await.expect_err("dup");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let err = jail.fs.create_dir(b"/").await.expect_err("root");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let err = jail.fs.create_dir(b"/no/parent").await.expect_err("no parent");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn remove_dir_refuses_non_empty_files_and_root() {
    let jail = Jail::new();
    std::fs::create_dir_all(jail.host("full/inner")).expect("mkdir");
    std::fs::write(jail.host("file"), b"x").expect("write");
    let err = jail.fs.remove_dir(b"/full").await.expect_err("non-empty");
    assert_eq!(err.kind(), ErrorKind::DirectoryNotEmpty);
    let err = jail.fs.remove_dir(b"/file").await.expect_err("file");
    assert_eq!(err.kind(), ErrorKind::NotADirectory);
    let err = jail.fs.remove_dir(b"/").await.expect_err("root");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    let err = jail.fs.remove_dir(b"/missing").await.expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    jail.fs.remove_dir(b"/full/inner").await.expect("rmdir");
    assert!(!jail.host("full/inner").exists());
}

#[tokio::test]
async fn remove_file_refuses_directories() {
    let jail = Jail::new();
    std::fs::create_dir(jail.host("d")).expect("mkdir");
    std::fs::write(jail.host("f"), b"x").expect("write");
    let err = jail.fs.remove_file(b"/d").await.expect_err("dir");
    assert_eq!(err.kind(), ErrorKind::IsADirectory);
    let err = jail.fs.remove_file(b"/missing").await.expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    jail.fs.remove_file(b"/f").await.expect("rm");
    assert!(!jail.host("f").exists());
}

#[tokio::test]
async fn rename_moves_files_and_directories() {
    let jail = Jail::new();
    std::fs::create_dir(jail.host("d")).expect("mkdir");
    std::fs::write(jail.host("a"), b"data").expect("write");
    jail.fs.rename(b"/a", b"/d/b").await.expect("rename file");
    assert_eq!(std::fs::read(jail.host("d/b")).expect("read"), b"data");
    jail.fs.rename(b"/d", b"/e").await.expect("rename dir");
    assert!(jail.host("e/b").is_file());
    let err = jail.fs.rename(b"/missing", b"/x").await.expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = jail.fs.rename(b"/", b"/x").await.expect_err("root");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
}

#[tokio::test]
async fn rename_of_a_file_over_a_directory_is_refused() {
    let jail = Jail::new();
    std::fs::create_dir(jail.host("d")).expect("mkdir");
    std::fs::write(jail.host("f"), b"x").expect("write");
    let err = jail.fs.rename(b"/f", b"/d").await.expect_err("file over dir");
    assert_eq!(err.kind(), ErrorKind::IsADirectory);
}

#[tokio::test]
async fn set_modified_changes_mtime() {
    let jail = Jail::new();
    std::fs::write(jail.host("f"), b"x").expect("write");
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    jail.fs.set_modified(b"/f", when).await.expect("set");
    assert_eq!(jail.fs.metadata(b"/f").await.expect("md").modified, Some(when));
    let err = jail
        .fs
        .set_modified(b"/missing", when)
        .await
        .expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn scoped_storage_is_jailed_at_home() {
    let jail = Jail::new();
    let home = jail.fs.scoped(b"/users/alice", true).await.expect("scoped");
    upload(&home, b"/hello.txt", WriteMode::Create, b"hi")
        .await
        .expect("upload");
    assert_eq!(
        std::fs::read(jail.host("users/alice/hello.txt")).expect("read"),
        b"hi"
    );
    std::fs::write(jail.host("users/other.txt"), b"x").expect("write");
    assert_eq!(
        list_names(&home, b"/").await.expect("list"),
        vec![b"hello.txt".to_vec()]
    );
    // `..` stops at the home's root: this is `/other.txt` inside the home, which does not exist.
    let err = home.metadata(b"/../other.txt").await.expect_err("escape");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// A home's storage keeps no table of shared home handles (it is rarely scoped again, and the table
/// cost every session memory); scoping it again still opens, creates and jails like the root's.
#[tokio::test]
async fn a_scoped_storage_scoped_again_is_jailed_at_the_inner_home() {
    let jail = Jail::new();
    let home = jail.fs.scoped(b"/users/alice", true).await.expect("scoped");
    let err = home
        .scoped(b"/inbox", false)
        .await
        .expect_err("missing inner home");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let inbox = home.scoped(b"/inbox", true).await.expect("scoped again");
    upload(&inbox, b"/a.txt", WriteMode::Create, b"in")
        .await
        .expect("upload");
    assert_eq!(
        std::fs::read(jail.host("users/alice/inbox/a.txt")).expect("read"),
        b"in"
    );
    std::fs::write(jail.host("users/alice/outside.txt"), b"x").expect("write");
    let err = inbox.metadata(b"/../outside.txt").await.expect_err("escape");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // Two scopes of the same inner home see the same directory.
    let again = home.scoped(b"/inbox", false).await.expect("scoped a second time");
    assert_eq!(
        list_names(&again, b"/").await.expect("list"),
        vec![b"a.txt".to_vec()]
    );
}

#[tokio::test]
async fn scoped_without_create_requires_existing_home() {
    let jail = Jail::new();
    let err = jail.fs.scoped(b"/nobody", false).await.expect_err("missing home");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    std::fs::write(jail.host("file"), b"x").expect("write");
    let err = jail.fs.scoped(b"/file", false).await.expect_err("file home");
    assert_eq!(err.kind(), ErrorKind::NotADirectory);
    assert!(jail.fs.scoped(b"/", false).await.is_ok());
}

#[tokio::test]
async fn non_utf8_name_round_trips() {
    let jail = Jail::new();
    let name: &[u8] = b"caf\xe9-\xff.bin";
    let mut path = b"/".to_vec();
    path.extend_from_slice(name);
    upload(&jail.fs, &path, WriteMode::Create, b"bytes")
        .await
        .expect("upload");
    assert!(jail
        .tmp
        .path()
        .join("root")
        .join(OsStr::from_bytes(name))
        .is_file());
    assert_eq!(
        list_names(&jail.fs, b"/").await.expect("list"),
        vec![name.to_vec()]
    );
    assert_eq!(read_all(&jail.fs, &path, 0).await.expect("read"), b"bytes");
    jail.fs.remove_file(&path).await.expect("remove");
}

#[tokio::test]
async fn invalid_paths_are_refused_before_touching_the_disk() {
    let jail = Jail::new();
    for bad in [
        &b"/a\0b"[..],
        b"/.ferry-upload.x.tmp",
        b"/d/.ferry-upload.x.tmp/y",
    ] {
        assert_eq!(
            jail.fs.metadata(bad).await.expect_err("bad").kind(),
            ErrorKind::InvalidName
        );
        let err = jail.fs.open_write(bad, WriteMode::Create).await.expect_err("bad");
        assert_eq!(err.kind(), ErrorKind::InvalidName);
        assert_eq!(
            jail.fs.create_dir(bad).await.expect_err("bad").kind(),
            ErrorKind::InvalidName
        );
        assert_eq!(
            jail.fs.rename(b"/x", bad).await.expect_err("bad").kind(),
            ErrorKind::InvalidName
        );
    }
}

#[tokio::test]
async fn overlong_name_is_invalid() {
    let jail = Jail::new();
    let mut path = b"/".to_vec();
    path.extend(std::iter::repeat_n(b'n', 300));
    let err = jail.fs.create_dir(&path).await.expect_err("too long");
    assert_eq!(err.kind(), ErrorKind::InvalidName);
}

#[tokio::test]
async fn debug_and_errors_never_show_the_host_path() {
    let jail = Jail::new();
    let host = jail.tmp.path().to_string_lossy().into_owned();
    assert!(!format!("{:?}", jail.fs).contains(&host));
    let err = jail.fs.open_read(b"/missing", 0).await.expect_err("missing");
    assert!(!err.to_string().contains(&host));
    assert!(!format!("{err:?}").contains(&host));
}

#[tokio::test]
async fn a_directory_moved_into_itself_says_so() {
    let jail = Jail::new();
    std::fs::create_dir_all(jail.host("d/sub")).expect("mkdir");
    for to in [&b"/d/inside"[..], b"/d/sub/deeper"] {
        let err = jail.fs.rename(b"/d", to).await.expect_err("into itself");
        assert_eq!(err.kind(), ErrorKind::MoveIntoItself, "{to:?}");
        assert_eq!(err.to_string(), "cannot move a directory into itself");
    }
    assert!(jail.host("d/sub").is_dir(), "nothing moved");
    // A sibling whose name merely starts the same is fine.
    jail.fs.rename(b"/d", b"/d2").await.expect("rename to a sibling");
}

#[tokio::test]
async fn offsets_no_file_can_reach_are_out_of_range() {
    let jail = Jail::new();
    std::fs::write(jail.host("f"), b"abc").expect("write");
    let err = read_all(&jail.fs, b"/f", u64::MAX)
        .await
        .expect_err("read offset");
    assert_eq!(err.kind(), ErrorKind::OffsetOutOfRange);
    let err = upload(&jail.fs, b"/f", WriteMode::At(u64::MAX), b"x")
        .await
        .expect_err("write offset");
    assert_eq!(err.kind(), ErrorKind::OffsetOutOfRange);
    assert_eq!(
        std::fs::read(jail.host("f")).expect("read"),
        b"abc",
        "nothing lost"
    );
}

#[tokio::test]
async fn an_overwrite_keeps_the_old_files_mode() {
    use std::os::unix::fs::PermissionsExt;
    let jail = Jail::new();
    std::fs::write(jail.host("run.sh"), b"old").expect("write");
    std::fs::set_permissions(jail.host("run.sh"), std::fs::Permissions::from_mode(0o750)).expect("chmod");
    upload(&jail.fs, b"/run.sh", WriteMode::Create, b"new")
        .await
        .expect("overwrite");
    let md = std::fs::metadata(jail.host("run.sh")).expect("stat");
    assert_eq!(md.permissions().mode() & 0o7777, 0o750);
    assert_eq!(std::fs::read(jail.host("run.sh")).expect("read"), b"new");
}

#[tokio::test]
async fn an_overwrite_by_root_keeps_the_old_files_owner() {
    use std::os::unix::fs::MetadataExt;
    let jail = Jail::new();
    std::fs::write(jail.host("owned"), b"old").expect("write");
    if std::os::unix::fs::chown(jail.host("owned"), Some(4321), Some(4322)).is_err() {
        // Only root can give a file away; as anyone else the owner is the server's user anyway.
        eprintln!("not running as root: owner preservation not exercised");
        return;
    }
    upload(&jail.fs, b"/owned", WriteMode::Create, b"new")
        .await
        .expect("overwrite");
    let md = std::fs::metadata(jail.host("owned")).expect("stat");
    assert_eq!((md.uid(), md.gid()), (4321, 4322));
}

#[tokio::test]
async fn rename_without_replace_never_overwrites_files_or_directories() {
    let jail = Jail::new();
    upload(&jail.fs, b"/a", WriteMode::Create, b"a")
        .await
        .expect("upload");
    upload(&jail.fs, b"/b", WriteMode::Create, b"b")
        .await
        .expect("upload");
    jail.fs.create_dir(b"/d").await.expect("mkdir");
    jail.fs.create_dir(b"/e").await.expect("mkdir");
    let kind = |r: ferry_vfs::Result<()>| r.expect_err("refused").kind();
    assert_eq!(
        kind(jail.fs.rename_noreplace(b"/a", b"/b").await),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind(jail.fs.rename_noreplace(b"/d", b"/e").await),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind(jail.fs.rename_noreplace(b"/a", b"/d").await),
        ErrorKind::AlreadyExists
    );
    assert_eq!(read_all(&jail.fs, b"/b", 0).await.expect("read"), b"b");
    jail.fs
        .rename_noreplace(b"/a", b"/d/a")
        .await
        .expect("to a free name");
    jail.fs
        .rename_noreplace(b"/e", b"/d/e")
        .await
        .expect("a directory to a free name");
    assert_eq!(read_all(&jail.fs, b"/d/a", 0).await.expect("read"), b"a");
    assert_eq!(
        kind(jail.fs.rename_noreplace(b"/", b"/x").await),
        ErrorKind::PermissionDenied
    );
}
