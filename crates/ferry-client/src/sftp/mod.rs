//! An SFTP v3 client over an SSH channel, with pipelined reads and writes.
//!
//! Requests carry ids; one reader task routes each response to the request waiting for it, so many
//! requests can be in flight. A transfer keeps reads or writes outstanding (at most
//! [`SFTP_REQUESTS_IN_FLIGHT`] and [`SFTP_BYTES_IN_FLIGHT`]), and consumes responses in order, so the
//! local file is written sequentially. Requests are [`SFTP_CHUNK`] bytes (what OpenSSH's sftp asks
//! for), or up to [`SFTP_MAX_CHUNK`] when the server announces that it takes more
//! (`limits@openssh.com`). Packets from the server are bounded ([`MAX_SFTP_PACKET`]); a
//! malformed or oversized packet ends the session with an error, never a panic.

mod packet;
mod ssh;
pub use ssh::key_is_encrypted;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ferry_proto::listing::EntryKind;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::oneshot;

use packet::{Attrs, Body, Packet, Reader};

use crate::error::{Error, Result};
use crate::limits::{
    MAX_LISTING_ENTRIES, MAX_SFTP_PACKET, SFTP_BYTES_IN_FLIGHT, SFTP_CHUNK, SFTP_MAX_CHUNK,
    SFTP_REQUESTS_IN_FLIGHT,
};
use crate::names::check_arg;
use crate::remote::{Checksum, Entry, Progress};
use crate::secret::Secret;
use crate::trust::TrustOptions;

type ChannelStream = russh::ChannelStream<russh::client::Msg>;

/// Settings of an SFTP session.
#[derive(Debug, Clone)]
pub struct SftpOptions {
    /// Limit for connecting and for each response.
    pub timeout: Duration,
    /// Host key trust.
    pub trust: TrustOptions,
    /// Private key files to try, in order.
    pub identities: Vec<PathBuf>,
    /// An SSH agent's socket; its keys are tried before the files.
    pub agent: Option<PathBuf>,
    /// The passphrase of passphrase-protected key files in `identities`.
    pub key_passphrase: Option<Secret>,
}

/// A logged-in SFTP session.
pub struct SftpClient {
    _ssh: russh::client::Handle<ssh::HostKeyCheck>,
    shared: Arc<Shared>,
    reader: tokio::task::JoinHandle<()>,
    timeout: Duration,
    /// The server announced `check-file-name` in VERSION.
    check_file: bool,
    /// Bytes asked for by one READ.
    read_chunk: u32,
    /// Bytes sent by one WRITE.
    write_chunk: u32,
}

impl std::fmt::Debug for SftpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpClient").finish_non_exhaustive()
    }
}

struct Shared {
    writer: tokio::sync::Mutex<WriteHalf<ChannelStream>>,
    pending: Mutex<HashMap<u32, oneshot::Sender<Packet>>>,
    next_id: AtomicU32,
    /// Why the reader stopped, if the server broke the protocol.
    broken: Mutex<Option<String>>,
}

