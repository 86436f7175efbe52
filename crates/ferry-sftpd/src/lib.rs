//! SFTP over SSH for ferry.
//!
//! `ferry-sftpd` runs an SSH server on [russh] that offers exactly one thing: the `sftp`
//! subsystem (SFTP version 3, draft-ietf-secsh-filexfer-02, plus the OpenSSH extensions
//! `posix-rename`, `statvfs`, `fsync` and `limits`). Files are served from `ferry-vfs` with the
//! same jail, permissions and atomic-upload rule as FTP; users and their passwords and public keys
//! come from `ferry-auth`.
//!
//! Requests of a session are processed concurrently (up to [`limits::MAX_IN_FLIGHT`]) and answered
//! by request id as they complete; reads and writes on different handles or non-overlapping ranges
//! run at once, everything else on a handle keeps its order.
//!
//! What it deliberately does not do: shells, command execution (including the legacy `scp -O`
//! protocol), port forwarding, agent or X11 forwarding, symbolic or hard link creation. It does
//! not read configuration files, print, or install a tracing subscriber (that is the `ferry`
//! binary), and it does not decide whom to ban (that is the login defender, which plugs in through
//! [`LoginGuard`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod hostkey;
pub mod keys;
pub mod limits;
mod sftp;
mod ssh;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ferry_auth::UserStore;
use ferry_vfs::Storage;
use russh::keys::PrivateKey;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

pub use limits::ConnectionLimits;

/// Server settings; the `ferry` binary builds this from flags and `ferry.toml`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Host keys (at least one).
    pub host_keys: Vec<PrivateKey>,
    /// Connection limits (total, per IP).
    pub limits: ConnectionLimits,
    /// Time allowed from connecting to a successful login.
    pub login_timeout: Duration,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Authentication attempts (each password or signed key counts) before disconnecting.
    pub max_auth_attempts: usize,
}

impl Config {
    /// Default settings with these host keys.
    pub fn new(host_keys: Vec<PrivateKey>) -> Self {
        Config {
            host_keys,
            limits: ConnectionLimits::default(),
            login_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(300),
            max_auth_attempts: 6,
        }
    }
}

/// The result of one authentication attempt, for a [`LoginGuard`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The attempt succeeded.
    Success,
    /// Wrong password, unknown key, unknown or disabled user.
    Failure,
}

/// Where the login defender plugs in: asked before a connection is served and before each
/// authentication attempt, told the outcome of every attempt. The default ([`AllowAll`]) allows
/// everything.
pub trait LoginGuard: Send + Sync + std::fmt::Debug {
    /// Whether to serve a connection (or an authentication attempt) from `ip` at all.
    fn allow(&self, ip: IpAddr) -> bool;
    /// The outcome of an authentication attempt by `user` from `ip`.
    fn record(&self, ip: IpAddr, user: &str, outcome: LoginOutcome);
}

/// A [`LoginGuard`] that allows everything and records nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl LoginGuard for AllowAll {
    fn allow(&self, _ip: IpAddr) -> bool {
        true
    }

    fn record(&self, _ip: IpAddr, _user: &str, _outcome: LoginOutcome) {}
}

/// Everything a connection needs: settings, users, storage and the login guard.
#[derive(Debug)]
pub struct Server {
    config: Config,
    ssh: Arc<russh::server::Config>,
    users: UserStore,
    storage: Arc<dyn Storage>,
    guard: Arc<dyn LoginGuard>,
    tracker: limits::Tracker,
    /// Told about sessions (metrics), when set.
    observer: std::sync::OnceLock<Arc<dyn ferry_observe::Observer>>,
}

impl Server {
    /// A server over `users` and `storage` (the root under which user homes live).
    pub fn new(
        config: Config,
        users: UserStore,
        storage: Arc<dyn Storage>,
        guard: Arc<dyn LoginGuard>,
    ) -> Arc<Self> {
        let ssh = Arc::new(ssh::russh_config(&config));
        let tracker = limits::Tracker::new(config.limits.clone());
        Arc::new(Server {
            config,
            ssh,
            users,
            storage,
            guard,
            tracker,
            observer: std::sync::OnceLock::new(),
        })
    }

    /// Reports sessions to `observer` from now on. Only the first call has an effect.
    pub fn set_observer(&self, observer: Arc<dyn ferry_observe::Observer>) {
        let _ = self.observer.set(observer);
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// Serves SSH/SFTP on `listener` until `shutdown` completes; then stops accepting, disconnects
/// every session and waits for them to end.
pub async fn serve(listener: TcpListener, server: Arc<Server>, shutdown: impl Future<Output = ()>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer): (tokio::net::TcpStream, SocketAddr) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let server = Arc::clone(&server);
        let stop = stop_rx.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            ssh::run(stream, peer, server, stop).await;
            drop(done);
        });
    }
    info!("SFTP shutting down: no new connections; closing sessions");
    let _ = stop_tx.send(true);
    drop(done_tx);
    let _ = done_rx.recv().await;
}
