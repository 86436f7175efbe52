//! ferry's state cannot lie or leak: private files and directories, chosen passwords of a minimum length,
//! the first-start password shown only once every check passed, temporary uploads of a killed server
//! swept at the next start, and the start-up log naming the config file and data directory.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{ferry, tempdir, Control, Server, IO_TIMEOUT};

fn run(dir: &Path, args: &[&str]) -> Output {
    ferry(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ferry")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn files_created_by_serve_are_private() {
    let dir = tempdir();
    let d = dir.path();
    let mut server = Server::start(d, &[]);
    server.wait_listening();
    let data = d.join("ferry-data");
    for (path, want) in [
        (data.clone(), 0o700),
        (data.join("users.db"), 0o600),
        (data.join("tls"), 0o700),
        (data.join("tls/cert.pem"), 0o600),
        (data.join("tls/key.pem"), 0o600),
        (data.join("ssh_host_ed25519_key"), 0o600),
    ] {
        assert_eq!(mode(&path), want, "{}", path.display());
    }
    for journal in ["users.db-wal", "users.db-shm"] {
        let path = data.join(journal);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

#[test]
fn a_users_db_elsewhere_is_private_too() {
    let dir = tempdir();
    let d = dir.path();
    let out = run(
        d,
        &["--users-db", "elsewhere/deep/users.db", "user", "add", "ann"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&d.join("elsewhere")), 0o700);
    assert_eq!(mode(&d.join("elsewhere/deep")), 0o700);
    assert_eq!(mode(&d.join("elsewhere/deep/users.db")), 0o600);
    assert!(!d.join("ferry-data").exists(), "nothing in the default data dir");
}

fn add_with_stdin(dir: &Path, extra: &[&str], name: &str, password: &str) -> Output {
    let mut child = ferry(dir)
        .args(extra)
        .args(["user", "add", name, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write");
    child.wait_with_output().expect("wait")
}

#[test]
fn chosen_passwords_need_min_password_length_characters() {
    let dir = tempdir();
    let d = dir.path();
    // 11 characters: refused from the flag and from standard input, naming the setting.
    let out = run(d, &["user", "add", "bob", "--password", "eleven-char"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("11 characters") && err.contains("at least 12") && err.contains("min_password_length"),
        "{err}"
    );
    let out = add_with_stdin(d, &[], "bob", "eleven-char");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--password-stdin"),
        "{}",
        text(&out.stderr)
    );
    // 12 characters are enough; passwd checks the same.
    let out = add_with_stdin(d, &[], "bob", "twelve-chars");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(d, &["user", "passwd", "bob", "--password", "short"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("min_password_length"));
    // Generated passwords stay long.
    let out = run(d, &["user", "passwd", "bob"]);
    assert!(out.status.success());
    let generated = text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("password: ").map(str::to_owned))
        .expect("generated password");
    assert_eq!(generated.len(), 20);
    // The setting moves the bar, from the flag or the file.
    let out = run(
        d,
        &[
            "--min-password-length",
            "8",
            "user",
            "add",
            "cy",
            "--password",
            "eight-ch",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(d.join("ferry.toml"), "min_password_length = 20\n").expect("config");
    let out = run(d, &["user", "add", "dee", "--password", "nineteen-characters"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("at least 20"), "{}", text(&out.stderr));
    let out = run(d, &["--min-password-length", "3", "user", "list"]);
    assert!(!out.status.success(), "a minimum below 8 is refused");
}

#[test]
fn a_bad_certificate_on_first_start_does_not_use_up_the_password() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("cert.pem"), "not a certificate").expect("write");
    std::fs::write(d.join("key.pem"), "not a key").expect("write");
    let out = ferry(d)
        .args(["serve", "--listen", "127.0.0.1:0", "--sftp-listen", "127.0.0.1:0"])
        .args(["--ftps-certificate", "cert.pem", "--ftps-private-key", "key.pem"])
        .stdin(Stdio::null())
        .output()
        .expect("serve");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("ftps.certificate"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stdout).contains("password"),
        "no password shown before the checks pass: {}",
        text(&out.stdout)
    );

    // Fixed (here: the default self-signed certificate): the next start creates the user and shows it.
    let mut server = Server::start(d, &[]);
    let addr = server.wait_listening();
    let password = server.printed_password().expect("the password is shown now");
    let mut ctl = Control::connect_greeted(addr);
    ctl.expect("USER ferry", 331);
    ctl.expect(&format!("PASS {password}"), 230);
}

#[test]
fn serve_logs_the_config_file_and_data_dir_it_uses() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("ferry.toml"), "data_dir = \"state\"\n").expect("config");
    let mut server = Server::start(d, &[]);
    server.wait_listening();
    let log = stderr_logs(d);
    let root = d.canonicalize().expect("canonical");
    for want in [
        format!("config={}", root.join("ferry.toml").display()),
        format!("data_dir={}", root.join("state").display()),
        format!("users_db={}", root.join("state/users.db").display()),
    ] {
        assert!(log.contains(&want), "{want} not in {log}");
    }
}

fn stderr_logs(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        if entry.file_name().to_string_lossy().starts_with("serve-stderr-") {
            all.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    all
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ferry-upload.") && n.ends_with(".tmp"))
        .collect()
}

#[test]
fn temp_files_of_a_killed_upload_are_swept_at_the_next_start() {
    let dir = tempdir();
    let d = dir.path();
    let files = d.join("ferry-data/files");
    let mut server = Server::start(d, &[]);
    let addr = server.wait_listening();
    let password = server.printed_password().expect("password");
    std::fs::write(files.join("keep.tmp"), "not an upload").expect("write");

    let mut ctl = Control::connect_greeted(addr);
    ctl.expect("USER ferry", 331);
    ctl.expect(&format!("PASS {password}"), 230);
    ctl.expect("TYPE I", 200);
    let mut data: TcpStream = ctl.epsv(addr);
    ctl.expect("STOR big.bin", 150);
    data.write_all(&vec![7u8; 1 << 20]).expect("upload");
    data.flush().expect("flush");
    let deadline = Instant::now() + IO_TIMEOUT;
    while temp_files(&files).is_empty() {
        assert!(Instant::now() < deadline, "no temporary upload file appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL mid-upload: nothing gets to clean up.
    server.child.kill().expect("kill -9");
    server.child.wait().expect("wait");
    drop(data);
    let left = temp_files(&files);
    assert_eq!(left.len(), 1, "the killed upload left its temporary file");
    assert!(!files.join("big.bin").exists());

    let mut restarted = Server::start(d, &[]);
    restarted.wait_listening();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !temp_files(&files).is_empty() {
        assert!(
            Instant::now() < deadline,
            "temporary files not swept: {:?}",
            temp_files(&files)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(files.join("keep.tmp").exists(), "other files are kept");
    assert!(stderr_logs(d).contains("removed temporary files of unfinished uploads"));
}

/// On the embedded defaults, as a first-time user runs it: a plain upload larger than the part read
/// through user space (so the rest is spliced, the socket out of the event loop while data moves)
/// arrives whole under its name, leaves no temporary file behind, and downloads back the same.
#[test]
fn a_large_upload_on_the_defaults_arrives_whole_and_leaves_no_temporary_file() {
    common::require("curl");
    let dir = tempdir();
    let d = dir.path();
    let mut server = Server::start(d, &[]);
    let addr = server.wait_listening();
    let password = server.printed_password().expect("first-start password");
    let content = ferry_testkit::files::pseudo_random(24 << 20, 61);
    std::fs::write(d.join("big.bin"), &content).expect("source");
    let url = format!("ftp://127.0.0.1:{}/big.bin", addr.port());
    let user = format!("ferry:{password}");
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "60", "-u", &user])
            .args(args)
            .current_dir(d)
            .output()
            .expect("curl");
        assert!(out.status.success(), "curl {args:?}: {}", text(&out.stderr));
    };
    curl(&["-T", "big.bin", &url]);
    let files = d.join("ferry-data/files");
    assert!(
        std::fs::read(files.join("big.bin")).expect("stored") == content,
        "the stored file differs from what was sent"
    );
    let left: Vec<_> = std::fs::read_dir(&files)
        .expect("files")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "big.bin")
        .collect();
    assert!(left.is_empty(), "left in the files directory: {left:?}");
    curl(&["-o", "back.bin", &url]);
    assert!(
        std::fs::read(d.join("back.bin")).expect("downloaded") == content,
        "the download differs from the upload"
    );
}
