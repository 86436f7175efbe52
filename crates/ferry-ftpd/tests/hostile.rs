//! Hostile clients: the login defender, connection limits, the command-rate throttle, the failed-login
//! delay, and the data-connection address checks (PORT/EPRT/PASV, FXP). Real sockets on loopback; a
//! second client address is 127.0.0.2 (all of 127/8 is loopback).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::{tcp_from, Control, Options, TestServer, PASSWORD, USER};
use ferry_auth::defender::ManualClock;

const HOME: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Everything the server sends on a fresh connection from `source` until it closes it (or 10 s pass).
fn greeting_then_close(source: IpAddr, server: &TestServer) -> String {
    let mut s = tcp_from(source, server.addr);
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

/// The first line the server sends on a fresh connection from `source` (then closes it).
fn first_line(source: IpAddr, server: &TestServer) -> String {
    let s = tcp_from(source, server.addr);
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut line = String::new();
    let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut line);
    line
}

/// Whether a connection from `source` is greeted with 220 (then closes it).
fn greeted(source: IpAddr, server: &TestServer) -> bool {
    let mut s = tcp_from(source, server.addr);
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut first = [0u8; 4];
    s.read_exact(&mut first).is_ok() && &first == b"220 "
}

/// These tests play hostile clients from loopback, which the defender exempts by default.
fn score_loopback(config: &mut ferry_ftpd::Config) {
    config.defender.score_loopback = true;
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(SystemTime::now()))
}

// ----- defender ------------------------------------------------------------------------------------

#[test]
fn bans_stored_before_start_are_enforced_from_the_first_connection() {
    let server = TestServer::start_with(Options {
        bans: vec![(HOME, Duration::from_secs(600))],
        tweak: Some(Box::new(score_loopback)),
        ..Options::default()
    });
    let got = greeting_then_close(HOME, &server);
    assert!(
        got.starts_with("421 Your address is banned until ") && got.contains(" UTC"),
        "banned address got {got:?}"
    );
    assert!(!got.contains("220"), "banned address was greeted: {got:?}");
    // Another address is served as usual.
    let mut c = Control::connect_from(OTHER, server.addr);
    c.login(USER, PASSWORD);
}

#[test]
fn failed_logins_past_the_threshold_ban_the_address_until_the_ban_expires() {
    let clock = clock();
    let server = TestServer::start_with(Options {
        clock: Some(clock.clone()),
        tweak: Some(Box::new(|config: &mut ferry_ftpd::Config| {
            config.defender.threshold = 4;
            config.defender.score_loopback = true;
            config.defender.scores.pre_login_disconnect = 0;
            config.session.max_login_attempts = 100;
            config.protection.failed_login_delay = Duration::from_millis(10);
        })),
        ..Options::default()
    });
    let mut c = server.control();
    for _ in 0..3 {
        c.expect(&format!("USER {USER}"), 331);
        c.expect("PASS wrong", 530);
    }
    c.expect(&format!("USER {USER}"), 331);
    // The fourth failure reaches the threshold: 530 for the attempt, then 421 and close.
    c.expect("PASS wrong", 530);
    let r = c.reply();
    assert_eq!(r.code, 421, "{}", r.text());
    assert!(r.text().contains("banned until"), "{}", r.text());
    assert!(c.closed_by_server());
    // New connections from the address are refused before the greeting; others are not affected.
    let got = greeting_then_close(HOME, &server);
    assert!(got.starts_with("421 ") && got.contains("banned"), "{got:?}");
    let mut other = Control::connect_from(OTHER, server.addr);
    other.login(USER, PASSWORD);
    // The first ban lasts ban_time (30 minutes by default).
    clock.advance(Duration::from_secs(29 * 60));
    assert!(greeting_then_close(HOME, &server).starts_with("421 "));
    clock.advance(Duration::from_secs(61));
    assert!(greeted(HOME, &server), "ban did not expire");
}

