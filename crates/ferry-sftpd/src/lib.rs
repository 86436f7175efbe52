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
//! protocol), remote port forwarding, agent or X11 forwarding, local port forwarding except to a
//! user's permitted targets (`ferry user forward`), symbolic or hard link creation. It does
//! not read configuration files, print, or install a tracing subscriber (that is the `ferry`
//! binary), and it does not decide whom to admit or ban (that is `ferry-admission` and the login
//! defender, shared with FTP).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod hostkey;
pub mod keys;
pub mod limits;
mod sftp;
mod ssh;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferry_admission::{Admission, LoginGate};
use ferry_auth::defender::Defender;
use ferry_auth::UserStore;
use ferry_vfs::Storage;
use russh::keys::PrivateKey;
use tokio::net::TcpListener;
use tracing::info;

pub use ferry_admission::ConnectionLimits;

/// Server settings; the `ferry` binary builds this from flags and `ferry.toml`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Host keys (at least one).
    pub host_keys: Vec<PrivateKey>,
    /// Connection limits (total, per IP, not yet logged in).
    pub limits: ConnectionLimits,
    /// Time from an authentication attempt to the reply of a failure, whether or not the user exists.
    pub failed_login_delay: Duration,
    /// Time allowed from connecting to a successful login.
    pub login_timeout: Duration,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Authentication attempts (password, public key and keyboard-interactive together) before
    /// disconnecting.
    pub max_auth_attempts: usize,
    /// PROXY protocol headers from load balancers.
    pub proxy_protocol: ferry_admission::ProxyProtocol,
    /// Longest range the `check-file` extension hashes on demand; 0 turns it off.
    pub hash_max_size: u64,
}

impl Config {
    /// Default settings with these host keys.
    pub fn new(host_keys: Vec<PrivateKey>) -> Self {
        Config {
            host_keys,
            limits: ConnectionLimits::default(),
            failed_login_delay: ferry_admission::FAILED_LOGIN_DELAY,
            login_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(300),
            max_auth_attempts: 6,
            proxy_protocol: ferry_admission::ProxyProtocol::default(),
            hash_max_size: ferry_proto::hash::DEFAULT_MAX_SIZE,
        }
    }
}

/// Everything a connection needs: settings, users, storage and admission (limits, login defender).
#[derive(Debug)]
pub struct Server {
    config: Config,
    users: UserStore,
    storage: Arc<dyn Storage>,
    admission: Arc<Admission>,
    /// Told about sessions, logins and transfers (metrics), when set.
    observer: std::sync::OnceLock<Arc<dyn ferry_observe::Observer>>,
    /// Time open file transfers get to finish when the server shuts down (milliseconds).
    shutdown_grace_ms: std::sync::atomic::AtomicU64,
    /// The login timeout and SSH settings (idle timeout) for new connections (SIGHUP may change them).
    live: std::sync::RwLock<(Duration, Arc<russh::server::Config>)>,
}

impl Server {
    /// A server over `users` and `storage` (the root under which user homes live). Scores and bans go
    /// to `defender` and password checks take turns at `gate`: pass the FTP server's, so both protocols
    /// share them.
    pub fn new(
        config: Config,
        users: UserStore,
        storage: Arc<dyn Storage>,
        defender: Arc<Defender>,
        gate: Arc<LoginGate>,
    ) -> Arc<Self> {
        let ssh = Arc::new(ssh::russh_config(&config));
        let admission = Arc::new(
            Admission::new(config.limits.clone(), config.failed_login_delay, defender, gate)
                .with_proxy(config.proxy_protocol.clone()),
        );
        Arc::new(Server {
            live: std::sync::RwLock::new((config.login_timeout, ssh)),
            config,
            users,
            storage,
            admission,
            observer: std::sync::OnceLock::new(),
            shutdown_grace_ms: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// When the listeners stop, a session with an open file gets `grace` to finish (sessions without
    /// one are disconnected at once); then it is disconnected and an upload not yet closed is
    /// discarded. Zero (the default): disconnect at once.
    pub fn set_shutdown_grace(&self, grace: Duration) {
        let ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        self.shutdown_grace_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Reports sessions to `observer` from now on. Only the first call has an effect.
    pub fn set_observer(&self, observer: Arc<dyn ferry_observe::Observer>) {
        let _ = self.observer.set(observer);
    }

    /// New connections use these login and idle timeouts from now on (SIGHUP); open ones keep theirs.
    pub fn set_timeouts(&self, login_timeout: Duration, idle_timeout: Duration) {
        let mut config = self.config.clone();
        config.idle_timeout = idle_timeout;
        let ssh = Arc::new(ssh::russh_config(&config));
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = (login_timeout, ssh);
    }

    /// The login timeout for a new connection.
    fn login_timeout(&self) -> Duration {
        self.live.read().unwrap_or_else(|e| e.into_inner()).0
    }

    /// The SSH settings for a new connection.
    fn ssh_config(&self) -> Arc<russh::server::Config> {
        Arc::clone(&self.live.read().unwrap_or_else(|e| e.into_inner()).1)
    }

    /// Enforces `limits` on new connections from now on (SIGHUP).
    pub fn set_limits(&self, limits: ConnectionLimits) {
        self.admission.set_limits(limits);
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// Serves SSH/SFTP on `listener` until `shutdown` completes; then stops accepting, disconnects
/// every session and waits for them to end.
pub async fn serve(listener: TcpListener, server: Arc<Server>, shutdown: impl Future<Output = ()>) {
    let grace = server.shutdown_grace();
    ferry_admission::serve_draining(listener, shutdown, grace, |stream, peer, stop| {
        ssh::run(stream, peer, Arc::clone(&server), stop)
    })
    .await;
    info!("SFTP listener stopped; sessions closed");
}
