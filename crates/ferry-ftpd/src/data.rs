//! Data connections: passive listeners that accept only the control peer (or, for a session that came
//! through a load balancer, what `proxy_protocol.data` says), and active connections that were checked
//! (by the session) to target only the control peer.

use ferry_admission::canonical;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tracing::{debug, warn};

/// Random ports tried before scanning the whole range in order.
const RANDOM_PORT_TRIES: usize = 16;

/// Unsent bytes a data connection may queue in its send buffer (`TCP_NOTSENT_LOWAT`); the socket
/// reports writable again once fewer than half of them are left.
///
/// Without a limit a download queues as much as the send buffer holds (megabytes, autotuned) beyond
/// what the receiver's window takes. Each window update from the receiver then transmits that backlog
/// from inside the receiver's `recv`: on loopback and on a busy host the client pays for the server's
/// sending. A hundred concurrent downloads to one client host spent half again as much client CPU per
/// byte that way (docs/benchmarks.md, "Transfers at once"). With the limit, the server's own
/// `sendfile`/`write` transmits what the window allows, and the kernel holds less memory per
/// connection; the window itself, and so the throughput of one transfer, is not limited by it.
/// 32 KiB and 64 KiB cost the client the same; 128 KiB a tenth more, 512 KiB a third more. 64 KiB
/// leaves the sender some slack on fast links (it is woken when 32 KiB are left).
pub(crate) const NOTSENT_LOWAT: u32 = 64 << 10;
/// How long a passive listener is kept after its transfer for the session's next PASV/EPSV. A client
/// moving many files asks again within milliseconds; an idle session is back to one descriptor (its
/// control connection) after this.
pub(crate) const SPARE_LINGER: Duration = Duration::from_secs(2);

/// Connections queued on a kept listener that are closed when it is taken back; a listener with more
/// (a flood from the client's own address) is dropped and a fresh one opened.
const DRAIN_MAX: usize = 8;

/// How the next transfer gets its data connection.
#[derive(Debug, Default)]
pub(crate) enum DataPlan {
    /// Nothing prepared.
    #[default]
    None,
    /// A listener waiting for the client. Not registered with the reactor until a transfer has to
    /// wait for the connection (see `accept_peer`). Shared with the session, which may keep it for
    /// the next transfer ([`Spare`]).
    Passive(Passive),
    /// Connect to the client here.
    Active(SocketAddr),
    /// No data connection prepared, but the last transfer's passive listener is kept for the next
    /// PASV/EPSV until [`Spare::until`] (boxed: an idle session's plan stays as small as before).
    Spare(Box<Spare>),
    /// A kept listener announced again by PASV/EPSV, waiting for the client like [`DataPlan::Passive`]
    /// (it keeps its place in the budget and its time, see `Conn::serve`).
    Reused(Box<Spare>),
}

impl DataPlan {
    /// When a kept listener is to be dropped, if one is kept.
    pub(crate) fn spare_until(&self) -> Option<Instant> {
        match self {
            DataPlan::Spare(s) | DataPlan::Reused(s) => Some(s.until),
            _ => None,
        }
    }
}

/// A passive listener and its port.
#[derive(Debug, Clone)]
pub(crate) struct Passive {
    pub(crate) listener: Arc<std::net::TcpListener>,
    pub(crate) port: u16,
}

/// A passive listener kept after the transfer it served, so that the session's next PASV/EPSV costs
/// no new socket (five system calls fewer per file). The transfer that used it has let it go once it
/// accepted its connection; connections queued since are closed when it is taken back ([`reuse`]),
/// and every connection the next transfer accepts is checked like a fresh listener's.
#[derive(Debug)]
pub(crate) struct Spare {
    passive: Passive,
    until: Instant,
    /// Its place in the server's [`SpareBudget`], given back when it is dropped.
    _kept: Kept,
}

impl Spare {
    /// Keeps `passive` until [`SPARE_LINGER`] after `now`, if the server's budget allows another
    /// kept listener.
    pub(crate) fn new(passive: Passive, now: Instant, budget: &Arc<SpareBudget>) -> Option<Box<Self>> {
        let kept = budget.take()?;
        Some(Box::new(Spare {
            passive,
            until: now + SPARE_LINGER,
            _kept: kept,
        }))
    }

