//! `keep_checksums`: with it on, `ferry serve` keeps the checksums of an upload and answers `HASH`
//! for files beyond `hash_max_size` from them; off (the default), such a file is refused, because
//! its checksum would have to be computed on demand.

mod common;

use std::process::Command;

use common::{require, tempdir, Control, Server};

/// Uploads 5,000 bytes with curl to a server started with `extra`, then asks for their SHA-256:
/// the reply line to `HASH`.
fn hash_after_upload(extra: &[&str]) -> (String, String) {
    require("curl");
    require("sha256sum");
    let d = tempdir();
    let mut args = vec!["--hash-max-size", "1000"];
    args.extend_from_slice(extra);
    let mut server = Server::start(d.path(), &args);
    let ftp = server.wait_listening();
    let password = server.printed_password().expect("first-start password");
    let src = d.path().join("up.bin");
    let payload: Vec<u8> = (0..5_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&src, &payload).expect("payload");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-T"])
        .arg(&src)
        .arg(format!("ftp://ferry:{password}@{ftp}/up.bin"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sum = Command::new("sha256sum").arg(&src).output().expect("sha256sum");
    let sum = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .expect("sum")
        .to_owned();
    let mut c = Control::connect_greeted(ftp);
    c.expect("USER ferry", 331);
    c.expect(&format!("PASS {password}"), 230);
    let (_, reply) = c.cmd("HASH up.bin");
    c.expect("QUIT", 221);
    (reply, sum)
}

#[test]
fn kept_checksums_answer_beyond_hash_max_size() {
    let (reply, sum) = hash_after_upload(&["--keep-checksums=true"]);
    assert!(reply.starts_with("213 "), "{reply}");
    assert!(reply.to_ascii_lowercase().contains(&sum), "{reply} vs {sum}");
}

#[test]
fn without_kept_checksums_a_file_beyond_hash_max_size_is_refused() {
    let (reply, _) = hash_after_upload(&[]);
    assert!(reply.starts_with("550 "), "{reply}");
    assert!(reply.contains("hash_max_size"), "{reply}");
}
