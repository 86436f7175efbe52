//! Zero-copy sending of a host file over a plain TCP data connection with `sendfile(2)`.
//!
//! This is the only place where the server makes a system call for data transfer by itself. It
//! needs no `unsafe`: `rustix::fs::sendfile` is a safe wrapper over the raw system call, taking
//! borrowed file descriptors. The kernel copies from the page cache to the socket; the bytes never
//! enter user space, which is what makes a large RETR cheap.
//!
//! Readiness comes from tokio: the socket is non-blocking, `sendfile` sends what fits into the
//! socket buffer and returns, and on `EAGAIN` the task waits for the socket to become writable
//! ([`TcpStream::async_io`]). Reading the file side can block on disk I/O (like a `read` would);
//! for files in the page cache it does not.
//!
//! Only for plain TCP in binary mode (TYPE I): TLS data connections and ASCII conversion need the
//! bytes in user space and use the read loop in `transfer`.

use std::fs::File;
use std::io;
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Bytes asked for per `sendfile` call; the kernel sends at most what fits into the socket buffer.
const CHUNK: usize = 4 << 20;

/// Sends `file` from its current position to its end over `sock`, calling `progress` with the
/// number of bytes after every call that sent some. Fails if the socket accepts nothing for
/// `timeout`. Returns the number of bytes sent.
pub(crate) async fn send_file(
    sock: &TcpStream,
    file: &File,
    timeout: Duration,
    mut progress: impl FnMut(usize),
) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        // `None` as offset: the kernel reads from, and advances, the file position, which the
        // storage back-end set to the REST offset when it opened the file.
        let sent = tokio::time::timeout(
            timeout,
            sock.async_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(sock, file, None, CHUNK).map_err(io::Error::from)
            }),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "data connection stalled"))??;
        if sent == 0 {
            return Ok(total);
        }
        total += sent as u64;
        progress(sent);
    }
}
