//! `ferry serve` with `bandwidth.default_download_kib`: one user downloading over FTP (curl) and
//! SFTP (paramiko) at the same time shares one limit across both protocols.

use std::process::Command;
use std::time::Instant;

mod common;

use common::{ferry, run, skip_unless, Run, Server};
use ferry_testkit::clients::skip_unless_python_module;

const LIMIT_KIB: u64 = 1024;
const SIZE: usize = 3 * 1024 * 1024;

#[test]
fn ftp_and_sftp_sessions_of_one_user_share_the_default_download_limit() {
    if skip_unless("curl") || skip_unless_python_module("paramiko") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let added = ferry(d)
        .args([
            "user",
            "add",
            "alice",
            "--password",
            "x-long-password",
            "--home",
            "/",
        ])
        .output()
        .expect("ferry user add");
    assert!(added.status.success(), "{added:?}");
    let files = d.join("ferry-data/files");
    std::fs::create_dir_all(&files).expect("files dir");
    std::fs::write(files.join("big.bin"), vec![5u8; SIZE]).expect("write");
    let limit = LIMIT_KIB.to_string();
    let mut server = Server::start(d, &["--bandwidth-default-download-kib", &limit]);
    let sftp_addr = server.wait_for("ferry: SFTP listening on ");
    let ftp_addr = match server
        .printed
        .iter()
        .find_map(|l| l.strip_prefix("ferry: FTP listening on "))
    {
        Some(a) => a.to_owned(),
        None => server.wait_for("ferry: FTP listening on "),
    };
    let sftp_port = sftp_addr.rsplit(':').next().expect("port").to_owned();

    // Both clients log in first and then wait for a common start signal (a file), so that the two
    // downloads run side by side.
    let go = d.join("go");
    let mut ftp = Command::new("python3");
    ftp.arg("-c").arg(format!(
        r#"
import ftplib, os, time
host, port = "{ftp_addr}".rsplit(":", 1)
f = ftplib.FTP()
f.connect(host, int(port), timeout=30)
f.login("alice", "x-long-password")
while not os.path.exists("{go}"): time.sleep(0.005)
n = 0
start = time.monotonic()
def got(b):
    global n
    n += len(b)
f.retrbinary("RETR big.bin", got, blocksize=65536)
print(n, time.monotonic() - start)
"#,
        go = go.display()
    ));
    let mut sftp = Command::new("python3");
    sftp.arg("-c").arg(format!(
        r#"
import os, time, paramiko
t = paramiko.Transport(("127.0.0.1", {sftp_port}))
t.connect(username="alice", password="x-long-password")
s = paramiko.SFTPClient.from_transport(t)
while not os.path.exists("{go}"): time.sleep(0.005)
start = time.monotonic()
with s.open("big.bin", "rb") as f:
    f.prefetch()
    n = len(f.read())
print(n, time.monotonic() - start)
t.close()
"#,
        go = go.display()
    ));
    let clients: Vec<_> = [ftp, sftp]
        .into_iter()
        .map(|mut cmd| std::thread::spawn(move || run(&mut cmd, None)))
        .collect();
    // Give both time to log in (password hashing), then start them together.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let started = Instant::now();
    std::fs::write(&go, b"").expect("go");
    let runs: Vec<Run> = clients
        .into_iter()
        .map(|c| c.join().expect("client thread"))
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    let limit = (LIMIT_KIB * 1024) as f64;
    let mut total = 0.0;
    for (name, r) in ["ftp", "sftp"].iter().zip(&runs) {
        r.assert_success();
        let out = r.out();
        let mut fields = out.split_whitespace();
        let bytes: f64 = fields.next().and_then(|f| f.parse().ok()).expect("bytes");
        let secs: f64 = fields.next().and_then(|f| f.parse().ok()).expect("secs");
        assert_eq!(bytes as usize, SIZE, "{name}: {out}");
        let rate = bytes / secs;
        eprintln!("{name}: {:.0} KiB/s", rate / 1024.0);
        assert!(
            (rate - limit / 2.0).abs() < limit / 2.0 * 0.25,
            "{name} gets about half of the shared limit: {:.0} KiB/s",
            rate / 1024.0
        );
        total += bytes;
    }
    let rate = total / elapsed;
    eprintln!("together: {:.0} KiB/s", rate / 1024.0);
    assert!(
        (rate - limit).abs() < limit * 0.2,
        "FTP and SFTP together stay within 20 % of the limit: {:.0} KiB/s",
        rate / 1024.0
    );
}
