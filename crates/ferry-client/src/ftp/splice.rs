//! Zero-copy downloads: `splice(2)` from a plain TCP data connection into a pipe and from the pipe
//! into the local file, so the bytes never enter user space. A `read` + `write` loop (curl's, lftp's,
//! and this client's for TLS and ASCII transfers) copies every byte twice, from the socket into user
//! space and from there into the page cache; splicing leaves one copy, the kernel's into the file.
//!
//! No `unsafe`: rustix's `pipe_with` and `splice` are safe wrappers over the system calls, taking
//! borrowed descriptors. The socket is non-blocking and waited on through tokio
//! ([`TcpStream::async_io`]); the file side is a write into the page cache on this task, as the
//! copying loop's `write` is.
//!
//! A file that cannot take spliced data (a file system without splice support, or one opened for
//! appending, which `splice` refuses with `EINVAL`) gets what the pipe holds by copying, and the
//! caller copies the rest ([`Received::Unsupported`]).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::pipe::{fcntl_getpipe_size, fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::error::{Error, Result};
use crate::remote::Progress;

/// Pipe capacity asked for: bytes moved per pair of `splice` calls. When the kernel refuses it
/// (`/proc/sys/fs/pipe-max-size`, per-user pipe limits) the pipe keeps its default size, which works
/// with more calls.
const PIPE_SIZE: usize = 1 << 20;

/// A pipe between the socket and the file; kept by a session for all its downloads.
#[derive(Debug)]
pub(crate) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A non-blocking, close-on-exec pipe of about [`PIPE_SIZE`]; `None` when none can be made (the
    /// caller copies instead).
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
}

/// How [`receive`] ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// The connection ended, or `limit` bytes arrived: this many bytes are in the file.
    Done(u64),
    /// The file refused spliced data; this many bytes are in the file (copied), and the rest of the
    /// connection is still to be read.
    Unsupported(u64),
}

/// Moves at most `limit` bytes from `sock` into `file` at its current position, through `pipe`,
/// calling `progress` after every piece that reached the file. Fails when the peer sends nothing for
/// `timeout`. After an error the pipe may still hold bytes: drop it.
pub(crate) async fn receive(
    sock: &TcpStream,
    pipe: &Pipe,
    file: &File,
    timeout: Duration,
    limit: u64,
    progress: &mut Progress<'_>,
) -> Result<Received> {
    let mut total = 0u64;
    while total < limit {
        let want = usize::try_from(limit - total).map_or(pipe.capacity, |l| l.min(pipe.capacity));
        let moved = tokio::time::timeout(
            timeout,
            sock.async_io(Interest::READABLE, || {
                splice(sock, None, &pipe.write, None, want, SpliceFlags::NONBLOCK).map_err(io::Error::from)
            }),
        )
        .await
        .map_err(|_| Error::Timeout {
            what: "the data connection (stalled)".into(),
            secs: timeout.as_secs(),
        })?;
        let moved = match moved {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(Error::io("receiving data", e)),
        };
        if moved == 0 {
            break;
        }
        let complete = drain(pipe, file, moved)?;
        total += moved as u64;
        progress(moved as u64);
        if !complete {
            return Ok(Received::Unsupported(total));
        }
    }
    Ok(Received::Done(total))
}

/// Moves the `len` bytes the pipe holds into `file`. `Ok(false)` when the file refused splicing at
/// the first piece; those bytes were then copied through user space.
fn drain(pipe: &Pipe, file: &File, len: usize) -> Result<bool> {
    let mut left = len;
    while left > 0 {
        match splice(&pipe.read, None, file, None, left, SpliceFlags::MOVE) {
            Ok(0) => {
                return Err(Error::local(
                    "writing the local file",
                    io::ErrorKind::WriteZero.into(),
                ))
            }
            Ok(n) => left -= n,
            Err(rustix::io::Errno::INVAL) if left == len => {
                copy_out_of(pipe, file, len)?;
                return Ok(false);
            }
            Err(e) => return Err(Error::local("writing the local file", e.into())),
        }
    }
    Ok(true)
}

