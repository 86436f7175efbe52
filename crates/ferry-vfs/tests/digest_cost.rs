//! What computing SHA-256, MD5 and CRC-32 during an upload costs: 1 GiB through the local back-end's
//! writer (which hashes) against the same bytes written with plain `write_all`, and the digests alone.
//! A measurement, not a check: `cargo test -p ferry-vfs --test digest_cost -- --ignored --nocapture`
//! (add `--release` for release figures). docs/benchmarks.md has the numbers.

use std::io::Write;
use std::time::Instant;

use ferry_vfs::{Digester, LocalFs, Storage, VPath, WriteOptions};

const TOTAL: usize = 1 << 30;
const CHUNK: usize = 1 << 20;

fn mib_s(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / secs
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement (1 GiB of disk writes); run by hand with --ignored --nocapture"]
async fn upload_hashing_cost_on_one_gib() {
    let chunk: Vec<u8> = (0..CHUNK as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");

    let t = Instant::now();
    let mut d = Digester::new();
    for _ in 0..TOTAL / CHUNK {
        d.update(&chunk);
    }
    let _ = d.finish();
    let digests_only = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut f = std::fs::File::create(dir.path().join("plain")).expect("create");
    for _ in 0..TOTAL / CHUNK {
        f.write_all(&chunk).expect("write");
    }
    drop(f);
    let plain = t.elapsed().as_secs_f64();
    std::fs::remove_file(dir.path().join("plain")).expect("rm");

    let fs = LocalFs::open(dir.path()).expect("fs");
    let path = VPath::parse(b"/up").expect("path");
    let t = Instant::now();
    let mut w = fs.open_write(&path, WriteOptions::replace()).await.expect("open");
    let mut buf = chunk.clone();
    for _ in 0..TOTAL / CHUNK {
        buf = w.write_owned(buf).await.expect("write");
        if buf.len() != CHUNK {
            buf = chunk.clone();
        }
    }
    w.commit().await.expect("commit");
    let hashed = t.elapsed().as_secs_f64();
    assert!(fs.stored_digests(&path).await.expect("digests").is_some() || cfg!(not(target_os = "linux")));

    println!(
        "1 GiB: digests alone {:.2} s ({:.0} MiB/s); plain write_all {:.2} s ({:.0} MiB/s); \
         local upload with digests {:.2} s ({:.0} MiB/s)",
        digests_only,
        mib_s(TOTAL, digests_only),
        plain,
        mib_s(TOTAL, plain),
        hashed,
        mib_s(TOTAL, hashed)
    );
}
