//! Admission for ferry's FTP and SFTP servers, written once and used by both.
//!
//! Everything that decides whether a client may connect and how its login attempts count, independent
//! of the protocol it speaks:
//! - [`canonical`] client addresses (IPv4-mapped IPv6 as IPv4), used for limits, scores and bans;
//! - connection limits (total, per address, not yet logged in) with a [`Slot`] per connection;
//! - the [`LoginGate`]: password checks take turns, one per address and a few server-wide;
//! - [`Admission::login`]: runs one authentication attempt through the gate, scores its outcome with the
//!   login defender the same way for every protocol, and makes every failure take the same time;
//! - the PROXY protocol (versions 1 and 2) from trusted load balancers: [`Admission::arrive`] tells who
//!   the client of a new connection is, so limits, scores, bans and logs all use that address;
//! - the accept loop with graceful shutdown ([`serve`]) and the task that reloads bans from the user
//!   database ([`refresh_bans`]), owned by the binary so SFTP bans do not depend on FTP listeners;
//! - with a PostgreSQL user database shared by several nodes, [`cluster`]: `max_per_ip` counted across
//!   the nodes, ban changes applied as soon as any node (or `ferry ban`) makes them, and what happens
//!   when the database cannot be reached ([`run_cluster`] is the node's background task).
//!
//! What it deliberately does not do: speak FTP or SSH (the front ends turn its decisions into `421`
//! replies or SSH disconnect messages), check passwords (that is `ferry-auth`), or read settings.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cluster;
mod gate;
mod limits;
mod proxy;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferry_auth::defender::{Defender, Event, Verdict};
use ferry_auth::AuthOutcome;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

pub use cluster::{run_cluster, ClusterLimits};
pub use ferry_auth::defender::canonical;
pub use gate::{LoginGate, LoginTurn};
pub use limits::{ConnectionLimits, Refusal, Slot, Tracker};
pub use proxy::{Arrival, ProxyData, ProxyError, ProxyMode, ProxyProtocol, V2_MAX};

/// How often [`refresh_bans`] reloads the bans from the user database.
pub const BAN_REFRESH: Duration = Duration::from_secs(10);

/// Default time from a login attempt to the reply of a failure, the same whether or not the user exists.
pub const FAILED_LOGIN_DELAY: Duration = Duration::from_secs(1);

/// Why a connection was refused at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The address is banned until then.
    Banned(SystemTime),
    /// A connection limit.
    Limit(Refusal),
}

/// How a login attempt ended, for the front end.
#[derive(Debug)]
pub enum LoginResult<T> {
    /// Accepted, with what the check returned.
    Accepted(T),
    /// Refused (after the failed-login delay); `banned` when the address is banned now.
    Refused {
        /// Until when the address is banned, if it is.
        banned: Option<SystemTime>,
        /// The address was banned before the credentials were checked, so they were not: the
        /// attempt is refused for the ban (reported as such, and no new ban).
        already_banned: bool,
    },
}

/// One protocol server's admission: its connection limits, and the defender and login gate it shares
/// with the other protocol's server.
#[derive(Debug)]
pub struct Admission {
    tracker: Tracker,
    cluster: Option<Arc<ClusterLimits>>,
    defender: Arc<Defender>,
    gate: Arc<LoginGate>,
    failed_login_delay: Duration,
    proxy: Arc<ProxyProtocol>,
}

impl Admission {
    /// Admission with these limits and failed-login delay, sharing `defender` and `gate` (pass the
    /// same ones to every protocol's server, so scores, bans and password-check turns are shared).
    pub fn new(
        limits: ConnectionLimits,
        failed_login_delay: Duration,
        defender: Arc<Defender>,
        gate: Arc<LoginGate>,
    ) -> Self {
        Admission {
            cluster: limits.cluster.clone(),
            tracker: Tracker::new(limits),
            defender,
            gate,
            failed_login_delay,
            proxy: Arc::new(ProxyProtocol::default()),
        }
    }

    /// The same admission, reading PROXY protocol headers as `proxy` says.
    pub fn with_proxy(mut self, proxy: ProxyProtocol) -> Self {
        self.proxy = Arc::new(proxy);
        self
    }

    /// The PROXY protocol settings.
    pub fn proxy(&self) -> &Arc<ProxyProtocol> {
        &self.proxy
    }

