//! `ferry bench` against `ferry serve` over FTP, explicit FTPS and SFTP: the operations it reports done
//! are the operations the server saw (files made, kept or removed), failures are counted with their
//! message and exit code 5, the JSON report has its documented fields, and bad arguments are refused
//! with exit code 2 before anything is sent. Nothing here depends on speed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;

mod common;

use common::{ferry, run_timeout, tempdir, text, Server};

/// A running server and what the load generator needs to reach it.
struct Serve {
    server: Server,
    ftp: SocketAddr,
    sftp: SocketAddr,
    password: String,
    dir: PathBuf,
}

impl Serve {
    fn start(dir: &Path) -> Serve {
        let mut server = Server::start(dir, &[]);
        let ftp = server.wait_listening();
        let sftp = server
            .wait_for("ferry: SFTP listening on ")
            .parse()
            .expect("addr");
        let password = server.printed_password().expect("first-start password");
        std::fs::create_dir_all(dir.join("home")).expect("home");
        std::fs::create_dir_all(dir.join("ferry-data/files/work")).expect("work dir");
        Serve {
            server,
            ftp,
            sftp,
            password,
            dir: dir.to_path_buf(),
        }
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        let addr = if scheme == "sftp" { self.sftp } else { self.ftp };
        format!("{scheme}://ferry@{addr}{path}")
    }

    fn pid(&self) -> String {
        self.server.child.id().to_string()
    }

    /// Names in the served directory `work/`.
    fn work_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.join("ferry-data/files/work"))
            .expect("read work dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn bench(&self, args: &[&str]) -> Output {
        bench(&self.dir, Some(&self.password), args)
    }

    /// Runs `ferry bench … --json`; checks the exit code; returns the report.
    #[track_caller]
    fn report(&self, args: &[&str], code: i32) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.bench(&all);
        assert_eq!(
            out.status.code(),
            Some(code),
            "ferry bench {all:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", text(&out.stdout)))
    }
}

fn bench(dir: &Path, password: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = ferry(dir);
    cmd.env("HOME", dir.join("home"))
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SSH_AUTH_SOCK")
        .arg("bench")
        .args(args)
        .stdin(Stdio::null());
    match password {
        Some(pw) => cmd.env("FERRY_PASSWORD", pw),
        None => cmd.env_remove("FERRY_PASSWORD"),
    };
    let run = run_timeout(&mut cmd, None, Duration::from_secs(120));
    assert!(
        run.status.code().is_some(),
        "ferry bench was killed: {}",
        run.dump()
    );
    Output {
        status: run.status,
        stdout: run.stdout,
        stderr: run.stderr.into_bytes(),
    }
}

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {v}"))
}

