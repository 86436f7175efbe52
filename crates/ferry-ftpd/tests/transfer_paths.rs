//! The fast transfer paths stay byte-exact: RETR of a local file with `sendfile` (binary, with and
//! without REST), RETR in TYPE A through the read loop, and STOR through the two alternating 1 MiB
//! buffers, in binary and ASCII, with sizes around the buffer size.

mod common;

use std::io::Read;

use common::{pseudo_random, read_file, write_file, TestServer};

/// The server's STOR buffer size (`transfer::BUFFER`); tests put interesting bytes around multiples of it.
const STOR_BUFFER: usize = 1 << 20;

/// Larger than one `sendfile` call (4 MiB), so the send loop runs several times and waits for the
/// socket to become writable in between.
const LARGE: usize = 9 * (1 << 20) + 12_345;

#[test]
fn binary_retr_of_a_large_file_is_byte_exact() {
    let server = TestServer::start();
    let content = pseudo_random(LARGE, 11);
    write_file(&server.path("big.bin"), &content);
    let mut c = server.login();
    c.expect("TYPE I", 200);
    let (data, r) = c.download("RETR big.bin");
    assert_eq!(r.code, 226, "{}", r.text());
    assert!(data == content, "downloaded {} bytes, differs", data.len());
}

#[test]
fn binary_retr_after_rest_sends_exactly_the_tail_and_announces_its_size() {
    let server = TestServer::start();
    let content = pseudo_random(LARGE, 12);
    write_file(&server.path("big.bin"), &content);
    let offset = 4 * (1 << 20) + 7;
    let mut c = server.login();
    c.expect("TYPE I", 200);
    c.expect(&format!("REST {offset}"), 350);
    let mut data = c.data();
    let first = c.expect("RETR big.bin", 150);
    assert!(
        first.text().contains(&format!("({} bytes)", LARGE - offset)),
        "{}",
        first.text()
    );
    let mut got = Vec::new();
    data.read_to_end(&mut got).expect("read data");
    let r = c.reply();
    assert_eq!(r.code, 226, "{}", r.text());
    assert!(got == content[offset..], "got {} bytes, differs", got.len());
    // REST at the very end sends nothing, cleanly.
    c.expect(&format!("REST {LARGE}"), 350);
    let (data, r) = c.download("RETR big.bin");
    assert_eq!(r.code, 226, "{}", r.text());
    assert!(data.is_empty());
}

#[test]
fn ascii_retr_of_a_large_file_converts_every_line_end() {
    let server = TestServer::start();
    let mut content = Vec::new();
    let mut i = 0u64;
    while content.len() < 3 * (1 << 20) {
        content.extend_from_slice(format!("line {i} of a text file\n").as_bytes());
        i += 1;
    }
    write_file(&server.path("text.txt"), &content);
    let mut expected = Vec::with_capacity(content.len() + i as usize);
    for &b in &content {
        if b == b'\n' {
            expected.push(b'\r');
        }
        expected.push(b);
    }
    let mut c = server.login();
    c.expect("TYPE A", 200);
    let (data, r) = c.download("RETR text.txt");
    assert_eq!(r.code, 226, "{}", r.text());
    assert!(
        data == expected,
        "got {} bytes, expected {}",
        data.len(),
        expected.len()
    );
}

#[test]
fn binary_stor_of_a_large_file_is_byte_exact() {
    let server = TestServer::start();
    for len in [
        0,
        1,
        STOR_BUFFER - 1,
        STOR_BUFFER,
        STOR_BUFFER + 1,
        5 * STOR_BUFFER + 17,
    ] {
        let content = pseudo_random(len, len as u64);
        let mut c = server.login();
        c.expect("TYPE I", 200);
        let r = c.upload("STOR up.bin", &content);
        assert_eq!(r.code, 226, "{len} bytes: {}", r.text());
        assert!(
            read_file(&server.path("up.bin")) == content,
            "{len} bytes: stored file differs"
        );
    }
}

#[test]
fn ascii_stor_of_a_large_file_strips_every_carriage_return_of_a_line_end() {
    let server = TestServer::start();
    // CRLF line ends on lines of every length from 0 to 99 bytes, so that wherever the server's reads
    // and buffers split the stream, some CRLF is split across two of them; plus lone CRs, which stay.
    let mut payload = Vec::new();
    let mut expected = Vec::new();
    let mut i = 0usize;
    while payload.len() < 3 * STOR_BUFFER + 100 {
        let line: Vec<u8> = (0..i % 100).map(|k| b'a' + (k % 26) as u8).collect();
        payload.extend_from_slice(&line);
        expected.extend_from_slice(&line);
        if i.is_multiple_of(7) {
            payload.extend_from_slice(b"\rx");
            expected.extend_from_slice(b"\rx");
        }
        payload.extend_from_slice(b"\r\n");
        expected.push(b'\n');
        i += 1;
    }
    let mut c = server.login();
    c.expect("TYPE A", 200);
    let r = c.upload("STOR text.txt", &payload);
    assert_eq!(r.code, 226, "{}", r.text());
    let stored = read_file(&server.path("text.txt"));
    assert!(
        stored == expected,
        "stored {} bytes, expected {}",
        stored.len(),
        expected.len()
    );
}

#[test]
fn stor_onto_a_symlink_to_a_directory_is_refused_and_keeps_the_link() {
    if ferry_testkit::skip_on_s3(
        "symbolic links are a local file-system feature; object keys are plain names, and s3s-fs \
         would follow a link planted in its bucket directory",
    ) {
        return;
    }
    let server = TestServer::start();
    std::fs::create_dir(server.path("dir")).expect("mkdir");
    std::os::unix::fs::symlink("dir", server.path("link")).expect("symlink");
    let mut c = server.login();
    c.expect("TYPE I", 200);
    let r = c.upload("STOR link", b"data");
    assert_eq!(r.code, 550, "{}", r.text());
    assert!(std::fs::symlink_metadata(server.path("link"))
        .expect("link still there")
        .file_type()
        .is_symlink());
}