    /// Who a new connection from the TCP peer `peer` is for: reads its PROXY header as the settings
    /// require (within their header timeout). Call it first, before [`Admission::admit`] with the
    /// client's address; on an error close the connection without a word (the peer is a balancer
    /// that is misconfigured, or someone pretending to be one).
    pub async fn arrive(&self, stream: &mut TcpStream, peer: SocketAddr) -> Result<Arrival, ProxyError> {
        let arrival = self.proxy.accept(stream, peer).await;
        match &arrival {
            // A balancer's TCP health check connects and closes: not worth a warning every few seconds.
            Err(e @ ProxyError::Closed) => debug!(%peer, error = %e, "connection closed"),
            Err(e) => warn!(%peer, error = %e, "connection refused"),
            Ok(_) => {}
        }
        arrival
    }

    /// Enforces `limits` on new connections from now on (SIGHUP).
    pub fn set_limits(&self, limits: ConnectionLimits) {
        self.tracker.set_limits(limits);
    }

    /// The login defender.
    pub fn defender(&self) -> &Arc<Defender> {
        &self.defender
    }

    /// Whether a connection from `ip` may be served: not banned, within the limits (this node's, then,
    /// with [`ConnectionLimits::cluster`], all nodes' together). A connection refused by a limit is
    /// scored. While the cluster's database cannot be reached, a connection is refused unless the
    /// cluster fails open or the address is loopback or allow-listed.
    pub async fn admit(&self, ip: IpAddr) -> Result<Slot, Refused> {
        let ip = canonical(ip);
        if let Verdict::Banned(until) = self.defender.check(ip) {
            return Err(Refused::Banned(until));
        }
        let mut slot = match self.tracker.acquire(ip) {
            Ok(slot) => slot,
            Err(refusal) => return Err(self.refuse(ip, refusal).await),
        };
        if let Some(cluster) = &self.cluster {
            match cluster.take(ip).await {
                cluster::Take::Granted(lease) => slot.hold(lease),
                cluster::Take::Full => return Err(self.refuse(ip, Refusal::PerIp).await),
                cluster::Take::Unavailable
                    if cluster.fail_open() || ip.is_loopback() || self.defender.is_allow_listed(ip) => {}
                cluster::Take::Unavailable => {
                    info!("connection refused: the user database cannot be reached");
                    return Err(Refused::Limit(Refusal::Unavailable));
                }
            }
        }
        Ok(slot)
    }

    /// The connection of `slot` logged in as `user`: it no longer counts as pending, and counts against
    /// `max_per_user` (on every node, with [`ConnectionLimits::cluster`]). An error when that limit is
    /// reached (or the cluster's database cannot be reached and the cluster fails closed): refuse the
    /// session. Not scored: the password was right.
    pub async fn logged_in(&self, slot: &mut Slot, user: &str) -> Result<(), Refusal> {
        if let (Some(cluster), Some(lease)) = (&self.cluster, slot.lease_id()) {
            match cluster.claim_user(lease, user).await {
                cluster::Claim::Granted => {}
                cluster::Claim::Full => {
                    info!("login refused: the user has the most sessions allowed on all nodes");
                    return Err(Refusal::PerUser);
                }
                cluster::Claim::Unavailable if cluster.fail_open() => {}
                cluster::Claim::Unavailable => return Err(Refusal::Unavailable),
            }
        }
        self.tracker.log_in(slot, user).inspect_err(|_| {
            info!("login refused: the user has the most sessions allowed");
        })
    }

    async fn refuse(&self, ip: IpAddr, refusal: Refusal) -> Refused {
        info!(?refusal, "connection refused by limit");
        self.defender.record(ip, Event::LimitExceeded).await;
        Refused::Limit(refusal)
    }

    /// Until when `ip` is banned, if it is.
    pub fn banned(&self, ip: IpAddr) -> Option<SystemTime> {
        match self.defender.check(ip) {
            Verdict::Banned(until) => Some(until),
            Verdict::Allowed => None,
        }
    }

