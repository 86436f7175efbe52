//! Exact replies on a raw control connection: line limits, Telnet handling, login rules, multi-line
//! reply formats, command sequencing, timeouts, connection limits and shutdown.
//! (Data connections, transfers and the path jail are in `raw_data.rs`.)

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use common::{write_file, TestServer};

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn overlong_line_is_answered_500_and_the_session_continues() {
    let server = TestServer::start();
    let mut c = server.control();
    let mut line = b"NOOP ".to_vec();
    line.extend(std::iter::repeat_n(b'x', 5 * 1024));
    c.send_bytes(&line);
    assert_eq!(c.reply().code, 500);
    c.expect("NOOP", 200);
    // Also after login, and for a verb that would otherwise need an argument.
    c.login(common::USER, common::PASSWORD);
    let mut line = b"CWD ".to_vec();
    line.extend(std::iter::repeat_n(b'd', 5 * 1024));
    c.send_bytes(&line);
    assert_eq!(c.reply().code, 500);
    c.expect("NOOP", 200);
    c.expect("PWD", 257);
}

#[test]
fn binary_garbage_line_is_answered_500() {
    let server = TestServer::start();
    let mut c = server.control();
    c.send_bytes(&[0x80, 0x9f, 0xc3, 0x28, b' ', 0x01, 0x02, 0xfe, 0x7f]);
    let r = c.reply();
    assert_eq!(r.code, 500, "{}", r.text());
    c.expect("NOOP", 200);
}

#[test]
fn telnet_will_is_refused_with_dont() {
    let server = TestServer::start();
    let mut c = server.control();
    c.send_raw(&[0xff, 0xfb, 0x01]); // IAC WILL ECHO
    c.send("NOOP");
    assert_eq!(c.read_exact(3), [0xff, 0xfe, 0x01], "expected IAC DONT ECHO");
    assert_eq!(c.reply().code, 200);
}

#[test]
fn doubled_iac_in_an_argument_is_one_0xff_byte() {
    let server = TestServer::start();
    let mut c = server.login();
    c.send_bytes(b"MKD a\xff\xffb");
    let r = c.reply();
    assert_eq!(r.code, 257, "{}", r.text());
    // The reply escapes the byte again as IAC IAC.
    assert!(
        r.lines[0].windows(4).any(|w| w == b"a\xff\xffb"),
        "257 line {:?}",
        r.lines[0]
    );
    use std::os::unix::ffi::OsStrExt;
    let on_disk = server.root().join(std::ffi::OsStr::from_bytes(b"a\xffb"));
    assert!(
        on_disk.is_dir(),
        "expected directory named a\\xffb, found {:?}",
        names_in(&server.root())
    );
}

#[test]
fn telnet_interrupt_and_abor_without_transfer_gets_225_or_226() {
    let server = TestServer::start();
    let mut c = server.login();
    // IAC IP, IAC DM, then ABOR (the Synch sequence, in band).
    c.send_raw(b"\xff\xf4\xff\xf2ABOR\r\n");
    let r = c.reply();
    assert!(
        r.code == 225 || r.code == 226,
        "ABOR with no transfer got {}",
        r.text()
    );
    c.expect("NOOP", 200);
}

#[test]
fn commands_before_login_are_answered_530() {
    let server = TestServer::start();
    let mut c = server.control();
    c.expect("LIST", 530);
    c.expect("CWD /", 530);
    c.expect("RETR x", 530);
    c.expect("PASV", 530);
    c.expect("USER nosuch", 331);
    c.expect("PASS x", 530);
    c.expect("LIST", 530);
}

#[test]
fn unknown_unimplemented_and_unsupported_parameters_get_distinct_codes() {
    let server = TestServer::start();
    let mut c = server.control();
    c.expect("XYZZY", 500);
    c.expect("SMNT x", 502);
    c.expect("LPSV", 502);
    c.login(common::USER, common::PASSWORD);
    c.expect("XYZZY plugh", 500);
    c.expect("SMNT /x", 502);
    c.expect("LPSV", 502);
    c.expect("TYPE E", 504);
    c.expect("TYPE I", 200);
    c.expect("TYPE A", 200);
}

