//! The logs of a real `ferry serve`: the event log in JSON with the documented fields for FTP and
//! SFTP, the xferlog, both reopened on SIGHUP after logrotate moved them, a hook command run on an
//! upload, and SIGHUP's report of what it reloaded and what needs a restart.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{tempdir, wait_until, Control, Server};
use serde_json::Value;

fn login(addr: SocketAddr, password: &str) -> Control {
    let mut c = Control::connect_greeted(addr);
    c.expect("USER ferry", 331);
    c.expect(&format!("PASS {password}"), 230);
    c.expect("TYPE I", 200);
    c
}

fn upload(c: &mut Control, addr: SocketAddr, name: &str, bytes: &[u8]) {
    let mut data = c.epsv(addr);
    c.expect(&format!("STOR {name}"), 150);
    data.write_all(bytes).expect("data");
    drop(data);
    c.expect_final(226);
}

fn download(c: &mut Control, addr: SocketAddr, name: &str) -> Vec<u8> {
    let mut data = c.epsv(addr);
    c.expect(&format!("RETR {name}"), 150);
    let mut got = Vec::new();
    data.read_to_end(&mut got).expect("data");
    c.expect_final(226);
    got
}

/// The JSON lines of the log that are events. Only complete lines count: the server may be writing
/// the last one while the test reads the file.
fn events(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v| v["target"] == "ferry::event")
        .collect()
}

fn find<'a>(events: &'a [Value], kind: &str, protocol: &str) -> Option<&'a Value> {
    events
        .iter()
        .find(|e| e["event"] == kind && e["protocol"] == protocol)
}

