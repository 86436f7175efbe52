//! Upload semantics of the local back-end: temp + rename, abort, append, resume, unique names.

mod common;

use common::{host_names, list_names, read_all, upload, Jail, WriteMode};
use ferry_vfs::{ErrorKind, FileWriter};

fn temp_files(names: &[String]) -> Vec<&String> {
    names.iter().filter(|n| n.starts_with(".ferry-upload.")).collect()
}

#[tokio::test]
async fn create_is_invisible_until_commit() {
    let jail = Jail::new();
    let mut writer = jail
        .fs
        .open_write(b"/up.bin", WriteMode::Create)
        .await
        .expect("open");
    assert_eq!(writer.final_name(), b"up.bin");
    writer.write_owned(b"part one, ".to_vec()).await.expect("write");
    writer.write_owned(b"part two".to_vec()).await.expect("write");
    assert!(!jail.host("up.bin").exists());
    assert_eq!(
        jail.fs.metadata(b"/up.bin").await.expect_err("hidden").kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        temp_files(&host_names(&jail.host(""))).len(),
        1,
        "temp lives in the target dir"
    );
    assert!(
        list_names(&jail.fs, b"/").await.expect("list").is_empty(),
        "temp hidden from listing"
    );
    assert_eq!(writer.commit().await.expect("commit"), 18);
    assert_eq!(
        std::fs::read(jail.host("up.bin")).expect("read"),
        b"part one, part two"
    );
    assert_eq!(host_names(&jail.host("")), vec!["up.bin"]);
}

#[tokio::test]
async fn create_replaces_an_existing_file_only_on_commit() {
    let jail = Jail::new();
    std::fs::write(jail.host("f"), b"old").expect("write");
    let mut writer = jail.fs.open_write(b"/f", WriteMode::Create).await.expect("open");
    writer.write_owned(b"new content".to_vec()).await.expect("write");
    assert_eq!(read_all(&jail.fs, b"/f", 0).await.expect("read"), b"old");
    writer.commit().await.expect("commit");
    assert_eq!(read_all(&jail.fs, b"/f", 0).await.expect("read"), b"new content");
}

#[tokio::test]
async fn aborted_create_leaves_no_file_and_no_temp() {
    let jail = Jail::new();
    std::fs::create_dir(jail.host("d")).expect("mkdir");
    let mut writer = jail
        .fs
        .open_write(b"/d/up", WriteMode::Create)
        .await
        .expect("open");
    writer.write_owned(b"partial".to_vec()).await.expect("write");
    writer.abort().await;
    assert!(host_names(&jail.host("d")).is_empty());
}

#[tokio::test]
async fn aborted_create_keeps_the_previous_file() {
    let jail = Jail::new();
    std::fs::write(jail.host("f"), b"old").expect("write");
    let mut writer = jail.fs.open_write(b"/f", WriteMode::Create).await.expect("open");
    writer.write_owned(b"half".to_vec()).await.expect("write");
    writer.abort().await;
    assert_eq!(std::fs::read(jail.host("f")).expect("read"), b"old");
    assert_eq!(host_names(&jail.host("")), vec!["f"]);
}

#[tokio::test]
async fn dropped_writer_removes_its_temp() {
    let jail = Jail::new();
    let mut writer = jail.fs.open_write(b"/up", WriteMode::Create).await.expect("open");
    writer.write_owned(b"data".to_vec()).await.expect("write");
    drop(writer);
    assert!(host_names(&jail.host("")).is_empty());
}

#[tokio::test]
async fn create_over_a_directory_or_root_is_a_directory() {
    let jail = Jail::new();
    std::fs::create_dir(jail.host("d")).expect("mkdir");
    let err = jail
        .fs
        .open_write(b"/d", WriteMode::Create)
        .await
        .expect_err("dir");
    assert_eq!(err.kind(), ErrorKind::IsADirectory);
    let err = jail
        .fs
        .open_write(b"/", WriteMode::Create)
        .await
        .expect_err("root");
    assert_eq!(err.kind(), ErrorKind::IsADirectory);
    let err = jail
        .fs
        .open_write(b"/d", WriteMode::Append)
        .await
        .expect_err("append to dir");
    assert_eq!(err.kind(), ErrorKind::IsADirectory);
    assert!(host_names(&jail.host("d")).is_empty());
}

