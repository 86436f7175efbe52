//! A TCP relay that makes a loopback path look like a long one: every byte is held for a fixed delay
//! in each direction, and the bytes in flight are bounded by a window that opens only as the far end
//! "acknowledges" them one delay after receiving them, so a fast sender is slowed to *window / round
//! trip* the way a real TCP connection over that path is.
//!
//! It stands in for `tc qdisc … netem delay` on kernels built without `sch_netem`. Per connection and
//! direction it emulates:
//!
//! - **propagation delay**: a chunk read at time *t* is written to the other side at *t + delay*;
//! - **the handshake**: the relay connects upstream one delay after accepting (the server sees the
//!   connection when the SYN would arrive), and data the client sends before the handshake would have
//!   completed (one round trip after its `connect`) leaves as if sent then;
//! - **the window**: at most `window` bytes are in flight; bytes leave the window one delay after they
//!   were delivered (the acknowledgement travelling back), so one connection moves at most
//!   `window / (2 × delay)`;
//! - **slow start**: the window starts at `initial_window` and grows by every byte acknowledged (it
//!   doubles each round trip) up to `window`;
//! - **back-pressure**: when the window is full the relay stops reading, so the sender's socket
//!   buffers fill and its writes block.
//!
//! What it does not emulate: a bandwidth limit (throughput is bounded by the window and the CPU only,
//! as with netem's delay alone), loss, reordering or jitter, slow start restarting after an idle
//! period, and the interaction of the endpoints' own Nagle algorithm and delayed acknowledgements with
//! the delay (each endpoint talks to the relay over loopback, so its own acknowledgements come back at
//! once). A reset is passed on as a normal close. Each connection buffers at most `window` bytes per
//! direction; the number of connections is not bounded (it is a benchmark tool, bound to loopback).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep, sleep_until, Instant};

/// Largest chunk read at once.
const CHUNK: usize = 64 * 1024;
/// Linux's initial congestion window: 10 segments of 1,448 bytes (RFC 6928).
pub const INITIAL_WINDOW: usize = 10 * 1448;

/// The emulated path, the same in both directions.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// Added one way; the round trip is twice this.
    pub delay: Duration,
    /// Most bytes in flight per connection and direction (the receiver's window).
    pub window: usize,
    /// Bytes in flight allowed at first, growing by each acknowledged byte up to `window`.
    pub initial_window: usize,
}

impl Link {
    /// A path with `delay` each way, a `window`-byte window and Linux's initial window.
    pub fn new(delay: Duration, window: usize) -> Self {
        Link {
            delay,
            window: window.max(1),
            initial_window: INITIAL_WINDOW.min(window.max(1)),
        }
    }
}

/// Accepts connections on `listener` forever, relaying each to `upstream` over `link`.
///
/// Returns only on an accept error other than running out of descriptors or memory (those are
/// retried after a pause, as a server would).
pub async fn serve(listener: TcpListener, upstream: SocketAddr, link: Link) -> io::Result<()> {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(connection(client, upstream, link));
            }
            Err(e) if transient(&e) => sleep(Duration::from_millis(50)).await,
            Err(e) => return Err(e),
        }
    }
}

fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::OutOfMemory
    ) || e.raw_os_error().is_some_and(|code| code == 23 || code == 24) // ENFILE, EMFILE
}

/// One relayed connection: connect upstream when the SYN would arrive, then pump both ways.
async fn connection(client: TcpStream, upstream: SocketAddr, link: Link) {
    let accepted = Instant::now();
    sleep(link.delay).await;
    let Ok(server) = TcpStream::connect(upstream).await else {
        return; // dropping the client's socket closes it, as a refused connection would
    };
    // The relay adds no Nagle delays of its own: each chunk goes out when it is due.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // The client's connect() returned at once, but over the real path its first byte could leave
    // only when the SYN-ACK came back, one round trip after connecting.
    let up = pump(client_read, server_write, link, accepted + 2 * link.delay);
    let down = pump(server_read, client_write, link, accepted);
    let _ = tokio::join!(up, down);
}

