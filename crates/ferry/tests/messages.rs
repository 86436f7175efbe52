//! Every start-up and command-line error names the setting or flag involved and the cause, once. One table:
//! each row prepares a directory, runs the real binary and checks its exit code and standard error.
//!
//! Rows marked `as_nobody` run as an unprivileged user (with `setpriv` when the tests run as root), because
//! root may bind port 21 and write anywhere.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{ferry, tempdir, BIN};

/// One row of the table.
struct Case {
    name: &'static str,
    /// Prepares the directory; returns extra words substituted for `{}` in `args` (e.g. a busy port).
    setup: fn(&Path) -> String,
    args: &'static [&'static str],
    as_nobody: bool,
    /// Expected exit code.
    code: i32,
    /// Each must appear in the error line.
    says: &'static [&'static str],
}

fn nothing(_: &Path) -> String {
    String::new()
}

/// A port on 127.0.0.1 that stays in use for the rest of the test process.
fn busy_port(_: &Path) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::mem::forget(listener);
    port.to_string()
}

fn open_to_all(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn readonly_cwd(dir: &Path) -> String {
    open_to_all(dir);
    String::new()
}

fn writable_state(dir: &Path) -> String {
    open_to_all(dir);
    std::fs::create_dir(dir.join("state")).expect("mkdir");
    std::fs::set_permissions(dir.join("state"), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    String::new()
}

fn readonly_data_dir(dir: &Path) -> String {
    open_to_all(dir);
    std::fs::create_dir(dir.join("ferry-data")).expect("mkdir");
    open_to_all(&dir.join("ferry-data"));
    String::new()
}

fn unreadable_db(dir: &Path) -> String {
    open_to_all(dir);
    let out = ferry(dir)
        .args(["user", "add", "alice", "--password", "alice-password"])
        .output()
        .expect("user add");
    assert!(out.status.success());
    open_to_all(&dir.join("ferry-data"));
    String::new()
}

fn existing_db(dir: &Path) -> String {
    let out = ferry(dir)
        .args(["user", "add", "alice", "--password", "alice-password"])
        .output()
        .expect("user add");
    assert!(out.status.success());
    String::new()
}

fn corrupt_db(dir: &Path) -> String {
    std::fs::create_dir(dir.join("ferry-data")).expect("mkdir");
    std::fs::write(
        dir.join("ferry-data/users.db"),
        "this is a text file, not an SQLite database, but long enough to look like one",
    )
    .expect("write");
    String::new()
}

fn openssl_pair(dir: &Path, name: &str) {
    require("openssl");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args([
            "-keyout",
            &format!("{name}-key.pem"),
            "-out",
            &format!("{name}-cert.pem"),
        ])
        .args(["-subj", "/CN=localhost", "-days", "2"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
}

fn mismatched_certificates(dir: &Path) -> String {
    openssl_pair(dir, "a");
    openssl_pair(dir, "b");
    String::new()
}

fn garbage_certificate(dir: &Path) -> String {
    std::fs::write(dir.join("bad-cert.pem"), "hello").expect("write");
    openssl_pair(dir, "a");
    String::new()
}

fn files_root_is_a_file(dir: &Path) -> String {
    std::fs::write(dir.join("plain-file"), "x").expect("write");
    String::new()
}

const SERVE: &[&str] = &["serve", "--listen", "127.0.0.1:0", "--sftp-listen", "127.0.0.1:0"];

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "FTP port in use",
            setup: busy_port,
            args: &[
                "serve",
                "--listen",
                "127.0.0.1:{}",
                "--sftp-listen",
                "127.0.0.1:0",
            ],
            as_nobody: false,
            code: 1,
            says: &["port {} is in use on 127.0.0.1", "`listen` / `--listen`"],
        },
        Case {
            name: "SFTP port in use",
            setup: busy_port,
            args: &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--sftp-listen",
                "127.0.0.1:{}",
            ],
            as_nobody: false,
            code: 1,
            says: &["port {} is in use", "`sftp.listen` / `--sftp-listen`"],
        },
        Case {
            name: "privileged port",
            setup: writable_state,
            args: &[
                "--data-dir",
                "state",
                "serve",
                "--listen",
                "127.0.0.1:21",
                "--sftp-listen",
                "127.0.0.1:0",
            ],
            as_nobody: true,
            code: 1,
            says: &[
                "binding port 21 needs root or CAP_NET_BIND_SERVICE",
                "`listen` / `--listen`",
            ],
        },
        Case {
            name: "data directory cannot be created",
            setup: readonly_cwd,
            args: SERVE,
            as_nobody: true,
            code: 1,
            says: &[
                "cannot create the data directory ferry-data: permission denied",
                "`data_dir` / `--data-dir`",
            ],
        },
        Case {
            name: "read-only data directory",
            setup: readonly_data_dir,
            args: SERVE,
            as_nobody: true,
            code: 1,
            says: &[
                "cannot create the user database ferry-data/users.db: permission denied",
                "`users_db` / `--users-db`",
            ],
        },
        Case {
            name: "unreadable user database",
            setup: unreadable_db,
            args: &["user", "list"],
            as_nobody: true,
            code: 1,
            says: &["cannot read the user database ferry-data/users.db: permission denied"],
        },
        Case {
            name: "no user database",
            setup: nothing,
            args: &["ban", "list"],
            as_nobody: false,
            code: 1,
            says: &[
                "the user database ferry-data/users.db",
                "does not exist",
                "--users-db",
            ],
        },
        Case {
            name: "corrupt user database",
            setup: corrupt_db,
            args: &["user", "list"],
            as_nobody: false,
            code: 1,
            says: &["cannot open the user database ferry-data/users.db: file is not a database"],
        },
        Case {
            name: "certificate and key do not match",
            setup: mismatched_certificates,
            args: &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--sftp-listen",
                "127.0.0.1:0",
                "--ftps-certificate",
                "a-cert.pem",
                "--ftps-private-key",
                "b-key.pem",
            ],
            as_nobody: false,
            code: 1,
            says: &[
                "a-cert.pem and the private key b-key.pem do not match (ftps.certificate, ftps.private_key)",
            ],
        },
        Case {
            name: "missing certificate",
            setup: nothing,
            args: &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--sftp-listen",
                "127.0.0.1:0",
                "--ftps-certificate",
                "missing.pem",
                "--ftps-private-key",
                "missing-key.pem",
            ],
            as_nobody: false,
            code: 1,
            says: &[
                "cannot read the FTPS certificate missing.pem: it does not exist",
                "`ftps.certificate` / `--ftps-certificate`",
            ],
        },
        Case {
            name: "not a certificate",
            setup: garbage_certificate,
            args: &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--sftp-listen",
                "127.0.0.1:0",
                "--ftps-certificate",
                "bad-cert.pem",
                "--ftps-private-key",
                "a-key.pem",
            ],
            as_nobody: false,
            code: 1,
            says: &["no PEM certificate in bad-cert.pem", "`ftps.certificate`"],
        },
        Case {
            name: "files root is a file",
            setup: files_root_is_a_file,
            args: &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--sftp-listen",
                "127.0.0.1:0",
                "--files-root",
                "plain-file",
            ],
            as_nobody: false,
            code: 1,
            says: &[
                "cannot open the files root plain-file",
                "`files_root` / `--files-root`",
            ],
        },
        Case {
            name: "missing host key",
            setup: nothing,
            args: &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--sftp-listen",
                "127.0.0.1:0",
                "--sftp-host-keys",
                "no-such-key",
            ],
            as_nobody: false,
            code: 1,
            says: &[
                "SSH host key no-such-key",
                "it does not exist",
                "`sftp.host_keys` / `--sftp-host-keys`",
            ],
        },
        Case {
            name: "missing key file for user key add",
            setup: existing_db,
            args: &["user", "key", "add", "alice", "--file", "no-such.pub"],
            as_nobody: false,
            code: 1,
            says: &["cannot read --file no-such.pub: it does not exist"],
        },
        Case {
            name: "missing config file",
            setup: nothing,
            args: &["--config", "nope.toml", "user", "list"],
            as_nobody: false,
            code: 1,
            says: &[
                "cannot read the config file nope.toml: it does not exist",
                "--config",
            ],
        },
        Case {
            name: "password too short",
            setup: existing_db,
            args: &["user", "passwd", "alice", "--password", "short"],
            as_nobody: false,
            code: 1,
            says: &[
                "has 5 characters; at least 12 are required",
                "`min_password_length`",
            ],
        },
    ]
}

