//! One control connection: reads bytes, feeds the session, and carries out its outputs.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ferry_admission::{canonical, Attempt, LoginResult, Refused};
use ferry_admission::{Phase, Stop};
use ferry_auth::{AuthOutcome, Password};
use ferry_observe::{Protocol, SessionTap};
use ferry_proto::command::Secret;
use ferry_proto::limits::MAX_LINE;
use ferry_proto::reply::{Reply, ReplyCode};
use ferry_proto::session::{
    DataTlsError, Login, LoginTls, Output, PassiveFamily, Session, TlsPolicy, TlsSettings, TransferEvent,
};
use ferry_proto::telnet::{ControlDecoder, ControlInput};
use ferry_proto::untrusted::Untrusted;
use ferry_vfs::{UserFs, VPath};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, Interest, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tracing::{debug, field, info, info_span, warn, Instrument};

use crate::data::{self, DataCtx, DataPlan, DataTls};
use crate::protection::Throttle;
use crate::tls::SessionTls;

use self::clock::Instant;
use crate::transfer::{self, Running};
use crate::{storage, ListenerKind, Server};
use ferry_admission::Slot;

mod observe;

/// A control connection after its TLS handshake.
type TlsControl = tokio_rustls::server::TlsStream<TcpStream>;

/// The reading side of the control connection.
enum Reader {
    Plain(OwnedReadHalf),
    Tls(ReadHalf<TlsControl>),
}

/// The writing side of the control connection.
enum Writer {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<TlsControl>),
    /// Taken for the TLS upgrade.
    Gone,
}

impl Writer {
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Writer::Plain(w) => w.write_all(bytes).await,
            Writer::Tls(w) => {
                w.write_all(bytes).await?;
                w.flush().await
            }
            Writer::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Ends the connection's sending side; under TLS this sends close_notify first.
    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Writer::Plain(w) => w.shutdown().await,
            Writer::Tls(w) => w.shutdown().await,
            Writer::Gone => Ok(()),
        }
    }
}