#[test]
fn feat_is_a_multiline_reply_with_space_indented_features() {
    let server = TestServer::start();
    let mut c = server.control();
    let r = c.expect("FEAT", 211);
    assert!(r.lines.len() >= 3, "{}", r.text());
    assert!(r.lines[0].starts_with(b"211-"), "{}", r.text());
    assert_eq!(
        r.lines.last().map(Vec::as_slice),
        Some(&b"211 End"[..]),
        "{}",
        r.text()
    );
    let features: Vec<String> = r.lines[1..r.lines.len() - 1]
        .iter()
        .map(|l| {
            let s = String::from_utf8_lossy(l).into_owned();
            assert!(
                s.starts_with(' ') && !s.starts_with("  "),
                "feature line {s:?} must start with one space"
            );
            s[1..].to_owned()
        })
        .collect();
    for want in ["UTF8", "EPSV", "SIZE", "MDTM", "REST STREAM"] {
        assert!(
            features.iter().any(|f| f == want),
            "FEAT lacks {want}: {features:?}"
        );
    }
    let mlst = features
        .iter()
        .find(|f| f.starts_with("MLST "))
        .expect("FEAT lacks MLST");
    for fact in ["type*;", "size*;", "modify*;"] {
        assert!(mlst.contains(fact), "MLST feature {mlst:?} lacks {fact}");
    }
}

#[test]
fn mlst_entry_line_has_exactly_one_leading_space() {
    let server = TestServer::start();
    write_file(&server.path("hello.txt"), b"0123456789");
    let mut c = server.login();
    let r = c.expect("MLST hello.txt", 250);
    assert_eq!(r.lines.len(), 3, "{}", r.text());
    assert!(r.lines[0].starts_with(b"250-"), "{}", r.text());
    let entry = String::from_utf8_lossy(&r.lines[1]).into_owned();
    assert!(
        entry.starts_with(' ') && !entry.starts_with("  "),
        "entry line {entry:?}"
    );
    let (facts, name) = entry[1..]
        .split_once("; ")
        .map(|(f, n)| (format!("{f};"), n))
        .expect("facts; name");
    assert!(facts.to_ascii_lowercase().contains("type=file;"), "{facts}");
    assert!(facts.to_ascii_lowercase().contains("size=10;"), "{facts}");
    assert!(name.ends_with("hello.txt"), "{name}");
    assert!(r.lines[2].starts_with(b"250 "), "{}", r.text());
    // A missing file is 550.
    c.expect("MLST nope.txt", 550);
}

#[test]
fn stat_and_help_are_multiline_replies() {
    let server = TestServer::start();
    let mut c = server.login();
    let r = c.expect("STAT", 211);
    assert!(
        r.lines.len() >= 3 && r.lines[0].starts_with(b"211-"),
        "{}",
        r.text()
    );
    assert!(r.lines.last().expect("last").starts_with(b"211 "), "{}", r.text());
    let r = c.expect("HELP", 214);
    assert!(
        r.lines.len() >= 3 && r.lines[0].starts_with(b"214-"),
        "{}",
        r.text()
    );
    assert!(r.lines.last().expect("last").starts_with(b"214 "), "{}", r.text());
    let all = r.text();
    for verb in ["RETR", "STOR", "EPSV", "MLSD"] {
        assert!(all.contains(verb), "HELP does not mention {verb}: {all}");
    }
    c.expect("NOOP", 200);
}