#[test]
fn errors_name_the_setting_and_the_cause_once() {
    let mut failures = Vec::new();
    for case in cases() {
        let dir = tempdir();
        let word = (case.setup)(dir.path());
        let args: Vec<String> = case.args.iter().map(|a| a.replace("{}", &word)).collect();
        let out = run(dir.path(), &args, case.as_nobody);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("ferry: error: "))
            .collect();
        let mut problems = Vec::new();
        if out.status.code() != Some(case.code) {
            problems.push(format!(
                "exit code {:?}, expected {}",
                out.status.code(),
                case.code
            ));
        }
        if errors.len() != 1 {
            problems.push(format!("{} error lines", errors.len()));
        }
        let line = errors.first().copied().unwrap_or_default();
        for want in case.says {
            let want = want.replace("{}", &word);
            if !line.contains(&want) {
                problems.push(format!("does not say {want:?}"));
            }
        }
        for noise in [
            "os error",
            "(code: ",
            "KeyMismatch",
            "error returned from database",
        ] {
            if line.contains(noise) {
                problems.push(format!("contains {noise:?}"));
            }
        }
        if let Some(repeated) = repeated_part(line) {
            problems.push(format!("repeats {repeated:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n  stderr: {stderr}",
                case.name,
                problems.join("; ")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// A `: `-separated part of the message that occurs twice.
fn repeated_part(line: &str) -> Option<String> {
    let parts: Vec<&str> = line.split(": ").map(str::trim).filter(|p| p.len() > 3).collect();
    for (i, p) in parts.iter().enumerate() {
        if parts[i + 1..].contains(p) {
            return Some((*p).to_owned());
        }
    }
    None
}

#[test]
fn a_closed_standard_output_is_not_an_error() {
    require("sh");
    let dir = tempdir();
    existing_db(dir.path());
    // `true` exits at once without reading: ferry's writes meet a closed pipe.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for i in 1 2 3 4 5; do \"{BIN}\" user show alice | true; s=$?; \"{BIN}\" user list | true; \
             [ \"$s\" = 0 ] || exit 9; done"
        ))
        .current_dir(dir.path())
        .env("SHELLOPTS", "")
        .stdin(Stdio::null())
        .output()
        .expect("sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status.code());
    assert!(
        !stderr.contains("Broken pipe") && !stderr.contains("error"),
        "{stderr}"
    );
}

/// Runs ferry in `dir`, as an unprivileged user if asked; a server that unexpectedly starts is stopped
/// after a while (and then fails its row).
fn run(dir: &Path, args: &[String], as_nobody: bool) -> Output {
    let mut cmd = if as_nobody && is_root() {
        require("setpriv");
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            BIN,
        ]);
        for (key, _) in std::env::vars_os() {
            if key
                .to_str()
                .is_some_and(|k| k.starts_with("FERRY_") || k == "RUST_LOG")
            {
                c.env_remove(key);
            }
        }
        c.current_dir(dir);
        c
    } else {
        ferry(dir)
    };
    let mut child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferry");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Fails (never skips) when a program the test needs is missing.
fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()));
    assert!(
        found,
        "`{program}` is not installed; run scripts/install-test-deps.sh"
    );
}
