//! Hostile logged-in (and not yet logged-in) SFTP users: metadata changes through links, bounded
//! and escaped log lines, exclusive creation, overwrites, offsets out of range and statvfs of a
//! missing path. Real clients (paramiko) against the server; log lines are captured from the
//! tracing subscriber this test binary installs.

mod common;

use std::process::Command;

use common::*;

/// The server's log in this test binary (one subscriber per process).
fn captured() -> ferry_testkit::logs::Captured {
    ferry_testkit::logs::capture("ferry_sftpd=debug,ferry_auth=debug,russh=info")
}

/// Runs a paramiko script; it gets PORT, USER_NAME, PASSWORD, ROOT in its environment and a
/// `connect()` helper returning an SFTPClient and its transport.
fn paramiko(s: &TestServer, body: &str) -> Run {
    let script = format!(
        r#"
import os, sys, stat, paramiko
PORT = int(os.environ["PORT"]); USER = os.environ["USER_NAME"]; ROOT = os.environ["ROOT"]
def connect():
    t = paramiko.Transport(("127.0.0.1", PORT))
    t.connect(username=USER, password=os.environ["PASSWORD"])
    return paramiko.SFTPClient.from_transport(t), t
{body}
"#
    );
    let mut cmd: Command = s.client("python3");
    cmd.arg("-c")
        .arg(script)
        .env("PORT", s.port().to_string())
        .env("USER_NAME", USER)
        .env("PASSWORD", PASSWORD)
        .env("ROOT", s.root());
    run(&mut cmd, None)
}

fn mode_and_mtime(path: &std::path::Path) -> (u32, std::time::SystemTime) {
    use std::os::unix::fs::PermissionsExt;
    let md = std::fs::metadata(path).expect("stat");
    (md.permissions().mode() & 0o7777, md.modified().expect("mtime"))
}

#[test]
fn setstat_never_changes_a_file_outside_the_root_through_a_link() {
    if skip_unless_paramiko() {
        return;
    }
    let s = TestServer::start();
    let outside = s.base().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    let secret = outside.join("secret.txt");
    std::fs::write(&secret, b"top secret").expect("write");
    std::fs::hard_link(&secret, s.path("hard")).expect("hard link");
    std::os::unix::fs::symlink(&secret, s.path("sym")).expect("symlink");
    let before = mode_and_mtime(&secret);
    paramiko(
        &s,
        r#"
sftp, t = connect()
for name in ("hard", "sym"):
    for change in (lambda: sftp.chmod(name, 0o777), lambda: sftp.utime(name, (946684800, 946684800))):
        try:
            change()
            sys.exit("a metadata change through %s succeeded" % name)
        except PermissionError:
            pass
# A plain file is still changed.
open(os.path.join(ROOT, "plain"), "w").write("x")
sftp.chmod("plain", 0o640)
sftp.utime("plain", (946684800, 946684800))
st = sftp.stat("plain")
assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_mtime == 946684800, st
"#,
    )
    .assert_success();
    assert_eq!(mode_and_mtime(&secret), before, "the outside file changed");
}

#[test]
fn a_huge_user_name_and_path_give_bounded_escaped_log_lines() {
    if skip_unless_paramiko() {
        return;
    }
    captured();
    let s = TestServer::start();
    paramiko(
        &s,
        r#"
t = paramiko.Transport(("127.0.0.1", PORT))
t.start_client()
try:
    t.auth_password("\x1b[31m" + "u" * 65000, "wrong")
except paramiko.AuthenticationException:
    pass
t.close()
sftp, t = connect()
try:
    sftp.stat("/" + "p" * 3000 + "\n\x1b")
except IOError:
    pass
try:
    t.open_session().exec_command("x" * 30000 + "\x1b")
except Exception:
    pass
"#,
    )
    .assert_success();
    let log = captured().text();
    assert!(
        log.contains("login failed"),
        "the failed login was logged:\n{log}"
    );
    ferry_testkit::logs::assert_lines_bounded(&log, 600);
    assert!(
        log.contains("\\u{1b}[31muuu"),
        "the name is shown escaped:\n{log}"
    );
    assert!(
        log.contains("…(65005 bytes)"),
        "the cut says how long the name was:\n{log}"
    );
}

#[test]
fn exclusive_create_is_exclusive_at_open() {
    if skip_unless_paramiko() {
        return;
    }
    let s = TestServer::start();
    paramiko(
        &s,
        r#"
sftp, t = connect()
first = sftp.open("new.txt", "wx")
try:
    sftp.open("new.txt", "wx")
    sys.exit("a second exclusive open of the same new name succeeded")
except IOError:
    pass
first.write(b"first upload")
first.close()
assert sftp.open("new.txt").read() == b"first upload"
"#,
    )
    .assert_success();
    assert_eq!(std::fs::read(s.path("new.txt")).expect("read"), b"first upload");
}

#[test]
fn an_overwrite_keeps_the_old_files_mode() {
    use std::os::unix::fs::PermissionsExt;
    if skip_unless_paramiko() {
        return;
    }
    let s = TestServer::start();
    std::fs::write(s.path("run.sh"), b"old").expect("write");
    std::fs::set_permissions(s.path("run.sh"), std::fs::Permissions::from_mode(0o750)).expect("chmod");
    paramiko(
        &s,
        r#"
sftp, t = connect()
with sftp.open("run.sh", "w") as f:
    f.write(b"new")
"#,
    )
    .assert_success();
    assert_eq!(mode_and_mtime(&s.path("run.sh")).0, 0o750);
    assert_eq!(std::fs::read(s.path("run.sh")).expect("read"), b"new");
}

#[test]
fn read_at_the_largest_offset_is_end_of_file_and_statvfs_of_a_missing_path_is_no_such_file() {
    if skip_unless_paramiko() {
        return;
    }
    let s = TestServer::start();
    std::fs::write(s.path("f"), b"abc").expect("write");
    paramiko(
        &s,
        r#"
from paramiko.sftp import CMD_READ, CMD_EXTENDED
from paramiko.sftp import int64
sftp, t = connect()
f = sftp.open("f")
# paramiko raises EOFError for SSH_FX_EOF on a read request.
try:
    sftp._request(CMD_READ, f.handle, int64(2**64 - 1), 100)
    sys.exit("READ at 2^64-1 returned data")
except EOFError:
    pass
try:
    sftp._request(CMD_EXTENDED, "statvfs@openssh.com", "/no/such/dir")
    sys.exit("statvfs of a missing path succeeded")
except FileNotFoundError:
    pass
sftp._request(CMD_EXTENDED, "statvfs@openssh.com", "/")
"#,
    )
    .assert_success();
}
