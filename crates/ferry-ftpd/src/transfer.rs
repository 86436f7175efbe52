//! One data transfer, a future that the session's own task polls beside the control connection, so
//! the control channel stays live (ABOR, STAT, NOOP, QUIT) without a second task: no hand-over between
//! threads per file. The `150` goes out before the data (see `Job::started`).
//!
//! The transfer reports [`TransferEvent`]s in order: `Started` once the storage side is open (the session
//! then sends 150), and exactly one final event. Dropping the transfer ([`Running::cancel`]) drops the
//! storage writer, which removes an unfinished upload's temporary file; only a clean end of the data
//! stream commits it.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use ferry_proto::listing::{write_list_line, write_mlsx_facts, write_nlst_line, Entry};
use ferry_proto::path::VPath;
use ferry_proto::session::{DataTlsError, ListFormat, Permissions, StoreMode, Transfer, TransferEvent};
use ferry_proto::{ascii, glob};
use ferry_vfs::{EntryKind, ErrorKind, FileWriter, Upload, UploadWriter, UserFs};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpStream;

use crate::data::{self, DataCtx, DataPlan};
use crate::storage::{entry, fs_error, name_of};
use crate::zerocopy;

/// Transfer buffer size: large enough that a 1 GiB transfer takes few system calls and storage
/// calls. Allocated per transfer (STOR uses up to two), never held by an idle session.
const BUFFER: usize = 1024 * 1024;

/// An upload buffer that is not full is handed to storage once the client has sent nothing for this
/// long (see `Job::fill`).
const PAUSE: Duration = Duration::from_millis(50);

/// A zero-copy upload's first bytes are read into memory: a file up to this size is then stored with
/// its commit in one step, without setting up a pipe (see `Job::receive_zero_copy`).
const UPLOAD_HEAD: usize = 64 * 1024;

/// A TLS upload into a host file is written in pieces of this size (see `Job::receive_decrypted`):
/// few system calls, and small enough that the decrypted bytes are still in the CPU's cache when
/// the kernel copies them into the file.
const DECRYPTED_BUFFER: usize = 256 * 1024;

/// Listing output is flushed to the data connection in chunks of about this size.
const LIST_CHUNK: usize = 64 * 1024;

/// Directory entries fetched from storage per batch while listing.
const LIST_BATCH: usize = 256;

/// After sending close_notify, how long a TLS data connection waits (in the background) for the client's
/// close_notify and FIN before it is dropped.
const TLS_LINGER: Duration = Duration::from_secs(5);

/// Read buffer under a TLS upload: rustls reads the socket at most 4 KiB at a time (about five
/// system calls per 16 KiB record); this buffer takes what the socket holds in one call instead.
const TLS_UPLOAD_READ: usize = 256 * 1024;

/// A data connection: plain TCP, or TLS (PROT P) over a read buffer (in effect none, except for
/// uploads: [`TLS_UPLOAD_READ`]).
enum DataStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<BufReader<TcpStream>>>),
}

impl AsyncRead for DataStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            DataStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            DataStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for DataStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            DataStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            DataStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            DataStream::Plain(s) => Pin::new(s).poll_flush(cx),
            DataStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            DataStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            DataStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A running transfer: its future, polled by the session's task ([`Running::poll_event`]), and the