#[test]
fn unknown_users_score_more_than_wrong_passwords() {
    let server = TestServer::start_tweaked(|config: &mut ferry_ftpd::Config| {
        config.defender.threshold = 4;
        config.defender.score_loopback = true;
        config.defender.scores.pre_login_disconnect = 0;
        config.session.max_login_attempts = 100;
        config.protection.failed_login_delay = Duration::from_millis(10);
    });
    let mut c = server.control();
    // Unknown users score 2 each: the second one bans.
    c.expect("USER mallory", 331);
    c.expect("PASS x", 530);
    c.expect("USER mallory", 331);
    c.expect("PASS x", 530);
    assert_eq!(c.reply().code, 421);
    assert!(c.closed_by_server());
}

#[test]
fn disconnecting_before_login_and_limit_refusals_are_scored() {
    let server = TestServer::start_tweaked(|config: &mut ferry_ftpd::Config| {
        config.defender.threshold = 5;
        config.defender.score_loopback = true;
        config.limits.max_per_ip = 1;
    });
    let held = server.control();
    // Refused by the per-IP limit: 3 points each. Two refusals ban.
    for _ in 0..2 {
        let got = greeting_then_close(HOME, &server);
        assert!(got.starts_with("421 ") && got.contains("Too many"), "{got:?}");
    }
    drop(held);
    assert!(
        common::wait_until(Duration::from_secs(5), || first_line(HOME, &server)
            .contains("banned")),
        "address not banned after limit violations"
    );
    // Disconnects after USER but before login (1 point each) ban too; connecting and closing (a health
    // check) does not score at all.
    let server = TestServer::start_tweaked(|config: &mut ferry_ftpd::Config| {
        config.defender.threshold = 5;
        config.defender.score_loopback = true;
    });
    for _ in 0..20 {
        assert!(greeted(HOME, &server));
        drop(tcp_from(HOME, server.addr));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(greeted(HOME, &server), "health checks were scored");
    for _ in 0..5 {
        let mut c = Control::connect_from(HOME, server.addr);
        c.expect(&format!("USER {USER}"), 331);
    }
    assert!(
        common::wait_until(Duration::from_secs(5), || first_line(HOME, &server)
            .contains("banned")),
        "address not banned after disconnects before login"
    );
}

#[test]
fn allow_listed_addresses_are_never_banned() {
    let server = TestServer::start_tweaked(|config: &mut ferry_ftpd::Config| {
        config.defender.threshold = 2;
        config.defender.score_loopback = true;
        config.defender.allow_list = vec!["127.0.0.0/24".parse().expect("net")];
        config.session.max_login_attempts = 100;
        config.protection.failed_login_delay = Duration::from_millis(10);
    });
    let mut c = server.control();
    for _ in 0..10 {
        c.expect("USER nobody", 331);
        c.expect("PASS x", 530);
    }
    c.login(USER, PASSWORD);
}

#[test]
fn user_always_gets_331_and_a_failed_pass_takes_as_long_for_unknown_users() {
    let delay = Duration::from_millis(800);
    let server = TestServer::start_tweaked(move |config: &mut ferry_ftpd::Config| {
        config.protection.failed_login_delay = delay;
        config.session.max_login_attempts = 100;
    });
    let mut c = server.control();
    let mut time = |user: &str| {
        c.expect(&format!("USER {user}"), 331);
        let started = Instant::now();
        let r = c.expect("PASS wrong", 530);
        assert_eq!(
            r.text(),
            "530 Login incorrect",
            "the reply must not tell users apart"
        );
        started.elapsed()
    };
    let known = time(USER);
    let unknown = time("no-such-user");
    let invalid = time("-not-even-a-valid-name");
    for (what, t) in [("known", known), ("unknown", unknown), ("invalid", invalid)] {
        assert!(t >= delay, "{what} user answered after {t:?}, before the delay");
        assert!(
            t < delay + Duration::from_millis(600),
            "{what} user answered after {t:?}"
        );
    }
    // A correct password is not delayed.
    c.expect(&format!("USER {USER}"), 331);
    let started = Instant::now();
    c.expect(&format!("PASS {PASSWORD}"), 230);
    assert!(
        started.elapsed() < delay,
        "successful login took {:?}",
        started.elapsed()
    );
}

// ----- connection limits ----------------------------------------------------------------------------

#[test]
fn connections_over_the_pending_limit_get_421_and_logged_in_ones_do_not_count() {
    let server = TestServer::start_tweaked(|config: &mut ferry_ftpd::Config| {
        config.limits.max_pending = 2;
    });
    let mut a = server.control();
    let _b = Control::connect_from(OTHER, server.addr);
    let got = greeting_then_close(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)), &server);
    assert!(
        got.starts_with("421 ") && got.contains("waiting to log in"),
        "{got:?}"
    );
    // Once one logs in, a new connection may wait to log in.
    a.login(USER, PASSWORD);
    let mut c = Control::connect_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)), server.addr);
    c.login(USER, PASSWORD);
}