/// Runs a TLS handshake as the server, within `timeout`.
pub(crate) async fn tls_accept<IO>(
    stream: IO,
    config: Arc<ServerConfig>,
    timeout: Duration,
) -> io::Result<tokio_rustls::server::TlsStream<IO>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::time::timeout(timeout, acceptor.accept(stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
}

/// Control-channel read buffer; small because lines are short. It belongs to the worker thread (a
/// thread-local one for cleartext, on the stack while a TLS read runs), so an idle session holds no read
/// buffer at all (under TLS, what has not been read yet stays in rustls's buffer).
const READ_BUFFER: usize = 4096;

thread_local! {
    /// The cleartext control read buffer ([`READ_BUFFER`]) of this worker thread: zeroed once, not
    /// for every read as a buffer on the stack would be.
    static READ_BUF: std::cell::RefCell<[u8; READ_BUFFER]> = const { std::cell::RefCell::new([0; READ_BUFFER]) };
}

/// Control-socket buffers read per wake-up (see `Conn::read_available`).
const MAX_READS: usize = 4;

/// Runs one control connection to completion.
///
/// Opening the session (PROXY header, admission, implicit TLS) is one boxed future that is gone before
/// the session proper starts. The session's own future, allocated for as long as the connection is
/// open, so holds nothing of what opening it took (one async block around both kept its arguments and
/// the largest step's future for the whole session; see `an_idle_sessions_task_stays_small`).
pub(crate) fn run(
    id: u64,
    stream: TcpStream,
    tcp_peer: SocketAddr,
    server: Arc<Server>,
    kind: ListenerKind,
    stop: Stop,
) -> impl std::future::Future<Output = ()> + Send {
    use futures_util::future::{Either, FutureExt};
    Box::pin(open(id, stream, tcp_peer, server, kind, stop)).then(|opened| match opened {
        Some(Opened { conn, rd, span }) => Either::Left(session(conn, rd).instrument(span)),
        None => Either::Right(std::future::ready(())),
    })
}

/// A control connection that was admitted, ready for its session.
struct Opened {
    /// Boxed: moved into the session's future, which would otherwise keep room for it twice (an async
    /// function's argument and the local it becomes).
    conn: Box<Conn>,
    rd: Reader,
    span: tracing::Span,
}

/// Reads the PROXY header if one is expected and names the session's span after the client.
async fn open(
    id: u64,
    mut stream: TcpStream,
    tcp_peer: SocketAddr,
    server: Arc<Server>,
    kind: ListenerKind,
    stop: Stop,
) -> Option<Opened> {
    // Behind a load balancer the client is the one its PROXY header names; everything below (limits,
    // bans, TLS policy, PORT checks, passive-peer checks, logs) uses that address.
    let arrival = server.admission.arrive(&mut stream, tcp_peer).await.ok()?;
    let peer = arrival.client;
    let span = info_span!("session", id, peer = %peer, via = field::Empty, user = field::Empty);
    if let Some(via) = arrival.via {
        span.record("via", field::display(via));
    }
    let (conn, rd) = admit(stream, arrival, server, kind, stop)
        .instrument(span.clone())
        .await?;
    Some(Opened {
        conn: Box::new(conn),
        rd,
        span,
    })
}

/// Admits the connection (bans, limits), runs the implicit-TLS handshake, and sets up its session.
async fn admit(
    stream: TcpStream,
    arrival: ferry_admission::Arrival,
    server: Arc<Server>,
    kind: ListenerKind,
    stop: Stop,
) -> Option<(Conn, Reader)> {
    let peer = arrival.client;
    let ip = canonical(peer.ip());
    // Banned addresses and connections over a limit are refused before anything else: 421 instead
    // of the greeting.
    let slot = match server.admission.admit(ip).await {
        Ok(slot) => slot,
        Err(Refused::Banned(until)) => {
            info!("connection refused: address banned");
            let protocol = if kind == ListenerKind::Implicit {
                Protocol::Ftps
            } else {
                Protocol::Ftp
            };
            if let Some(o) = server.observer() {
                o.connection_banned(protocol);
            }
            refuse(stream, &banned_text(until)).await;
            return None;
        }
        Err(Refused::Limit(refusal)) => {
            refuse(stream, refusal.text()).await;
            return None;
        }
    };
    let implicit = kind == ListenerKind::Implicit;
    let protocol = if implicit { Protocol::Ftps } else { Protocol::Ftp };
    let tap = SessionTap::open(server.observer().cloned(), protocol, peer);
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return None,
    };
    // The address the client connected to: the balancer's, from the header, when proxied.
    let reached = arrival.reached.unwrap_or(local);
    let _ = stream.set_nodelay(true);
    let ftps = &server.config.ftps;
    let mut session_tls = None;
    let (rd, wr) = if implicit {
        let Some(tls) = ftps.tls.as_ref() else {
            warn!("implicit FTPS listener without a certificate; closing");
            return None;
        };
        let st = tls.session(peer.ip(), ftps.data_session);
        match Box::pin(tls_accept(
            stream,
            Arc::clone(&st.control),
            ftps.handshake_timeout,
        ))
        .await
        {
            Ok(s) => {
                info!("connected (implicit TLS)");
                session_tls = Some(Box::new(st));
                let (r, w) = tokio::io::split(s);
                (Reader::Tls(r), Writer::Tls(w))
            }
            Err(e) => {
                info!(error = %e, "TLS handshake failed");
                return None;
            }
        }
    } else {
        // Clients send the Telnet Synch's DM byte as TCP urgent data before ABOR (RFC 959 §4.1.3).
        // Without OOBINLINE the kernel drops it from the stream, and the IAC before it would swallow the
        // "A" of ABOR; inline, the decoder sees IAC IP IAC DM ABOR as intended.
        let _ = socket2::SockRef::from(&stream).set_out_of_band_inline(true);
        info!("connected");
        let (r, w) = stream.into_split();
        (Reader::Plain(r), Writer::Plain(w))
    };
    let mut config = server.session_config();
    config.tls = TlsSettings {
        policy: if implicit {
            TlsPolicy::Required
        } else {
            ftps.policy_for(peer.ip())
        },
        require_protected_data: ftps.require_protected_data,
        implicit,
        allow_ccc: ftps.danger_allow_ccc,
    };
    let allow_unresumed = ftps.danger_allow_unresumed_data_tls;
    let session = Session::new(config, peer, reached, Instant::now());
    let throttle = Throttle::new(server.config.protection.max_commands_per_sec, Instant::now());
    let conn = Conn {
        server,
        session,
        local,
        proxied: arrival.via.is_some(),
        session_tls,
        start_tls: false,
        stop_tls: false,
        allow_unresumed,
        wr,
        out: Vec::new(),
        storage: None,
        plan: DataPlan::None,
        running: None,
        tap,
        hashing: None,
        stop,
        guard: Guard {
            slot,
            throttle,
            logged_in: false,
            tried_login: false,
            fxp: false,
            closing: None,
        },
    };
    Some((conn, rd))
}

/// The session proper, until the connection ends.
///
/// Its arguments are few and small on purpose: an async function keeps room for each argument for as
/// long as it runs, and one it uses after an await a second time (the shutdown signal lives in `Conn`
/// and the client's address is taken from it, see `an_idle_sessions_task_stays_small`).
async fn session(mut conn: Box<Conn>, rd: Reader) {
    conn.serve(rd).await;
    // The client's address, canonical, for the admission's books.
    let ip = canonical(conn.session.peer().ip());
    // Only a client that tried to log in is scored for leaving: health checks, port scans and
    // clients that give up on the certificate never sent USER or PASS.
    let (logged_in, tried) = (conn.guard.logged_in, conn.guard.tried_login);
    // Boxed: large, and needed once.
    Box::pin(conn.server.admission.left(ip, logged_in, tried)).await;
    drop(conn);
    info!("disconnected");
}

/// The `421` text for a banned address: until when, in UTC.
fn banned_text(until: std::time::SystemTime) -> String {
    format!(
        "Your address is banned until {} after too many failed logins; try again later",
        ferry_auth::defender::utc(until)
    )
}

async fn refuse(mut stream: TcpStream, text: &str) {
    let reply = Reply::new(ReplyCode::SERVICE_NOT_AVAILABLE, text).to_bytes();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.write_all(&reply)).await;
}

