//! lftp (GnuTLS) against ferry's FTPS: explicit `AUTH TLS` with protected data and implicit `ftps://`,
//! TLS 1.3 and 1.2 forced through `ssl:priority`, put/get/ls, `mirror` both ways of a nested tree, and 100
//! TLS 1.3 uploads over one control connection (every data connection must resume its session, or the
//! server answers 522).

mod common;

use common::{
    assert_same_tree, make_tree, names, run, sha256_file, skip_unless, write_random_file, Run, TestServer,
};

const TLS13: &str = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
const TLS12: &str = "NORMAL:-VERS-ALL:+VERS-TLS1.2";

/// Runs lftp with debug output (the dialogue goes to stderr) against `url`, TLS forced on control and
/// data connections, the GnuTLS priority string `priority`, then `commands`.
fn lftp_at(server: &TestServer, url: &str, priority: &str, commands: &str) -> Run {
    let script = format!(
        "set ssl:verify-certificate no; set ftp:ssl-allow true; set ftp:ssl-force true; \
         set ftp:ssl-protect-data true; set ftp:ssl-protect-list true; set ssl:priority \"{priority}\"; \
         set net:max-retries 1; set net:timeout 10; set net:reconnect-interval-base 1; \
         set cmd:fail-exit yes; set xfer:clobber yes; {commands}; quit"
    );
    let mut cmd = server.client("lftp");
    cmd.arg("-d")
        .arg("-u")
        .arg(format!("{},{}", common::USER, common::PASSWORD))
        .arg("-e")
        .arg(script)
        .arg(url);
    run(&mut cmd, None)
}

/// Explicit FTPS on the control port; asserts success, AUTH TLS and PROT P, and no 522.
fn lftp(server: &TestServer, priority: &str, commands: &str) -> Run {
    let r = lftp_at(
        server,
        &format!("ftp://127.0.0.1:{}", server.port()),
        priority,
        commands,
    );
    r.assert_success();
    assert!(r.stderr.contains("---> AUTH TLS"), "no AUTH TLS:\n{}", r.stderr);
    assert_protected(&r);
    r
}

/// Implicit FTPS; asserts success and PROT P, and no 522.
fn lftp_implicit(server: &TestServer, priority: &str, commands: &str) -> Run {
    let r = lftp_at(
        server,
        &format!("ftps://127.0.0.1:{}", server.implicit_port()),
        priority,
        commands,
    );
    r.assert_success();
    assert!(
        !r.stderr.contains("---> AUTH"),
        "AUTH on implicit TLS:\n{}",
        r.stderr
    );
    assert_protected(&r);
    r
}

fn assert_protected(r: &Run) {
    assert!(r.stderr.contains("---> PROT P"), "no PROT P:\n{}", r.stderr);
    assert!(
        !r.stderr.contains("<--- 522") && !r.stderr.contains("<--- 521"),
        "data connection refused:\n{}",
        r.stderr
    );
}

fn count(r: &Run, prefix: &str) -> usize {
    r.stderr.lines().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn put_get_and_ls_with_tls13_and_tls12() {
    if skip_unless("lftp") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    for (priority, tag) in [(TLS13, "13"), (TLS12, "12")] {
        let up = server.local(&format!("up{tag}.bin"));
        let hash = write_random_file(&up, 2 * 1024 * 1024 + 5);
        let down = server.local(&format!("down{tag}.bin"));
        let r = lftp(
            &server,
            priority,
            &format!(
                "mkdir d{tag}; put \"{}\" -o d{tag}/up.bin; get d{tag}/up.bin -o \"{}\"; cls -1 d{tag}/; ls d{tag}",
                up.display(),
                down.display()
            ),
        );
        assert_eq!(sha256_file(&server.path(format!("d{tag}/up.bin"))), hash);
        assert_eq!(sha256_file(&down), hash);
        let out = r.out();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "cls then ls, one entry each: {out}");
        assert!(lines[0].ends_with("up.bin"), "{out}");
        assert!(
            lines[1].starts_with('-') && lines[1].ends_with(" up.bin"),
            "{out}"
        );
        assert!(lines[1].contains(" 2097157 "), "size in the long listing: {out}");
    }
}

#[test]
fn a_client_limited_to_tls11_is_refused_so_the_priority_setting_is_effective() {
    if skip_unless("lftp") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    let r = lftp_at(
        &server,
        &format!("ftp://127.0.0.1:{}", server.port()),
        "NORMAL:-VERS-ALL:+VERS-TLS1.1",
        "ls",
    );
    assert!(!r.status.success(), "TLS 1.1 must not be accepted:\n{}", r.dump());
    assert!(
        !r.stderr.contains("<--- 230") && r.stderr.contains("gnutls_handshake"),
        "expected a failed TLS handshake and no login:\n{}",
        r.stderr
    );
}

#[test]
fn mirror_up_and_down_a_nested_tree_with_tls13() {
    if skip_unless("lftp") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    let src = server.local("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    assert!(make_tree(&src) >= 30);
    lftp(
        &server,
        TLS13,
        &format!("mirror -R --no-perms \"{}\" /up", src.display()),
    );
    assert_same_tree(&src, &server.path("up"), &[]);

    let dst = server.local("dst");
    lftp(
        &server,
        TLS13,
        &format!("mirror --no-perms /up \"{}\"", dst.display()),
    );
    assert_same_tree(&src, &dst, &[]);
}

#[test]
fn implicit_ftps_mirror_up_and_down_with_tls13_and_tls12() {
    if skip_unless("lftp") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    let src = server.local("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    make_tree(&src);
    for (priority, tag) in [(TLS13, "13"), (TLS12, "12")] {
        lftp_implicit(
            &server,
            priority,
            &format!("mirror -R --no-perms \"{}\" /up{tag}", src.display()),
        );
        assert_same_tree(&src, &server.path(format!("up{tag}")), &[]);
        let dst = server.local(&format!("dst{tag}"));
        let r = lftp_implicit(
            &server,
            priority,
            &format!("mirror --no-perms /up{tag} \"{}\"; ls /up{tag}", dst.display()),
        );
        assert_same_tree(&src, &dst, &[]);
        assert!(r.out().contains(" docs"), "listing: {}", r.out());
    }
}

#[test]
fn one_hundred_tls13_uploads_in_one_session_are_byte_exact() {
    if skip_unless("lftp") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    let src = server.local("many");
    std::fs::create_dir_all(&src).expect("mkdir");
    let hashes: Vec<String> = (0..100)
        .map(|i| write_random_file(&src.join(format!("f{i:03}.bin")), 1024 * 1024))
        .collect();
    let r = lftp(
        &server,
        TLS13,
        &format!("mirror -R --no-perms \"{}\" /many", src.display()),
    );
    assert_eq!(count(&r, "---> USER "), 1, "one control connection");
    assert_eq!(count(&r, "---> STOR "), 100);
    let stored = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("<--- 226 Transfer complete (1048576 bytes)"))
        .count();
    assert_eq!(stored, 100, "226 for every upload");
    for (i, hash) in hashes.iter().enumerate() {
        let p = server.path(format!("many/f{i:03}.bin"));
        assert_eq!(&sha256_file(&p), hash, "{}", p.display());
    }
    assert_eq!(names(&server.path("many")).len(), 100);
}
