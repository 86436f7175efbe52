//! The admin HTTP listener of a real `ferry serve`, scraped with curl and parsed with a Prometheus
//! text parser: `/metrics` counts sessions, logins and transfers; `/healthz`; `/readyz` turns 503
//! while the user database is gone.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{tempdir, Server};

/// Fails (never skips) when a client the test drives is missing.
#[track_caller]
fn require(program: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{program}` is not installed; run scripts/install-test-deps.sh"
    );
}

/// `curl` against the admin listener: (HTTP status, body).
fn http_get(base: &str, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
            &format!("{base}{path}"),
        ])
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.trim().parse().expect("status"), body.to_owned())
}

/// The exposition passes the strict OpenMetrics parser of Python's `prometheus_client` (a format
/// error raises); returns the metric family names it found.
fn strict_families(body: &str) -> Vec<String> {
    use std::io::Write;
    let script = concat!(
        "import sys\n",
        "from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n",
        "for family in parse(sys.stdin.read()):\n",
        "    print(family.name)\n",
    );
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write exposition");
    let out = child.wait_with_output().expect("python3");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("No module named 'prometheus_client'"),
        "Python's prometheus_client is not installed; run scripts/install-test-deps.sh"
    );
    assert!(out.status.success(), "not valid OpenMetrics: {err}\n{body}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// One scrape, parsed: sample name plus sorted labels → value.
fn scrape(base: &str) -> HashMap<String, f64> {
    let (code, body) = http_get(base, "/metrics");
    assert_eq!(code, 200, "{body}");
    let families = strict_families(&body);
    for name in [
        "ferry_sessions_active",
        "ferry_sessions",
        "ferry_logins",
        "ferry_transfers",
        "ferry_transfer_bytes",
        "ferry_data_connection_failures",
        "ferry_login_latency_seconds",
        "ferry_transfer_duration_seconds",
        "ferry_defender_bans",
        "ferry_storage_operations",
        "ferry_hook_deliveries",
    ] {
        assert!(
            families.iter().any(|f| f == name),
            "no family {name} in {families:?}"
        );
    }
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    assert!(!parsed.samples.is_empty(), "no samples in {body}");
    let mut samples = HashMap::new();
    for s in parsed.samples {
        let mut labels: Vec<_> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        labels.sort();
        match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => {
                samples.insert(format!("{}{{{}}}", s.metric, labels.join(",")), v);
            }
            // Buckets become `NAME_bucket{labels,le=BOUND}` samples.
            prometheus_parse::Value::Histogram(buckets) => {
                for b in buckets {
                    let le = if b.less_than.is_infinite() {
                        "+Inf".to_owned()
                    } else {
                        b.less_than.to_string()
                    };
                    let mut with_le = labels.clone();
                    with_le.push(format!("le={le}"));
                    samples.insert(format!("{}_bucket{{{}}}", s.metric, with_le.join(",")), b.count);
                }
            }
            other => panic!("unexpected sample {other:?}"),
        }
    }
    samples
}

fn value(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {:?}", m.keys().collect::<Vec<_>>()))
}

/// `ferry serve` with the admin listener on a free port: (server, FTP address, admin base URL, password).
fn start(dir: &Path) -> (Server, std::net::SocketAddr, String, String) {
    start_with(dir, &[])
}

/// [`start`] with more arguments for `ferry serve`.
fn start_with(dir: &Path, extra: &[&str]) -> (Server, std::net::SocketAddr, String, String) {
    let mut args = vec!["--admin-listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut server = Server::start(dir, &args);
    let ftp = server.wait_listening();
    let admin = server.wait_for("ferry: admin listening on ");
    let url = admin.split_whitespace().next().expect("admin URL");
    let base = url.trim_end_matches('/').to_owned();
    let password = server.printed_password().expect("first-start password");
    (server, ftp, base, password)
}

fn curl_ftp(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("run curl")
}

#[test]
fn metrics_count_sessions_logins_and_transfers() {
    require("curl");
    require("python3");
    let d = tempdir();
    let (server, ftp, base, password) = start(d.path());
    let before = scrape(&base);
    for p in ["ftp", "ftps", "sftp"] {
        assert_eq!(
            value(&before, &format!("ferry_sessions_active{{protocol={p}}}")),
            0.0
        );
    }

    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let src = d.path().join("payload.bin");
    std::fs::write(&src, &payload).expect("payload");
    let url = format!("ftp://127.0.0.1:{}/payload.bin", ftp.port());
    let user = format!("ferry:{password}");
    let up = curl_ftp(&["-u", &user, "-T", src.to_str().expect("path"), &url]);
    assert!(
        up.status.success(),
        "upload: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let copy = d.path().join("copy.bin");
    let down = curl_ftp(&["-u", &user, "-o", copy.to_str().expect("path"), &url]);
    assert!(
        down.status.success(),
        "download: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(std::fs::read(&copy).expect("copy"), payload);
    // The same download over explicit FTPS: the login and the transfer count as `ftps`.
    let cert = d.path().join("ferry-data/tls/cert.pem");
    let tls_copy = d.path().join("tls-copy.bin");
    let tls = curl_ftp(&[
        "--ssl-reqd",
        "--cacert",
        cert.to_str().expect("path"),
        "-u",
        &user,
        "-o",
        tls_copy.to_str().expect("path"),
        &url,
    ]);
    assert!(
        tls.status.success(),
        "FTPS download: {}",
        String::from_utf8_lossy(&tls.stderr)
    );
    assert_eq!(std::fs::read(&tls_copy).expect("TLS copy"), payload);
    let bad = curl_ftp(&["-u", "ferry:wrong-password", &url]);
    assert!(!bad.status.success(), "a wrong password must fail");
    // An SSH connection that only reads the banner is an SFTP session too.
    // Printed before the admin line, so already read.
    let sftp_addr: std::net::SocketAddr = server
        .printed
        .iter()
        .find_map(|l| l.strip_prefix("ferry: SFTP listening on "))
        .expect("SFTP listening line")
        .parse()
        .expect("SFTP address");
    {
        use std::io::Read;
        let mut ssh = std::net::TcpStream::connect(sftp_addr).expect("connect SFTP");
        ssh.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut banner = [0u8; 4];
        ssh.read_exact(&mut banner).expect("SSH banner");
        assert_eq!(&banner, b"SSH-");
    }

    // Sessions end shortly after the clients disconnect.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let m = scrape(&base);
        let open: f64 = ["ftp", "ftps", "sftp"]
            .iter()
            .map(|p| value(&m, &format!("ferry_sessions_active{{protocol={p}}}")))
            .sum();
        if open == 0.0 || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let size = payload.len() as f64;
    let delta = |key: &str| value(&after, key) - before.get(key).copied().unwrap_or(0.0);
    // Explicit FTPS starts in the clear: its session counts as `ftp`.
    assert_eq!(delta("ferry_sessions_total{protocol=ftp}"), 4.0);
    assert_eq!(delta("ferry_sessions_total{protocol=ftps}"), 0.0);
    assert_eq!(
        delta("ferry_logins_total{method=password,outcome=ok,protocol=ftps}"),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "ferry_transfers_total{direction=download,outcome=ok,protocol=ftps}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "ferry_transfer_bytes_total{direction=download,protocol=ftps}"
        ),
        size
    );
    assert_eq!(delta("ferry_sessions_total{protocol=sftp}"), 1.0);
    assert_eq!(value(&after, "ferry_sessions_active{protocol=ftp}"), 0.0);
    assert_eq!(value(&after, "ferry_sessions_active{protocol=sftp}"), 0.0);
    assert_eq!(
        delta("ferry_logins_total{method=password,outcome=ok,protocol=ftp}"),
        2.0
    );
    assert_eq!(
        delta("ferry_logins_total{method=password,outcome=failed,protocol=ftp}"),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "ferry_transfers_total{direction=upload,outcome=ok,protocol=ftp}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "ferry_transfers_total{direction=download,outcome=ok,protocol=ftp}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "ferry_transfer_bytes_total{direction=upload,protocol=ftp}"
        ),
        size
    );
    assert_eq!(
        value(
            &after,
            "ferry_transfer_bytes_total{direction=download,protocol=ftp}"
        ),
        size
    );
    drop(server);
}

#[test]
fn healthz_and_readyz_follow_the_user_database_and_files_root() {
    require("curl");
    let d = tempdir();
    let (_server, _ftp, base, _password) = start(d.path());
    assert_eq!(http_get(&base, "/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(http_get(&base, "/readyz").0, 200);

    let db = d.path().join("ferry-data/users.db");
    let aside = d.path().join("ferry-data/users.db.aside");
    std::fs::rename(&db, &aside).expect("move the user database away");
    let (code, body) = http_get(&base, "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("users.db"), "names the database: {body}");
    // The process still serves.
    assert_eq!(http_get(&base, "/healthz").0, 200);

    std::fs::rename(&aside, &db).expect("put the user database back");
    assert_eq!(http_get(&base, "/readyz").0, 200);

    // The files root (the storage back-end) gone: not ready either.
    let files = d.path().join("ferry-data/files");
    let files_aside = d.path().join("ferry-data/files.aside");
    std::fs::rename(&files, &files_aside).expect("move the files root away");
    let (code, body) = http_get(&base, "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("files root"), "names the files root: {body}");
    std::fs::rename(&files_aside, &files).expect("put the files root back");
    assert_eq!(http_get(&base, "/readyz").0, 200);

    assert_eq!(http_get(&base, "/nope").0, 404);
    let post = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .arg(format!("{base}/metrics"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&post.stdout), "405");
}

#[test]
fn an_empty_admin_listen_starts_no_listener() {
    use std::io::{BufRead, BufReader};
    let d = tempdir();
    std::fs::write(d.path().join("ferry.toml"), "[admin]\nlisten = []\n").expect("config");
    let mut child = common::ferry(d.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--sftp-enabled=false"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn ferry serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("stdout line");
        let listening = line.starts_with("ferry: FTP listening on ");
        printed.push(line);
        if listening {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    printed.extend(lines.map_while(Result::ok));
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "{exit:?}");
    assert!(
        printed.iter().any(|l| l.starts_with("ferry: FTP listening on ")),
        "{printed:?}"
    );
    assert!(
        !printed.iter().any(|l| l.contains("admin listening")),
        "{printed:?}"
    );
}

#[test]
fn a_data_connection_nobody_makes_counts_as_a_425_failure() {
    require("curl");
    require("python3");
    let d = tempdir();
    let (_server, ftp, base, password) = start_with(d.path(), &["--data-timeout-secs", "1"]);
    let key = "ferry_data_connection_failures_total{protocol=ftp,reply=425}";
    assert_eq!(value(&scrape(&base), key), 0.0);

    let mut c = common::Control::connect_greeted(ftp);
    c.expect("USER ferry", 331);
    c.expect(&format!("PASS {password}"), 230);
    c.expect("EPSV", 229);
    c.expect("LIST", 150);
    c.expect_final(425);
    c.expect("QUIT", 221);

    let m = scrape(&base);
    assert_eq!(value(&m, key), 1.0);
    assert_eq!(
        value(&m, "ferry_data_connection_failures_total{protocol=ftp,reply=426}"),
        0.0
    );
    // A listing is not a file transfer.
    assert_eq!(
        value(
            &m,
            "ferry_transfers_total{direction=download,outcome=failed,protocol=ftp}"
        ),
        0.0
    );
}

// ----- a busy server ---------------------------------------------------------------------------------

/// A cleartext FTP control connection from the local address `from` (another loopback address, so
/// that it can be banned while 127.0.0.1, allow-listed, keeps working).
struct FtpFrom {
    reader: std::io::BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
}

impl FtpFrom {
    fn connect(from: &str, to: std::net::SocketAddr) -> FtpFrom {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
        let local: std::net::SocketAddr = format!("{from}:0").parse().expect("source address");
        socket.bind(&local.into()).expect("bind the source address");
        socket.connect(&to.into()).expect("connect FTP");
        let stream: std::net::TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        FtpFrom {
            reader: std::io::BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    /// The next complete reply's code (0 when the server closed the connection).
    fn reply(&mut self) -> u16 {
        use std::io::BufRead;
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return 0,
                Ok(_) => {}
            }
            let b = line.as_bytes();
            if b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' ' {
                return line[..3].parse().expect("code");
            }
        }
    }

    fn cmd(&mut self, line: &str) -> u16 {
        use std::io::Write;
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("send");
        self.reply()
    }
}

/// Runs a paramiko script against the SFTP server at `port` (see the test kit's `paramiko_script`).
fn paramiko(port: u16, body: &str) -> String {
    ferry_testkit::clients::paramiko_script(port, body)
}

/// The histogram `name`'s series with `labels` (sorted `k=v`, comma-separated) is consistent:
/// buckets never decrease, the `+Inf` bucket equals the count. Returns (count, sum).
fn histogram(m: &HashMap<String, f64>, name: &str, labels: &str) -> (f64, f64) {
    let prefix = format!("{name}_bucket{{{labels},le=");
    let mut buckets: Vec<(f64, f64)> = m
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix(&prefix)?.strip_suffix('}')?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, *v))
        })
        .collect();
    assert!(buckets.len() > 2, "no buckets for {name}{{{labels}}}");
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in buckets.windows(2) {
        assert!(
            pair[0].1 <= pair[1].1,
            "{name}{{{labels}}} buckets decrease: {buckets:?}"
        );
    }
    let count = value(m, &format!("{name}_count{{{labels}}}"));
    let sum = value(m, &format!("{name}_sum{{{labels}}}"));
    let inf = buckets.last().expect("buckets");
    assert_eq!(inf.0, f64::INFINITY, "{buckets:?}");
    assert_eq!(inf.1, count, "{name}{{{labels}}}: +Inf bucket and count differ");
    assert!(
        sum >= 0.0 && (count > 0.0 || sum == 0.0),
        "{name}{{{labels}}} sum {sum}"
    );
    (count, sum)
}

#[test]
fn a_busy_server_moves_every_metric() {
    require("curl");
    require("python3");
    let d = tempdir();
    let hook_log = d.path().join("hook.log");
    let hook = d.path().join("hook.sh");
    std::fs::write(&hook, format!("#!/bin/sh\ncat >> {}\n", hook_log.display())).expect("hook");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    // 127.0.0.1 (the clients that must keep working) is allow-listed; other loopback addresses are
    // scored, and two failed logins ban one.
    std::fs::write(
        d.path().join("ferry.toml"),
        format!(
            "[defender]\nthreshold = 2\nscore_loopback = true\nallow_list = [\"127.0.0.1/32\"]\n\
             [hooks]\ncommand = [{:?}]\nevents = [\"upload\"]\n",
            hook.display()
        ),
    )
    .expect("config");
    let (server, ftp, base, password) = start_with(d.path(), &["--data-timeout-secs", "1"]);
    let sftp_port: u16 = server
        .printed
        .iter()
        .find_map(|l| l.strip_prefix("ferry: SFTP listening on "))
        .expect("SFTP listening line")
        .parse::<std::net::SocketAddr>()
        .expect("SFTP address")
        .port();
    let before = scrape(&base);

    // FTP: an upload and a download (curl), an FTPS download, a wrong password.
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let size = payload.len() as f64;
    let src = d.path().join("payload.bin");
    std::fs::write(&src, &payload).expect("payload");
    let url = format!("ftp://127.0.0.1:{}/busy.bin", ftp.port());
    let user = format!("ferry:{password}");
    let up = curl_ftp(&["-u", &user, "-T", src.to_str().expect("path"), &url]);
    assert!(
        up.status.success(),
        "upload: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let copy = d.path().join("copy.bin");
    let down = curl_ftp(&["-u", &user, "-o", copy.to_str().expect("path"), &url]);
    assert!(
        down.status.success(),
        "download: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(std::fs::read(&copy).expect("copy"), payload);
    let cert = d.path().join("ferry-data/tls/cert.pem");
    let tls_copy = d.path().join("tls-copy.bin");
    let tls = curl_ftp(&[
        "--ssl-reqd",
        "--cacert",
        cert.to_str().expect("path"),
        "-u",
        &user,
        "-o",
        tls_copy.to_str().expect("path"),
        &url,
    ]);
    assert!(
        tls.status.success(),
        "FTPS download: {}",
        String::from_utf8_lossy(&tls.stderr)
    );
    let bad = curl_ftp(&["-u", "ferry:wrong-password", &url]);
    assert!(!bad.status.success(), "a wrong password must fail");

    // A data connection nobody makes (425), and a storage error (deleting a file that is not there).
    let mut c = common::Control::connect_greeted(ftp);
    c.expect("USER ferry", 331);
    c.expect(&format!("PASS {password}"), 230);
    c.expect("EPSV", 229);
    c.expect("LIST", 150);
    c.expect_final(425);
    c.expect("DELE /no-such-file", 550);
    c.expect("QUIT", 221);

    // SFTP: a login, an upload and a download (paramiko), a wrong password. The download reads in order
    // without prefetch: paramiko's prefetch may ask for some ranges twice, and the server then rightly
    // counts those bytes twice, which made the exact byte count below fail now and then.
    let sftp_src = d.path().join("sftp-src.bin");
    std::fs::write(&sftp_src, &payload).expect("SFTP payload");
    let sftp_copy = d.path().join("sftp-copy.bin");
    let out = paramiko(
        sftp_port,
        &format!(
            "t = transport()\n\
             print(try_password(t, 'ferry', 'wrong'))\n\
             t.close()\n\
             t = transport()\n\
             print(try_password(t, 'ferry', {password:?}))\n\
             s = paramiko.SFTPClient.from_transport(t)\n\
             s.put({src:?}, '/sftp.bin')\n\
             s.get('/sftp.bin', {dst:?}, prefetch=False)\n\
             t.close()\n",
            src = sftp_src.display().to_string(),
            dst = sftp_copy.display().to_string(),
        ),
    );
    assert_eq!(out.lines().collect::<Vec<_>>(), ["refused", "ok"], "{out}");
    assert_eq!(std::fs::read(&sftp_copy).expect("SFTP copy"), payload);

    // FTP from 127.0.0.2: two wrong passwords ban the address. A second connection, admitted
    // before the ban, tries after it: refused for the ban, its password never checked. Then a new
    // connection is refused at once, over FTP and over SFTP.
    let mut a = FtpFrom::connect("127.0.0.2", ftp);
    let mut b = FtpFrom::connect("127.0.0.2", ftp);
    assert_eq!(a.reply(), 220);
    assert_eq!(b.reply(), 220);
    assert_eq!(b.cmd("USER ferry"), 331);
    assert_eq!(a.cmd("USER ferry"), 331);
    assert_eq!(a.cmd("PASS wrong-1"), 530);
    assert_eq!(a.cmd("USER ferry"), 331);
    assert_eq!(a.cmd("PASS wrong-2"), 530);
    assert_eq!(
        b.cmd(&format!("PASS {password}")),
        530,
        "refused: the address is banned"
    );
    let mut refused = FtpFrom::connect("127.0.0.2", ftp);
    assert_eq!(refused.reply(), 421);
    let out = paramiko(
        sftp_port,
        "try:\n\
         \x20   t = transport('127.0.0.2')\n\
         \x20   print(try_password(t, 'ferry', 'x'))\n\
         except Exception:\n\
         \x20   print('refused')\n",
    );
    assert_eq!(out.trim(), "refused", "{out}");
    // SFTP from 127.0.0.3 the same way: two transports, two wrong passwords on the first ban the
    // address, the second's attempt is refused for the ban.
    let out = paramiko(
        sftp_port,
        &format!(
            "t1 = transport('127.0.0.3')\n\
             t2 = transport('127.0.0.3')\n\
             print(try_password(t1, 'ferry', 'wrong-1'))\n\
             print(try_password(t1, 'ferry', 'wrong-2'))\n\
             print(try_password(t2, 'ferry', {password:?}))\n"
        ),
    );
    assert_eq!(out.lines().collect::<Vec<_>>(), ["refused"; 3], "{out}");
    drop((a, b, refused));

    // Hook deliveries run in the background: wait for both uploads' (FTP and SFTP).
    let hooks_ok = "ferry_hook_deliveries_total{action=command,outcome=ok}";
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let m = scrape(&base);
        if value(&m, hooks_ok) - value(&before, hooks_ok) >= 2.0 || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let delta = |key: &str| value(&after, key) - value(&before, key);

    // Logins by protocol, method and outcome.
    let login = |p: &str, method: &str, outcome: &str| {
        delta(&format!(
            "ferry_logins_total{{method={method},outcome={outcome},protocol={p}}}"
        ))
    };
    // ok: curl up, curl down, the 425 session; failed: curl, two from 127.0.0.2.
    assert_eq!(login("ftp", "password", "ok"), 3.0);
    assert_eq!(login("ftp", "password", "failed"), 3.0);
    assert_eq!(login("ftp", "password", "banned"), 1.0);
    assert_eq!(login("ftp", "connection", "banned"), 1.0);
    assert_eq!(login("ftps", "password", "ok"), 1.0);
    assert_eq!(login("ftps", "password", "failed"), 0.0);
    assert_eq!(login("sftp", "password", "ok"), 1.0);
    assert_eq!(login("sftp", "password", "failed"), 3.0);
    assert_eq!(login("sftp", "password", "banned"), 1.0);
    assert_eq!(login("sftp", "connection", "banned"), 1.0);
    assert_eq!(login("sftp", "publickey", "ok"), 0.0);

    // Login latency: every attempt whose credentials were checked (not the banned ones).
    for (p, checked) in [("ftp", 6.0), ("ftps", 1.0), ("sftp", 4.0)] {
        let labels = format!("method=password,protocol={p}");
        let (count, sum) = histogram(&after, "ferry_login_latency_seconds", &labels);
        let (count0, sum0) = histogram(&before, "ferry_login_latency_seconds", &labels);
        assert_eq!(count - count0, checked, "{p} login latency count");
        assert!(sum > sum0, "{p} login latency sum did not grow");
    }

    // Defender bans, by the protocol of the session that caused them.
    assert_eq!(delta("ferry_defender_bans_total{protocol=ftp}"), 1.0);
    assert_eq!(delta("ferry_defender_bans_total{protocol=sftp}"), 1.0);
    assert_eq!(delta("ferry_defender_bans_total{protocol=ftps}"), 0.0);

    // Transfers, bytes and their durations.
    for (p, dir, n) in [
        ("ftp", "upload", 1.0),
        ("ftp", "download", 1.0),
        ("ftps", "download", 1.0),
        ("ftps", "upload", 0.0),
        ("sftp", "upload", 1.0),
        ("sftp", "download", 1.0),
    ] {
        assert_eq!(
            delta(&format!(
                "ferry_transfers_total{{direction={dir},outcome=ok,protocol={p}}}"
            )),
            n,
            "{p} {dir}"
        );
        assert_eq!(
            delta(&format!(
                "ferry_transfer_bytes_total{{direction={dir},protocol={p}}}"
            )),
            n * size,
            "{p} {dir} bytes"
        );
        let labels = format!("direction={dir},protocol={p}");
        let (count, _) = histogram(&after, "ferry_transfer_duration_seconds", &labels);
        let (count0, _) = histogram(&before, "ferry_transfer_duration_seconds", &labels);
        assert_eq!(count - count0, n, "{p} {dir} duration count");
    }

    // Data connections, hooks, storage.
    assert_eq!(
        delta("ferry_data_connection_failures_total{protocol=ftp,reply=425}"),
        1.0
    );
    assert_eq!(
        delta("ferry_data_connection_failures_total{protocol=ftp,reply=426}"),
        0.0
    );
    assert_eq!(delta(hooks_ok), 2.0);
    assert_eq!(
        delta("ferry_hook_deliveries_total{action=command,outcome=failed}"),
        0.0
    );
    let hook_lines = std::fs::read_to_string(&hook_log).expect("hook log");
    assert_eq!(
        hook_lines.matches("\"event\":\"upload\"").count(),
        2,
        "{hook_lines}"
    );
    let op = |op: &str| {
        delta(&format!(
            "ferry_storage_operations_total{{backend=local,op={op}}}"
        ))
    };
    // Uploads: FTP through a writer, SFTP through a positional file; each committed once.
    assert_eq!(op("write"), 1.0);
    assert_eq!(
        op("open") + op("read"),
        4.0,
        "SFTP upload and download, FTP and FTPS downloads"
    );
    assert_eq!(op("commit"), 2.0);
    assert!(
        op("metadata") >= 1.0 && op("list") >= 1.0,
        "metadata {} list {}",
        op("metadata"),
        op("list")
    );
    assert_eq!(op("remove"), 1.0, "the DELE");
    assert_eq!(op("rename") + op("mkdir") + op("rmdir"), 0.0);
    // Error series appear with their first error.
    assert!(!before.contains_key("ferry_storage_errors_total{backend=local,kind=not_found,op=remove}"));
    assert_eq!(
        value(
            &after,
            "ferry_storage_errors_total{backend=local,kind=not_found,op=remove}"
        ),
        1.0,
        "{:?}",
        after
            .iter()
            .filter(|(k, _)| k.starts_with("ferry_storage_errors"))
            .collect::<Vec<_>>()
    );
    // The uploads probed for their names first (not found: new files), nothing else failed.
    for (k, v) in after
        .iter()
        .filter(|(k, _)| k.starts_with("ferry_storage_errors_total{"))
    {
        assert!(
            k.contains("kind=not_found") && (k.contains("op=metadata") || k.contains("op=remove")),
            "unexpected storage error {k} {v}"
        );
    }
    drop(server);
}

/// A data connection the client breaks during a download gets `426`, one that does not speak TLS
/// under `PROT P` gets `522`; each is counted once, under the protocol of its session.
#[test]
fn broken_and_refused_data_connections_count_as_426_and_522() {
    require("python3");
    let d = tempdir();
    let (_server, ftp, base, password) = start(d.path());
    // Big enough that the download is still running when the client hangs up.
    let files = d.path().join("ferry-data/files");
    std::fs::create_dir_all(&files).expect("files root");
    std::fs::write(files.join("big.bin"), vec![7u8; 64 << 20]).expect("big file");
    let k426 = "ferry_data_connection_failures_total{protocol=ftp,reply=426}";
    let k522 = "ferry_data_connection_failures_total{protocol=ftps,reply=522}";
    let before = scrape(&base);
    assert_eq!(value(&before, k426), 0.0);
    assert_eq!(value(&before, k522), 0.0);

    let script = format!(
        r#"
import ftplib, socket, ssl
host, port, pw = "127.0.0.1", {port}, {password:?}
# 426: read a little of a download, then close the data connection.
f = ftplib.FTP()
f.connect(host, port, timeout=20)
f.login("ferry", pw)
f.voidcmd("TYPE I")
s = f.transfercmd("RETR big.bin")
s.recv(4096)
s.close()
try:
    r = f.getresp()
    print("after close:", r)
except ftplib.error_temp as e:
    print("after close:", e)
f.quit()
# 522: a data connection that does not speak TLS while PROT P is in force.
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ftplib.FTP_TLS(context=ctx)
t.connect(host, port, timeout=20)
t.login("ferry", pw)
t.prot_p()
h, p = t.makepasv()
raw = socket.create_connection((host, p), timeout=20)
t.putcmd("LIST")
raw.sendall(b"this is not a TLS ClientHello\r\n" * 8)
replies = []
try:
    while True:
        r = t.getresp()
        replies.append(r)
        if not r.startswith("1"):
            break
except ftplib.Error as e:
    replies.append(str(e))
print("TLS refused:", replies)
raw.close()
t.quit()
"#,
        port = ftp.port(),
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("after close: 426"), "{text}");
    assert!(text.contains("522"), "{text}");

    let after = scrape(&base);
    assert_eq!(value(&after, k426), 1.0, "{text}");
    assert_eq!(value(&after, k522), 1.0, "{text}");
    // Nothing else was counted as a data-connection failure.
    for (key, v) in &after {
        if key.starts_with("ferry_data_connection_failures_total") && key != k426 && key != k522 {
            assert_eq!(*v, 0.0, "{key}: {text}");
        }
    }
}