/// One control connection's state. The client's address and the address it reached (the balancer's
/// when proxied; `local` otherwise) are the session's (`Session::peer`, `Session::local`), not kept twice.
struct Conn {
    server: Arc<Server>,
    session: Session,
    /// This end of the control connection's socket.
    local: SocketAddr,
    /// The control connection came through a load balancer (PROXY header).
    proxied: bool,
    /// This control connection's TLS configurations, once TLS is up (boxed: plain sessions hold a null
    /// pointer only).
    session_tls: Option<Box<SessionTls>>,
    /// The session asked for the TLS handshake (after `234`).
    start_tls: bool,
    /// The session asked to end TLS on the control connection (after `200` to CCC).
    stop_tls: bool,
    /// Accept TLS data connections that do not resume this session (danger switch, global or per user).
    allow_unresumed: bool,
    wr: Writer,
    out: Vec<u8>,
    /// The logged-in user's storage, through the policy layer.
    storage: Option<UserFs>,
    plan: DataPlan,
    running: Option<Running>,
    /// Reports the session's events.
    tap: std::sync::Arc<SessionTap>,
    /// A `HASH` checksum being computed.
    hashing: Option<crate::hash::Hashing>,
    /// The server's shutdown, as this connection sees it.
    stop: Stop,
    guard: Guard,
}

/// Hostile-client defences of one connection.
struct Guard {
    /// The connection's slot in the limits (pending until the first login).
    slot: Slot,
    /// Command-rate throttle.
    throttle: Throttle,
    /// Whether a login has succeeded on this connection.
    logged_in: bool,
    /// Whether the client sent USER or PASS (only then does leaving before login score).
    tried_login: bool,
    /// FXP allowed for the logged-in user (data connections with other addresses).
    fxp: bool,
    /// Close with `421` after the pending replies, and why (one field for both reasons: every idle
    /// session keeps it).
    closing: Option<Closing>,
}

/// Why a session closes after its pending replies.
#[derive(Debug, Clone, Copy)]
enum Closing {
    /// The defender banned this address (until then) during the session.
    Banned(std::time::SystemTime),
    /// A login was refused by a session limit: this `421` text.
    Refused(&'static str),
}

/// Why the connection loop ended.
enum End {
    Closed,
    ControlLost,
}

impl Conn {
    async fn serve(&mut self, mut rd: Reader) {
        let mut decoder = ControlDecoder::new(MAX_LINE);
        let end = loop {
            if self.drain().await.is_err() {
                break End::ControlLost;
            }
            if self.session.is_closed() || self.drained().await {
                break End::Closed;
            }
            if std::mem::take(&mut self.start_tls) {
                match Box::pin(self.upgrade(rd)).await {
                    Ok(tls) => {
                        rd = tls;
                        // Cleartext that followed AUTH TLS in the same read is dropped, never run.
                        decoder.reset();
                        self.session.handle_tls(Instant::now(), true);
                        continue;
                    }
                    Err(e) => {
                        info!(error = %e, "TLS handshake on the control connection failed");
                        self.session.handle_tls(Instant::now(), false);
                        return;
                    }
                }
            }
            if std::mem::take(&mut self.stop_tls) {
                match Box::pin(self.downgrade(rd)).await {
                    Ok(plain) => {
                        rd = plain;
                        decoder.reset();
                        self.session.handle_tls_stopped(Instant::now(), true);
                        continue;
                    }
                    Err(e) => {
                        info!(error = %e, "CCC: ending TLS on the control connection failed");
                        self.session.handle_tls_stopped(Instant::now(), false);
                        return;
                    }
                }
            }
            let deadline = self.session.poll_timeout().map(tokio::time::Instant::from_std);
            // Over the command rate: stop reading (the client's sends back up in TCP) until back under it.
            let throttled = self
                .guard
                .throttle
                .blocked_until(Instant::now())
                .map(tokio::time::Instant::from_std);
            // A passive listener kept from the last transfer is dropped when this session goes idle.
            // One timer for all (a timer is a large part of an idle session's state).
            let wake = [deadline, throttled, self.spare_until()]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                // Poll functions rather than futures of their own: what the select keeps for them is a
                // few references, not their state (see `an_idle_sessions_task_stays_small`).
                input = poll_fn(|cx| poll_input(&mut rd, &mut decoder, cx)), if throttled.is_none() => {
                    let ok = match (input, &rd) {
                        (Ok(false), Reader::Plain(plain)) => self.read_available(plain, &mut decoder).is_ok(),
                        (Ok(true), _) => {
                            self.feed(&mut decoder);
                            true
                        }
                        _ => false,
                    };
                    if !ok {
                        break End::ControlLost;
                    }
                }
                event = poll_fn(|cx| poll_event(&mut self.running, cx)) => {
                    self.transfer_event(event);
                    // Whatever else the transfer reported in the same run is taken now, so that the
                    // replies go out together.
                    while let Some(ev) = self.running.as_ref().and_then(Running::take_event) {
                        self.transfer_event(Some(ev));
                    }
                }
                result = poll_fn(|cx| poll_hash(&mut self.hashing, cx)) => {
                    self.hashing = None;
                    self.session.handle_hash(Instant::now(), result);
                }
                () = sleep_until(wake) => {
                    let now = tokio::time::Instant::now();
                    if deadline.is_some_and(|d| d <= now) {
                        self.session.handle_timeout(Instant::now());
                    }
                    // Not kept across the wait (it would make every idle session's future larger).
                    if self.spare_until().is_some_and(|s| s <= now) {
                        self.spare_expired();
                    }
                }
                phase = self.stop.next() => {
                    if phase == Phase::Closing || self.running.is_none() {
                        Box::pin(self.end_for_shutdown()).await;
                        break End::Closed;
                    }
                }
            }
        };
        if let End::ControlLost = end {
            if self.running.is_some() {
                warn!("control connection lost during a transfer; cancelling it");
            }
        }
        // Any transfer still running is cancelled: an unfinished upload is removed, never committed.
        self.abort_transfer().await;
        let _ = self.wr.shutdown().await;
    }

