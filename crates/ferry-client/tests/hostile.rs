//! The client against small hostile FTP servers (tokio tasks on loopback): each test fails if the
//! protection it names is removed.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_client::ftp::{FtpClient, FtpOptions};
use ferry_client::trust::TrustOptions;
use ferry_client::url::RemoteUrl;
use ferry_client::{Error, Secret};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How the fake server misbehaves.
#[derive(Clone, Default)]
struct Script {
    /// Answer EPSV with 500, so the client must use PASV.
    refuse_epsv: bool,
    /// The address announced in 227 replies (the data listener is always on 127.0.0.1).
    pasv_announce: Option<Ipv4Addr>,
    /// Bytes sent on the data connection for LIST and RETR.
    data: Vec<u8>,
    /// Replaces the greeting.
    greeting: Option<Vec<u8>>,
    /// Never answers a command with this verb.
    stall_on: Option<&'static str>,
    /// In active mode, first connect to the client from 127.0.0.2 (not the control address) and send
    /// this, then connect properly.
    intruder: Option<&'static [u8]>,
    /// FEAT offers `HASH SHA-256*` and HASH is answered with this reply line.
    hash_reply: Option<&'static str>,
    /// FEAT offers `HASH SHA-256;MD5` (none selected), and TYPE is answered only once the next command
    /// (PWD) is in: a client that waits for each set-up reply before the next command stalls.
    batched_setup: bool,
}

/// A fake server; `lines` records every command line received.
struct Fake {
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    async fn start(script: Script) -> Fake {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let recorded = lines.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, script.clone(), recorded.clone()));
            }
        });
        Fake { addr, lines }
    }

    fn url(&self, path: &str) -> RemoteUrl {
        RemoteUrl::parse(&format!("ftp://u@{}{path}", self.addr))
            .expect("url")
            .expect("url")
    }

    fn received(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }
}

