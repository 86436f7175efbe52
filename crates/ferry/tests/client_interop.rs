//! `ferry get/put/ls/mirror` against third-party servers started on loopback by the tests: vsftpd
//! (FTP and FTPS, which requires TLS session reuse on data connections), pyftpdlib (FTP with MLSD, and
//! FTPS with TLS 1.3 only) and
//! OpenSSH sshd with sftp-server. The servers are installed by `scripts/install-test-deps.sh`; a missing
//! one fails the test with that hint. vsftpd and sshd must run as root (privilege separation).

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{ferry, text};

const HINT: &str = "run scripts/install-test-deps.sh";

/// A server process killed on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn wait_port(port: u16, daemon: &mut Daemon, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if let Ok(Some(status)) = daemon.0.try_wait() {
            panic!(
                "server exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "server did not listen: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[track_caller]
/// Starts `python3 ARGS` (a pyftpdlib server that listens on `port`), its stderr in `log`, and waits
/// until it listens. Fails with an install hint when python3 lacks `modules`.
fn start_python_server(modules: &str, args: &[&std::ffi::OsStr], port: u16, log: &Path) -> Daemon {
    let has = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(has, "python3 with {modules} is not installed; {HINT}");
    let mut daemon = Daemon(
        Command::new("python3")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log"))
            .spawn()
            .expect("start python3"),
    );
    wait_port(port, &mut daemon, log);
    daemon
}

fn require(path: &str) {
    assert!(Path::new(path).exists(), "{path} is not installed; {HINT}");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| text(&o.stdout).trim() == "0")
}

fn client(home: &Path, password: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = ferry(home);
    cmd.env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SSH_AUTH_SOCK")
        .args(args);
    if let Some(pw) = password {
        cmd.env("FERRY_PASSWORD", pw);
    }
    cmd.stdin(Stdio::null()).output().expect("run ferry")
}