    /// CCC: ends TLS on the control connection (our close_notify, then the client's) and continues on the
    /// bare TCP connection.
    async fn downgrade(&mut self, rd: Reader) -> io::Result<Reader> {
        let wr = std::mem::replace(&mut self.wr, Writer::Gone);
        let (Reader::Tls(rd), Writer::Tls(wr)) = (rd, wr) else {
            return Err(io::Error::other("control connection is not TLS"));
        };
        let mut tls = rd.unsplit(wr);
        let timeout = self.server.config.ftps.handshake_timeout;
        // RFC 4217 §6: after the 200 the client closes TLS first; the server answers with its own
        // close_notify. (Sending ours first makes some clients, lftp among them, see the connection as
        // closed.) Anything but close_notify before that is a protocol error.
        let wait_close = async {
            let mut scratch = [0u8; 256];
            match tls.read(&mut scratch).await? {
                0 => {}
                _ => {
                    return Err(io::Error::other(
                        "data after CCC before the client's close_notify",
                    ))
                }
            }
            tls.get_mut().1.send_close_notify();
            tls.flush().await
        };
        tokio::time::timeout(timeout, wait_close)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no close_notify after CCC"))??;
        let (stream, _) = tls.into_inner();
        let _ = socket2::SockRef::from(&stream).set_out_of_band_inline(true);
        info!("CCC: the control connection continues in the clear");
        let (r, w) = stream.into_split();
        self.wr = Writer::Plain(w);
        Ok(Reader::Plain(r))
    }

    /// Turns the cleartext control connection into a TLS one (after `234`).
    async fn upgrade(&mut self, rd: Reader) -> io::Result<Reader> {
        let wr = std::mem::replace(&mut self.wr, Writer::Gone);
        let (Reader::Plain(rd), Writer::Plain(wr)) = (rd, wr) else {
            return Err(io::Error::other("control connection is already TLS"));
        };
        let stream = rd.reunite(wr).map_err(io::Error::other)?;
        // Under TLS an urgent byte inline would corrupt the record stream; out of line, the kernel keeps it
        // out of the way.
        let _ = socket2::SockRef::from(&stream).set_out_of_band_inline(false);
        let ftps = &self.server.config.ftps;
        let tls = ftps
            .tls
            .as_ref()
            .ok_or_else(|| io::Error::other("no certificate configured"))?;
        let st = tls.session(self.session.peer().ip(), ftps.data_session);
        let stream = tls_accept(stream, Arc::clone(&st.control), ftps.handshake_timeout).await?;
        info!("TLS established on the control connection");
        self.tap.set_protocol(Protocol::Ftps);
        self.session_tls = Some(Box::new(st));
        let (r, w) = tokio::io::split(stream);
        self.wr = Writer::Tls(w);
        Ok(Reader::Tls(r))
    }