#[test]
fn json_event_log_xferlog_hooks_and_sighup_reopen_and_reload() {
    let dir = tempdir();
    let base = dir.path();
    let hook = base.join("hook.sh");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho \"$FERRY_EVENT $FERRY_PATH $FERRY_BYTES\" >> \"$1\"\n",
    )
    .expect("hook");
    assert!(Command::new("chmod")
        .arg("+x")
        .arg(&hook)
        .status()
        .expect("chmod")
        .success());
    let hook_out = base.join("hook.out");
    let config = base.join("ferry.toml");
    let write_config = |extra: &str| {
        std::fs::write(
            &config,
            format!(
                "log_format = \"json\"\nlog_file = \"ferry.log\"\nxferlog = \"xferlog\"\n\
                 [hooks]\ncommand = [{:?}, {:?}]\nevents = [\"upload\"]\n{extra}",
                hook.display().to_string(),
                hook_out.display().to_string()
            ),
        )
        .expect("config")
    };
    write_config("");
    let mut server = Server::start(base, &["--config", "ferry.toml"]);
    let addr = server.wait_listening();
    let sftp: SocketAddr = server
        .wait_for("ferry: SFTP listening on ")
        .parse()
        .expect("sftp");
    let password = server.printed_password().expect("password");

    let mut c = login(addr, &password);
    upload(&mut c, addr, "report one.csv", b"12345");
    assert_eq!(download(&mut c, addr, "report one.csv"), b"12345");
    c.expect("MKD dir", 257);
    c.expect("RNFR report one.csv", 350);
    c.expect("RNTO dir/r.csv", 250);
    c.expect("DELE dir/r.csv", 250);
    c.expect("DELE nothing-here", 550);
    c.expect("QUIT", 221);
    let mut bad = Control::connect_greeted(addr);
    bad.expect("USER ferry", 331);
    bad.expect("PASS wrong", 530);
    drop(bad);

    // SFTP: the same events with protocol sftp.
    let script = "import sys, paramiko\nt = paramiko.Transport(('127.0.0.1', int(sys.argv[1])))\n\
                  t.connect(username='ferry', password=sys.argv[2])\ns = paramiko.SFTPClient.from_transport(t)\n\
                  f = s.open('via-sftp.txt', 'wb'); f.write(b'abc'); f.close()\ns.remove('via-sftp.txt')\nt.close()\n";
    let ran = Command::new("python3")
        .args(["-c", script, &sftp.port().to_string(), &password])
        .output()
        .expect("python3 (run scripts/install-test-deps.sh)");
    assert!(
        ran.status.success(),
        "paramiko: {}",
        String::from_utf8_lossy(&ran.stderr)
    );

    let log = base.join("ferry.log");
    assert!(
        wait_until(Duration::from_secs(10), || {
            let ev = events(&log);
            find(&ev, "delete", "sftp").is_some() && find(&ev, "session_end", "sftp").is_some()
        }),
        "events missing: {:#?}",
        events(&log)
    );
    let ev = events(&log);
    let login_ok = find(&ev, "login", "ftp").expect("login");
    assert_eq!(login_ok["user"], "ferry");
    assert_eq!(login_ok["method"], "password");
    assert_eq!(login_ok["client_ip"], "127.0.0.1");
    assert_eq!(login_ok["result"], "ok");
    let failed = find(&ev, "login_failed", "ftp").expect("failed login");
    assert_eq!(failed["result"], "failed");
    let up = find(&ev, "upload", "ftp").expect("upload");
    assert_eq!(up["path"], "/report one.csv");
    assert_eq!(up["bytes"], 5);
    assert_eq!(up["result"], "ok");
    assert!(up["duration_ms"].is_u64());
    assert_eq!(up["session"], login_ok["session"]);
    assert_eq!(find(&ev, "download", "ftp").expect("download")["bytes"], 5);
    assert_eq!(find(&ev, "mkdir", "ftp").expect("mkdir")["path"], "/dir");
    let rename = find(&ev, "rename", "ftp").expect("rename");
    assert_eq!(rename["new_path"], "/dir/r.csv");
    let deletes: Vec<&Value> = ev
        .iter()
        .filter(|e| e["event"] == "delete" && e["protocol"] == "ftp")
        .collect();
    assert_eq!(deletes.len(), 2);
    assert_eq!(deletes[1]["result"], "failed");
    assert!(find(&ev, "session_start", "ftp").is_some() && find(&ev, "session_end", "ftp").is_some());
    let sftp_up = find(&ev, "upload", "sftp").expect("SFTP upload");
    assert_eq!(sftp_up["bytes"], 3);
    assert_eq!(sftp_up["path"], "/via-sftp.txt");
    assert_eq!(
        find(&ev, "login", "sftp").expect("SFTP login")["method"],
        "password"
    );

    // The xferlog: one line per transfer, fourteen fields after ctime's five words.
    let xferlog = base.join("xferlog");
    let count = |p: &Path| std::fs::read_to_string(p).map_or(0, |t| t.lines().count());
    assert!(wait_until(Duration::from_secs(10), || count(&xferlog) >= 3));
    let lines = std::fs::read_to_string(&xferlog).expect("xferlog");
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let f: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(f.len(), 18, "{}", lines[0]);
    assert_eq!(
        &f[6..],
        [
            "127.0.0.1",
            "5",
            "/report_one.csv",
            "b",
            "_",
            "i",
            "r",
            "ferry",
            "ftp",
            "0",
            "*",
            "c"
        ]
    );
    assert_eq!(lines[1].split_whitespace().nth(11), Some("o"));
    assert!(
        lines[2].contains(" /via-sftp.txt b _ i r ferry sftp 0 * c"),
        "{}",
        lines[2]
    );

    // The hook ran for the two uploads only.
    assert!(wait_until(Duration::from_secs(10), || std::fs::read_to_string(
        &hook_out
    )
    .is_ok_and(|t| t.lines().count() == 2)));
    let hooked = std::fs::read_to_string(&hook_out).expect("hook output");
    assert!(hooked.contains("upload /report one.csv 5"), "{hooked}");

    // logrotate: move both logs away, change the configuration, SIGHUP.
    std::fs::rename(&log, base.join("ferry.log.1")).expect("rotate");
    std::fs::rename(&xferlog, base.join("xferlog.1")).expect("rotate");
    // A session logged in before the reload keeps its settings.
    let mut c = login(addr, &password);
    write_config("url = \"http://127.0.0.1:9/ferry\"\n");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config).expect("config").replace(
            "log_format",
            "max_connections_per_ip = 2\nlogin_timeout_secs = 1\npassive_ports = \"51000-51100\"\nlog_format",
        ),
    )
    .expect("config");
    server.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || log.exists()),
        "log not reopened"
    );
    // The SIGHUP report may still be on its way (a busy machine): wait for it.
    let reported = |t: &str| {
        let lines: Vec<Value> = t.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let said = |message: &str| {
            lines
                .iter()
                .find(|l| l["message"] == message)
                .and_then(|l| l["settings"].as_str().map(str::to_owned))
        };
        said("SIGHUP: configuration reloaded; changed").as_deref()
            == Some("hooks.url, login_timeout_secs, max_connections_per_ip")
            && said("SIGHUP: these changed settings take effect only after a restart").as_deref()
                == Some("passive_ports")
    };
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(&log)
            .is_ok_and(|t| reported(&t))),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    upload(&mut c, addr, "after.bin", b"xy");
    // The new per-address limit holds: a second connection is fine, a third is refused.
    let second = Control::connect_greeted(addr);
    let mut third = Control::connect(addr);
    assert_eq!(third.reply().0, 421, "max_connections_per_ip = 2 was not applied");
    drop((second, third));
    // The new login timeout (1 s) holds for a new connection.
    std::thread::sleep(Duration::from_millis(300));
    let mut late = Control::connect_greeted(addr);
    let t0 = std::time::Instant::now();
    assert_eq!(late.reply().0, 421, "login_timeout_secs = 1 was not applied");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    c.expect("QUIT", 221);
    assert!(wait_until(Duration::from_secs(10), || find(
        &events(&log),
        "upload",
        "ftp"
    )
    .is_some()));
    assert!(wait_until(Duration::from_secs(10), || count(&xferlog) >= 1));
    let new_xfer = std::fs::read_to_string(&xferlog).expect("new xferlog");
    assert_eq!(new_xfer.lines().count(), 1);
    assert!(new_xfer.contains("/after.bin"));
    let old = std::fs::read_to_string(base.join("ferry.log.1")).expect("old log");
    assert!(
        !old.contains("after.bin"),
        "written to the rotated log after SIGHUP"
    );
}

