//! `ferry serve` with SFTP: the host key is generated once and reused, its fingerprint printed,
//! and a key added with `ferry user key add` logs in with OpenSSH sftp.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

use common::{ferry, Server};

/// `ferry serve` with its SFTP address, read from the announcements.
struct Serve {
    server: Server,
    sftp: SocketAddr,
}

impl Serve {
    fn start(dir: &Path) -> Serve {
        Serve::start_with(dir, &[])
    }

    fn start_with(dir: &Path, extra: &[&str]) -> Serve {
        let mut server = Server::start(dir, extra);
        let sftp = server
            .wait_for("ferry: SFTP listening on ")
            .parse()
            .expect("address");
        Serve { server, sftp }
    }

    fn printed(&self) -> &[String] {
        &self.server.printed
    }

    fn fingerprint(&self) -> String {
        let line = self
            .printed()
            .iter()
            .find(|l| l.starts_with("ferry: SFTP host key: ssh-ed25519 SHA256:"))
            .unwrap_or_else(|| panic!("no host key line: {:?}", self.printed()));
        line.split_whitespace().nth(5).expect("fingerprint").to_owned()
    }
}

#[test]
fn host_key_is_generated_once_and_user_keys_log_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Serve::start(dir.path());
    let fingerprint = first.fingerprint();
    assert!(
        fingerprint.starts_with("SHA256:") && fingerprint.len() > 40,
        "{fingerprint}"
    );
    assert!(
        first.printed().iter().any(|l| l.contains("(generated)")),
        "{:?}",
        first.printed()
    );
    let key_file = dir.path().join("ferry-data/ssh_host_ed25519_key");
    assert!(key_file.is_file());
    drop(first);

    let second = Serve::start(dir.path());
    assert_eq!(second.fingerprint(), fingerprint, "the key is reused");
    assert!(!second.printed().iter().any(|l| l.contains("(generated)")));

    // The fingerprint is OpenSSH's.
    common::require("sftp");
    common::require("ssh-keygen");
    {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(&key_file)
            .output()
            .expect("ssh-keygen");
        assert!(String::from_utf8_lossy(&out.stdout).contains(&fingerprint));
    }

    let client_key = dir.path().join("id_ed25519");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ferry@test", "-f"])
        .arg(&client_key)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
    let public = std::fs::read_to_string(client_key.with_extension("pub")).expect("pub");
    let added = ferry(dir.path())
        .args(["user", "key", "add", "ferry"])
        .arg(public.trim())
        .output()
        .expect("key add");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let listed = ferry(dir.path())
        .args(["user", "key", "list", "ferry"])
        .output()
        .expect("list");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("ssh-ed25519 ferry@test"), "{listed}");
    let client_fingerprint = listed.split_whitespace().next().expect("fingerprint").to_owned();

    std::fs::write(dir.path().join("ferry-data/files/hello.txt"), "hello").expect("write");
    let sftp = |dir: &Path| {
        let mut child = Command::new("sftp")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "IdentityAgent=none",
                "-o",
                "LogLevel=ERROR",
                "-i",
            ])
            .arg(&client_key)
            .args([
                "-P",
                &second.sftp.port().to_string(),
                "-b",
                "-",
                "ferry@127.0.0.1",
            ])
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sftp");
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"get hello.txt got.txt\n").expect("script");
        drop(stdin);
        child.wait().expect("wait")
    };
    assert!(sftp(dir.path()).success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("got.txt")).expect("got"),
        "hello"
    );

    let removed = ferry(dir.path())
        .args(["user", "key", "del", "ferry", &client_fingerprint])
        .output()
        .expect("key del");
    assert!(removed.status.success());
    std::fs::remove_file(dir.path().join("got.txt")).expect("rm");
    assert!(!sftp(dir.path()).success(), "a removed key no longer logs in");
}

/// FTP and SFTP share the login defender: an address banned with `ferry ban add` gets no SSH banner,
/// only a closed connection, and after `ferry ban del` it is served again.
#[test]
fn a_banned_address_is_refused_by_sftp_as_by_ftp() {
    use std::io::Read;
    let dir = tempfile::tempdir().expect("tempdir");
    // The first start creates the database; the ban is stored before the second one starts.
    drop(Serve::start(dir.path()));
    let banned = ferry(dir.path())
        .args(["ban", "add", "127.0.0.1", "--secs", "600"])
        .output()
        .expect("ban add");
    assert!(
        banned.status.success(),
        "{}",
        String::from_utf8_lossy(&banned.stderr)
    );
    // Loopback is banned only where it is scored.
    let serve = Serve::start_with(dir.path(), &["--defender-score-loopback"]);
    // What the server sends first.
    let first_bytes = |addr: SocketAddr| {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    // A banned client is told why in an SSH disconnect message, then the connection is closed.
    let ssh = std::process::Command::new("ssh")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-p",
            &serve.sftp.port().to_string(),
            "ferry@127.0.0.1",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("ssh (install openssh-client with scripts/install-test-deps.sh)");
    let stderr = String::from_utf8_lossy(&ssh.stderr);
    assert!(stderr.contains("your address is banned until"), "{stderr}");
    drop(serve);
    let unbanned = ferry(dir.path())
        .args(["ban", "del", "127.0.0.1"])
        .output()
        .expect("ban del");
    assert!(
        unbanned.status.success(),
        "{}",
        String::from_utf8_lossy(&unbanned.stderr)
    );
    let serve = Serve::start_with(dir.path(), &["--defender-score-loopback"]);
    let got = first_bytes(serve.sftp);
    assert!(
        got.starts_with("SSH-2.0-") && !got.contains("banned"),
        "not served after the ban was lifted: {got:?}"
    );
}