    /// Reads what the control socket has, up to [`MAX_READS`] buffers, feeding the session.
    ///
    /// Reads go through `try_io`, which clears tokio's readiness only when the kernel answers WouldBlock
    /// or when the read [`ends_the_input`]: then the kernel's queue is known to be empty, and reading
    /// again only to hear WouldBlock would cost a system call per command. A short read in the middle of
    /// a line keeps readiness: Linux ends a read early at a TCP urgent mark (the DM byte of an urgent
    /// ABOR), and the rest of the line would otherwise wait for data that never comes.
    /// Stopping after a few buffers keeps one chatty client from holding the task; readiness stays set,
    /// so the next loop turn reads on.
    fn read_available(&mut self, rd: &OwnedReadHalf, decoder: &mut ControlDecoder) -> std::io::Result<()> {
        use std::io::Read;
        let stream = rd.as_ref();
        let sock = socket2::SockRef::from(stream);
        for _ in 0..MAX_READS {
            // Bytes read, and whether they ended the input; they go into the decoder before the
            // buffer is let go.
            let read = READ_BUF.with_borrow_mut(|buf| {
                let mut ended = None;
                let read = stream.try_io(Interest::READABLE, || {
                    let n = (&*sock).read(&mut buf[..])?;
                    if ends_the_input(&buf[..], n) {
                        // The bytes are kept in `ended`; the WouldBlock only tells tokio to clear
                        // readiness.
                        ended = Some(n);
                        return Err(std::io::ErrorKind::WouldBlock.into());
                    }
                    Ok(n)
                });
                let (n, ended) = match ended {
                    Some(n) => (n, true),
                    None => (read?, false),
                };
                decoder.push(buf.get(..n).unwrap_or_default());
                Ok::<_, std::io::Error>((n, ended))
            });
            match read {
                Ok((_, true)) => {
                    self.feed(decoder);
                    return Ok(());
                }
                Ok((0, false)) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok((_, false)) => {
                    self.feed(decoder);
                    if self.guard.throttle.blocked_until(Instant::now()).is_some() {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn feed(&mut self, decoder: &mut ControlDecoder) {
        while let Some(input) = decoder.next() {
            let now = Instant::now();
            if let Some(r) = &self.running {
                self.session.handle_transfer_progress(r.bytes());
            }
            if let ControlInput::Line(_) | ControlInput::TooLong = input {
                self.guard.throttle.take(now, 1);
            }
            match input {
                ControlInput::Line(line) => {
                    log_line(&line);
                    self.guard.tried_login |= is_login_command(&line);
                    self.session.handle_line(now, &line);
                }
                ControlInput::TooLong => self.session.handle_line_too_long(now),
                ControlInput::Urgent(u) => self.session.handle_urgent(now, u),
                ControlInput::Respond(bytes) => self.out.extend_from_slice(&bytes),
            }
        }
    }

    fn transfer_event(&mut self, event: Option<TransferEvent>) {
        let now = Instant::now();
        match event {
            Some(ev @ TransferEvent::Started { .. }) => self.session.handle_transfer(now, ev),
            Some(ev) => {
                if self.running.take().is_some() {
                    self.observe_transfer(&ev);
                }
                if let DataPlan::Spare(spare) = &mut self.plan {
                    spare.renew(now);
                }
                debug!(?ev, "transfer ended");
                self.session.handle_transfer(now, ev);
            }
            // The transfer ended without a final event (it panicked): report a local error.
            None => {
                self.running = None;
                self.session
                    .handle_transfer(now, TransferEvent::StorageFailed(ferry_vfs::ErrorKind::Io.into()));
            }
        }
    }

    /// Carries out every queued output, then writes pending replies.
    async fn drain(&mut self) -> std::io::Result<()> {
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Reply(reply) => {
                    debug!(code = reply.code().0, "reply");
                    reply.encode_into(&mut self.out);
                }
                Output::Authenticate { user, password } => {
                    // Replies queued so far (none, normally) go out first.
                    self.flush().await?;
                    // Boxed, like storage requests below: their futures are large and short-lived, and
                    // inline they would make every idle session's task as large as the largest.
                    let login = Box::pin(self.authenticate(&user, password)).await;
                    self.session.handle_auth(Instant::now(), login);
                }
                Output::Storage(request) => {
                    let result = match &self.storage {
                        Some(s) => Box::pin(storage::run(s, request)).await,
                        None => Err(ferry_vfs::ErrorKind::PermissionDenied.into()),
                    };
                    self.session.handle_storage(Instant::now(), result);
                }
                Output::Hash(request) => match &self.storage {
                    Some(s) => self.hashing = Some(crate::hash::Hashing::spawn(s.clone(), request)),
                    None => self.session.handle_hash(
                        Instant::now(),
                        Err(ferry_proto::session::HashError::Storage(
                            ferry_vfs::ErrorKind::PermissionDenied.into(),
                        )),
                    ),
                },
                Output::OpenPassive(family) => {
                    let kept = match std::mem::take(&mut self.plan) {
                        DataPlan::Spare(spare) => data::reuse(spare),
                        _ => None,
                    };
                    let result = self.open_passive(family, kept);
                    self.session.handle_passive(Instant::now(), result);
                }
                Output::SetActive(addr) => self.plan = DataPlan::Active(addr),
                Output::ResetData => self.plan = DataPlan::None,
                Output::Transfer(t) => {
                    // Boxed, and only for uploads: the pre-upload check's future is large and rare.
                    let stor = matches!(t, ferry_proto::session::Transfer::Stor { .. });
                    if stor && !Box::pin(self.upload_allowed(&t)).await {
                        continue;
                    }
                    let storage = match &self.storage {
                        Some(s) => s.clone(),
                        None => {
                            let ev =
                                TransferEvent::StorageFailed(ferry_vfs::ErrorKind::PermissionDenied.into());
                            self.session.handle_transfer(Instant::now(), ev);
                            continue;
                        }
                    };
                    let tls = if self.session.data_protected() {
                        match &self.session_tls {
                            Some(st) => Some(DataTls {
                                config: Arc::clone(match &t {
                                    ferry_proto::session::Transfer::Stor { .. } => st.upload(),
                                    _ => st.download(),
                                }),
                                require_resumed: !self.allow_unresumed,
                                binding: Arc::clone(&st.binding),
                                handshake_timeout: self.server.config.ftps.handshake_timeout,
                            }),
                            None => {
                                let ev = TransferEvent::DataTlsRefused(DataTlsError::Handshake);
                                self.session.handle_transfer(Instant::now(), ev);
                                continue;
                            }
                        }
                    } else {
                        None
                    };
                    let ctx = DataCtx {
                        peer_ip: self.session.peer().ip(),
                        local_ip: self.local.ip(),
                        timeout: self.server.data_timeout(),
                        active_source: match self.server.config.active_source_port {
                            crate::ActiveSourcePort::Any => None,
                            crate::ActiveSourcePort::ControlMinusOne => {
                                self.local.port().checked_sub(1).filter(|p| *p > 0)
                            }
                        },
                        allow_fxp: self.guard.fxp,
                        proxy: self.proxied.then(|| Arc::clone(self.server.admission.proxy())),
                        tls,
                    };
                    let plan = self.plan_for_transfer(&ctx);
                    self.running = Some(transfer::start(t, storage, plan, ctx));
                }
                Output::AbortTransfer => self.abort_transfer().await,
                Output::StopTls => {
                    // The 200 goes out under TLS; the serve loop ends TLS next.
                    self.flush().await?;
                    self.stop_tls = true;
                    return Ok(());
                }
                Output::StartTls => {
                    // 234 goes out in the clear; the serve loop runs the handshake next.
                    self.flush().await?;
                    self.start_tls = true;
                    return Ok(());
                }
                Output::Close => {
                    self.flush().await?;
                    return Ok(());
                }
            }
        }
        if let Some(Closing::Banned(until)) = self.guard.closing {
            let bye = Reply::new(ReplyCode::SERVICE_NOT_AVAILABLE, banned_text(until));
            self.out.extend(bye.to_bytes());
            self.flush().await?;
            return Err(std::io::Error::other("address banned"));
        }
        if let Some(Closing::Refused(text)) = self.guard.closing {
            let bye = Reply::new(ReplyCode::SERVICE_NOT_AVAILABLE, text);
            self.out.extend(bye.to_bytes());
            self.flush().await?;
            return Err(std::io::Error::other("session refused by a limit"));
        }
        self.flush().await
    }

    /// Writes the pending replies. Cleartext replies go straight to the socket when it takes them all
    /// (the usual case); only what it does not take waits, under a time-out, in a boxed future: the
    /// timer and the write are large, and inline every idle session's task would keep room for them.
    async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let written = match &self.wr {
            Writer::Plain(w) => write_now(w, &self.out)?,
            _ => 0,
        };
        if let Some(rest) = self.out.get(written..).filter(|rest| !rest.is_empty()) {
            // A client that stops reading its replies cannot hold the session forever.
            let idle = self.server.config.session.idle_timeout;
            Box::pin(tokio::time::timeout(idle, self.wr.write_all(rest)))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "control write stalled"))??;
        }
        // Freed rather than kept for the next replies: an idle session holds no reply buffer (one
        // small allocation per batch of replies costs far less than a file transfer).
        self.out = Vec::new();
        Ok(())
    }