#[test]
fn connections_over_the_total_limit_get_421() {
    let server = TestServer::start_tweaked(|config: &mut ferry_ftpd::Config| {
        config.limits.max_connections = 2;
    });
    let _a = server.login();
    let _b = Control::connect_from(OTHER, server.addr);
    let got = greeting_then_close(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)), &server);
    assert!(got.starts_with("421 Too many connections;"), "{got:?}");
}

/// On a paused clock (after logging in on the real one): the default idle timeout (300 s) passes at
/// once, and no earlier.
#[tokio::test]
async fn idle_timeout_closes_a_logged_in_session_with_421() {
    use tokio::io::AsyncReadExt;
    let server = common::LocalServer::start(common::Options::default()).await;
    let mut c = server.login().await;
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let mut got = Vec::new();
    c.read_to_end(&mut got)
        .await
        .expect("read until the server closes");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("421 ") && text.contains("Idle timeout"),
        "{text}"
    );
    // The deadline was set by PASS, a moment before the clock was paused.
    let waited = started.elapsed();
    assert!(
        (Duration::from_secs(299)..Duration::from_secs(301)).contains(&waited),
        "closed after {waited:?}"
    );
}

#[test]
fn a_passive_listener_nobody_connects_to_gives_425_after_the_data_timeout() {
    let server = TestServer::start_tweaked(|config: &mut ferry_ftpd::Config| {
        config.data_timeout = Duration::from_millis(700);
    });
    std::fs::write(server.path("f"), b"data").expect("write");
    let mut c = server.login();
    c.epsv();
    let started = Instant::now();
    c.expect("RETR f", 150);
    c.expect_reply(425);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(5),
        "{took:?}"
    );
    c.expect("NOOP", 200);
}

// ----- command rate ---------------------------------------------------------------------------------

#[test]
fn a_client_over_the_command_rate_is_slowed_down() {
    let server = TestServer::start_tweaked(|config: &mut ferry_ftpd::Config| {
        config.protection.max_commands_per_sec = 20;
    });
    let mut c = server.login();
    // 40 commands: within the burst of twice the rate, answered at once.
    let started = Instant::now();
    c.send_raw("NOOP\r\n".repeat(40).as_bytes());
    for _ in 0..40 {
        c.expect_reply(200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "burst took {:?}",
        started.elapsed()
    );
    // 60 more at once: 60 over the rate, 3 s of debt before the server reads again.
    c.send_raw("NOOP\r\n".repeat(60).as_bytes());
    for _ in 0..60 {
        c.expect_reply(200);
    }
    let started = Instant::now();
    c.expect("NOOP", 200);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(2000) && waited < Duration::from_secs(6),
        "a command after the flood was answered after {waited:?}"
    );
    // Back under the rate: normal service.
    let started = Instant::now();
    c.expect("NOOP", 200);
    assert!(started.elapsed() < Duration::from_millis(500));
}

// ----- active and passive data connections ---------------------------------------------------------

/// A listener on `ip` with a free port ≥ 1024, non-blocking so that "nobody connected" is observable.
fn trap(ip: IpAddr) -> TcpListener {
    let l = TcpListener::bind((ip, 0)).expect("bind trap listener");
    l.set_nonblocking(true).expect("nonblocking");
    l
}