/// events it has reported and the session not yet taken.
pub(crate) struct Running {
    job: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// Filled by the job as it runs; read after each poll. A plain queue, not a channel with a
    /// waker: the reader is the task that polls the job, so there is nobody to wake.
    events: Arc<Mutex<VecDeque<TransferEvent>>>,
    progress: Arc<AtomicU64>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("running", &self.job.is_some())
            .field("bytes", &self.bytes())
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Bytes moved so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.progress.load(Ordering::Relaxed)
    }

    /// Runs the transfer until it reports its next event. `None`: it ended without a final event
    /// (it panicked; the panic is contained here, as it would be in a task of its own).
    /// A poll function, not an async one: the session polls it from its loop and keeps no future for it.
    /// After a `Ready` the caller must poll again (the transfer may have paused at `Started` without
    /// arranging a wake-up, see `HandOver`).
    pub(crate) fn poll_event(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Option<TransferEvent>> {
        if let Some(ev) = self.take_event() {
            return Poll::Ready(Some(ev));
        }
        if let Some(job) = self.job.as_mut() {
            let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.as_mut().poll(cx)));
            match polled {
                Ok(Poll::Pending) => {}
                Ok(Poll::Ready(())) => self.job = None,
                Err(_) => {
                    tracing::error!("a transfer panicked");
                    self.job = None;
                }
            }
        }
        match self.take_event() {
            Some(ev) => Poll::Ready(Some(ev)),
            None if self.job.is_none() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    /// An event already reported, without running the transfer.
    pub(crate) fn take_event(&self) -> Option<TransferEvent> {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
    }

    /// Stops the transfer where it is (an unfinished upload is discarded) and returns the events it
    /// reported that were not taken yet.
    pub(crate) fn cancel(mut self) -> Vec<TransferEvent> {
        self.job = None;
        let mut q = self.events.lock().unwrap_or_else(|e| e.into_inner());
        q.drain(..).collect()
    }
}

/// Prepares `transfer`; it runs as the session polls [`Running::poll_event`].
pub(crate) fn start(transfer: Transfer, fs: UserFs, plan: DataPlan, ctx: DataCtx) -> Running {
    let events = Arc::new(Mutex::new(VecDeque::new()));
    let progress = Arc::new(AtomicU64::new(0));
    let job = Job {
        fs,
        plan: Some(plan),
        ctx,
        events: Arc::clone(&events),
        progress: Arc::clone(&progress),
    };
    let job = async move {
        let queue = Arc::clone(&job.events);
        let end = match transfer {
            Transfer::Retr { path, offset, ascii } => job.retr(&path, offset, ascii).await,
            Transfer::Stor { path, mode, ascii } => job.stor(&path, mode, ascii).await,
            Transfer::List {
                path,
                format,
                permissions,
                all,
            } => job.list(&path, format, permissions, all).await,
        };
        queue.lock().unwrap_or_else(|e| e.into_inner()).push_back(end);
    };
    Running {
        job: Some(Box::pin(job)),
        events,
        progress,
    }
}

/// Pending once, so that the task polling the transfer takes the events reported so far (and writes
/// their replies) before it polls again. It does not wake the task: [`Running::poll_event`] returns
/// the event just reported instead of `Pending`, and its caller polls again for the next one (a
/// wake-up here would schedule the task anew, and could wake an idle worker thread to look at it).
#[derive(Default)]
struct HandOver {
    yielded: bool,
}

impl Future for HandOver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.yielded, true) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

struct Job {
    /// The user's storage, through the policy layer (which checks permissions).
    fs: UserFs,
    plan: Option<DataPlan>,
    ctx: DataCtx,
    events: Arc<Mutex<VecDeque<TransferEvent>>>,
    progress: Arc<AtomicU64>,
}

impl Job {
    /// Reports `Started` and lets the session send its `150` before the transfer goes on: the reply
    /// is on the wire before the first data byte, so a client woken by the data finds it waiting
    /// (otherwise a small file's data arrives first, the client wakes for it, then sleeps again until
    /// the `150` comes with the `226`: one more wake-up per file, across CPUs the dearest part of it).
    async fn started(&self, name: Option<Vec<u8>>, size: Option<u64>) {
        let started = TransferEvent::Started { name, size };
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(started);
        HandOver::default().await;
    }