/// Reads `len` bytes out of the pipe and writes them to `file`.
fn copy_out_of(pipe: &Pipe, mut file: &File, len: usize) -> Result<()> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = rustix::io::read(&pipe.read, buf.get_mut(got..).unwrap_or_default())
            .map_err(|e| Error::local("writing the local file", e.into()))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    file.write_all(buf.get(..got).unwrap_or_default())
        .map_err(|e| Error::local("writing the local file", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_testkit::files::{pseudo_random, read_back};
    use ferry_testkit::net::tcp_pair;
    use tokio::io::AsyncWriteExt;

    fn send(mut peer: TcpStream, data: Vec<u8>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut rest = &data[..];
            for size in [1usize, 4096, 65_537, 3, 1 << 20].iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let n = (*size).min(rest.len());
                // The receiver may stop early (a range): a reset is fine then.
                if peer.write_all(&rest[..n]).await.is_err() {
                    return;
                }
                rest = &rest[n..];
            }
        })
    }

    #[tokio::test]
    async fn every_byte_arrives_in_order_after_what_the_file_held() {
        let (peer, sock) = tcp_pair().await;
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(b"head:").expect("head");
        let data = pseudo_random(3 * PIPE_SIZE + 4099, 7);
        let sender = send(peer, data.clone());
        let pipe = Pipe::new().expect("pipe");
        let mut seen = 0u64;
        let got = receive(&sock, &pipe, &file, Duration::from_secs(10), u64::MAX, &mut |n| {
            seen += n
        })
        .await
        .expect("receive");
        sender.await.expect("sender");
        assert_eq!(got, Received::Done(data.len() as u64));
        assert_eq!(seen, data.len() as u64);
        let mut expected = b"head:".to_vec();
        expected.extend_from_slice(&data);
        assert_eq!(read_back(&file), expected);
    }

    #[tokio::test]
    async fn a_range_stops_at_its_length() {
        let (peer, sock) = tcp_pair().await;
        let file = tempfile::tempfile().expect("temp file");
        let data = pseudo_random(2 * PIPE_SIZE, 7);
        let sender = send(peer, data.clone());
        let pipe = Pipe::new().expect("pipe");
        let limit = PIPE_SIZE as u64 + 12_345;
        let got = receive(&sock, &pipe, &file, Duration::from_secs(10), limit, &mut |_| {})
            .await
            .expect("receive");
        drop(sock);
        let _ = sender.await;
        assert_eq!(got, Received::Done(limit));
        assert_eq!(read_back(&file), data[..PIPE_SIZE + 12_345].to_vec());
    }

    #[tokio::test]
    async fn a_file_opened_for_appending_is_copied_into_without_losing_a_byte() {
        let (peer, sock) = tcp_pair().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"old").expect("write");
        let file = File::options().append(true).open(&path).expect("open");
        let data = pseudo_random(200_000, 7);
        let sender = send(peer, data.clone());
        let pipe = Pipe::new().expect("pipe");
        let got = receive(
            &sock,
            &pipe,
            &file,
            Duration::from_secs(10),
            u64::MAX,
            &mut |_| {},
        )
        .await
        .expect("receive");
        let Received::Unsupported(n) = got else {
            panic!("splice into an O_APPEND file should be refused: {got:?}");
        };
        // The caller copies the rest; here, by hand.
        let mut rest = Vec::new();
        let mut sock = sock;
        tokio::io::AsyncReadExt::read_to_end(&mut sock, &mut rest)
            .await
            .expect("rest");
        sender.await.expect("sender");
        (&file).write_all(&rest).expect("append");
        assert_eq!(n as usize + rest.len(), data.len());
        let mut expected = b"old".to_vec();
        expected.extend_from_slice(&data);
        assert_eq!(std::fs::read(&path).expect("read"), expected);
    }

    #[tokio::test]
    async fn a_silent_peer_hits_the_timeout() {
        let (_peer, sock) = tcp_pair().await;
        let file = tempfile::tempfile().expect("temp file");
        let pipe = Pipe::new().expect("pipe");
        let r = receive(
            &sock,
            &pipe,
            &file,
            Duration::from_millis(200),
            u64::MAX,
            &mut |_| {},
        )
        .await;
        assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    }
}