fn nobody_connected(l: &TcpListener) -> bool {
    matches!(l.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

fn port_arg(addr: SocketAddr) -> String {
    let IpAddr::V4(ip) = addr.ip() else {
        panic!("IPv4 only")
    };
    let [a, b, c, d] = ip.octets();
    format!("{a},{b},{c},{d},{},{}", addr.port() >> 8, addr.port() & 0xff)
}

#[test]
fn port_and_eprt_to_another_address_are_refused_before_any_connection_attempt() {
    let server = TestServer::start();
    std::fs::write(server.path("f"), b"secret").expect("write");
    let victim = trap(OTHER);
    let target = victim.local_addr().expect("addr");
    let mut c = server.login();
    c.expect(&format!("PORT {}", port_arg(target)), 501);
    c.expect("RETR f", 425);
    c.expect(&format!("EPRT |1|{}|{}|", target.ip(), target.port()), 501);
    c.expect("LIST", 425);
    std::thread::sleep(Duration::from_millis(300));
    assert!(nobody_connected(&victim), "the server connected to a third party");
}

#[test]
fn port_and_eprt_to_a_privileged_port_of_the_client_are_refused_without_connecting() {
    let server = TestServer::start();
    std::fs::write(server.path("f"), b"secret").expect("write");
    // Port 1023 on the client's own address; binding it needs root (or CAP_NET_BIND_SERVICE).
    let Ok(victim) = TcpListener::bind((HOME, 1023)) else {
        eprintln!("skipped: cannot bind port 1023 here (not root)");
        return;
    };
    victim.set_nonblocking(true).expect("nonblocking");
    let mut c = server.login();
    c.expect("PORT 127,0,0,1,3,255", 501);
    c.expect("RETR f", 425);
    c.expect("EPRT |1|127.0.0.1|1023|", 501);
    c.expect("RETR f", 425);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        nobody_connected(&victim),
        "the server connected to a privileged port"
    );
}

#[test]
fn port_to_the_client_itself_connects_there() {
    // The positive control for the two tests above: the same trap on the client's address is used.
    let server = TestServer::start();
    std::fs::write(server.path("f"), b"payload").expect("write");
    let trap = trap(HOME);
    let target = trap.local_addr().expect("addr");
    let mut c = server.login();
    c.expect(&format!("PORT {}", port_arg(target)), 200);
    c.expect("RETR f", 150);
    trap.set_nonblocking(false).expect("blocking");
    let (mut data, _) = trap.accept().expect("server connected");
    let mut got = Vec::new();
    data.read_to_end(&mut got).expect("read");
    assert_eq!(got, b"payload");
    c.expect_reply(226);
}

#[test]
fn a_passive_port_refuses_other_addresses_and_accepts_exactly_one_connection() {
    let server = TestServer::start();
    std::fs::write(server.path("f"), b"payload").expect("write");
    let mut c = server.login();
    let addr = c.pasv();
    // A thief on another address connects first: closed at once, no data.
    let mut thief = tcp_from(OTHER, addr);
    thief
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c.expect("RETR f", 150);
    let mut stolen = Vec::new();
    let _ = thief.read_to_end(&mut stolen);
    assert!(stolen.is_empty(), "the thief got {stolen:?}");
    // The client's own connection gets the file.
    let mut data = TcpStream::connect(addr).expect("connect");
    let mut got = Vec::new();
    data.read_to_end(&mut got).expect("read");
    assert_eq!(got, b"payload");
    c.expect_reply(226);
    // The session may keep the listener for its next transfer, but a connection made after the
    // transfer is never used: it is closed when the port is announced again (or when the session
    // drops the listener), and the next transfer takes the client's fresh connection.
    if let Ok(mut again) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        again
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let (got, r) = c.download("RETR f");
        assert_eq!(r.code, 226, "{}", r.text());
        assert_eq!(got, b"payload");
        let mut leaked = Vec::new();
        let _ = again.read_to_end(&mut leaked);
        assert!(leaked.is_empty(), "a second connection got {leaked:?}");
    }
}

