//! Zero-copy transfers between a host file and a plain TCP data connection: sending with
//! `sendfile(2)`, receiving with `splice(2)` (socket → pipe → file).
//!
//! This is the only place where the server makes a system call for data transfer by itself. It
//! needs no `unsafe`: rustix's `sendfile`, `pipe_with` and `splice` are safe wrappers over the raw
//! system calls, taking borrowed file descriptors. The kernel moves the bytes between the page cache
//! and the socket; they never enter user space, which is what makes a large RETR or STOR cheap.
//!
//! Readiness comes from tokio: the socket is non-blocking, `sendfile` sends what fits into the
//! socket buffer and returns, and on `EAGAIN` the task waits for the socket to become writable
//! ([`TcpStream::async_io`]); a receiving socket joins the reactor only while it waits (see
//! [`receive_file`]). Reading the file side can block on disk I/O (like a `read` would); for files
//! in the page cache it does not.
//!
//! Only for plain TCP in binary mode (TYPE I): TLS data connections and ASCII conversion need the
//! bytes in user space and use the copy loops in `transfer`. Receiving writes only into the file a
//! storage writer hands out for it (`FileWriter::zero_copy`: the temp file of a new upload), so an
//! upload still appears under its name only when committed.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::pipe::{fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags};

use rustix::io::Errno;
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::data::Established;

/// Bytes asked for per `sendfile` call; the kernel sends at most what fits into the socket buffer.
const CHUNK: usize = 4 << 20;

/// Sends `file` from its current position to its end over `sock`, calling `progress` with the
/// number of bytes after every call that sent some. Fails if the socket accepts nothing for
/// `timeout`. Returns the number of bytes sent.
///
/// `size`: the bytes left when the file was opened (the size the `150` announced); once they are
/// sent the transfer ends without asking the file for more (a file that grew since is sent as it
/// was announced; one that shrank ends where it ends).
pub(crate) async fn send_file(
    sock: &mut Established,
    file: &File,
    size: Option<u64>,
    timeout: Duration,
    mut progress: impl FnMut(usize),
) -> io::Result<u64> {
    // More than the limit to send: from the first call on, the server transmits what the client's
    // window allows, not the client's reads (see `data::NOTSENT_LOWAT`; set later, the first call
    // would already have queued up to a whole send buffer). A smaller file needs no system call.
    if size.is_none_or(|size| size > u64::from(crate::data::NOTSENT_LOWAT)) {
        crate::data::limit_unsent(&sock.fd()?);
    }
    let mut total = 0u64;
    // A data connection just accepted is writable, but tokio learns that only from the reactor's
    // next turn: calls are made at once while they send everything asked for, and only a full socket
    // buffer makes the transfer wait for readiness. A connection taken from the passive listener's
    // queue joins the reactor only then: a small file goes out without it.
    let mut direct = true;
    loop {
        let chunk = match size {
            Some(size) if total >= size => return Ok(total),
            Some(size) => usize::try_from(size - total).unwrap_or(CHUNK).min(CHUNK),
            None => CHUNK,
        };
        // `None` as offset: the kernel reads from, and advances, the file position, which the
        // storage back-end set to the REST offset when it opened the file.
        let sent = if direct {
            match rustix::fs::sendfile(sock.fd()?, file, None, chunk) {
                // A short send: the socket buffer is (nearly) full, wait for readiness from now on.
                Ok(n) => {
                    direct = n == chunk;
                    Some(n)
                }
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {
                    direct = false;
                    None
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        let sent = match sent {
            Some(n) => n,
            None => {
                let tcp = sock.registered()?;
                tokio::time::timeout(
                    timeout,
                    tcp.async_io(Interest::WRITABLE, || {
                        rustix::fs::sendfile(tcp, file, None, chunk).map_err(io::Error::from)
                    }),
                )
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "data connection stalled"))??
            }
        };
        if sent == 0 {
            return Ok(total);
        }
        total += sent as u64;
        progress(sent);
    }
}

/// Reads `sock` into `buf` until `buf` is full (its capacity) or the peer ends the stream; returns
/// whether it ended. Fails if the peer sends nothing for `timeout`.
///
/// The start of a zero-copy upload goes through here: a small file arrives whole, and is then
/// written together with the commit, without a pipe and the system calls that set one up.
pub(crate) async fn read_head(sock: &TcpStream, buf: &mut Vec<u8>, timeout: Duration) -> io::Result<bool> {
    while buf.len() < buf.capacity() {
        let read = async {
            loop {
                sock.readable().await?;
                match sock.try_read_buf(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    r => return r,
                }
            }
        };
        let n = tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "data connection stalled"))??;
        if n == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Pipe capacity asked for zero-copy receiving: bytes moved per pair of `splice` calls. The kernel
/// may refuse it (`/proc/sys/fs/pipe-max-size`, per-user pipe limits); the pipe then keeps its
/// default size, which works, with more calls.
const PIPE_SIZE: usize = 1 << 20;

/// A pipe for [`receive_file`]: socket → pipe → file, the bytes staying in the kernel.
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A new pipe (non-blocking, close-on-exec) of about [`PIPE_SIZE`]; `None` when the process may
    /// create no more descriptors (the caller then copies through user space).
    pub(crate) fn new() -> Option<Pipe> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK).ok()?;
        let capacity = fcntl_setpipe_size(&write, PIPE_SIZE)
            .or_else(|_| fcntl_getpipe_size(&write))
            .ok()?;
        Some(Pipe {
            read,
            write,
            capacity,
        })
    }

    /// A pipe that moves at most `bytes` per `splice` (tests: many pieces from little data).
    #[cfg(test)]
    fn moving_at_most(bytes: usize) -> Pipe {
        let pipe = Pipe::new().expect("pipe");
        Pipe {
            capacity: bytes.min(pipe.capacity),
            ..pipe
        }
    }
}