    /// Cancels the running transfer and reports how it ended: if it had already ended, its own final
    /// event; otherwise `Aborted`.
    async fn abort_transfer(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        let mut last = None;
        for ev in running.cancel() {
            match ev {
                TransferEvent::Started { .. } => self.session.handle_transfer(Instant::now(), ev),
                ev => last = Some(ev),
            }
        }
        let last = last.unwrap_or(TransferEvent::Aborted);
        self.observe_transfer(&last);
        self.session.handle_transfer(Instant::now(), last);
    }

    /// Tells the observer how a transfer ended: a failed data connection (transfers and listings),
    /// and the file transfer itself (listings are not file transfers).
    fn observe_transfer(&self, ev: &TransferEvent) {
        let failed_reply = match ev {
            TransferEvent::NoConnection | TransferEvent::SourcePortDenied { .. } => Some(425),
            TransferEvent::ConnectionLost => Some(426),
            TransferEvent::DataTlsRefused(_) => Some(522),
            _ => None,
        };
        if let Some(reply) = failed_reply {
            self.tap.data_connection_failed(reply);
        }
    }

    /// When the passive listener kept from the last transfer is to be closed (or, while the session
    /// is using it, looked at again).
    fn spare_until(&self) -> Option<tokio::time::Instant> {
        self.plan.spare_until().map(tokio::time::Instant::from_std)
    }

    /// The kept listener's time is up: closed if the session is idle; otherwise (a transfer runs,
    /// or the port was announced and the client has yet to use it) kept a while longer.
    fn spare_expired(&mut self) {
        match &mut self.plan {
            DataPlan::Spare(_) if self.running.is_none() => self.plan = DataPlan::None,
            DataPlan::Spare(spare) | DataPlan::Reused(spare) => spare.renew(Instant::now()),
            _ => {}
        }
    }

    /// The data connection plan handed to a transfer that starts now. A passive listener is kept for
    /// the next transfer, unless anyone may connect to it (FXP) or connections come through a load
    /// balancer: a port that stays the same would then be easier to take over.
    fn plan_for_transfer(&mut self, ctx: &DataCtx) -> DataPlan {
        match std::mem::take(&mut self.plan) {
            DataPlan::Reused(mut spare) => {
                let plan = DataPlan::Passive(spare.passive().clone());
                spare.renew(Instant::now());
                self.plan = DataPlan::Spare(spare);
                plan
            }
            plan => {
                if let (DataPlan::Passive(passive), false, false) = (&plan, ctx.allow_fxp, self.proxied) {
                    let budget = &self.server.spare_listeners;
                    if let Some(spare) = data::Spare::new(passive.clone(), Instant::now(), budget) {
                        self.plan = DataPlan::Spare(spare);
                    }
                }
                plan
            }
        }
    }

    /// Prepares a passive listener: `kept` (the last transfer's, emptied), or a new one.
    fn open_passive(
        &mut self,
        family: PassiveFamily,
        kept: Option<Box<data::Spare>>,
    ) -> Result<SocketAddr, ()> {
        let port = match kept {
            Some(spare) => {
                let port = spare.passive().port;
                self.plan = DataPlan::Reused(spare);
                port
            }
            None => {
                // Listen on the address the client reached us on (multi-homed hosts, IPv4 vs IPv6).
                let passive = data::open_passive(self.local.ip(), &self.server.config.passive_ports)
                    .map_err(|e| {
                        warn!(error = %e, "cannot open passive listener");
                    })?;
                let port = passive.port;
                self.plan = DataPlan::Passive(passive);
                port
            }
        };
        // Announce the address the client connected to (a balancer's when proxied), unless masqueraded
        // (per client network, then the default).
        let ip = match family {
            PassiveFamily::V4 => self
                .server
                .masquerade_for(canonical(self.session.peer().ip()))
                .unwrap_or(canonical(self.session.local().ip())),
            PassiveFamily::Any => self.session.local().ip(),
        };
        Ok(SocketAddr::new(ip, port))
    }

