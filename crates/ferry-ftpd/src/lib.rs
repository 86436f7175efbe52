//! tokio glue that serves FTP.
//!
//! `ferry-ftpd` accepts control connections, runs one [`ferry_proto::session::Session`] per connection in
//! its own task, and carries out what the session asks for: authentication through `ferry-auth`, storage
//! requests and transfers through `ferry-vfs`, passive listeners and active connections. It enforces the
//! network-side defences the session cannot see: connection limits, passive connections only from the
//! control peer (behind a load balancer: the client its PROXY header names, see
//! [`ferry_admission::ProxyProtocol`]), data-connection timeouts, the command-rate throttle, and the login defender (bans
//! checked at connect, misbehaviour reported to `ferry_auth::defender`).
//!
//! What it deliberately does not do: parse FTP or choose replies (that is `ferry-proto`), touch files
//! directly (that is `ferry-vfs`), read configuration files or install a tracing subscriber (that is the
//! `ferry` binary).
#![forbid(unsafe_code)]

mod conn;
mod data;
mod hash;
mod protection;
mod storage;
mod tls;
mod transfer;
mod zerocopy;

use std::future::Future;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use ferry_admission::{Admission, LoginGate};
use ferry_auth::defender::{Defender, Network};
use ferry_auth::{Permissions, UserStore};
use ferry_vfs::Storage;
use tokio::net::TcpListener;
use tracing::info;

pub use ferry_admission::ConnectionLimits;
pub use ferry_auth::defender::DefenderConfig;
pub use ferry_proto::session::TlsPolicy;
pub use protection::Protection;
pub use tls::{fingerprint, DataSession, PemIdentity, Tls, TlsError};

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
    /// Address advertised in PASV replies instead of the control connection's local address (for NAT),
    /// to clients that no rule of `masquerade_networks` matches.
    pub masquerade_address: Option<IpAddr>,
    /// Per client network: the first rule whose network holds the client's address (the PROXY
    /// header's, behind a balancer) gives the address its PASV replies announce.
    pub masquerade_networks: Vec<(Network, IpAddr)>,
    /// Time allowed for a data connection to be accepted or connected.
    pub data_timeout: Duration,
    /// Source port of active-mode (PORT/EPRT) data connections.
    pub active_source_port: ActiveSourcePort,
    /// Connection limits.
    pub limits: ConnectionLimits,
    /// Anonymous login, if enabled.
    pub anonymous: Option<Anonymous>,

    // ----- hostile-client defences (security) -----
    /// Command-rate throttle, failed-login delay, FXP opt-outs.
    pub protection: Protection,
    /// The login defender's scores, ban times and allow-list.
    pub defender: DefenderConfig,
    /// FTPS settings.
    pub ftps: Ftps,
    /// PROXY protocol headers from load balancers, on control and passive data connections.
    pub proxy_protocol: ferry_admission::ProxyProtocol,
}

/// FTPS (RFC 4217) settings. Without a certificate ([`Ftps::tls`] `None`) TLS is off whatever the policies
/// say.
#[derive(Debug, Clone)]
pub struct Ftps {
    /// The certificate and TLS settings.
    pub tls: Option<Arc<Tls>>,
    /// Control-channel policy for clients not on loopback.
    pub policy: TlsPolicy,
    /// Control-channel policy for clients on loopback (127.0.0.0/8, ::1).
    pub loopback_policy: TlsPolicy,
    /// Data connections must be TLS (PROT P) whenever the control connection is.
    pub require_protected_data: bool,
    /// Accept TLS data connections that do not resume the control connection's TLS session. Off by
    /// default; users can have it switched on individually.
    pub danger_allow_unresumed_data_tls: bool,
    /// Accept CCC after login: the rest of the control connection goes in the clear (commands and replies
    /// can then be read and forged on the way; data stays protected). For firewalls that must read the
    /// control connection. Off by default.
    pub danger_allow_ccc: bool,
    /// Whose TLS sessions a data connection may resume: its own control connection's only, also those
    /// of control connections logged in as the same user from the same address (the default; rclone's
    /// parallel transfers share one session cache), or any (danger).
    pub data_session: DataSession,
    /// Time allowed for a TLS handshake on the control or a data connection.
    pub handshake_timeout: Duration,
}

impl Default for Ftps {
    fn default() -> Self {
        Self {
            tls: None,
            policy: TlsPolicy::Required,
            loopback_policy: TlsPolicy::Optional,
            require_protected_data: true,
            danger_allow_unresumed_data_tls: false,
            danger_allow_ccc: false,
            data_session: DataSession::SameUser,
            handshake_timeout: Duration::from_secs(15),
        }
    }
}

