//! curl against ferry: every data-connection mode, listings, quote commands, directory creation,
//! resume, errors, and binary round trips from 0 B to 100 MiB.

mod common;

use common::{pseudo_random, read_file, run, sha256, sha256_file, skip_unless, write_file, TestServer};

/// A curl command logged in as alice, verbose (the protocol dialogue goes to stderr), failing on errors.
fn curl(server: &TestServer) -> std::process::Command {
    let mut cmd = server.client("curl");
    cmd.args(["-sS", "-v", "--connect-timeout", "10", "--max-time", "50"])
        .arg("--user")
        .arg(format!("{}:{}", common::USER, common::PASSWORD));
    cmd
}

/// The FTP commands curl sent (from `-v` output: lines `> CMD ...`).
fn sent(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("> "))
        .map(str::to_owned)
        .collect()
}

fn assert_sent(stderr: &str, verb: &str) {
    let cmds = sent(stderr);
    assert!(
        cmds.iter()
            .any(|c| c == verb || c.starts_with(&format!("{verb} "))),
        "curl did not send {verb}: {cmds:?}"
    );
}

fn assert_not_sent(stderr: &str, verb: &str) {
    let cmds = sent(stderr);
    assert!(
        !cmds
            .iter()
            .any(|c| c == verb || c.starts_with(&format!("{verb} "))),
        "curl sent {verb}: {cmds:?}"
    );
}

#[test]
fn epsv_download_and_upload() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start();
    let content = pseudo_random(300_000, 1);
    write_file(&server.path("down.bin"), &content);
    let out = server.local("down.bin");
    let r = run(
        curl(&server).arg("-o").arg(&out).arg(server.url("down.bin")),
        None,
    );
    r.assert_success();
    assert_sent(&r.stderr, "EPSV");
    assert_eq!(sha256_file(&out), sha256(&content));

    let up = server.local("up.bin");
    write_file(&up, pseudo_random(200_000, 2));
    let r = run(curl(&server).arg("-T").arg(&up).arg(server.url("up.bin")), None);
    r.assert_success();
    assert_sent(&r.stderr, "EPSV");
    assert_sent(&r.stderr, "STOR");
    assert_eq!(sha256_file(&server.path("up.bin")), sha256_file(&up));
}

#[test]
fn pasv_download_and_upload_with_epsv_disabled() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start();
    let content = pseudo_random(150_000, 3);
    write_file(&server.path("p.bin"), &content);
    let out = server.local("p.bin");
    let r = run(
        curl(&server)
            .arg("--disable-epsv")
            .arg("-o")
            .arg(&out)
            .arg(server.url("p.bin")),
        None,
    );
    r.assert_success();
    assert_sent(&r.stderr, "PASV");
    assert_not_sent(&r.stderr, "EPSV");
    assert_eq!(read_file(&out), content);

    let r = run(
        curl(&server)
            .arg("--disable-epsv")
            .arg("-T")
            .arg(&out)
            .arg(server.url("p-up.bin")),
        None,
    );
    r.assert_success();
    assert_sent(&r.stderr, "PASV");
    assert_eq!(read_file(&server.path("p-up.bin")), content);
}

#[test]
fn active_port_download_and_upload() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start();
    let content = pseudo_random(120_000, 4);
    write_file(&server.path("a.bin"), &content);
    let out = server.local("a.bin");
    let active = ["-P", "127.0.0.1", "--disable-eprt"];
    let r = run(
        curl(&server)
            .args(active)
            .arg("-o")
            .arg(&out)
            .arg(server.url("a.bin")),
        None,
    );
    r.assert_success();
    assert_sent(&r.stderr, "PORT");
    assert_not_sent(&r.stderr, "EPRT");
    assert_not_sent(&r.stderr, "EPSV");
    assert_eq!(read_file(&out), content);

    let r = run(
        curl(&server)
            .args(active)
            .arg("-T")
            .arg(&out)
            .arg(server.url("a-up.bin")),
        None,
    );
    r.assert_success();
    assert_sent(&r.stderr, "PORT");
    assert_eq!(read_file(&server.path("a-up.bin")), content);
}

#[test]
fn active_eprt_download_and_upload() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start();
    let content = pseudo_random(90_000, 5);
    write_file(&server.path("e.bin"), &content);
    let out = server.local("e.bin");
    let r = run(
        curl(&server)
            .args(["-P", "-"])
            .arg("-o")
            .arg(&out)
            .arg(server.url("e.bin")),
        None,
    );
    r.assert_success();
    assert_sent(&r.stderr, "EPRT");
    assert_eq!(read_file(&out), content);

    let r = run(
        curl(&server)
            .args(["-P", "-"])
            .arg("-T")
            .arg(&out)
            .arg(server.url("e-up.bin")),
        None,
    );
    r.assert_success();
    assert_sent(&r.stderr, "EPRT");
    assert_eq!(read_file(&server.path("e-up.bin")), content);
}

