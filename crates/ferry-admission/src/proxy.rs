//! The PROXY protocol (HAProxy's, versions 1 and 2): a load balancer in front of ferry tells it, in a
//! header before the first byte of the protocol, which client the connection is for.
//!
//! The header is trusted only from the peers in [`ProxyProtocol::allowed`]; anyone else who sends one
//! is either refused (mode `required`) or served as the direct client it is, the header then being
//! ordinary (and invalid) protocol input. The header is read with `peek` and then exactly its length
//! is consumed, so the socket stays a plain [`TcpStream`] and nothing after the header is lost.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ferry_auth::defender::{canonical, Network};
use ppp::{v1, v2, HeaderResult};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Signature that starts a version 2 header.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Start of a version 1 header.
const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// Longest version 1 header, CRLF included (the specification's limit).
const V1_MAX: usize = 107;
/// Fixed part of a version 2 header.
const V2_FIXED: usize = 16;
/// Longest version 2 header accepted: addresses plus room for the TLVs HAProxy adds (unique id, TLS
/// details). The format allows 64 KiB; nothing ferry uses needs more than this.
pub const V2_MAX: usize = 4096;
/// Pause between looks at a header that has arrived only in part.
const PARTIAL_PAUSE: Duration = Duration::from_millis(5);

/// Whether listeners expect a PROXY header (setting `proxy_protocol.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// No header is read; the TCP peer is the client.
    #[default]
    Off,
    /// A peer in `allowed` may send a header; without one it is the client itself.
    Optional,
    /// Every connection must come from a peer in `allowed` and start with a header.
    Required,
}

/// What passive data connections of a proxied FTP session carry (setting `proxy_protocol.data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyData {
    /// No header: the data connection's peer is the balancer, which must be in `allowed`.
    #[default]
    None,
    /// A header from a peer in `allowed`, whose source must be the control connection's client.
    Header,
}

/// PROXY protocol settings of the listeners.
#[derive(Debug, Clone)]
pub struct ProxyProtocol {
    /// Whether a header is expected.
    pub mode: ProxyMode,
    /// Peers (load balancers) whose headers are believed.
    pub allowed: Vec<Network>,
    /// Time for the whole header to arrive.
    pub header_timeout: Duration,
    /// What passive FTP data connections of a proxied session carry.
    pub data: ProxyData,
}

impl Default for ProxyProtocol {
    fn default() -> Self {
        ProxyProtocol {
            mode: ProxyMode::Off,
            allowed: Vec::new(),
            header_timeout: Duration::from_secs(5),
            data: ProxyData::None,
        }
    }
}

/// Who a connection is from, after the PROXY header (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// The client: the header's source, or the TCP peer without a header.
    pub client: SocketAddr,
    /// The address the client connected to (the header's destination): what it should be told to
    /// connect to again, e.g. in a PASV reply. `None` without a header.
    pub reached: Option<SocketAddr>,
    /// The load balancer that sent the header; `None` for a direct connection.
    pub via: Option<SocketAddr>,
}

impl Arrival {
    /// A connection straight from `peer`, without a header.
    pub fn direct(peer: SocketAddr) -> Self {
        Arrival {
            client: peer,
            reached: None,
            via: None,
        }
    }
}

/// Why a connection was refused before its protocol started. The peer is at fault in every case
/// except [`ProxyError::Io`].
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A peer outside `proxy_protocol.allowed` connected while a header is required.
    #[error("{0} is not in proxy_protocol.allowed, and proxy_protocol.mode = \"required\"")]
    NotAllowed(IpAddr),
    /// The connection did not start with a header while one is required.
    #[error("no PROXY protocol header, and proxy_protocol.mode = \"required\"")]
    Missing,
    /// The header did not arrive in time.
    #[error("no complete PROXY protocol header within proxy_protocol.header_timeout_secs")]
    Timeout,
    /// The header is malformed.
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(String),
    /// The peer closed the connection before the header was complete.
    #[error("connection closed before the PROXY protocol header was complete")]
    Closed,
    /// Reading the socket failed.
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] io::Error),
}