impl Drop for SftpClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl SftpClient {
    /// Connects to `host:port`, checks the host key, logs in as `user` and starts the SFTP subsystem.
    ///
    /// # Errors
    ///
    /// Trust, authentication, SSH and protocol failures.
    pub async fn connect(
        host: &str,
        port: u16,
        user: &str,
        password: Option<&Secret>,
        opts: &SftpOptions,
    ) -> Result<SftpClient> {
        let handle = ssh::connect(
            host,
            port,
            user,
            password,
            &opts.identities,
            opts.key_passphrase.as_ref(),
            opts.agent.as_deref(),
            &opts.trust,
            opts.timeout,
        )
        .await?;
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|e| Error::Ssh(format!("opening a session channel: {e}")))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| Error::Ssh(format!("starting the sftp subsystem: {e}")))?;
        let mut stream = channel.into_stream();
        let extensions = tokio::time::timeout(opts.timeout, init(&mut stream))
            .await
            .map_err(|_| Error::Timeout {
                what: "the SFTP version reply".into(),
                secs: opts.timeout.as_secs(),
            })??;
        let mut client = SftpClient::start(handle, stream, opts.timeout);
        client.check_file = extensions.iter().any(|e| &e[..] == b"check-file-name");
        if extensions.iter().any(|e| &e[..] == b"limits@openssh.com") {
            client.apply_limits().await?;
        }
        Ok(client)
    }

    fn start(
        ssh: russh::client::Handle<ssh::HostKeyCheck>,
        stream: ChannelStream,
        timeout: Duration,
    ) -> SftpClient {
        let (read, write) = tokio::io::split(stream);
        let shared = Arc::new(Shared {
            writer: tokio::sync::Mutex::new(write),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU32::new(1),
            broken: Mutex::new(None),
        });
        let reader = tokio::spawn(read_responses(read, shared.clone()));
        SftpClient {
            _ssh: ssh,
            shared,
            reader,
            timeout,
            check_file: false,
            read_chunk: SFTP_CHUNK,
            write_chunk: SFTP_CHUNK,
        }
    }

    /// Asks for the server's limits (`limits@openssh.com`) and sizes reads and writes by them: up to
    /// [`SFTP_MAX_CHUNK`], never above what the server says it takes. A server that declines keeps the
    /// defaults.
    async fn apply_limits(&mut self) -> Result<()> {
        let rx = self
            .send(packet::EXTENDED, Body::new().string(b"limits@openssh.com"))
            .await?;
        let p = self.wait(rx, "limits@openssh.com").await?;
        if p.kind != packet::EXTENDED_REPLY {
            return Ok(());
        }
        let mut r = Reader(p.body);
        let (Some(max_packet), Some(max_read), Some(max_write)) = (r.u64(), r.u64(), r.u64()) else {
            return Err(malformed("limits@openssh.com"));
        };
        (self.read_chunk, self.write_chunk) = chunk_sizes(max_packet, max_read, max_write);
        Ok(())
    }

    /// Requests kept in flight with chunks of `chunk` bytes.
    fn depth(chunk: u32) -> usize {
        let chunk = usize::try_from(chunk).unwrap_or(usize::MAX).max(1);
        (SFTP_BYTES_IN_FLIGHT / chunk).clamp(1, SFTP_REQUESTS_IN_FLIGHT)
    }

    /// Downloads `path` from `offset` into `out` with pipelined reads; returns the bytes received.
    ///
    /// # Errors
    ///
    /// Refusals, timeouts, protocol and local I/O errors.
    pub async fn get(
        &self,
        path: &str,
        offset: u64,
        out: &mut (dyn AsyncWrite + Unpin + Send),
        progress: &mut Progress<'_>,
    ) -> Result<u64> {
        self.get_range(path, offset, u64::MAX, out, progress).await
    }

    /// Downloads at most `len` bytes of `path` starting at `offset` into `out` (one segment of a
    /// segmented download); returns the bytes received (fewer when the file ends first).
    ///
    /// # Errors
    ///
    /// Refusals, timeouts, protocol and local I/O errors.
    pub async fn get_range(
        &self,
        path: &str,
        offset: u64,
        len: u64,
        out: &mut (dyn AsyncWrite + Unpin + Send),
        progress: &mut Progress<'_>,
    ) -> Result<u64> {
        let handle = self.open(path, packet::FXF_READ).await?;
        let end = offset.saturating_add(len);
        let result = self.read_all(&handle, offset, end, out, progress).await;
        let closed = self.close(handle).await;
        let n = result?;
        closed?;
        out.flush()
            .await
            .map_err(|e| Error::local("writing the local file", e))?;
        Ok(n)
    }

    /// Reads `[offset, end)` (or to the end of the file) with pipelined requests, writing in order.
    async fn read_all(
        &self,
        handle: &Bytes,
        offset: u64,
        end: u64,
        out: &mut (dyn AsyncWrite + Unpin + Send),
        progress: &mut Progress<'_>,
    ) -> Result<u64> {
        let mut inflight: VecDeque<(u64, u32, oneshot::Receiver<Packet>)> = VecDeque::new();
        let (mut next, mut total, mut eof) = (offset, 0u64, false);
        let (chunk, depth) = (self.read_chunk, Self::depth(self.read_chunk));
        // Requests in flight start at one and double with every full chunk, up to the limit: a small
        // file costs two requests instead of a full pipeline of reads past its end.
        let mut window = 1usize;
        loop {
            while !eof && next < end && inflight.len() < window {
                let ask = u32::try_from(end - next).unwrap_or(chunk).min(chunk);
                let body = Body::new().string(handle).u64(next).u32(ask);
                inflight.push_back((next, ask, self.send(packet::READ, body).await?));
                next += u64::from(ask);
            }
            let Some((at, ask, rx)) = inflight.pop_front() else {
                return Ok(total);
            };
            let p = self.wait(rx, "READ").await?;
            if eof {
                continue; // responses after the end are drained and ignored
            }
            match read_chunk(p, ask)? {
                None => eof = true,
                Some(data) => {
                    let got = data.len() as u64;
                    out.write_all(&data)
                        .await
                        .map_err(|e| Error::local("writing the local file", e))?;
                    total += got;
                    progress(got);
                    if got == u64::from(ask) {
                        window = (window * 2).min(depth);
                    }
                    if got > u64::from(ask) {
                        return Err(Error::Protocol(
                            "the server sent more data than was asked for".into(),
                        ));
                    }
                    if got < u64::from(ask) {
                        // A short read: fetch the rest of this chunk before the next one, keeping order.
                        let (more, ended) = self
                            .read_range(handle, at + got, u64::from(ask) - got, out, progress)
                            .await?;
                        total += more;
                        eof = ended;
                    }
                }
            }
        }
    }

    /// Reads `[at, at + len)` one request at a time; returns the bytes written and whether EOF was reached.
    async fn read_range(
        &self,
        handle: &Bytes,
        mut at: u64,
        mut len: u64,
        out: &mut (dyn AsyncWrite + Unpin + Send),
        progress: &mut Progress<'_>,
    ) -> Result<(u64, bool)> {
        let mut total = 0;
        while len > 0 {
            let ask = u32::try_from(len).unwrap_or(self.read_chunk);
            let rx = self
                .send(packet::READ, Body::new().string(handle).u64(at).u32(ask))
                .await?;
            match read_chunk(self.wait(rx, "READ").await?, ask)? {
                None => return Ok((total, true)),
                Some(data) if data.is_empty() => return Ok((total, true)),
                Some(data) => {
                    let got = data.len() as u64;
                    out.write_all(&data)
                        .await
                        .map_err(|e| Error::local("writing the local file", e))?;
                    progress(got);
                    total += got;
                    at += got;
                    len = len.saturating_sub(got);
                }
            }
        }
        Ok((total, false))
    }

    /// Uploads `input` to `path` with pipelined writes, starting at `offset` (0 truncates the file);
    /// returns the bytes sent.
    ///
    /// # Errors
    ///
    /// Refusals, timeouts, protocol and local I/O errors.
    pub async fn put(
        &self,
        path: &str,
        offset: u64,
        input: &mut (dyn AsyncRead + Unpin + Send),
        progress: &mut Progress<'_>,
    ) -> Result<u64> {
        let flags = packet::FXF_WRITE | packet::FXF_CREAT | if offset == 0 { packet::FXF_TRUNC } else { 0 };
        let handle = self.open(path, flags).await?;
        let result = self.write_all(&handle, offset, input, progress).await;
        let closed = self.close(handle).await;
        let n = result?;
        closed?;
        Ok(n)
    }

    async fn write_all(
        &self,
        handle: &Bytes,
        offset: u64,
        input: &mut (dyn AsyncRead + Unpin + Send),
        progress: &mut Progress<'_>,
    ) -> Result<u64> {
        let mut inflight: VecDeque<(u64, oneshot::Receiver<Packet>)> = VecDeque::new();
        let (mut at, mut done) = (offset, false);
        let depth = Self::depth(self.write_chunk);
        let mut buf = vec![0u8; self.write_chunk as usize];
        loop {
            while !done && inflight.len() < depth {
                let n = read_full(input, &mut buf).await?;
                if n == 0 {
                    done = true;
                    break;
                }
                let data = buf.get(..n).unwrap_or_default();
                let body = Body::with_capacity(handle.len() + n + 16)
                    .string(handle)
                    .u64(at)
                    .string(data);
                let rx = self.send(packet::WRITE, body).await?;
                inflight.push_back((n as u64, rx));
                at += n as u64;
            }
            let Some((n, rx)) = inflight.pop_front() else {
                return Ok(at - offset);
            };
            self.expect_ok(self.wait(rx, "WRITE").await?, "WRITE", "")?;
            progress(n);
        }
    }

    /// Lists directory `path`.
    ///
    /// # Errors
    ///
    /// Refusals (a missing directory is [`Error::NotFound`]), oversized listings, timeouts.
    pub async fn list(&self, path: &str) -> Result<Vec<Entry>> {
        check_arg(path)?;
        let rx = self
            .send(packet::OPENDIR, Body::new().string(path.as_bytes()))
            .await?;
        let handle = self.handle_reply(self.wait(rx, "OPENDIR").await?, "OPENDIR", path)?;
        let mut entries = Vec::new();
        let result = async {
            loop {
                let rx = self.send(packet::READDIR, Body::new().string(&handle)).await?;
                let p = self.wait(rx, "READDIR").await?;
                if p.kind == packet::STATUS {
                    let (code, msg) = status(&p)?;
                    if code == packet::FX_EOF {
                        return Ok(());
                    }
                    return Err(status_error(code, msg, "READDIR", path));
                }
                if p.kind != packet::NAME {
                    return Err(unexpected(&p, "READDIR"));
                }
                let mut r = Reader(p.body);
                let count = r.u32().ok_or_else(|| malformed("NAME"))?;
                for _ in 0..count {
                    let name = r.string().ok_or_else(|| malformed("NAME"))?;
                    let _long = r.string().ok_or_else(|| malformed("NAME"))?;
                    let attrs = r.attrs().ok_or_else(|| malformed("NAME"))?;
                    if name.as_ref() == b"." || name.as_ref() == b".." {
                        continue;
                    }
                    if entries.len() >= MAX_LISTING_ENTRIES {
                        return Err(Error::Protocol(format!(
                            "the listing has more than {MAX_LISTING_ENTRIES} entries"
                        )));
                    }
                    entries.push(entry(name.to_vec(), &attrs));
                }
            }
        }
        .await;
        let closed = self.close(handle).await;
        result?;
        closed?;
        Ok(entries)
    }

    /// What `path` is (following symlinks).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when it does not exist; timeouts and protocol errors.
    pub async fn stat(&self, path: &str) -> Result<Entry> {
        check_arg(path)?;
        let rx = self
            .send(packet::STAT, Body::new().string(path.as_bytes()))
            .await?;
        let p = self.wait(rx, "STAT").await?;
        match p.kind {
            packet::ATTRS => {
                let attrs = Reader(p.body).attrs().ok_or_else(|| malformed("ATTRS"))?;
                let name = crate::names::remote_basename(path).unwrap_or(path);
                Ok(entry(name.as_bytes().to_vec(), &attrs))
            }
            packet::STATUS => {
                let (code, msg) = status(&p)?;
                Err(status_error(code, msg, "STAT", path))
            }
            _ => Err(unexpected(&p, "STAT")),
        }
    }

    /// Deletes file `path`.
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn remove(&self, path: &str) -> Result<()> {
        self.path_op(
            packet::REMOVE,
            "REMOVE",
            path,
            Body::new().string(path.as_bytes()),
        )
        .await
    }

    /// Creates directory `path`.
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn mkdir(&self, path: &str) -> Result<()> {
        self.path_op(
            packet::MKDIR,
            "MKDIR",
            path,
            Body::new().string(path.as_bytes()).attrs(None),
        )
        .await
    }

    /// Removes empty directory `path`.
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn rmdir(&self, path: &str) -> Result<()> {
        self.path_op(packet::RMDIR, "RMDIR", path, Body::new().string(path.as_bytes()))
            .await
    }

    /// Renames `from` to `to`.
    ///
    /// # Errors
    ///
    /// The server's refusal.
    pub async fn rename(&self, from: &str, to: &str) -> Result<()> {
        check_arg(to)?;
        let body = Body::new().string(from.as_bytes()).string(to.as_bytes());
        self.path_op(packet::RENAME, "RENAME", from, body).await
    }

    /// Sets the modification time of `path`; `Ok(false)` when the server refuses.
    ///
    /// # Errors
    ///
    /// Timeouts and protocol errors.
    pub async fn set_modified(&self, path: &str, t: SystemTime) -> Result<bool> {
        let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let secs = u32::try_from(secs).unwrap_or(u32::MAX);
        let body = Body::new().string(path.as_bytes()).attrs(Some(secs));
        Ok(self.path_op(packet::SETSTAT, "SETSTAT", path, body).await.is_ok())
    }

    /// Whether the server offers checksums (`check-file-name` announced).
    pub fn has_checksums(&self) -> bool {
        self.check_file
    }

    /// The server's checksum of `path` with the `check-file-name` extension (SHA-256 preferred).
    /// `Ok(None)` when the server does not offer it or declines for this file.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], timeouts and protocol errors.
    pub async fn checksum(&self, path: &str) -> Result<Option<Checksum>> {
        check_arg(path)?;
        if !self.check_file {
            return Ok(None);
        }
        let algorithms: Vec<&str> = ferry_proto::hash::Algorithm::ALL
            .iter()
            .map(|a| a.sftp_name())
            .collect();
        let body = Body::new()
            .string(b"check-file-name")
            .string(path.as_bytes())
            .string(algorithms.join(",").as_bytes())
            .u64(0)
            .u64(0)
            .u32(0);
        let rx = self.send(packet::EXTENDED, body).await?;
        let p = self.wait(rx, "check-file-name").await?;
        match p.kind {
            packet::EXTENDED_REPLY => {
                let mut r = Reader(p.body);
                let (Some(name), Some(alg)) = (r.string(), r.string()) else {
                    return Err(malformed("check-file"));
                };
                let algorithm = ferry_proto::hash::Algorithm::from_sftp_name(&alg)
                    .filter(|a| &name[..] == b"check-file" && r.0.len() == a.digest_len())
                    .ok_or_else(|| malformed("check-file"))?;
                Ok(Some(Checksum {
                    algorithm,
                    digest: r.0.to_vec(),
                }))
            }
            packet::STATUS => match status(&p)? {
                (packet::FX_NO_SUCH_FILE, msg) => {
                    Err(status_error(packet::FX_NO_SUCH_FILE, msg, "check-file", path))
                }
                _ => Ok(None),
            },
            _ => Err(unexpected(&p, "check-file-name")),
        }
    }

    async fn path_op(&self, kind: u8, verb: &str, path: &str, body: Body) -> Result<()> {
        check_arg(path)?;
        let rx = self.send(kind, body).await?;
        let p = self.wait(rx, verb).await?;
        self.expect_ok(p, verb, path)
    }

    async fn open(&self, path: &str, flags: u32) -> Result<Bytes> {
        check_arg(path)?;
        let rx = self
            .send(
                packet::OPEN,
                Body::new().string(path.as_bytes()).u32(flags).attrs(None),
            )
            .await?;
        let p = self.wait(rx, "OPEN").await?;
        self.handle_reply(p, "OPEN", path)
    }

    async fn close(&self, handle: Bytes) -> Result<()> {
        let rx = self.send(packet::CLOSE, Body::new().string(&handle)).await?;
        let p = self.wait(rx, "CLOSE").await?;
        self.expect_ok(p, "CLOSE", "")
    }

    fn handle_reply(&self, p: Packet, verb: &str, path: &str) -> Result<Bytes> {
        match p.kind {
            packet::HANDLE => Reader(p.body).string().ok_or_else(|| malformed("HANDLE")),
            packet::STATUS => {
                let (code, msg) = status(&p)?;
                Err(status_error(code, msg, verb, path))
            }
            _ => Err(unexpected(&p, verb)),
        }
    }

    fn expect_ok(&self, p: Packet, verb: &str, path: &str) -> Result<()> {
        if p.kind != packet::STATUS {
            return Err(unexpected(&p, verb));
        }
        match status(&p)? {
            (packet::FX_OK, _) => Ok(()),
            (code, msg) => Err(status_error(code, msg, verb, path)),
        }
    }

    /// Sends a request; the receiver gets its response.
    async fn send(&self, kind: u8, body: Body) -> Result<oneshot::Receiver<Packet>> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut pending) = self.shared.pending.lock() {
            pending.insert(id, tx);
        }
        let bytes = body.packet(kind, Some(id));
        let mut writer = self.shared.writer.lock().await;
        let write = async {
            writer.write_all(&bytes).await?;
            writer.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Err(_) => Err(Error::Timeout {
                what: "sending an SFTP request".into(),
                secs: self.timeout.as_secs(),
            }),
            Ok(Err(e)) => Err(self.lost(Some(e))),
            Ok(Ok(())) => Ok(rx),
        }
    }

    async fn wait(&self, rx: oneshot::Receiver<Packet>, verb: &str) -> Result<Packet> {
        match tokio::time::timeout(self.timeout, rx).await {
            Err(_) => Err(Error::Timeout {
                what: format!("the server's answer to {verb}"),
                secs: self.timeout.as_secs(),
            }),
            Ok(Err(_)) => Err(self.lost(None)),
            Ok(Ok(p)) => Ok(p),
        }
    }

    fn lost(&self, e: Option<std::io::Error>) -> Error {
        let broken = self.shared.broken.lock().ok().and_then(|b| b.clone());
        match (broken, e) {
            (Some(why), _) => Error::Protocol(why),
            (None, Some(e)) => Error::io("the SFTP connection", e),
            (None, None) => Error::io(
                "the SFTP connection",
                std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "closed by the server"),
            ),
        }
    }
}