    /// One authentication attempt from `ip`: waits for a turn (see [`LoginGate`]), runs `check` unless the
    /// address is banned by then, scores a failure (wrong credentials: [`Event::FailedLogin`]; unknown or
    /// disabled user: [`Event::UnknownUser`]; a store error scores nothing) and answers a failure only
    /// `failed_login_delay` after the attempt began, whichever failure it was.
    pub async fn login<T, Fut>(&self, ip: IpAddr, check: impl FnOnce() -> Fut) -> LoginResult<T>
    where
        Fut: Future<Output = Attempt<T>>,
    {
        let started = tokio::time::Instant::now();
        let ip = canonical(ip);
        let mut already_banned = false;
        let attempt = match self.gate.enter(ip).await {
            // An address banned while this attempt waited is not worth a verification: a guessing burst
            // stops costing CPU once it is banned.
            Some(_turn) if self.banned(ip).is_some() => {
                already_banned = true;
                Attempt::Error
            }
            Some(_turn) => check().await,
            None => Attempt::Error,
        };
        let event = match attempt {
            Attempt::Accepted(value) => return LoginResult::Accepted(value),
            Attempt::Failed(outcome) => match outcome {
                AuthOutcome::WrongCredentials => Some(Event::FailedLogin),
                AuthOutcome::UnknownUser | AuthOutcome::Disabled => Some(Event::UnknownUser),
                AuthOutcome::Accepted(_) => None,
            },
            Attempt::Error => None,
        };
        let banned = match event {
            Some(event) => match self.defender.record(ip, event).await {
                Verdict::Banned(until) => Some(until),
                Verdict::Allowed => None,
            },
            None => self.banned(ip),
        };
        tokio::time::sleep_until(started + self.failed_login_delay).await;
        LoginResult::Refused {
            banned,
            already_banned,
        }
    }

    /// A connection from `ip` ended. It scores [`Event::PreLoginDisconnect`] only if the client tried to
    /// authenticate and never succeeded: connecting and closing (health checks, port scans, a client that
    /// gives up on the certificate) scores nothing.
    pub async fn left(&self, ip: IpAddr, logged_in: bool, tried_login: bool) {
        if tried_login && !logged_in {
            self.defender
                .record(canonical(ip), Event::PreLoginDisconnect)
                .await;
        }
    }
}

/// What an authentication check found.
#[derive(Debug)]
pub enum Attempt<T> {
    /// Accepted.
    Accepted(T),
    /// Refused for this reason (never [`AuthOutcome::Accepted`]).
    Failed(AuthOutcome),
    /// The check could not be made (store error, home directory unavailable): refused, not scored.
    Error,
}

/// Accepts connections on `listener` until `shutdown` completes, running `handle` for each in its own
/// task; then stops accepting, tells every connection to stop at once ([`Phase::Closing`]) and waits
/// for them all to end. [`serve_draining`] gives running transfers time to finish first.
pub async fn serve<H, Fut>(listener: TcpListener, shutdown: impl Future<Output = ()>, handle: H)
where
    H: FnMut(TcpStream, SocketAddr, Stop) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    serve_draining(listener, shutdown, Duration::ZERO, handle).await;
}

/// Where a server is in its shutdown, as its connections see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Serving normally.
    Serving,
    /// Shutting down: no new connections; an idle session ends now (FTP `421`), a running transfer
    /// may finish within the grace period and then its session ends.
    Draining,
    /// The grace period is over: every session ends now; an unfinished upload is discarded.
    Closing,
}

/// A connection's view of the server's shutdown.
#[derive(Debug, Clone)]
pub struct Stop {
    rx: watch::Receiver<Phase>,
}

impl Stop {
    /// The phase now.
    pub fn phase(&self) -> Phase {
        *self.rx.borrow()
    }

    /// Waits for the phase to change, and returns the new one ([`Phase::Closing`] if the server is
    /// gone).
    pub async fn next(&mut self) -> Phase {
        match self.rx.changed().await {
            Ok(()) => *self.rx.borrow_and_update(),
            Err(_) => Phase::Closing,
        }
    }

    /// Waits until the server is at least draining.
    pub async fn draining(&mut self) {
        let _ = self.rx.wait_for(|p| *p >= Phase::Draining).await;
    }
}

/// One connection's task: the connection, then `done` is dropped (the drain waits until every sender
/// is gone). A combinator, not `async move { connection.await; drop(done) }`: an async block keeps the
/// connection's future twice (once captured, once moved out to be awaited), which doubled the memory of
/// every idle session.
fn connection_task<Fut>(connection: Fut, done: mpsc::Sender<()>) -> impl Future<Output = ()>
where
    Fut: Future<Output = ()>,
{
    use futures_util::FutureExt;
    connection.map(move |()| drop(done))
}

/// [`serve`], draining: when `shutdown` completes the listener is closed (new connections are
/// refused by the kernel), every connection is told [`Phase::Draining`], and after `grace` (or as
/// soon as every connection has ended) [`Phase::Closing`]; then it waits for them all to end.
pub async fn serve_draining<H, Fut>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    mut handle: H,
) where
    H: FnMut(TcpStream, SocketAddr, Stop) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(Phase::Serving);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Typically EMFILE: back off briefly instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let connection = handle(stream, peer, Stop { rx: stop_rx.clone() });
        tokio::spawn(connection_task(connection, done_tx.clone()));
    }
    // Stop accepting: connections that arrive from now on are refused, not queued.
    drop(listener);
    drop(done_tx);
    if grace.is_zero() {
        let _ = stop_tx.send(Phase::Closing);
    } else {
        let _ = stop_tx.send(Phase::Draining);
        if tokio::time::timeout(grace, done_rx.recv()).await.is_err() {
            info!(
                grace_secs = grace.as_secs(),
                "shutdown grace period over; ending the remaining sessions"
            );
        }
        let _ = stop_tx.send(Phase::Closing);
    }
    let _ = done_rx.recv().await;
}

