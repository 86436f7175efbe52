//! paramiko, curl and rclone against ferry's SFTP server.

mod common;

use std::process::Command;

use common::*;

/// Runs a paramiko script; the script gets PORT, USER, PASSWORD, KEY, LOCAL in its environment
/// and a `connect(password=True|False)` helper returning an SFTPClient.
fn paramiko(s: &TestServer, body: &str) -> Run {
    let script = format!(
        r#"
import os, sys, paramiko
PORT = int(os.environ["PORT"]); USER = os.environ["USER_NAME"]; LOCAL = os.environ["LOCAL"]
def connect(password=True):
    t = paramiko.Transport(("127.0.0.1", PORT))
    if password:
        t.connect(username=USER, password=os.environ["PASSWORD"])
    else:
        t.connect(username=USER, pkey=paramiko.Ed25519Key.from_private_key_file(os.environ["KEY"]))
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
        .env("KEY", s.key())
        .env("LOCAL", s.local(""));
    run(&mut cmd, None)
}

#[test]
fn paramiko_password_and_key_logins_put_and_prefetching_get() {
    if skip_unless_paramiko() {
        return;
    }
    let s = TestServer::start();
    // 40 MB: paramiko's prefetch sends all ~1,200 reads at once, far more than the server runs at
    // once and more replies than the client's 2 MiB window holds.
    write_random(&s.local("big.bin"), 40_000_000, 11);
    let r = paramiko(
        &s,
        r#"
sftp, t = connect(password=True)
sftp.put(os.path.join(LOCAL, "big.bin"), "/big.bin")
t.close()
sftp, t = connect(password=False)
# get() prefetches: many concurrent reads at increasing offsets.
sftp.get("/big.bin", os.path.join(LOCAL, "back.bin"), prefetch=True)
st = sftp.stat("/big.bin")
print("size", st.st_size)
t.close()
try:
    t = paramiko.Transport(("127.0.0.1", PORT)); t.connect(username=USER, password="nope")
    print("WRONG PASSWORD ACCEPTED")
except paramiko.AuthenticationException:
    print("refused")
"#,
    );
    r.assert_success();
    assert!(r.out().contains("size 40000000"), "{}", r.dump());
    assert!(
        r.out().contains("refused") && !r.out().contains("ACCEPTED"),
        "{}",
        r.dump()
    );
    assert_eq!(sha256_file(&s.path("big.bin")), sha256_file(&s.local("big.bin")));
    assert_eq!(
        sha256_file(&s.local("back.bin")),
        sha256_file(&s.local("big.bin"))
    );
}

#[test]
fn an_upload_never_closed_is_not_there_at_all() {
    if skip_unless_paramiko() {
        return;
    }
    let s = TestServer::start();
    std::fs::write(s.path("keep.txt"), "old content").expect("write");
    let r = paramiko(
        &s,
        r#"
sftp, t = connect()
f = sftp.open("/new.bin", "wb")
f.write(b"x" * 100000)
f.flush()
g = sftp.open("/keep.txt", "wb")
g.write(b"partial replacement")
g.flush()
listing = sorted(sftp.listdir("/"))
print("listing", listing)
t.close()  # connection lost before CLOSE
"#,
    );
    r.assert_success();
    assert!(
        r.out().contains("listing ['keep.txt']"),
        "uploads in progress are invisible: {}",
        r.dump()
    );
    // The server discards the temp files once the connection is gone.
    wait_until(std::time::Duration::from_secs(10), || {
        names(&s.root()) == ["keep.txt"]
    });
    assert_eq!(names(&s.root()), ["keep.txt"]);
    assert_eq!(
        std::fs::read_to_string(s.path("keep.txt")).expect("read"),
        "old content"
    );
}

#[test]
fn out_of_order_writes_concurrent_handles_attributes_and_extensions() {
    if skip_unless_paramiko() {
        return;
    }
    let s = TestServer::start();
    let r = paramiko(
        &s,
        r#"
import time
sftp, t = connect()
# Writes at offsets, last block first, pipelined (no waiting for each reply).
f = sftp.open("/ooo.bin", "wb")
f.set_pipelined(True)
for i in reversed(range(16)):
    f.seek(i * 1000); f.write(bytes([65 + i]) * 1000)
f.close()
# Two files written and read at the same time.
a = sftp.open("/a.bin", "wb"); b = sftp.open("/b.bin", "wb")
for i in range(50):
    a.write(b"a" * 1000); b.write(b"b" * 1000)
a.close(); b.close()
a = sftp.open("/a.bin", "rb"); b = sftp.open("/b.bin", "rb")
print("concurrent", a.read() == b"a" * 50000, b.read() == b"b" * 50000)
a.close(); b.close()
# setstat: mode and times; truncate.
sftp.truncate("/a.bin", 10)
sftp.chmod("/a.bin", 0o600)
sftp.utime("/a.bin", (1000000000, 1000000000))
st = sftp.stat("/a.bin")
print("attrs", oct(st.st_mode & 0o777), st.st_mtime, st.st_size)
# SSH_FXP_RENAME refuses to replace; posix-rename replaces.
try:
    sftp.rename("/a.bin", "/b.bin"); print("rename replaced")
except IOError:
    print("rename refused")
sftp.posix_rename("/a.bin", "/b.bin")
print("posix", sorted(sftp.listdir("/")))
print("realpath", sftp.normalize("../../x/./y/.."))
# statvfs@openssh.com
v = sftp._request(paramiko.sftp.CMD_EXTENDED, "statvfs@openssh.com", "/")
print("statvfs", v[0] == paramiko.sftp.CMD_EXTENDED_REPLY)
try:
    sftp.symlink("/b.bin", "/l"); print("symlink created")
except IOError:
    print("symlink refused")
"#,
    );
    r.assert_success();
    let out = &r.out();
    assert!(out.contains("concurrent True True"), "{}", r.dump());
    assert!(out.contains("attrs 0o600 1000000000 10"), "{}", r.dump());
    assert!(out.contains("rename refused"), "{}", r.dump());
    assert!(out.contains("posix ['b.bin', 'ooo.bin']"), "{}", r.dump());
    assert!(out.contains("realpath /x"), "{}", r.dump());
    assert!(out.contains("statvfs True"), "{}", r.dump());
    assert!(out.contains("symlink refused"), "{}", r.dump());
    let ooo = std::fs::read(s.path("ooo.bin")).expect("read");
    let expected: Vec<u8> = (0..16u8)
        .flat_map(|i| std::iter::repeat_n(65 + i, 1000))
        .collect();
    assert_eq!(ooo, expected);
    assert_eq!(std::fs::read(s.path("b.bin")).expect("read"), b"aaaaaaaaaa");
}

#[test]
fn a_maximal_write_travels_in_one_ssh_packet() {
    if skip_unless_paramiko() {
        return;
    }
    let s = TestServer::start();
    // paramiko sends channel data in pieces of the maximum packet the server announced; a 255 KiB
    // WRITE request (the most `limits@openssh.com` allows) then goes out as one SSH packet.
    let r = paramiko(
        &s,
        r#"
import hashlib
sftp, t = connect()
print("max packet", sftp.get_channel().out_max_packet_size)
data = bytes((i * 7 + i // 251) % 256 for i in range(255 * 1024))
f = sftp.open("/big-write.bin", "wb")
sftp._request(paramiko.sftp.CMD_WRITE, f.handle, paramiko.sftp.int64(0), data)
f.close()
g = sftp.open("/big-write.bin", "rb")
print("same", g.read() == data)
"#,
    );
    let out = r.out();
    assert!(out.contains("max packet 262144"), "{}", r.dump());
    assert!(out.contains("same True"), "{}", r.dump());
}

#[test]
fn permissions_are_enforced() {
    if skip_unless_paramiko() {
        return;
    }
    let s = TestServer::start_with(ferry_auth::Permissions::read_only(), |_| {});
    std::fs::write(s.path("r.txt"), "readable").expect("write");
    std::fs::create_dir(s.path("d")).expect("mkdir");
    let r = paramiko(
        &s,
        r#"
sftp, t = connect()
print("read", sftp.open("/r.txt").read())
def denied(f):
    try:
        f(); return "allowed"
    except PermissionError:
        return "denied"
    except IOError as e:
        return "error %s" % e
print("put", denied(lambda: sftp.open("/w.txt", "wb")))
print("rm", denied(lambda: sftp.remove("/r.txt")))
print("mkdir", denied(lambda: sftp.mkdir("/e")))
print("rmdir", denied(lambda: sftp.rmdir("/d")))
print("mv", denied(lambda: sftp.rename("/r.txt", "/s.txt")))
print("chmod", denied(lambda: sftp.chmod("/r.txt", 0o600)))
"#,
    );
    r.assert_success();
    for op in ["put", "rm", "mkdir", "rmdir", "mv", "chmod"] {
        assert!(r.out().contains(&format!("{op} denied")), "{op}: {}", r.dump());
    }
    assert!(r.out().contains("read b'readable'"), "{}", r.dump());
    assert_eq!(names(&s.root()), ["d", "r.txt"]);
}

#[test]
fn curl_sftp_upload_download_and_listing() {
    if skip_unless("curl") {
        return;
    }
    let curl_v = run(Command::new("curl").arg("-V"), None);
    assert!(
        curl_v.out().contains(" sftp"),
        "this curl is built without sftp support; install Debian's curl (scripts/install-test-deps.sh)"
    );
    let s = TestServer::start();
    write_random(&s.local("c.bin"), 1_000_000, 12);
    let base = format!("sftp://127.0.0.1:{}", s.port());
    let user = format!("{USER}:{PASSWORD}");
    let curl = |args: &[&str]| {
        let mut cmd = s.client("curl");
        cmd.args(["-sS", "--insecure", "-u", &user]).args(args);
        run(&mut cmd, None)
    };
    curl(&["-T", "c.bin", &format!("{base}/up/c.bin"), "--ftp-create-dirs"]).assert_success();
    curl(&["-o", "back.bin", &format!("{base}/up/c.bin")]).assert_success();
    assert_eq!(sha256_file(&s.local("back.bin")), sha256_file(&s.local("c.bin")));
    let list = curl(&[&format!("{base}/up/")]);
    list.assert_success();
    assert!(list.out().contains("c.bin"), "{}", list.dump());
    // Key login, and a traversal attempt that stays inside the root.
    let mut keyed = s.client("curl");
    keyed
        .args(["-sS", "--insecure", "-u", &format!("{USER}:"), "--key"])
        .arg(s.key())
        .args(["--pubkey"])
        .arg(s.key().with_extension("pub"))
        .args(["-o", "k.bin", &format!("{base}/up/../../up/c.bin")]);
    run(&mut keyed, None).assert_success();
    assert_eq!(sha256_file(&s.local("k.bin")), sha256_file(&s.local("c.bin")));
    curl(&["-o", "x", &format!("{}/../../etc/passwd", base)]).assert_failure();
}

#[test]
fn rclone_copies_and_syncs_a_nested_tree() {
    if skip_unless("rclone") {
        return;
    }
    let s = TestServer::start();
    for (i, name) in [
        "a.txt",
        "d1/b.bin",
        "d1/d2/c.bin",
        "d1/d2/d3/e.bin",
        "empty/.keep",
    ]
    .iter()
    .enumerate()
    {
        write_random(
            &s.local(&format!("src/{name}")),
            1000 * (i + 1) * (i + 1),
            20 + i as u64,
        );
    }
    let remote = format!(
        ":sftp,host=127.0.0.1,port={},user={USER},key_file={},shell_type=none:",
        s.port(),
        s.key().display()
    );
    let rclone = |args: &[&str]| {
        let mut cmd = s.client("rclone");
        cmd.args(["--config", "/dev/null"]).args(args);
        run(&mut cmd, None)
    };
    rclone(&["copy", "src", &format!("{remote}/dst")]).assert_success();
    for name in ["a.txt", "d1/b.bin", "d1/d2/c.bin", "d1/d2/d3/e.bin"] {
        assert_eq!(
            sha256_file(&s.path(&format!("dst/{name}"))),
            sha256_file(&s.local(&format!("src/{name}"))),
            "{name}"
        );
    }
    // Change the source: one file removed, one changed, one added; sync mirrors it.
    std::fs::remove_file(s.local("src/d1/b.bin")).expect("rm");
    write_random(&s.local("src/a.txt"), 777, 99);
    write_random(&s.local("src/d1/d2/new.bin"), 4321, 98);
    rclone(&["sync", "src", &format!("{remote}/dst")]).assert_success();
    assert!(!s.path("dst/d1/b.bin").exists());
    assert_eq!(
        sha256_file(&s.path("dst/a.txt")),
        sha256_file(&s.local("src/a.txt"))
    );
    assert_eq!(
        sha256_file(&s.path("dst/d1/d2/new.bin")),
        sha256_file(&s.local("src/d1/d2/new.bin"))
    );
    // And back down again.
    rclone(&["copy", &format!("{remote}/dst"), "back"]).assert_success();
    let check = rclone(&["check", "src", "back"]);
    check.assert_success();
}

#[test]
fn login_timeout_and_connection_limits() {
    if skip_unless_paramiko() {
        return;
    }
    let s = TestServer::start_with(ferry_auth::Permissions::all(), |c| {
        c.login_timeout = std::time::Duration::from_secs(1);
        c.limits.max_per_ip = 2;
    });
    let r = paramiko(
        &s,
        r#"
import socket, time
# Not logging in: the server hangs up after the login timeout.
raw = socket.create_connection(("127.0.0.1", PORT)); raw.settimeout(10)
banner = raw.recv(100)
start = time.time()
while raw.recv(4096):
    pass
print("idle closed after %.1f s, banner %s" % (time.time() - start, banner.split(b"\r")[0].decode()))
# Logged in: the login timeout no longer applies.
sftp, t = connect()
time.sleep(2.5)
print("still there", sftp.listdir("/"))
# Per-IP limit 2: with the raw one gone and t open, one more is allowed, a third is refused.
sftp2, t2 = connect()
try:
    connect(); print("third accepted")
except Exception as e:
    print("third refused")
"#,
    );
    r.assert_success();
    assert!(r.out().contains("banner SSH-2.0-ferry"), "{}", r.dump());
    let secs: f64 = r
        .out()
        .split("idle closed after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{}", r.dump()));
    assert!((0.5..5.0).contains(&secs), "closed after {secs} s");
    assert!(r.out().contains("still there []"), "{}", r.dump());
    assert!(r.out().contains("third refused"), "{}", r.dump());
}
