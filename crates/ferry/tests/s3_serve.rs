//! `ferry serve --storage-backend s3` against a real S3 server (s3s-fs, one for this test binary):
//! files go to the bucket, a kill -9 mid-upload leaves no object under the final name, and a bucket
//! that cannot be reached stops the start with the setting to check.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Instant;

mod common;

use common::{ferry, tempdir, Control, Server, IO_TIMEOUT};
use ferry_testkit::s3::bucket;

fn login(server: &mut Server) -> (std::net::SocketAddr, Control) {
    let addr = server.wait_listening();
    let password = server.printed_password().expect("password");
    let mut ctl = Control::connect_greeted(addr);
    ctl.expect("USER ferry", 331);
    ctl.expect(&format!("PASS {password}"), 230);
    ctl.expect("TYPE I", 200);
    (addr, ctl)
}

#[test]
fn files_uploaded_over_ftp_land_in_the_bucket_and_come_back() {
    let dir = tempdir();
    let b = bucket();
    let flags = b.serve_flags("srv/");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut server = Server::start(dir.path(), &flags);
    let (addr, mut ctl) = login(&mut server);
    server.wait_logged("S3 storage ready");

    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut data = ctl.epsv(addr);
    ctl.expect("STOR up.bin", 150);
    data.write_all(&content).expect("upload");
    drop(data);
    ctl.expect_final(226);
    assert_eq!(
        b.object("srv/up.bin").as_deref(),
        Some(&content[..]),
        "stored object differs"
    );

    // REST + RETR: a ranged read.
    ctl.expect("REST 1000000", 350);
    let mut data = ctl.epsv(addr);
    ctl.expect("RETR up.bin", 150);
    let mut got = Vec::new();
    data.read_to_end(&mut got).expect("download");
    ctl.expect_final(226);
    assert_eq!(got, &content[1_000_000..]);
    // The secret never reaches the log.
    let log = std::fs::read_to_string(
        std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("serve-stderr"))
            .expect("stderr log")
            .path(),
    )
    .expect("log");
    assert!(!log.contains(ferry_testkit::s3::SECRET_KEY), "secret logged");
}

#[test]
fn kill_9_mid_upload_leaves_no_object_under_the_final_name() {
    let dir = tempdir();
    let b = bucket();
    let flags = b.serve_flags("");
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut server = Server::start(dir.path(), &flags);
    let (addr, mut ctl) = login(&mut server);
    let mut data: TcpStream = ctl.epsv(addr);
    ctl.expect("STOR big.bin", 150);
    // Enough for two parts: the multipart upload has begun on the server.
    let chunk = vec![7u8; 1 << 20];
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut sent = 0;
    while b.pending_uploads().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no multipart upload started after {sent} bytes"
        );
        data.write_all(&chunk).expect("upload");
        sent += chunk.len();
    }
    server.child.kill().expect("kill -9");
    server.child.wait().expect("wait");
    drop(data);
    assert!(
        b.object("big.bin").is_none(),
        "an object appeared under the final name"
    );
    // Its parts are what the documented lifecycle rule removes.
    assert_eq!(b.pending_uploads(), vec!["big.bin".to_owned()]);
}

#[test]
fn an_unreachable_bucket_stops_the_start_with_a_clear_error() {
    let dir = tempdir();
    let b = bucket();
    let mut flags = b.serve_flags("");
    let at = flags
        .iter()
        .position(|f| f == "--storage-bucket")
        .expect("bucket flag")
        + 1;
    flags[at] = "missing-bucket".into();
    let out = ferry(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--sftp-listen", "127.0.0.1:0"])
        .args(&flags)
        .stdin(Stdio::null())
        .output()
        .expect("run ferry serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("missing-bucket") && err.contains("storage.bucket"),
        "{err}"
    );
    assert!(
        !err.contains(ferry_testkit::s3::SECRET_KEY),
        "secret shown: {err}"
    );
}

#[test]
fn readyz_follows_the_bucket() {
    common::require("curl");
    let dir = tempdir();
    let b = bucket();
    let mut flags = b.serve_flags("");
    flags.extend(["--admin-listen".to_owned(), "127.0.0.1:0".to_owned()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut server = Server::start(dir.path(), &flags);
    server.wait_listening();
    let admin = server.wait_for("ferry: admin listening on ");
    let url = format!(
        "{}/readyz",
        admin
            .split_whitespace()
            .next()
            .expect("admin URL")
            .trim_end_matches('/')
    );
    let readyz = || {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
            .arg(&url)
            .output()
            .expect("run curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ready = readyz();
    assert!(ready.ends_with("200"), "{ready}");
    // The bucket goes away (s3s-fs keeps a bucket as a directory): not ready, and why.
    std::fs::remove_dir_all(b.dir()).expect("remove bucket");
    let gone = readyz();
    assert!(gone.ends_with("503") && gone.contains("S3 bucket"), "{gone}");
}