/// Loads the bans stored by earlier runs, other nodes and `ferry ban` now, then reloads them every
/// [`BAN_REFRESH`] until `shutdown` completes. Run once per process, beside the listeners.
pub async fn refresh_bans(defender: Arc<Defender>, shutdown: impl Future<Output = ()>) {
    if let Err(e) = defender.refresh().await {
        warn!(error = %e, "cannot load bans from the user database");
    }
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + BAN_REFRESH, BAN_REFRESH);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => {
                if let Err(e) = defender.refresh().await {
                    warn!(error = %e, "cannot reload bans from the user database");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_auth::defender::DefenderConfig;

    #[test]
    fn a_connections_task_holds_its_future_once() {
        let connection = async {
            let state = [7u8; 4096];
            tokio::task::yield_now().await;
            assert_eq!(std::hint::black_box(&state)[0], 7);
        };
        let alone = std::mem::size_of_val(&connection);
        let (done, _rx) = mpsc::channel::<()>(1);
        let task = connection_task(connection, done);
        let size = std::mem::size_of_val(&task);
        assert!(
            size >= 4096 && size <= alone + 32,
            "task {size} bytes for a future of {alone}"
        );
    }

    fn admission(score_loopback: bool) -> Admission {
        let defender = Defender::new(
            DefenderConfig {
                score_loopback,
                ..DefenderConfig::default()
            },
            None,
        );
        Admission::new(
            ConnectionLimits::default(),
            FAILED_LOGIN_DELAY,
            Arc::new(defender),
            Arc::new(LoginGate::new()),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn every_failure_takes_the_failed_login_delay_and_success_does_not() {
        let a = admission(true);
        let ip: IpAddr = [192, 0, 2, 7].into();
        for outcome in [
            AuthOutcome::WrongCredentials,
            AuthOutcome::UnknownUser,
            AuthOutcome::Disabled,
        ] {
            let t0 = tokio::time::Instant::now();
            let r = a.login(ip, || async { Attempt::<()>::Failed(outcome) }).await;
            assert!(matches!(r, LoginResult::Refused { banned: None, .. }));
            assert_eq!(t0.elapsed(), FAILED_LOGIN_DELAY);
        }
        assert_eq!(a.defender().score(ip), 1 + 2 + 2);
        let t0 = tokio::time::Instant::now();
        let r = a.login(ip, || async { Attempt::Accepted(7) }).await;
        assert!(matches!(r, LoginResult::Accepted(7)));
        assert_eq!(t0.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_after_the_ban_is_refused_for_it_without_a_check() {
        let a = admission(true);
        let ip: IpAddr = [192, 0, 2, 9].into();
        let threshold = a.defender().config().threshold;
        let mut last = None;
        for _ in 0..threshold {
            let r = a
                .login(ip, || async {
                    Attempt::<()>::Failed(AuthOutcome::WrongCredentials)
                })
                .await;
            last = Some(r);
        }
        // The failure that reached the threshold made the ban; it was checked.
        assert!(matches!(
            last,
            Some(LoginResult::Refused {
                banned: Some(_),
                already_banned: false
            })
        ));
        let checked = std::sync::atomic::AtomicBool::new(false);
        let r = a
            .login(ip, || async {
                checked.store(true, std::sync::atomic::Ordering::Relaxed);
                Attempt::Accepted(())
            })
            .await;
        assert!(
            !checked.into_inner(),
            "a banned address's credentials are not checked"
        );
        assert!(matches!(
            r,
            LoginResult::Refused {
                banned: Some(_),
                already_banned: true
            }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn leaving_scores_only_after_trying_to_log_in() {
        let a = admission(true);
        let ip: IpAddr = [192, 0, 2, 8].into();
        for _ in 0..100 {
            let slot = a.admit(ip).await.expect("admitted");
            drop(slot);
            a.left(ip, false, false).await;
        }
        assert_eq!(a.defender().score(ip), 0);
        a.left(ip, true, true).await;
        assert_eq!(a.defender().score(ip), 0);
        a.left(ip, false, true).await;
        assert_eq!(a.defender().score(ip), 1);
    }
}
