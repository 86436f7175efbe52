//! End-to-end tests of the `ferry` binary: user management, configuration errors and a real server
//! on an ephemeral port, each in its own temporary directory.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod common;

use common::{ferry, tempdir, Control, Server, IO_TIMEOUT};

fn run(dir: &Path, args: &[&str]) -> Output {
    ferry(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ferry")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "ferry {args:?} failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Runs and expects exit code 1; returns standard error.
#[track_caller]
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "ferry {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stderr(&out)
}

fn generated_password(text: &str) -> String {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("password: ")
                .or_else(|| l.strip_prefix("ferry: password: "))
        })
        .unwrap_or_else(|| panic!("no password in {text:?}"))
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// ferry user

#[test]
fn user_add_list_show_passwd_disable_del_round_trip() {
    let dir = tempdir();
    let d = dir.path();

    let out = ok(
        d,
        &[
            "user",
            "add",
            "alice",
            "--password",
            "s3cret-enough-chars",
            "--home",
            "/alice",
            "--permissions",
            "ro",
        ],
    );
    assert!(out.contains("created user alice"), "{out}");
    assert!(
        !out.contains("s3cret-enough-chars"),
        "a chosen password is not echoed: {out}"
    );
    assert!(d.join("ferry-data/users.db").exists());

    let out = ok(d, &["user", "add", "bob"]);
    let bob_pw = generated_password(&out);
    assert_eq!(bob_pw.len(), 20, "{out}");

    let list = ok(d, &["user", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("PERMISSIONS"),
        "{list}"
    );
    let alice: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(alice, ["alice", "/alice", "list,read", "yes"], "{list}");
    let bob: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(bob, ["bob", "/", "all", "yes"], "{list}");

    let show = ok(d, &["user", "show", "alice"]);
    assert!(show.contains("home:        /alice"), "{show}");
    assert!(show.contains("permissions: list,read"), "{show}");
    assert!(show.contains("enabled:     yes"), "{show}");

    let out = ok(d, &["user", "passwd", "alice"]);
    let new_pw = generated_password(&out);
    assert_ne!(new_pw, "s3cret-enough-chars");

    ok(d, &["user", "disable", "alice"]);
    assert!(ok(d, &["user", "show", "alice"]).contains("enabled:     no"));
    ok(d, &["user", "enable", "alice"]);
    assert!(ok(d, &["user", "show", "alice"]).contains("enabled:     yes"));

    ok(d, &["user", "perms", "alice", "list,read,write"]);
    ok(d, &["user", "home", "alice", "/a2"]);
    let show = ok(d, &["user", "show", "alice"]);
    assert!(
        show.contains("permissions: list,read,write") && show.contains("home:        /a2"),
        "{show}"
    );

    ok(d, &["user", "del", "alice"]);
    let err = fails(d, &["user", "show", "alice"]);
    assert!(err.contains("alice") && err.contains("not found"), "{err}");
    let list = ok(d, &["user", "list"]);
    assert!(!list.contains("alice") && list.contains("bob"), "{list}");
}

#[test]
fn password_stdin_reads_one_line() {
    let dir = tempdir();
    let mut child = ferry(dir.path())
        .args(["user", "add", "carol", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"from-stdin-password\r\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains("password:"),
        "nothing generated: {}",
        stdout(&out)
    );

    let mut server = Server::start(dir.path(), &[]);
    let addr = server.wait_listening();
    let mut ctl = Control::connect(addr);
    assert_eq!(ctl.reply().0, 220);
    ctl.expect("USER carol", 331);
    ctl.expect("PASS from-stdin-password", 230);
}

#[test]
fn unknown_users_are_an_error_with_exit_code_1() {
    let dir = tempdir();
    ok(
        dir.path(),
        &["user", "add", "dave", "--password", "x-long-password"],
    );
    for args in [
        &["user", "show", "nobody"][..],
        &["user", "del", "nobody"],
        &["user", "passwd", "nobody", "--password", "y-long-password"],
        &["user", "enable", "nobody"],
        &["user", "disable", "nobody"],
    ] {
        let err = fails(dir.path(), args);
        assert!(err.contains("nobody"), "{args:?}: {err}");
    }
    let err = fails(
        dir.path(),
        &["user", "add", "dave", "--password", "x-long-password"],
    );
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn bad_permissions_and_names_are_rejected() {
    let dir = tempdir();
    let out = run(dir.path(), &["user", "add", "erin", "--permissions", "read,fly"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("fly"), "{}", stderr(&out));

    let err = fails(
        dir.path(),
        &["user", "add", "--password", "x-long-password", "--", "-bad name"],
    );
    assert!(err.contains("invalid user name"), "{err}");

    let out = run(dir.path(), &["user", "add", "frank", "--home", "relative"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--home"), "{}", stderr(&out));
}

#[test]
fn list_without_a_database_fails_and_names_the_path() {
    let dir = tempdir();
    for args in [&["user", "list"][..], &["ban", "list"], &["user", "show", "x"]] {
        let err = fails(dir.path(), args);
        assert!(
            err.contains("ferry-data/users.db") && err.contains("does not exist"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("no users") && !err.contains("no bans"), "{err}");
    }
    assert!(!dir.path().join("ferry-data").exists(), "listing creates nothing");
}

// ---------------------------------------------------------------------------------------------
// configuration

#[test]
fn unknown_config_key_is_rejected_by_name() {
    let dir = tempdir();
    std::fs::write(dir.path().join("ferry.toml"), "listen_port = 21\n").expect("write");
    let err = fails(dir.path(), &["serve", "--listen", "127.0.0.1:0"]);
    assert!(err.contains("listen_port"), "{err}");
    assert!(err.contains("ferry.toml"), "{err}");

    std::fs::write(dir.path().join("other.toml"), "[anonymous]\nwritable = true\n").expect("write");
    let err = fails(dir.path(), &["user", "list", "--config", "other.toml"]);
    assert!(err.contains("writable"), "{err}");
}

#[test]
fn invalid_config_values_name_their_key() {
    let dir = tempdir();
    for (text, key) in [
        ("passive_ports = \"50100-50000\"", "passive_ports"),
        ("passive_ports = \"80-90\"", "passive_ports"),
        ("idle_timeout_secs = 0", "idle_timeout_secs"),
        ("max_connections_per_ip = 0", "max_connections_per_ip"),
        ("listen = [\"nowhere\"]", "listen"),
    ] {
        std::fs::write(dir.path().join("ferry.toml"), text).expect("write");
        let err = fails(dir.path(), &["serve", "--listen", "127.0.0.1:0"]);
        assert!(err.contains(key), "{text}: {err}");
    }
}

#[test]
fn missing_config_file_is_an_error() {
    let dir = tempdir();
    let err = fails(dir.path(), &["user", "list", "--config", "absent.toml"]);
    assert!(err.contains("absent.toml"), "{err}");
}

#[test]
fn flags_beat_environment_beat_file() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("ferry.toml"), "data_dir = \"from-file\"\n").expect("write");

    ok(d, &["user", "add", "u1", "--password", "x-long-password"]);
    assert!(d.join("from-file/users.db").exists());

    let out = ferry(d)
        .env("FERRY_DATA_DIR", "from-env")
        .args(["user", "add", "u2", "--password", "x-long-password"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(d.join("from-env/users.db").exists());

    let out = ferry(d)
        .env("FERRY_DATA_DIR", "from-env")
        .args([
            "--data-dir",
            "from-flag",
            "user",
            "add",
            "u3",
            "--password",
            "x-long-password",
        ])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(d.join("from-flag/users.db").exists());

    let out = ok(d, &["user", "list", "--users-db", "from-env/users.db"]);
    assert!(out.contains("u2") && !out.contains("u1"), "{out}");
}

#[test]
fn every_subcommand_has_help_and_version_works() {
    let dir = tempdir();
    let version = ok(dir.path(), &["--version"]);
    assert!(version.starts_with("ferry "), "{version}");
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["user", "--help"],
        &["user", "add", "--help"],
        &["user", "del", "--help"],
        &["user", "list", "--help"],
        &["user", "show", "--help"],
        &["user", "passwd", "--help"],
        &["user", "perms", "--help"],
        &["user", "home", "--help"],
        &["user", "enable", "--help"],
        &["user", "disable", "--help"],
        &["ban", "--help"],
        &["ban", "list", "--help"],
        &["ban", "add", "--help"],
        &["ban", "del", "--help"],
    ] {
        let help = ok(dir.path(), args);
        assert!(help.contains("Usage: ferry"), "{args:?}: {help}");
    }
    let help = ok(dir.path(), &["serve", "--help"]);
    for flag in [
        "--listen",
        "--passive-ports",
        "--masquerade-address",
        "--config",
        "FERRY_LISTEN",
        "--max-pending-connections",
        "--max-commands-per-sec",
        "--danger-allow-fxp",
        "--defender-threshold",
        "--defender-allow-list",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag}");
    }
}

// ---------------------------------------------------------------------------------------------
// ferry serve

#[test]
fn serve_creates_first_user_prints_password_and_accepts_login() {
    let dir = tempdir();
    let mut server = Server::start(dir.path(), &[]);
    let addr = server.wait_listening();
    assert_ne!(addr.port(), 0, "the real bound port is printed");
    let password = server
        .printed_password()
        .expect("first start prints the password");
    assert!(
        server.printed.iter().any(|l| l.contains("not be shown again")),
        "{:?}",
        server.printed
    );

    let mut ctl = Control::connect(addr);
    let (code, text) = ctl.reply();
    assert_eq!(code, 220, "{text}");
    ctl.expect("USER ferry", 331);
    ctl.expect(&format!("PASS {password}"), 230);
    ctl.expect("QUIT", 221);
}

#[test]
fn wrong_password_is_refused() {
    let dir = tempdir();
    let mut server = Server::start(dir.path(), &[]);
    let addr = server.wait_listening();
    let mut ctl = Control::connect(addr);
    assert_eq!(ctl.reply().0, 220);
    ctl.expect("USER ferry", 331);
    ctl.expect("PASS not-the-password", 530);
}

#[test]
fn second_start_keeps_users_and_prints_no_password() {
    let dir = tempdir();
    let mut first = Server::start(dir.path(), &[]);
    first.wait_listening();
    let password = first.printed_password().expect("password");
    drop(first);

    let mut second = Server::start(dir.path(), &[]);
    let addr = second.wait_listening();
    assert_eq!(second.printed_password(), None, "{:?}", second.printed);
    let mut ctl = Control::connect(addr);
    assert_eq!(ctl.reply().0, 220);
    ctl.expect("USER ferry", 331);
    ctl.expect(&format!("PASS {password}"), 230);
}

#[test]
fn users_added_with_the_cli_can_log_in_and_upload() {
    let dir = tempdir();
    ok(
        dir.path(),
        &[
            "user",
            "add",
            "gina",
            "--password",
            "pw-gina-long-enough",
            "--home",
            "/gina",
        ],
    );
    let mut server = Server::start(
        dir.path(),
        &["--passive-ports", "40000-40100", "--greeting", "hi there"],
    );
    let addr = server.wait_listening();
    assert_eq!(server.printed_password(), None, "users exist: no first user");

    let mut ctl = Control::connect(addr);
    let (code, text) = ctl.reply();
    assert_eq!(code, 220);
    assert!(text.contains("hi there"), "{text}");
    ctl.expect("USER gina", 331);
    ctl.expect("PASS pw-gina-long-enough", 230);
    ctl.expect("TYPE I", 200);

    let mut data = ctl.epsv(addr);
    let port = data.peer_addr().expect("peer").port();
    assert!(
        (40000..=40100).contains(&port),
        "passive port {port} from --passive-ports"
    );
    let (code, text) = ctl.cmd("STOR hello.txt");
    assert!(code == 150 || code == 125, "{text}");
    data.write_all(b"hello, ferry\n").expect("upload");
    drop(data);
    ctl.expect_final(226);
    let stored = dir.path().join("ferry-data/files/gina/hello.txt");
    assert_eq!(std::fs::read(&stored).expect("uploaded file"), b"hello, ferry\n");

    let mut data = ctl.epsv(addr);
    let (code, text) = ctl.cmd("RETR hello.txt");
    assert!(code == 150 || code == 125, "{text}");
    let mut body = Vec::new();
    data.read_to_end(&mut body).expect("download");
    ctl.expect_final(226);
    assert_eq!(body, b"hello, ferry\n");
    ctl.expect("QUIT", 221);
}

#[test]
fn anonymous_login_works_only_when_enabled() {
    let dir = tempdir();
    let mut server = Server::start(dir.path(), &[]);
    let addr = server.wait_listening();
    let mut ctl = Control::connect(addr);
    assert_eq!(ctl.reply().0, 220);
    let (code, _) = ctl.cmd("USER anonymous");
    if code == 331 {
        ctl.expect("PASS guest@", 530);
    }
    drop(server);

    let mut server = Server::start(dir.path(), &["--anonymous-enabled"]);
    let addr = server.wait_listening();
    let mut ctl = Control::connect(addr);
    assert_eq!(ctl.reply().0, 220);
    ctl.expect("USER anonymous", 331);
    ctl.expect("PASS guest@", 230);
    ctl.expect("MKD nope", 550);
}

#[cfg(unix)]
#[test]
fn sigterm_shuts_down_gracefully() {
    let dir = tempdir();
    let mut server = Server::start(dir.path(), &[]);
    let addr = server.wait_listening();
    let mut ctl = Control::connect(addr);
    assert_eq!(ctl.reply().0, 220);

    let pid = server.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(status.success());
    let (code, text) = ctl.reply();
    assert_eq!(
        code, 421,
        "open sessions are told the server is going away: {text}"
    );

    let mut status = None;
    let exited = common::wait_until(IO_TIMEOUT, || {
        status = server.child.try_wait().expect("wait");
        status.is_some()
    });
    assert!(exited, "ferry did not exit after SIGTERM");
    assert!(status.is_some_and(|s| s.success()), "exit status {status:?}");
}

#[test]
fn ban_add_list_del_and_the_server_enforces_stored_bans() {
    let dir = tempdir();
    let added = ok(
        dir.path(),
        &["ban", "add", "127.0.0.1", "--secs", "600", "--reason", "test ban"],
    );
    assert!(added.starts_with("banned 127.0.0.1 until "), "{added}");
    let list = ok(dir.path(), &["ban", "list"]);
    assert!(list.contains("127.0.0.1") && list.contains("test ban"), "{list}");
    let bad = run(dir.path(), &["ban", "add", "not-an-address"]);
    assert!(!bad.status.success() && stderr(&bad).contains("not-an-address"));

    // Loopback is never banned by default: the ban has no effect on a default server.
    {
        let mut server = Server::start(dir.path(), &[]);
        let addr = server.wait_listening();
        let (code, text) = Control::connect(addr).reply();
        assert_eq!(code, 220, "{text}");
    }
    // A server on the same database that scores loopback refuses the banned address before the
    // greeting, saying until when.
    let mut server = Server::start(dir.path(), &["--defender-score-loopback"]);
    let addr = server.wait_listening();
    let (code, text) = Control::connect(addr).reply();
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("banned until") && text.contains(" UTC"), "{text}");

    // Lifting the ban reaches the running server at its next reload (every 10 s).
    assert!(ok(dir.path(), &["ban", "del", "127.0.0.1"]).contains("lifted"));
    assert!(ok(dir.path(), &["ban", "del", "127.0.0.1"]).contains("was not banned"));
    assert!(ok(dir.path(), &["ban", "list"]).contains("no bans"));
    // Polled every 500 ms: each poll is a connection.
    let served = common::wait_every(Duration::from_secs(25), Duration::from_millis(500), || {
        Control::connect(addr).reply().0 == 220
    });
    assert!(served, "ban still enforced 25 s after `ferry ban del`");
}

#[test]
fn user_forward_add_list_del() {
    let dir = tempdir();
    ok(
        dir.path(),
        &["user", "add", "alice", "--password", "a long enough password"],
    );
    assert!(ok(dir.path(), &["user", "forward", "list", "alice"]).contains("may not forward"));
    let added = ok(
        dir.path(),
        &["user", "forward", "add", "alice", "DB.internal:5432"],
    );
    assert!(added.contains("alice may forward to db.internal:5432"), "{added}");
    ok(dir.path(), &["user", "forward", "add", "alice", "[::1]:*"]);
    let list = ok(dir.path(), &["user", "forward", "list", "alice"]);
    assert_eq!(list, "[::1]:*\ndb.internal:5432\n");
    let bad = run(dir.path(), &["user", "forward", "add", "alice", "db.internal"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("HOST:PORT"), "{}", stderr(&bad));
    let dup = run(
        dir.path(),
        &["user", "forward", "add", "alice", "db.internal:5432"],
    );
    assert!(!dup.status.success());
    ok(
        dir.path(),
        &["user", "forward", "del", "alice", "db.internal:5432"],
    );
    assert_eq!(ok(dir.path(), &["user", "forward", "list", "alice"]), "[::1]:*\n");
    let missing = run(
        dir.path(),
        &["user", "forward", "del", "alice", "db.internal:5432"],
    );
    assert!(!missing.status.success());
}