impl ProxyProtocol {
    /// Whether `ip` may send headers.
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|n| n.contains(canonical(ip)))
    }

    /// Reads the header a new connection from `peer` starts with, as the mode requires, and tells who
    /// the client is. On success the stream is positioned at the first byte after the header.
    pub async fn accept(&self, stream: &mut TcpStream, peer: SocketAddr) -> Result<Arrival, ProxyError> {
        let required = match self.mode {
            ProxyMode::Off => return Ok(Arrival::direct(peer)),
            ProxyMode::Optional => false,
            ProxyMode::Required => true,
        };
        if !self.is_allowed(peer.ip()) {
            return if required {
                Err(ProxyError::NotAllowed(canonical(peer.ip())))
            } else {
                // A direct client: whatever it sends, header or not, is its protocol input.
                Ok(Arrival::direct(peer))
            };
        }
        match tokio::time::timeout(self.header_timeout, read_header(stream)).await {
            Ok(Ok(Some(bytes))) => arrival(&bytes, peer),
            Ok(Ok(None)) if !required => Ok(Arrival::direct(peer)),
            Ok(Ok(None)) => Err(ProxyError::Missing),
            Ok(Err(e)) => Err(e),
            // Nothing (or not enough to tell) came: an FTP client waiting for the greeting, when allowed.
            Err(_) if !required => Ok(Arrival::direct(peer)),
            Err(_) => Err(ProxyError::Timeout),
        }
    }

    /// Checks a passive FTP data connection from `from` for a session whose control connection came
    /// through a balancer for `client`: with [`ProxyData::None`] it must come from an allowed peer;
    /// with [`ProxyData::Header`] it must also start with a header whose source is `client`.
    pub async fn accept_data(
        &self,
        stream: &mut TcpStream,
        from: SocketAddr,
        client: IpAddr,
    ) -> Result<(), ProxyError> {
        if !self.is_allowed(from.ip()) {
            return Err(ProxyError::NotAllowed(canonical(from.ip())));
        }
        if self.data == ProxyData::None {
            return Ok(());
        }
        let bytes = match tokio::time::timeout(self.header_timeout, read_header(stream)).await {
            Ok(Ok(Some(bytes))) => bytes,
            Ok(Ok(None)) => return Err(ProxyError::Missing),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(ProxyError::Timeout),
        };
        let arrival = arrival(&bytes, from)?;
        if arrival.via.is_none() || canonical(arrival.client.ip()) != canonical(client) {
            return Err(ProxyError::Malformed(format!(
                "data connection for {} instead of the control connection's client",
                arrival.client.ip()
            )));
        }
        Ok(())
    }
}

/// What the first bytes of a connection are.
#[derive(Debug, PartialEq, Eq)]
enum Start {
    /// Not a header.
    Other,
    /// Possibly a header; more bytes needed.
    Partial,
    /// A header of this many bytes.
    Header(usize),
}

/// Tells from the bytes seen so far whether the connection starts with a header and how long it is.
fn classify(seen: &[u8]) -> Result<Start, ProxyError> {
    let common = |sig: &[u8]| seen.iter().zip(sig).all(|(a, b)| a == b);
    if common(V2_SIGNATURE) {
        let Some(len) = seen.get(14..16) else {
            return Ok(Start::Partial);
        };
        let total = V2_FIXED + usize::from(u16::from_be_bytes([len[0], len[1]]));
        if total > V2_MAX {
            return Err(ProxyError::Malformed(format!(
                "version 2 header of {total} bytes (at most {V2_MAX})"
            )));
        }
        return Ok(Start::Header(total));
    }
    if common(V1_PREFIX) {
        if seen.len() < V1_PREFIX.len() {
            return Ok(Start::Partial);
        }
        return match seen.windows(2).position(|w| w == b"\r\n") {
            Some(at) if at + 2 <= V1_MAX => Ok(Start::Header(at + 2)),
            Some(_) => Err(ProxyError::Malformed(format!(
                "version 1 header longer than {V1_MAX} bytes"
            ))),
            None if seen.len() >= V1_MAX => Err(ProxyError::Malformed(format!(
                "version 1 header longer than {V1_MAX} bytes"
            ))),
            None => Ok(Start::Partial),
        };
    }
    Ok(Start::Other)
}

/// Reads a header if the stream starts with one (consuming exactly it), `None` if it does not (consuming
/// nothing).
async fn read_header(stream: &mut TcpStream) -> Result<Option<Vec<u8>>, ProxyError> {
    let mut buf = [0u8; V1_MAX];
    let total = loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Err(ProxyError::Closed);
        }
        match classify(&buf[..n])? {
            Start::Other => return Ok(None),
            Start::Header(total) => break total,
            // The rest is on its way (or never comes: the caller's timeout ends the wait).
            Start::Partial => tokio::time::sleep(PARTIAL_PAUSE).await,
        }
    };
    let mut header = vec![0u8; total];
    match stream.read_exact(&mut header).await {
        Ok(_) => Ok(Some(header)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(ProxyError::Closed),
        Err(e) => Err(e.into()),
    }
}