    /// Establishes the data connection; `upload`: the client sends (a TLS connection then reads
    /// through [`TLS_UPLOAD_READ`]).
    async fn connect(&mut self, upload: bool) -> Result<DataStream, TransferEvent> {
        let tcp = self.establish().await?.into_registered().map_err(|e| {
            tracing::info!(error = %e, "data connection failed");
            TransferEvent::NoConnection
        })?;
        let Some(tls) = &self.ctx.tls else {
            return Ok(DataStream::Plain(tcp));
        };
        tls.binding.clear();
        // One byte: every read is at least that long and bypasses it (tokio refuses zero).
        let tcp = BufReader::with_capacity(if upload { TLS_UPLOAD_READ } else { 1 }, tcp);
        let stream = crate::conn::tls_accept(tcp, Arc::clone(&tls.config), tls.handshake_timeout)
            .await
            .map_err(|e| {
                tracing::info!(error = %e, "TLS handshake on the data connection failed");
                TransferEvent::DataTlsRefused(DataTlsError::Handshake)
            })?;
        let resumed = crate::tls::resumed(stream.get_ref().1);
        // A sibling control connection may still be checking its password; give it a moment.
        let wait = tls.handshake_timeout.min(std::time::Duration::from_secs(3));
        let resumed = resumed && tls.binding.confirm(wait).await;
        if tls.require_resumed && !resumed {
            tracing::warn!(
                "data connection did not resume this control connection's TLS session; refused \
                 (passive-port theft, or a client that cannot resume: see danger_allow_unresumed_data_tls)"
            );
            return Err(TransferEvent::DataTlsRefused(DataTlsError::NotResumed));
        }
        Ok(DataStream::Tls(Box::new(stream)))
    }

