//! Many transfers in progress at the same moment: every one of them completes, byte-exact, with `226`.
//! Uploads are in progress on the server's side at once (none can end before its client sends the
//! rest); a download of this size may already be all in the kernel's socket buffers when its client
//! pauses, so downloads are concurrent from the clients' side. (The bounded benchmark for 1,000 and
//! more, with downloads larger than the socket buffers, is `bench/sessions.py --active`.)

mod common;

use std::sync::Arc;

use common::rss::raise_nofile;
use common::{read_reply, TestServer, PASSWORD, USER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// Transfers at once; each client holds a control and a data connection, and so does the server.
const CLIENTS: usize = 200;
const SIZE: usize = 256 * 1024;
/// Every transfer moves this much, then waits until all the others have too.
const FIRST: usize = 64 * 1024;

#[test]
fn two_hundred_downloads_and_uploads_at_once_all_complete() {
    assert!(
        raise_nofile(8 * CLIENTS as u64 + 256) >= 8 * CLIENTS as u64,
        "open-file limit too low"
    );
    let server = TestServer::start_tweaked(|c| {
        c.limits.max_connections = 4 * CLIENTS;
        c.limits.max_per_ip = 4 * CLIENTS;
        c.limits.max_pending = 4 * CLIENTS;
    });
    let content: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(server.path("src.bin"), &content).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = server.addr;
    let content = Arc::new(content);
    rt.block_on(async {
        for upload in [false, true] {
            let barrier = Arc::new(Barrier::new(CLIENTS));
            let logins = Arc::new(tokio::sync::Semaphore::new(32));
            let tasks: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    let (barrier, logins, content) = (barrier.clone(), logins.clone(), content.clone());
                    tokio::spawn(async move {
                        let mut c = {
                            let _turn = logins.acquire().await.unwrap();
                            login(addr).await
                        };
                        transfer(&mut c, i, upload, &content, &barrier).await
                    })
                })
                .collect();
            let mut moved = 0;
            for t in tasks {
                moved += tokio::time::timeout(std::time::Duration::from_secs(120), t)
                    .await
                    .expect("transfers finish within 2 minutes")
                    .expect("client task");
            }
            assert_eq!(moved, CLIENTS * SIZE);
        }
    });
    for i in 0..CLIENTS {
        let stored = std::fs::read(server.path(format!("up-{i}.bin"))).unwrap();
        assert!(stored == *content, "upload {i} differs ({} bytes)", stored.len());
    }
}

async fn login(addr: std::net::SocketAddr) -> TcpStream {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    assert!(read_reply(&mut c).await.starts_with("220"));
    for (line, code) in [
        (format!("USER {USER}"), "331"),
        (format!("PASS {PASSWORD}"), "230"),
        ("TYPE I".to_owned(), "200"),
    ] {
        c.write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("data or control I/O");
        let reply = read_reply(&mut c).await;
        assert!(reply.starts_with(code), "{line}: {reply}");
    }
    c
}

/// One RETR of `src.bin` or STOR of `up-{i}.bin`; returns the bytes moved once the `226` came.
async fn transfer(c: &mut TcpStream, i: usize, upload: bool, content: &[u8], barrier: &Barrier) -> usize {
    c.write_all(b"EPSV\r\n").await.expect("data or control I/O");
    let reply = read_reply(c).await;
    let port: u16 = reply
        .split("|||")
        .nth(1)
        .and_then(|r| r.split('|').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("EPSV: {reply}"));
    let mut data = TcpStream::connect((c.peer_addr().expect("peer address").ip(), port))
        .await
        .expect("data connection");
    let command = if upload {
        format!("STOR up-{i}.bin\r\n")
    } else {
        "RETR src.bin\r\n".to_owned()
    };
    c.write_all(command.as_bytes())
        .await
        .expect("data or control I/O");
    let reply = read_reply(c).await;
    assert!(reply.starts_with("150"), "{command}: {reply}");
    let moved = if upload {
        data.write_all(&content[..FIRST])
            .await
            .expect("data or control I/O");
        barrier.wait().await;
        data.write_all(&content[FIRST..])
            .await
            .expect("data or control I/O");
        data.shutdown().await.expect("data or control I/O");
        content.len()
    } else {
        let mut got = vec![0u8; FIRST];
        data.read_exact(&mut got).await.expect("data or control I/O");
        barrier.wait().await;
        data.read_to_end(&mut got).await.expect("data or control I/O");
        assert!(got == content, "download {i} differs ({} bytes)", got.len());
        got.len()
    };
    drop(data);
    let reply = read_reply(c).await;
    assert!(reply.starts_with("226"), "{command}: {reply}");
    moved
}
