//! Positional file access (SFTP): temp-file replacement, in-place writes, append, exclusivity,
//! concurrent reads and writes, and the jail.

mod common;

use std::sync::Arc;

use common::{host_names, Jail};
use ferry_vfs::{ErrorKind, OpenMode, PositionalFile};

const REPLACE: OpenMode = OpenMode::Replace {
    read: false,
    exclusive: false,
    mode: None,
};

#[tokio::test]
async fn replace_appears_only_on_commit_and_out_of_order_writes_land_in_place() {
    let j = Jail::new();
    std::fs::write(j.host("f.bin"), b"old").expect("write");
    let f = j.fs.open_file(b"/f.bin", REPLACE).await.expect("open");
    f.write_at(4, b"5678".to_vec()).await.expect("write 2");
    f.write_at(0, b"1234".to_vec()).await.expect("write 1");
    assert_eq!(std::fs::read(j.host("f.bin")).expect("read"), b"old", "not yet");
    assert_eq!(host_names(&j.host("")).len(), 2, "target plus one temp file");
    f.commit().await.expect("commit");
    assert_eq!(std::fs::read(j.host("f.bin")).expect("read"), b"12345678");
    assert_eq!(host_names(&j.host("")), ["f.bin"]);
    f.commit().await.expect("a second commit does nothing");
}

#[tokio::test]
async fn dropped_replace_leaves_nothing_behind() {
    let j = Jail::new();
    let f = j.fs.open_file(b"/new.bin", REPLACE).await.expect("open");
    f.write_at(0, vec![7; 1000]).await.expect("write");
    drop(f);
    assert!(host_names(&j.host("")).is_empty());
}

#[tokio::test]
async fn exclusive_refuses_an_existing_target_and_reserves_the_name_at_open() {
    let j = Jail::new();
    std::fs::write(j.host("there"), b"x").expect("write");
    let excl = OpenMode::Replace {
        read: false,
        exclusive: true,
        mode: Some(0o640),
    };
    let err = j.fs.open_file(b"/there", excl).await.expect_err("exists");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let f = j.fs.open_file(b"/late", excl).await.expect("open");
    let mode = f.metadata().await.expect("fstat").mode;
    assert_eq!(mode, Some(0o640), "the new file's mode is set at creation");
    // A second exclusive open of the same new name fails at once, as with OpenSSH.
    let err =
        j.fs.open_file(b"/late", excl)
            .await
            .expect_err("second exclusive open");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    f.write_at(0, b"first".to_vec()).await.expect("write");
    f.commit().await.expect("commit");
    assert_eq!(std::fs::read(j.host("late")).expect("read"), b"first");
    assert_eq!(host_names(&j.host("")), ["late", "there"], "temp removed");
    // A dropped exclusive upload gives its name back.
    let f = j.fs.open_file(b"/gone", excl).await.expect("open");
    drop(f);
    assert_eq!(host_names(&j.host("")), ["late", "there"], "placeholder removed");
}

#[tokio::test]
async fn an_overwrite_keeps_the_old_files_mode() {
    use std::os::unix::fs::PermissionsExt;
    let j = Jail::new();
    std::fs::write(j.host("script.sh"), b"old").expect("write");
    std::fs::set_permissions(j.host("script.sh"), std::fs::Permissions::from_mode(0o751)).expect("chmod");
    let mode = OpenMode::Replace {
        read: false,
        exclusive: false,
        mode: Some(0o600),
    };
    let f = j.fs.open_file(b"/script.sh", mode).await.expect("open");
    f.write_at(0, b"new".to_vec()).await.expect("write");
    f.commit().await.expect("commit");
    let md = std::fs::metadata(j.host("script.sh")).expect("stat");
    assert_eq!(md.permissions().mode() & 0o7777, 0o751);
    assert_eq!(std::fs::read(j.host("script.sh")).expect("read"), b"new");
    // A new file gets the client's mode.
    let f = j.fs.open_file(b"/fresh", mode).await.expect("open");
    f.commit().await.expect("commit");
    let md = std::fs::metadata(j.host("fresh")).expect("stat");
    assert_eq!(md.permissions().mode() & 0o7777, 0o600);
}

#[tokio::test]
async fn offsets_beyond_any_file_are_end_of_file_or_out_of_range() {
    let j = Jail::new();
    std::fs::write(j.host("f"), b"abc").expect("write");
    let f = j.fs.open_file(b"/f", OpenMode::Read).await.expect("open");
    assert!(f.read_at(u64::MAX, 100).await.expect("read").is_empty(), "EOF");
    assert!(f.read_at(1 << 63, 100).await.expect("read").is_empty(), "EOF");
    let w = j.fs.open_file(b"/g", REPLACE).await.expect("open");
    let err = w.write_at(u64::MAX, b"x".to_vec()).await.expect_err("too far");
    assert_eq!(err.kind(), ErrorKind::OffsetOutOfRange);
    assert_eq!(err.to_string(), "offset out of range");
}

