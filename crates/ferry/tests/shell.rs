//! `ferry shell` against `ferry serve`: a script of every command on standard input (FTP and SFTP),
//! one reply line per command, a failing command makes the exit code non-zero; and the terminal path
//! under `script` (util-linux): prompt shown, a command run, quit.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

use common::{ferry, require, run_timeout, Run, Server, BIN};

struct Serve {
    _server: Server,
    ftp: SocketAddr,
    sftp: SocketAddr,
    password: String,
}

fn serve(dir: &Path) -> Serve {
    let mut server = Server::start(dir, &[]);
    let ftp = server.wait_listening();
    let sftp = server
        .wait_for("ferry: SFTP listening on ")
        .parse()
        .expect("addr");
    let password = server.printed_password().expect("first-start password");
    for d in ["home", "local", "local/down"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    Serve {
        _server: server,
        ftp,
        sftp,
        password,
    }
}

/// Runs `ferry shell ARGS` in `dir/local` with `script` on standard input.
fn shell(dir: &Path, s: &Serve, args: &[&str], script: &str) -> Run {
    let mut cmd = ferry(&dir.join("local"));
    cmd.env("HOME", dir.join("home"))
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("SSH_AUTH_SOCK")
        .env("FERRY_PASSWORD", &s.password)
        .arg("shell")
        .args(args);
    run_timeout(&mut cmd, Some(script.as_bytes()), Duration::from_secs(120))
}

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Every command of the shell, in a script; checks the files on both sides and one reply per command.
fn every_command(scheme: &str) {
    let dir = common::tempdir();
    let d = dir.path();
    let s = serve(d);
    let files = d.join("ferry-data/files");
    let local = d.join("local");
    std::fs::write(local.join("one.dat"), bytes(3_000_000, 1)).expect("write");
    std::fs::write(local.join("two.dat"), bytes(1000, 2)).expect("write");
    std::fs::write(local.join("skip.txt"), b"not matched").expect("write");
    std::fs::write(local.join("single.bin"), bytes(5000, 3)).expect("write");
    let addr = if scheme == "sftp" { s.sftp } else { s.ftp };
    let url = format!("{scheme}://ferry@{addr}/");
    let script = format!(
        "\
# a comment, then a blank line: no reply for either

help
help mget
binary
passive
hash
status
user ferry {}
mkdir work
cd work
pwd
mput *.dat
put single.bin 'copy of single.bin'
hash
ls
dir
rename two.dat renamed.dat
lcd down
mget *.dat
get 'copy of single.bin' got.bin
delete one.dat
cd ..
pwd
lcd ..
mkdir gone
rmdir gone
ls work
bye
",
        s.password
    );
    let trust = ["--trust-on-first-use"];
    let r = shell(d, &s, &[&url, trust[0]], &script);
    r.assert_success();
    let out = r.out();
    let replies: Vec<&str> = out
        .lines()
        .map(|l| l.trim_start_matches('#'))
        .filter(|l| l.starts_with("ok: ") || l.starts_with("error: "))
        .collect();
    // open (from the URL) + 27 commands, bye included; no errors.
    assert_eq!(replies.len(), 28, "{}", r.dump());
    assert!(replies.iter().all(|l| l.starts_with("ok: ")), "{}", r.dump());
    assert!(out.contains("ok: remote directory is /work\n"), "{out}");
    assert!(out.contains("ok: remote directory is /\n"), "{out}");
    assert!(out.contains("ok: 2 files sent (3001000 bytes)"), "{out}");
    assert!(out.contains("ok: 2 files received (3001000 bytes)"), "{out}");
    assert!(out.contains("ok: mget GLOB…: download the remote files"), "{out}");
    // hash marks: two for the 3,000,000-byte file (one per full MiB), then a line break.
    assert!(out.lines().any(|l| l == "##"), "{out}");
    assert!(
        out.contains("ok: connected to ") && out.matches("ok: connected to ").count() == 2,
        "{out}"
    );
    // dir shows the long form with sizes.
    assert!(
        out.lines()
            .any(|l| l.starts_with("- ") && l.ends_with(" one.dat") && l.contains("3000000")),
        "{out}"
    );

    // The remote side: mput, put under a quoted name, rename, delete, rmdir.
    let work = files.join("work");
    assert!(!work.join("one.dat").exists(), "deleted");
    assert_eq!(
        std::fs::read(work.join("renamed.dat")).expect("renamed"),
        bytes(1000, 2)
    );
    assert!(!work.join("two.dat").exists());
    assert!(!work.join("skip.txt").exists(), "mput *.dat matched skip.txt");
    assert_eq!(
        std::fs::read(work.join("copy of single.bin")).expect("put"),
        bytes(5000, 3)
    );
    assert!(!files.join("gone").exists());
    // The local side: mget into the lcd directory, get under another name.
    let down = local.join("down");
    assert_eq!(
        std::fs::read(down.join("one.dat")).expect("mget"),
        bytes(3_000_000, 1)
    );
    assert_eq!(
        std::fs::read(down.join("renamed.dat")).expect("mget"),
        bytes(1000, 2)
    );
    assert_eq!(std::fs::read(down.join("got.bin")).expect("get"), bytes(5000, 3));
    // The last `ls work` lists what is left.
    let tail: Vec<&str> = out.lines().rev().take(5).collect();
    assert!(
        tail.contains(&"renamed.dat") && tail.contains(&"copy of single.bin"),
        "{out}"
    );
}

#[test]
fn ftp_script_runs_every_command() {
    every_command("ftp");
}

#[test]
fn sftp_script_runs_every_command() {
    every_command("sftp");
}

/// A failing command gets an `error:` reply; the script goes on; the exit code says it failed.
#[test]
fn failures_reply_once_and_set_the_exit_code() {
    let dir = common::tempdir();
    let d = dir.path();
    let s = serve(d);
    let url = format!("ftp://ferry@{}/", s.ftp);
    let r = shell(
        d,
        &s,
        &[&url],
        "get missing.bin\nfrobnicate\nrename only-one\ncd nowhere\nmget *.none\nput 'unclosed\nmkdir ok-dir\n",
    );
    let out = r.out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{}", r.dump());
    assert!(lines[0].starts_with("ok: connected to"), "{out}");
    for l in &lines[1..7] {
        assert!(l.starts_with("error: "), "{out}");
    }
    assert!(lines[2].contains("unknown command `frobnicate`"), "{out}");
    assert!(lines[3].contains("usage: rename FROM TO"), "{out}");
    assert_eq!(lines[7], "ok: created /ok-dir", "{out}");
    assert!(d.join("ferry-data/files/ok-dir").is_dir());
    assert!(!r.status.success(), "{}", r.dump());
    assert!(!d.join("local/missing.bin").exists());

    // Without a URL: commands that need a server say so; `open` connects.
    let r = shell(d, &s, &[], &format!("ls\nopen {url}\npwd\n"));
    let out = r.out();
    assert!(
        out.starts_with("error: not connected; use `open URL` first\n"),
        "{out}"
    );
    assert!(out.contains("ok: remote directory is /\n"), "{out}");
    assert_eq!(r.code(), Some(2), "{}", r.dump());

    // `user` logs in again; a wrong password fails.
    let r = shell(d, &s, &[&url], "user ferry wrong-password\n");
    assert!(r.out().contains("error: "), "{}", r.dump());
    assert!(!r.status.success());
}

/// The terminal path: under `script` there is a prompt, a command runs, `quit` ends the session.
#[test]
fn terminal_session_under_script() {
    require("script");
    let dir = common::tempdir();
    let d = dir.path();
    let s = serve(d);
    std::fs::write(d.join("ferry-data/files/visible.txt"), b"x").expect("write");
    let url = format!("ftp://ferry@{}/", s.ftp);
    let command = format!("{BIN} shell -q {url}");
    let mut cmd = Command::new("script");
    cmd.current_dir(d.join("local"))
        .env("HOME", d.join("home"))
        .env("FERRY_PASSWORD", &s.password)
        .env("TERM", "dumb")
        .args(["-q", "-e", "-c", &command, "/dev/null"]);
    let r = run_timeout(&mut cmd, Some(b"ls\nquit\n"), Duration::from_secs(60));
    let out = r.out();
    assert!(out.contains("ferry> "), "{}", r.dump());
    assert!(out.contains("visible.txt"), "{}", r.dump());
    assert!(out.contains("ok: 1 entries"), "{}", r.dump());
    assert!(out.contains("ok: bye"), "{}", r.dump());
    r.assert_success();

    // The history is kept on disk (0600), without lines that carry a password, and grows across
    // sessions.
    let history = d.join("home/.local/share/ferry/shell_history");
    let saved = std::fs::read_to_string(&history).expect("history written");
    assert_eq!(saved, "ls\nquit\n");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&history).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let secret_url = format!("open ftp://ferry:not-the-password@{}/", s.ftp);
    let input = format!("pwd\n{secret_url}\nuser ferry guess\nquit\n");
    let r = run_timeout(&mut cmd, Some(input.as_bytes()), Duration::from_secs(60));
    assert!(r.out().contains("ok: bye"), "{}", r.dump());
    let saved = std::fs::read_to_string(&history).expect("history written");
    assert_eq!(saved, "ls\nquit\npwd\nquit\n");
}

