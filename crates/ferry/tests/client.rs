//! `ferry get/put/ls/mirror/…` against `ferry serve` (FTP, explicit and implicit FTPS, SFTP, IPv6) and
//! against a hostile fake FTP server: transfers, resume, mirror both ways, trust (pins, trust on first
//! use, changed certificates and host keys refused), exit codes and `--json`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{ferry, text, Server};

/// `ferry serve` plus what a client needs: addresses, password, fingerprint, a HOME of its own.
struct Serve {
    server: Server,
    ftp: SocketAddr,
    sftp: SocketAddr,
    implicit: Option<SocketAddr>,
    password: String,
    dir: PathBuf,
}

impl Serve {
    fn start(dir: &Path, extra: &[&str]) -> Serve {
        let mut server = Server::start(dir, extra);
        let ftp = server.wait_listening();
        let implicit = extra.contains(&"--ftps-implicit").then(|| {
            server
                .wait_for("ferry: FTPS (implicit) listening on ")
                .parse()
                .expect("addr")
        });
        let sftp = server
            .wait_for("ferry: SFTP listening on ")
            .parse()
            .expect("addr");
        let password = server.printed_password().expect("first-start password");
        std::fs::create_dir_all(dir.join("home")).expect("home");
        std::fs::create_dir_all(dir.join("local")).expect("local");
        Serve {
            server,
            ftp,
            sftp,
            implicit,
            password,
            dir: dir.to_path_buf(),
        }
    }

    fn fingerprint(&self) -> String {
        self.server.printed_fingerprint().expect("fingerprint")
    }

    fn files(&self) -> PathBuf {
        self.dir.join("ferry-data/files")
    }

    fn local(&self, rel: &str) -> PathBuf {
        self.dir.join("local").join(rel)
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        let addr = match scheme {
            "sftp" => self.sftp,
            "ftps" => self.implicit.expect("implicit listener"),
            _ => self.ftp,
        };
        format!("{scheme}://ferry@{addr}{path}")
    }