/// Sends INIT (version 3) and reads VERSION; returns the names of the extensions announced.
async fn init(stream: &mut ChannelStream) -> Result<Vec<Bytes>> {
    let init = Body::new().u32(3).packet(packet::INIT, None);
    stream
        .write_all(&init)
        .await
        .map_err(|e| Error::io("starting SFTP", e))?;
    stream.flush().await.map_err(|e| Error::io("starting SFTP", e))?;
    let payload = read_frame(stream).await.map_err(Error::Protocol)?;
    if payload.first() != Some(&packet::VERSION) {
        return Err(Error::Protocol(
            "the server did not answer SFTP INIT with VERSION".into(),
        ));
    }
    // Type, version, then name/data pairs; a truncated pair ends the list.
    let mut r = Reader(payload.slice(1..));
    r.u32();
    let mut extensions = Vec::new();
    while let (Some(name), Some(_data)) = (r.string(), r.string()) {
        if extensions.len() < 64 {
            extensions.push(name);
        }
    }
    Ok(extensions)
}

/// One frame's payload, bounded by [`MAX_SFTP_PACKET`].
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::result::Result<Bytes, String> {
    let len = r
        .read_u32()
        .await
        .map_err(|e| format!("the SFTP connection ended: {e}"))?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len == 0 || len > MAX_SFTP_PACKET {
        return Err(format!(
            "the server sent an SFTP packet of {len} bytes (limit {MAX_SFTP_PACKET})"
        ));
    }
    // Filled straight from the channel's messages, without zeroing first.
    let mut buf = bytes::BytesMut::with_capacity(len);
    while buf.len() < len {
        let want = len - buf.len();
        let n = r
            .read_buf(&mut bytes::BufMut::limit(&mut buf, want))
            .await
            .map_err(|e| format!("the SFTP connection ended: {e}"))?;
        if n == 0 {
            return Err("the SFTP connection ended: early eof".into());
        }
    }
    Ok(buf.freeze())
}

