//! curl (OpenSSL) against ferry's FTPS: explicit `AUTH TLS` and implicit `ftps://`, TLS 1.3 and 1.2, the
//! certificate verified against the test CA file, byte-exact transfers and listings, the `522` refusal of
//! data connections that do not resume the control connection's TLS session (`--no-sessionid`), and 100
//! TLS 1.3 uploads in one session.

mod common;

use std::process::Command;

use common::{
    make_dir, names, run, sha256_file, skip_unless, wait_until, write_file, write_random_file, TestServer,
};

/// A curl command logged in as alice, verbose (dialogue and TLS details go to stderr), verifying the
/// server certificate against the test certificate, failing on errors.
fn curl(server: &TestServer) -> Command {
    let mut cmd = server.client("curl");
    cmd.args(["-sS", "-v", "--connect-timeout", "10", "--max-time", "50"])
        .arg("--cacert")
        .arg(server.cert_path())
        .arg("--user")
        .arg(format!("{}:{}", common::USER, common::PASSWORD));
    cmd
}

/// `ftp://127.0.0.1:PORT/path` (explicit FTPS with `--ssl-reqd`).
fn explicit_url(server: &TestServer, path: &str) -> String {
    format!("ftp://127.0.0.1:{}/{path}", server.port())
}

/// `ftps://127.0.0.1:PORT/path` on the implicit listener.
fn implicit_url(server: &TestServer, path: &str) -> String {
    format!("ftps://127.0.0.1:{}/{path}", server.implicit_port())
}

/// The TLS version curl reports for its connections (`SSL connection using TLSv1.3 / ...`).
fn negotiated(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.split("SSL connection using ").nth(1))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// The server replies curl printed (`< 226 ...`).
fn replies(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("< "))
        .map(str::to_owned)
        .collect()
}

/// Asserts curl negotiated `version` on every TLS connection it reported, and at least `min` of them
/// (control plus data connections).
fn assert_version(stderr: &str, version: &str, min: usize) {
    let got = negotiated(stderr);
    assert!(
        got.len() >= min && got.iter().all(|v| v == version),
        "expected {min}+ connections with {version}, curl reported {got:?}\n{stderr}"
    );
}

/// Upload, download and listing with `version_args` over `url_of`; returns nothing, panics on any mismatch.
fn round_trip(
    server: &TestServer,
    version_args: &[&str],
    version: &str,
    url_of: fn(&TestServer, &str) -> String,
    explicit: bool,
) {
    let tag = version.replace('.', "_");
    let up = server.local(&format!("up-{tag}.bin"));
    let hash = write_random_file(&up, 3 * 1024 * 1024 + 17);
    let mut cmd = curl(server);
    if explicit {
        cmd.arg("--ssl-reqd");
    }
    let r = run(
        cmd.args(version_args)
            .arg("-T")
            .arg(&up)
            .arg(url_of(server, &format!("dir-{tag}/up.bin")))
            .arg("--ftp-create-dirs"),
        None,
    );
    r.assert_success();
    // Control connection plus the data connection.
    assert_version(&r.stderr, version, 2);
    if explicit {
        assert!(
            replies(&r.stderr).iter().any(|l| l.starts_with("234 ")),
            "no AUTH TLS: {}",
            r.stderr
        );
    }
    assert!(
        r.stderr.lines().any(|l| l == "> PROT P"),
        "curl did not ask for protected data: {}",
        r.stderr
    );
    assert_eq!(sha256_file(&server.path(format!("dir-{tag}/up.bin"))), hash);

    let down = server.local(&format!("down-{tag}.bin"));
    let mut cmd = curl(server);
    if explicit {
        cmd.arg("--ssl-reqd");
    }
    let r = run(
        cmd.args(version_args)
            .arg("-o")
            .arg(&down)
            .arg(url_of(server, &format!("dir-{tag}/up.bin"))),
        None,
    );
    r.assert_success();
    assert_version(&r.stderr, version, 2);
    assert_eq!(sha256_file(&down), hash);

    let mut cmd = curl(server);
    if explicit {
        cmd.arg("--ssl-reqd");
    }
    let r = run(
        cmd.args(version_args)
            .arg("--list-only")
            .arg(url_of(server, &format!("dir-{tag}/"))),
        None,
    );
    r.assert_success();
    assert_version(&r.stderr, version, 2);
    assert_eq!(r.out().lines().collect::<Vec<_>>(), ["up.bin"], "{}", r.dump());
}

#[test]
fn explicit_tls13_round_trip() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    round_trip(&server, &["--tlsv1.3"], "TLSv1.3", explicit_url, true);
}

#[test]
fn explicit_tls12_round_trip() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    round_trip(
        &server,
        &["--tlsv1.2", "--tls-max", "1.2"],
        "TLSv1.2",
        explicit_url,
        true,
    );
}

