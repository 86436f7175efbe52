//! OpenSSH `sftp` (batch mode) and `scp` against ferry.

mod common;

use common::*;

#[test]
fn sftp_put_get_ls_mkdir_rename_rm_rmdir() {
    if skip_unless("sftp") {
        return;
    }
    let s = TestServer::start();
    write_random(&s.local("up.bin"), 300_000, 1);
    let run = s.sftp_batch(
        "mkdir /dir\nput up.bin /dir/a.bin\nls -l /dir\nrename /dir/a.bin /dir/b.bin\nget /dir/b.bin down.bin\n",
    );
    run.assert_success();
    assert!(
        run.out().contains("a.bin"),
        "ls shows the upload:\n{}",
        run.dump()
    );
    assert_eq!(sha256_file(&s.local("down.bin")), sha256_file(&s.local("up.bin")));
    assert_eq!(sha256_file(&s.path("dir/b.bin")), sha256_file(&s.local("up.bin")));
    assert!(!s.path("dir/a.bin").exists());
    assert_eq!(names(&s.path("dir")), ["b.bin"], "no temp files left behind");

    // rmdir of a non-empty directory fails; rm then rmdir works.
    s.sftp_batch("rmdir /dir\n").assert_failure();
    s.sftp_batch("rm /dir/b.bin\nrmdir /dir\n").assert_success();
    assert!(!s.path("dir").exists());
}

#[test]
fn reget_and_reput_resume_at_the_partial_size() {
    if skip_unless("sftp") {
        return;
    }
    let s = TestServer::start();
    write_random(&s.path("remote.bin"), 200_000, 2);
    // A local partial whose bytes differ from the remote ones: after a real resume they are kept.
    write_random(&s.local("remote.bin"), 50_000, 3);
    write_random(&s.local("local.bin"), 200_000, 4);
    write_random(&s.path("local.bin"), 70_000, 5);
    s.sftp_batch("reget /remote.bin remote.bin\nreput local.bin /local.bin\n")
        .assert_success();

    let got = std::fs::read(s.local("remote.bin")).expect("read");
    let remote = std::fs::read(s.path("remote.bin")).expect("read");
    let partial_prefix = {
        write_random(&s.local("prefix"), 50_000, 3);
        std::fs::read(s.local("prefix")).expect("read")
    };
    assert_eq!(got.len(), remote.len());
    assert_eq!(&got[..50_000], &partial_prefix[..], "reget kept the local part");
    assert_eq!(&got[50_000..], &remote[50_000..], "reget fetched the rest");

    let put = std::fs::read(s.path("local.bin")).expect("read");
    let local = std::fs::read(s.local("local.bin")).expect("read");
    write_random(&s.local("prefix2"), 70_000, 5);
    let remote_prefix = std::fs::read(s.local("prefix2")).expect("read");
    assert_eq!(put.len(), local.len());
    assert_eq!(&put[..70_000], &remote_prefix[..], "reput kept the remote part");
    assert_eq!(&put[70_000..], &local[70_000..], "reput sent the rest");
}

#[test]
fn scp_copies_both_ways_including_a_tree() {
    if skip_unless("scp") {
        return;
    }
    let s = TestServer::start();
    write_random(&s.local("tree/a.bin"), 100_000, 6);
    write_random(&s.local("tree/sub/b.bin"), 3_000, 7);
    let target = format!("{USER}@127.0.0.1:/");
    let mut up = s.client("scp");
    up.args(s.ssh_options(true))
        .args(["-P", &s.port().to_string(), "-r", "tree"])
        .arg(&target);
    run(&mut up, None).assert_success();
    assert_eq!(
        sha256_file(&s.path("tree/a.bin")),
        sha256_file(&s.local("tree/a.bin"))
    );
    assert_eq!(
        sha256_file(&s.path("tree/sub/b.bin")),
        sha256_file(&s.local("tree/sub/b.bin"))
    );

    let mut down = s.client("scp");
    down.args(s.ssh_options(true))
        .args(["-P", &s.port().to_string()])
        .arg(format!("{USER}@127.0.0.1:/tree/sub/b.bin"))
        .arg("copy.bin");
    run(&mut down, None).assert_success();
    assert_eq!(
        sha256_file(&s.local("copy.bin")),
        sha256_file(&s.local("tree/sub/b.bin"))
    );
}

#[test]
fn legacy_scp_is_refused_with_an_explanation() {
    if skip_unless("scp") {
        return;
    }
    let s = TestServer::start();
    write_random(&s.local("x.bin"), 10, 8);
    let mut legacy = s.client("scp");
    legacy
        .args(s.ssh_options(true))
        .args(["-O", "-P", &s.port().to_string(), "x.bin"])
        .arg(format!("{USER}@127.0.0.1:/x.bin"));
    let r = run(&mut legacy, None);
    r.assert_failure();
    assert!(
        r.stderr.contains("legacy SCP protocol is not supported"),
        "{}",
        r.dump()
    );
    assert!(!s.path("x.bin").exists());
}