/// Replies the socket cannot take at once (the client is not reading, and its receive window is
/// small) wait, then arrive whole and in order: the server writes what the socket takes straight away
/// and the rest under its time-out.
#[test]
fn replies_larger_than_the_socket_buffers_arrive_whole_once_the_client_reads() {
    use std::io::{BufRead, BufReader, Write};
    // Two batches of 60 (a client may pipeline at most 64 commands), the second sent while the server
    // is still writing the first's replies.
    const BATCH: usize = 60;
    let server = TestServer::start();
    // 200 entries (STAT's most) of about 250 bytes each: about 6 MB of replies for the 120 commands,
    // more than the server's socket buffer grows to (4 MiB by default on Linux).
    let names: Vec<String> = (0..200).map(|i| format!("{i:04}-{}", "n".repeat(240))).collect();
    for name in &names {
        write_file(&server.path(format!("d/{name}")), b"");
    }
    // A small receive buffer, set before connecting, keeps the window small (loopback would otherwise
    // take megabytes).
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(server.addr),
        socket2::Type::STREAM,
        None,
    )
    .expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    sock.connect_timeout(&server.addr.into(), Duration::from_secs(10))
        .expect("connect");
    let mut w: TcpStream = sock.into();
    w.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut r = BufReader::new(w.try_clone().expect("clone"));
    // One reply: its lines, up to the one that starts with its code and a space.
    let mut reply = || {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(
                r.read_line(&mut line).expect("read") > 0,
                "closed after {lines:?}"
            );
            // The first line's code and a space; a single-line reply is its own first line.
            let code = lines
                .first()
                .unwrap_or(&line)
                .get(..3)
                .unwrap_or_default()
                .to_owned();
            let last = line.get(..3) == Some(code.as_str()) && line.get(3..4) == Some(" ");
            lines.push(line);
            if last {
                return lines;
            }
        }
    };
    assert!(reply()[0].starts_with("220"));
    write!(w, "USER {}\r\nPASS {}\r\n", common::USER, common::PASSWORD).expect("login");
    assert!(reply()[0].starts_with("331"));
    assert!(reply()[0].starts_with("230"));
    for _ in 0..2 {
        w.write_all("STAT d\r\n".repeat(BATCH).as_bytes()).expect("STAT");
        std::thread::sleep(Duration::from_millis(500));
    }
    for round in 0..2 * BATCH {
        let lines = reply();
        assert!(lines[0].starts_with('2'), "round {round}: {}", lines.concat());
        // Each entry's line ends with its name.
        let listed: std::collections::HashSet<&str> =
            lines.iter().filter_map(|l| l.split_whitespace().last()).collect();
        for name in &names {
            assert!(
                listed.contains(name.as_str()),
                "round {round}: STAT d lacks {name}"
            );
        }
    }
    w.write_all(b"NOOP\r\n").expect("NOOP");
    assert!(reply()[0].starts_with("200"));
}

#[test]
fn rnto_without_rnfr_is_a_bad_sequence() {
    let server = TestServer::start();
    write_file(&server.path("a"), b"a");
    let mut c = server.login();
    c.expect("RNTO b", 503);
    // RNTO must immediately follow RNFR.
    c.expect("RNFR a", 350);
    c.expect("NOOP", 200);
    c.expect("RNTO b", 503);
    assert!(server.path("a").exists() && !server.path("b").exists());
    c.expect("RNFR a", 350);
    c.expect("RNTO b", 250);
    assert!(!server.path("a").exists() && server.path("b").exists());
}

#[test]
fn opts_utf8_on_is_accepted() {
    let server = TestServer::start();
    let mut c = server.control();
    c.expect("OPTS UTF8 ON", 200);
    c.login(common::USER, common::PASSWORD);
    c.expect("OPTS UTF8 ON", 200);
}

#[test]
fn quotes_in_257_paths_are_doubled() {
    let server = TestServer::start();
    let mut c = server.login();
    let r = c.expect("MKD say \"hi\"", 257);
    assert_eq!(
        r.lines,
        vec![b"257 \"/say \"\"hi\"\"\" created".to_vec()],
        "{}",
        r.text()
    );
    c.expect("CWD say \"hi\"", 250);
    let r = c.expect("PWD", 257);
    assert!(r.text().starts_with("257 \"/say \"\"hi\"\"\" "), "{}", r.text());
    assert!(server.path("say \"hi\"").is_dir());
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let server = TestServer::start();
    let mut c = server.control();
    c.send_raw(
        format!(
            "USER {}\r\nPASS {}\r\nPWD\r\nTYPE I\r\nMKD p\r\nCWD p\r\nPWD\r\n",
            common::USER,
            common::PASSWORD
        )
        .as_bytes(),
    );
    let codes: Vec<u16> = (0..7).map(|_| c.reply().code).collect();
    assert_eq!(codes, [331, 230, 257, 200, 257, 250, 257]);
}

/// Each command is read whole, the server clears readiness without reading again, and the next one
/// (alone in its packet, or after an urgent mark) is still read and answered.
#[test]
fn commands_around_urgent_marks_are_all_answered() {
    let server = TestServer::start();
    let mut c = server.login();
    for _ in 0..3 {
        c.expect("NOOP", 200);
    }
    // Python ftplib's abort: a whole line sent urgent, so the mark is on its LF.
    c.send_raw(b"NOOP\r\n");
    c.send_out_of_band(b"NOOP\r\n");
    // The Telnet Synch of BSD clients: the mark after IAC IP IAC, the command after it.
    c.send_raw(b"NOOP\r\n\xff\xf4\xff");
    c.send_out_of_band(b"\xf2");
    c.send_raw(b"NOOP\r\nNOOP\r\n");
    let codes: Vec<u16> = (0..5).map(|_| c.reply().code).collect();
    assert_eq!(codes, [200; 5]);
    c.expect("PWD", 257);
}

