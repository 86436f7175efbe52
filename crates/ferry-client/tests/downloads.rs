//! Downloads into local files (`FtpClient::get_file`) against a small fake FTP server on loopback:
//! byte-exact whether spliced or copied, and the checksum asked for in the same write as `RETR`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_client::ftp::{FtpClient, FtpOptions};
use ferry_client::trust::TrustOptions;
use ferry_client::url::RemoteUrl;
use ferry_client::{Checksum, Secret};
use ferry_testkit::files::pseudo_random;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A fake server sending `data` for every RETR (`REST STREAM` and `HASH` in FEAT with `offer_hash`). It answers `HASH` only once the next command line
/// has arrived, so a client that waits for the `HASH` reply before sending `RETR` stalls.
struct Fake {
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

const DIGEST: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

impl Fake {
    async fn start(data: Vec<u8>, offer_hash: bool) -> Fake {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let recorded = lines.clone();
        let data = Arc::new(data);
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, data.clone(), offer_hash, recorded.clone()));
            }
        });
        Fake { addr, lines }
    }

    async fn login(&self) -> FtpClient {
        let url = RemoteUrl::parse(&format!("ftp://u@{}/", self.addr))
            .expect("url")
            .expect("url");
        let opts = FtpOptions {
            active: false,
            timeout: Duration::from_secs(2),
            trust: TrustOptions::default(),
        };
        FtpClient::connect(&url, "u", &Secret::new("pw"), &opts)
            .await
            .expect("login")
    }

    fn received(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }
}