    /// Keeps it until [`SPARE_LINGER`] after `now`. The time only ever moves later while a session
    /// is busy, so the session's timer is never set earlier than before (tokio wakes its I/O driver,
    /// an `eventfd` write and an extra `epoll_wait`, whenever a timer earlier than the one it sleeps
    /// for is set).
    pub(crate) fn renew(&mut self, now: Instant) {
        self.until = self.until.max(now + SPARE_LINGER);
    }

    /// The listener.
    pub(crate) fn passive(&self) -> &Passive {
        &self.passive
    }
}

/// How many passive listeners the sessions of a server may keep between transfers: half the passive
/// range, so that kept ports never crowd out transfers that need a fresh one (with a range of one
/// port, none is kept).
#[derive(Debug)]
pub(crate) struct SpareBudget {
    kept: AtomicUsize,
    max: usize,
}

impl SpareBudget {
    /// Half of `ports`.
    pub(crate) fn for_range(ports: &RangeInclusive<u16>) -> Self {
        let len = usize::from(*ports.end())
            .saturating_add(1)
            .saturating_sub(usize::from(*ports.start()));
        SpareBudget {
            kept: AtomicUsize::new(0),
            max: len / 2,
        }
    }

    fn take(self: &Arc<Self>) -> Option<Kept> {
        self.kept
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        Some(Kept(Arc::clone(self)))
    }
}

/// One place in a [`SpareBudget`].
#[derive(Debug)]
struct Kept(Arc<SpareBudget>);

impl Drop for Kept {
    fn drop(&mut self) {
        self.0.kept.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Takes back a kept listener for a new PASV/EPSV: `None` if its transfer still holds it (it has not
/// accepted its connection yet) or if it cannot be emptied. Connections queued on it since its transfer
/// (late or stray ones, a thief's) are closed first, so that the next transfer accepts only a connection
/// made after the reply that announces the port.
pub(crate) fn reuse(spare: Box<Spare>) -> Option<Box<Spare>> {
    let passive = &spare.passive;
    if Arc::strong_count(&passive.listener) != 1 {
        return None;
    }
    for _ in 0..DRAIN_MAX {
        match passive.listener.accept() {
            Ok((stray, from)) => {
                debug!(%from, "connection queued between transfers closed");
                drop(stray);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(spare),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    None
}

/// Addresses a data connection must respect, and its TLS settings.
#[derive(Debug, Clone)]
pub(crate) struct DataCtx {
    pub(crate) peer_ip: IpAddr,
    pub(crate) local_ip: IpAddr,
    pub(crate) timeout: Duration,
    /// Active connections leave from this port (`active_source_port = "control-minus-one"`); `None`: any.
    pub(crate) active_source: Option<u16>,
    /// FXP: passive connections from any address.
    pub(crate) allow_fxp: bool,
    /// The control connection came through a load balancer: passive connections are checked by these
    /// PROXY protocol settings (`proxy_protocol.data`) instead of by their TCP peer.
    pub(crate) proxy: Option<Arc<ferry_admission::ProxyProtocol>>,
    /// `Some` when the data connection must be TLS (PROT P).
    pub(crate) tls: Option<DataTls>,
}

/// TLS for a protected data connection.
#[derive(Clone)]
pub(crate) struct DataTls {
    /// The control connection's download or upload configuration (shares its session cache and ticketer).
    pub(crate) config: Arc<rustls::ServerConfig>,
    /// Refuse a handshake that does not resume the control connection's session.
    pub(crate) require_resumed: bool,
    /// Tells which control connection a resumed session came from.
    pub(crate) binding: Arc<crate::tls::BoundTicketer>,
    pub(crate) handshake_timeout: Duration,
}

impl std::fmt::Debug for DataTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataTls")
            .field("require_resumed", &self.require_resumed)
            .finish_non_exhaustive()
    }
}

/// Opens a passive listener on `ip`, on a random free port of `ports` (non-blocking, not registered
/// with the reactor).
pub(crate) fn open_passive(ip: IpAddr, ports: &RangeInclusive<u16>) -> io::Result<Passive> {
    let (lo, hi) = (*ports.start(), *ports.end());
    if lo > hi {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty passive port range",
        ));
    }
    let mut rng = rand::rng();
    for _ in 0..RANDOM_PORT_TRIES {
        let port = rng.random_range(lo..=hi);
        if let Ok(l) = bind(ip, port) {
            return passive(l, port);
        }
    }
    // Crowded range: scan from a random start so that concurrent sessions do not all collide.
    let span = u32::from(hi - lo) + 1;
    let start = rng.random_range(0..span);
    for i in 0..span {
        let port = lo + ((start + i) % span) as u16;
        if let Ok(l) = bind(ip, port) {
            return passive(l, port);
        }
    }
    Err(io::Error::new(io::ErrorKind::AddrInUse, "no free passive port"))
}

fn passive(listener: std::net::TcpListener, port: u16) -> io::Result<Passive> {
    // Port 0 in the range: the system chose one.
    let port = match port {
        0 => listener.local_addr()?.port(),
        p => p,
    };
    Ok(Passive {
        listener: Arc::new(listener),
        port,
    })
}

fn bind(ip: IpAddr, port: u16) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let domain = match ip {
        IpAddr::V4(_) => Domain::IPV4,
        IpAddr::V6(_) => Domain::IPV6,
    };
    let socket = Socket::new(domain, Type::STREAM.nonblocking(), None)?;
    // SO_REUSEADDR lets a port whose last data connection is in TIME_WAIT (the server closes first after
    // RETR and listings) be used again at once; without it a busy session exhausts the range within one
    // TIME_WAIT period. On Linux it never lets two sockets listen on the same port, so two sessions still
    // cannot share a passive port.
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::new(ip, port).into())?;
    socket.listen(1)?;
    Ok(socket.into())
}