#[test]
fn directory_listing_and_name_list() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start();
    write_file(&server.path("dir/one.txt"), b"1");
    write_file(&server.path("dir/two words.txt"), b"22");
    // Not empty: an empty directory made behind the server's back is no object on S3 (the test
    // kit's FERRY_TEST_STORAGE=s3 runs serve this tree from a bucket).
    write_file(&server.path("dir/sub/inner.txt"), b"3");
    let r = run(curl(&server).arg(server.url("dir/")), None);
    r.assert_success();
    assert_sent(&r.stderr, "LIST");
    let listing = r.out();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 3, "LIST output: {listing:?}");
    // (curl turns the CRLF of an ASCII listing into LF; raw.rs checks the CRLF on the wire.)
    let find = |name: &str| {
        *lines
            .iter()
            .find(|l| l.trim_end().ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("{name} not in {listing:?}"))
    };
    assert!(find("one.txt").starts_with('-'), "{listing}");
    assert!(find("two words.txt").starts_with('-'), "{listing}");
    assert!(find("sub").starts_with('d'), "{listing}");
    assert!(
        find("two words.txt").split_whitespace().nth(4) == Some("2"),
        "size column: {listing}"
    );

    let r = run(curl(&server).arg("--list-only").arg(server.url("dir/")), None);
    r.assert_success();
    assert_sent(&r.stderr, "NLST");
    let mut names: Vec<String> = r
        .out()
        .lines()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["one.txt", "sub", "two words.txt"]);
}

#[test]
fn quote_commands_delete_rename_and_make_directories() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start();
    write_file(&server.path("x"), b"x");
    write_file(&server.path("a"), b"aaa");
    let r = run(
        curl(&server)
            .args(["-Q", "DELE x"])
            .arg("--list-only")
            .arg(server.url("")),
        None,
    );
    r.assert_success();
    assert!(!server.path("x").exists(), "DELE x did not delete");
    assert!(
        !r.out().lines().any(|l| l.trim_end() == "x"),
        "listing after DELE: {}",
        r.out()
    );

    let r = run(
        curl(&server)
            .args(["-Q", "RNFR a", "-Q", "RNTO b"])
            .arg("--list-only")
            .arg(server.url("")),
        None,
    );
    r.assert_success();
    assert!(!server.path("a").exists());
    assert_eq!(read_file(&server.path("b")), b"aaa");

    let r = run(
        curl(&server)
            .args(["-Q", "MKD newdir"])
            .arg("--list-only")
            .arg(server.url("")),
        None,
    );
    r.assert_success();
    assert!(server.path("newdir").is_dir());
    let r = run(
        curl(&server)
            .args(["-Q", "RMD newdir"])
            .arg("--list-only")
            .arg(server.url("")),
        None,
    );
    r.assert_success();
    assert!(!server.path("newdir").exists());

    // A failing quote command fails the whole request (curl exit 21).
    let r = run(
        curl(&server)
            .args(["-Q", "DELE nonexistent"])
            .arg("--list-only")
            .arg(server.url("")),
        None,
    );
    assert_eq!(r.code(), Some(21), "{}", r.dump());
}

#[test]
fn upload_with_ftp_create_dirs_makes_the_missing_directories() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start();
    let up = server.local("deep.txt");
    write_file(&up, b"deep down\n");
    let r = run(
        curl(&server)
            .arg("--ftp-create-dirs")
            .arg("-T")
            .arg(&up)
            .arg(server.url("a/b/c/deep.txt")),
        None,
    );
    r.assert_success();
    assert_sent(&r.stderr, "MKD");
    assert_eq!(read_file(&server.path("a/b/c/deep.txt")), b"deep down\n");
    // Again, now that the directories exist.
    let r = run(
        curl(&server)
            .arg("--ftp-create-dirs")
            .arg("-T")
            .arg(&up)
            .arg(server.url("a/b/c/again.txt")),
        None,
    );
    r.assert_success();
    assert_eq!(read_file(&server.path("a/b/c/again.txt")), b"deep down\n");
}