/// Routes responses to their requests until the connection ends or the server breaks the protocol.
async fn read_responses(mut read: ReadHalf<ChannelStream>, shared: Arc<Shared>) {
    let why = loop {
        let payload = match read_frame(&mut read).await {
            Ok(p) => p,
            Err(e) => break e,
        };
        let Some(p) = packet::parse(payload) else {
            break "the server sent a truncated SFTP packet".to_owned();
        };
        let waiter = shared.pending.lock().ok().and_then(|mut m| m.remove(&p.id));
        match waiter {
            Some(tx) => {
                let _ = tx.send(p);
            }
            None => break format!("the server answered SFTP request {} that was never sent", p.id),
        }
    };
    if let Ok(mut b) = shared.broken.lock() {
        *b = Some(why);
    }
    if let Ok(mut pending) = shared.pending.lock() {
        pending.clear();
    }
}

/// Sizes of one READ and one WRITE for the limits a server states (`limits@openssh.com`: longest
/// packet, read and write; 0 means "not stated"): up to [`SFTP_MAX_CHUNK`], never above the stated
/// limit; [`SFTP_CHUNK`] where the server states nothing.
fn chunk_sizes(max_packet: u64, max_read: u64, max_write: u64) -> (u32, u32) {
    // A WRITE carries its data plus a header (type, id, handle, offset, length): 1 KiB is ample.
    let fit = |stated: u64, header: u64| -> u32 {
        if stated == 0 {
            return SFTP_CHUNK;
        }
        let mut n = u64::from(SFTP_MAX_CHUNK).min(stated);
        if max_packet > header {
            n = n.min(max_packet - header);
        }
        u32::try_from(n.max(1)).unwrap_or(SFTP_CHUNK)
    };
    (fit(max_read, 0), fit(max_write, 1024))
}

