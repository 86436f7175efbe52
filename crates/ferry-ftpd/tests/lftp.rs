//! lftp against ferry: mirroring a nested tree with awkward names up and down, and resuming
//! interrupted uploads and downloads.

mod common;

use common::{
    assert_same_tree, make_tree, pseudo_random, run, sha256, sha256_file, skip_unless, write_file, TestServer,
};

/// Runs lftp logged in as alice with `commands` (`;`-separated) and fails the test unless it succeeds.
fn lftp(server: &TestServer, commands: &str) -> common::Run {
    let script = format!(
        "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 10; set net:reconnect-interval-base 1; \
         set cmd:fail-exit yes; set xfer:clobber yes; {commands}; quit"
    );
    let mut cmd = server.client("lftp");
    cmd.arg("-u")
        .arg(format!("{},{}", common::USER, common::PASSWORD))
        .arg("-e")
        .arg(script)
        .arg(server.url(""));
    let r = run(&mut cmd, None);
    r.assert_success();
    r
}

#[test]
fn mirror_reverse_uploads_a_nested_tree_intact() {
    if skip_unless("lftp") {
        return;
    }
    let server = TestServer::start();
    let src = server.local("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    let files = make_tree(&src);
    assert!(files >= 30);
    lftp(
        &server,
        &format!("mirror -R --no-perms \"{}\" /up", src.display()),
    );
    assert_same_tree(&src, &server.path("up"), &[]);
}

#[test]
fn mirror_downloads_a_nested_tree_intact() {
    if skip_unless("lftp") {
        return;
    }
    let server = TestServer::start();
    let files = make_tree(&server.path("tree"));
    assert!(files >= 30);
    let dst = server.local("dst");
    lftp(&server, &format!("mirror --no-perms /tree \"{}\"", dst.display()));
    assert_same_tree(&server.path("tree"), &dst, &[]);
}

#[test]
fn put_continue_resumes_a_partial_upload() {
    if skip_unless("lftp") {
        return;
    }
    let server = TestServer::start();
    let content = pseudo_random(3_000_000, 21);
    let local = server.local("big.bin");
    write_file(&local, &content);
    write_file(&server.path("big.bin"), &content[..1_234_567]);
    let r = lftp(
        &server,
        &format!(
            "set ftp:use-site-utime no; debug -o \"{}\" 5; put -c \"{}\" -o big.bin",
            server.local("debug.log").display(),
            local.display()
        ),
    );
    let log = String::from_utf8_lossy(&common::read_file(&server.local("debug.log"))).into_owned();
    assert!(
        log.contains("REST 1234567") || log.contains("APPE "),
        "lftp did not resume (no REST 1234567 / APPE):\n{log}\n{}",
        r.dump()
    );
    assert_eq!(sha256_file(&server.path("big.bin")), sha256(&content));
}

#[test]
fn get_continue_resumes_a_partial_download() {
    if skip_unless("lftp") {
        return;
    }
    let server = TestServer::start();
    let content = pseudo_random(3_000_000, 22);
    write_file(&server.path("big.bin"), &content);
    let local = server.local("big.bin");
    write_file(&local, &content[..987_654]);
    let r = lftp(
        &server,
        &format!(
            "debug -o \"{}\" 5; get -c big.bin -o \"{}\"",
            server.local("debug.log").display(),
            local.display()
        ),
    );
    let log = String::from_utf8_lossy(&common::read_file(&server.local("debug.log"))).into_owned();
    assert!(
        log.contains("REST 987654"),
        "lftp did not resume with REST 987654:\n{log}\n{}",
        r.dump()
    );
    assert_eq!(sha256_file(&local), sha256(&content));
}