#[test]
fn passive_ports_are_random_within_the_range() {
    let server = TestServer::start_tweaked(|config: &mut ferry_ftpd::Config| {
        config.passive_ports = 41000..=41999;
    });
    let mut c = server.login();
    let ports: Vec<u16> = (0..12).map(|_| c.pasv().port()).collect();
    assert!(ports.iter().all(|p| (41000..=41999).contains(p)), "{ports:?}");
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() >= 8, "ports repeat: {ports:?}");
    let sequential = ports.windows(2).filter(|w| w[1] == w[0].wrapping_add(1)).count();
    assert!(sequential < 4, "ports look sequential: {ports:?}");
}

#[test]
fn fxp_needs_danger_allow_fxp_for_the_user() {
    let server = TestServer::start_tweaked(|config: &mut ferry_ftpd::Config| {
        config.protection.danger_allow_fxp_users = vec![USER.to_owned()];
    });
    std::fs::write(server.path("f"), b"site to site").expect("write");
    let other_server = trap(OTHER);
    let target = other_server.local_addr().expect("addr");
    let mut c = server.login();
    // Active to a third address: allowed for this user.
    c.expect(&format!("PORT {}", port_arg(target)), 200);
    c.expect("RETR f", 150);
    other_server.set_nonblocking(false).expect("blocking");
    let (mut data, _) = other_server.accept().expect("server connected to the other site");
    let mut got = Vec::new();
    data.read_to_end(&mut got).expect("read");
    assert_eq!(got, b"site to site");
    c.expect_reply(226);
    // Privileged ports stay refused even with FXP.
    c.expect("EPRT |1|127.0.0.2|1023|", 501);
    // Passive from a third address: accepted.
    let addr = c.pasv();
    let mut third = tcp_from(OTHER, addr);
    c.expect("STOR g", 150);
    third.write_all(b"uploaded by the other site").expect("write");
    drop(third);
    c.expect_reply(226);
    assert_eq!(
        std::fs::read(server.path("g")).expect("read"),
        b"uploaded by the other site"
    );
}

// ----- storage jail over FTP ------------------------------------------------------------------------

#[test]
fn hostile_paths_over_ftp_never_reach_outside_the_root() {
    let server = TestServer::start();
    let outside = server.base().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::write(outside.join("secret.txt"), b"top secret").expect("write");
    std::os::unix::fs::symlink("../outside", server.path("out")).expect("symlink");
    std::os::unix::fs::symlink(&outside, server.path("abs")).expect("symlink");
    std::fs::hard_link(outside.join("secret.txt"), server.path("hard")).expect("hard link");
    let mut c = server.login();
    let names: [&[u8]; 12] = [
        b"../outside/secret.txt",
        b"/../outside/secret.txt",
        b"../../../../../../etc/passwd",
        b"%2e%2e/outside/secret.txt",
        b"..\\outside\\secret.txt",
        b"\xc0\xae\xc0\xae/outside/secret.txt",
        b"out/secret.txt",
        b"abs/secret.txt",
        b"hard",
        b"/out/../out/secret.txt",
        b"./out/./secret.txt",
        b"secret.txt\0",
    ];
    for name in names {
        // RETR: refused, or (for a literal name that happens to exist) never the secret.
        let mut data = c.data();
        let mut line = b"RETR ".to_vec();
        line.extend_from_slice(name);
        c.send_bytes(&line);
        let first = c.reply();
        if first.code == 150 {
            let mut got = Vec::new();
            data.read_to_end(&mut got).expect("read");
            assert_ne!(got, b"top secret", "RETR {}", String::from_utf8_lossy(name));
            c.reply();
        } else {
            assert!(
                first.code >= 500,
                "RETR {}: {}",
                String::from_utf8_lossy(name),
                first.text()
            );
        }
        drop(data);
        if name == b"hard" {
            // A hard link is listed and stat'ed like any file (SECURITY.md, known limits); only its
            // contents are refused.
            continue;
        }
        for verb in [&b"SIZE "[..], b"MDTM ", b"MLST "] {
            let mut line = verb.to_vec();
            line.extend_from_slice(name);
            c.send_bytes(&line);
            let r = c.reply();
            assert!(
                (500..600).contains(&r.code) && !r.text().contains("10"),
                "{} got {}",
                String::from_utf8_lossy(&line),
                r.text()
            );
        }
        // Listings through the name show nothing from outside.
        let mut data = c.data();
        let mut line = b"LIST ".to_vec();
        line.extend_from_slice(name);
        c.send_bytes(&line);
        let first = c.reply();
        if first.code == 150 {
            let mut listing = Vec::new();
            data.read_to_end(&mut listing).expect("read listing");
            assert!(
                !String::from_utf8_lossy(&listing).contains("secret.txt"),
                "LIST {} showed the outside",
                String::from_utf8_lossy(name)
            );
            c.reply();
        }
    }
    // Uploads through escaping names create nothing outside and leave the secret alone.
    for name in ["../outside/new", "out/new", "abs/new"] {
        let r = c.upload(&format!("STOR {name}"), b"x");
        assert!(
            r.code >= 500 || !outside.join("new").exists(),
            "STOR {name}: {}",
            r.text()
        );
    }
    assert!(c.upload("APPE hard", b"appended").code >= 500);
    assert!(!outside.join("new").exists());
    assert_eq!(
        std::fs::read(outside.join("secret.txt")).expect("read"),
        b"top secret"
    );
}

