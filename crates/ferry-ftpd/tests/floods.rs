//! Floods on loopback, bounded in count and time: 2,000 connections that send nothing, 2,000 that send
//! one byte a second, and 500 failing logins, all from 127.0.0.1. During each, a legitimate client on
//! 127.0.0.2 must still log in and download a file within 2 s, and the process's memory must stay
//! bounded. The floods run one after another in a single test (so their file descriptors and memory
//! figures do not mix with each other); the whole test takes well under a minute.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::rss::{raise_nofile, rss_kib};
use common::{Control, TestServer, PASSWORD, USER};

const FLOOD: usize = 2_000;
const LEGIT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const PAYLOAD_LEN: usize = 256 * 1024;
/// Memory the process may gain during a connection flood (server and client together).
const MAX_GROWTH_KIB: u64 = 64 * 1024;
/// Memory the process may gain during the login flood: the Argon2id threads keep up to 19 MiB each in
/// their allocator arenas, plus allocator slack. (Before the fixed Argon2id threads, 25 concurrent
/// failures grew it by ~400 MB, in proportion to the burst.)
const MAX_LOGIN_GROWTH_KIB: u64 = 160 * 1024;

/// Logs in from 127.0.0.2 and downloads the test file; returns how long it took.
fn legit_download(server: &TestServer) -> Duration {
    let started = Instant::now();
    let mut c = Control::connect_from(LEGIT, server.addr);
    c.login(USER, PASSWORD);
    let (data, r) = c.download("RETR payload");
    assert_eq!(r.code, 226, "{}", r.text());
    assert_eq!(data.len(), PAYLOAD_LEN);
    let took = started.elapsed();
    c.expect("QUIT", 221);
    took
}

/// Opens up to `n` connections from 127.0.0.1 (each gets a short connect timeout; refusals are fine).
fn open_many(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok())
        .collect()
}

fn report(name: &str, before: u64, peak: u64, after: u64, legit: Duration, max_growth: u64) {
    eprintln!(
        "flood {name}: legit client logged in and downloaded in {legit:?}; RSS before {before} KiB, \
         peak {peak} KiB, after {after} KiB"
    );
    assert!(
        legit < Duration::from_secs(2),
        "{name}: legitimate client took {legit:?}"
    );
    assert!(
        peak.saturating_sub(before) < max_growth,
        "{name}: RSS grew from {before} KiB to {peak} KiB"
    );
}

fn flood_server() -> TestServer {
    // The floods come from loopback, which the defender exempts unless told otherwise.
    let server = TestServer::start_tweaked(|c: &mut ferry_ftpd::Config| c.defender.score_loopback = true);
    common::write_file(&server.path("payload"), vec![7u8; PAYLOAD_LEN]);
    // Warm up: the first login computes hashes and grows pools; measure after it.
    legit_download(&server);
    server
}

#[test]
fn floods_do_not_lock_out_a_legitimate_client_or_grow_memory() {
    let limit = raise_nofile(3 * FLOOD as u64 + 1_000);
    assert!(
        limit >= 2 * FLOOD as u64 + 500,
        "cannot raise RLIMIT_NOFILE to hold the flood (limit {limit})"
    );
    let test_started = Instant::now();

    // 1. Connections that open and send nothing.
    {
        let server = flood_server();
        let before = rss_kib();
        let conns = open_many(server.addr, FLOOD);
        let peak_during = rss_kib();
        let legit = legit_download(&server);
        let peak = peak_during.max(rss_kib());
        drop(conns);
        thread::sleep(Duration::from_millis(300));
        report(
            "silent connections",
            before,
            peak,
            rss_kib(),
            legit,
            MAX_GROWTH_KIB,
        );
    }

    // 2. Connections that send one byte a second (slow loris), for 4 seconds.
    {
        let server = flood_server();
        let before = rss_kib();
        let mut conns = open_many(server.addr, FLOOD);
        for s in &conns {
            let _ = s.set_write_timeout(Some(Duration::from_millis(50)));
        }
        let mut peak = before;
        let mut worst = Duration::ZERO;
        for second in 0..4 {
            let tick = Instant::now();
            for s in &mut conns {
                let _ = s.write_all(b"U");
            }
            peak = peak.max(rss_kib());
            if second % 2 == 1 {
                worst = worst.max(legit_download(&server));
            }
            thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
        }
        drop(conns);
        thread::sleep(Duration::from_millis(300));
        report(
            "one byte a second",
            before,
            peak.max(rss_kib()),
            rss_kib(),
            worst,
            MAX_GROWTH_KIB,
        );
    }

    // 3. 500 failing logins from one address, 20 at a time.
    {
        let server = flood_server();
        let before = rss_kib();
        let attempts = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let addr = server.addr;
        let workers: Vec<_> = (0..20)
            .map(|_| {
                let (attempts, refused) = (Arc::clone(&attempts), Arc::clone(&refused));
                thread::spawn(move || {
                    while attempts.fetch_add(1, Ordering::Relaxed) < 500 {
                        if !failing_login(addr) {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(200));
        let legit = legit_download(&server);
        let peak = rss_kib();
        for w in workers {
            w.join().expect("worker");
        }
        let refused = refused.load(Ordering::Relaxed);
        eprintln!("flood failing logins: {refused} of 500 attempts refused before the password (banned)");
        assert!(
            refused > 400,
            "the defender did not stop the guessing ({refused} refused)"
        );
        report(
            "failing logins",
            before,
            peak.max(rss_kib()),
            rss_kib(),
            legit,
            MAX_LOGIN_GROWTH_KIB,
        );
    }
    eprintln!("floods took {:?}", test_started.elapsed());
}

/// One connection that tries a wrong password; false if it was refused before it could try.
fn failing_login(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap_or(0);
    if !buf[..n].starts_with(b"220") {
        return false;
    }
    if s.write_all(b"USER guess\r\nPASS wrong\r\n").is_err() {
        return false;
    }
    // 331, then 530 after the failed-login delay (or 421 when this attempt triggers the ban).
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"530 " || w == b"421 ") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    true
}
