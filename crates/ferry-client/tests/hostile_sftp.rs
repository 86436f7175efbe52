//! The SFTP client against a hostile SSH server (russh, in the test): after a normal handshake and
//! `VERSION`, the server answers the first request with an oversized packet, a response to a request
//! never sent, more data than was asked for, or nothing at all. Each must end in a clear error, quickly,
//! never a hang, a panic or an unbounded allocation.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_client::sftp::{SftpClient, SftpOptions};
use ferry_client::trust::TrustOptions;
use ferry_client::{Error, Secret};
use russh::keys::{Algorithm, PrivateKey};
use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    OversizedPacket,
    UnsolicitedId,
    TooMuchData,
    Silence,
}

struct Handler {
    mode: Misbehaviour,
    channel: Option<Channel<Msg>>,
}

impl russh::server::Handler for Handler {
    type Error = russh::Error;

    async fn auth_password(&mut self, _user: &str, _password: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channel = Some(channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        if let Some(ch) = self.channel.take() {
            tokio::spawn(misbehave(ch, self.mode));
        }
        Ok(())
    }
}

async fn read_frame(s: &mut russh::ChannelStream<Msg>) -> Option<Vec<u8>> {
    let len = s.read_u32().await.ok()?;
    let mut buf = vec![0u8; usize::try_from(len).ok()?.min(1 << 20)];
    s.read_exact(&mut buf).await.ok()?;
    Some(buf)
}

async fn misbehave(ch: Channel<Msg>, mode: Misbehaviour) {
    let mut s = ch.into_stream();
    let Some(_init) = read_frame(&mut s).await else {
        return;
    };
    let _ = s.write_all(&[0, 0, 0, 5, 2, 0, 0, 0, 3]).await; // VERSION 3
    let Some(request) = read_frame(&mut s).await else {
        return;
    };
    let id = request
        .get(1..5)
        .map(|b| [b[0], b[1], b[2], b[3]])
        .unwrap_or_default();
    let reply: Vec<u8> = match mode {
        Misbehaviour::OversizedPacket => vec![0x7f, 0xff, 0xff, 0xff, 103],
        Misbehaviour::UnsolicitedId => {
            let mut r = vec![0, 0, 0, 13, 101, 0xde, 0xad, 0xbe, 0xef];
            r.extend([0, 0, 0, 0, 0, 0, 0, 0]);
            r
        }
        Misbehaviour::TooMuchData => {
            // A HANDLE for OPEN, then a DATA of 64 KiB for a 32 KiB READ.
            let mut r = vec![0, 0, 0, 10, 102];
            r.extend(id);
            r.extend([0, 0, 0, 1, b'h']);
            let _ = s.write_all(&r).await;
            let Some(read) = read_frame(&mut s).await else {
                return;
            };
            let rid = read
                .get(1..5)
                .map(|b| [b[0], b[1], b[2], b[3]])
                .unwrap_or_default();
            let n: u32 = 64 * 1024;
            let mut d = (1 + 4 + 4 + n).to_be_bytes().to_vec();
            d.push(103);
            d.extend(rid);
            d.extend(n.to_be_bytes());
            d.extend(std::iter::repeat_n(b'x', n as usize));
            d
        }
        Misbehaviour::Silence => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
    };
    let _ = s.write_all(&reply).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
}

async fn start(mode: Misbehaviour) -> SocketAddr {
    let key = PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519).expect("host key");
    let config = Arc::new(russh::server::Config {
        keys: vec![key],
        auth_rejection_time: Duration::ZERO,
        ..russh::server::Config::default()
    });
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = Handler { mode, channel: None };
            let config = config.clone();
            tokio::spawn(async move {
                if let Ok(session) = russh::server::run_stream(config, stream, handler).await {
                    let _ = session.await;
                }
            });
        }
    });
    addr
}

async fn connect(addr: SocketAddr, dir: &tempfile::TempDir) -> SftpClient {
    let opts = SftpOptions {
        timeout: Duration::from_millis(1500),
        trust: TrustOptions {
            trust_on_first_use: true,
            known_hosts: vec![dir.path().join("known_hosts")],
            ..TrustOptions::default()
        },
        identities: Vec::new(),
        agent: None,
        key_passphrase: None,
    };
    SftpClient::connect("127.0.0.1", addr.port(), "u", Some(&Secret::new("pw")), &opts)
        .await
        .expect("connect and start SFTP")
}

async fn first_request_fails(mode: Misbehaviour) -> Error {
    let addr = start(mode).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = connect(addr, &dir).await;
    let start = Instant::now();
    let mut sink = Vec::new();
    let err = client
        .get("/f", 0, &mut sink, &mut |_| {})
        .await
        .expect_err("must fail");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{mode:?} took {:?}",
        start.elapsed()
    );
    assert!(
        sink.len() <= 32 * 1024,
        "{mode:?}: more data accepted than asked for"
    );
    err
}

#[tokio::test]
async fn an_oversized_packet_ends_the_session_with_an_error() {
    let err = first_request_fails(Misbehaviour::OversizedPacket).await;
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("limit")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_response_to_a_request_never_sent_is_a_protocol_error() {
    let err = first_request_fails(Misbehaviour::UnsolicitedId).await;
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("never sent")),
        "{err:?}"
    );
}

#[tokio::test]
async fn more_data_than_asked_for_is_refused() {
    let err = first_request_fails(Misbehaviour::TooMuchData).await;
    assert!(
        matches!(&err, Error::Protocol(m) if m.contains("more data")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_silent_server_hits_the_timeout() {
    let err = first_request_fails(Misbehaviour::Silence).await;
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}
