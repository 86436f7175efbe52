//! One admission for FTP and SFTP, as `ferry serve` wires it: the same hostile sequences score the same
//! and ban the same on both protocols; connecting and closing never scores (health checks); a password
//! guesser is banned and told until when. The servers run in-process with one login defender, with
//! loopback scoring switched on so that 127.0.0.1 is treated like any other address.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ferry_auth::defender::{Defender, DefenderConfig, ManualClock, Verdict};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// FTP and SFTP servers sharing one defender, on a runtime of their own.
struct Servers {
    ftp: SocketAddr,
    sftp: SocketAddr,
    defender: Arc<Defender>,
    clock: Arc<ManualClock>,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Servers {
    fn start(defender: DefenderConfig) -> Servers {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("files")).expect("mkdir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let clock = Arc::new(ManualClock::new(SystemTime::now()));
        let root = dir.path().to_owned();
        let clock2 = Arc::clone(&clock);
        let (ftp, sftp, defender) = runtime.block_on(async move {
            let (users, storage) = ferry_testkit::store_with_user(
                &root.join("files"),
                &root.join("users.db"),
                USER,
                PASSWORD,
                ferry_auth::Permissions::all(),
            )
            .await
            .expect("users and storage");
            let defender = Arc::new(Defender::new(defender, Some(users.clone())).with_clock(clock2));
            let gate = Arc::new(ferry_admission::LoginGate::new());
            let delay = Duration::from_millis(50);
            let mut ftp_config = ferry_ftpd::Config::default();
            ftp_config.protection.failed_login_delay = delay;
            let ftp_server = ferry_ftpd::Server::new_shared(
                ftp_config,
                users.clone(),
                Arc::clone(&storage),
                Arc::clone(&defender),
                Arc::clone(&gate),
            );
            let key = ferry_sftpd::hostkey::load_or_generate(&root.join("host_key")).expect("host key");
            let mut sftp_config = ferry_sftpd::Config::new(vec![key.key]);
            sftp_config.failed_login_delay = delay;
            let sftp_server =
                ferry_sftpd::Server::new(sftp_config, users, storage, Arc::clone(&defender), gate);
            let ftp = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.expect("bind");
            let sftp = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.expect("bind");
            let addrs = (ftp.local_addr().expect("addr"), sftp.local_addr().expect("addr"));
            tokio::spawn(ferry_ftpd::serve(ftp, ftp_server, std::future::pending()));
            tokio::spawn(ferry_sftpd::serve(sftp, sftp_server, std::future::pending()));
            (addrs.0, addrs.1, defender)
        });
        Servers {
            ftp,
            sftp,
            defender,
            clock,
            runtime,
            _dir: dir,
        }
    }

    fn score(&self) -> u32 {
        self.defender.score(LOOPBACK)
    }

    fn forget(&self) {
        let d = Arc::clone(&self.defender);
        self.runtime
            .block_on(async move { d.unban(LOOPBACK).await })
            .expect("unban");
    }

    /// Waits for the score to reach `want` (the server scores a disconnect once it notices it), then
    /// checks that nothing more arrives.
    fn expect_score(&self, want: u32, what: &str) {
        let deadline = Instant::now() + IO_TIMEOUT;
        while self.score() < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(self.score(), want, "{what}");
    }

    fn banned(&self) -> bool {
        matches!(self.defender.check(LOOPBACK), Verdict::Banned(_))
    }
}

fn scoring() -> DefenderConfig {
    DefenderConfig {
        score_loopback: true,
        // High, so that the table below measures scores without being cut short by a ban.
        threshold: 10_000,
        ..DefenderConfig::default()
    }
}

// ----- FTP client ---------------------------------------------------------------------------------

struct Ftp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Ftp {
    fn connect(addr: SocketAddr) -> (Ftp, String) {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        let writer = stream.try_clone().expect("clone");
        let mut ftp = Ftp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = ftp.reply();
        (ftp, greeting)
    }