/// An established data connection, joined to tokio's reactor only once a transfer has to wait on it.
///
/// A passive connection the client had queued before its command is taken without the reactor (see
/// [`accept_peer`]); a small download then goes out in its first `sendfile` and the connection is
/// shut down and closed without ever being registered: two `epoll_ctl` calls fewer per file.
pub(crate) struct Established {
    /// Not registered with the reactor yet (non-blocking all the same).
    unregistered: Option<std::net::TcpStream>,
    registered: Option<TcpStream>,
}

impl From<TcpStream> for Established {
    fn from(stream: TcpStream) -> Self {
        Established {
            unregistered: None,
            registered: Some(stream),
        }
    }
}

impl Established {
    /// A connection kept out of the reactor until it has to wait; `stream` must be non-blocking.
    pub(crate) fn unregistered(stream: std::net::TcpStream) -> Self {
        Established {
            unregistered: Some(stream),
            registered: None,
        }
    }

    /// Whether the connection has not joined the reactor (yet).
    #[cfg(test)]
    pub(crate) fn is_unregistered(&self) -> bool {
        self.unregistered.is_some()
    }

    /// The connection as a tokio stream, registering it with the reactor if that was not done yet.
    pub(crate) fn registered(&mut self) -> io::Result<&TcpStream> {
        if let Some(stream) = self.unregistered.take() {
            self.registered = Some(TcpStream::from_std(stream)?);
        }
        self.registered
            .as_ref()
            .ok_or_else(|| io::Error::other("data connection was not kept"))
    }

    /// The connection as a tokio stream, registered with the reactor.
    pub(crate) fn into_registered(mut self) -> io::Result<TcpStream> {
        self.registered()?;
        self.registered
            .ok_or_else(|| io::Error::other("data connection was not kept"))
    }

    /// The socket, registered or not.
    pub(crate) fn fd(&self) -> io::Result<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        match (&self.unregistered, &self.registered) {
            (Some(stream), _) => Ok(stream.as_fd()),
            (None, Some(stream)) => Ok(stream.as_fd()),
            (None, None) => Err(io::Error::other("data connection was not kept")),
        }
    }

    /// Ends the sending side: the EOF that tells the client the data is complete (a `shutdown` does not
    /// block, registered or not). Closing follows when `self` is dropped.
    pub(crate) fn shut_down(&self) -> io::Result<()> {
        socket2::SockRef::from(&self.fd()?).shutdown(std::net::Shutdown::Write)
    }
}

/// Establishes the data connection of `plan`, within the timeout.
pub(crate) async fn establish(plan: DataPlan, ctx: &DataCtx) -> io::Result<Established> {
    let stream = match plan {
        DataPlan::None | DataPlan::Spare(_) | DataPlan::Reused(_) => {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "no data connection prepared",
            ))
        }
        DataPlan::Passive(Passive { listener, .. }) => {
            let from = match (ctx.allow_fxp, &ctx.proxy) {
                (true, _) => Expect::Anyone,
                (false, Some(proxy)) => Expect::Proxied(proxy, ctx.peer_ip),
                (false, None) => Expect::Peer(ctx.peer_ip),
            };
            tokio::time::timeout(ctx.timeout, accept_peer(listener, from))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "passive accept timed out"))??
        }
        DataPlan::Active(target) => Established::from(
            tokio::time::timeout(ctx.timeout, connect(target, ctx.local_ip, ctx.active_source))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "active connect timed out"))??,
        ),
    };
    // Under TLS the server writes small records and waits for answers (handshake, close_notify), which
    // Nagle's algorithm would hold back. Cleartext data only flows one way and ends with a shutdown,
    // which sends what is queued at once: without the option it arrives as soon, one call fewer.
    if ctx.tls.is_some() {
        socket2::SockRef::from(&stream.fd()?).set_tcp_nodelay(true)?;
    }
    Ok(stream)
}

