//! Quotas and shared bandwidth limits over FTP, with real clients: Python's ftplib for the quota
//! (the reply codes matter) and two curl processes downloading at once for the bandwidth limit.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{pseudo_random, run, skip_unless, write_file, Run, TestServer, PASSWORD, USER};
use ferry_auth::{Usage, UserLimits};

/// Runs an ftplib script logged in as alice (`ftp`), with the server's local dir as `LOCAL`.
fn ftplib(s: &TestServer, body: &str) -> Run {
    let script = format!(
        r#"
import ftplib, io, os, sys
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", int(os.environ["PORT"]), timeout=30)
ftp.login(os.environ["USER_NAME"], os.environ["PASSWORD"])
def put(name, size):
    try:
        r = ftp.storbinary("STOR " + name, io.BytesIO(b"q" * size))
        print(name, r)
    except ftplib.Error as e:
        print(name, e)
    except OSError:
        # The server may close the data connection while we still send: its reply follows.
        try:
            print(name, ftp.getresp())
        except ftplib.Error as e:
            print(name, e)
{body}
ftp.quit()
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

/// The stored usage once the background writes have landed.
fn settled_usage(s: &TestServer, want: Usage) -> Usage {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let u = s.usage(USER);
        if u == want || Instant::now() > deadline {
            return u;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Names in the files root (temp files of a refused upload would show here).
fn names(s: &TestServer) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(s.root())
        .expect("read root")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn ftplib_upload_crossing_the_quota_gets_552_and_leaves_no_file() {
    if skip_unless("python3") {
        return;
    }
    let server = TestServer::start();
    server.set_limits(
        USER,
        UserLimits {
            quota_bytes: Some(1_000_000),
            quota_files: Some(3),
            ..UserLimits::default()
        },
    );
    let r = ftplib(
        &server,
        r#"
put("a.bin", 600000)
put("b.bin", 600000)
print("SITE", ftp.sendcmd("SITE QUOTA"))
"#,
    );
    r.assert_success();
    let out = r.out();
    assert!(out.contains("a.bin 226"), "{out}");
    assert!(
        out.contains("b.bin 552 Quota exceeded: bytes"),
        "the crossing upload is refused naming the bytes quota: {out}"
    );
    assert_eq!(
        names(&server),
        ["a.bin"],
        "nothing of the refused upload is stored"
    );
    assert!(
        out.contains("SITE 200") && out.contains("600000 of 1000000 bytes"),
        "SITE QUOTA shows the usage: {out}"
    );
    assert_eq!(
        settled_usage(
            &server,
            Usage {
                bytes: 600_000,
                files: 1
            }
        ),
        Usage {
            bytes: 600_000,
            files: 1
        }
    );

    // Replacing a file counts only the difference; deleting gives the space back; the files quota
    // refuses the file one too many before any data moves.
    let r = ftplib(
        &server,
        r#"
put("a.bin", 900000)
ftp.delete("a.bin")
put("c.bin", 900000)
put("d.bin", 10)
put("e.bin", 10)
put("f.bin", 10)
"#,
    );
    r.assert_success();
    let out = r.out();
    assert!(out.contains("a.bin 226"), "replace within the quota: {out}");
    assert!(out.contains("c.bin 226"), "space given back by the delete: {out}");
    assert!(out.contains("d.bin 226") && out.contains("e.bin 226"), "{out}");
    assert!(
        out.contains("f.bin 552 Quota exceeded: files"),
        "the fourth file is refused naming the files quota: {out}"
    );
    assert_eq!(names(&server), ["c.bin", "d.bin", "e.bin"]);
    let want = Usage {
        bytes: 900_020,
        files: 3,
    };
    assert_eq!(settled_usage(&server, want), want);
}

#[test]
fn two_curl_sessions_of_one_user_share_the_download_limit() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start();
    const LIMIT_KIB: u64 = 1024;
    server.set_limits(
        USER,
        UserLimits {
            download_kib: Some(LIMIT_KIB),
            ..UserLimits::default()
        },
    );
    let size = 3 * 1024 * 1024;
    write_file(&server.path("big.bin"), pseudo_random(size, 3));
    // One login first, so that both measured sessions log in equally fast (the password check is
    // remembered) and download side by side from the start.
    let mut warm = server.client("curl");
    warm.args(["-sS", "--max-time", "30", "--user"])
        .arg(format!("{USER}:{PASSWORD}"))
        .arg(server.url(""));
    run(&mut warm, None).assert_success();
    let started = Instant::now();
    let children: Vec<_> = (0..2)
        .map(|i| {
            let mut cmd = server.client("curl");
            cmd.args(["-sS", "--max-time", "30", "-o"])
                .arg(server.local(&format!("got{i}.bin")))
                .arg("-w")
                .arg("%{size_download} %{time_total}")
                .arg("--user")
                .arg(format!("{USER}:{PASSWORD}"))
                .arg(server.url("big.bin"));
            std::thread::spawn(move || run(&mut cmd, None))
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| c.join().expect("curl thread"))
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    let limit = (LIMIT_KIB * 1024) as f64;
    let mut total = 0.0;
    for r in &runs {
        r.assert_success();
        let out = r.out();
        let mut fields = out.split_whitespace();
        let bytes: f64 = fields.next().and_then(|f| f.parse().ok()).expect("size");
        let secs: f64 = fields.next().and_then(|f| f.parse().ok()).expect("time");
        assert_eq!(bytes as usize, size, "{out}");
        let rate = bytes / secs;
        eprintln!("one session: {:.0} KiB/s ({out})", rate / 1024.0);
        assert!(
            rate < limit * 0.5 * 1.2 + 1.0 && rate > limit * 0.5 * 0.8,
            "each of two sessions gets about half of the limit: {:.0} KiB/s",
            rate / 1024.0
        );
        total += bytes;
    }
    let rate = total / elapsed;
    eprintln!("both sessions: {:.0} KiB/s in {elapsed:.2} s", rate / 1024.0);
    assert!(
        (rate - limit).abs() < limit * 0.2,
        "the two sessions together stay within 20 % of the limit: {:.0} KiB/s",
        rate / 1024.0
    );
}