    /// One reply (all lines of a multi-line one); empty when the server closed the connection.
    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return all,
                Ok(_) => {}
            }
            all.push_str(&line);
            let b = line.as_bytes();
            if b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' ' {
                return all;
            }
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        if self.writer.write_all(format!("{line}\r\n").as_bytes()).is_err() {
            return String::new();
        }
        self.reply()
    }

    fn login(&mut self, user: &str, password: &str) -> String {
        self.cmd(&format!("USER {user}"));
        self.cmd(&format!("PASS {password}"))
    }
}

// ----- SFTP client (paramiko) ------------------------------------------------------------------------

/// Runs a paramiko script against the SFTP server at `addr` (see the test kit's `paramiko_script`).
fn paramiko(addr: SocketAddr, body: &str) -> String {
    ferry_testkit::clients::paramiko_script(addr.port(), body)
}

// ----- the table -----------------------------------------------------------------------------------

/// A hostile (or harmless) sequence, as each protocol plays it.
struct Case {
    name: &'static str,
    ftp: fn(SocketAddr),
    sftp: fn(SocketAddr),
    score: u32,
}

fn connect_close(addr: SocketAddr) {
    for _ in 0..5 {
        drop(TcpStream::connect(addr).expect("connect"));
    }
}

fn read_banner_close(addr: SocketAddr) {
    for _ in 0..5 {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        let mut buf = [0u8; 64];
        assert!(s.read(&mut buf).expect("banner") > 0);
    }
}

const CASES: &[Case] = &[
    Case {
        name: "connect and close without reading, 5 times",
        ftp: connect_close,
        sftp: connect_close,
        score: 0,
    },
    Case {
        name: "read the greeting and close, 5 times",
        ftp: read_banner_close,
        sftp: read_banner_close,
        score: 0,
    },
    Case {
        name: "a user name, then leave",
        ftp: |a| {
            let (mut f, _) = Ftp::connect(a);
            f.cmd("USER alice");
        },
        sftp: |a| {
            paramiko(
                a,
                "t = transport()\ntry:\n    t.auth_none('alice')\nexcept paramiko.BadAuthenticationType:\n    pass\nt.close()",
            );
        },
        score: 1,
    },
    Case {
        name: "an unknown user, then leave",
        ftp: |a| {
            let (mut f, _) = Ftp::connect(a);
            assert!(f.login("mallory", "x").starts_with("530"));
        },
        sftp: |a| {
            let out = paramiko(
                a,
                "t = transport()\nprint(try_password(t, 'mallory', 'x'))\nt.close()",
            );
            assert_eq!(out.trim(), "refused");
        },
        score: 2 + 1,
    },
    Case {
        name: "three wrong passwords on one connection, then leave",
        ftp: |a| {
            let (mut f, _) = Ftp::connect(a);
            for _ in 0..3 {
                assert!(f.login(USER, "wrong").starts_with("530"));
            }
        },
        sftp: |a| {
            let out = paramiko(
                a,
                "t = transport()\nfor i in range(3):\n    print(try_password(t, 'alice', 'wrong'))\nt.close()",
            );
            assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["refused"; 3]);
        },
        score: 3 + 1,
    },
    Case {
        name: "a typo, then the right password",
        ftp: |a| {
            let (mut f, _) = Ftp::connect(a);
            assert!(f.login(USER, "wrong").starts_with("530"));
            assert!(f.login(USER, PASSWORD).starts_with("230"));
            f.cmd("QUIT");
        },
        sftp: |a| {
            let out = paramiko(
                a,
                &format!(
                    "t = transport()\nprint(try_password(t, 'alice', 'wrong'))\n\
                     print(try_password(t, 'alice', '{PASSWORD}'))\n\
                     print(paramiko.SFTPClient.from_transport(t).listdir('/'))\nt.close()"
                ),
            );
            assert!(out.starts_with("refused\nok\n"), "{out}");
        },
        score: 1,
    },
];

#[test]
fn the_same_sequences_score_the_same_on_ftp_and_sftp() {
    let s = Servers::start(scoring());
    for case in CASES {
        for (protocol, addr, run) in [("FTP", s.ftp, case.ftp), ("SFTP", s.sftp, case.sftp)] {
            s.forget();
            run(addr);
            s.expect_score(case.score, &format!("{protocol}: {}", case.name));
            assert!(!s.banned());
        }
    }
}

