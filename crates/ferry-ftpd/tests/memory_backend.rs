//! The FTP front end over the in-memory back-end, which has object-store semantics only (no
//! rename, no append, no resume, no random writes): curl stores and fetches whole files, and what
//! the back-end cannot do is refused with a reply that names it, never stored wrongly.

mod common;

use std::sync::Arc;

use common::{
    pseudo_random, run, sha256, sha256_file, skip_unless, write_file, Control, Options, TestServer,
};
use ferry_vfs::MemoryFs;

fn start(memory: &MemoryFs) -> TestServer {
    TestServer::start_with(Options {
        storage: Some(Arc::new(memory.clone())),
        ..Options::default()
    })
}

/// The whole content of `path` in `memory`, or `None` if it is not there.
fn content(memory: &MemoryFs, path: &str) -> Option<Vec<u8>> {
    ferry_testkit::files::stored(memory, path)
}

#[test]
fn curl_stores_and_fetches_whole_files_on_the_memory_back_end() {
    if skip_unless("curl") {
        return;
    }
    let memory = MemoryFs::new();
    let server = start(&memory);
    let data = pseudo_random(3_000_000, 7);
    write_file(&server.local("up.bin"), &data);
    let curl = |args: &[&str]| {
        let mut cmd = server.client("curl");
        cmd.args(["-sS", "--connect-timeout", "10", "--max-time", "50", "--user"])
            .arg(format!("{}:{}", common::USER, common::PASSWORD))
            .args(args);
        run(&mut cmd, None)
    };
    let up = server.local("up.bin");
    curl(&["-T", up.to_str().expect("utf8"), &server.url("up.bin")]).assert_success();
    assert_eq!(
        content(&memory, "/up.bin").map(|c| sha256(&c)),
        Some(sha256(&data))
    );
    let back = server.local("back.bin");
    curl(&["-o", back.to_str().expect("utf8"), &server.url("up.bin")]).assert_success();
    assert_eq!(sha256_file(&back), sha256(&data));
    // A ranged download is a ranged read (REST + RETR).
    let part = server.local("part.bin");
    curl(&[
        "-r",
        "1000000-",
        "-o",
        part.to_str().expect("utf8"),
        &server.url("up.bin"),
    ])
    .assert_success();
    assert_eq!(sha256_file(&part), sha256(&data[1_000_000..]));
}

#[test]
fn appe_rest_stor_and_rename_are_refused_naming_the_back_end_and_nothing_changes() {
    let memory = MemoryFs::new();
    let server = start(&memory);
    let mut c = Control::connect(server.addr);
    c.login(common::USER, common::PASSWORD);
    c.expect("TYPE I", 200);
    let reply = c.upload("STOR f.txt", b"hello");
    assert_eq!(reply.code, 226, "{}", reply.text());
    // APPE: refused before the data connection is used.
    c.pasv();
    let r = c.cmd("APPE f.txt");
    assert_eq!(r.code, 550, "{}", r.text());
    assert!(r.text().contains("memory storage back-end"), "{}", r.text());
    // REST + STOR: a resume is refused the same way; never an object holding only the new bytes.
    c.expect("REST 3", 350);
    c.pasv();
    let r = c.cmd("STOR f.txt");
    assert_eq!(r.code, 550, "{}", r.text());
    assert!(
        r.text()
            .contains("Resuming an upload at an offset is not supported"),
        "{}",
        r.text()
    );
    c.expect("RNFR f.txt", 350);
    let r = c.cmd("RNTO g.txt");
    assert_eq!(r.code, 550, "{}", r.text());
    assert!(
        r.text().contains("Renaming is not supported by the memory"),
        "{}",
        r.text()
    );
    assert_eq!(content(&memory, "/f.txt").as_deref(), Some(&b"hello"[..]));
    assert_eq!(content(&memory, "/g.txt"), None);
    // What the back-end can do works: MKD, MLST, MFMT, DELE, RMD.
    c.expect("MKD d", 257);
    let r = c.expect("MLST f.txt", 250);
    assert!(r.text().contains("size=5;"), "{}", r.text());
    c.expect("MFMT 20200102030405 f.txt", 213);
    c.expect("DELE f.txt", 250);
    c.expect("RMD d", 250);
    assert_eq!(content(&memory, "/f.txt"), None);
}