    /// Checks the credentials through the admission gate: a failure is answered only after the
    /// failed-login delay from the PASS, whether or not the user exists, and is scored.
    async fn authenticate(&mut self, user: &str, password: Secret) -> Option<Login> {
        let server = Arc::clone(&self.server);
        let ip = canonical(self.session.peer().ip());
        // From the credentials' arrival to the verdict, for the login latency metric.
        let received = std::time::Instant::now();
        let verified = std::sync::OnceLock::new();
        let result = server
            .admission
            .login(ip, || async {
                let attempt = self.check_credentials(user, password).await;
                let _ = verified.set(received.elapsed());
                attempt
            })
            .await;
        observe::login(&self.tap, &server, user, &result, verified.get().copied());
        match result {
            LoginResult::Accepted(login) => {
                let anonymous = server.config.anonymous.is_some() && login.user == "anonymous";
                let counted = if anonymous {
                    self.guard.slot.logged_in();
                    Ok(())
                } else {
                    server
                        .admission
                        .logged_in(&mut self.guard.slot, &login.user)
                        .await
                };
                if let Err(refusal) = counted {
                    // The password was right: not scored as a guesser leaving; closed with 421 after the 530.
                    self.guard.tried_login = false;
                    self.guard.closing = Some(Closing::Refused(refusal.text()));
                    return None;
                }
                self.guard.logged_in = true;
                self.guard.fxp = self.server.config.protection.allows_fxp(&login.user);
                self.session.set_danger_allow_fxp(self.guard.fxp);
                Some(login)
            }
            LoginResult::Refused { banned, .. } => {
                if let Some(until) = banned {
                    self.guard.closing = Some(Closing::Banned(until));
                }
                None
            }
        }
    }

    async fn check_credentials(&mut self, user: &str, password: Secret) -> Attempt<Login> {
        let server = Arc::clone(&self.server);
        let global_unresumed = server.config.ftps.danger_allow_unresumed_data_tls;
        let (login, home, allow_unresumed) = match (&server.config.anonymous, user) {
            (Some(anon), "anonymous" | "ftp") => (
                Login {
                    user: "anonymous".to_owned(),
                    permissions: anon.permissions,
                    tls: LoginTls::default(),
                },
                anon.home.clone(),
                global_unresumed,
            ),
            _ => {
                let pw = Password::new(password.expose().to_owned());
                match server.users.authenticate(user, &pw).await {
                    Ok(AuthOutcome::Accepted(u)) => (
                        Login {
                            user: u.name.clone(),
                            permissions: u.permissions,
                            tls: LoginTls {
                                required: u.tls.require_tls,
                                protected_data: u.tls.protected_data,
                            },
                        },
                        u.home,
                        u.tls.danger_allow_unresumed_data_tls.unwrap_or(global_unresumed),
                    ),
                    Ok(outcome) => {
                        info!(user = %Untrusted::str(user), ?outcome, "login failed");
                        return Attempt::Failed(outcome);
                    }
                    Err(e) => {
                        warn!(error = %e, "user store error during login");
                        return Attempt::Error;
                    }
                }
            }
        };
        let home_path = match VPath::parse(home.as_bytes()) {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, home, "the user's home directory is not a valid path");
                return Attempt::Error;
            }
        };
        // The quota and bandwidth account shared by all the user's sessions (none for anonymous).
        let account = match (&server.config.anonymous, user) {
            (Some(_), "anonymous" | "ftp") => None,
            _ => match server.users.account(&login.user).await {
                Ok(account) => Some(account),
                Err(e) => {
                    warn!(error = %e, "cannot load the user's quota");
                    return Attempt::Error;
                }
            },
        };
        match server.storage.scoped(&home_path, true).await {
            Ok(storage) => {
                // The tap itself, not a `TapEvents` wrapping it: one allocation fewer per session.
                let events: Arc<dyn ferry_vfs::FsEvents> = self.tap.clone();
                self.storage = Some(match account {
                    Some(account) => UserFs::with_limits(
                        storage,
                        ferry_vfs::Protocol::Ftp,
                        login.user.clone(),
                        login.permissions,
                        events,
                        account.clone(),
                        account.rates(),
                    ),
                    None => UserFs::with_hooks(
                        storage,
                        ferry_vfs::Protocol::Ftp,
                        login.user.clone(),
                        login.permissions,
                        events,
                        Arc::new(ferry_vfs::NoQuota),
                    ),
                });
                if let Some(st) = &self.session_tls {
                    st.set_user(Some(&login.user));
                }
                self.allow_unresumed = allow_unresumed;
                tracing::Span::current().record("user", field::display(Untrusted::str(&login.user)));
                info!(home, "logged in");
                Attempt::Accepted(login)
            }
            Err(e) => {
                warn!(error = %e, home, "cannot open the user's home directory");
                Attempt::Error
            }
        }
    }
}

