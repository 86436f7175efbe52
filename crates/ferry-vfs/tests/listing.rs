//! Directory listings stream in batches.

mod common;

use std::collections::HashSet;

use common::{Jail, WriteMode};
use ferry_vfs::{EntryKind, FileWriter};

#[tokio::test]
async fn listing_five_thousand_entries_streams_in_batches() {
    let jail = Jail::new();
    std::fs::create_dir(jail.host("many")).expect("mkdir");
    for i in 0..5_000 {
        std::fs::write(jail.host(&format!("many/file-{i:05}")), b"").expect("write");
    }
    let mut stream = jail.fs.list(b"/many").await.expect("list");
    let mut seen = HashSet::new();
    let mut batches = 0;
    loop {
        let batch = stream.next_batch(128).await.expect("batch");
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 128);
        batches += 1;
        for entry in batch {
            assert_eq!(entry.metadata.kind, EntryKind::File);
            assert!(seen.insert(entry.name), "duplicate entry");
        }
    }
    assert_eq!(seen.len(), 5_000);
    assert!(batches >= 5_000 / 128);
    assert!(stream.next_batch(128).await.expect("after end").is_empty());
}

#[tokio::test]
async fn zero_batch_size_still_makes_progress() {
    let jail = Jail::new();
    std::fs::write(jail.host("a"), b"").expect("write");
    let mut stream = jail.fs.list(b"/").await.expect("list");
    assert_eq!(stream.next_batch(0).await.expect("batch").len(), 1);
    assert!(stream.next_batch(0).await.expect("end").is_empty());
}

#[tokio::test]
async fn uploads_in_progress_are_hidden_from_listings() {
    let jail = Jail::new();
    std::fs::write(jail.host("visible"), b"").expect("write");
    let writer = jail
        .fs
        .open_write(b"/pending", WriteMode::Create)
        .await
        .expect("open");
    let mut stream = jail.fs.list(b"/").await.expect("list");
    let names: Vec<_> = stream
        .next_batch(100)
        .await
        .expect("batch")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, vec![b"visible".to_vec()]);
    writer.abort().await;
}

#[tokio::test]
async fn empty_directory_lists_nothing() {
    let jail = Jail::new();
    let mut stream = jail.fs.list(b"/").await.expect("list");
    assert!(stream.next_batch(10).await.expect("batch").is_empty());
}