/// On a terminal, a multi-file put shows a total bar (files done, bytes, rate) above the per-file bars;
/// without a terminal nothing is drawn.
#[test]
fn multi_file_put_shows_a_total_bar_on_a_terminal_only() {
    require("script");
    let dir = common::tempdir();
    let d = dir.path();
    let s = serve(d);
    let mut names = Vec::new();
    for i in 0..3u8 {
        let name = format!("part{i}.bin");
        std::fs::write(d.join("local").join(&name), bytes(8_000_000, i)).expect("write");
        names.push(name);
    }
    let url = format!("ftp://ferry@{}/", s.ftp);
    let command = format!("{BIN} put -j 2 {} {url}", names.join(" "));
    let mut cmd = Command::new("script");
    cmd.current_dir(d.join("local"))
        .env("HOME", d.join("home"))
        .env("FERRY_PASSWORD", &s.password)
        .env("TERM", "xterm")
        .args(["-q", "-e", "-c", &command, "/dev/null"]);
    let r = run_timeout(&mut cmd, None, Duration::from_secs(60));
    r.assert_success();
    assert!(r.out().contains("total: "), "{}", r.dump());
    for name in &names {
        assert!(d.join("ferry-data/files").join(name).is_file());
    }
    // Not a terminal: no bar at all.
    let mut cmd = ferry(&d.join("local"));
    cmd.env("HOME", d.join("home"))
        .env("FERRY_PASSWORD", &s.password)
        .args(["put", "-j", "2"])
        .args(&names)
        .arg(&url);
    let r = run_timeout(&mut cmd, None, Duration::from_secs(60));
    r.assert_success();
    assert!(
        !r.out().contains("total: ") && !r.dump().contains("total: "),
        "{}",
        r.dump()
    );
}