    /// Runs the client with this server's password in $FERRY_PASSWORD and HOME in the temp dir.
    fn client(&self, args: &[&str]) -> Output {
        run_client(&self.dir, Some(&self.password), args)
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.client(args);
        assert!(
            out.status.success(),
            "ferry {args:?} failed ({:?}): {}{}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

fn run_client(dir: &Path, password: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = ferry(&dir.join("local"));
    cmd.env("HOME", dir.join("home"))
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SSH_AUTH_SOCK")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(pw) = password {
        cmd.env("FERRY_PASSWORD", pw);
    }
    let mut child = cmd.spawn().expect("spawn ferry");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ferry {args:?} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn write_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    std::fs::write(root.join("a.bin"), random_bytes(300_000, 1)).expect("write");
    std::fs::write(root.join("empty.txt"), b"").expect("write");
    std::fs::write(root.join("sub/b with space.txt"), b"bee").expect("write");
    std::fs::write(root.join("sub/deeper/c.log"), random_bytes(70_000, 2)).expect("write");
    std::fs::write(root.join("skip.tmp"), b"excluded").expect("write");
}

#[track_caller]
fn assert_same_file(a: &Path, b: &Path) {
    let (x, y) = (
        std::fs::read(a).expect("read a"),
        std::fs::read(b).expect("read b"),
    );
    assert!(
        x == y,
        "{} and {} differ ({} vs {} bytes)",
        a.display(),
        b.display(),
        x.len(),
        y.len()
    );
}

/// get/put/ls/resume/mirror over one scheme of `ferry serve`.
fn transfers_work(s: &Serve, scheme: &str, trust: &[&str]) {
    let big = s.local(&format!("{scheme}-big.bin"));
    std::fs::write(&big, random_bytes(2_500_000, 7)).expect("write");
    let with = |args: &[&str]| -> Vec<String> { args.iter().chain(trust).map(|s| s.to_string()).collect() };
    let run = |args: Vec<String>| s.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // put, then get back under another name; ls shows it.
    run(with(&[
        "put",
        "-q",
        big.to_str().expect("utf8"),
        &s.url(scheme, "/"),
    ]));
    assert_same_file(&big, &s.files().join(format!("{scheme}-big.bin")));
    let back = s.local(&format!("{scheme}-back.bin"));
    run(with(&[
        "get",
        &s.url(scheme, &format!("/{scheme}-big.bin")),
        back.to_str().expect("utf8"),
    ]));
    assert_same_file(&big, &back);
    let listing = run(with(&["ls", &s.url(scheme, "/")]));
    assert!(
        listing.lines().any(|l| l == format!("{scheme}-big.bin")),
        "{listing}"
    );

    // Resume a download: keep the first part, fetch the rest.
    let partial = s.local(&format!("{scheme}-partial.bin"));
    std::fs::write(&partial, &std::fs::read(&big).expect("read")[..1_000_000]).expect("write");
    run(with(&[
        "get",
        "-c",
        &s.url(scheme, &format!("/{scheme}-big.bin")),
        partial.to_str().expect("utf8"),
    ]));
    assert_same_file(&big, &partial);

    // Resume an upload: the server has the first part.
    let remote_partial = s.files().join(format!("{scheme}-up-partial.bin"));
    std::fs::write(&remote_partial, &std::fs::read(&big).expect("read")[..700_000]).expect("write");
    run(with(&[
        "put",
        "-c",
        big.to_str().expect("utf8"),
        &s.url(scheme, &format!("/{scheme}-up-partial.bin")),
    ]));
    assert_same_file(&big, &remote_partial);

    // Mirror up, with an exclusion, then down into a fresh directory, then --delete.
    let tree = s.local(&format!("{scheme}-tree"));
    write_tree(&tree);
    let remote_dir = format!("/{scheme}-mirror");
    run(with(&[
        "mirror",
        "--exclude",
        "*.tmp",
        tree.to_str().expect("utf8"),
        &s.url(scheme, &remote_dir),
    ]));
    let served = s.files().join(format!("{scheme}-mirror"));
    assert_same_file(&tree.join("a.bin"), &served.join("a.bin"));
    assert_same_file(&tree.join("sub/deeper/c.log"), &served.join("sub/deeper/c.log"));
    assert!(served.join("empty.txt").is_file());
    assert!(!served.join("skip.tmp").exists(), "--exclude ignored");
    let down = s.local(&format!("{scheme}-down"));
    run(with(&[
        "mirror",
        &s.url(scheme, &remote_dir),
        down.to_str().expect("utf8"),
    ]));
    assert_same_file(
        &tree.join("sub/b with space.txt"),
        &down.join("sub/b with space.txt"),
    );
    assert_same_file(&tree.join("a.bin"), &down.join("a.bin"));
    // A second mirror copies nothing.
    let again = run(with(&[
        "mirror",
        "--dry-run",
        &s.url(scheme, &remote_dir),
        down.to_str().expect("utf8"),
    ]));
    assert!(again.trim().is_empty(), "nothing should be left to copy: {again}");
    std::fs::remove_file(tree.join("empty.txt")).expect("rm");
    run(with(&[
        "mirror",
        "--delete",
        "--exclude",
        "*.tmp",
        tree.to_str().expect("utf8"),
        &s.url(scheme, &remote_dir),
    ]));
    assert!(!served.join("empty.txt").exists(), "--delete left the file");
    assert!(served.join("a.bin").exists());

    // Several files over three connections at once.
    let many: Vec<String> = (0..6)
        .map(|i| {
            let p = s.local(&format!("{scheme}-many-{i}.bin"));
            std::fs::write(&p, random_bytes(50_000 + i, i as u64)).expect("write");
            p.display().to_string()
        })
        .collect();
    let mut args: Vec<&str> = vec!["put", "-j", "3"];
    args.extend(many.iter().map(String::as_str));
    let target = s.url(scheme, "/");
    args.push(&target);
    run(with(&args));
    for (i, local) in many.iter().enumerate() {
        assert_same_file(
            Path::new(local),
            &s.files().join(format!("{scheme}-many-{i}.bin")),
        );
    }

    // rm, mkdir, mv, stat, cat.
    run(with(&["mkdir", &s.url(scheme, &format!("/{scheme}-newdir"))]));
    assert!(s.files().join(format!("{scheme}-newdir")).is_dir());
    run(with(&[
        "mv",
        &s.url(scheme, &format!("/{scheme}-big.bin")),
        &format!("/{scheme}-newdir/moved.bin"),
    ]));
    let stat = run(with(&[
        "stat",
        &s.url(scheme, &format!("/{scheme}-newdir/moved.bin")),
    ]));
    assert!(stat.contains("size: 2500000"), "{stat}");
    run(with(&[
        "rm",
        &s.url(scheme, &format!("/{scheme}-newdir/moved.bin")),
    ]));
    run(with(&["rmdir", &s.url(scheme, &format!("/{scheme}-newdir"))]));
    assert!(!s.files().join(format!("{scheme}-newdir")).exists());
    std::fs::write(s.files().join(format!("{scheme}-hello.txt")), b"hello\n").expect("write");
    assert_eq!(
        run(with(&["cat", &s.url(scheme, &format!("/{scheme}-hello.txt"))])),
        "hello\n"
    );
}

#[test]
fn ftp_get_put_ls_resume_and_mirror_against_ferry() {
    let dir = common::tempdir();
    let s = Serve::start(dir.path(), &[]);
    transfers_work(&s, "ftp", &[]);
}

#[test]
fn ftpes_with_a_pinned_certificate_resumes_tls_on_data_connections() {
    // ferry refuses data connections that do not resume the control connection's TLS session, so every
    // transfer here also proves session resumption.
    let dir = common::tempdir();
    let s = Serve::start(dir.path(), &[]);
    let pin = format!("SHA256:{}", s.fingerprint());
    transfers_work(&s, "ftpes", &["--pin", &pin]);

    // Many uploads in one session: each data connection resumes the control connection's session
    // again. Over TLS 1.3 the client would spend one single-use ticket per upload and get none back
    // (the server sends none on connections the client only writes to), and the fifth upload was
    // refused with 522.
    let many = s.local("many");
    std::fs::create_dir_all(&many).expect("mkdir");
    let mut args = vec!["put".to_owned(), "-q".to_owned()];
    for i in 0..12 {
        let f = many.join(format!("m{i:02}.txt"));
        std::fs::write(&f, format!("file {i}\n")).expect("write");
        args.push(f.to_str().expect("utf8").to_owned());
    }
    // No retries: a retry would log in again and get fresh tickets, hiding the failure.
    args.extend([
        s.url("ftpes", "/"),
        "--pin".to_owned(),
        pin.clone(),
        "--retries".to_owned(),
        "0".to_owned(),
    ]);
    s.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    for i in 0..12 {
        assert_same_file(
            &many.join(format!("m{i:02}.txt")),
            &s.files().join(format!("m{i:02}.txt")),
        );
    }
}

#[test]
fn implicit_ftps_with_trust_on_first_use() {
    let dir = common::tempdir();
    let s = Serve::start(
        dir.path(),
        &["--ftps-implicit", "--ftps-implicit-listen", "127.0.0.1:0"],
    );
    s.ok(&["ls", "--trust-on-first-use", &s.url("ftps", "/")]);
    let pins = std::fs::read_to_string(dir.path().join("home/.config/ferry/known_certs")).expect("pinned");
    assert!(pins.contains(&s.fingerprint()), "{pins}");
    // Pinned now: no flag needed.
    transfers_work(&s, "ftps", &[]);
}

#[test]
fn untrusted_and_changed_certificates_are_refused_with_fingerprints() {
    let dir = common::tempdir();
    let s = Serve::start(dir.path(), &[]);
    let fp = s.fingerprint();
    let out = s.client(&["ls", &s.url("ftpes", "/")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(&fp) && err.contains("--trust-on-first-use"), "{err}");

    // A pin for another certificate: refused, showing both.
    let known = dir.path().join("home/.config/ferry/known_certs");
    std::fs::create_dir_all(known.parent().expect("parent")).expect("mkdir");
    let old = format!("SHA256:{}", ["AB"; 32].join(":"));
    std::fs::write(&known, format!("{} {old}\n", s.ftp)).expect("write");
    let out = s.client(&["ls", "--trust-on-first-use", &s.url("ftpes", "/")]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("CHANGED") && err.contains(&old) && err.contains(&fp),
        "{err}"
    );

    // A wrong --pin is refused; -k accepts anything.
    let out = s.client(&["ls", "--pin", &old, &s.url("ftpes", "/")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    s.ok(&["ls", "-k", &s.url("ftpes", "/")]);
}

#[test]
fn sftp_transfers_and_host_key_trust() {
    let dir = common::tempdir();
    let s = Serve::start(dir.path(), &[]);
    let out = s.client(&["ls", &s.url("sftp", "/")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not known: ssh-ed25519 SHA256:"),
        "{}",
        text(&out.stderr)
    );
    s.ok(&["ls", "--trust-on-first-use", &s.url("sftp", "/")]);
    let known = dir.path().join("home/.ssh/known_hosts");
    let line = std::fs::read_to_string(&known).expect("known_hosts written");
    assert!(
        line.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", s.sftp.port())),
        "{line}"
    );
    transfers_work(&s, "sftp", &[]);

    // A segmented download over four connections (an odd size, so segments differ).
    let seg = s.files().join("segmented.bin");
    std::fs::write(&seg, random_bytes(3_000_001, 11)).expect("write");
    s.ok(&["get", "-n", "4", &s.url("sftp", "/segmented.bin"), "seg.bin"]);
    assert_same_file(&seg, &s.local("seg.bin"));
    // Over FTP: REST + RETR per segment, the data connection closed once the segment is in.
    s.ok(&["get", "-n", "4", &s.url("ftp", "/segmented.bin"), "seg-ftp.bin"]);
    assert_same_file(&seg, &s.local("seg-ftp.bin"));
    s.ok(&["get", "-n", "3", &s.url("ftp", "/segmented.bin"), "seg-ftp3.bin"]);
    assert_same_file(&seg, &s.local("seg-ftp3.bin"));

    // The same host and port with another key: refused even with --trust-on-first-use.
    let other = "AAAAC3NzaC1lZDI1NTE5AAAAIHnNpv0fK3qBbzVjq5p1KlzS3xg+OeYy9jJ7kX7r0rTQ";
    std::fs::write(
        &known,
        format!("[127.0.0.1]:{} ssh-ed25519 {other}\n", s.sftp.port()),
    )
    .expect("write");
    let out = s.client(&["ls", "--trust-on-first-use", &s.url("sftp", "/")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("CHANGED"), "{}", text(&out.stderr));
}

/// Runs the client with a terminal (through `script`), answering `answer` to any question.
fn run_client_on_a_terminal(s: &Serve, args: &[&str], answer: &str) -> Output {
    on_a_terminal(s, args, answer, Some(&s.password))
}

/// [`run_client_on_a_terminal`] with `password` (or none) in $FERRY_PASSWORD.
fn on_a_terminal(s: &Serve, args: &[&str], answer: &str, password: Option<&str>) -> Output {
    let line = std::iter::once(common::BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .current_dir(s.dir.join("local"))
        .env("HOME", s.dir.join("home"))
        .env_remove("FERRY_PASSWORD")
        .env_remove("FERRY_KEY_PASSPHRASE")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("XDG_CONFIG_HOME");
    if let Some(pw) = password {
        cmd.env("FERRY_PASSWORD", pw);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("`script` (util-linux) is needed for terminal tests: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    // `script` ends the session when its input ends: answer once the question has had time to appear.
    std::thread::sleep(Duration::from_millis(1500));
    let _ = stdin.write_all(format!("{answer}\n").as_bytes());
    drop(stdin);
    child.wait_with_output().expect("output")
}

#[test]
fn first_contact_is_confirmed_on_a_terminal() {
    let dir = common::tempdir();
    let s = Serve::start(dir.path(), &[]);
    let refused = run_client_on_a_terminal(&s, &["ls", &s.url("ftpes", "/")], "n");
    assert!(!refused.status.success(), "{}", text(&refused.stdout));
    assert!(
        text(&refused.stdout).contains("Trust it and remember it?"),
        "{}",
        text(&refused.stdout)
    );
    assert!(!dir.path().join("home/.config/ferry/known_certs").exists());
    let accepted = run_client_on_a_terminal(&s, &["ls", &s.url("ftpes", "/")], "y");
    assert!(accepted.status.success(), "{}", text(&accepted.stdout));
    let pins = std::fs::read_to_string(dir.path().join("home/.config/ferry/known_certs")).expect("pinned");
    assert!(pins.contains(&s.fingerprint()), "{pins}");
    // Host keys too.
    let accepted = run_client_on_a_terminal(&s, &["ls", &s.url("sftp", "/")], "yes");
    assert!(accepted.status.success(), "{}", text(&accepted.stdout));
    assert!(dir.path().join("home/.ssh/known_hosts").is_file());
}

#[test]
fn exit_codes_and_json_lines() {
    let dir = common::tempdir();
    let s = Serve::start(dir.path(), &[]);
    let out = s.client(&["get", &s.url("ftp", "/missing.bin")]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let out = s.client(&["get", "gopher://h/x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_client(dir.path(), Some("wrong password"), &["ls", &s.url("ftp", "/")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = run_client(dir.path(), None, &["ls", &s.url("ftp", "/")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no password for ferry"),
        "{}",
        text(&out.stderr)
    );

    std::fs::write(s.local("j.txt"), b"json").expect("write");
    let out = s.ok(&["put", "--json", "j.txt", &s.url("ftp", "/")]);
    let line = out.lines().next().expect("a json line");
    assert!(
        line.starts_with('{') && line.contains(r#""status":"ok""#) && line.contains(r#""bytes":4"#),
        "{line}"
    );
    assert!(
        !out.contains(&s.password),
        "the password leaked into --json output"
    );
    // A URL with the password in it: never echoed.
    let with_pw = format!("ftp://ferry:{}@{}/j.txt", s.password, s.ftp);
    let out = run_client(dir.path(), None, &["get", "--json", &with_pw, "-"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains(&s.password), "the password leaked: {all}");
    // Partial: one file missing among two.
    let out = s.client(&["put", "j.txt", "nope.txt", &s.url("ftp", "/")]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
}

#[test]
fn ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback here");
        return;
    }
    let dir = common::tempdir();
    let mut server = Server::start(dir.path(), &["--listen", "[::1]:0"]);
    // The harness listens on 127.0.0.1 too; take the IPv6 listener.
    let mut ftp: SocketAddr = server.wait_listening();
    if ftp.is_ipv4() {
        ftp = server.wait_listening();
    }
    let password = server.printed_password().expect("password");
    std::fs::create_dir_all(dir.path().join("local")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("home")).expect("mkdir");
    std::fs::write(dir.path().join("ferry-data/files/six.txt"), b"v6").expect("write");
    let url = format!("ftp://ferry@[::1]:{}/six.txt", ftp.port());
    assert!(ftp.is_ipv6(), "{ftp}");
    let out = run_client(dir.path(), Some(&password), &["cat", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "v6");
    // Active mode over IPv6: EPRT |2|::1|port| (PORT cannot carry it).
    let out = run_client(dir.path(), Some(&password), &["cat", "--active", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "v6");
}

/// A fake FTP server whose listing is hostile; serves "ok.txt" and every other RETR with "x".
fn hostile_server(listing: &'static [u8]) -> SocketAddr {
    busy_server(listing, 0)
}

/// Like [`hostile_server`], but the first `busy` connections get `421 Too many connections`.
fn busy_server(listing: &'static [u8], busy: usize) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for (i, mut conn) in listener.incoming().map_while(Result::ok).enumerate() {
            if i < busy {
                let _ = conn.write_all(b"421 Too many connections\r\n");
                continue;
            }
            std::thread::spawn(move || fake_session(conn, listing, false));
        }
    });
    addr
}

#[test]
fn transient_refusals_are_retried_with_backoff_then_exit_4() {
    let dir = common::tempdir();
    std::fs::create_dir_all(dir.path().join("local")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("home")).expect("mkdir");
    // The first two connections are refused with 421: waits of 1 s and 2 s, then success.
    let addr = busy_server(b"", 2);
    let started = Instant::now();
    let retried = run_client(
        dir.path(),
        Some("pw"),
        &["get", "--retries", "3", &format!("ftp://u@{addr}/f"), "g"],
    );
    assert!(retried.status.success(), "{}", text(&retried.stderr));
    let err = text(&retried.stderr);
    assert!(
        err.contains("retrying in 1 s") && err.contains("retrying in 2 s"),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_secs(3), "backoff 1 s + 2 s");
    assert_eq!(
        std::fs::read(dir.path().join("local/g")).expect("downloaded"),
        b"x"
    );
    // Without retries a 421 is exit code 4 and nothing is written.
    let addr = busy_server(b"", 100);
    let gave_up = run_client(
        dir.path(),
        Some("pw"),
        &["get", "--retries", "0", &format!("ftp://u@{addr}/f"), "h"],
    );
    assert_eq!(gave_up.status.code(), Some(4), "{}", text(&gave_up.stderr));
    assert!(!dir.path().join("local/h").exists());
}

/// A fake FTP server whose RETR sends 100,000 bytes, then stalls for a minute.
fn stalling_server() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || fake_session(conn, b"", true));
        }
    });
    addr
}

#[test]
fn ctrl_c_removes_the_unfinished_download() {
    let dir = common::tempdir();
    let local = dir.path().join("local");
    std::fs::create_dir_all(&local).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("home")).expect("mkdir");
    let addr = stalling_server();
    let mut child = ferry(&local)
        .env("HOME", dir.path().join("home"))
        .env("FERRY_PASSWORD", "pw")
        .args(["get", &format!("ftp://u@{addr}/big.bin")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry");
    let part = local.join(".big.bin.ferry-part");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&part).map_or(true, |m| m.len() < 100_000) {
        assert!(Instant::now() < deadline, "no partial download appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ferry get did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted; 1 unfinished download(s) removed"),
        "{err}"
    );
    assert!(!part.exists(), "the partial file was left behind");
    assert!(!local.join("big.bin").exists());
}

fn fake_session(conn: std::net::TcpStream, listing: &'static [u8], stall: bool) {
    let mut write = conn.try_clone().expect("clone");
    let mut read = BufReader::new(conn);
    let _ = write.write_all(b"220 hostile\r\n");
    let mut data: Option<TcpListener> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "USER" => "331 pw\r\n".to_owned(),
            "PASS" => "230 ok\r\n".to_owned(),
            "PWD" => "257 \"/\"\r\n".to_owned(),
            "CWD" => "250 ok\r\n".to_owned(),
            "SIZE" => "550 No such file\r\n".to_owned(),
            "EPSV" => {
                let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
                let port = l.local_addr().expect("addr").port();
                data = Some(l);
                format!("229 (|||{port}|)\r\n")
            }
            "LIST" | "RETR" => {
                let Some(l) = data.take() else { return };
                let _ = write.write_all(b"150 go\r\n");
                if let Ok((mut d, _)) = l.accept() {
                    let body: &[u8] = if verb == "LIST" && !line.contains("sub") {
                        listing
                    } else if verb == "LIST" {
                        b""
                    } else {
                        b"x"
                    };
                    if stall && verb == "RETR" {
                        let _ = d.write_all(&[7u8; 100_000]);
                        std::thread::sleep(Duration::from_secs(60));
                    }
                    let _ = d.write_all(body);
                }
                "226 done\r\n".to_owned()
            }
            "QUIT" => return,
            _ => "200 ok\r\n".to_owned(),
        };
        let _ = write.write_all(reply.as_bytes());
    }
}

#[test]
fn mirror_from_a_hostile_listing_never_writes_outside_the_target() {
    let listing: &'static [u8] = b"-rw-r--r-- 1 a b 1 Jan 1 2020 ../escape-up\r\n\
-rw-r--r-- 1 a b 1 Jan 1 2020 /tmp/escape-abs\r\n\
-rw-r--r-- 1 a b 1 Jan 1 2020 sub/../../escape-mid\r\n\
-rw-r--r-- 1 a b 1 Jan 1 2020 ..\\escape-bs\r\n\
-rw-r--r-- 1 a b 1 Jan 1 2020 esc\x1b[2Jape\r\n\
-rw-r--r-- 1 a b 1 Jan 1 2020 ok.txt\r\n";
    let addr = hostile_server(listing);
    let dir = common::tempdir();
    std::fs::create_dir_all(dir.path().join("local/target")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("home")).expect("mkdir");
    let out = run_client(
        dir.path(),
        Some("pw"),
        &["mirror", &format!("ftp://u@{addr}/"), "target"],
    );
    assert_eq!(out.status.code(), Some(5), "partial: {}", text(&out.stderr));
    let target = dir.path().join("local/target");
    let mut names: Vec<String> = std::fs::read_dir(&target)
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ok.txt"]);
    for escaped in ["local/escape-up", "escape-up", "escape-mid", "local/escape-mid"] {
        assert!(!dir.path().join(escaped).exists(), "{escaped} was written");
    }
    assert!(!Path::new("/tmp/escape-abs").exists());
    let err = text(&out.stderr);
    assert!(
        err.contains("not a plain file name") && !err.contains('\x1b'),
        "{err}"
    );
    let mut f = std::fs::File::open(target.join("ok.txt")).expect("ok.txt");
    let mut s = String::new();
    f.read_to_string(&mut s).expect("read");
    assert_eq!(s, "x");
}

/// Runs a mirror and returns its summary line (stderr), asserting success.
#[track_caller]
fn mirror_summary(s: &Serve, args: &[&str]) -> String {
    let mut all = vec!["mirror", "--trust-on-first-use"];
    all.extend_from_slice(args);
    let out = s.client(&all);
    let err = text(&out.stderr);
    assert!(
        out.status.success(),
        "ferry {all:?} failed: {}{err}",
        text(&out.stdout)
    );
    err
}

fn set_mtime(path: &Path, t: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(t))
        .expect("set mtime");
}

#[test]
fn mirror_compares_and_verifies_by_server_checksums() {
    let dir = common::tempdir();
    let s = Serve::start(dir.path(), &[]);
    for scheme in ["ftp", "sftp"] {
        let tree = s.local(&format!("{scheme}-sum"));
        std::fs::create_dir_all(tree.join("d")).expect("mkdir");
        std::fs::write(tree.join("one.bin"), random_bytes(200_000, 3)).expect("write");
        std::fs::write(tree.join("d/two.txt"), random_bytes(20_000, 4)).expect("write");
        let url = s.url(scheme, &format!("/{scheme}-sum"));
        let tree_arg = tree.to_str().expect("utf8");
        let up = mirror_summary(&s, &[tree_arg, &url]);
        assert!(
            up.contains("2 file(s) copied") && up.contains("2 verified by checksum"),
            "{up}"
        );

        // Same content, newer local time: size and time would copy again, checksums do not.
        let later = std::time::SystemTime::now() + Duration::from_secs(3600);
        set_mtime(&tree.join("one.bin"), later);
        let by_time = s.ok(&["mirror", "--no-checksum", "--dry-run", tree_arg, &url]);
        assert!(by_time.contains("put one.bin"), "{by_time}");
        let again = mirror_summary(&s, &[tree_arg, &url]);
        assert!(
            again.contains("0 file(s) copied") && again.contains("2 unchanged by checksum"),
            "{again}"
        );

        // The server's copy changed behind the client's back, same size and time: only a checksum sees it.
        let served = s.files().join(format!("{scheme}-sum/d/two.txt"));
        let before = std::fs::metadata(&served)
            .and_then(|m| m.modified())
            .expect("mtime");
        std::fs::write(&served, random_bytes(20_000, 99)).expect("write");
        set_mtime(&served, before);
        let by_time = s.ok(&["mirror", "--no-checksum", "--dry-run", tree_arg, &url]);
        assert!(!by_time.contains("two.txt"), "{by_time}");
        let fixed = mirror_summary(&s, &[tree_arg, &url]);
        assert!(
            fixed.contains("1 file(s) copied") && fixed.contains("1 verified by checksum"),
            "{fixed}"
        );
        assert_same_file(&tree.join("d/two.txt"), &served);

        // Down into a fresh directory: every copy verified.
        let down = s.local(&format!("{scheme}-sum-down"));
        let got = mirror_summary(&s, &[&url, down.to_str().expect("utf8")]);
        assert!(got.contains("2 verified by checksum"), "{got}");
        assert_same_file(&tree.join("one.bin"), &down.join("one.bin"));
    }
}

#[test]
fn active_mode_and_ascii_against_ferry_ftp_and_ftpes() {
    let dir = common::tempdir();
    let s = Serve::start(dir.path(), &[]);
    let pin = format!("SHA256:{}", s.fingerprint());
    for (scheme, trust) in [("ftp", vec![]), ("ftpes", vec!["--pin", pin.as_str()])] {
        let with = |args: &[&str]| -> Vec<String> {
            args.iter().chain(trust.iter()).map(|a| (*a).to_owned()).collect()
        };
        let run = |args: &[&str]| {
            let all = with(args);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            s.ok(&refs)
        };
        // Active: the server connects back (under ftpes the data connection is still TLS, resumed).
        let bin = s.local(&format!("{scheme}-active.bin"));
        std::fs::write(&bin, random_bytes(900_000, 21)).expect("write");
        run(&[
            "put",
            "--active",
            bin.to_str().expect("utf8"),
            &s.url(scheme, "/"),
        ]);
        let served = s.files().join(format!("{scheme}-active.bin"));
        assert_same_file(&bin, &served);
        let back = s.local(&format!("{scheme}-active-back.bin"));
        run(&[
            "get",
            "--active",
            &s.url(scheme, &format!("/{scheme}-active.bin")),
            back.to_str().expect("utf8"),
        ]);
        assert_same_file(&bin, &back);
        let listing = run(&["ls", "--active", &s.url(scheme, "/")]);
        assert!(listing.contains(&format!("{scheme}-active.bin")), "{listing}");

        // ASCII: ferry stores LF and sends CRLF; the client converts both ways.
        let notes = s.local(&format!("{scheme}-notes.txt"));
        std::fs::write(&notes, b"one\ntwo\n\nthree\n").expect("write");
        run(&[
            "put",
            "--ascii",
            notes.to_str().expect("utf8"),
            &s.url(scheme, "/"),
        ]);
        let stored = s.files().join(format!("{scheme}-notes.txt"));
        assert_eq!(std::fs::read(&stored).expect("read"), b"one\ntwo\n\nthree\n");
        std::fs::write(&stored, b"crlf stays\r\nlf\n").expect("write");
        let got = run(&["cat", "--ascii", &s.url(scheme, &format!("/{scheme}-notes.txt"))]);
        assert_eq!(got, "crlf stays\nlf\n");
        let raw = run(&["cat", &s.url(scheme, &format!("/{scheme}-notes.txt"))]);
        assert_eq!(raw, "crlf stays\r\nlf\n");
        // Resuming in ASCII mode is refused: offsets differ between the two forms.
        let all = with(&[
            "get",
            "-c",
            "--ascii",
            &s.url(scheme, &format!("/{scheme}-notes.txt")),
            notes.to_str().expect("utf8"),
        ]);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = s.client(&refs);
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains("ASCII mode"), "{}", text(&out.stderr));
        assert_eq!(out.status.code(), Some(2));
    }
    // SFTP has no text mode.
    let out = s.client(&["ls", "--trust-on-first-use", "--ascii", &s.url("sftp", "/")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("only in FTP"), "{}", text(&out.stderr));
}

#[test]
fn sftp_logs_in_with_a_key_held_by_a_real_ssh_agent() {
    let dir = common::tempdir();
    let s = Serve::start(dir.path(), &[]);
    let agent = ferry_testkit::agent::SshAgent::start(dir.path());
    let public = agent.add_new_key(&dir.path().join("agent_key"), "agent@test");
    let added = ferry(dir.path())
        .args(["user", "key", "add", "ferry", &public])
        .output()
        .expect("key add");
    assert!(added.status.success(), "{}", text(&added.stderr));
    // No password and no key file: only the agent can log in.
    let run = |sock: Option<&Path>| {
        let mut cmd = ferry(&dir.path().join("local"));
        cmd.env("HOME", dir.path().join("home"))
            .env_remove("FERRY_PASSWORD")
            .env_remove("SSH_AUTH_SOCK")
            .args(["ls", "--trust-on-first-use", &s.url("sftp", "/")])
            .stdin(Stdio::null());
        if let Some(sock) = sock {
            cmd.env("SSH_AUTH_SOCK", sock);
        }
        cmd.output().expect("run ferry")
    };
    std::fs::write(s.files().join("agent-visible.txt"), b"x").expect("write");
    let out = run(Some(agent.socket()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("agent-visible.txt"));
    let out = run(None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // An agent whose key the server does not know: refused, and the message says what was tried.
    drop(agent);
    let other = ferry_testkit::agent::SshAgent::start(&dir.path().join("home"));
    other.add_new_key(&dir.path().join("other_key"), "other@test");
    let out = run(Some(other.socket()));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("SSH agent"), "{}", text(&out.stderr));
}

#[test]
fn sftp_logs_in_with_a_passphrase_protected_key_from_env_or_terminal() {
    ferry_testkit::clients::require("ssh-keygen");
    let dir = common::tempdir();
    let s = Serve::start(dir.path(), &[]);
    let key = dir.path().join("locked_key");
    let st = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "correct horse",
            "-C",
            "locked@test",
            "-f",
        ])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(st.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(dir.path().join("locked_key.pub")).expect("public key");
    let added = ferry(dir.path())
        .args(["user", "key", "add", "ferry", public.trim()])
        .output()
        .expect("key add");
    assert!(added.status.success(), "{}", text(&added.stderr));
    std::fs::write(s.files().join("behind-the-lock.txt"), b"x").expect("write");
    let key_arg = key.display().to_string();
    let url = s.url("sftp", "/");
    // No password anywhere: only the key can log in.
    let run = |passphrase: Option<&str>| {
        let mut cmd = ferry(&dir.path().join("local"));
        cmd.env("HOME", dir.path().join("home"))
            .env_remove("FERRY_PASSWORD")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("FERRY_KEY_PASSPHRASE")
            .args(["ls", "--trust-on-first-use", "-i", &key_arg, &url])
            .stdin(Stdio::null());
        if let Some(p) = passphrase {
            cmd.env("FERRY_KEY_PASSPHRASE", p);
        }
        cmd.output().expect("run ferry")
    };
    let out = run(Some("correct horse"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("behind-the-lock.txt"));
    // Without it (and no terminal to ask on): refused, and the message says how to give it.
    let out = run(None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("passphrase-protected") && err.contains("FERRY_KEY_PASSPHRASE"),
        "{err}"
    );
    // A wrong one: refused, said so, and the passphrase itself never printed.
    let out = run(Some("wrong staple"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("does not decrypt"), "{err}");
    assert!(!err.contains("wrong staple"), "{err}");
    // On a terminal the client asks for it (no echo) once, and logs in with the answer.
    let asked = on_a_terminal(
        &s,
        &["ls", "--trust-on-first-use", "-i", &key_arg, &url],
        "correct horse",
        None,
    );
    let shown = text(&asked.stdout);
    assert!(asked.status.success(), "{shown}");
    assert!(shown.contains("Passphrase for key"), "{shown}");
    assert!(shown.contains("behind-the-lock.txt"), "{shown}");
    assert!(!shown.contains("correct horse"), "{shown}");
}

/// `ferry serve` with at most `per_ip` connections from one address, and `n` small files in `/many` and
/// in the local `many` directory.
fn limited_server(dir: &Path, per_ip: &str, n: usize) -> Serve {
    std::fs::create_dir_all(dir).expect("mkdir");
    let s = Serve::start(dir, &["--max-connections-per-ip", per_ip]);
    for root in [s.files().join("many"), s.local("many")] {
        std::fs::create_dir_all(&root).expect("mkdir");
        for i in 0..n {
            std::fs::write(
                root.join(format!("f{i:02}.bin")),
                random_bytes(5_000 + i, i as u64),
            )
            .expect("write");
        }
    }
    s
}

#[track_caller]
fn assert_same_dir(a: &Path, b: &Path, n: usize) {
    for i in 0..n {
        let name = format!("f{i:02}.bin");
        assert_same_file(&a.join(&name), &b.join(&name));
    }
}

#[test]
fn parallel_transfers_stay_within_the_servers_connection_limit() {
    let dir = common::tempdir();
    // The server takes two connections from this address; mirror asks for four.
    let s = limited_server(dir.path(), "2", 16);
    // By default too (8 files at once): the refusals are noted and every file arrives.
    let err = mirror_summary(&s, &[&s.url("ftp", "/many"), "down-default"]);
    assert!(err.contains("refused another connection"), "{err}");
    assert!(err.contains("16 file(s) copied"), "{err}");
    assert_same_dir(&s.files().join("many"), &s.local("down-default"), 16);
    for scheme in ["ftp", "sftp"] {
        let err = mirror_summary(
            &s,
            &["-P", "4", &s.url(scheme, "/many"), &format!("down-{scheme}")],
        );
        assert!(err.contains("refused another connection"), "{err}");
        assert!(err.contains("16 file(s) copied"), "{err}");
        assert_same_dir(&s.files().join("many"), &s.local(&format!("down-{scheme}")), 16);
        let err = mirror_summary(&s, &["-P", "4", "many", &s.url(scheme, &format!("/up-{scheme}"))]);
        assert!(err.contains("16 file(s) copied"), "{err}");
        assert_same_dir(&s.local("many"), &s.files().join(format!("up-{scheme}")), 16);
    }
    // put -j 4: every file arrives over the connections the server allowed.
    let files: Vec<String> = (0..16)
        .map(|i| s.local(&format!("many/f{i:02}.bin")).display().to_string())
        .collect();
    let mut args: Vec<&str> = vec!["put", "-j", "4"];
    args.extend(files.iter().map(String::as_str));
    s.ok(&["mkdir", &s.url("ftp", "/put-j")]);
    let target = s.url("ftp", "/put-j/");
    args.push(&target);
    let out = s.client(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_same_dir(&s.local("many"), &s.files().join("put-j"), 16);

    // --max-connections 1: one connection does it all, and nothing is refused.
    let s1 = limited_server(&dir.path().join("one"), "1", 8);
    let err = mirror_summary(
        &s1,
        &[
            "-P",
            "4",
            "--max-connections",
            "1",
            &s1.url("ftp", "/many"),
            "down-one",
        ],
    );
    assert!(!err.contains("refused"), "{err}");
    assert!(err.contains("8 file(s) copied"), "{err}");
    assert_same_dir(&s1.files().join("many"), &s1.local("down-one"), 8);
}

/// Runs `ferry get --json` with `args` and returns the `"connections":N` of its line.
#[track_caller]
fn get_connections(s: &Serve, args: &[&str]) -> (u64, String) {
    let mut all = vec!["get", "--json", "--retries", "0"];
    all.extend_from_slice(args);
    let out = s.client(&all);
    let (line, err) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "ferry {all:?} failed: {line}{err}");
    let n = line
        .split("\"connections\":")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no connection count in {line:?}"));
    (n, err)
}

#[test]
fn big_downloads_are_split_over_connections_by_default() {
    let dir = common::tempdir();
    let s = Serve::start(dir.path(), &[]);
    let pin = format!("SHA256:{}", s.fingerprint());
    // Just over 3 MiB, an odd size so the segments differ.
    let big = s.files().join("big.bin");
    std::fs::write(&big, random_bytes(3 * 1024 * 1024 + 7, 21)).expect("write");
    for (scheme, trust) in [
        ("ftp", "--trust-on-first-use"),
        ("ftpes", "--pin"),
        ("sftp", "--trust-on-first-use"),
    ] {
        let trust: Vec<&str> = match trust {
            "--pin" => vec!["--pin", &pin],
            t => vec![t],
        };
        let url = s.url(scheme, "/big.bin");
        let with = |extra: &[&str], local: &str| {
            let mut a = trust.clone();
            a.extend_from_slice(extra);
            a.extend([url.as_str(), local]);
            let (n, _) = get_connections(&s, &a);
            assert_same_file(&big, &s.local(local));
            n
        };
        // Over the threshold: four connections without being asked.
        let local = format!("{scheme}-auto.bin");
        assert_eq!(with(&["--segment-min-size", "2"], &local), 4, "{scheme}");
        // -n 1 turns it off; below the threshold (the default, 256 MiB) it is one connection.
        let local = format!("{scheme}-one.bin");
        assert_eq!(
            with(&["--segment-min-size", "2", "-n", "1"], &local),
            1,
            "{scheme}"
        );
        assert_eq!(with(&[], &format!("{scheme}-small.bin")), 1, "{scheme}");
        // --max-connections bounds it.
        let local = format!("{scheme}-two.bin");
        assert_eq!(
            with(&["--segment-min-size", "2", "--max-connections", "2"], &local),
            2,
            "{scheme}"
        );
        // No temporary file is left behind.
        assert!(!s.local(&format!(".{scheme}-auto.bin.ferry-part")).exists());
    }
}

#[test]
fn a_split_download_continues_over_the_connections_the_server_allows() {
    let dir = common::tempdir();
    for per_ip in ["1", "2"] {
        let s = limited_server(&dir.path().join(per_ip), per_ip, 0);
        let big = s.files().join("big.bin");
        std::fs::write(&big, random_bytes(2 * 1024 * 1024 + 3, 22)).expect("write");
        for scheme in ["ftp", "sftp"] {
            let local = format!("{scheme}.bin");
            let (n, err) = get_connections(
                &s,
                &[
                    "--trust-on-first-use",
                    "--segment-min-size",
                    "1",
                    &s.url(scheme, "/big.bin"),
                    &local,
                ],
            );
            assert_eq!(n.to_string(), per_ip, "{scheme}: {err}");
            assert!(err.contains("refused another connection"), "{scheme}: {err}");
            assert_same_file(&big, &s.local(&local));
            // Asked for explicitly, the same.
            let local = format!("{scheme}-n.bin");
            let url = s.url(scheme, "/big.bin");
            let (n, err) = get_connections(&s, &["--trust-on-first-use", "-n", "4", &url, &local]);
            assert_eq!(n.to_string(), per_ip, "{scheme}: {err}");
            assert_same_file(&big, &s.local(&local));
        }
    }
}