#[test]
fn pre_upload_hook_refuses_ftp_and_sftp_uploads_it_rejects() {
    let dir = tempdir();
    let base = dir.path();
    let check = base.join("check.sh");
    std::fs::write(
        &check,
        "#!/bin/sh\ncase \"$FERRY_PATH\" in *.exe) echo \"no executables\"; exit 1;; esac\n",
    )
    .expect("check");
    assert!(Command::new("chmod")
        .arg("+x")
        .arg(&check)
        .status()
        .expect("chmod")
        .success());
    std::fs::write(
        base.join("ferry.toml"),
        format!(
            "[hooks]\npre_upload_command = [{:?}]\n",
            check.display().to_string()
        ),
    )
    .expect("config");
    let mut server = Server::start(base, &["--config", "ferry.toml"]);
    let addr = server.wait_listening();
    let sftp: SocketAddr = server
        .wait_for("ferry: SFTP listening on ")
        .parse()
        .expect("sftp");
    let password = server.printed_password().expect("password");

    let mut c = login(addr, &password);
    let _data = c.epsv(addr);
    c.expect("STOR tool.exe", 550);
    upload(&mut c, addr, "notes.txt", b"fine");
    c.expect("QUIT", 221);

    let script = "import sys, paramiko\nt = paramiko.Transport(('127.0.0.1', int(sys.argv[1])))\n\
                  t.connect(username='ferry', password=sys.argv[2])\ns = paramiko.SFTPClient.from_transport(t)\n\
                  try:\n    s.open('other.exe', 'wb').close()\n    print('stored')\n\
                  except IOError as e:\n    print('refused', e)\n\
                  f = s.open('other.txt', 'wb'); f.write(b'ok'); f.close()\nt.close()\n";
    let ran = Command::new("python3")
        .args(["-c", script, &sftp.port().to_string(), &password])
        .output()
        .expect("python3 (run scripts/install-test-deps.sh)");
    let out = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success(),
        "paramiko: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(out.starts_with("refused"), "{out}");
    let files = base.join("ferry-data/files");
    assert!(!files.join("tool.exe").exists() && !files.join("other.exe").exists());
    assert_eq!(std::fs::read(files.join("notes.txt")).expect("notes"), b"fine");
    assert_eq!(std::fs::read(files.join("other.txt")).expect("other"), b"ok");
}