fn float(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

#[test]
fn put_over_ftp_uploads_every_file_once_and_keep_leaves_them() {
    let dir = tempdir();
    let s = Serve::start(dir.path());
    let url = s.url("ftp", "/work/");
    let pid = s.pid();
    let r = s.report(
        &[
            &url,
            "--op",
            "put",
            "-n",
            "30",
            "-s",
            "3",
            "--size",
            "1000",
            "--keep",
            "--server-pid",
            &pid,
        ],
        0,
    );
    assert_eq!(
        (num(&r, "requested"), num(&r, "done"), num(&r, "errors")),
        (30, 30, 0)
    );
    assert_eq!(num(&r, "bytes"), 30_000);
    assert_eq!(
        (r["op"].as_str(), r["protocol"].as_str()),
        (Some("put"), Some("ftp"))
    );
    assert_eq!(
        (num(&r, "sessions"), num(&r, "size"), num(&r, "server_pid")),
        (3, 1000, s.server.child.id().into())
    );
    let names = s.work_files();
    assert_eq!(names.len(), 30, "{names:?}");
    for n in &names {
        assert!(n.starts_with("ferry-bench-"), "{n}");
        let len = std::fs::metadata(s.dir.join("ferry-data/files/work").join(n))
            .expect("stat")
            .len();
        assert_eq!(len, 1000, "{n}");
    }
    // The report's shape: every documented field, with figures that are consistent with each other.
    for key in [
        "wall_secs",
        "ops_per_sec",
        "mb_per_sec",
        "client_cpu_secs",
        "client_cpu_per_op_us",
        "client_cpu_percent",
        "server_cpu_secs",
        "server_cpu_per_op_us",
        "server_cpu_percent",
    ] {
        assert!(float(&r, key) >= 0.0, "{key}");
    }
    let l = &r["latency_ms"];
    let (p50, p90, p99, max) = (float(l, "p50"), float(l, "p90"), float(l, "p99"), float(l, "max"));
    assert!(p50 > 0.0 && p50 <= p90 && p90 <= p99 && p99 <= max, "{l}");
    assert_eq!(r["stopped_early"], Value::Bool(false));
    assert_eq!(r["error_messages"], Value::Array(vec![]));
    assert!(r["held"].is_null() && r["hold_secs"].is_null());
}

#[test]
fn get_over_ftp_downloads_the_count_and_removes_its_sources() {
    let dir = tempdir();
    let s = Serve::start(dir.path());
    let r = s.report(
        &[
            &s.url("ftp", "/work"),
            "--op",
            "get",
            "-n",
            "25",
            "-s",
            "2",
            "--size",
            "5KiB",
        ],
        0,
    );
    assert_eq!(
        (num(&r, "done"), num(&r, "errors"), num(&r, "bytes")),
        (25, 0, 25 * 5120)
    );
    assert!(
        r["server_cpu_secs"].is_null(),
        "no --server-pid, no server figures: {r}"
    );
    assert_eq!(s.work_files(), Vec::<String>::new(), "sources are removed");
}

#[test]
fn text_report_shows_client_and_server_cpu() {
    let dir = tempdir();
    let s = Serve::start(dir.path());
    let pid = s.pid();
    let out = s.bench(&[
        &s.url("ftp", "/work/"),
        "--op",
        "put",
        "-n",
        "5",
        "--server-pid",
        &pid,
    ]);
    let t = text(&out.stdout);
    assert!(out.status.success(), "{t}{}", text(&out.stderr));
    assert!(t.contains("done      5 of 5, 0 error(s)"), "{t}");
    assert!(t.contains("  client    CPU "), "{t}");
    assert!(t.contains(&format!("(pid {pid} and its children)")), "{t}");
}

#[test]
fn login_storm_over_explicit_ftps_counts_every_login() {
    let dir = tempdir();
    let s = Serve::start(dir.path());
    let fp = s.server.printed_fingerprint().expect("fingerprint");
    let r = s.report(
        &[
            &s.url("ftpes", "/"),
            "--op",
            "login",
            "-n",
            "40",
            "-s",
            "8",
            "--threads",
            "2",
            "--pin",
            &fp,
        ],
        0,
    );
    assert_eq!(
        (num(&r, "done"), num(&r, "errors"), num(&r, "threads")),
        (40, 0, 2)
    );
    assert_eq!(r["protocol"].as_str(), Some("ftpes"));
    assert!(r["size"].is_null());
}

#[test]
fn sftp_put_and_get_count_their_operations() {
    let dir = tempdir();
    let s = Serve::start(dir.path());
    let url = s.url("sftp", "/work/");
    let r = s.report(
        &[&url, "--op", "put", "-n", "12", "-s", "3", "--trust-on-first-use"],
        0,
    );
    assert_eq!(
        (num(&r, "done"), num(&r, "errors"), num(&r, "bytes")),
        (12, 0, 12 * 4096)
    );
    assert_eq!(
        s.work_files(),
        Vec::<String>::new(),
        "uploads are removed without --keep"
    );
    let r = s.report(&[&url, "--op", "get", "-n", "9", "-s", "3", "--size", "70000"], 0);
    assert_eq!((num(&r, "done"), num(&r, "bytes")), (9, 9 * 70_000));
}

#[test]
fn idle_sessions_are_held_and_checked() {
    let dir = tempdir();
    let s = Serve::start(dir.path());
    let pid = s.pid();
    let r = s.report(
        &[
            &s.url("ftp", "/work/"),
            "--op",
            "idle",
            "-s",
            "6",
            "--hold",
            "1",
            "--server-pid",
            &pid,
        ],
        0,
    );
    assert_eq!(
        (num(&r, "requested"), num(&r, "done"), num(&r, "held")),
        (6, 6, 6)
    );
    assert_eq!(num(&r, "hold_secs"), 1);
    assert!(float(&r, "server_cpu_while_held_secs") >= 0.0);
}

#[test]
fn failed_operations_are_counted_with_their_message_and_exit_code_5() {
    let dir = tempdir();
    let s = Serve::start(dir.path());
    let r = s.report(
        &[
            &s.url("ftp", "/missing-dir/"),
            "--op",
            "put",
            "-n",
            "4",
            "-s",
            "2",
        ],
        5,
    );
    assert_eq!(
        (num(&r, "requested"), num(&r, "done"), num(&r, "errors")),
        (4, 0, 4)
    );
    // One line per cause, not one per file.
    let messages = r["error_messages"].as_array().expect("error_messages");
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(num(&messages[0], "count"), 4, "{messages:?}");
    let message = messages[0]["message"].as_str().expect("message");
    assert!(message.contains("/missing-dir/ferry-bench-"), "{message}");
}

#[test]
fn a_wrong_password_stops_before_any_load() {
    let dir = tempdir();
    let s = Serve::start(dir.path());
    let out = bench(
        &s.dir,
        Some("not-the-password"),
        &[&s.url("ftp", "/"), "--op", "login", "-n", "50"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("login failed"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "no report: {}", text(&out.stdout));
}

#[test]
fn the_time_limit_stops_a_run_and_says_so() {
    let dir = tempdir();
    let s = Serve::start(dir.path());
    let r = s.report(
        &[
            &s.url("ftp", "/"),
            "--op",
            "login",
            "-n",
            "10000000",
            "--max-secs",
            "1",
        ],
        5,
    );
    assert_eq!(r["stopped_early"], Value::Bool(true));
    let done = num(&r, "done");
    assert!(done > 0 && done < 10_000_000, "{r}");
    assert_eq!(num(&r, "errors"), 0, "{r}");
}

#[test]
fn bad_arguments_are_refused_before_connecting() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.path().join("home")).expect("home");
    // Nothing listens on this port: a refusal must come before any connection attempt.
    let url = "ftp://ferry@127.0.0.1:9/work/";
    let cases: &[(&[&str], &str)] = &[
        (
            &[url, "-s", "5", "-n", "2"],
            "--sessions 5 is more than --count 2",
        ),
        (&[url, "--size", "4KB"], "unknown unit"),
        (&[url, "--size", "65GiB"], "largest size"),
        (&[url, "-n", "0"], "--count"),
        (&[url, "-s", "0"], "--sessions"),
        (&[url, "--threads", "0"], "--threads"),
        (&[url, "--op", "upload"], "--op"),
        (&[url, "--ascii"], "--ascii"),
        (&[url, "--server-pid", "4294967295"], "--server-pid 4294967295"),
        (&["sftp://ferry@127.0.0.1:9/", "--active"], "--active"),
        (&["127.0.0.1:9"], "is not a URL"),
    ];
    for (args, needle) in cases {
        let out = bench(dir.path(), Some("pw"), args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: expected {needle:?} in {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