#[test]
fn implicit_tls13_round_trip() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    round_trip(&server, &["--tlsv1.3"], "TLSv1.3", implicit_url, false);
}

#[test]
fn implicit_tls12_round_trip() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    round_trip(
        &server,
        &["--tlsv1.2", "--tls-max", "1.2"],
        "TLSv1.2",
        implicit_url,
        false,
    );
}

#[test]
fn a_wrong_ca_is_refused_so_the_certificate_check_is_real() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    // Another self-signed certificate: curl must refuse the server's.
    let other = ferry_ftpd::PemIdentity::self_signed(vec!["127.0.0.1".into()]).expect("certificate");
    let other_ca = server.local("other-ca.pem");
    write_file(&other_ca, &other.cert);
    let r = run(
        server
            .client("curl")
            .args([
                "-sS",
                "-v",
                "--connect-timeout",
                "10",
                "--max-time",
                "20",
                "--ssl-reqd",
            ])
            .arg("--cacert")
            .arg(&other_ca)
            .arg("--user")
            .arg(format!("{}:{}", common::USER, common::PASSWORD))
            .arg("--list-only")
            .arg(explicit_url(&server, "")),
        None,
    );
    // 60: peer certificate cannot be authenticated with known CA certificates.
    assert_eq!(r.code(), Some(60), "{}", r.dump());
}

#[test]
fn no_sessionid_data_connections_get_522_and_move_nothing() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    let content = common::pseudo_random(500_000, 7);
    write_file(&server.path("secret.bin"), &content);
    for version in [
        ["--tlsv1.3", "--tls-max", "1.3"],
        ["--tlsv1.2", "--tls-max", "1.2"],
    ] {
        let out = server.local(&format!("nosess{}.bin", version[2]));
        let r = run(
            curl(&server)
                .arg("--ssl-reqd")
                .arg("--no-sessionid")
                .args(version)
                .arg("-o")
                .arg(&out)
                .arg(explicit_url(&server, "secret.bin")),
            None,
        );
        assert_ne!(
            r.code(),
            Some(0),
            "download without session reuse must fail: {}",
            r.dump()
        );
        let got = std::fs::read(&out).unwrap_or_default();
        assert!(got.is_empty(), "{} bytes arrived", got.len());
        // curl gives up on the dropped data connection before reading the 522 (exit 18, "transfer closed
        // with 500000 bytes remaining"); ftps_ftplib and ftps_security check the 522 itself.
        assert!(
            !r.stderr.contains("SSL re-using session ID") && r.stderr.contains("> RETR secret.bin"),
            "curl must have tried the transfer without offering the session: {}",
            r.stderr
        );

        let up = server.local("nosess-up.bin");
        write_file(&up, &content);
        let name = format!("nosess-up{}.bin", version[2]);
        let r = run(
            curl(&server)
                .arg("--ssl-reqd")
                .arg("--no-sessionid")
                .args(version)
                .arg("-T")
                .arg(&up)
                .arg(explicit_url(&server, &name)),
            None,
        );
        assert_ne!(
            r.code(),
            Some(0),
            "upload without session reuse must fail: {}",
            r.dump()
        );
        assert!(
            !r.stderr.contains("SSL re-using session ID") && r.stderr.contains(&format!("> STOR {name}")),
            "curl must have tried the upload without offering the session: {}",
            r.stderr
        );
        assert!(!server.path(&name).exists(), "refused upload created {name}");
    }
    // Neither the refused uploads nor their temporary files are left behind. curl leaves when the data
    // connection drops, which can be a moment before the server has removed the temporary file.
    let left = || -> Vec<_> {
        std::fs::read_dir(server.root())
            .expect("read root")
            .map(|e| e.expect("entry").file_name())
            .collect()
    };
    assert!(
        wait_until(std::time::Duration::from_secs(5), || left() == ["secret.bin"]),
        "files left after refused uploads: {:?}",
        left()
    );
}

