//! Draining on SIGTERM, against a real `ferry serve`: idle sessions get `421` at once, new
//! connections are refused, a running upload finishes with `226` within `shutdown_grace_secs`; one
//! that overruns the grace gets `426` and leaves no file; SFTP sessions the same (paramiko); the
//! process exits 0, and a second SIGTERM exits at once.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{tempdir, wait_until, Control, Server};

/// Starts `ferry serve` in `dir`; returns it with its FTP address, SFTP port and the password.
fn start(dir: &Path, grace: &str) -> (Server, SocketAddr, u16, String) {
    let mut server = Server::start(dir, &["--shutdown-grace-secs", grace]);
    let ftp = server.wait_listening();
    let sftp: SocketAddr = server
        .wait_for("ferry: SFTP listening on ")
        .parse()
        .expect("SFTP address");
    let password = server.printed_password().expect("first-start password");
    (server, ftp, sftp.port(), password)
}

fn login(addr: SocketAddr, password: &str) -> Control {
    let mut c = Control::connect_greeted(addr);
    c.expect("USER ferry", 331);
    c.expect(&format!("PASS {password}"), 230);
    c.expect("TYPE I", 200);
    c
}

/// Waits for the process to exit; its exit code.
fn exit_code(server: &mut Server, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "ferry serve did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn refused(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err()
}

#[test]
fn sigterm_lets_a_running_upload_finish_with_226_and_closes_idle_sessions() {
    let dir = tempdir();
    let (mut server, addr, _, password) = start(dir.path(), "30");
    let mut idle = login(addr, &password);
    let mut busy = login(addr, &password);
    let mut data = busy.epsv(addr);
    busy.expect("STOR finished.bin", 150);
    data.write_all(&[7u8; 100_000]).expect("first half");

    server.signal("TERM");
    // The idle session is told at once; the listener is closed.
    assert_eq!(idle.reply().0, 421);
    assert!(
        wait_until(Duration::from_secs(10), || refused(addr)),
        "the FTP listener still accepts connections while draining"
    );
    // The upload goes on and completes.
    std::thread::sleep(Duration::from_millis(500));
    data.write_all(&[8u8; 100_000]).expect("second half");
    drop(data);
    busy.expect_final(226);
    assert_eq!(busy.reply().0, 421);
    assert_eq!(exit_code(&mut server, Duration::from_secs(20)), Some(0));
    let stored = std::fs::read(dir.path().join("ferry-data/files/finished.bin")).expect("uploaded file");
    assert_eq!(stored.len(), 200_000);
    assert!(stored[..100_000].iter().all(|&b| b == 7) && stored[100_000..].iter().all(|&b| b == 8));
}

#[test]
fn an_upload_overrunning_the_grace_gets_426_and_leaves_no_file() {
    let dir = tempdir();
    let (mut server, addr, _, password) = start(dir.path(), "1");
    let mut c = login(addr, &password);
    let mut data = c.epsv(addr);
    c.expect("STOR unfinished.bin", 150);
    data.write_all(&[1u8; 50_000]).expect("some data");
    let t0 = Instant::now();
    server.signal("TERM");
    // Keep the data connection open without finishing: the grace (1 s) runs out.
    let (code, text) = c.reply();
    assert_eq!(code, 426, "{text}");
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "aborted before the grace: {:?}",
        t0.elapsed()
    );
    assert_eq!(c.reply().0, 421);
    assert_eq!(exit_code(&mut server, Duration::from_secs(20)), Some(0));
    let files = dir.path().join("ferry-data/files");
    let names: Vec<String> = std::fs::read_dir(&files)
        .expect("files root")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("unfinished")),
        "an aborted upload left {names:?}"
    );
    drop(data);
}

#[test]
fn a_second_sigterm_exits_at_once() {
    let dir = tempdir();
    let (mut server, addr, _, password) = start(dir.path(), "60");
    let mut c = login(addr, &password);
    let mut data = c.epsv(addr);
    c.expect("STOR slow.bin", 150);
    data.write_all(&[1u8; 1000]).expect("some data");
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "exited before the grace"
    );
    server.signal("TERM");
    assert_eq!(exit_code(&mut server, Duration::from_secs(10)), Some(0));
    assert!(!dir.path().join("ferry-data/files/slow.bin").exists());
}

/// paramiko: open a remote file, write half, signal the server (a line on stdout tells when), write
/// the rest after `pause` seconds, close. Prints `closed` or the error.
const SFTP_UPLOAD: &str = r#"
import sys, time, paramiko
port, password, pause = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
t = paramiko.Transport(('127.0.0.1', port))
t.connect(username='ferry', password=password)
s = paramiko.SFTPClient.from_transport(t)
f = s.open('sftp.bin', 'wb')
f.write(b'a' * 100000)
f.flush()
print('half', flush=True)
sys.stdin.readline()
time.sleep(pause)
try:
    f.write(b'b' * 100000)
    f.close()
    print('closed', flush=True)
except Exception as e:
    print('error', type(e).__name__, e, flush=True)
"#;

fn sftp_upload_across_sigterm(grace: &str, pause: &str) -> (String, Option<i32>, bool) {
    assert!(!common::skip_unless("python3"), "python3 is needed for paramiko");
    let found = Command::new("python3")
        .args(["-c", "import paramiko"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "python module paramiko is not installed; run scripts/install-test-deps.sh"
    );
    let dir = tempdir();
    let (mut server, _, port, password) = start(dir.path(), grace);
    let mut child = Command::new("python3")
        .args(["-c", SFTP_UPLOAD, &port.to_string(), &password, pause])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("half");
    assert_eq!(line.trim(), "half");
    server.signal("TERM");
    child.stdin.take().expect("stdin").write_all(b"go\n").expect("go");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).expect("result");
    let _ = child.wait();
    let code = exit_code(&mut server, Duration::from_secs(20));
    let exists = dir.path().join("ferry-data/files/sftp.bin").exists();
    if exists {
        let len = std::fs::metadata(dir.path().join("ferry-data/files/sftp.bin"))
            .expect("md")
            .len();
        assert_eq!(len, 200_000, "a partial SFTP upload was committed");
    }
    (rest.trim().to_owned(), code, exists)
}

#[test]
fn sftp_upload_running_at_sigterm_completes() {
    let (result, code, exists) = sftp_upload_across_sigterm("30", "0.5");
    assert_eq!(result, "closed");
    assert_eq!(code, Some(0));
    assert!(exists);
}

#[test]
fn sftp_upload_overrunning_the_grace_is_cut_off_and_leaves_no_file() {
    let (result, code, exists) = sftp_upload_across_sigterm("1", "3");
    assert!(result.starts_with("error"), "{result}");
    assert_eq!(code, Some(0));
    assert!(!exists);
}