/// Why [`receive_file`] stopped early.
#[derive(Debug)]
pub(crate) enum ReceiveError {
    /// The data connection failed or stalled.
    Network(io::Error),
    /// Writing the file failed.
    File(io::Error),
    /// `wrote` refused the bytes (e.g. over quota).
    Refused(ferry_vfs::Error),
}

/// Receives `sock` until its end into `file` at the file's current position, through `pipe`:
/// `splice(2)` moves the socket's buffers into the pipe and from the pipe into the file, so the
/// bytes never enter user space. Calls `wrote` with the number of bytes after every piece that
/// reached the file (before the next one is read); fails if the peer sends nothing for `timeout`.
/// Returns the number of bytes received.
///
/// The socket stays out of the reactor while bytes are moving and joins it only to wait
/// ([`wait_readable`]). Registered, every segment that arrives while this task splices wakes the
/// worker thread asleep in `epoll_wait` for nothing (the task is not waiting), and that worker
/// preempts this one, often on the same CPU: on a 1 GiB upload from a faster client that was a
/// wake-up every 40 µs.
///
/// The file side is a write into the page cache, done on this thread as the `write` of the
/// copying loop would be; it blocks only when the kernel throttles writers of dirty pages.
pub(crate) async fn receive_file(
    mut sock: std::net::TcpStream,
    pipe: &Pipe,
    file: &File,
    timeout: Duration,
    mut wrote: impl FnMut(usize) -> ferry_vfs::Result<()>,
) -> Result<u64, ReceiveError> {
    let mut total = 0u64;
    loop {
        let moved = match splice(
            &sock,
            None,
            &pipe.write,
            None,
            pipe.capacity,
            SpliceFlags::NONBLOCK,
        ) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(Errno::AGAIN) => {
                sock = wait_readable(sock, timeout)
                    .await
                    .map_err(ReceiveError::Network)?;
                continue;
            }
            Err(Errno::INTR) => continue,
            Err(e) => return Err(ReceiveError::Network(e.into())),
        };
        // The pipe holds `moved` bytes and nobody else reads it: drain all of it into the file.
        let mut left = moved;
        while left > 0 {
            let n = splice(&pipe.read, None, file, None, left, SpliceFlags::MOVE)
                .map_err(|e| ReceiveError::File(e.into()))?;
            if n == 0 {
                return Err(ReceiveError::File(io::ErrorKind::WriteZero.into()));
            }
            left -= n;
        }
        total += moved as u64;
        wrote(moved).map_err(ReceiveError::Refused)?;
        // A client faster than the file keeps the socket readable, and nothing above would let
        // the worker's other tasks run: a piece counts against the task's budget as a read would.
        tokio::task::consume_budget().await;
    }
}