/// Limits the unsent bytes `stream` queues to [`NOTSENT_LOWAT`]: for a download of more than that (a
/// smaller file is spared the system call).
pub(crate) fn limit_unsent(stream: &impl std::os::fd::AsFd) {
    // Only an optimisation: a kernel without the option still transfers.
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_notsent_lowat(NOTSENT_LOWAT) {
        debug!(error = %e, "TCP_NOTSENT_LOWAT not set on the data connection");
    }
}

/// Whom a passive listener accepts.
enum Expect<'a> {
    /// Anyone (FXP).
    Anyone,
    /// The control connection's peer.
    Peer(IpAddr),
    /// A load balancer for this client, as the PROXY protocol settings say.
    Proxied(&'a ferry_admission::ProxyProtocol, IpAddr),
}

/// Accepts exactly one connection from the control peer's IP (from any address with FXP; through an
/// allowed load balancer, for this client when headers are on, when the control connection was
/// proxied); connections from anyone else are closed at once (passive-port theft). The transfer lets
/// go of the listener after the first good one (the session may keep it for its next transfer, see
/// [`Spare`]).
///
/// A passive client connects before it sends the command, so the connection is usually queued
/// already: it is taken without registering the listener with the reactor, so that its arrival
/// wakes no worker thread and the listener costs no `epoll_ctl`. Only when nothing is queued does
/// a duplicate of the listener join the reactor and the transfer wait.
async fn accept_peer(listener: Arc<std::net::TcpListener>, expect: Expect<'_>) -> io::Result<Established> {
    let mut waiting: Option<TcpListener> = None;
    loop {
        let (stream, from) = match &waiting {
            None => match accept_nonblocking(&listener) {
                Ok((s, from)) => (Established::unregistered(s), from),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    waiting = Some(TcpListener::from_std(listener.try_clone()?)?);
                    continue;
                }
                Err(e) => return Err(e),
            },
            Some(l) => {
                let (s, from) = l.accept().await?;
                (Established::from(s), from)
            }
        };
        let (stream, refused) = match expect {
            Expect::Anyone => (stream, None),
            Expect::Peer(ip) => (
                stream,
                (canonical(from.ip()) != canonical(ip)).then(|| format!("expected {ip}")),
            ),
            // The PROXY header may have to be waited for: the connection joins the reactor.
            Expect::Proxied(proxy, client) => {
                let mut stream = stream.into_registered()?;
                let refused = proxy
                    .accept_data(&mut stream, from, client)
                    .await
                    .err()
                    .map(|e| e.to_string());
                (Established::from(stream), refused)
            }
        };
        match refused {
            None => {
                debug!(%from, "passive data connection accepted");
                return Ok(stream);
            }
            Some(why) => warn!(%from, %why, "passive data connection refused"),
        }
        drop(stream);
    }
}

/// Takes a queued connection, already non-blocking (`accept4` with `SOCK_NONBLOCK`: one system call
/// instead of `accept` and `ioctl(FIONBIO)`).
fn accept_nonblocking(listener: &std::net::TcpListener) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    let (socket, from) =
        socket2::SockRef::from(listener).accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)?;
    let from = from.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "passive connection from a non-IP address",
        )
    })?;
    Ok((socket.into(), from))
}

/// Active connections cannot leave from the configured source port: it is below 1024 and the server has
/// neither root nor CAP_NET_BIND_SERVICE. Carried inside the `io::Error` of [`establish`].
#[derive(Debug)]
pub(crate) struct SourcePortDenied(pub(crate) u16);

impl std::fmt::Display for SourcePortDenied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "binding source port {} needs root or CAP_NET_BIND_SERVICE (active_source_port)",
            self.0
        )
    }
}

impl std::error::Error for SourcePortDenied {}