impl Ftps {
    /// The control-channel policy for a client at `peer`.
    pub fn policy_for(&self, peer: IpAddr) -> TlsPolicy {
        if self.tls.is_none() {
            TlsPolicy::Off
        } else if ferry_admission::canonical(peer).is_loopback() {
            self.loopback_policy
        } else {
            self.policy
        }
    }
}

/// The source port of active-mode data connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActiveSourcePort {
    /// Any free port the system picks (needs no privileges).
    #[default]
    Any,
    /// The control connection's port minus one: 20 behind port 21, RFC 959's default data port, for
    /// stateless firewalls that let only that port out. Ports below 1024 need root or
    /// CAP_NET_BIND_SERVICE; several transfers share the port (SO_REUSEADDR), one per client address
    /// and port.
    ControlMinusOne,
}

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// FTP with optional or required `AUTH TLS` (explicit FTPS), per [`Ftps`].
    Explicit,
    /// Implicit FTPS: TLS starts before the greeting (port 990 style).
    Implicit,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            session: ferry_proto::session::Config::default(),
            passive_ports: 50000..=50100,
            masquerade_address: None,
            masquerade_networks: Vec::new(),
            data_timeout: Duration::from_secs(30),
            active_source_port: ActiveSourcePort::Any,
            limits: ConnectionLimits::default(),
            anonymous: None,
            ftps: Ftps::default(),
            protection: Protection::default(),
            defender: DefenderConfig::default(),
            proxy_protocol: ferry_admission::ProxyProtocol::default(),
        }
    }
}

/// Everything a connection needs: settings, users and storage.
#[derive(Debug)]
pub struct Server {
    config: Config,
    users: UserStore,
    storage: Arc<dyn Storage>,
    /// Connection limits, the login defender and turns for password checks.
    admission: Arc<Admission>,
    /// Told about sessions, logins and transfers (metrics), when set.
    observer: std::sync::OnceLock<Arc<dyn ferry_observe::Observer>>,
    /// The addresses PASV announces instead of the local one; start as `config.masquerade_address`
    /// and `config.masquerade_networks`, changed by [`Server::set_masquerade_address`] and
    /// [`Server::set_masquerade_networks`] (host names resolved again on SIGHUP).
    masquerade: std::sync::RwLock<Masquerade>,
    /// Time running transfers get to finish when the server shuts down (milliseconds).
    shutdown_grace_ms: std::sync::atomic::AtomicU64,
    /// The session settings and data timeout for new sessions (SIGHUP may change them).
    live: std::sync::RwLock<(ferry_proto::session::Config, Duration)>,
    /// How many passive listeners sessions may keep between transfers (half the passive range).
    spare_listeners: Arc<data::SpareBudget>,
}

impl Server {
    /// A server over `users` and `storage` (the root under which user homes live), with its own login
    /// defender (bans kept in the user database) and limits from `config`.
    pub fn new(config: Config, users: UserStore, storage: Arc<dyn Storage>) -> Arc<Self> {
        let defender = Arc::new(Defender::new(config.defender.clone(), Some(users.clone())));
        Self::new_with_defender(config, users, storage, defender)
    }

    /// A server whose login defender is `defender` (e.g. on a test clock) instead of one built from
    /// `config.defender`.
    pub fn new_with_defender(
        config: Config,
        users: UserStore,
        storage: Arc<dyn Storage>,
        defender: Arc<Defender>,
    ) -> Arc<Self> {
        Self::new_shared(config, users, storage, defender, Arc::new(LoginGate::new()))
    }