    /// Establishes the TCP data connection (not registered with the reactor when it need not be).
    async fn establish(&mut self) -> Result<data::Established, TransferEvent> {
        let plan = self.plan.take().unwrap_or_default();
        data::establish(plan, &self.ctx).await.map_err(|e| {
            let denied = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<data::SourcePortDenied>());
            if let Some(data::SourcePortDenied(port)) = denied {
                tracing::warn!(
                    port,
                    "active data connection failed: binding source port {port} needs root or \
                     CAP_NET_BIND_SERVICE (set active_source_port = \"any\", or grant the capability)"
                );
                return TransferEvent::SourcePortDenied { port: *port };
            }
            tracing::info!(error = %e, "data connection failed");
            TransferEvent::NoConnection
        })
    }

    /// Writes all of `data`; fails if the peer accepts nothing for the data timeout. Slow but steady
    /// clients are fine: every write that makes progress restarts the clock.
    async fn send(&self, sock: &mut DataStream, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let n = tokio::time::timeout(self.ctx.timeout, sock.write(data))
                .await
                .map_err(|_| stalled())??;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            data = data.get(n..).unwrap_or_default();
        }
        Ok(())
    }

    /// Ends the sending side of the data connection: the EOF (under TLS, close_notify then EOF) that tells
    /// the client the data is complete. A TLS connection then lingers in the background to take the
    /// client's close_notify, so that closing does not reset the connection under the client.
    async fn finish(&self, mut sock: DataStream) -> std::io::Result<()> {
        tokio::time::timeout(self.ctx.timeout, sock.shutdown())
            .await
            .map_err(|_| stalled())??;
        if let DataStream::Tls(_) = sock {
            tokio::spawn(async move {
                let mut scratch = [0u8; 512];
                let _ = tokio::time::timeout(TLS_LINGER, async {
                    while let Ok(n) = sock.read(&mut scratch).await {
                        if n == 0 {
                            break;
                        }
                    }
                })
                .await;
            });
        }
        Ok(())
    }

    fn add(&self, n: usize) -> u64 {
        self.progress.fetch_add(n as u64, Ordering::Relaxed) + n as u64
    }

    async fn retr(self, path: &VPath, offset: u64, ascii: bool) -> TransferEvent {
        let started = std::time::Instant::now();
        let fs = self.fs.clone();
        let progress = Arc::clone(&self.progress);
        let end = self.send_file(path, offset, ascii).await;
        let result = match &end {
            TransferEvent::Finished { .. } => Ok(()),
            TransferEvent::StorageFailed(e) => Err(e.kind),
            _ => Err(ErrorKind::Io),
        };
        fs.downloaded(path, progress.load(Ordering::Relaxed), started, result);
        end
    }

    async fn send_file(mut self, path: &VPath, offset: u64, ascii: bool) -> TransferEvent {
        // Opening refuses directories (IsADirectory) and anything but regular files.
        let mut reader = match self.fs.open_read(path, offset).await {
            Ok(r) => r,
            Err(e) => return TransferEvent::StorageFailed(fs_error(e)),
        };
        // The back-end learnt the size while opening, or is asked.
        let total = match reader.size() {
            Some(size) => size,
            None => match self.fs.stat(path).await {
                Ok(m) => m.size,
                Err(e) => return TransferEvent::StorageFailed(fs_error(e)),
            },
        };
        let size = (!ascii).then(|| total.saturating_sub(offset));
        self.started(None, size).await;
        // Zero-copy for binary transfers from back-ends that offer it, on cleartext connections; TLS must
        // encrypt in user space.
        if let (false, Some(file), None) = (ascii, reader.zero_copy(), &self.ctx.tls) {
            let mut sock = match self.establish().await {
                Ok(s) => s,
                Err(ev) => return ev,
            };
            // An empty file is read to its end all the same (pseudo files say 0 and have more).
            let known = size.filter(|n| *n > 0);
            let sent = zerocopy::send_file(&mut sock, file, known, self.ctx.timeout, |n| {
                self.add(n);
            })
            .await;
            return match sent.and_then(|bytes| sock.shut_down().map(|()| bytes)) {
                Ok(bytes) => TransferEvent::Finished { bytes },
                Err(e) => {
                    tracing::info!(error = %e, "zero-copy download failed");
                    TransferEvent::ConnectionLost
                }
            };
        }
        let mut sock = match self.connect(false).await {
            Ok(s) => s,
            Err(ev) => return ev,
        };
        // The copy loop writes in 1 MiB pieces: limit what the socket queues beyond the window.
        match &sock {
            DataStream::Plain(tcp) => data::limit_unsent(tcp),
            DataStream::Tls(tls) => data::limit_unsent(tls.get_ref().0.get_ref()),
        }
        let mut buf = vec![0u8; BUFFER];
        let mut converted = Vec::new();
        let mut conv = ascii::ToNetwork::new();
        let mut bytes = 0;
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return TransferEvent::StorageFailed(fs_error(e)),
            };
            let chunk = match buf.get(..n) {
                Some(c) => c,
                None => return TransferEvent::StorageFailed(ErrorKind::Io.into()),
            };
            let out = if ascii {
                converted.clear();
                conv.convert(chunk, &mut converted);
                &converted[..]
            } else {
                chunk
            };
            if self.send(&mut sock, out).await.is_err() {
                return TransferEvent::ConnectionLost;
            }
            bytes = self.add(out.len());
        }
        self.finished(sock, bytes).await
    }

    /// Ends a transfer that sent `bytes`: the EOF on the data connection, then `Finished`.
    async fn finished(&self, sock: DataStream, bytes: u64) -> TransferEvent {
        if self.finish(sock).await.is_err() {
            return TransferEvent::ConnectionLost;
        }
        TransferEvent::Finished { bytes }
    }

    async fn stor(mut self, path: &VPath, mode: StoreMode, ascii: bool) -> TransferEvent {
        let how = match mode {
            StoreMode::Create => Upload::Replace,
            StoreMode::Append => Upload::Append,
            StoreMode::At(n) => Upload::Resume(n),
            StoreMode::Unique => Upload::Unique,
        };
        // The policy layer refuses a directory target, and resume or append where the back-end cannot,
        // before any data moves.
        let mut writer = match self.fs.upload(path, how, None).await {
            Ok(w) => w,
            Err(e) => return TransferEvent::StorageFailed(fs_error(e)),
        };
        self.started(Some(writer.final_name().to_vec()), None).await;
        let sock = match self.connect(true).await {
            Ok(s) => s,
            Err(ev) => {
                Box::new(writer).abort().await;
                return ev;
            }
        };
        // Binary uploads into back-ends that offer a host file for them: spliced on cleartext
        // connections, decrypted and written on this thread under TLS; the upload still appears
        // under its name only on commit. Otherwise the copying loop.
        let received = match sock {
            DataStream::Plain(tcp) if !ascii => self.receive_zero_copy(tcp, &mut writer).await,
            mut sock => {
                let decrypted = match (&sock, ascii) {
                    (DataStream::Tls(_), false) => self.receive_decrypted(&mut sock, &mut writer).await,
                    _ => None,
                };
                let received = match decrypted {
                    Some(received) => received,
                    None => self.receive_into(&mut sock, &mut writer, ascii).await,
                };
                // Under TLS the client's close_notify has arrived (a bare EOF is an error); answer
                // with ours.
                if let (Ok(_), DataStream::Tls(_)) = (&received, &sock) {
                    let _ = self.finish(sock).await;
                }
                received
            }
        };
        match received {
            Ok(last) => match Box::new(writer).commit_with(last).await {
                Ok(_) => TransferEvent::Finished {
                    bytes: self.progress.load(Ordering::Relaxed),
                },
                Err(e) => TransferEvent::StorageFailed(fs_error(e)),
            },
            Err(ev) => {
                Box::new(writer).abort().await;
                ev
            }
        }
    }

    /// Receives the data connection into `writer`'s host file until EOF: the first [`UPLOAD_HEAD`]
    /// bytes through user space, the rest with `splice`. Returns what is left to write with the
    /// commit: the whole file when it fitted into the head (no pipe is made for it, and the local
    /// back-end writes and renames it in one go), else nothing. Where the back-end offers no
    /// zero-copy file for this upload (or no pipe could be made), the copying loop takes over, after
    /// what was written here.
    async fn receive_zero_copy(
        &self,
        tcp: TcpStream,
        writer: &mut UploadWriter,
    ) -> Result<Vec<u8>, TransferEvent> {
        // Only where the back-end offers a zero-copy file (a new file, written to a temp file until
        // commit): a broken upload is then discarded, so holding its head in memory changes
        // nothing, whereas a resumed upload keeps what arrived as it arrives.
        let file = match self.fs.capabilities().zero_copy_write {
            true => writer.zero_copy(),
            false => None,
        };
        let Some(file) = file else {
            return self
                .receive_into(&mut DataStream::Plain(tcp), writer, false)
                .await;
        };
        let mut head = Vec::with_capacity(UPLOAD_HEAD);
        let ended = zerocopy::read_head(&tcp, &mut head, self.ctx.timeout).await;
        self.add(head.len());
        let broken = match ended {
            Ok(true) => return Ok(head),
            Ok(false) => None,
            Err(e) => Some(e),
        };
        // More than the head: it goes first into the file, then the rest is spliced after it (or,
        // without a pipe, copied after it).
        let written = self.write_direct(&file, &head, writer);
        if let Some(e) = broken {
            // What came before the break is kept, as the copying loop keeps it.
            tracing::info!(error = %e, "data connection failed during an upload");
            return Err(TransferEvent::ConnectionLost);
        }
        written?;
        let Some(pipe) = zerocopy::Pipe::new() else {
            return self
                .receive_into(&mut DataStream::Plain(tcp), writer, false)
                .await;
        };
        let received = match tcp.into_std() {
            Ok(sock) => zerocopy::receive_file(sock, &pipe, &file, self.ctx.timeout, |n| {
                self.add(n);
                writer.zero_copy_written(n as u64)
            })
            .await
            .map_err(|e| match e {
                zerocopy::ReceiveError::Network(e) => {
                    tracing::info!(error = %e, "data connection failed during an upload");
                    TransferEvent::ConnectionLost
                }
                zerocopy::ReceiveError::File(e) => TransferEvent::StorageFailed(fs_error(e.into())),
                zerocopy::ReceiveError::Refused(e) => TransferEvent::StorageFailed(fs_error(e)),
            }),
            Err(e) => {
                tracing::info!(error = %e, "data connection could not leave the reactor");
                Err(TransferEvent::ConnectionLost)
            }
        };
        received.map(|_| Vec::new())
    }

    /// Receives a TLS upload into `writer`'s host file: the decrypted bytes are gathered in a buffer of
    /// [`DECRYPTED_BUFFER`] and written into the file on this thread (into the page cache, as a
    /// `splice` would), without a hand-over to the blocking pool per buffer; the file's pages are
    /// written while the bytes are still in this core's cache. Returns what is left to write with
    /// the commit (the whole file when it fitted into one buffer). `None` when the back-end offers no
    /// host file for this upload: the caller copies.
    ///
    /// The stream's end is the client's close_notify: a bare EOF or a broken connection is an
    /// error, and the caller discards the upload (only a new file gets a host file).
    async fn receive_decrypted(
        &self,
        sock: &mut DataStream,
        writer: &mut UploadWriter,
    ) -> Option<Result<Vec<u8>, TransferEvent>> {
        if !self.fs.capabilities().zero_copy_write {
            return None;
        }
        let file = writer.zero_copy()?;
        let mut buf = Vec::with_capacity(DECRYPTED_BUFFER);
        loop {
            match self.fill(sock, &mut buf).await {
                Ok(true) => return Some(Ok(buf)),
                Ok(false) => {}
                Err(e) => {
                    tracing::info!(error = %e, "data connection failed during an upload");
                    return Some(Err(TransferEvent::ConnectionLost));
                }
            }
            if let Err(ev) = self.write_direct(&file, &buf, writer) {
                return Some(Err(ev));
            }
            buf.clear();
        }
    }

    /// Writes `data` into the host file of a zero-copy upload at its position (page cache: as a
    /// `splice` would, on this thread) and accounts for it.
    fn write_direct(
        &self,
        mut file: &std::fs::File,
        data: &[u8],
        writer: &mut UploadWriter,
    ) -> Result<(), TransferEvent> {
        use std::io::Write;
        file.write_all(data)
            .map_err(|e| TransferEvent::StorageFailed(fs_error(e.into())))?;
        writer
            .zero_copy_written(data.len() as u64)
            .map_err(|e| TransferEvent::StorageFailed(fs_error(e)))
    }

    /// Copies the data connection into `writer` until EOF, except for the last piece of data, which
    /// it returns so that the caller can write it together with the commit.
    ///
    /// Two buffers alternate: while one is written to storage (on another thread, for the local
    /// back-end) the other fills from the socket, so disk and network work overlap. A buffer is
    /// handed over when it is full, or when the client pauses ([`PAUSE`]), so a fast upload costs few
    /// storage calls and a slow one still reaches the file as it arrives (a resumed upload that
    /// breaks keeps what came). The second buffer is only allocated once the first is handed over.
    async fn receive_into(
        &self,
        sock: &mut DataStream,
        writer: &mut dyn FileWriter,
        ascii: bool,
    ) -> Result<Vec<u8>, TransferEvent> {
        let mut conv = ascii::FromNetwork::new();
        let mut filling = Vec::with_capacity(BUFFER);
        let mut to_write: Option<Vec<u8>> = None;
        loop {
            let write = async {
                match to_write.take() {
                    Some(buf) => writer.write_owned(buf).await.map(Some),
                    None => Ok(None),
                }
            };
            // Not `try_join`: a write in flight is never cancelled halfway.
            let (written, filled) = tokio::join!(write, self.fill(sock, &mut filling));
            let written = written.map_err(|e| TransferEvent::StorageFailed(fs_error(e)))?;
            let eof = match filled {
                Ok(eof) => eof,
                Err(_) => {
                    // What arrived before the break is kept (it matters for resumed uploads; a new
                    // file is discarded anyway).
                    let mut rest = std::mem::take(&mut filling);
                    if ascii {
                        let mut out = Vec::with_capacity(rest.len());
                        conv.convert(&rest, &mut out);
                        rest = out;
                    }
                    if !rest.is_empty() {
                        let _ = writer.write_owned(rest).await;
                    }
                    return Err(TransferEvent::ConnectionLost);
                }
            };
            let mut next = match written {
                Some(mut b) if b.capacity() >= BUFFER => {
                    b.clear();
                    b
                }
                _ if eof => Vec::new(),
                _ => Vec::with_capacity(BUFFER),
            };
            std::mem::swap(&mut next, &mut filling);
            // `next` holds the data read; `filling` is empty again.
            let data = if ascii {
                let mut out = Vec::with_capacity(next.len() + next.len() / 64);
                conv.convert(&next, &mut out);
                if eof {
                    conv.finish(&mut out);
                }
                next.clear();
                filling = next;
                out
            } else {
                next
            };
            if eof {
                return Ok(data);
            }
            to_write = Some(data);
        }
    }

    /// Reads from the data connection into `buf`: waits for some data, then goes on reading until
    /// `buf` is full (its capacity), the peer ends the stream, or no more data comes for [`PAUSE`].
    /// Returns whether the peer ended the stream. Fails if the peer sends nothing for the data
    /// timeout.
    ///
    /// The short pause lets a small file's data and its end arrive in one fill, so that it is
    /// written together with the commit; a longer one hands over what came, so a slow upload still
    /// reaches the file as it arrives.
    async fn fill(&self, sock: &mut DataStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
        let n = tokio::time::timeout(self.ctx.timeout, sock.read_buf(buf))
            .await
            .map_err(|_| stalled())??;
        if n == 0 {
            return Ok(true);
        }
        self.add(n);
        while buf.len() < buf.capacity() {
            // Dropping an unfinished read on time-out loses nothing.
            match tokio::time::timeout(PAUSE, sock.read_buf(buf)).await {
                Err(_) => break,
                Ok(Ok(0)) => return Ok(true),
                Ok(Ok(n)) => {
                    self.add(n);
                }
                Ok(Err(e)) => return Err(e),
            }
        }
        Ok(false)
    }

    async fn list(
        mut self,
        path: &VPath,
        format: ListFormat,
        perms: Permissions,
        all: bool,
    ) -> TransferEvent {
        let now = SystemTime::now();
        let mut path = path.clone();
        let mut pattern = None;
        let meta = match self.fs.stat(&path).await {
            Ok(m) => m,
            // `NLST *.txt`: a missing last component with wildcards lists the matching entries of its
            // directory. MLSD takes no wildcards (RFC 3659 §7.1).
            Err(e)
                if e.kind() == ErrorKind::NotFound
                    && format != ListFormat::Machine
                    && path.file_name().is_some_and(glob::has_wildcard) =>
            {
                pattern = path.file_name().map(<[u8]>::to_vec);
                path = path.parent();
                match self.fs.stat(&path).await {
                    Ok(m) => m,
                    Err(e) => return TransferEvent::StorageFailed(fs_error(e)),
                }
            }
            Err(e) => return TransferEvent::StorageFailed(fs_error(e)),
        };
        let path = &path;
        let mut stream = None;
        let mut single = None;
        if meta.kind == EntryKind::Dir {
            match self.fs.list(path).await {
                Ok(s) => stream = Some(s),
                Err(e) => return TransferEvent::StorageFailed(fs_error(e)),
            }
        } else if format == ListFormat::Machine {
            // RFC 3659: MLSD of a non-directory is an error (MLST is for single files).
            return TransferEvent::StorageFailed(ErrorKind::NotADirectory.into());
        } else {
            single = Some(entry(name_of(path), &meta));
        }
        self.started(None, None).await;
        let mut sock = match self.connect(false).await {
            Ok(s) => s,
            Err(ev) => return ev,
        };
        let mut out = Vec::with_capacity(LIST_CHUNK + 1024);
        let mut bytes = 0;
        let hide_dot = !all && format != ListFormat::Machine;
        if let Some(e) = single {
            format_entry(&mut out, &e, format, perms, now);
        }
        if let Some(stream) = stream.as_mut() {
            loop {
                let batch = match stream.next_batch(LIST_BATCH).await {
                    Ok(b) if b.is_empty() => break,
                    Ok(b) => b,
                    Err(e) => return TransferEvent::StorageFailed(fs_error(e)),
                };
                for d in batch {
                    if hide_dot && d.name.first() == Some(&b'.') {
                        continue;
                    }
                    if pattern.as_ref().is_some_and(|p| !glob::matches(p, &d.name)) {
                        continue;
                    }
                    format_entry(&mut out, &entry(d.name, &d.metadata), format, perms, now);
                }
                if out.len() >= LIST_CHUNK {
                    if self.send(&mut sock, &out).await.is_err() {
                        return TransferEvent::ConnectionLost;
                    }
                    bytes = self.add(out.len());
                    out.clear();
                }
            }
        }
        if !out.is_empty() {
            if self.send(&mut sock, &out).await.is_err() {
                return TransferEvent::ConnectionLost;
            }
            bytes = self.add(out.len());
        }
        self.finished(sock, bytes).await
    }
}

