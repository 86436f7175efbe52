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
    ] {
        assert!(
            families.iter().any(|f| f == name),
            "no family {name} in {families:?}"
        );
    }
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    assert!(!parsed.samples.is_empty(), "no samples in {body}");
    parsed
        .samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<_> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("unexpected sample {other:?}"),
            };
            (format!("{}{{{}}}", s.metric, labels.join(",")), value)
        })
        .collect()
}

fn value(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {:?}", m.keys().collect::<Vec<_>>()))
}

/// `ferry serve` with the admin listener on a free port: (server, FTP address, admin base URL, password).
fn start(dir: &Path) -> (Server, std::net::SocketAddr, String, String) {
    let mut server = Server::start(dir, &["--admin-listen", "127.0.0.1:0"]);
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
    assert_eq!(delta("ferry_logins_total{outcome=ok,protocol=ftps}"), 1.0);
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
    assert_eq!(delta("ferry_logins_total{outcome=ok,protocol=ftp}"), 2.0);
    assert_eq!(delta("ferry_logins_total{outcome=failed,protocol=ftp}"), 1.0);
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
    let mut server = Server::start(
        d.path(),
        &["--admin-listen", "127.0.0.1:0", "--data-timeout-secs", "1"],
    );
    let ftp = server.wait_listening();
    let admin = server.wait_for("ferry: admin listening on ");
    let base = admin
        .split_whitespace()
        .next()
        .expect("admin URL")
        .trim_end_matches('/')
        .to_owned();
    let password = server.printed_password().expect("first-start password");
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
