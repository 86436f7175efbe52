//! Sockets for tests that drive a byte path directly, without a server.

use tokio::net::{TcpListener, TcpStream};

/// A connected pair of TCP sockets on loopback: (the accepted side, the connecting side).
pub async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind on loopback");
    let client = TcpStream::connect(listener.local_addr().expect("listener address"));
    let (client, accepted) = tokio::join!(client, listener.accept());
    (accepted.expect("accept").0, client.expect("connect"))
}