async fn connect(target: SocketAddr, local_ip: IpAddr, source_port: Option<u16>) -> io::Result<TcpStream> {
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // Leave from the address the client talks to, when the families match (multi-homed hosts).
    let local = canonical(local_ip);
    let same_family = local.is_ipv4() == target.is_ipv4();
    match source_port {
        Some(port) => {
            let ip = match (same_family, target) {
                (true, _) => local,
                (false, SocketAddr::V4(_)) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                (false, SocketAddr::V6(_)) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            };
            // SO_REUSEADDR: transfers to different clients leave from this one port at the same time
            // (each connection is its own address pair), and the port is usable again at once while
            // closed connections sit in TIME_WAIT.
            socket.set_reuseaddr(true)?;
            socket
                .bind(SocketAddr::new(ip, port))
                .map_err(|e| match e.kind() {
                    io::ErrorKind::PermissionDenied => {
                        io::Error::new(io::ErrorKind::PermissionDenied, SourcePortDenied(port))
                    }
                    _ => e,
                })?;
        }
        None if same_family => socket.bind(SocketAddr::new(local, 0))?,
        None => {}
    }
    socket.connect(target).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limiting_unsent_bytes_sets_the_socket_option() {
        let (server, _client) = ferry_testkit::net::tcp_pair().await;
        let sock = socket2::SockRef::from(&server);
        assert_ne!(
            sock.tcp_notsent_lowat().expect("getsockopt"),
            NOTSENT_LOWAT,
            "default"
        );
        limit_unsent(&server);
        assert_eq!(sock.tcp_notsent_lowat().expect("getsockopt"), NOTSENT_LOWAT);
    }

    fn listener() -> Passive {
        open_passive(IpAddr::from([127, 0, 0, 1]), &(0..=0)).expect("listen")
    }

    #[tokio::test]
    async fn a_queued_passive_connection_stays_out_of_the_reactor_and_a_later_one_joins_it() {
        let passive = listener();
        let addr = passive.listener.local_addr().expect("address");
        let _early = std::net::TcpStream::connect(addr).expect("connect");
        let queued = accept_peer(Arc::clone(&passive.listener), Expect::Anyone)
            .await
            .expect("accept");
        assert!(queued.is_unregistered());
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            TcpStream::connect(addr).await
        });
        let waited = accept_peer(Arc::clone(&passive.listener), Expect::Peer(addr.ip()))
            .await
            .expect("accept");
        assert!(!waited.is_unregistered(), "a connection waited for is registered");
        late.await.expect("join").expect("connect");
        let mut queued = queued;
        queued.registered().expect("register");
        assert!(!queued.is_unregistered());
    }

    #[test]
    fn kept_listeners_are_bounded_by_half_the_passive_range() {
        let now = Instant::now();
        let none = Arc::new(SpareBudget::for_range(&(47011..=47011)));
        assert!(
            Spare::new(listener(), now, &none).is_none(),
            "a one-port range keeps nothing"
        );
        let budget = Arc::new(SpareBudget::for_range(&(40000..=40003)));
        let first = Spare::new(listener(), now, &budget).expect("first kept");
        let second = Spare::new(listener(), now, &budget).expect("second kept");
        assert!(
            Spare::new(listener(), now, &budget).is_none(),
            "more than half the range kept"
        );
        drop(first);
        let third = Spare::new(listener(), now, &budget).expect("a dropped one gives its place back");
        // Taking one back for a transfer gives its place back too.
        // Announced again, it keeps its place until dropped.
        let second = reuse(second).expect("reused");
        assert!(Spare::new(listener(), now, &budget).is_none());
        drop(second);
        assert!(Spare::new(listener(), now, &budget).is_some());
        drop(third);
    }

    #[test]
    fn keeping_a_listener_does_not_make_a_sessions_plan_larger() {
        // Every session holds a plan; a kept listener is boxed so that idle sessions pay nothing.
        assert!(
            std::mem::size_of::<DataPlan>() <= std::mem::size_of::<Option<SocketAddr>>(),
            "{} bytes",
            std::mem::size_of::<DataPlan>()
        );
    }

    #[test]
    fn a_kept_listener_still_held_by_its_transfer_is_not_reused() {
        let budget = Arc::new(SpareBudget::for_range(&(40000..=40999)));
        let passive = listener();
        let held = Arc::clone(&passive.listener);
        let spare = Spare::new(passive, Instant::now(), &budget).expect("kept");
        assert!(
            reuse(spare).is_none(),
            "reused while its transfer may still accept on it"
        );
        drop(held);
    }
}