/// Whether `line` is `USER …` or `PASS …` (any case).
fn is_login_command(line: &[u8]) -> bool {
    let verb = line.split(|&b| b == b' ').next().unwrap_or_default();
    verb.eq_ignore_ascii_case(b"USER") || verb.eq_ignore_ascii_case(b"PASS")
}

/// Logs a command line, never a password.
fn log_line(line: &[u8]) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let verb = line.get(..verb_end).unwrap_or_default();
        if verb.eq_ignore_ascii_case(b"PASS") {
            debug!(command = "PASS ***", "command");
        } else {
            debug!(command = %Untrusted::new(line), "command");
        }
    }
}

/// Writes what the socket takes of `bytes` now, without waiting; returns how much it took.
fn write_now(w: &OwnedWriteHalf, bytes: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while let Some(rest) = bytes.get(written..).filter(|rest| !rest.is_empty()) {
        match w.try_write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// Whether a read of `n` bytes into `buf` took everything the kernel had queued: it did not fill the
/// buffer and it ends a line. Linux ends a read early only at a TCP urgent mark, and clients put the
/// mark after a Telnet byte (the DM after `IAC IP IAC`, or `IAC` itself) or on the `LF` of an `ABOR`
/// sent urgent whole (Python's ftplib): the read then ends before the mark, in the middle of a
/// line, and is followed by another. Should a client mark the first byte after a line, what follows
/// it waits for the client's next packet, as it would at any server that reads one line at a time.
fn ends_the_input(buf: &[u8], n: usize) -> bool {
    n < buf.len() && n > 0 && buf.get(n - 1) == Some(&b'\n')
}

/// Polls for control input. Cleartext: for readiness (the caller reads with `try_io`, see
/// `Conn::read_available`), `false`. TLS: reads decrypted bytes into a buffer on the stack and pushes
/// them into `decoder`, `true`. A TLS read that returns `Pending` has taken nothing, so no buffer is
/// kept between polls.
fn poll_input(rd: &mut Reader, decoder: &mut ControlDecoder, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
    match rd {
        Reader::Plain(plain) => plain.as_ref().poll_read_ready(cx).map_ok(|()| false),
        Reader::Tls(tls) => {
            let mut buf = [0u8; READ_BUFFER];
            let mut read = tokio::io::ReadBuf::new(&mut buf);
            match std::pin::Pin::new(tls).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => match read.filled() {
                    [] => Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
                    bytes => {
                        decoder.push(bytes);
                        Poll::Ready(Ok(true))
                    }
                },
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        }
    }
}

fn poll_hash(
    hashing: &mut Option<crate::hash::Hashing>,
    cx: &mut Context<'_>,
) -> Poll<Result<ferry_proto::session::HashValue, ferry_proto::session::HashError>> {
    match hashing {
        Some(h) => h.poll_result(cx),
        None => Poll::Pending,
    }
}

fn poll_event(running: &mut Option<Running>, cx: &mut Context<'_>) -> Poll<Option<TransferEvent>> {
    match running {
        Some(r) => r.poll_event(cx),
        None => Poll::Pending,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The session's clock is tokio's: the same as `std::time::Instant::now()` in a server, and the
/// paused, auto-advancing clock of a test that calls `tokio::time::pause()`, so that tests move
/// through real timeouts without waiting for them.
mod clock {
    /// Stands in for `std::time::Instant` in this file, which only asks it for `now`.
    pub(super) struct Instant;

    impl Instant {
        pub(super) fn now() -> std::time::Instant {
            tokio::time::Instant::now().into_std()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn future_size<A, B, C, D, E, G, F>(_: impl FnOnce(A, B, C, D, E, G) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// An idle session's task is this future (plus tokio's header) and its boxed `Conn`: all of it stays
    /// allocated for as long as the session is open, sized for the largest step it may ever await.
    /// Opening the session is a separate boxed future that is gone once the session runs, and rare,
    /// large steps (TLS handshakes, CCC, shutdown, the pre-upload check, logins, storage requests,
    /// leaving) are boxed, so that they cost memory only while they run. In a debug build this was
    /// 3,472 bytes before (and tokio's task held it twice, see ferry-admission's `connection_task`);
    /// 1,768 after; 1,376 once the session's input, transfer and checksum were polled by poll
    /// functions instead of futures kept in its `select!`, the timed reply write was boxed (and used
    /// only when the socket does not take the replies at once), the shutdown signal moved into `Conn`
    /// (an async function keeps room for its arguments as long as it runs) and the addresses that the
    /// session already holds were no longer kept twice.
    #[test]
    fn only_a_short_read_ending_a_line_ends_the_input() {
        let mut buf = [0u8; 8];
        buf[..6].copy_from_slice(b"NOOP\r\n");
        assert!(ends_the_input(&buf, 6));
        assert!(
            !ends_the_input(&buf, 5),
            "a read ending in CR stopped before an urgent LF"
        );
        assert!(!ends_the_input(&buf, 0));
        buf[..3].copy_from_slice(b"\xff\xf4\xff");
        assert!(
            !ends_the_input(&buf, 3),
            "a read ending in IAC stopped before an urgent DM"
        );
        let full = *b"NOOP\r\n\r\n";
        assert!(
            !ends_the_input(&full, full.len()),
            "a full buffer may have more behind it"
        );
    }

    #[test]
    fn an_idle_sessions_task_stays_small() {
        let size = future_size(run) + std::mem::size_of::<Conn>();
        assert!(size <= 1450, "a session's future and state take {size} bytes");
    }
}