    /// A server whose scores and bans go to `defender` and whose password checks take turns at `gate`:
    /// pass the SFTP server's, so both protocols share them (`config.defender` is then not used).
    pub fn new_shared(
        config: Config,
        users: UserStore,
        storage: Arc<dyn Storage>,
        defender: Arc<Defender>,
        gate: Arc<LoginGate>,
    ) -> Arc<Self> {
        let admission = Arc::new(
            Admission::new(
                config.limits.clone(),
                config.protection.failed_login_delay,
                defender,
                gate,
            )
            .with_proxy(config.proxy_protocol.clone()),
        );
        Arc::new(Self {
            masquerade: std::sync::RwLock::new(Masquerade {
                default: config.masquerade_address,
                networks: config.masquerade_networks.clone(),
            }),
            live: std::sync::RwLock::new((config.session.clone(), config.data_timeout)),
            spare_listeners: Arc::new(data::SpareBudget::for_range(&config.passive_ports)),
            config,
            users,
            storage,
            admission,
            observer: std::sync::OnceLock::new(),
            shutdown_grace_ms: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// When the listeners stop, running transfers get `grace` to finish (idle sessions get `421` at
    /// once); then they are aborted with `426` and an unfinished upload is discarded. Zero (the
    /// default): abort at once.
    pub fn set_shutdown_grace(&self, grace: Duration) {
        let ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
        self.shutdown_grace_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Reports sessions, logins and transfers to `observer` from now on. Only the first call has an
    /// effect.
    pub fn set_observer(&self, observer: Arc<dyn ferry_observe::Observer>) {
        let _ = self.observer.set(observer);
    }

    pub(crate) fn observer(&self) -> Option<&Arc<dyn ferry_observe::Observer>> {
        self.observer.get()
    }

    /// The login defender (to list or lift bans while serving).
    /// New sessions use `session` (greeting, login and idle timeouts, login attempts) and
    /// `data_timeout` from now on (SIGHUP); running sessions keep theirs.
    pub fn set_session_config(&self, session: ferry_proto::session::Config, data_timeout: Duration) {
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = (session, data_timeout);
    }

    /// The session settings for a new session.
    pub(crate) fn session_config(&self) -> ferry_proto::session::Config {
        self.live.read().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// The data-connection timeout in force.
    pub(crate) fn data_timeout(&self) -> Duration {
        self.live.read().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Enforces `limits` on new connections from now on (SIGHUP).
    pub fn set_limits(&self, limits: ConnectionLimits) {
        self.admission.set_limits(limits);
    }

    pub fn defender(&self) -> &Arc<Defender> {
        self.admission.defender()
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The address PASV replies announce instead of the address the client connected to, for
    /// clients that no per-network rule matches, if any.
    pub fn masquerade_address(&self) -> Option<IpAddr> {
        self.masquerade.read().unwrap_or_else(|e| e.into_inner()).default
    }

    /// The address PASV replies to `client` announce instead of the address it connected to: that of
    /// the first per-network rule holding `client`, else the default, else none.
    pub fn masquerade_for(&self, client: IpAddr) -> Option<IpAddr> {
        let m = self.masquerade.read().unwrap_or_else(|e| e.into_inner());
        m.networks
            .iter()
            .find(|(net, _)| net.contains(client))
            .map(|(_, ip)| *ip)
            .or(m.default)
    }

    /// Changes the default address PASV replies announce from now on (e.g. a host name resolved again).
    pub fn set_masquerade_address(&self, ip: Option<IpAddr>) {
        self.masquerade.write().unwrap_or_else(|e| e.into_inner()).default = ip;
    }

    /// Changes the per-client-network addresses PASV replies announce from now on.
    pub fn set_masquerade_networks(&self, rules: Vec<(Network, IpAddr)>) {
        self.masquerade
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .networks = rules;
    }
}

/// What PASV announces instead of the address the client connected to.
#[derive(Debug)]
struct Masquerade {
    default: Option<IpAddr>,
    networks: Vec<(Network, IpAddr)>,
}

/// Serves FTP (with explicit FTPS when configured) on `listener` until `shutdown` completes; then stops
/// accepting, tells every open session `421` and waits for the sessions to end. Bans are checked in
/// memory; reloading them from the user database is [`ferry_admission::refresh_bans`]'s job (one task
/// per process, for FTP and SFTP alike).
pub async fn serve(listener: TcpListener, server: Arc<Server>, shutdown: impl Future<Output = ()>) {
    serve_kind(listener, server, ListenerKind::Explicit, shutdown).await;
}

/// Like [`serve`], for a listener of the given kind. An implicit-FTPS listener needs [`Ftps::tls`]; without
/// it every connection is closed at once.
pub async fn serve_kind(
    listener: TcpListener,
    server: Arc<Server>,
    kind: ListenerKind,
    shutdown: impl Future<Output = ()>,
) {
    let mut next_id: u64 = 0;
    let grace = server.shutdown_grace();
    ferry_admission::serve_draining(listener, shutdown, grace, |stream, peer, stop| {
        next_id += 1;
        conn::run(next_id, stream, peer, Arc::clone(&server), kind, stop)
    })
    .await;
    info!("FTP listener stopped; sessions closed");
}