async fn serve(conn: TcpStream, data: Arc<Vec<u8>>, offer_hash: bool, lines: Arc<Mutex<Vec<String>>>) {
    let (read, mut write) = conn.into_split();
    let mut read = BufReader::new(read);
    if write.write_all(b"220 fake\r\n").await.is_err() {
        return;
    }
    let mut data_listener: Option<TcpListener> = None;
    let mut held_hash: Option<String> = None;
    let mut offset = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let cmd = line.trim_end().to_owned();
        lines.lock().expect("lines").push(cmd.clone());
        let verb = cmd.split(' ').next().unwrap_or_default().to_ascii_uppercase();
        if verb == "HASH" {
            // Answered after the next line has arrived (see `Fake`).
            held_hash = Some(cmd.get(5..).unwrap_or_default().to_owned());
            continue;
        }
        if let Some(path) = held_hash.take() {
            let reply = format!("213 SHA-256 0-{} {DIGEST} {path}\r\n", data.len());
            if write.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
        let reply: String = match verb.as_str() {
            "USER" => "331 password\r\n".into(),
            "PASS" => "230 in\r\n".into(),
            "FEAT" if offer_hash => {
                "211-Features:\r\n EPSV\r\n HASH SHA-256*;MD5\r\n REST STREAM\r\n211 End\r\n".into()
            }
            "FEAT" => "211-Features:\r\n EPSV\r\n211 End\r\n".into(),
            "TYPE" | "OPTS" => "200 ok\r\n".into(),
            "PWD" => "257 \"/\"\r\n".into(),
            "REST" => {
                offset = cmd.get(5..).and_then(|n| n.parse().ok()).unwrap_or(0);
                "350 restarting\r\n".into()
            }
            "EPSV" => {
                let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .await
                    .expect("bind data");
                let port = l.local_addr().expect("addr").port();
                data_listener = Some(l);
                format!("229 Entering Extended Passive Mode (|||{port}|)\r\n")
            }
            "RETR" => {
                let Some(l) = data_listener.take() else {
                    let _ = write.write_all(b"425 no data connection\r\n").await;
                    continue;
                };
                let _ = write.write_all(b"150 here it comes\r\n").await;
                if let Ok(Ok((mut d, _))) = tokio::time::timeout(Duration::from_secs(5), l.accept()).await {
                    // Uneven pieces, so the client sees short and long reads.
                    let mut rest = data.get(offset.min(data.len())..).unwrap_or_default();
                    for size in [1usize, 70_000, 3, 1 << 20].iter().cycle() {
                        if rest.is_empty() {
                            break;
                        }
                        let n = (*size).min(rest.len());
                        if d.write_all(&rest[..n]).await.is_err() {
                            break;
                        }
                        rest = &rest[n..];
                    }
                    let _ = d.shutdown().await;
                }
                offset = 0;
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

#[tokio::test]
async fn a_download_into_a_file_is_byte_exact_and_counted() {
    let data = pseudo_random(3 * 1024 * 1024 + 777, 13);
    let fake = Fake::start(data.clone(), false).await;
    let mut client = fake.login().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f");
    let file = std::fs::File::create(&path).expect("create");
    let mut seen = 0u64;
    let (n, fetched) = client
        .get_file("/f", 0, &file, &mut |b| seen += b, false)
        .await
        .expect("get");
    assert_eq!((n, seen), (data.len() as u64, data.len() as u64));
    assert!(fetched.is_none(), "no checksum was asked for");
    assert_eq!(std::fs::read(&path).expect("read"), data);
    // A second download on the same session (the pipe is reused) into a file opened for appending,
    // which splice(2) refuses: copied instead, nothing lost.
    let file = std::fs::File::options().append(true).open(&path).expect("open");
    let (n, _) = client
        .get_file("/f", 0, &file, &mut |_| {}, false)
        .await
        .expect("get again");
    assert_eq!(n, data.len() as u64);
    let mut twice = data.clone();
    twice.extend_from_slice(&data);
    assert_eq!(std::fs::read(&path).expect("read"), twice);
    client.quit().await;
}

#[tokio::test]
async fn a_resumed_download_continues_at_the_files_end() {
    use std::io::Seek;
    let data = pseudo_random(2 * 1024 * 1024 + 5, 13);
    let fake = Fake::start(data.clone(), false).await;
    let mut client = fake.login().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f");
    std::fs::write(&path, &data[..1_000_003]).expect("partial");
    let mut file = std::fs::File::options().write(true).open(&path).expect("open");
    let have = file.seek(std::io::SeekFrom::End(0)).expect("seek");
    let (n, _) = client
        .get_file("/f", have, &file, &mut |_| {}, false)
        .await
        .expect("resume");
    assert_eq!(n, data.len() as u64 - have);
    assert_eq!(std::fs::read(&path).expect("read"), data);
    assert!(
        fake.received().iter().any(|l| l == "REST 1000003"),
        "{:?}",
        fake.received()
    );
}

#[tokio::test]
async fn the_checksum_is_asked_for_in_the_same_write_as_retr() {
    let data = pseudo_random(10_000, 13);
    let fake = Fake::start(data.clone(), true).await;
    let mut client = fake.login().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f");
    let file = std::fs::File::create(&path).expect("create");
    // The fake answers HASH only after RETR has arrived: waiting for that answer first would stall
    // into the client's 2 s timeout.
    let (n, fetched) = client
        .get_file("/f", 0, &file, &mut |_| {}, true)
        .await
        .expect("get with checksum");
    assert_eq!(n, data.len() as u64);
    assert_eq!(std::fs::read(&path).expect("read"), data);
    let Some(Ok(Some(Checksum { algorithm, digest }))) = fetched else {
        panic!("no checksum with the transfer: {fetched:?}");
    };
    assert_eq!(algorithm, ferry_proto::hash::Algorithm::Sha256);
    assert_eq!(ferry_proto::hash::hex(&digest), DIGEST);
    let lines = fake.received();
    let hash = lines.iter().position(|l| l == "HASH /f").expect("HASH sent");
    assert_eq!(
        lines.get(hash + 1).map(String::as_str),
        Some("RETR /f"),
        "{lines:?}"
    );
    client.quit().await;
}

#[tokio::test]
async fn a_resumed_download_sends_no_hash_between_rest_and_retr() {
    let data = pseudo_random(10_000, 13);
    let fake = Fake::start(data.clone(), true).await;
    let mut client = fake.login().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f");
    std::fs::write(&path, &data[..4_000]).expect("partial");
    let mut file = std::fs::File::options().write(true).open(&path).expect("open");
    std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).expect("seek");
    let (n, fetched) = client
        .get_file("/f", 4_000, &file, &mut |_| {}, true)
        .await
        .expect("resume");
    assert_eq!(n, 6_000);
    assert!(
        fetched.is_none(),
        "no checksum asked for with a REST: {fetched:?}"
    );
    assert_eq!(std::fs::read(&path).expect("read"), data);
    assert!(
        !fake.received().iter().any(|l| l.starts_with("HASH")),
        "{:?}",
        fake.received()
    );
    client.quit().await;
}

#[tokio::test]
async fn a_range_lands_at_its_offset_and_only_rest_stream_servers_offer_ranges() {
    use std::io::Seek;
    let data = pseudo_random(2 * 1024 * 1024 + 5, 13);
    let fake = Fake::start(data.clone(), true).await;
    let mut client = fake.login().await;
    assert!(client.has_restart(), "REST STREAM was in FEAT");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f");
    let mut file = std::fs::File::create(&path).expect("create");
    file.set_len(data.len() as u64).expect("size");
    let (start, len) = (1_000_003u64, 500_001u64);
    file.seek(std::io::SeekFrom::Start(start)).expect("seek");
    let mut seen = 0u64;
    let n = client
        .get_file_range("/f", start, len, &file, &mut |b| seen += b)
        .await
        .expect("range");
    assert_eq!((n, seen), (len, len));
    let got = std::fs::read(&path).expect("read");
    let (a, b) = (start as usize, (start + len) as usize);
    assert_eq!(&got[a..b], &data[a..b]);
    assert!(
        got[..a].iter().chain(&got[b..]).all(|&x| x == 0),
        "nothing outside the range"
    );
    assert!(fake.received().iter().any(|l| l == "REST 1000003"));
    // Without REST STREAM in FEAT, no ranges by default.
    let plain = Fake::start(data, false).await;
    assert!(!plain.login().await.has_restart());
}