#[tokio::test]
async fn create_in_a_missing_directory_is_not_found() {
    let jail = Jail::new();
    let err = jail
        .fs
        .open_write(b"/no/such/file", WriteMode::Create)
        .await
        .expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn append_extends_or_creates() {
    let jail = Jail::new();
    std::fs::write(jail.host("log"), b"one,").expect("write");
    assert_eq!(
        upload(&jail.fs, b"/log", WriteMode::Append, b"two")
            .await
            .expect("append"),
        3
    );
    assert_eq!(std::fs::read(jail.host("log")).expect("read"), b"one,two");
    upload(&jail.fs, b"/fresh", WriteMode::Append, b"new")
        .await
        .expect("append new");
    assert_eq!(std::fs::read(jail.host("fresh")).expect("read"), b"new");
}

#[tokio::test]
async fn aborted_append_keeps_what_was_written() {
    let jail = Jail::new();
    std::fs::write(jail.host("f"), b"abc").expect("write");
    let mut writer = jail.fs.open_write(b"/f", WriteMode::Append).await.expect("open");
    writer.write_owned(b"def".to_vec()).await.expect("write");
    writer.abort().await;
    assert_eq!(std::fs::read(jail.host("f")).expect("read"), b"abcdef");
}

#[tokio::test]
async fn rest_then_stor_truncates_and_resumes_at_offset() {
    let jail = Jail::new();
    std::fs::write(jail.host("f"), b"0123456789").expect("write");
    upload(&jail.fs, b"/f", WriteMode::At(4), b"xy")
        .await
        .expect("resume");
    assert_eq!(std::fs::read(jail.host("f")).expect("read"), b"0123xy");
}

#[tokio::test]
async fn at_zero_creates_and_at_offset_needs_an_existing_file() {
    let jail = Jail::new();
    upload(&jail.fs, b"/new", WriteMode::At(0), b"data")
        .await
        .expect("at 0");
    assert_eq!(std::fs::read(jail.host("new")).expect("read"), b"data");
    let err = jail
        .fs
        .open_write(b"/missing", WriteMode::At(5))
        .await
        .expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn aborted_resume_keeps_partial_data() {
    let jail = Jail::new();
    std::fs::write(jail.host("f"), b"0123456789").expect("write");
    let mut writer = jail.fs.open_write(b"/f", WriteMode::At(2)).await.expect("open");
    writer.write_owned(b"ab".to_vec()).await.expect("write");
    writer.abort().await;
    assert_eq!(std::fs::read(jail.host("f")).expect("read"), b"01ab");
}

#[tokio::test]
async fn unique_never_overwrites() {
    let jail = Jail::new();
    std::fs::write(jail.host("name"), b"original").expect("write");
    std::fs::write(jail.host("name.1"), b"first copy").expect("write");
    let mut writer = jail
        .fs
        .open_write(b"/name", WriteMode::Unique)
        .await
        .expect("open");
    assert_eq!(writer.final_name(), b"name.2");
    writer.write_owned(b"unique".to_vec()).await.expect("write");
    writer.commit().await.expect("commit");
    assert_eq!(std::fs::read(jail.host("name")).expect("read"), b"original");
    assert_eq!(std::fs::read(jail.host("name.1")).expect("read"), b"first copy");
    assert_eq!(std::fs::read(jail.host("name.2")).expect("read"), b"unique");
}

#[tokio::test]
async fn unique_uses_the_requested_name_when_free() {
    let jail = Jail::new();
    let writer = jail
        .fs
        .open_write(b"/free", WriteMode::Unique)
        .await
        .expect("open");
    assert_eq!(writer.final_name(), b"free");
    writer.commit().await.expect("commit");
    assert!(jail.host("free").is_file());
}

#[tokio::test]
async fn concurrent_unique_uploads_get_distinct_names() {
    let jail = Jail::new();
    let mut a = jail
        .fs
        .open_write(b"/same", WriteMode::Unique)
        .await
        .expect("open a");
    let mut b = jail
        .fs
        .open_write(b"/same", WriteMode::Unique)
        .await
        .expect("open b");
    assert_ne!(a.final_name(), b.final_name());
    a.write_owned(b"A".to_vec()).await.expect("write");
    b.write_owned(b"B".to_vec()).await.expect("write");
    a.commit().await.expect("commit a");
    b.commit().await.expect("commit b");
    assert_eq!(std::fs::read(jail.host("same")).expect("read"), b"A");
    assert_eq!(std::fs::read(jail.host("same.1")).expect("read"), b"B");
}

#[tokio::test]
async fn aborted_unique_releases_its_name() {
    let jail = Jail::new();
    let mut writer = jail.fs.open_write(b"/u", WriteMode::Unique).await.expect("open");
    writer.write_owned(b"x".to_vec()).await.expect("write");
    writer.abort().await;
    assert!(host_names(&jail.host("")).is_empty());
}

#[tokio::test]
async fn large_upload_round_trips() {
    let jail = Jail::new();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut writer = jail
        .fs
        .open_write(b"/big", WriteMode::Create)
        .await
        .expect("open");
    for chunk in data.chunks(64 * 1024) {
        writer.write_owned(chunk.to_vec()).await.expect("write");
    }
    assert_eq!(writer.commit().await.expect("commit"), data.len() as u64);
    assert_eq!(std::fs::read(jail.host("big")).expect("read"), data);
}

/// Writes `data` into the writer's zero-copy file as a front end's `splice` would (at the shared
/// position), and reports it.
fn zero_copy_write(writer: &mut Box<ferry_vfs::UploadWriter>, data: &[u8]) {
    use std::io::Write;
    let mut file = writer.zero_copy().expect("zero-copy file for a new upload");
    file.write_all(data).expect("write into the zero-copy file");
    writer.zero_copy_written(data.len() as u64).expect("account");
}

/// A jail whose back-end keeps no checksums (the server's default): its new uploads offer zero-copy.
fn jail_without_checksums() -> Jail {
    let mut jail = Jail::new();
    let fs = ferry_vfs::LocalFs::open(&jail.host(""))
        .expect("open")
        .keep_checksums(false);
    jail.fs = common::ByteFs(std::sync::Arc::new(fs));
    jail
}

#[tokio::test]
async fn zero_copy_create_is_invisible_until_commit_and_keeps_every_byte() {
    let jail = jail_without_checksums();
    std::fs::write(jail.host("z.bin"), b"old").expect("write");
    let mut writer = jail
        .fs
        .open_write(b"/z.bin", WriteMode::Create)
        .await
        .expect("open");
    // Copied and zero-copy pieces interleave at one position; the last piece comes with commit.
    writer.write_owned(b"copied, ".to_vec()).await.expect("write");
    zero_copy_write(&mut writer, b"spliced, ");
    writer
        .write_owned(b"copied again, ".to_vec())
        .await
        .expect("write");
    zero_copy_write(&mut writer, b"spliced again");
    assert_eq!(std::fs::read(jail.host("z.bin")).expect("read"), b"old");
    assert_eq!(temp_files(&host_names(&jail.host(""))).len(), 1);
    let total = writer.commit_with(b", last".to_vec()).await.expect("commit");
    let expected = b"copied, spliced, copied again, spliced again, last";
    assert_eq!(total, expected.len() as u64);
    assert_eq!(std::fs::read(jail.host("z.bin")).expect("read"), expected);
    assert_eq!(host_names(&jail.host("")), vec!["z.bin"]);
}

#[tokio::test]
async fn zero_copy_create_aborted_or_dropped_leaves_the_old_file_and_no_temp() {
    let jail = jail_without_checksums();
    std::fs::write(jail.host("z.bin"), b"old").expect("write");
    let mut writer = jail
        .fs
        .open_write(b"/z.bin", WriteMode::Create)
        .await
        .expect("open");
    zero_copy_write(&mut writer, &vec![7u8; 100_000]);
    writer.abort().await;
    assert_eq!(std::fs::read(jail.host("z.bin")).expect("read"), b"old");
    assert_eq!(host_names(&jail.host("")), vec!["z.bin"]);
    let mut writer = jail
        .fs
        .open_write(b"/z.bin", WriteMode::Create)
        .await
        .expect("open");
    zero_copy_write(&mut writer, b"never committed");
    drop(writer);
    assert_eq!(std::fs::read(jail.host("z.bin")).expect("read"), b"old");
    assert_eq!(host_names(&jail.host("")), vec!["z.bin"]);
}

#[tokio::test]
async fn zero_copy_is_offered_only_to_new_files_without_kept_checksums() {
    // Checksums kept at upload need the bytes in user space.
    let jail = Jail::new();
    let mut writer = jail.fs.open_write(b"/n", WriteMode::Create).await.expect("open");
    assert!(writer.zero_copy().is_none(), "checksums are kept");
    writer.abort().await;
    let jail = jail_without_checksums();
    std::fs::write(jail.host("f"), b"old").expect("write");
    for mode in [WriteMode::Append, WriteMode::At(2)] {
        let mut writer = jail.fs.open_write(b"/f", mode).await.expect("open");
        assert!(writer.zero_copy().is_none(), "{mode:?} writes in place");
        assert_eq!(
            writer
                .zero_copy_written(1)
                .expect_err("nothing to account")
                .kind(),
            ErrorKind::Unsupported
        );
        writer.abort().await;
    }
}
