//! Hooks against real receivers: a Python `http.server` that records the POSTed JSON (and fails the
//! first request, to see the retry), and shell scripts run as commands (argv, environment, JSON on
//! standard input), plus the pre-upload check that refuses.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_observe::{Event, EventKind, HookConfig, Hooks, Observer, Protocol};

/// Counts hook outcomes, as the metrics do.
#[derive(Debug, Default)]
struct Outcomes(Mutex<HashMap<(&'static str, &'static str), u64>>);

impl Outcomes {
    fn get(&self, action: &'static str, outcome: &'static str) -> u64 {
        *self.0.lock().expect("lock").get(&(action, outcome)).unwrap_or(&0)
    }
}

impl Observer for Outcomes {
    fn hook_delivered(&self, action: &'static str, outcome: &'static str) {
        *self.0.lock().expect("lock").entry((action, outcome)).or_default() += 1;
    }
}

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

fn upload(path: &str) -> Event {
    let mut e = Event::new(
        EventKind::Upload,
        Protocol::Ftps,
        9,
        "127.0.0.1:40000".parse().expect("addr"),
    );
    e.user = Some("alice".into());
    e.path = Some(path.into());
    e.bytes = Some(5);
    e
}

fn config() -> HookConfig {
    HookConfig {
        timeout: Duration::from_secs(5),
        retries: 2,
        pre_upload_timeout: Duration::from_secs(5),
        ..HookConfig::default()
    }
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Python HTTP receiver that answers 500 to the first POST and 200 to the others, appending each
/// body to `log`. Killed on drop.
struct Receiver {
    child: Child,
    port: u16,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn receiver(log: &Path) -> Receiver {
    receiver_tls(log, None)
}

/// [`receiver`], serving HTTPS with `(certificate, key)` when given.
fn receiver_tls(log: &Path, tls: Option<(&Path, &Path)>) -> Receiver {
    require("python3");
    let script = r#"
import http.server, sys
log = sys.argv[1]
seen = [0]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        seen[0] += 1
        with open(log, 'ab') as f:
            f.write(self.headers['Content-Type'].encode() + b' ' + body + b'\n')
        self.send_response(500 if seen[0] == 1 else 200)
        self.send_header('Content-Length', '0')
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
if len(sys.argv) > 3:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]).arg(log);
    if let Some((cert, key)) = tls {
        cmd.arg(cert).arg(key);
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port");
    Receiver {
        port: line.trim().parse().expect("port number"),
        child,
    }
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
    let status = Command::new("chmod")
        .arg("+x")
        .arg(&path)
        .status()
        .expect("chmod");
    assert!(status.success());
    path.display().to_string()
}

#[tokio::test]
async fn http_hook_posts_the_event_json_and_retries_a_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("posts.log");
    let rx = receiver(&log);
    let outcomes = Arc::new(Outcomes::default());
    let hooks = Hooks::start(
        HookConfig {
            url: Some(format!("http://127.0.0.1:{}/ferry/events?x=1", rx.port)),
            events: vec![EventKind::Upload],
            ..config()
        },
        Some(outcomes.clone()),
    );
    hooks.event(&upload("/in/report.csv"));
    // Not a chosen event: no delivery.
    hooks.event(&Event::new(
        EventKind::Delete,
        Protocol::Ftp,
        1,
        "127.0.0.1:1".parse().expect("addr"),
    ));
    wait_until("the retried delivery", || outcomes.get("http", "ok") == 1).await;
    assert_eq!(outcomes.get("http", "retry"), 1);
    let text = std::fs::read_to_string(&log).expect("posts");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let (ctype, body) = lines[1].split_once(' ').expect("content type and body");
    assert_eq!(ctype, "application/json");
    let v: serde_json::Value = serde_json::from_str(body).expect("JSON body");
    assert_eq!(v["event"], "upload");
    assert_eq!(v["path"], "/in/report.csv");
    assert_eq!(v["user"], "alice");
    assert_eq!(v["protocol"], "ftps");
    assert_eq!(v["bytes"], 5);
}

#[tokio::test]
async fn command_hook_gets_argv_env_and_json_on_stdin() {
    require("sh");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.txt");
    let hook = script(
        dir.path(),
        "hook.sh",
        r#"{ echo "$1|$FERRY_EVENT|$FERRY_USER|$FERRY_PATH|$FERRY_BYTES|$FERRY_CLIENT_IP"; cat; } > "$2""#,
    );
    let outcomes = Arc::new(Outcomes::default());
    let hooks = Hooks::start(
        HookConfig {
            command: vec![hook, "first arg; not a shell".into(), out.display().to_string()],
            ..config()
        },
        Some(outcomes.clone()),
    );
    hooks.event(&upload("/a b/$(reboot).txt"));
    wait_until("the command", || outcomes.get("command", "ok") == 1).await;
    let text = std::fs::read_to_string(&out).expect("hook output");
    let (env_line, json) = text.split_once('\n').expect("two lines");
    assert_eq!(
        env_line,
        "first arg; not a shell|upload|alice|/a b/$(reboot).txt|5|127.0.0.1"
    );
    let v: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON on stdin");
    assert_eq!(v["path"], "/a b/$(reboot).txt");
}

