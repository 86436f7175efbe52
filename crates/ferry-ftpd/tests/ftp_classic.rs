//! The classic command-line `ftp` client (Debian package `ftp`, today tnftp) against ferry, driven by a
//! script on standard input, in passive and active mode.

mod common;

use common::{pseudo_random, read_file, run, skip_unless, write_file, TestServer};

/// Runs `ftp -n -v [-p] 127.0.0.1 PORT` with `script` (after logging in) on stdin.
fn ftp(server: &TestServer, passive: bool, script: &str) -> common::Run {
    let mut cmd = server.client("ftp");
    cmd.args(["-n", "-v"]);
    if passive {
        cmd.arg("-p");
    } else {
        cmd.arg("-A");
    }
    cmd.arg("127.0.0.1").arg(server.port().to_string());
    let input = format!(
        "user {} \"{}\"\nbinary\n{script}\nbye\n",
        common::USER,
        common::PASSWORD
    );
    let r = run(&mut cmd, Some(input.as_bytes()));
    r.assert_success();
    let out = r.out();
    assert!(out.contains("230 "), "login failed:\n{}", r.dump());
    assert!(out.contains("221 "), "no goodbye:\n{}", r.dump());
    r
}

fn session(passive: bool) {
    let server = TestServer::start();
    let content = pseudo_random(400_000, 41);
    let local = server.local("up.bin");
    write_file(&local, &content);
    write_file(&server.path("remote.txt"), b"from the server\n");
    let fetched = server.local("fetched.txt");
    let script = format!(
        "put {} up.bin\nget remote.txt {}\nls\nmkdir newdir\ndelete remote.txt\nls newdir",
        local.display(),
        fetched.display()
    );
    let r = ftp(&server, passive, &script);
    let out = r.out();
    let passive_replies = out.matches("\n229 ").count() + out.matches("\n227 ").count();
    if passive {
        assert_eq!(
            passive_replies,
            4,
            "expected EPSV/PASV for each transfer:\n{}",
            r.dump()
        );
    } else {
        assert_eq!(
            passive_replies,
            0,
            "active mode used passive connections:\n{}",
            r.dump()
        );
    }
    assert_eq!(read_file(&server.path("up.bin")), content, "put\n{}", r.dump());
    assert_eq!(read_file(&fetched), b"from the server\n", "get\n{}", r.dump());
    assert!(
        out.contains("remote.txt") && out.contains("up.bin"),
        "ls output:\n{}",
        r.dump()
    );
    assert!(out.contains("257 \"/newdir\""), "mkdir:\n{}", r.dump());
    assert!(server.path("newdir").is_dir());
    assert!(!server.path("remote.txt").exists(), "delete:\n{}", r.dump());
    assert!(
        out.matches("226 ").count() >= 4,
        "expected four completed transfers:\n{}",
        r.dump()
    );
    assert!(
        !out.contains("\n5") && !out.starts_with('5'),
        "a command failed:\n{}",
        r.dump()
    );
}

#[test]
fn passive_session_puts_gets_lists_makes_and_deletes() {
    if skip_unless("ftp") {
        return;
    }
    session(true);
}

#[test]
fn active_session_puts_gets_lists_makes_and_deletes() {
    if skip_unless("ftp") {
        return;
    }
    session(false);
}

#[test]
fn mget_with_a_wildcard_fetches_every_matching_file() {
    if skip_unless("ftp") {
        return;
    }
    let server = TestServer::start();
    for (name, body) in [("one.txt", "1\n"), ("two.txt", "2\n"), ("skip.log", "no\n")] {
        write_file(&server.path(name), body.as_bytes());
    }
    let into = server.local("mget");
    std::fs::create_dir_all(&into).expect("mkdir");
    // `prompt` turns off per-file confirmation; `lcd` sets where mget writes.
    let script = format!("prompt\nlcd {}\nmget *.txt", into.display());
    let r = ftp(&server, true, &script);
    assert_eq!(read_file(&into.join("one.txt")), b"1\n", "{}", r.dump());
    assert_eq!(read_file(&into.join("two.txt")), b"2\n", "{}", r.dump());
    assert!(!into.join("skip.log").exists(), "{}", r.dump());
}