#[test]
fn health_checks_every_two_seconds_for_an_hour_never_score() {
    let s = Servers::start(DefenderConfig {
        score_loopback: true,
        ..DefenderConfig::default()
    });
    // 1,800 checks of each kind per protocol, the defender's clock moving 2 s between them.
    let started = Instant::now();
    for i in 0..1800 {
        for addr in [s.ftp, s.sftp] {
            drop(TcpStream::connect(addr).expect("connect"));
            let mut c = TcpStream::connect(addr).expect("connect");
            c.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
            let mut buf = [0u8; 64];
            let n = c.read(&mut buf).expect("greeting");
            assert!(n > 0, "check {i}: closed without a greeting");
            assert!(
                !buf.starts_with(b"421"),
                "check {i}: {}",
                String::from_utf8_lossy(&buf[..n])
            );
        }
        s.clock.advance(Duration::from_secs(2));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.score(), 0);
    assert!(!s.banned());
    eprintln!("7,200 health checks in {:?}", started.elapsed());
}

#[test]
fn loopback_is_not_scored_by_default() {
    let s = Servers::start(DefenderConfig::default());
    for _ in 0..8 {
        let (mut f, _) = Ftp::connect(s.ftp);
        for _ in 0..3 {
            assert!(f.login(USER, "wrong").starts_with("530"));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.score(), 0);
    assert!(!s.banned());
    let (mut f, greeting) = Ftp::connect(s.ftp);
    assert!(greeting.starts_with("220"), "{greeting}");
    assert!(f.login(USER, PASSWORD).starts_with("230"));
}

#[test]
fn an_ftp_guesser_is_banned_within_twenty_passwords_and_told_until_when() {
    let s = Servers::start(DefenderConfig {
        score_loopback: true,
        ..DefenderConfig::default()
    });
    let mut tried = 0;
    let mut last = String::new();
    'guessing: while tried < 20 {
        let (mut f, greeting) = Ftp::connect(s.ftp);
        if !greeting.starts_with("220") {
            last = greeting;
            break;
        }
        for _ in 0..3 {
            tried += 1;
            let reply = f.login(USER, &format!("guess{tried}"));
            if reply.contains("421") {
                last = reply;
                break 'guessing;
            }
        }
        drop(f);
        // Let the server notice the disconnect (it scores it) before the next connection.
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(s.banned(), "not banned after {tried} wrong passwords");
    assert!(tried <= 20, "{tried}");
    assert!(
        last.contains("421 Your address is banned until ") && last.contains(" UTC"),
        "{last}"
    );
    // Both protocols refuse it now, saying why: FTP with 421 before the greeting, SSH with a
    // disconnect message.
    let (_, greeting) = Ftp::connect(s.ftp);
    assert!(
        greeting.starts_with("421 Your address is banned until "),
        "{greeting}"
    );
    let out = Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-p",
            &s.sftp.port().to_string(),
            "alice@127.0.0.1",
        ])
        .output()
        .expect("ssh (install openssh-client with scripts/install-test-deps.sh)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("your address is banned until"), "{stderr}");
}

#[test]
fn an_sftp_guesser_is_banned_within_twenty_passwords() {
    let s = Servers::start(DefenderConfig {
        score_loopback: true,
        ..DefenderConfig::default()
    });
    let out = paramiko(
        s.sftp,
        "n = 0\nwhile n < 20:\n    try:\n        t = transport()\n    except Exception as e:\n        print('refused at connect:', e)\n        break\n    for i in range(6):\n        n += 1\n        try:\n            t.auth_password('alice', 'guess%d' % n)\n        except paramiko.AuthenticationException:\n            pass\n        except Exception as e:\n            print('closed:', e)\n            break\n        if not t.is_active():\n            break\n    t.close()\nprint('tried', n)",
    );
    assert!(s.banned(), "not banned: {out}");
    let (_, greeting) = Ftp::connect(s.ftp);
    assert!(
        greeting.starts_with("421 Your address is banned until "),
        "{greeting}"
    );
}