#[tokio::test]
async fn failing_and_hanging_commands_are_counted_and_never_hold_the_caller() {
    require("sleep");
    let dir = tempfile::tempdir().expect("tempdir");
    let fails = script(dir.path(), "fail.sh", "echo nope >&2; exit 3");
    let outcomes = Arc::new(Outcomes::default());
    let hooks = Hooks::start(
        HookConfig {
            command: vec![fails],
            retries: 1,
            ..config()
        },
        Some(outcomes.clone()),
    );
    hooks.event(&upload("/x"));
    wait_until("the failed delivery", || outcomes.get("command", "failed") == 1).await;
    assert_eq!(outcomes.get("command", "retry"), 1);
    assert_eq!(outcomes.get("command", "ok"), 0);

    hooks.set_config(HookConfig {
        command: vec!["sleep".into(), "30".into()],
        timeout: Duration::from_millis(300),
        retries: 0,
        ..config()
    });
    let t0 = Instant::now();
    for _ in 0..50 {
        hooks.event(&upload("/y"));
    }
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "queuing 50 events took {:?}",
        t0.elapsed()
    );
    wait_until("the timed-out deliveries", || {
        outcomes.get("command", "failed") == 51
    })
    .await;
}

#[tokio::test]
async fn pre_upload_hook_refuses_with_its_reason_and_within_its_time_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let check = script(
        dir.path(),
        "check.sh",
        r#"case "$FERRY_PATH" in *.exe) echo "no executables here"; exit 1;; esac; exit 0"#,
    );
    let hooks = Hooks::start(
        HookConfig {
            pre_upload: vec![check],
            ..config()
        },
        None,
    );
    let allowed = hooks.check_upload(&upload("/in/a.txt")).expect("a check");
    assert_eq!(allowed.await, Ok(()));
    let refused = hooks.check_upload(&upload("/in/a.exe")).expect("a check");
    assert_eq!(refused.await, Err("no executables here".to_owned()));

    hooks.set_config(HookConfig {
        pre_upload: vec!["sleep".into(), "30".into()],
        pre_upload_timeout: Duration::from_millis(300),
        ..config()
    });
    let t0 = Instant::now();
    let slow = hooks.check_upload(&upload("/in/b.txt")).expect("a check");
    assert!(slow.await.is_err(), "a check that runs out of time refuses");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts_instead_of_waiting() {
    require("sleep");
    let outcomes = Arc::new(Outcomes::default());
    let hooks = Hooks::start(
        HookConfig {
            command: vec!["sleep".into(), "30".into()],
            timeout: Duration::from_secs(30),
            retries: 0,
            ..config()
        },
        Some(outcomes.clone()),
    );
    let sent = ferry_observe::hooks::QUEUE + 100;
    let t0 = Instant::now();
    for _ in 0..sent {
        hooks.event(&upload("/flood"));
    }
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "queuing took {:?}",
        t0.elapsed()
    );
    // The queue holds QUEUE; the dispatcher holds one more and runs CONCURRENCY.
    let dropped = outcomes.get("command", "dropped") as usize;
    let most = sent - ferry_observe::hooks::QUEUE;
    let least = most - ferry_observe::hooks::CONCURRENCY - 1;
    assert!(
        (least..=most).contains(&dropped),
        "dropped {dropped}, expected {least}..={most}"
    );
    assert_eq!(outcomes.get("command", "ok"), 0);
}

/// HTTPS: the server is verified against the trusted roots (here the test's own CA file, through
/// `SSL_CERT_FILE`, which the system-roots loader honours) and its name; a name the certificate
/// does not carry fails.
#[tokio::test]
async fn https_hook_verifies_the_server_certificate_and_name() {
    require("openssl");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (ca, cert, key) = (d.join("ca.pem"), d.join("cert.pem"), d.join("key.pem"));
    std::fs::write(d.join("ext.cnf"), "subjectAltName=DNS:localhost\n").expect("ext");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let steps: [Vec<&str>; 3] = [
        [
            &["req", "-x509"][..],
            &ec,
            &["-days", "1", "-subj", "/CN=ferry test CA"],
        ]
        .concat()
        .into_iter()
        .chain(["-keyout", "ca.key", "-out", "ca.pem"])
        .collect(),
        [
            &["req"][..],
            &ec,
            &["-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "leaf.csr"],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ],
    ];
    for args in steps {
        let made = Command::new("openssl")
            .args(&args)
            .current_dir(d)
            .output()
            .expect("openssl");
        assert!(
            made.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
    // Read once, at the first HTTPS delivery of this process (no other test here uses HTTPS).
    std::env::set_var("SSL_CERT_FILE", &ca);
    let log = dir.path().join("posts.log");
    let rx = receiver_tls(&log, Some((&cert, &key)));
    let outcomes = Arc::new(Outcomes::default());
    let hooks = Hooks::start(
        HookConfig {
            url: Some(format!("https://localhost:{}/hook", rx.port)),
            retries: 1,
            ..config()
        },
        Some(outcomes.clone()),
    );
    hooks.event(&upload("/secure.txt"));
    // The receiver answers 500 first: one retry, then ok, over TLS.
    wait_until("the HTTPS delivery", || outcomes.get("http", "ok") == 1).await;
    let text = std::fs::read_to_string(&log).expect("posts");
    assert!(
        text.lines().all(|l| l.contains("/secure.txt")) && text.lines().count() == 2,
        "{text}"
    );

    hooks.set_config(HookConfig {
        url: Some(format!("https://127.0.0.1:{}/hook", rx.port)),
        retries: 0,
        ..config()
    });
    hooks.event(&upload("/wrong-name.txt"));
    wait_until("the refused delivery", || outcomes.get("http", "failed") == 1).await;
    let text = std::fs::read_to_string(&log).expect("posts");
    assert!(
        !text.contains("wrong-name"),
        "delivered to a server whose certificate does not name it"
    );
}