/// Waits until `sock` is readable (or at its end), registered with the reactor only meanwhile;
/// fails after `timeout`. Costs an `epoll_ctl` to add and one to remove the socket.
async fn wait_readable(sock: std::net::TcpStream, timeout: Duration) -> io::Result<std::net::TcpStream> {
    let registered = TcpStream::from_std(sock)?;
    let ready = tokio::time::timeout(timeout, registered.readable()).await;
    let sock = registered.into_std()?;
    match ready {
        Ok(r) => r.map(|()| sock),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "data connection stalled")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_testkit::files::{pseudo_random, read_back};
    use ferry_testkit::net::tcp_pair;
    use std::io::{Seek, Write};
    use tokio::io::AsyncWriteExt;

    /// `send_file` of `file` (`size` announced) with a time-out far above what the tests need.
    async fn send(sock: &mut Established, file: &File, size: Option<u64>) -> u64 {
        send_file(sock, file, size, Duration::from_secs(10), |_| {})
            .await
            .expect("send")
    }

    /// A temporary file holding `data`, positioned at its start.
    fn file_holding(data: &[u8]) -> File {
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(data).expect("fill");
        file.rewind().expect("rewind");
        file
    }

    #[tokio::test]
    async fn send_file_sends_the_announced_size_or_to_the_end() {
        use tokio::io::AsyncReadExt;
        let data = pseudo_random(100_000, 7);
        for (size, want) in [(Some(60_000u64), 60_000usize), (None, 100_000)] {
            let (server, mut client) = tcp_pair().await;
            let file = file_holding(&data);
            let mut server = Established::from(server);
            let sent = send(&mut server, &file, size).await;
            drop(server);
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.expect("receive");
            assert_eq!(sent, want as u64);
            assert!(got == data[..want], "{size:?}: wrong bytes");
        }
    }

    #[tokio::test]
    async fn a_download_larger_than_the_limit_limits_the_unsent_bytes() {
        use tokio::io::AsyncReadExt;
        for (len, limited) in [(4096usize, false), (8 << 20, true)] {
            let (server, mut client) = tcp_pair().await;
            let file = file_holding(&pseudo_random(len, 7));
            let reader = tokio::spawn(async move {
                let mut got = Vec::new();
                client.read_to_end(&mut got).await.map(|_| got.len())
            });
            let mut server = Established::from(server);
            let sent = send(&mut server, &file, Some(len as u64)).await;
            let lowat = socket2::SockRef::from(&server.fd().expect("socket"))
                .tcp_notsent_lowat()
                .expect("getsockopt");
            drop(server);
            assert_eq!(reader.await.expect("reader").expect("read"), len);
            assert_eq!(sent, len as u64);
            assert_eq!(
                lowat == crate::data::NOTSENT_LOWAT,
                limited,
                "{len} bytes: lowat {lowat}"
            );
        }
    }

    /// A connection outside the reactor: a small file goes out in one call and it stays outside; a
    /// file larger than the socket buffer makes it join the reactor, and arrives whole.
    #[tokio::test]
    async fn an_unregistered_connection_joins_the_reactor_only_when_a_send_has_to_wait() {
        use std::io::Read;
        for (len, stays_out) in [(4096usize, true), (8 << 20, false)] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let mut client =
                std::net::TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
            let (server, _) = listener.accept().expect("accept");
            server.set_nonblocking(true).expect("non-blocking");
            let mut server = Established::unregistered(server);
            let data = pseudo_random(len, 9);
            let file = file_holding(&data);
            let reader = std::thread::spawn(move || {
                // Late, so that a large file fills the socket buffer first.
                std::thread::sleep(Duration::from_millis(100));
                let mut got = Vec::new();
                client.read_to_end(&mut got).map(|_| got)
            });
            let sent = send(&mut server, &file, Some(len as u64)).await;
            assert_eq!(server.is_unregistered(), stays_out, "{len} bytes");
            server.shut_down().expect("shutdown");
            assert_eq!(sent, len as u64);
            let got = reader.join().expect("reader").expect("read");
            assert!(got == data, "{len} bytes: wrong bytes");
            drop(server);
        }
    }

    #[tokio::test]
    async fn read_head_tells_a_small_file_from_a_large_one() {
        for (len, ended) in [(4096usize, true), (200_000, false)] {
            let (server, mut client) = tcp_pair().await;
            let data = pseudo_random(len, 7);
            let sent = data.clone();
            let sender = tokio::spawn(async move {
                let _ = client.write_all(&sent).await;
            });
            let mut head = Vec::with_capacity(65_536);
            let r = read_head(&server, &mut head, Duration::from_secs(10))
                .await
                .expect("read");
            assert_eq!(r, ended, "{len} bytes");
            assert_eq!(head.len(), len.min(65_536));
            assert!(head == data[..head.len()], "{len}: wrong bytes");
            drop(server);
            let _ = sender.await;
        }
    }

    /// [`receive_file`] on the server's end of a [`tcp_pair`], giving up after `secs` of silence.
    async fn receive(
        server: TcpStream,
        pipe: &Pipe,
        file: &File,
        secs: u64,
        wrote: impl FnMut(usize) -> ferry_vfs::Result<()>,
    ) -> Result<u64, ReceiveError> {
        let server = server.into_std().expect("std");
        receive_file(server, pipe, file, Duration::from_secs(secs), wrote).await
    }

    #[tokio::test]
    async fn receive_file_stores_every_byte_in_order_after_what_was_there() {
        let (server, mut client) = tcp_pair().await;
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(b"head:").expect("head");
        let data = pseudo_random(3 * PIPE_SIZE + 4099, 7);
        let sent = data.clone();
        let sender = tokio::spawn(async move {
            // Uneven pieces, so the splices see short and long socket reads.
            let mut rest = &sent[..];
            for size in [1usize, 4096, 65_537, 3, 1 << 20].iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let n = (*size).min(rest.len());
                client.write_all(&rest[..n]).await.expect("send");
                rest = &rest[n..];
            }
        });
        let pipe = Pipe::new().expect("pipe");
        let mut reported = 0u64;
        let got = receive(server, &pipe, &file, 10, |n| {
            reported += n as u64;
            Ok(())
        })
        .await
        .expect("receive");
        sender.await.expect("sender");
        assert_eq!(got, data.len() as u64);
        assert_eq!(reported, got);
        let mut expected = b"head:".to_vec();
        expected.extend_from_slice(&data);
        assert!(read_back(&file) == expected, "file differs from what was sent");
    }

    #[tokio::test]
    async fn receive_file_stops_when_the_bytes_are_refused() {
        let (server, mut client) = tcp_pair().await;
        let file = tempfile::tempfile().expect("temp file");
        let sender = tokio::spawn(async move {
            let _ = client.write_all(&pseudo_random(8 << 20, 7)).await;
        });
        let pipe = Pipe::new().expect("pipe");
        let r = receive(server, &pipe, &file, 10, |_| {
            Err(ferry_vfs::ErrorKind::QuotaExceeded.into())
        })
        .await;
        assert!(
            matches!(&r, Err(ReceiveError::Refused(e)) if e.kind() == ferry_vfs::ErrorKind::QuotaExceeded),
            "{r:?}"
        );
        let _ = sender.await;
    }

    #[tokio::test]
    async fn receive_file_reports_a_reset_connection_as_a_network_error() {
        let (server, client) = tcp_pair().await;
        let file = tempfile::tempfile().expect("temp file");
        let client = client.into_std().expect("std");
        (&client).write_all(&pseudo_random(100_000, 7)).expect("send");
        // Linger 0: close with RST, which the receiver must not take for a clean end.
        socket2::SockRef::from(&client)
            .set_linger(Some(Duration::ZERO))
            .expect("linger");
        drop(client);
        let pipe = Pipe::new().expect("pipe");
        let r = receive(server, &pipe, &file, 10, |_| Ok(())).await;
        assert!(matches!(r, Err(ReceiveError::Network(_))), "{r:?}");
    }

    #[tokio::test]
    async fn receive_file_lets_other_tasks_run_while_bytes_keep_coming() {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;

        let (server, client) = tcp_pair().await;
        let client = client.into_std().expect("std");
        // Queue what the connection holds before the receive starts: a receive that never waits.
        client.set_nonblocking(true).expect("non-blocking");
        let data = pseudo_random(4 << 20, 7);
        let mut queued = 0;
        while let Ok(n) = (&client).write(&data[queued..]) {
            queued += n;
        }
        const PIECE: usize = 1024;
        assert!(queued > 256 * PIECE, "only {queued} bytes could be queued");
        let received = Arc::new(AtomicU64::new(0));
        // On this single-threaded runtime the ticker runs only when the receive lets it.
        let ticker = tokio::spawn({
            let received = received.clone();
            async move { received.load(Ordering::Relaxed) }
        });
        let pipe = Pipe::moving_at_most(PIECE);
        let file = tempfile::tempfile().expect("temp file");
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(client);
        });
        let got = receive(server, &pipe, &file, 10, |n| {
            received.fetch_add(n as u64, Ordering::Relaxed);
            Ok(())
        })
        .await
        .expect("receive");
        closer.join().expect("closer");
        assert_eq!(got, queued as u64);
        let ran_after = ticker.await.expect("ticker");
        assert!(
            ran_after < queued as u64,
            "the other task ran only after {ran_after} of {queued} queued bytes"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn receive_file_gives_up_on_a_silent_peer() {
        let (server, _client) = tcp_pair().await;
        let file = tempfile::tempfile().expect("temp file");
        let pipe = Pipe::new().expect("pipe");
        let r = receive(server, &pipe, &file, 30, |_| Ok(())).await;
        assert!(
            matches!(&r, Err(ReceiveError::Network(e)) if e.kind() == io::ErrorKind::TimedOut),
            "{r:?}"
        );
    }
}