#[test]
fn resumed_download_continues_a_partial_file() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start();
    let content = pseudo_random(1_000_000, 6);
    write_file(&server.path("r.bin"), &content);
    let out = server.local("r.bin");
    write_file(&out, &content[..333_333]);
    let r = run(
        curl(&server)
            .args(["-C", "-"])
            .arg("-o")
            .arg(&out)
            .arg(server.url("r.bin")),
        None,
    );
    r.assert_success();
    assert_sent(&r.stderr, "REST 333333");
    assert_eq!(sha256_file(&out), sha256(&content));
}

#[test]
fn resumed_upload_continues_a_partial_file() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start();
    let content = pseudo_random(1_000_000, 7);
    let up = server.local("r-up.bin");
    write_file(&up, &content);
    write_file(&server.path("r-up.bin"), &content[..400_000]);
    let r = run(
        curl(&server)
            .args(["-C", "-"])
            .arg("-T")
            .arg(&up)
            .arg(server.url("r-up.bin")),
        None,
    );
    r.assert_success();
    let cmds = sent(&r.stderr);
    assert!(
        cmds.iter().any(|c| c.starts_with("APPE ")) || cmds.iter().any(|c| c == "REST 400000"),
        "resume used neither APPE nor REST 400000: {cmds:?}"
    );
    assert_eq!(sha256_file(&server.path("r-up.bin")), sha256(&content));
}

#[test]
fn missing_file_fails_with_exit_78_and_the_server_keeps_serving() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start();
    write_file(&server.path("present.txt"), b"here\n");
    let out = server.local("missing.txt");
    let r = run(
        curl(&server).arg("-o").arg(&out).arg(server.url("missing.txt")),
        None,
    );
    assert_eq!(
        r.code(),
        Some(78),
        "expected curl exit 78 (RETR 550): {}",
        r.dump()
    );
    assert!(r.stderr.contains("< 550"), "{}", r.stderr);
    let r = run(curl(&server).arg(server.url("present.txt")), None);
    r.assert_success();
    assert_eq!(r.stdout, b"here\n");
}

#[test]
fn wrong_password_fails_with_exit_67() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start();
    write_file(&server.path("f"), b"f");
    let mut cmd = server.client("curl");
    cmd.args(["-sS", "--user", "alice:wrong"]).arg(server.url("f"));
    let r = run(&mut cmd, None);
    assert_eq!(
        r.code(),
        Some(67),
        "expected curl exit 67 (login denied): {}",
        r.dump()
    );
}

fn round_trip(server: &TestServer, len: usize, seed: u64) {
    let name = format!("rt-{len}.bin");
    let content = pseudo_random(len, seed);
    let up = server.local(&name);
    write_file(&up, &content);
    run(curl(server).arg("-T").arg(&up).arg(server.url(&name)), None).assert_success();
    assert_eq!(read_file(&server.path(&name)), content, "upload of {len} bytes");
    // Download to stdout: curl does not create an output file for an empty transfer.
    let r = run(curl(server).arg(server.url(&name)), None);
    r.assert_success();
    assert_eq!(r.stdout, content, "download of {len} bytes");
}

#[test]
fn empty_and_one_byte_files_round_trip() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start();
    round_trip(&server, 0, 10);
    round_trip(&server, 1, 11);
    round_trip(&server, 65_537, 12);
}

#[test]
fn hundred_mebibyte_file_round_trips_intact() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start();
    let up = server.local("big.bin");
    let want = common::write_random_file(&up, 100 << 20);
    run(curl(&server).arg("-T").arg(&up).arg(server.url("big.bin")), None).assert_success();
    assert_eq!(sha256_file(&server.path("big.bin")), want, "upload");
    let down = server.local("big-down.bin");
    run(
        curl(&server).arg("-o").arg(&down).arg(server.url("big.bin")),
        None,
    )
    .assert_success();
    assert_eq!(sha256_file(&down), want, "download");
}

#[test]
fn head_request_reports_size_and_modification_time() {
    if skip_unless("curl") {
        return;
    }
    let server = TestServer::start();
    let path = server.path("h.bin");
    write_file(&path, pseudo_random(4321, 13));
    // 2021-02-03 04:05:06 UTC
    common::set_mtime(&path, 1_612_325_106);
    let r = run(curl(&server).arg("-I").arg(server.url("h.bin")), None);
    r.assert_success();
    assert_sent(&r.stderr, "SIZE");
    assert_sent(&r.stderr, "MDTM");
    let out = r.out();
    assert!(out.contains("Content-Length: 4321"), "{out}");
    assert!(
        out.contains("Last-Modified: Wed, 03 Feb 2021 04:05:06 GMT"),
        "{out}"
    );
}