#[track_caller]
fn ok(home: &Path, password: Option<&str>, args: &[&str]) -> String {
    let out = client(home, password, args);
    assert!(
        out.status.success(),
        "ferry {args:?} failed ({:?}): {}{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[track_caller]
fn same(a: &Path, b: &Path) {
    assert!(
        std::fs::read(a).expect("a") == std::fs::read(b).expect("b"),
        "{} != {}",
        a.display(),
        b.display()
    );
}

/// put, get, resume, ls and mirror both ways against `base` (a URL ending in the served directory),
/// whose files are `served` on disk.
fn round_trip(home: &Path, password: Option<&str>, base: &str, served: &Path, extra: &[&str]) {
    let run = |args: &[&str]| {
        let all: Vec<&str> = args.iter().chain(extra).copied().collect();
        ok(home, password, &all)
    };
    let local = home.join("work");
    std::fs::create_dir_all(local.join("tree/sub")).expect("mkdir");
    let big = local.join("big.bin");
    std::fs::write(&big, data(1_500_000, 3)).expect("write");
    run(&["put", "-q", big.to_str().expect("utf8"), &format!("{base}/")]);
    same(&big, &served.join("big.bin"));
    let back = local.join("back.bin");
    run(&["get", &format!("{base}/big.bin"), back.to_str().expect("utf8")]);
    same(&big, &back);
    std::fs::write(&back, &data(1_500_000, 3)[..400_000]).expect("truncate");
    run(&[
        "get",
        "-c",
        &format!("{base}/big.bin"),
        back.to_str().expect("utf8"),
    ]);
    same(&big, &back);
    let listing = run(&["ls", "-l", &format!("{base}/")]);
    assert!(
        listing.contains("1500000") && listing.contains("big.bin"),
        "{listing}"
    );

    std::fs::write(local.join("tree/one.txt"), b"one").expect("write");
    std::fs::write(local.join("tree/sub/two.bin"), data(100_000, 9)).expect("write");
    run(&[
        "mirror",
        local.join("tree").to_str().expect("utf8"),
        &format!("{base}/tree"),
    ]);
    same(&local.join("tree/sub/two.bin"), &served.join("tree/sub/two.bin"));
    run(&[
        "mirror",
        &format!("{base}/tree"),
        local.join("down").to_str().expect("utf8"),
    ]);
    same(&local.join("tree/one.txt"), &local.join("down/one.txt"));
    same(&local.join("tree/sub/two.bin"), &local.join("down/sub/two.bin"));
}

/// Active data connections (`--active`: EPRT/PORT, the server connects back) and ASCII mode (`--ascii`).
/// `converts`: whether the server itself converts line endings in `TYPE A` (else it stores and sends the
/// bytes as they are on the wire, which shows the client's own conversion).
fn active_and_ascii(home: &Path, password: Option<&str>, base: &str, served: &Path, converts: bool) {
    let run = |args: &[&str]| ok(home, password, args);
    let local = home.join("work");
    std::fs::create_dir_all(&local).expect("mkdir");
    let bin = local.join("active.bin");
    std::fs::write(&bin, data(700_000, 5)).expect("write");
    run(&[
        "put",
        "-q",
        "--active",
        bin.to_str().expect("utf8"),
        &format!("{base}/"),
    ]);
    same(&bin, &served.join("active.bin"));
    let back = local.join("active-back.bin");
    run(&[
        "get",
        "-q",
        "--active",
        &format!("{base}/active.bin"),
        back.to_str().expect("utf8"),
    ]);
    same(&bin, &back);
    let listing = run(&["ls", "--active", &format!("{base}/")]);
    assert!(listing.contains("active.bin"), "{listing}");

    let text = local.join("notes.txt");
    std::fs::write(&text, b"line one\nline two\n\nlast\n").expect("write");
    run(&[
        "put",
        "-q",
        "--ascii",
        text.to_str().expect("utf8"),
        &format!("{base}/"),
    ]);
    let stored = std::fs::read(served.join("notes.txt")).expect("uploaded");
    let expected: &[u8] = if converts {
        b"line one\nline two\n\nlast\n"
    } else {
        b"line one\r\nline two\r\n\r\nlast\r\n"
    };
    assert_eq!(
        stored,
        expected,
        "stored text: {}",
        String::from_utf8_lossy(&stored).escape_debug()
    );
    let text_back = local.join("notes-back.txt");
    run(&[
        "get",
        "-q",
        "--ascii",
        "--active",
        &format!("{base}/notes.txt"),
        text_back.to_str().expect("utf8"),
    ]);
    assert_eq!(
        std::fs::read(&text_back).expect("read"),
        b"line one\nline two\n\nlast\n"
    );
    // Binary (the default) leaves the bytes alone.
    let raw = local.join("notes-raw.txt");
    run(&[
        "get",
        "-q",
        &format!("{base}/notes.txt"),
        raw.to_str().expect("utf8"),
    ]);
    assert_eq!(std::fs::read(&raw).expect("read"), expected);
}

#[test]
fn vsftpd_ftp_and_ftps_with_required_session_reuse() {
    require("/usr/sbin/vsftpd");
    assert!(is_root(), "vsftpd needs root here; run the tests as root");
    require("/usr/bin/openssl");
    let dir = common::tempdir();
    let root = dir.path().join("anon");
    let served = root.join("pub");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&served).expect("mkdir");
    std::fs::create_dir_all(&empty).expect("mkdir");
    // Anonymous uploads are written as the `ftp` user.
    let chown = Command::new("chown")
        .args(["ftp:ftp"])
        .arg(&served)
        .status()
        .expect("chown");
    assert!(chown.success());
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let gen = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(gen.success());
    let port = free_port();
    let config = dir.path().join("vsftpd.conf");
    std::fs::write(
        &config,
        format!(
            "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
             anonymous_enable=YES\nno_anon_password=YES\nanon_root={}\nlocal_enable=NO\nwrite_enable=YES\n\
             anon_upload_enable=YES\nanon_mkdir_write_enable=YES\nanon_other_write_enable=YES\nanon_umask=022\n\
             allow_writeable_chroot=YES\nsecure_chroot_dir={}\nseccomp_sandbox=NO\nisolate=NO\nisolate_network=NO\n\
             pasv_enable=YES\nxferlog_enable=NO\nvsftpd_log_file={}\ndual_log_enable=NO\n\
             ssl_enable=YES\nallow_anon_ssl=YES\nforce_anon_logins_ssl=NO\nforce_anon_data_ssl=NO\n\
             rsa_cert_file={}\nrsa_private_key_file={}\nrequire_ssl_reuse=YES\nssl_ciphers=HIGH\n",
            root.display(),
            empty.display(),
            dir.path().join("vsftpd.log").display(),
            cert.display(),
            key.display()
        ),
    )
    .expect("config");
    let log = dir.path().join("vsftpd.stderr");
    let mut daemon = Daemon(
        Command::new("/usr/sbin/vsftpd")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start vsftpd"),
    );
    wait_port(port, &mut daemon, &log);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    round_trip(&home, None, &format!("ftp://127.0.0.1:{port}/pub"), &served, &[]);
    // vsftpd does not convert line endings unless told to (ascii_upload_enable/ascii_download_enable).
    active_and_ascii(
        &home,
        None,
        &format!("ftp://127.0.0.1:{port}/pub"),
        &served,
        false,
    );

    // FTPS: vsftpd refuses data connections that do not reuse the control session (require_ssl_reuse).
    std::fs::write(served.join("tls.txt"), b"over tls").expect("write");
    let out = client(
        &home,
        None,
        &["cat", &format!("ftpes://127.0.0.1:{port}/pub/tls.txt")],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unknown self-signed certificate must be refused"
    );
    let got = ok(
        &home,
        None,
        &[
            "cat",
            "--trust-on-first-use",
            &format!("ftpes://127.0.0.1:{port}/pub/tls.txt"),
        ],
    );
    assert_eq!(got, "over tls");
    std::fs::write(home.join("up.txt"), b"uploaded over tls").expect("write");
    ok(
        &home,
        None,
        &[
            "put",
            home.join("up.txt").to_str().expect("utf8"),
            &format!("ftpes://127.0.0.1:{port}/pub/"),
        ],
    );
    assert_eq!(
        std::fs::read(served.join("up.txt")).expect("uploaded"),
        b"uploaded over tls"
    );
}

#[test]
fn pyftpdlib_with_mlsd() {
    let dir = common::tempdir();
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    let port = free_port();
    let log = dir.path().join("pyftpdlib.log");
    let port_arg = std::ffi::OsString::from(port.to_string());
    let args: Vec<&std::ffi::OsStr> = ["-m", "pyftpdlib", "-i", "127.0.0.1", "-p"]
        .into_iter()
        .map(std::ffi::OsStr::new)
        .chain([port_arg.as_os_str()])
        .chain(["-w", "-u", "bob", "-P", "pyftp pw", "-d"].map(std::ffi::OsStr::new))
        .chain([served.as_os_str()])
        .collect();
    let _daemon = start_python_server("pyftpdlib", &args, port, &log);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    round_trip(
        &home,
        Some("pyftp pw"),
        &format!("ftp://bob@127.0.0.1:{port}"),
        &served,
        &[],
    );
    active_and_ascii(
        &home,
        Some("pyftp pw"),
        &format!("ftp://bob@127.0.0.1:{port}"),
        &served,
        true,
    );
}

/// pyftpdlib serving FTPS with TLS 1.3 only (pyOpenSSL), for the client's version fallback.
const PYFTPDLIB_TLS13_ONLY: &str = r#"
import sys
from OpenSSL import SSL
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer
port, root, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
auth = DummyAuthorizer()
auth.add_user("bob", "pyftp pw", root, perm="elradfmwMT")
ctx = SSL.Context(SSL.TLS_METHOD)
ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
ctx.use_certificate_chain_file(cert)
ctx.use_privatekey_file(key)
TLS_FTPHandler.ssl_context = ctx
TLS_FTPHandler.authorizer = auth
TLS_FTPHandler.tls_control_required = True
TLS_FTPHandler.tls_data_required = True
FTPServer(("127.0.0.1", port), TLS_FTPHandler).serve_forever()
"#;

/// The client offers TLS 1.2 first (its sessions resume on any number of data connections) and falls
/// back to TLS 1.3 for a server that refuses 1.2: here pyftpdlib with TLS 1.3 only.
#[test]
fn pyftpdlib_ftps_with_tls13_only() {
    let dir = common::tempdir();
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-days", "2", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(made, "openssl could not make a certificate; {HINT}");
    let script = dir.path().join("server.py");
    std::fs::write(&script, PYFTPDLIB_TLS13_ONLY).expect("script");
    let port = free_port();
    let log = dir.path().join("pyftpdlib.log");
    let port_arg = port.to_string();
    let args = [
        script.as_os_str(),
        port_arg.as_ref(),
        served.as_os_str(),
        cert.as_os_str(),
        key.as_os_str(),
    ];
    let _daemon = start_python_server("pyftpdlib, OpenSSL", &args, port, &log);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    round_trip(
        &home,
        Some("pyftp pw"),
        &format!("ftpes://bob@127.0.0.1:{port}"),
        &served,
        &["--trust-on-first-use", "--retries", "0"],
    );
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        log.contains("SSL handshake failed"),
        "the TLS 1.2 attempt should have been refused first: {log}"
    );
}