/// Who the connection from `peer` is for, after the complete header `bytes`. Headers without
/// addresses (version 2 LOCAL, a balancer's own health check; UNKNOWN or other families) keep the
/// TCP peer as the client, as the specification asks.
fn arrival(bytes: &[u8], peer: SocketAddr) -> Result<Arrival, ProxyError> {
    let pair = match HeaderResult::parse(bytes) {
        HeaderResult::V1(Ok(h)) => match h.addresses {
            v1::Addresses::Tcp4(a) => Some((
                SocketAddr::new(a.source_address.into(), a.source_port),
                SocketAddr::new(a.destination_address.into(), a.destination_port),
            )),
            v1::Addresses::Tcp6(a) => Some((
                SocketAddr::new(a.source_address.into(), a.source_port),
                SocketAddr::new(a.destination_address.into(), a.destination_port),
            )),
            v1::Addresses::Unknown => None,
        },
        HeaderResult::V2(Ok(h)) => match (h.command, h.addresses) {
            (v2::Command::Proxy, v2::Addresses::IPv4(a)) => Some((
                SocketAddr::new(a.source_address.into(), a.source_port),
                SocketAddr::new(a.destination_address.into(), a.destination_port),
            )),
            (v2::Command::Proxy, v2::Addresses::IPv6(a)) => Some((
                SocketAddr::new(a.source_address.into(), a.source_port),
                SocketAddr::new(a.destination_address.into(), a.destination_port),
            )),
            _ => None,
        },
        HeaderResult::V1(Err(e)) => return Err(ProxyError::Malformed(e.to_string())),
        HeaderResult::V2(Err(e)) => return Err(ProxyError::Malformed(e.to_string())),
    };
    Ok(match pair {
        Some((client, reached)) => Arrival {
            client,
            reached: Some(reached),
            via: Some(peer),
        },
        None => Arrival::direct(peer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    fn proxy(mode: ProxyMode, allowed: &[&str]) -> ProxyProtocol {
        ProxyProtocol {
            mode,
            allowed: allowed.iter().map(|n| n.parse().expect("network")).collect(),
            header_timeout: Duration::from_millis(300),
            data: ProxyData::Header,
        }
    }

    /// A server-side stream whose client sent `bytes` (and keeps the connection open).
    async fn connection(bytes: &[u8]) -> (TcpStream, SocketAddr, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        client.write_all(bytes).await.expect("write");
        let (server, peer) = listener.accept().await.expect("accept");
        (server, peer, client)
    }

    fn v2_header(command: u8, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
        v2::Builder::with_addresses(0x20 | command, v2::Protocol::Stream, (src, dst))
            .build()
            .expect("header")
    }

    async fn rest(server: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        server.read_exact(&mut buf).await.expect("rest");
        buf
    }

    #[tokio::test]
    async fn v1_header_gives_the_client_and_leaves_the_rest() {
        let p = proxy(ProxyMode::Required, &["127.0.0.0/8"]);
        let (mut s, peer, _c) =
            connection(b"PROXY TCP4 198.51.100.7 203.0.113.1 40000 21\r\nUSER x\r\n").await;
        let a = p.accept(&mut s, peer).await.expect("accepted");
        assert_eq!(a.client, "198.51.100.7:40000".parse().unwrap());
        assert_eq!(a.reached, Some("203.0.113.1:21".parse().unwrap()));
        assert_eq!(a.via, Some(peer));
        assert_eq!(rest(&mut s, 8).await, b"USER x\r\n");
    }

    #[tokio::test]
    async fn v1_tcp6_header() {
        let p = proxy(ProxyMode::Required, &["127.0.0.1"]);
        let (mut s, peer, _c) = connection(b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 22\r\n").await;
        let a = p.accept(&mut s, peer).await.expect("accepted");
        assert_eq!(a.client, "[2001:db8::7]:4000".parse().unwrap());
    }

    #[tokio::test]
    async fn v2_header_gives_the_client_and_leaves_the_rest() {
        let p = proxy(ProxyMode::Required, &["127.0.0.0/8"]);
        let mut bytes = v2_header(
            1,
            "192.0.2.9:5555".parse().unwrap(),
            "192.0.2.1:22".parse().unwrap(),
        );
        bytes.extend_from_slice(b"SSH-2.0-x\r\n");
        let (mut s, peer, _c) = connection(&bytes).await;
        let a = p.accept(&mut s, peer).await.expect("accepted");
        assert_eq!(a.client, "192.0.2.9:5555".parse().unwrap());
        assert_eq!(a.reached, Some("192.0.2.1:22".parse().unwrap()));
        assert_eq!(rest(&mut s, 11).await, b"SSH-2.0-x\r\n");
    }

    #[tokio::test]
    async fn v2_local_command_keeps_the_tcp_peer() {
        let p = proxy(ProxyMode::Required, &["127.0.0.0/8"]);
        let bytes = v2_header(
            0,
            "192.0.2.9:5555".parse().unwrap(),
            "192.0.2.1:22".parse().unwrap(),
        );
        let (mut s, peer, _c) = connection(&bytes).await;
        assert_eq!(
            p.accept(&mut s, peer).await.expect("accepted"),
            Arrival::direct(peer)
        );
    }

    #[tokio::test]
    async fn header_from_a_peer_not_allowed_is_refused_or_not_believed() {
        let header = b"PROXY TCP4 198.51.100.7 203.0.113.1 40000 21\r\n";
        let (mut s, peer, _c) = connection(header).await;
        let required = proxy(ProxyMode::Required, &["10.0.0.0/8"]);
        assert!(matches!(
            required.accept(&mut s, peer).await,
            Err(ProxyError::NotAllowed(_))
        ));
        let optional = proxy(ProxyMode::Optional, &["10.0.0.0/8"]);
        let a = optional.accept(&mut s, peer).await.expect("direct");
        assert_eq!(a, Arrival::direct(peer));
        // Not consumed: the protocol sees it (and rejects it as the garbage it is).
        assert_eq!(rest(&mut s, header.len()).await, header);
    }

    #[tokio::test]
    async fn missing_header_is_refused_when_required_and_direct_when_optional() {
        let (mut s, peer, _c) = connection(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        let required = proxy(ProxyMode::Required, &["127.0.0.1"]);
        assert!(matches!(
            required.accept(&mut s, peer).await,
            Err(ProxyError::Missing)
        ));
        let optional = proxy(ProxyMode::Optional, &["127.0.0.1"]);
        assert_eq!(
            optional.accept(&mut s, peer).await.expect("direct"),
            Arrival::direct(peer)
        );
        assert_eq!(rest(&mut s, 4).await, b"SSH-");
    }

    #[tokio::test]
    async fn header_timeout_when_nothing_or_half_a_header_comes() {
        let required = proxy(ProxyMode::Required, &["127.0.0.1"]);
        for sent in [&b""[..], b"PROXY TCP4 1.2.3.4", &V2_SIGNATURE[..7]] {
            let (mut s, peer, _c) = connection(sent).await;
            let t0 = std::time::Instant::now();
            assert!(matches!(
                required.accept(&mut s, peer).await,
                Err(ProxyError::Timeout)
            ));
            assert!(t0.elapsed() < Duration::from_secs(3));
        }
        // Optional: a silent peer (an FTP client waiting for its greeting) is served directly.
        let optional = proxy(ProxyMode::Optional, &["127.0.0.1"]);
        let (mut s, peer, _c) = connection(b"").await;
        assert_eq!(
            optional.accept(&mut s, peer).await.expect("direct"),
            Arrival::direct(peer)
        );
    }

    #[tokio::test]
    async fn garbage_headers_are_refused_without_panic() {
        let p = proxy(ProxyMode::Required, &["127.0.0.1"]);
        let mut huge_v2 = V2_SIGNATURE.to_vec();
        huge_v2.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        let mut bad_family = V2_SIGNATURE.to_vec();
        bad_family.extend_from_slice(&[0x21, 0x11, 0x00, 0x04, 1, 2, 3, 4]);
        let mut bad_version = V2_SIGNATURE.to_vec();
        bad_version.extend_from_slice(&[0x31, 0x11, 0x00, 0x00]);
        let long_v1 = [&b"PROXY "[..], &[b'9'; 200]].concat();
        let cases: Vec<Vec<u8>> = vec![
            b"PROXY TCP4 999.1.1.1 1.1.1.1 1 2\r\n".to_vec(),
            b"PROXY TCP4 1.1.1.1 1.1.1.1 99999 2\r\n".to_vec(),
            b"PROXY SCTP 1.1.1.1 1.1.1.1 1 2\r\n".to_vec(),
            b"PROXY \r\n".to_vec(),
            b"PROXY TCP4 \xff\xfe 1.1.1.1 1 2\r\n".to_vec(),
            long_v1,
            huge_v2,
            bad_family,
            bad_version,
        ];
        for case in cases {
            let (mut s, peer, _c) = connection(&case).await;
            let r = p.accept(&mut s, peer).await;
            assert!(matches!(r, Err(ProxyError::Malformed(_))), "{case:?}: {r:?}");
        }
    }

    #[tokio::test]
    async fn closed_before_the_header_ends() {
        let p = proxy(ProxyMode::Required, &["127.0.0.1"]);
        let (mut s, peer, c) = connection(b"").await;
        drop(c);
        assert!(matches!(p.accept(&mut s, peer).await, Err(ProxyError::Closed)));
    }

    #[tokio::test]
    async fn off_reads_nothing() {
        let p = proxy(ProxyMode::Off, &[]);
        let (mut s, peer, _c) = connection(b"PROXY UNKNOWN\r\n").await;
        assert_eq!(
            p.accept(&mut s, peer).await.expect("direct"),
            Arrival::direct(peer)
        );
        assert_eq!(rest(&mut s, 6).await, b"PROXY ");
    }

    #[tokio::test]
    async fn data_connection_header_must_name_the_control_client() {
        let p = proxy(ProxyMode::Required, &["127.0.0.1"]);
        let client: IpAddr = "192.0.2.9".parse().unwrap();
        let dst: SocketAddr = "192.0.2.1:50000".parse().unwrap();
        let good = v2_header(1, "192.0.2.9:6000".parse().unwrap(), dst);
        let (mut s, peer, _c) = connection(&good).await;
        p.accept_data(&mut s, peer, client).await.expect("same client");
        let thief = v2_header(1, "192.0.2.66:6000".parse().unwrap(), dst);
        let (mut s, peer, _c) = connection(&thief).await;
        assert!(p.accept_data(&mut s, peer, client).await.is_err());
        let (mut s, peer, _c) = connection(b"data").await;
        assert!(matches!(
            p.accept_data(&mut s, peer, client).await,
            Err(ProxyError::Missing)
        ));
        let none = ProxyProtocol {
            data: ProxyData::None,
            ..p.clone()
        };
        let (mut s, peer, _c) = connection(b"data").await;
        none.accept_data(&mut s, peer, client)
            .await
            .expect("balancer allowed");
        let elsewhere = ProxyProtocol {
            allowed: vec!["10.0.0.1".parse().unwrap()],
            ..none
        };
        assert!(matches!(
            elsewhere.accept_data(&mut s, peer, client).await,
            Err(ProxyError::NotAllowed(_))
        ));
    }

    /// Random bytes after either signature (and mutations of a valid header) never panic the
    /// classifier or the parser; whatever parses names a client or keeps the TCP peer.
    #[test]
    fn random_headers_never_panic() {
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let valid = v2_header(
            1,
            "192.0.2.9:5555".parse().unwrap(),
            "192.0.2.1:22".parse().unwrap(),
        );
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000u32 {
            let mut bytes = match round % 3 {
                0 => V2_SIGNATURE.to_vec(),
                1 => V1_PREFIX.to_vec(),
                _ => valid.clone(),
            };
            let extra = (next() % 64) as usize;
            bytes.extend((0..extra).map(|_| next() as u8));
            if round % 3 == 2 {
                let at = (next() as usize) % bytes.len();
                bytes[at] = next() as u8;
            }
            if round % 5 == 0 {
                bytes.extend_from_slice(b"\r\n");
            }
            if let Ok(Start::Header(n)) = classify(&bytes) {
                if let Some(header) = bytes.get(..n) {
                    let _ = arrival(header, peer);
                }
            }
        }
    }

    #[test]
    fn classify_never_panics_on_prefixes() {
        let header = v2_header(
            1,
            "192.0.2.9:5555".parse().unwrap(),
            "192.0.2.1:22".parse().unwrap(),
        );
        for n in 0..header.len() {
            let _ = classify(&header[..n]);
        }
        assert_eq!(classify(&header).ok(), Some(Start::Header(header.len())));
        assert_eq!(classify(b"USER").ok(), Some(Start::Other));
        assert_eq!(classify(b"PRO").ok(), Some(Start::Partial));
    }
}
