//! rclone's FTP backend (Go crypto/tls, jlaffaye/ftp) against ferry's FTPS: explicit (`explicit_tls`) and
//! implicit (`tls`), TLS 1.3 and 1.2 (`disable_tls13`), `rclone copy` of a nested tree up and down, and
//! `rclone lsf`.
//!
//! rclone resumes TLS sessions through one Go `ClientSessionCache` shared by all its connections to a
//! server (`tls_cache_size`), keyed by address. With several control connections at once (its defaults:
//! 4 transfers, 8 checkers) a data connection often offers the session of *another* control connection of
//! the same user, which ferry accepts by default (`ftps.data_session = same_user`):
//! `default_parallelism_works_with_default_settings`. The other tests keep rclone to one control
//! connection (`concurrency=1`, one transfer, one checker).

mod common;

use common::{assert_same_tree, make_tree, run, skip_unless, Run, TestServer};

#[derive(Clone, Copy)]
enum Mode {
    Explicit,
    Implicit,
}

/// An on-the-fly rclone remote (`:ftp,...:`) for alice; `extra` is appended to its parameters.
fn remote(server: &TestServer, mode: Mode, tls13: bool, extra: &str) -> String {
    let obscured = run(server.client("rclone").args(["obscure", common::PASSWORD]), None);
    obscured.assert_success();
    let pass = obscured.out().trim().to_owned();
    let (port, tls) = match mode {
        Mode::Explicit => (server.port(), "explicit_tls=true"),
        Mode::Implicit => (server.implicit_port(), "tls=true"),
    };
    let disable13 = if tls13 { "" } else { ",disable_tls13=true" };
    format!(
        ":ftp,host=127.0.0.1,port={port},user={},pass={pass},{tls},no_check_certificate=true{disable13}{extra}:",
        common::USER
    )
}

/// Runs rclone with `args`, bounded retries, one control connection's worth of parallelism unless the
/// remote says otherwise.
fn rclone(server: &TestServer, args: &[&str], single: bool) -> Run {
    let mut cmd = server.client("rclone");
    cmd.args(args)
        .args(["--retries", "1", "--low-level-retries", "1", "--timeout", "20s"])
        .args(["--contimeout", "10s", "-v"]);
    if single {
        cmd.args(["--transfers", "1", "--checkers", "1"]);
    }
    run(&mut cmd, None)
}

/// Whether rclone's log shows a `522` reply (data connection TLS refused). A word of its own, so a
/// transfer rate such as `522.790 KiB/s` in the progress lines does not count.
fn refused_522(log: &str) -> bool {
    log.split_whitespace()
        .any(|w| w.trim_end_matches([':', ',']) == "522")
}

/// Copies a nested tree up and back down and lists it, with one control connection.
fn copy_round_trip(server: &TestServer, mode: Mode, tls13: bool, tag: &str) {
    let r = remote(server, mode, tls13, ",concurrency=1");
    let src = server.local(&format!("src-{tag}"));
    std::fs::create_dir_all(&src).expect("mkdir");
    let files = make_tree(&src);

    let up = format!("{r}up-{tag}");
    let run_up = rclone(server, &["copy", src.to_str().expect("utf-8 path"), &up], true);
    run_up.assert_success();
    assert!(!refused_522(&run_up.stderr), "{}", run_up.stderr);
    assert_same_tree(&src, &server.path(format!("up-{tag}")), &[]);

    let dst = server.local(&format!("dst-{tag}"));
    let run_down = rclone(server, &["copy", &up, dst.to_str().expect("utf-8 path")], true);
    run_down.assert_success();
    assert_same_tree(&src, &dst, &[]);

    let lsf = rclone(server, &["lsf", "-R", "--files-only", &up], true);
    lsf.assert_success();
    let mut listed: Vec<String> = lsf.out().lines().map(str::to_owned).collect();
    listed.sort();
    let mut expected: Vec<String> = common::tree(&src, &[])
        .into_iter()
        .filter(|(_, content)| content.is_some())
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    expected.sort();
    assert_eq!(listed.len(), files);
    assert_eq!(listed, expected);
}

#[test]
fn explicit_tls13_copy_up_down_and_lsf() {
    if skip_unless("rclone") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    copy_round_trip(&server, Mode::Explicit, true, "e13");
}

#[test]
fn explicit_tls12_copy_up_down_and_lsf() {
    if skip_unless("rclone") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    copy_round_trip(&server, Mode::Explicit, false, "e12");
}

#[test]
fn implicit_tls13_copy_up_down_and_lsf() {
    if skip_unless("rclone") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    copy_round_trip(&server, Mode::Implicit, true, "i13");
}

#[test]
fn implicit_tls12_copy_up_down_and_lsf() {
    if skip_unless("rclone") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    copy_round_trip(&server, Mode::Implicit, false, "i12");
}

/// rclone's defaults (4 transfers, 8 checkers: several control connections sharing one TLS session cache)
/// work with ferry's defaults, which accept sessions of sibling control connections (same user, same
/// address).
#[test]
fn default_parallelism_works_with_default_settings() {
    if skip_unless("rclone") {
        return;
    }
    let server = TestServer::start_ftps(|_| {});
    let src = server.local("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    make_tree(&src);
    for i in 0..12 {
        std::fs::write(
            src.join(format!("extra-{i}.bin")),
            vec![i as u8; 50_000 + i * 1000],
        )
        .expect("write");
    }
    let r = remote(&server, Mode::Explicit, true, "");
    let up = format!("{r}up");
    let run_up = rclone(&server, &["copy", src.to_str().expect("utf-8 path"), &up], false);
    run_up.assert_success();
    assert!(!refused_522(&run_up.stderr), "{}", run_up.stderr);
    assert_same_tree(&src, &server.path("up"), &[]);
    let back = server.local("back");
    let run_down = rclone(&server, &["copy", &up, back.to_str().expect("utf-8 path")], false);
    run_down.assert_success();
    assert!(!refused_522(&run_down.stderr), "{}", run_down.stderr);
    assert_same_tree(&src, &back, &[]);
}