/// Bytes of one direction: held in `line` until due, counted in flight until acknowledged.
struct Direction {
    link: Link,
    /// Chunks on their way: when each is due at the far end, and its bytes.
    line: VecDeque<(Instant, Vec<u8>)>,
    /// Delivered chunks whose acknowledgement is on its way back: when it arrives, and how many bytes.
    acks: VecDeque<(Instant, usize)>,
    in_flight: usize,
    /// The congestion window: bytes that may be in flight now.
    cwnd: usize,
}

impl Direction {
    fn new(link: Link) -> Self {
        Direction {
            link,
            line: VecDeque::new(),
            acks: VecDeque::new(),
            in_flight: 0,
            cwnd: link.initial_window,
        }
    }

    /// Takes the acknowledgements that have arrived by `now`; each acknowledged byte opens the
    /// window by one (slow start), up to the receiver's window.
    fn acknowledge(&mut self, now: Instant) {
        while let Some(&(at, n)) = self.acks.front() {
            if at > now {
                break;
            }
            self.acks.pop_front();
            self.in_flight -= n;
            self.cwnd = (self.cwnd + n).min(self.link.window);
        }
    }

    /// Bytes that may be read now.
    fn room(&self) -> usize {
        self.cwnd.saturating_sub(self.in_flight).min(CHUNK)
    }
}

/// Moves `src` to `dst` over the emulated path; data read before `not_before` leaves as if read then.
/// Ends at `src`'s end of stream (passed on as a close of `dst`'s sending side once every byte is
/// delivered) or the first error.
async fn pump(
    mut src: OwnedReadHalf,
    mut dst: OwnedWriteHalf,
    link: Link,
    not_before: Instant,
) -> io::Result<()> {
    let mut d = Direction::new(link);
    let mut buf = vec![0u8; CHUNK];
    let mut eof = false;
    loop {
        let now = Instant::now();
        d.acknowledge(now);
        if eof && d.line.is_empty() {
            return dst.shutdown().await;
        }
        let room = d.room();
        let next_due = d.line.front().map(|c| c.0);
        let next_ack = d.acks.front().map(|a| a.0);
        tokio::select! {
            read = src.read(&mut buf[..room.max(1)]), if room > 0 && !eof => {
                let n = read?;
                if n == 0 {
                    eof = true;
                    continue;
                }
                let due = Instant::now().max(not_before) + link.delay;
                d.line.push_back((due, buf[..n].to_vec()));
                d.in_flight += n;
            }
            () = sleep_until(next_due.unwrap_or(now)), if next_due.is_some() => {
                if let Some((_, bytes)) = d.line.pop_front() {
                    dst.write_all(&bytes).await?;
                    d.acks.push_back((Instant::now() + link.delay, bytes.len()));
                }
            }
            () = sleep_until(next_ack.unwrap_or(now)), if next_ack.is_some() && room == 0 => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_grows_by_acknowledged_bytes_up_to_the_limit() {
        let link = Link::new(Duration::from_millis(10), 40_000);
        let mut d = Direction::new(link);
        assert_eq!(d.room(), INITIAL_WINDOW);
        let t = Instant::now();
        d.in_flight = INITIAL_WINDOW;
        d.acks.push_back((t, INITIAL_WINDOW));
        assert_eq!(d.room(), 0);
        d.acknowledge(t);
        assert_eq!(d.in_flight, 0);
        assert_eq!(d.cwnd, 2 * INITIAL_WINDOW, "slow start doubles per round trip");
        d.in_flight = 2 * INITIAL_WINDOW;
        d.acks.push_back((t + Duration::from_secs(1), 2 * INITIAL_WINDOW));
        d.acknowledge(t);
        assert_eq!(
            d.in_flight,
            2 * INITIAL_WINDOW,
            "an acknowledgement still on its way frees nothing"
        );
        d.acknowledge(t + Duration::from_secs(1));
        assert_eq!(d.cwnd, 40_000, "never above the receiver's window");
    }
}