async fn serve(conn: TcpStream, script: Script, lines: Arc<Mutex<Vec<String>>>) {
    let (read, mut write) = conn.into_split();
    let mut read = BufReader::new(read);
    let greeting = script
        .greeting
        .clone()
        .unwrap_or_else(|| b"220 fake\r\n".to_vec());
    if write.write_all(&greeting).await.is_err() {
        return;
    }
    let mut data_listener: Option<TcpListener> = None;
    let mut active_target: Option<SocketAddr> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let cmd = line.trim_end().to_owned();
        lines.lock().expect("lines").push(cmd.clone());
        let verb = cmd.split(' ').next().unwrap_or_default().to_ascii_uppercase();
        if script.stall_on == Some(verb.as_str()) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        let reply: String = match verb.as_str() {
            "USER" => "331 password\r\n".into(),
            "PASS" => "230 in\r\n".into(),
            "FEAT" if script.batched_setup => {
                "211-Features:\r\n EPSV\r\n HASH SHA-256;MD5\r\n211 End\r\n".into()
            }
            "TYPE" if script.batched_setup => {
                line.clear();
                if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let next = line.trim_end().to_owned();
                lines.lock().expect("lines").push(next.clone());
                if next == "PWD" {
                    "200 ok\r\n257 \"/\"\r\n".into()
                } else {
                    "200 ok\r\n500 PWD expected\r\n".into()
                }
            }
            "FEAT" if script.hash_reply.is_some() => {
                "211-Features:\r\n EPSV\r\n HASH SHA-256*;MD5\r\n211 End\r\n".into()
            }
            "FEAT" => "211-Features:\r\n EPSV\r\n211 End\r\n".into(),
            "HASH" => format!("{}\r\n", script.hash_reply.unwrap_or("502 no")),
            "TYPE" | "OPTS" => "200 ok\r\n".into(),
            "PWD" => "257 \"/\"\r\n".into(),
            "SIZE" | "MDTM" | "CWD" => "550 No such file\r\n".into(),
            "EPSV" if script.refuse_epsv => "500 no EPSV\r\n".into(),
            "EPSV" => {
                let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .await
                    .expect("bind data");
                let port = l.local_addr().expect("addr").port();
                data_listener = Some(l);
                format!("229 Entering Extended Passive Mode (|||{port}|)\r\n")
            }
            "PASV" => {
                let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .await
                    .expect("bind data");
                let port = l.local_addr().expect("addr").port();
                data_listener = Some(l);
                let ip = script.pasv_announce.unwrap_or(Ipv4Addr::LOCALHOST).octets();
                format!(
                    "227 Entering Passive Mode ({},{},{},{},{},{})\r\n",
                    ip[0],
                    ip[1],
                    ip[2],
                    ip[3],
                    port >> 8,
                    port & 0xff
                )
            }
            "EPRT" => match ferry_proto::addr::parse_eprt_arg(cmd.get(5..).unwrap_or_default()) {
                Ok(a) => {
                    active_target = Some(a);
                    "200 EPRT ok\r\n".into()
                }
                Err(_) => "501 bad EPRT\r\n".into(),
            },
            "LIST" | "RETR" | "NLST" if active_target.is_some() => {
                let Some(target) = active_target.take() else {
                    continue;
                };
                let _ = write.write_all(b"150 connecting\r\n").await;
                if let Some(evil) = script.intruder {
                    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
                    sock.bind(SocketAddr::new(Ipv4Addr::new(127, 0, 0, 2).into(), 0))
                        .expect("bind 127.0.0.2");
                    if let Ok(mut d) = sock.connect(target).await {
                        let _ = d.write_all(evil).await;
                        let _ = d.shutdown().await;
                    }
                }
                if let Ok(mut d) = TcpStream::connect(target).await {
                    let _ = d.write_all(&script.data).await;
                    let _ = d.shutdown().await;
                }
                "226 done\r\n".into()
            }
            "LIST" | "RETR" | "NLST" => {
                let Some(l) = data_listener.take() else {
                    let _ = write.write_all(b"425 no data connection\r\n").await;
                    continue;
                };
                let _ = write.write_all(b"150 here it comes\r\n").await;
                if let Ok(Ok((mut d, _))) = tokio::time::timeout(Duration::from_secs(5), l.accept()).await {
                    let _ = d.write_all(&script.data).await;
                    let _ = d.shutdown().await;
                }
                "226 done\r\n".into()
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => "502 not here\r\n".into(),
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn opts(timeout: Duration) -> FtpOptions {
    FtpOptions {
        active: false,
        timeout,
        trust: TrustOptions::default(),
    }
}

async fn login(fake: &Fake) -> FtpClient {
    FtpClient::connect(
        &fake.url("/"),
        "u",
        &Secret::new("pw"),
        &opts(Duration::from_secs(5)),
    )
    .await
    .expect("login")
}

async fn fetch(client: &mut FtpClient, path: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    client.get(path, 0, &mut out, &mut |_| {}).await?;
    Ok(out)
}

#[tokio::test]
async fn crlf_in_a_path_is_refused_before_sending() {
    let fake = Fake::start(Script::default()).await;
    let mut client = login(&fake).await;
    let err = fetch(&mut client, "a.txt\r\nDELE important")
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Usage(_)), "{err:?}");
    let err = client.remove("x\0y").await.expect_err("refused");
    assert!(matches!(err, Error::Usage(_)), "{err:?}");
    let received = fake.received();
    assert!(
        !received
            .iter()
            .any(|l| l.starts_with("DELE") || l.contains("a.txt")),
        "the injected command reached the server: {received:?}"
    );
}

#[tokio::test]
async fn crlf_in_a_password_is_refused_before_sending() {
    let fake = Fake::start(Script::default()).await;
    let err = FtpClient::connect(
        &fake.url("/"),
        "u",
        &Secret::new("pw\r\nDELE x"),
        &opts(Duration::from_secs(5)),
    )
    .await
    .expect_err("refused");
    assert!(matches!(err, Error::Usage(_)), "{err:?}");
    assert!(
        !err.to_string().contains("pw"),
        "the password leaked into the error: {err}"
    );
    assert!(!fake.received().iter().any(|l| l.starts_with("DELE")));
}

#[tokio::test]
async fn pasv_address_pointing_elsewhere_is_not_followed() {
    // The data listener is on 127.0.0.1; the reply announces 127.0.0.2, where nothing listens. A client
    // that followed the announced address would fail to connect.
    let fake = Fake::start(Script {
        refuse_epsv: true,
        pasv_announce: Some(Ipv4Addr::new(127, 0, 0, 2)),
        data: b"payload".to_vec(),
        ..Script::default()
    })
    .await;
    let mut client = login(&fake).await;
    let got = fetch(&mut client, "/f")
        .await
        .expect("download via the control peer's address");
    assert_eq!(got, b"payload");
    assert!(
        fake.received().iter().any(|l| l == "PASV"),
        "EPSV refusal falls back to PASV"
    );
}

#[tokio::test]
async fn active_mode_accepts_data_only_from_the_server_address() {
    let fake = Fake::start(Script {
        data: b"the real file".to_vec(),
        intruder: Some(b"INJECTED BY A THIRD PARTY"),
        ..Script::default()
    })
    .await;
    let mut o = opts(Duration::from_secs(5));
    o.active = true;
    let mut client = FtpClient::connect(&fake.url("/"), "u", &Secret::new("pw"), &o)
        .await
        .expect("login");
    let got = fetch(&mut client, "f").await.expect("download");
    assert_eq!(got, b"the real file");
    let received = fake.received();
    assert!(
        received.iter().any(|l| l.starts_with("EPRT |1|127.0.0.1|")),
        "{received:?}"
    );
    assert!(!received
        .iter()
        .any(|l| l.starts_with("EPSV") || l.starts_with("PASV")));
}

#[tokio::test]
async fn checksum_replies_are_parsed_strictly() {
    let good = "213 SHA-256 0-3 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad f";
    let fake = Fake::start(Script {
        hash_reply: Some(good),
        ..Script::default()
    })
    .await;
    let mut client = login(&fake).await;
    assert!(client.has_checksums());
    let sum = client.checksum("f").await.expect("checksum").expect("some");
    assert_eq!(ferry_proto::hash::hex(&sum.digest), &good[16..80]);
    // Another form, a digest of the wrong length, a huge line: no checksum, never a panic or a wrong digest.
    for reply in [
        "213 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "213 SHA-256 0-3 abcd f",
        "213 MD5 0-3 900150983cd24fb0d6963f7d28e17f72 f",
        "250 SHA-256 0-3 zz f",
    ] {
        let fake = Fake::start(Script {
            hash_reply: Some(reply),
            ..Script::default()
        })
        .await;
        let mut client = login(&fake).await;
        assert_eq!(client.checksum("f").await.expect("no error"), None, "{reply}");
    }
    // A missing file is an error, not "no checksum".
    let fake = Fake::start(Script {
        hash_reply: Some("550 No such file"),
        ..Script::default()
    })
    .await;
    let mut client = login(&fake).await;
    assert!(matches!(client.checksum("f").await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn setup_after_login_is_pipelined_and_selects_the_hash_once() {
    let good = "213 SHA-256 0-3 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad f";
    let fake = Fake::start(Script {
        hash_reply: Some(good),
        batched_setup: true,
        ..Script::default()
    })
    .await;
    // The fake answers TYPE only after PWD has arrived: this login succeeds only if the client sends
    // the set-up commands without waiting for each reply.
    let mut client = FtpClient::connect(
        &fake.url("/"),
        "u",
        &Secret::new("pw"),
        &opts(Duration::from_secs(2)),
    )
    .await
    .expect("login with pipelined set-up");
    assert!(client.checksum("f").await.expect("checksum").is_some());
    let received = fake.received();
    let at = |cmd: &str| received.iter().position(|l| l == cmd);
    assert!(
        at("TYPE I") < at("PWD") && at("PWD") < at("OPTS HASH SHA-256"),
        "{received:?}"
    );
    assert!(at("OPTS HASH SHA-256") < at("HASH f"), "{received:?}");
    assert_eq!(
        received.iter().filter(|l| l.starts_with("OPTS HASH")).count(),
        1,
        "{received:?}"
    );
}

#[tokio::test]
async fn epsv_is_tried_first() {
    let fake = Fake::start(Script {
        data: b"x".to_vec(),
        ..Script::default()
    })
    .await;
    let mut client = login(&fake).await;
    assert_eq!(fetch(&mut client, "/f").await.expect("get"), b"x");
    let received = fake.received();
    assert!(
        received.iter().any(|l| l == "EPSV") && !received.iter().any(|l| l == "PASV"),
        "{received:?}"
    );
}

#[tokio::test]
async fn an_endless_reply_line_is_bounded() {
    let mut greeting = b"220 ".to_vec();
    greeting.extend(std::iter::repeat_n(b'A', 1 << 20));
    let fake = Fake::start(Script {
        greeting: Some(greeting),
        ..Script::default()
    })
    .await;
    let err = FtpClient::connect(
        &fake.url("/"),
        "u",
        &Secret::new("pw"),
        &opts(Duration::from_secs(5)),
    )
    .await
    .expect_err("refused");
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn an_endless_multi_line_reply_is_bounded() {
    let mut greeting = b"220-hello\r\n".to_vec();
    for _ in 0..5000 {
        greeting.extend_from_slice(b" more\r\n");
    }
    let fake = Fake::start(Script {
        greeting: Some(greeting),
        ..Script::default()
    })
    .await;
    let err = FtpClient::connect(
        &fake.url("/"),
        "u",
        &Secret::new("pw"),
        &opts(Duration::from_secs(5)),
    )
    .await
    .expect_err("refused");
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn a_listing_line_without_end_is_bounded() {
    let fake = Fake::start(Script {
        data: vec![b'x'; 1 << 20],
        ..Script::default()
    })
    .await;
    let mut client = login(&fake).await;
    let err = client.list("/").await.expect_err("refused");
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn a_silent_server_hits_the_timeout() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = listener.accept().await {
            held.push(c); // accept, never greet
        }
    });
    let url = RemoteUrl::parse(&format!("ftp://u@{addr}/"))
        .expect("url")
        .expect("url");
    let start = Instant::now();
    let err = FtpClient::connect(&url, "u", &Secret::new("pw"), &opts(Duration::from_millis(500)))
        .await
        .expect_err("timeout");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_server_that_stalls_mid_session_hits_the_timeout() {
    let fake = Fake::start(Script {
        stall_on: Some("LIST"),
        ..Script::default()
    })
    .await;
    let mut client = FtpClient::connect(
        &fake.url("/"),
        "u",
        &Secret::new("pw"),
        &opts(Duration::from_millis(700)),
    )
    .await
    .expect("login");
    let start = Instant::now();
    let err = client.list("/").await.expect_err("timeout");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn hostile_listing_names_are_returned_raw_and_judged_unsafe() {
    let listing = b"-rw-r--r-- 1 a b 1 Jan 1 2020 ../../escape\r\n\
-rw-r--r-- 1 a b 1 Jan 1 2020 /etc/passwd\r\n\
-rw-r--r-- 1 a b 1 Jan 1 2020 ok.txt\r\n";
    let fake = Fake::start(Script {
        data: listing.to_vec(),
        ..Script::default()
    })
    .await;
    let mut client = login(&fake).await;
    let entries = client.list("/").await.expect("list");
    let safe: Vec<&str> = entries
        .iter()
        .filter_map(|e| ferry_client::names::local_component(&e.raw_name).ok())
        .collect();
    assert_eq!(entries.len(), 3);
    assert_eq!(safe, ["ok.txt"]);
}

#[tokio::test]
async fn data_reads_are_bounded_by_the_timeout() {
    // The data connection opens but the server never sends or closes it.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let Ok((conn, _)) = listener.accept().await else {
            return;
        };
        let (read, mut write) = conn.into_split();
        let mut read = BufReader::new(read);
        let _ = write.write_all(b"220 x\r\n").await;
        let data = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
        let port = data.local_addr().expect("addr").port();
        let mut held = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let reply = match line.split(' ').next().unwrap_or_default().trim() {
                "USER" => "331 p\r\n".to_owned(),
                "PASS" => "230 ok\r\n".to_owned(),
                "EPSV" => format!("229 (|||{port}|)\r\n"),
                "RETR" => {
                    let _ = write.write_all(b"150 go\r\n").await;
                    if let Ok((d, _)) = data.accept().await {
                        held.push(d);
                    }
                    continue;
                }
                "FEAT" => "211 none\r\n".to_owned(),
                "PWD" => "257 \"/\"\r\n".to_owned(),
                _ => "200 ok\r\n".to_owned(),
            };
            let _ = write.write_all(reply.as_bytes()).await;
        }
    });
    let url = RemoteUrl::parse(&format!("ftp://u@{addr}/"))
        .expect("url")
        .expect("url");
    let mut client = FtpClient::connect(&url, "u", &Secret::new("pw"), &opts(Duration::from_millis(700)))
        .await
        .expect("login");
    let start = Instant::now();
    let mut sink = Vec::new();
    let err = client
        .get("/f", 0, &mut sink, &mut |_| {})
        .await
        .expect_err("stalled");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
}
