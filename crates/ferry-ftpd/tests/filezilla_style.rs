//! The command sequence FileZilla (and WinSCP, similarly) sends, replayed on the raw control channel:
//! PASV data connections, MLSD listings, STOR followed by MFMT to keep the local timestamp, and the
//! usual directory and rename commands. FileZilla itself cannot run here; this pins what it relies on.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, UNIX_EPOCH};

use common::{write_file, Control, Reply, TestServer};

/// PASV, then `command` over the advertised address (FileZilla uses PASV on IPv4 and honours the address).
fn pasv_transfer(c: &mut Control, command: &str, upload: Option<&[u8]>) -> (Vec<u8>, Reply) {
    let addr = c.pasv();
    let mut data =
        TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect to PASV address");
    data.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    c.expect(command, 150);
    let mut got = Vec::new();
    match upload {
        Some(bytes) => {
            data.write_all(bytes).expect("upload");
            drop(data);
        }
        None => {
            data.read_to_end(&mut got).expect("download");
        }
    }
    (got, c.reply())
}

/// Parses MLSD lines into (name, facts) pairs, strictly as RFC 3659 §7.2 defines them.
fn mlsd(data: &[u8]) -> Vec<(String, Vec<(String, String)>)> {
    let text = String::from_utf8(data.to_vec()).expect("UTF-8 MLSD");
    assert!(text.is_empty() || text.ends_with("\r\n"), "{text:?}");
    text.split_terminator("\r\n")
        .map(|line| {
            let (facts, name) = line
                .split_once("; ")
                .unwrap_or_else(|| panic!("no '; ' in {line:?}"));
            let facts = format!("{facts};");
            let facts = facts
                .split_terminator(';')
                .map(|f| {
                    let (k, v) = f
                        .split_once('=')
                        .unwrap_or_else(|| panic!("bad fact {f:?} in {line:?}"));
                    (k.to_ascii_lowercase(), v.to_owned())
                })
                .collect();
            (name.to_owned(), facts)
        })
        .collect()
}

fn fact<'a>(facts: &'a [(String, String)], key: &str) -> Option<&'a str> {
    facts.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn filezilla_session_lists_uploads_keeps_timestamps_and_manages_files() {
    let server = TestServer::start();
    write_file(&server.path("docs/readme.txt"), b"read me\n");
    let mut c = server.control();
    c.expect(&format!("USER {}", common::USER), 331);
    c.expect(&format!("PASS {}", common::PASSWORD), 230);
    c.expect("SYST", 215);
    let feat = c.expect("FEAT", 211);
    for f in ["MLST", "MFMT", "UTF8", "SIZE", "MDTM", "REST STREAM", "EPSV"] {
        assert!(feat.text().contains(f), "FEAT lacks {f}: {}", feat.text());
    }
    c.expect("OPTS UTF8 ON", 200);
    c.expect("PWD", 257);
    c.expect("TYPE I", 200);

    let (listing, end) = pasv_transfer(&mut c, "MLSD", None);
    assert_eq!(end.code, 226, "{}", end.text());
    let entries = mlsd(&listing);
    let docs = entries.iter().find(|(n, _)| n == "docs").expect("docs listed");
    assert_eq!(fact(&docs.1, "type"), Some("dir"));
    assert!(fact(&docs.1, "modify").is_some_and(|m| m.len() >= 14));

    c.expect("CWD /docs", 250);
    let (listing, end) = pasv_transfer(&mut c, "MLSD", None);
    assert_eq!(end.code, 226);
    let entries = mlsd(&listing);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].0, "readme.txt");
    assert_eq!(fact(&entries[0].1, "type"), Some("file"));
    assert_eq!(fact(&entries[0].1, "size"), Some("8"));
    assert!(fact(&entries[0].1, "perm").is_some_and(|p| p.contains('r') && p.contains('w')));

    // Upload, then MFMT to the local file's timestamp, as FileZilla does with "preserve timestamps".
    let (_, end) = pasv_transfer(&mut c, "STOR new file.bin", Some(b"0123456789"));
    assert_eq!(end.code, 226, "{}", end.text());
    let r = c.expect("MFMT 20200102030405 new file.bin", 213);
    assert!(r.text().contains("Modify=20200102030405"), "{}", r.text());
    let mtime = std::fs::metadata(server.path("docs/new file.bin"))
        .expect("stat")
        .modified()
        .expect("mtime");
    assert_eq!(mtime, UNIX_EPOCH + Duration::from_secs(1_577_934_245));
    let r = c.expect("MDTM new file.bin", 213);
    assert_eq!(r.message(), "20200102030405");
    c.expect("MFMT 2020 x", 501);
    c.expect("MFMT 20200102030405 missing.bin", 550);

    // Download with the REST that FileZilla sends for resumed transfers.
    c.expect("REST 4", 350);
    let (data, end) = pasv_transfer(&mut c, "RETR new file.bin", None);
    assert_eq!(end.code, 226);
    assert_eq!(data, b"456789");

    c.expect("MKD sub", 257);
    c.expect("RNFR new file.bin", 350);
    c.expect("RNTO sub/moved.bin", 250);
    assert!(server.path("docs/sub/moved.bin").exists());
    c.expect("RMD sub", 550);
    c.expect("DELE sub/moved.bin", 250);
    c.expect("RMD sub", 250);
    c.expect("CDUP", 250);
    c.expect("PWD", 257);
    c.expect("QUIT", 221);
}
