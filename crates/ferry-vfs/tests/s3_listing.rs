//! Objects in one S3 "directory", listed page by page with flat memory (a test binary of its own, so
//! the memory figures are this test's). Run with `--nocapture` to see the figures.
//!
//! The 100,000-object run is ignored by default: s3s-fs reads and stats the whole directory for
//! every page of 1,000 keys, so one page takes seconds there (7.6 s measured for one page with
//! 100,000 objects on the shared 2-core test machine, by a plain ListObjectsV2 without ferry;
//! moto took 5 s a page), about 13 minutes for the 100 pages; run it with `--ignored`. The
//! 10,000-object run (ten pages) goes through the same code every time. Writing the objects as
//! files into s3s-fs's bucket directory (what s3s-fs's PutObject ends with) takes a second; it is
//! the server's listing that is slow, not the setup.

use std::time::Instant;

use ferry_vfs::s3::S3Fs;
use ferry_vfs::{EntryKind, Storage, VPath};

// The test kit's S3 server module, used on its own (the whole kit depends on this crate).
#[path = "../../ferry-testkit/src/s3.rs"]
#[allow(dead_code)]
mod s3kit;

/// Resident memory of this process now (VmRSS), in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "about 13 minutes against s3s-fs (it reads the whole directory for every page of 1,000 keys); run with --ignored"]
async fn a_hundred_thousand_objects_list_page_by_page_with_flat_memory() {
    list_many(100_000).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_objects_list_over_ten_pages_in_order_with_flat_memory() {
    list_many(10_000).await;
}

async fn list_many(objects: usize) {
    let b = s3kit::bucket();
    // Written behind the S3 API (s3s-fs stores objects as files): 100,000 PutObjects would only
    // slow the test down; the listing is what is tested.
    let dir = b.dir().join("many");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for i in 0..objects {
        std::fs::write(dir.join(format!("f{i:06}")), b"x").expect("object");
    }
    let fs = S3Fs::connect(&b.config("")).await.expect("connect");
    let path = VPath::parse(b"/many").expect("path");

    let started = Instant::now();
    let mut stream = fs.list(&path).await.expect("list");
    let (mut count, mut next) = (0usize, 0usize);
    let (mut low, mut high) = (u64::MAX, 0u64);
    loop {
        let batch = stream.next_batch(1000).await.expect("next_batch");
        if batch.is_empty() {
            break;
        }
        for entry in &batch {
            // Every name once, in order, as files of one byte.
            assert_eq!(entry.name, format!("f{next:06}").into_bytes());
            assert_eq!((entry.metadata.kind, entry.metadata.size), (EntryKind::File, 1));
            next += 1;
        }
        count += batch.len();
        let now = rss();
        low = low.min(now);
        high = high.max(now);
    }
    let took = started.elapsed();
    assert_eq!(count, objects);
    let mib = |v: u64| v as f64 / (1024.0 * 1024.0);
    println!(
        "s3 listing of {objects} objects: {:.1} s; RSS between {:.1} and {:.1} MiB while listing",
        took.as_secs_f64(),
        mib(low),
        mib(high)
    );
    // All the names alone are ~1 MiB as strings and ~20 MiB as entries with metadata: memory that
    // grew with the directory would show here.
    assert!(
        high - low < 16 << 20,
        "RSS grew by {:.1} MiB while listing",
        mib(high - low)
    );
}