#[test]
fn shell_and_commands_are_refused() {
    if skip_unless("ssh") {
        return;
    }
    let s = TestServer::start();
    let mut ssh = s.client("ssh");
    ssh.args(s.ssh_options(true))
        .args(["-p", &s.port().to_string(), "-T"])
        .arg(format!("{USER}@127.0.0.1"))
        .arg("cat /etc/passwd");
    let r = run(&mut ssh, None);
    assert_eq!(r.status.code(), Some(1), "{}", r.dump());
    assert!(r.stderr.contains("SFTP only"), "{}", r.dump());
    assert!(!r.out().contains("root:"), "{}", r.dump());

    // Local port forwarding: the channel is refused.
    let mut fwd = s.client("ssh");
    fwd.args(s.ssh_options(true))
        .args([
            "-p",
            &s.port().to_string(),
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
        ])
        .args(["-W", "127.0.0.1:22"])
        .arg(format!("{USER}@127.0.0.1"));
    let r = run(&mut fwd, None);
    r.assert_failure();
}

#[test]
fn traversal_stays_inside_the_root() {
    if skip_unless("sftp") {
        return;
    }
    let s = TestServer::start();
    std::fs::write(s.base().join("secret.txt"), "outside").expect("write");
    std::os::unix::fs::symlink(s.base().join("secret.txt"), s.path("link")).expect("symlink");
    std::os::unix::fs::symlink(s.base(), s.path("dirlink")).expect("symlink");
    std::fs::write(s.path("inside.txt"), "inside").expect("write");

    let r = s.sftp_batch("cd ..\ncd ..\npwd\nls -1 ../../\n");
    r.assert_success();
    assert!(r.out().contains("Remote working directory: /\n"), "{}", r.dump());
    assert!(
        r.out().contains("inside.txt"),
        "`..` of the root is the root:\n{}",
        r.dump()
    );

    for attempt in [
        "get ../secret.txt s1",
        "get ../../../secret.txt s2",
        "get /link s3",
        "get /dirlink/secret.txt s4",
        "ls /dirlink",
        "symlink /etc/passwd /pw",
        "ln /inside.txt /hard.txt",
    ] {
        let r = s.sftp_batch(&format!("{attempt}\n"));
        assert!(!r.status.success(), "`{attempt}` must fail:\n{}", r.dump());
    }
    // `..` at the root is the root: an upload to ../planted.txt lands inside.
    s.sftp_batch("put /etc/hostname ../planted.txt\n")
        .assert_success();
    assert!(s.path("planted.txt").exists());
    assert!(!s.base().join("planted.txt").exists());
    assert!(!s.path("pw").exists() && !s.path("hard.txt").exists());
    let local = names(&s.base().join("local"));
    assert!(local.is_empty(), "nothing from outside was fetched: {local:?}");
}

#[test]
fn password_login_works_and_a_wrong_password_is_refused() {
    if skip_unless("sftp") || skip_unless("sshpass") {
        return;
    }
    let s = TestServer::start();
    std::fs::write(s.path("hello.txt"), "hi").expect("write");
    let attempt = |password: &str| {
        let mut cmd = s.client("sshpass");
        cmd.env("SSHPASS", password)
            .args(["-e", "sftp"])
            .args(s.ssh_options(false))
            .args(["-P", &s.port().to_string(), "-b", "-"])
            .arg(format!("{USER}@127.0.0.1"));
        run(&mut cmd, Some(b"get hello.txt got.txt\n"))
    };
    attempt("wrong password").assert_failure();
    assert!(!s.local("got.txt").exists());
    attempt(PASSWORD).assert_success();
    assert_eq!(std::fs::read_to_string(s.local("got.txt")).expect("read"), "hi");
}

/// The server's KEXINIT (sent in clear) offers strict KEX and modern algorithms only.
#[test]
fn kexinit_offers_strict_kex_and_modern_algorithms_only() {
    use std::io::{Read, Write};
    let s = TestServer::start();
    let mut tcp = std::net::TcpStream::connect(s.addr).expect("connect");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    tcp.write_all(b"SSH-2.0-probe\r\n").expect("banner");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the KEXINIT lists have arrived (the banner line, then one binary packet).
    while !String::from_utf8_lossy(&seen).contains("none") && seen.len() < 64 * 1024 {
        let n = tcp.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("SSH-2.0-ferry\r\n"), "{text}");
    for wanted in [
        "kex-strict-s-v00@openssh.com",
        "curve25519-sha256",
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        "chacha20-poly1305@openssh.com",
        "ssh-ed25519",
    ] {
        assert!(text.contains(wanted), "{wanted} missing: {text}");
    }
    for unwanted in [
        "hmac-sha1",
        "-cbc",
        "diffie-hellman-group1",
        "diffie-hellman-group14-sha1",
        "zlib",
        "3des",
    ] {
        assert!(!text.contains(unwanted), "{unwanted} offered: {text}");
    }
}