// ----- hostile logged-in users: metadata, offsets, renames -----------------------------------------

/// Mode and mtime of a host file.
fn mode_and_mtime(path: &std::path::Path) -> (u32, SystemTime) {
    use std::os::unix::fs::PermissionsExt;
    let md = std::fs::metadata(path).expect("stat");
    (md.permissions().mode() & 0o7777, md.modified().expect("mtime"))
}

#[test]
fn mfmt_never_changes_a_file_outside_the_root_through_a_link() {
    let server = TestServer::start();
    let outside = server.base().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    let secret = outside.join("secret.txt");
    std::fs::write(&secret, b"top secret").expect("write");
    std::fs::hard_link(&secret, server.path("hard")).expect("hard link");
    std::os::unix::fs::symlink(&secret, server.path("sym")).expect("symlink");
    let before = mode_and_mtime(&secret);
    let mut c = server.login();
    for name in ["hard", "sym"] {
        let r = c.cmd(&format!("MFMT 20000101000000 {name}"));
        assert_eq!(r.code, 550, "MFMT {name}: {}", r.text());
    }
    assert_eq!(mode_and_mtime(&secret), before, "the outside file changed");
    // A plain file inside is still changed.
    std::fs::write(server.path("plain"), b"x").expect("write");
    c.expect("MFMT 20000101000000 plain", 213);
    let t = std::time::UNIX_EPOCH + Duration::from_secs(946_684_800);
    assert_eq!(mode_and_mtime(&server.path("plain")).1, t);
}

#[test]
fn offsets_beyond_any_file_get_a_reply_that_says_so() {
    let server = TestServer::start();
    std::fs::write(server.path("f"), b"abc").expect("write");
    let mut c = server.login();
    c.expect("TYPE I", 200);
    // RETR from 2^64-1: no file reaches there.
    c.expect("REST 18446744073709551615", 350);
    let _data = c.data();
    let r = c.cmd("RETR f");
    assert_eq!(r.code, 554, "RETR: {}", r.text());
    assert!(r.text().contains("Offset out of range"), "{}", r.text());
    // STOR at the largest offset a file may have: beyond what the storage holds.
    c.expect("REST 9223372036854775807", 350);
    let _data = c.data();
    let r = c.cmd("STOR f");
    assert!(
        r.code == 554 && r.text().contains("Offset out of range"),
        "STOR: {}",
        r.text()
    );
    assert_eq!(
        std::fs::read(server.path("f")).expect("read"),
        b"abc",
        "nothing lost"
    );
}

#[test]
fn rnto_of_a_directory_into_itself_says_so() {
    let server = TestServer::start();
    std::fs::create_dir_all(server.path("d/sub")).expect("mkdir");
    let mut c = server.login();
    c.expect("RNFR d", 350);
    let r = c.cmd("RNTO d/sub/d");
    assert_eq!(r.code, 553, "{}", r.text());
    assert!(r.text().contains("into itself"), "{}", r.text());
    assert!(server.path("d/sub").is_dir());
}