/// curl with OpenSSL uses each TLS 1.3 ticket once (curl issue #4654), so several transfers over one
/// control connection need a fresh ticket for each data connection. Downloads and listings get one on their
/// own data connection; this checks that every data connection of such a session resumes.
#[test]
fn tls13_downloads_and_listings_in_one_session_all_resume() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    let names = ["a.bin", "b.bin", "c.bin"];
    let hashes: Vec<String> = names
        .iter()
        .map(|n| write_random_file(&server.path(n), 700_000))
        .collect();
    let mut cmd = curl(&server);
    cmd.args(["--ssl-reqd", "--tlsv1.3"]);
    for n in names {
        cmd.arg("-o")
            .arg(server.local(&format!("down-{n}")))
            .arg(explicit_url(&server, n));
    }
    // `--next` keeps the connection but resets the options: the listing's own options follow.
    let base = curl(&server);
    cmd.arg("--next")
        .args(base.get_args())
        .args(["--ssl-reqd", "--tlsv1.3", "--list-only"])
        .arg(explicit_url(&server, ""));
    let r = run(&mut cmd, None);
    r.assert_success();
    let logins = r.stderr.lines().filter(|l| l.starts_with("> USER ")).count();
    assert_eq!(logins, 1, "one control connection: {}", r.stderr);
    assert!(
        !replies(&r.stderr).iter().any(|l| l.starts_with("522 ")),
        "{}",
        r.stderr
    );
    // A resumed handshake sends no certificate: only the control connection's handshake has one.
    let certificates = r.stderr.matches("TLS handshake, Certificate (11)").count();
    assert_eq!(certificates, 1, "full handshakes: {}", r.stderr);
    assert_version(&r.stderr, "TLSv1.3", 5);
    for (n, hash) in names.iter().zip(&hashes) {
        assert_eq!(&sha256_file(&server.local(&format!("down-{n}"))), hash, "{n}");
    }
    let mut listed: Vec<String> = r.out().lines().map(str::to_owned).collect();
    listed.sort();
    assert_eq!(listed, names);
}

/// 100 files of 1 MiB under `local/many`; returns their names and SHA-256s.
fn hundred_files(server: &TestServer) -> Vec<(String, String)> {
    let src = server.local("many");
    std::fs::create_dir_all(&src).expect("mkdir");
    (0..100)
        .map(|i| {
            let name = format!("f{i:03}.bin");
            let hash = write_random_file(&src.join(&name), 1024 * 1024);
            (name, hash)
        })
        .collect()
}

fn assert_hundred_stored(server: &TestServer, files: &[(String, String)]) {
    for (name, hash) in files {
        let p = server.path(format!("many/{name}"));
        assert_eq!(&sha256_file(&p), hash, "{}", p.display());
    }
    assert_eq!(names(&server.path("many")).len(), 100);
}

/// One curl process, one control connection, several data connections that each resume its TLS 1.2
/// session. Only five: curl 7.88 idles a second before every data connection of a reused TLS control
/// connection (its own timer, before it even connects), so the 100-upload loops in one session are run with
/// lftp and Python instead.
#[test]
fn tls12_uploads_in_one_session_all_resume_and_are_byte_exact() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    make_dir(&server.path("many"));
    let src = server.local("many");
    std::fs::create_dir_all(&src).expect("mkdir");
    let files: Vec<(String, String)> = (0..5)
        .map(|i| {
            let name = format!("f{i}.bin");
            let hash = write_random_file(&src.join(&name), 1024 * 1024);
            (name, hash)
        })
        .collect();
    let mut cmd = curl(&server);
    cmd.args(["--ssl-reqd", "--tlsv1.2", "--tls-max", "1.2"]);
    for (name, _) in &files {
        cmd.arg("-T")
            .arg(src.join(name))
            .arg(explicit_url(&server, &format!("many/{name}")));
    }
    let r = run(&mut cmd, None);
    r.assert_success();
    let logins = r.stderr.lines().filter(|l| l.starts_with("> USER ")).count();
    assert_eq!(logins, 1, "one control connection for all uploads");
    assert_version(&r.stderr, "TLSv1.2", 6);
    let reused = r.stderr.matches("SSL re-using session ID").count();
    assert_eq!(reused, 5, "every data connection offers the control session");
    let done = replies(&r.stderr)
        .iter()
        .filter(|l| l.starts_with("226 "))
        .count();
    assert_eq!(done, 5, "226 replies");
    for (name, hash) in &files {
        assert_eq!(&sha256_file(&server.path(format!("many/{name}"))), hash, "{name}");
    }
}

/// 100 TLS 1.3 uploads, one per curl process (4 at a time). curl 7.88 with OpenSSL uses a TLS 1.3 session
/// only once, so a second transfer over a reused control connection cannot resume and gets 522 (curl
/// issue #4654, the same with vsftpd); one upload per session is how curl users transfer under TLS 1.3.
#[test]
fn one_hundred_tls13_uploads_are_byte_exact() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    make_dir(&server.path("many"));
    let files = hundred_files(&server);
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((name, _)) = files.get(i) else { break };
                let r = run(
                    curl(&server)
                        .args(["--ssl-reqd", "--tlsv1.3"])
                        .arg("-T")
                        .arg(server.local(&format!("many/{name}")))
                        .arg(explicit_url(&server, &format!("many/{name}"))),
                    None,
                );
                r.assert_success();
                assert_version(&r.stderr, "TLSv1.3", 2);
                assert!(
                    replies(&r.stderr).iter().any(|l| l.starts_with("226 ")),
                    "{}",
                    r.stderr
                );
            });
        }
    });
    assert_hundred_stored(&server, &files);
}