/// A client that sends its last command and half-closes is answered, and its session ends at once
/// (the end of input is not lost when a read that ends a line clears readiness).
#[test]
fn a_client_that_half_closes_after_its_command_is_answered_and_let_go() {
    use std::io::{Read, Write};
    let server = TestServer::start();
    let mut s = std::net::TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let mut banner = [0u8; 512];
    let n = s.read(&mut banner).expect("banner");
    assert!(
        banner[..n].starts_with(b"220"),
        "{:?}",
        String::from_utf8_lossy(&banner[..n])
    );
    let started = std::time::Instant::now();
    s.write_all(b"NOOP\r\n").expect("write");
    s.shutdown(std::net::Shutdown::Write).expect("half-close");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("the server closes its side");
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.starts_with("200 "), "after the half-close: {rest:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "session lingered {:?}",
        started.elapsed()
    );
}

#[test]
fn rein_logs_out_and_a_new_login_works() {
    let server = TestServer::start();
    let mut c = server.login();
    std::fs::create_dir(server.path("x")).expect("mkdir");
    c.expect("CWD x", 250);
    c.expect("REIN", 220);
    c.expect("PWD", 530);
    c.login(common::USER, common::PASSWORD);
    assert!(c.expect("PWD", 257).text().starts_with("257 \"/\""));
}

#[test]
fn too_many_failed_logins_close_the_connection() {
    let server = TestServer::start();
    let mut c = server.control();
    for _ in 0..2 {
        c.expect(&format!("USER {}", common::USER), 331);
        c.expect("PASS wrong", 530);
    }
    c.expect(&format!("USER {}", common::USER), 331);
    let r = c.cmd("PASS wrong");
    assert_eq!(r.code, 530, "{}", r.text());
    assert!(r.text().contains("too many"), "{}", r.text());
    assert!(
        c.closed_by_server(),
        "connection still open after too many failures"
    );
}

/// On a paused clock: the default login timeout (60 s) passes at once, and not before its time.
#[tokio::test]
async fn login_timeout_closes_an_idle_unauthenticated_session_with_421() {
    use tokio::io::AsyncReadExt;
    let server = common::LocalServer::start(common::Options::default()).await;
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let mut c = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let mut got = Vec::new();
    c.read_to_end(&mut got)
        .await
        .expect("read until the server closes");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("220 ") && text.contains("\r\n421 "), "{text}");
    // Never before the 60 s; a little after is possible, as the paused clock may jump to other timers
    // (the ban refresh) while the connection is still being accepted.
    let waited = started.elapsed();
    assert!(
        (Duration::from_secs(60)..Duration::from_secs(180)).contains(&waited),
        "closed after {waited:?}"
    );
}

#[test]
fn connections_over_the_per_ip_limit_get_421() {
    let server = TestServer::start_tweaked(|config: &mut ferry_ftpd::Config| {
        config.limits.max_per_ip = 2;
    });
    let mut a = server.control();
    let _b = server.control();
    let mut third = TcpStream::connect(server.addr).expect("connect");
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut got = Vec::new();
    third.read_to_end(&mut got).expect("read refusal");
    assert!(
        got.starts_with(b"421 "),
        "third connection got {:?}",
        String::from_utf8_lossy(&got)
    );
    // Slots are released when connections end.
    a.expect("QUIT", 221);
    drop(a);
    assert!(
        common::wait_until(Duration::from_secs(5), || {
            let mut s = TcpStream::connect(server.addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            let mut first = [0u8; 4];
            s.read_exact(&mut first).is_ok() && &first == b"220 "
        }),
        "slot not released after QUIT"
    );
}

#[test]
fn shutdown_tells_open_sessions_421() {
    let mut server = TestServer::start();
    let mut c = server.login();
    server.stop();
    c.expect_reply(421);
    assert!(c.closed_by_server());
}
