//! Quotas and shared bandwidth limits over SFTP, with real clients: paramiko for the quota and for
//! two sessions uploading at once under one shared limit, OpenSSH `sftp` for the refused upload and
//! for `df` (statvfs@openssh.com), which reports the quota.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use ferry_auth::{Usage, UserLimits, UserStore};

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Sets alice's limits in the server's user database (they apply from her next login).
fn set_limits(s: &TestServer, limits: UserLimits) {
    block_on(async {
        let store = UserStore::open(&s.users_db()).await.expect("open store");
        store.set_limits(USER, limits).await.expect("set limits");
    });
}

/// Alice's stored usage, once the server's background writes have landed.
fn settled_usage(s: &TestServer, want: Usage) -> Usage {
    block_on(async {
        let store = UserStore::open(&s.users_db()).await.expect("open store");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let u = store.quota(USER).await.expect("quota").usage;
            if u == want || Instant::now() > deadline {
                return u;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Runs a paramiko script with `sftp` connected as alice.
fn paramiko(s: &TestServer, body: &str) -> Run {
    let script = format!(
        r#"
import io, os, sys, threading, time, paramiko
def connect():
    t = paramiko.Transport(("127.0.0.1", int(os.environ["PORT"])))
    t.connect(username=os.environ["USER_NAME"], password=os.environ["PASSWORD"])
    return t, paramiko.SFTPClient.from_transport(t)
t, sftp = connect()
def put(name, size):
    # Unpipelined writes, so that each write's status is checked (paramiko ignores a failed CLOSE).
    try:
        with sftp.open(name, "wb") as f:
            for off in range(0, size, 32768):
                f.write(b"q" * min(32768, size - off))
        print(name, "stored")
    except IOError as e:
        print(name, "refused:", e)
{body}
t.close()
"#
    );
    let mut cmd: Command = s.client("python3");
    cmd.arg("-c")
        .arg(script)
        .env("PORT", s.port().to_string())
        .env("USER_NAME", USER)
        .env("PASSWORD", PASSWORD);
    run(&mut cmd, None)
}

fn names(s: &TestServer) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(s.root())
        .expect("read root")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn paramiko_upload_crossing_the_quota_fails_and_leaves_no_file() {
    if skip_unless_paramiko() {
        return;
    }
    let server = TestServer::start();
    set_limits(
        &server,
        UserLimits {
            quota_bytes: Some(1_000_000),
            quota_files: Some(3),
            ..UserLimits::default()
        },
    );
    let r = paramiko(
        &server,
        r#"
put("a.bin", 600000)
put("b.bin", 600000)
put("a.bin", 900000)
sftp.remove("a.bin")
put("c.bin", 900000)
put("d.bin", 10)
put("e.bin", 10)
put("f.bin", 10)
"#,
    );
    r.assert_success();
    let out = r.out();
    assert!(out.contains("a.bin stored"), "{out}");
    assert!(
        out.contains("b.bin refused: quota exceeded: bytes"),
        "the crossing upload fails naming the bytes quota: {out}"
    );
    assert!(
        out.contains("c.bin stored") && out.contains("e.bin stored"),
        "{out}"
    );
    assert!(
        out.contains("f.bin refused: quota exceeded: files"),
        "the fourth file is refused naming the files quota: {out}"
    );
    assert_eq!(names(&server), ["c.bin", "d.bin", "e.bin"], "nothing else stored");
    let want = Usage {
        bytes: 900_020,
        files: 3,
    };
    assert_eq!(settled_usage(&server, want), want);
}

#[test]
fn openssh_sftp_put_over_the_quota_fails_and_df_shows_the_quota() {
    if ferry_testkit::skip_on_s3(
        "S3 storage has no statvfs, so the server does not offer statvfs@openssh.com there and \
         `df` cannot show the quota (the quota itself is tested on S3 by the paramiko tests of \
         this file and by the FTP quota tests)",
    ) {
        return;
    }
    if !on_path("sftp") {
        require("sftp");
    }
    let server = TestServer::start();
    set_limits(
        &server,
        UserLimits {
            quota_bytes: Some(1 << 20),
            ..UserLimits::default()
        },
    );
    std::fs::write(server.local("big.bin"), vec![7u8; 3 << 20]).expect("write");
    let put = server.sftp_batch(&format!("put {} big.bin\n", server.local("big.bin").display()));
    assert!(
        !put.status.success(),
        "the upload over the quota fails: {}",
        put.out()
    );
    assert!(
        names(&server).is_empty(),
        "nothing of it is stored: {:?}",
        names(&server)
    );
    // `df` (statvfs@openssh.com) reports the quota as the size: 1 MiB = 1024 KiB.
    let df = server.sftp_batch("df .\n");
    df.assert_success();
    let out = df.out();
    let sizes: Vec<&str> = out
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(sizes.first().copied(), Some("1024"), "{out}");
}

#[test]
fn two_paramiko_sessions_of_one_user_share_the_upload_limit() {
    if skip_unless_paramiko() {
        return;
    }
    let server = TestServer::start();
    const LIMIT_KIB: u64 = 1024;
    set_limits(
        &server,
        UserLimits {
            upload_kib: Some(LIMIT_KIB),
            ..UserLimits::default()
        },
    );
    let r = paramiko(
        &server,
        r#"
SIZE = 5 * 512 * 1024
rates = {}
def upload(i):
    tt, s = connect()
    data = io.BytesIO(os.urandom(SIZE))
    start = time.monotonic()
    s.putfo(data, "up%d.bin" % i)
    rates[i] = SIZE / (time.monotonic() - start)
    tt.close()
threads = [threading.Thread(target=upload, args=(i,)) for i in range(2)]
start = time.monotonic()
for th in threads: th.start()
for th in threads: th.join()
print("total", 2 * SIZE / (time.monotonic() - start))
for i in sorted(rates): print("session", rates[i])
"#,
    );
    r.assert_success();
    let out = r.out();
    let limit = (LIMIT_KIB * 1024) as f64;
    let value = |line: &str| -> f64 {
        line.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .expect("rate")
    };
    let total = out
        .lines()
        .find(|l| l.starts_with("total"))
        .map(value)
        .expect("total");
    eprintln!("both sessions: {:.0} KiB/s", total / 1024.0);
    assert!(
        (total - limit).abs() < limit * 0.2,
        "the two sessions together stay within 20 % of the limit: {:.0} KiB/s",
        total / 1024.0
    );
    for rate in out.lines().filter(|l| l.starts_with("session")).map(value) {
        eprintln!("one session: {:.0} KiB/s", rate / 1024.0);
        assert!(
            (rate - limit / 2.0).abs() < limit / 2.0 * 0.2,
            "each session gets about half of the limit: {:.0} KiB/s",
            rate / 1024.0
        );
    }
    assert_eq!(names(&server), ["up0.bin", "up1.bin"]);
}
