//! 1 GiB up and down through the S3 back-end, byte-exact, with the peak memory of this process
//! (a test binary of its own, so the peak is this test's). Run with `--nocapture` to see the figures.

use std::time::Instant;

// The test kit's S3 server module, used on its own (the whole kit depends on this crate).
#[path = "../../ferry-testkit/src/s3.rs"]
#[allow(dead_code)]
mod s3kit;

use ferry_vfs::s3::S3Fs;
use ferry_vfs::{Storage, VPath, WriteOptions};
use s3kit::bucket;
use sha2::{Digest, Sha256};

const SIZE: usize = 1 << 30;
const CHUNK: usize = 256 * 1024;

/// Peak resident memory of this process so far (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib * 1024
}

/// Chunk `i` of the test file: a fixed pseudo-random block stamped with its index, so that every
/// chunk differs and a misplaced one changes the hash.
fn chunk(block: &[u8], i: usize) -> Vec<u8> {
    let mut c = block.to_vec();
    c[..8].copy_from_slice(&(i as u64).to_le_bytes());
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn one_gib_round_trips_byte_exact_with_bounded_memory() {
    let b = bucket();
    let fs = S3Fs::connect(&b.config("")).await.expect("connect");
    let mut x = 0x9E37_79B9u32;
    let block: Vec<u8> = (0..CHUNK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    let path = VPath::parse(b"/big.bin").expect("path");
    let before = peak_rss();

    let started = Instant::now();
    let mut sent = Sha256::new();
    let mut w = fs.open_write(&path, WriteOptions::replace()).await.expect("open");
    for i in 0..SIZE / CHUNK {
        let c = chunk(&block, i);
        sent.update(&c);
        w.write_owned(c).await.expect("write");
    }
    assert_eq!(w.commit().await.expect("commit"), SIZE as u64);
    let up = started.elapsed();
    let after_upload = peak_rss();

    let started = Instant::now();
    let mut r = fs.open_read(&path, 0).await.expect("open_read");
    let mut got = Sha256::new();
    let mut buf = vec![0; CHUNK];
    let mut total = 0usize;
    loop {
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        got.update(&buf[..n]);
        total += n;
    }
    let down = started.elapsed();
    let after_download = peak_rss();
    let sent = sent.finalize();
    assert_eq!(total, SIZE);
    assert_eq!(got.finalize(), sent, "downloaded bytes differ");
    // What the server stores, read behind its back.
    let mut stored = Sha256::new();
    let mut file = std::fs::File::open(b.dir().join("big.bin")).expect("stored object");
    std::io::copy(&mut file, &mut stored).expect("hash stored object");
    assert_eq!(stored.finalize(), sent, "stored object differs");
    assert!(b.pending_uploads().is_empty());

    let mib = |v: u64| v as f64 / (1024.0 * 1024.0);
    println!(
        "s3 1 GiB: upload {:.1} s ({:.0} MiB/s), download {:.1} s ({:.0} MiB/s); peak RSS {:.0} MiB before, \
         {:.0} MiB after upload (+{:.0}), {:.0} MiB after download (+{:.0})",
        up.as_secs_f64(),
        1024.0 / up.as_secs_f64(),
        down.as_secs_f64(),
        1024.0 / down.as_secs_f64(),
        mib(before),
        mib(after_upload),
        mib(after_upload.saturating_sub(before)),
        mib(after_download),
        mib(after_download.saturating_sub(after_upload)),
    );
    // Two parts of at most 20 MiB for a 1 GiB upload, plus HTTP buffers: far below the file size.
    let growth = after_download.saturating_sub(before);
    assert!(growth < 128 << 20, "peak RSS grew by {:.0} MiB", mib(growth));
}
