//! End-to-end FTPS tests of the `ferry` binary: the certificate generated on first start (files, key mode,
//! printed fingerprint) and reused afterwards, SIGHUP reload, the implicit listener, `ferry user tls`, and
//! FTPS switched off. TLS clients: python3 (`ssl`, `ftplib`), curl and openssl, as installed by
//! `scripts/install-test-deps.sh`; a test whose client is missing fails with the install hint.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

mod common;

use common::{ferry, run_timeout, skip_unless, tempdir, text, Control, Run, Server, IO_TIMEOUT};

#[track_caller]
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = ferry(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ferry");
    assert!(
        out.status.success(),
        "ferry {args:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `cmd` to completion within `IO_TIMEOUT` * 3 (killing it and failing otherwise).
fn output(cmd: &mut Command) -> Run {
    run_timeout(cmd, None, IO_TIMEOUT * 3)
}

#[track_caller]
fn success(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(out.status.success(), "{cmd:?} failed: {}", out.dump());
    out.out()
}

/// The SHA-256 fingerprint of a PEM certificate file, as `openssl x509 -fingerprint -sha256` prints it.
fn file_fingerprint(cert: &Path) -> String {
    let out = success(
        Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(cert),
    );
    out.trim()
        .split_once('=')
        .unwrap_or_else(|| panic!("openssl output {out:?}"))
        .1
        .to_owned()
}

/// Python: connect, `AUTH TLS`, optionally log in and list; prints the server certificate's SHA-256
/// fingerprint, then the listing.
const PY_PEER: &str = r#"
import ftplib, hashlib, ssl, sys
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
class Reusing(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
f = Reusing(context=ctx, timeout=10)
f.connect('127.0.0.1', port)
f.auth()
der = f.sock.getpeercert(binary_form=True)
print(':'.join('%02X' % b for b in hashlib.sha256(der).digest()))
if user:
    f.login(user, pw)
    f.prot_p()
    print(sorted(f.nlst()))
    f.quit()
"#;

/// The fingerprint of the certificate a live TLS connection to `port` sees.
fn live_fingerprint(port: u16) -> String {
    tls_session(port, "", "").0
}

/// Connects with `AUTH TLS`, logs in if `user` is set and lists `/`; returns the fingerprint and the
/// listing line.
fn tls_session(port: u16, user: &str, pw: &str) -> (String, String) {
    let out = success(Command::new("python3").args(["-c", PY_PEER, &port.to_string(), user, pw]));
    let mut lines = out.lines();
    let fp = lines.next().unwrap_or_default().to_owned();
    (fp, lines.next().unwrap_or_default().to_owned())
}

/// A running `ferry serve`; killed when dropped.
#[test]
fn first_start_generates_a_private_certificate_prints_its_fingerprint_and_reuses_it() {
    if skip_unless("python3") || skip_unless("openssl") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let d = dir.path();
    let mut server = Server::start(d, &[]);
    let addr = server.wait_listening();
    assert!(
        server
            .printed
            .iter()
            .any(|l| l.contains("generated a self-signed FTPS certificate")),
        "{:?}",
        server.printed
    );
    let cert = d.join("ferry-data/tls/cert.pem");
    let key = d.join("ferry-data/tls/key.pem");
    let key_mode = std::fs::metadata(&key).expect("key.pem").permissions().mode() & 0o777;
    assert_eq!(key_mode, 0o600, "key.pem mode {key_mode:o}");
    let dir_mode = std::fs::metadata(d.join("ferry-data/tls"))
        .expect("tls dir")
        .permissions()
        .mode()
        & 0o077;
    assert_eq!(dir_mode, 0, "tls directory readable by others");
    let printed = server.printed_fingerprint().expect("fingerprint printed");
    assert_eq!(printed.len(), 95, "{printed}");
    assert_eq!(printed, file_fingerprint(&cert), "printed vs cert.pem");
    assert_eq!(live_fingerprint(addr.port()), printed, "what clients see");
    let cert_bytes = std::fs::read(&cert).expect("cert");
    let key_bytes = std::fs::read(&key).expect("key");
    drop(server);

    let mut second = Server::start(d, &[]);
    let addr = second.wait_listening();
    assert!(
        !second.printed.iter().any(|l| l.contains("generated")),
        "{:?}",
        second.printed
    );
    assert_eq!(second.printed_fingerprint().as_deref(), Some(printed.as_str()));
    assert_eq!(live_fingerprint(addr.port()), printed);
    assert_eq!(std::fs::read(&cert).expect("cert"), cert_bytes);
    assert_eq!(std::fs::read(&key).expect("key"), key_bytes);
}

#[cfg(unix)]
#[test]
fn sighup_reloads_the_certificate_for_new_connections_and_keeps_it_on_errors() {
    if skip_unless("python3") || skip_unless("openssl") {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    let mut server = Server::start(d, &[]);
    let addr = server.wait_listening();
    let old = server.printed_fingerprint().expect("fingerprint");
    assert_eq!(live_fingerprint(addr.port()), old);

    let cert = d.join("ferry-data/tls/cert.pem");
    let key = d.join("ferry-data/tls/key.pem");
    // A broken pair (new certificate, old key) is refused; the old certificate stays in force.
    let spare = d.join("spare");
    std::fs::create_dir(&spare).expect("mkdir");
    success(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .args(["-days", "2", "-subj", "/CN=reloaded", "-keyout"])
            .arg(spare.join("key.pem"))
            .arg("-out")
            .arg(spare.join("cert.pem")),
    );
    let new = file_fingerprint(&spare.join("cert.pem"));
    assert_ne!(new, old);
    std::fs::copy(spare.join("cert.pem"), &cert).expect("copy cert");
    server.signal("HUP");
    server.wait_logged("cannot reload the FTPS certificate; keeping the old one");
    assert_eq!(
        live_fingerprint(addr.port()),
        old,
        "mismatched pair must not be loaded"
    );

    // The matching key too: reloaded, announced with the new fingerprint, and served.
    std::fs::copy(spare.join("key.pem"), &key).expect("copy key");
    server.signal("HUP");
    let announced = server.wait_for("ferry: FTPS certificate reloaded (SHA-256 ");
    assert_eq!(announced.trim_end_matches(')'), new);
    assert_eq!(live_fingerprint(addr.port()), new);
    // Still running after two SIGHUPs.
    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "ferry exited on SIGHUP"
    );
}

#[test]
fn implicit_listener_serves_curl_ftps() {
    if skip_unless("curl") {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    ok(d, &["user", "add", "alice", "--password", "pw-alice-long-enough"]);
    let mut server = Server::start(d, &["--ftps-implicit", "--ftps-implicit-listen", "127.0.0.1:0"]);
    let implicit: SocketAddr = server
        .wait_for("ferry: FTPS (implicit) listening on ")
        .parse()
        .expect("implicit address");
    let content: Vec<u8> = (0..400_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let local = d.join("up.bin");
    std::fs::write(&local, &content).expect("write");
    let curl = |args: &[&str]| {
        let mut cmd = Command::new("curl");
        cmd.env("HOME", d)
            .args([
                "-sS",
                "-v",
                "-k",
                "--max-time",
                "20",
                "--user",
                "alice:pw-alice-long-enough",
            ])
            .args(args);
        let out = output(&mut cmd);
        assert!(out.status.success(), "curl {args:?}: {}", out.stderr);
        out.stderr
    };
    let url = format!("ftps://127.0.0.1:{}/", implicit.port());
    let log = curl(&["-T", local.to_str().expect("path"), &format!("{url}up.bin")]);
    assert!(log.contains("SSL connection using TLSv1."), "{log}");
    assert!(!log.contains("> AUTH"), "implicit TLS needs no AUTH: {log}");
    assert_eq!(
        std::fs::read(d.join("ferry-data/files/up.bin")).expect("uploaded"),
        content
    );
    let down = d.join("down.bin");
    curl(&["-o", down.to_str().expect("path"), &format!("{url}up.bin")]);
    assert_eq!(std::fs::read(&down).expect("downloaded"), content);
}

#[test]
fn user_tls_require_tls_refuses_cleartext_logins_of_that_user() {
    if skip_unless("python3") {
        return;
    }
    let dir = tempdir();
    let d = dir.path();
    ok(d, &["user", "add", "alice", "--password", "pw-alice-long-enough"]);
    ok(d, &["user", "add", "bob", "--password", "pw-bob-long-enough"]);
    let shown = ok(d, &["user", "tls", "alice", "--require-tls", "true"]);
    assert!(shown.contains("require TLS: yes"), "{shown}");
    let mut server = Server::start(d, &[]);
    let addr = server.wait_listening();

    let mut c = Control::connect_greeted(addr);
    c.expect("USER alice", 331);
    let text = c.expect("PASS pw-alice-long-enough", 530);
    assert!(text.contains("TLS"), "{text}");
    c.expect("PWD", 530);
    // Loopback logins are otherwise allowed in the clear: bob is not affected.
    let mut b = Control::connect_greeted(addr);
    b.expect("USER bob", 331);
    b.expect("PASS pw-bob-long-enough", 230);

    std::fs::write(d.join("ferry-data/files/visible.txt"), b"x").expect("write");
    let (_, listing) = tls_session(addr.port(), "alice", "pw-alice-long-enough");
    assert!(listing.contains("visible.txt"), "alice over TLS: {listing}");
}

#[test]
fn ftps_off_answers_auth_with_502_and_hides_it_from_feat() {
    let dir = tempdir();
    let d = dir.path();
    let mut server = Server::start(d, &["--ftps-policy", "off", "--ftps-loopback-policy", "off"]);
    let addr = server.wait_listening();
    assert_eq!(server.printed_fingerprint(), None, "{:?}", server.printed);
    assert!(
        !d.join("ferry-data/tls").exists(),
        "no certificate is generated when FTPS is off"
    );
    let mut c = Control::connect_greeted(addr);
    let feat = c.expect("FEAT", 211);
    for f in [" AUTH TLS", " PBSZ", " PROT"] {
        assert!(
            !feat.lines().any(|l| l.trim_end() == f),
            "FEAT offers {f}: {feat}"
        );
    }
    assert!(feat.lines().any(|l| l.trim_end() == " EPSV"), "{feat}");
    c.expect("AUTH TLS", 502);
    c.expect("AUTH SSL", 502);

    // And on by default: the same server without the flags offers it.
    drop(server);
    let mut server = Server::start(d, &[]);
    let addr = server.wait_listening();
    let mut c = Control::connect_greeted(addr);
    let feat = c.expect("FEAT", 211);
    assert!(feat.lines().any(|l| l.trim_end() == " AUTH TLS"), "{feat}");
    c.expect("AUTH TLS", 234);
}
