//! A 1 GiB file byte-exact both ways with OpenSSH sftp (in memory under /dev/shm when possible).

mod common;

use std::path::Path;
use std::time::Instant;

use common::*;

const SIZE: usize = 1 << 30;

#[test]
fn one_gib_file_round_trips_byte_exact() {
    if skip_unless("sftp") {
        return;
    }
    // On the S3 back-end the served files are a bucket directory of s3s-fs, which builds a completed
    // object under its own root (in the temporary directory) and renames it into the bucket: across
    // file systems (/dev/shm is tmpfs) that rename fails, so there the files stay on that one.
    let shm = Path::new("/dev/shm");
    let parent = if shm.is_dir() && !ferry_testkit::on_s3() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let s = TestServer::start_in(&parent, ferry_auth::Permissions::all(), |_| {});
    write_big(&s.local("big.bin"));
    let expected = sha256sum(&s.local("big.bin"));

    let started = Instant::now();
    s.sftp_batch("put big.bin /big.bin\n").assert_success();
    let put = started.elapsed();
    let cmp = run(
        std::process::Command::new("cmp")
            .arg(s.local("big.bin"))
            .arg(s.path("big.bin")),
        None,
    );
    assert!(cmp.status.success(), "upload is byte-exact: {}", cmp.dump());
    std::fs::remove_file(s.local("big.bin")).expect("rm");

    let started = Instant::now();
    s.sftp_batch("get /big.bin back.bin\n").assert_success();
    let get = started.elapsed();
    assert_eq!(
        sha256sum(&s.local("back.bin")),
        expected,
        "download is byte-exact"
    );
    eprintln!("1 GiB: put {put:?}, get {get:?}");
}

/// 1 GiB of pseudo-random data, quickly: a 4 MiB random block written 256 times, each 64 KiB
/// stamped with its index so a misplaced or repeated block changes the hash.
fn write_big(path: &Path) {
    use std::io::Write;
    write_random(path, 4 << 20, 7);
    let block = std::fs::read(path).expect("read block");
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut index: u64 = 0;
    for _ in 0..SIZE / block.len() {
        let mut chunk = block.clone();
        for piece in chunk.chunks_mut(64 * 1024) {
            piece[..8].copy_from_slice(&index.to_le_bytes());
            index += 1;
        }
        out.write_all(&chunk).expect("write");
    }
    out.flush().expect("flush");
}

/// SHA-256 with coreutils' `sha256sum` (much faster than a debug build of the sha2 crate).
fn sha256sum(path: &Path) -> String {
    let r = run(std::process::Command::new("sha256sum").arg(path), None);
    r.assert_success();
    r.out().split_whitespace().next().unwrap_or_default().to_owned()
}
