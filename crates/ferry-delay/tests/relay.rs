//! The relay adds its delay each way and holds a fast sender to window / round trip.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ferry_delay::{serve, Link};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A relay on 127.0.0.1:0 in front of `upstream`; returns its address.
async fn relay(upstream: SocketAddr, link: Link) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
    let at = listener.local_addr().expect("relay address");
    tokio::spawn(serve(listener, upstream, link));
    at
}

/// An upstream that echoes every connection; returns its address.
async fn echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let at = listener.local_addr().expect("echo address");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    at
}

async fn round_trip(s: &mut TcpStream) -> Duration {
    let t = Instant::now();
    s.write_all(b"x").await.expect("write");
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.expect("echo");
    t.elapsed()
}

#[tokio::test]
async fn relay_adds_its_delay_each_way() {
    let delay = Duration::from_millis(40);
    let at = relay(echo().await, Link::new(delay, 1 << 20)).await;
    let connected = Instant::now();
    let mut s = TcpStream::connect(at).await.expect("connect");
    // The first byte waits for the emulated handshake (one round trip), then goes there and back.
    let first = round_trip(&mut s).await;
    assert!(
        connected.elapsed() >= 4 * delay,
        "first exchange after {:?}",
        connected.elapsed()
    );
    for _ in 0..3 {
        let rtt = round_trip(&mut s).await;
        assert!(
            rtt >= 2 * delay,
            "round trip {rtt:?} is shorter than twice the delay"
        );
        assert!(
            rtt < 2 * delay + Duration::from_secs(2),
            "round trip {rtt:?} (first {first:?})"
        );
    }
}

#[tokio::test]
async fn upstream_sees_the_connection_one_delay_later_and_the_close() {
    let delay = Duration::from_millis(40);
    let upstream = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let at = relay(upstream.local_addr().expect("addr"), Link::new(delay, 1 << 20)).await;
    let t = Instant::now();
    let mut client = TcpStream::connect(at).await.expect("connect");
    let (mut server, _) = upstream.accept().await.expect("accept");
    assert!(t.elapsed() >= delay, "accepted after {:?}", t.elapsed());
    client.write_all(b"hello").await.expect("write");
    client.shutdown().await.expect("half-close");
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.expect("read to the close");
    assert_eq!(got, b"hello");
    // The other direction still works after the client's half-close.
    server.write_all(b"bye").await.expect("reply");
    drop(server);
    let mut back = Vec::new();
    client.read_to_end(&mut back).await.expect("reply and close");
    assert_eq!(back, b"bye");
}

#[tokio::test]
async fn a_fast_sender_is_held_to_window_per_round_trip() {
    let delay = Duration::from_millis(25);
    let window = 128 * 1024;
    let total = 2 * 1024 * 1024;
    let sink = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let at = relay(sink.local_addr().expect("addr"), Link::new(delay, window)).await;
    let reader = tokio::spawn(async move {
        let (mut s, _) = sink.accept().await.expect("accept");
        let mut n = 0usize;
        let mut buf = vec![0u8; 65536];
        loop {
            match s.read(&mut buf).await.expect("read") {
                0 => return n,
                k => n += k,
            }
        }
    });
    let mut s = TcpStream::connect(at).await.expect("connect");
    let t = Instant::now();
    s.write_all(&vec![7u8; total]).await.expect("send");
    s.shutdown().await.expect("close");
    assert_eq!(reader.await.expect("reader"), total);
    let took = t.elapsed();
    // 16 windows need at least 15 round trips after the first window (slow start adds more); over
    // plain loopback 2 MiB takes a millisecond or two.
    let least = 2 * delay * (total / window - 1) as u32;
    assert!(
        took >= least,
        "2 MiB through a 128 KiB window took {took:?}, expected at least {least:?}"
    );
}
