//! tokio glue that serves FTP.
//!
//! `ferry-ftpd` accepts control connections, runs one [`ferry_proto::session::Session`] per connection in
//! its own task, and carries out what the session asks for: authentication through `ferry-auth`, storage
//! requests and transfers through `ferry-vfs`, passive listeners and active connections. It enforces the
//! network-side defences the session cannot see: connection limits, passive connections only from the
//! control peer, data-connection timeouts, the command-rate throttle, and the login defender (bans
//! checked at connect, misbehaviour reported to `ferry_auth::defender`).
//!
//! What it deliberately does not do: parse FTP or choose replies (that is `ferry-proto`), touch files
//! directly (that is `ferry-vfs`), read configuration files or install a tracing subscriber (that is the
//! `ferry` binary).
#![forbid(unsafe_code)]

mod conn;
mod data;
mod limits;
mod protection;
mod storage;
mod transfer;

use std::future::Future;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use ferry_auth::defender::Defender;
use ferry_auth::{Permissions, UserStore};
use ferry_vfs::Storage;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

pub use ferry_auth::defender::DefenderConfig;
pub use limits::ConnectionLimits;
pub use protection::Protection;

/// Anonymous login settings. Anonymous login is off unless this is configured.
#[derive(Debug, Clone)]
pub struct Anonymous {
    /// Virtual home under the storage root, e.g. `/pub`.
    pub home: String,
    /// What anonymous users may do; read-only (list, read) by default.
    pub permissions: Permissions,
}

/// Server settings; the `ferry` binary builds this from flags and `ferry.toml`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Per-session protocol settings (greeting, login and idle timeouts, login attempts).
    pub session: ferry_proto::session::Config,
    /// Ports for passive data listeners.
    pub passive_ports: RangeInclusive<u16>,
    /// Address advertised in PASV replies instead of the control connection's local address (for NAT).
    pub masquerade_address: Option<IpAddr>,
    /// Time allowed for a data connection to be accepted or connected.
    pub data_timeout: Duration,
    /// Connection limits.
    pub limits: ConnectionLimits,
    /// Anonymous login, if enabled.
    pub anonymous: Option<Anonymous>,

    // ----- hostile-client defences (security) -----
    /// Command-rate throttle, failed-login delay, FXP opt-outs.
    pub protection: Protection,
    /// The login defender's scores, ban times and allow-list.
    pub defender: DefenderConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            session: ferry_proto::session::Config::default(),
            passive_ports: 50000..=50100,
            masquerade_address: None,
            data_timeout: Duration::from_secs(30),
            limits: ConnectionLimits::default(),
            anonymous: None,
            protection: Protection::default(),
            defender: DefenderConfig::default(),
        }
    }
}

/// Everything a connection needs: settings, users and storage.
#[derive(Debug)]
pub struct Server {
    config: Config,
    users: UserStore,
    storage: Arc<dyn Storage>,
    limits: limits::Tracker,
    defender: Arc<Defender>,
    /// Turns for password checks (each Argon2id verification holds 19 MiB).
    logins: limits::LoginGate,
}

impl Server {
    /// A server over `users` and `storage` (the root under which user homes live).
    pub fn new(config: Config, users: UserStore, storage: Arc<dyn Storage>) -> Arc<Self> {
        let limits = limits::Tracker::new(config.limits.clone());
        // Bans are kept in the user database, shared with `ferry ban` and other nodes.
        let defender = Arc::new(Defender::new(config.defender.clone(), Some(users.clone())));
        Self::with_defender(config, users, storage, limits, defender)
    }

    /// A server whose login defender is `defender` (e.g. on a test clock) instead of one built from
    /// `config.defender`.
    pub fn new_with_defender(
        config: Config,
        users: UserStore,
        storage: Arc<dyn Storage>,
        defender: Arc<Defender>,
    ) -> Arc<Self> {
        let limits = limits::Tracker::new(config.limits.clone());
        Self::with_defender(config, users, storage, limits, defender)
    }

    fn with_defender(
        config: Config,
        users: UserStore,
        storage: Arc<dyn Storage>,
        limits: limits::Tracker,
        defender: Arc<Defender>,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            users,
            storage,
            limits,
            defender,
            logins: limits::LoginGate::new(),
        })
    }

    /// The login defender (to list or lift bans while serving).
    pub fn defender(&self) -> &Arc<Defender> {
        &self.defender
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// How often each listener reloads the bans from the user database.
const BAN_REFRESH: Duration = Duration::from_secs(10);

/// Serves FTP on `listener` until `shutdown` completes; then stops accepting, tells every open session
/// `421` and waits for the sessions to end.
pub async fn serve(listener: TcpListener, server: Arc<Server>, shutdown: impl Future<Output = ()>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut next_id: u64 = 0;
    tokio::pin!(shutdown);
    // Bans stored by earlier runs, other nodes and `ferry ban` apply from the first connection on.
    if let Err(e) = server.defender.refresh().await {
        warn!(error = %e, "cannot load bans from the user database");
    }
    let mut refresh = tokio::time::interval_at(tokio::time::Instant::now() + BAN_REFRESH, BAN_REFRESH);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            _ = refresh.tick() => {
                if let Err(e) = server.defender.refresh().await {
                    warn!(error = %e, "cannot reload bans from the user database");
                }
                continue;
            }
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
        next_id += 1;
        let id = next_id;
        let server = Arc::clone(&server);
        let stop = stop_rx.clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            conn::run(id, stream, peer, server, stop).await;
            drop(done);
        });
    }
    info!("shutting down: no new connections; closing sessions");
    let _ = stop_tx.send(true);
    drop(done_tx);
    let _ = done_rx.recv().await;
}
