//! The README works as written: its Quick start curl and lftp lines, with the printed password (and the
//! test's port for 2121) substituted, succeed against a fresh `ferry serve` with the default settings, run
//! from the directory the server was started in. So do the client hints the server prints at start.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{tempdir, Server};

const README: &str = include_str!("../../../README.md");
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The `curl` or `lftp` command lines of the Quick start's `sh` blocks, comments removed.
fn readme_commands(program: &str) -> Vec<String> {
    let start = README.find("## Quick start").expect("Quick start section");
    let section = &README[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let mut in_sh = false;
    let mut lines = Vec::new();
    for line in section[..end].lines() {
        match line.trim() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            l if in_sh && l.starts_with(&format!("{program} ")) => lines.push(strip_comment(l)),
            _ => {}
        }
    }
    lines
}

/// The line without a trailing `# comment` outside single quotes.
fn strip_comment(line: &str) -> String {
    let mut quoted = false;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' => quoted = !quoted,
            b'#' if !quoted && i > 0 && bytes[i - 1] == b' ' => return line[..i].trim_end().to_owned(),
            _ => {}
        }
    }
    line.to_owned()
}

/// Fails (never skips) when a client is missing.
fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()));
    assert!(
        found,
        "`{program}` is not installed; run scripts/install-test-deps.sh"
    );
}

/// Runs `line` with `sh -c` in `dir` (HOME there too, so no personal client settings apply).
#[track_caller]
fn run_line(dir: &Path, line: &str) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh");
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "failed ({:?}): {line}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn readme_curl_and_lftp_lines_work_against_a_fresh_server() {
    require("curl");
    require("lftp");
    let curl = readme_commands("curl");
    let lftp = readme_commands("lftp");
    assert!(
        curl.len() >= 4 && lftp.len() >= 2,
        "README lines: {curl:?} {lftp:?}"
    );

    let dir = tempdir();
    let d = dir.path();
    let mut server = Server::start(d, &[]);
    let addr = server.wait_listening();
    let password = server.printed_password().expect("first-start password");
    let port = addr.port().to_string();
    let fill = |line: &str| line.replace("PASSWORD", &password).replace("2121", &port);

    std::fs::write(d.join("notes.txt"), "notes from the README test\n").expect("notes");
    std::fs::create_dir_all(d.join("site/css")).expect("site");
    std::fs::write(d.join("site/index.html"), "<h1>hi</h1>\n").expect("site");
    std::fs::write(d.join("site/css/site.css"), "h1 {}\n").expect("site");
    let files = d.join("ferry-data/files");

    for line in &curl {
        run_line(d, &fill(line));
    }
    assert_eq!(
        std::fs::read(d.join("copy.txt")).expect("curl's copy"),
        std::fs::read(d.join("notes.txt")).expect("notes")
    );
    // The lftp lines are the alternative to the curl ones: a fresh copy.txt for them.
    std::fs::remove_file(d.join("copy.txt")).expect("remove");
    std::fs::remove_file(files.join("notes.txt")).expect("remove");
    for line in &lftp {
        run_line(d, &fill(line));
    }
    assert_eq!(
        std::fs::read(d.join("copy.txt")).expect("lftp's copy"),
        std::fs::read(d.join("notes.txt")).expect("notes")
    );
    assert_eq!(
        std::fs::read(files.join("site/css/site.css")).expect("mirrored tree"),
        b"h1 {}\n"
    );

    // The hints printed at start work as printed, too.
    let hints: Vec<String> = server
        .printed
        .iter()
        .filter_map(|l| l.strip_prefix("ferry:   "))
        .filter(|l| l.starts_with("curl ") || l.starts_with("lftp "))
        .map(|l| l.replace("PASSWORD", &password))
        .collect();
    assert_eq!(hints.len(), 2, "{:?}", server.printed);
    for hint in &hints {
        run_line(d, hint);
    }
    // lftp shows the SHA-1 fingerprint ferry prints, so the two can be compared.
    let sha1 = server
        .printed
        .iter()
        .find_map(|l| l.strip_prefix("ferry: FTPS certificate SHA-1 "))
        .and_then(|l| l.split_whitespace().next())
        .expect("SHA-1 line")
        .to_owned();
    let out = Command::new("lftp")
        .args(["-u", &format!("ferry,{password}"), "-p", &port])
        .args(["-e", "set net:max-retries 1; ls; bye", "127.0.0.1"])
        .current_dir(d)
        .env("HOME", d)
        .stdin(Stdio::null())
        .output()
        .expect("lftp");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "untrusted certificate refused");
    assert!(stderr.contains(&sha1), "lftp says {stderr}, ferry printed {sha1}");
    let trusted = format!(
        "lftp -u ferry,{password} -p {port} -e 'set ssl:verify-certificate/{sha1} no; ls; bye' 127.0.0.1"
    );
    run_line(d, &trusted);
}

#[test]
fn comments_are_stripped_outside_quotes_only() {
    assert_eq!(strip_comment("curl x   # list"), "curl x");
    assert_eq!(
        strip_comment("lftp -e 'a # b; bye' h # c"),
        "lftp -e 'a # b; bye' h"
    );
    assert_eq!(strip_comment("curl x"), "curl x");
}