#[tokio::test]
async fn in_place_writes_keep_the_rest_and_append_goes_to_the_end() {
    let j = Jail::new();
    std::fs::write(j.host("f"), b"abcdefgh").expect("write");
    let f =
        j.fs.open_file(
            b"/f",
            OpenMode::InPlace {
                read: true,
                append: false,
            },
        )
        .await
        .expect("open");
    f.write_at(2, b"XY".to_vec()).await.expect("write");
    assert_eq!(f.read_at(0, 100).await.expect("read"), b"abXYefgh");
    f.commit().await.expect("close");
    let a =
        j.fs.open_file(
            b"/f",
            OpenMode::InPlace {
                read: false,
                append: true,
            },
        )
        .await
        .expect("open append");
    a.write_at(0, b"!".to_vec()).await.expect("append");
    assert_eq!(std::fs::read(j.host("f")).expect("read"), b"abXYefgh!");
    let err =
        j.fs.open_file(
            b"/missing",
            OpenMode::InPlace {
                read: false,
                append: false,
            },
        )
        .await
        .expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn concurrent_positional_reads_and_writes() {
    let j = Jail::new();
    let data: Vec<u8> = (0..64 * 4096u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(j.host("src"), &data).expect("write");
    let src: Arc<dyn PositionalFile> =
        Arc::from(j.fs.open_file(b"/src", OpenMode::Read).await.expect("open"));
    let dst: Arc<dyn PositionalFile> = Arc::from(j.fs.open_file(b"/dst", REPLACE).await.expect("open"));
    let mut tasks = Vec::new();
    for block in (0..64u64).rev() {
        let (src, dst) = (Arc::clone(&src), Arc::clone(&dst));
        tasks.push(tokio::spawn(async move {
            let chunk = src.read_at(block * 4096, 4096).await.expect("read");
            dst.write_at(block * 4096, chunk).await.expect("write");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert!(src.read_at(data.len() as u64, 10).await.expect("eof").is_empty());
    dst.commit().await.expect("commit");
    assert_eq!(std::fs::read(j.host("dst")).expect("read"), data);
}

#[tokio::test]
async fn positional_opens_stay_in_the_jail() {
    let j = Jail::new();
    std::os::unix::fs::symlink(j.outside().join("secret.txt"), j.host("link")).expect("symlink");
    std::os::unix::fs::symlink(j.outside(), j.host("dirlink")).expect("symlink");
    for path in [&b"/link"[..], b"/dirlink/secret.txt"] {
        let err = j.fs.open_file(path, OpenMode::Read).await.expect_err("escape");
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{path:?}");
    }
    let err =
        j.fs.open_file(b"/dirlink/new", REPLACE)
            .await
            .expect_err("escape");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    // `..` stops at the root: this is `/x` inside.
    let file = j.fs.open_file(b"/../x", REPLACE).await.expect("dot dot");
    file.commit().await.expect("commit");
    assert!(j.host("x").is_file());
    assert_eq!(
        std::fs::read(j.outside().join("secret.txt")).expect("read"),
        b"top secret"
    );
    assert_eq!(host_names(&j.outside()), ["secret.txt"]);
}

#[tokio::test]
async fn set_mode_and_space() {
    use std::os::unix::fs::PermissionsExt;
    let j = Jail::new();
    std::fs::write(j.host("f"), b"x").expect("write");
    j.fs.set_mode(b"/f", 0o4600).await.expect("chmod");
    let mode = std::fs::metadata(j.host("f")).expect("stat").permissions().mode();
    assert_eq!(mode & 0o7777, 0o600, "setuid is dropped");
    let space = j.fs.space().await.expect("statvfs");
    assert!(space.blocks > 0 && space.fragment_size > 0 && space.name_max >= 255);
}

#[tokio::test(flavor = "multi_thread")]
async fn pipelined_replace_writes_keep_the_checksums_of_the_whole_file() {
    use ferry_vfs::{Digests, StoredDigests};
    let j = Jail::new();
    let data: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let f: Arc<dyn PositionalFile> = Arc::from(j.fs.open_file(b"/p.bin", REPLACE).await.expect("open"));
    // 32 KiB writes issued at once, as SFTP clients pipeline them: they land in any order.
    let writes: Vec<_> = data
        .chunks(32 * 1024)
        .enumerate()
        .map(|(i, c)| {
            let (f, c) = (Arc::clone(&f), c.to_vec());
            tokio::spawn(async move { f.write_at((i * 32 * 1024) as u64, c).await })
        })
        .collect();
    for w in writes {
        w.await.expect("join").expect("write");
    }
    f.commit().await.expect("commit");
    let kept =
        j.fs.0
            .stored_digests(&common::vp(b"/p.bin").expect("path"))
            .await
            .expect("digests");
    assert_eq!(
        kept,
        Some(StoredDigests {
            size: data.len() as u64,
            digests: Digests::of(&data)
        })
    );
    // Rewritten in place: nothing kept any more.
    let g =
        j.fs.open_file(
            b"/p.bin",
            OpenMode::InPlace {
                read: false,
                append: false,
            },
        )
        .await
        .expect("open in place");
    g.write_at(0, b"x".to_vec()).await.expect("write");
    g.commit().await.expect("commit");
    let kept =
        j.fs.0
            .stored_digests(&common::vp(b"/p.bin").expect("path"))
            .await
            .expect("digests");
    assert_eq!(kept, None);
}