/// `Some(data)` for DATA (at most `ask` bytes), `None` for EOF.
fn read_chunk(p: Packet, ask: u32) -> Result<Option<Bytes>> {
    match p.kind {
        packet::DATA => {
            let data = Reader(p.body).string().ok_or_else(|| malformed("DATA"))?;
            if data.len() > ask as usize {
                return Err(Error::Protocol(
                    "the server sent more data than was asked for".into(),
                ));
            }
            Ok(Some(data))
        }
        packet::STATUS => match status(&p)? {
            (packet::FX_EOF, _) => Ok(None),
            (code, msg) => Err(status_error(code, msg, "READ", "")),
        },
        _ => Err(unexpected(&p, "READ")),
    }
}

async fn read_full(input: &mut (dyn AsyncRead + Unpin + Send), buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = buf.get_mut(filled..).unwrap_or_default();
        let n = input
            .read(rest)
            .await
            .map_err(|e| Error::local("reading the local file", e))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

fn status(p: &Packet) -> Result<(u32, String)> {
    let mut r = Reader(p.body.clone());
    let code = r.u32().ok_or_else(|| malformed("STATUS"))?;
    let msg = r
        .string()
        .map(|m| String::from_utf8_lossy(&m).chars().take(300).collect())
        .unwrap_or_default();
    Ok((code, msg))
}

fn status_error(code: u32, msg: String, verb: &str, path: &str) -> Error {
    let what = if path.is_empty() {
        verb.to_owned()
    } else {
        format!("{verb} {path}")
    };
    let msg = msg.escape_debug().to_string();
    match code {
        packet::FX_NO_SUCH_FILE => Error::NotFound(format!("{path} ({msg})")),
        packet::FX_PERMISSION_DENIED => Error::Refused {
            what,
            reply: format!("permission denied ({msg})"),
        },
        _ => Error::Refused {
            what,
            reply: format!("SFTP status {code} ({msg})"),
        },
    }
}

fn malformed(what: &str) -> Error {
    Error::Protocol(format!("a malformed SFTP {what} response"))
}

fn unexpected(p: &Packet, verb: &str) -> Error {
    Error::Protocol(format!("SFTP response type {} to {verb}", p.kind))
}

fn entry(name: Vec<u8>, attrs: &Attrs) -> Entry {
    let kind = if attrs.is_dir() {
        EntryKind::Dir
    } else if attrs.is_symlink() {
        EntryKind::Symlink
    } else if attrs.is_regular() {
        EntryKind::File
    } else {
        EntryKind::Other
    };
    Entry::new(name, kind, attrs.size, attrs.modified())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_the_servers_limits() {
        // Nothing stated: what every server must take.
        assert_eq!(chunk_sizes(0, 0, 0), (SFTP_CHUNK, SFTP_CHUNK));
        // OpenSSH's sftp-server: 256 KiB packets, reads and writes up to 255 KiB.
        assert_eq!(
            chunk_sizes(256 * 1024, 255 * 1024, 255 * 1024),
            (255 * 1024, 255 * 1024)
        );
        // Large limits are capped at what fits one SSH packet.
        assert_eq!(chunk_sizes(0, 1 << 30, 1 << 30), (SFTP_MAX_CHUNK, SFTP_MAX_CHUNK));
        // Small limits are obeyed, also below the 32 KiB default.
        assert_eq!(chunk_sizes(0, 16 * 1024, 8 * 1024), (16 * 1024, 8 * 1024));
        assert_eq!(chunk_sizes(20_000, 0, 64 * 1024), (SFTP_CHUNK, 20_000 - 1024));
    }

    #[test]
    fn in_flight_bytes_are_bounded() {
        assert_eq!(SftpClient::depth(SFTP_CHUNK), SFTP_REQUESTS_IN_FLIGHT);
        assert_eq!(SftpClient::depth(SFTP_MAX_CHUNK), 32);
        assert_eq!(SftpClient::depth(1), SFTP_REQUESTS_IN_FLIGHT);
        assert!(SftpClient::depth(SFTP_MAX_CHUNK) * SFTP_MAX_CHUNK as usize <= SFTP_BYTES_IN_FLIGHT);
    }
}