#[test]
fn openssh_sftp_server() {
    require("/usr/sbin/sshd");
    assert!(is_root(), "sshd needs root here; run the tests as root");
    let sftp_server = [
        "/usr/lib/openssh/sftp-server",
        "/usr/libexec/openssh/sftp-server",
        "/usr/libexec/sftp-server",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .unwrap_or_else(|| panic!("sftp-server not found; {HINT}"));
    let dir = common::tempdir();
    let home = dir.path().join("home");
    let sshd_dir = dir.path().join("sshd");
    std::fs::create_dir_all(home.join(".ssh")).expect("mkdir");
    std::fs::create_dir_all(&sshd_dir).expect("mkdir");
    let served: PathBuf = dir.path().join("served");
    std::fs::create_dir_all(&served).expect("mkdir");
    for (key, comment) in [
        (home.join(".ssh/id_ed25519"), "client"),
        (sshd_dir.join("host_key"), "host"),
    ] {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(&key)
            .status();
        assert!(st.is_ok_and(|s| s.success()), "ssh-keygen failed; {HINT}");
    }
    std::fs::copy(home.join(".ssh/id_ed25519.pub"), sshd_dir.join("authorized_keys")).expect("copy");
    let port = free_port();
    let config = sshd_dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             UsePAM no\nStrictModes no\nSubsystem sftp {sftp_server}\n",
            sshd_dir.join("host_key").display(),
            sshd_dir.join("sshd.pid").display(),
            sshd_dir.join("authorized_keys").display(),
        ),
    )
    .expect("config");
    std::fs::create_dir_all("/run/sshd").expect("privsep dir");
    let log = sshd_dir.join("log");
    let mut daemon = Daemon(
        Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start sshd"),
    );
    wait_port(port, &mut daemon, &log);
    let user = text(&Command::new("id").arg("-un").output().expect("id").stdout)
        .trim()
        .to_owned();
    let base = format!("sftp://{user}@127.0.0.1:{port}{}", served.display());
    // Unknown host key: refused; then recorded with --trust-on-first-use; key login from ~/.ssh.
    let out = client(&home, None, &["ls", &base]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    ok(&home, None, &["ls", "--trust-on-first-use", &base]);
    round_trip(&home, None, &base, &served, &[]);

    // A key held only by a real ssh-agent (not in ~/.ssh) logs in through SSH_AUTH_SOCK.
    let agent = ferry_testkit::agent::SshAgent::start(&sshd_dir);
    let public = agent.add_new_key(&dir.path().join("agent_key"), "agent");
    std::fs::write(sshd_dir.join("authorized_keys"), format!("{public}\n")).expect("authorized_keys");
    std::fs::remove_file(home.join(".ssh/id_ed25519")).expect("rm key");
    let with_agent = |sock: Option<&Path>| {
        let mut cmd = ferry(&home);
        cmd.env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("SSH_AUTH_SOCK")
            .args(["ls", &base])
            .stdin(Stdio::null());
        if let Some(sock) = sock {
            cmd.env("SSH_AUTH_SOCK", sock);
        }
        cmd.output().expect("run ferry")
    };
    let out = with_agent(Some(agent.socket()));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("big.bin"), "{}", text(&out.stdout));
    let out = with_agent(None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}