fn stalled() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "data connection stalled")
}

fn format_entry(out: &mut Vec<u8>, e: &Entry, format: ListFormat, perms: Permissions, now: SystemTime) {
    match format {
        ListFormat::Long => write_list_line(out, e, now),
        ListFormat::Names => write_nlst_line(out, &e.name),
        ListFormat::Machine => {
            write_mlsx_facts(out, e, perms);
            out.extend_from_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind as IoKind, Read};
    use std::net::IpAddr;

    use ferry_vfs::{LocalFs, Permissions, Protocol, Storage};

    use super::*;

    fn ctx() -> DataCtx {
        let lo = IpAddr::from([127, 0, 0, 1]);
        DataCtx {
            peer_ip: lo,
            local_ip: lo,
            timeout: Duration::from_secs(10),
            active_source: None,
            allow_fxp: false,
            proxy: None,
            tls: None,
        }
    }

    /// A download through a passive connection the client opened before RETR, as clients do: the
    /// transfer reports `Started` (the session then sends its `150`) before the first data byte is sent,
    /// and the whole file after.
    #[tokio::test]
    async fn a_zero_copy_download_reports_started_before_any_data_is_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f"), vec![7u8; 4096]).expect("write");
        let storage: Arc<dyn Storage> = Arc::new(LocalFs::open(dir.path()).expect("open"));
        let fs = UserFs::new(storage, Protocol::Ftp, "u", Permissions::all());
        let passive = data::open_passive(IpAddr::from([127, 0, 0, 1]), &(0..=0)).expect("listen");
        let mut client =
            std::net::TcpStream::connect(passive.listener.local_addr().expect("address")).expect("connect");
        let path = VPath::parse(b"/f").expect("path");
        let retr = Transfer::Retr {
            path,
            offset: 0,
            ascii: false,
        };
        let mut running = start(retr, fs, DataPlan::Passive(passive), ctx());
        let first = std::future::poll_fn(|cx| running.poll_event(cx)).await;
        assert!(
            matches!(first, Some(TransferEvent::Started { size: Some(4096), .. })),
            "{first:?}"
        );
        client.set_nonblocking(true).expect("nonblocking");
        let early = client.peek(&mut [0u8; 1]);
        assert!(
            matches!(&early, Err(e) if e.kind() == IoKind::WouldBlock),
            "data was sent before the session could send its 150: {early:?}"
        );
        let end = std::future::poll_fn(|cx| running.poll_event(cx)).await;
        assert!(
            matches!(end, Some(TransferEvent::Finished { bytes: 4096 })),
            "{end:?}"
        );
        client.set_nonblocking(false).expect("blocking");
        let mut got = Vec::new();
        client.read_to_end(&mut got).expect("read");
        assert_eq!(got, vec![7u8; 4096]);
    }
}
