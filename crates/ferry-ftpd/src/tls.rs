//! FTPS: certificates, the shared TLS settings, and the per-session TLS configurations that bind every
//! data connection to its own control connection.
//!
//! # How data connections are bound to their control connection
//!
//! Each control connection that starts TLS gets its own rustls configurations (see [`Tls::session`]). They
//! share a TLS 1.2 session cache that exists only for that control connection, and a ticketer that seals the
//! control connection's identity into every ticket it issues (inside the ticket's authenticated encryption)
//! and accepts only tickets sealed with that identity. A data connection's handshake can therefore only be
//! *resumed* if the client carries over a TLS session of this very control connection (or of one of its
//! earlier data connections); a connection from anyone else, even another logged-in client with its own TLS
//! session, gets a full handshake, and [`resumed`] turns that into `522`. This is the defence against
//! passive-port theft that vsftpd's `require_ssl_reuse` provides, without a process-wide cache that any
//! client could populate.
//!
//! [`DataSession::SameUser`] (the default) widens "this control connection" to "any control connection
//! logged in as the same user from the same address", for clients that share one TLS session cache among
//! parallel control connections (rclone). That is the same principal: a thief still needs a TLS session
//! of that user. [`DataSession::DangerAny`] accepts a session of any control connection of this server.
//!
//! # TLS 1.3 tickets
//!
//! The control configuration sends several TLS 1.3 tickets after its handshake. They are stateless, so a
//! client that resumes the same ticket for every data connection (GnuTLS clients such as lftp and
//! FileZilla, Python's ssl) can do so for the whole session.
//!
//! Clients built on OpenSSL with a client session cache (curl) use each TLS 1.3 ticket only once, as
//! OpenSSL recommends, so they need a fresh ticket for every data connection. rustls can send tickets only
//! right after a handshake, never later on the control connection, so the fresh ticket has to come on the
//! data connection itself. That is safe only where the client *reads* the connection to its end:
//! downloads and listings get one replacement ticket. Upload connections get none: a ticket waiting unread
//! in the receive buffer of a client that only writes turns its close into a TCP reset, which can destroy
//! the end of the upload — how vsftpd and pyftpdlib lose TLS 1.3 uploads. (ferry would answer such an upload
//! with 426, never keep it truncated; see `transfer.rs`.)

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ProducesTickets, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{HandshakeKind, ServerConfig};
use sha2::{Digest, Sha256};

mod cache;

/// The only ALPN protocol ferry speaks on FTPS (RFC 9110's registry: "ftp"). A client that offers ALPN
/// without it is refused, which defeats cross-protocol attacks such as ALPACA.
pub const ALPN_FTP: &[u8] = b"ftp";

/// TLS 1.3 tickets sent after each control-connection handshake (stateless, so each can be resumed many
/// times).
const CONTROL_TICKETS: usize = 4;

/// TLS 1.3 tickets sent on a download or listing connection: one replacement for the ticket it used.
const DOWNLOAD_TICKETS: usize = 1;

/// Session-cache entries per control connection (TLS 1.2 session IDs of its data connections).
const SESSION_CACHE: usize = 32;

/// How long a closed control connection's tickets stay valid for its siblings' data connections.
const SIBLING_GRACE: Duration = Duration::from_secs(600);

/// Bytes of control-connection identity sealed into each ticket.
const SESSION_ID_LEN: usize = 8;

/// Whose TLS sessions a data connection may resume (`ftps.data_session`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataSession {
    /// Only sessions of its own control connection.
    Own,
    /// Also sessions of control connections logged in as the same user from the same address.
    #[default]
    SameUser,
    /// Sessions of any control connection of this server (any user, any address). Dangerous: another
    /// logged-in client can take over a passive data connection.
    DangerAny,
}

/// Why certificates could not be loaded or generated.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The PEM data holds no certificate.
    #[error("no certificate found in the certificate file")]
    NoCertificate,
    /// The PEM data holds no usable private key.
    #[error("no private key found in the key file: {0}")]
    NoKey(String),
    /// The private key is not the key of the certificate.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    /// rustls refused the certificate or key (unsupported algorithm, say).
    #[error("certificate or key rejected: {0}")]
    Rejected(#[from] rustls::Error),
    /// A self-signed certificate could not be generated.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The server's TLS identity and base settings, shared by all connections; the certificate can be replaced
/// while running ([`Tls::reload`]), affecting new handshakes only.
pub struct Tls {
    provider: Arc<CryptoProvider>,
    resolver: Arc<CurrentCert>,
    base: ServerConfig,
    /// The process's ticket keys (rotated by rustls every few hours); every ticket also carries the
    /// identity of the control connection it was issued for.
    keys: Arc<dyn ProducesTickets>,
    sessions: Arc<Registry>,
    next_session: AtomicU64,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// A certificate chain and key in PEM form.
#[derive(Clone)]
pub struct PemIdentity {
    /// Certificate chain, leaf first.
    pub cert: Vec<u8>,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Vec<u8>,
}

impl fmt::Debug for PemIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PemIdentity(..)")
    }
}

impl PemIdentity {
    /// Reads a certificate chain file and a key file.
    pub fn read(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| TlsError::Io {
                path: p.display().to_string(),
                source,
            })
        };
        Ok(Self {
            cert: read(cert)?,
            key: read(key)?,
        })
    }

    /// A new self-signed certificate for `names` (DNS names or IP addresses), with a fresh ECDSA P-256 key.
    pub fn self_signed(names: Vec<String>) -> Result<Self, TlsError> {
        let generated = rcgen::generate_simple_self_signed(names)?;
        Ok(Self {
            cert: generated.cert.pem().into_bytes(),
            key: generated.key_pair.serialize_pem().into_bytes(),
        })
    }
}

impl Tls {
    /// TLS settings for `identity`: TLS 1.3 and 1.2 with rustls' modern cipher suites only (AEAD, forward
    /// secrecy), aws-lc-rs as the one crypto provider, ALPN "ftp" enforced when the client offers ALPN, and
    /// any SNI accepted.
    pub fn new(identity: &PemIdentity) -> Result<Self, TlsError> {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        // Server order: AES-128-GCM first (the fastest with AES hardware, and no weaker in practice), then
        // AES-256-GCM, then ChaCha20-Poly1305; rustls' defaults hold only AEAD suites with forward secrecy.
        provider
            .cipher_suites
            .sort_by_key(|s| match format!("{:?}", s.suite()) {
                name if name.contains("AES_128_GCM") => 0,
                name if name.contains("AES_256_GCM") => 1,
                _ => 2,
            });
        let provider = Arc::new(provider);
        let key = certified_key(identity, &provider)?;
        let resolver = Arc::new(CurrentCert(RwLock::new(Arc::new(key))));
        let mut base = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&resolver) as Arc<dyn ResolvesServerCert>);
        base.alpn_protocols = vec![ALPN_FTP.to_vec()];
        base.ignore_client_order = true;
        Ok(Self {
            provider,
            resolver,
            base,
            keys: rustls::crypto::aws_lc_rs::Ticketer::new()?,
            sessions: Arc::new(Registry::default()),
            next_session: AtomicU64::new(1),
        })
    }

    /// Replaces the certificate and key for new handshakes. On error the old ones stay in force.
    pub fn reload(&self, identity: &PemIdentity) -> Result<(), TlsError> {
        let key = certified_key(identity, &self.provider)?;
        let mut current = self
            .resolver
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = Arc::new(key);
        Ok(())
    }

    /// SHA-256 fingerprint of the leaf certificate, as `AB:CD:…` (what browsers and `openssl x509
    /// -fingerprint -sha256` show), for users to compare when they accept a self-signed certificate.
    pub fn fingerprint(&self) -> String {
        let current = self.resolver.current();
        current
            .cert
            .first()
            .map(|c| fingerprint(c.as_ref()))
            .unwrap_or_default()
    }

    /// SHA-1 fingerprint of the leaf certificate, as `AB:CD:…`: what lftp shows when it does not trust a
    /// certificate, and what its `ssl:verify-certificate/<fingerprint>` setting takes. For comparing only.
    pub fn fingerprint_sha1(&self) -> String {
        let current = self.resolver.current();
        current
            .cert
            .first()
            .map(|c| colon_hex(&sha1::Sha1::digest(c.as_ref())))
            .unwrap_or_default()
    }

    /// Fresh configurations for one control connection from `peer` and its data connections, sharing a
    /// session cache and a ticketer that accept only this control connection's sessions, or also those
    /// of other control connections as `mode` allows.
    pub(crate) fn session(&self, peer: IpAddr, mode: DataSession) -> SessionTls {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        self.sessions.open(id, peer);
        let ticketer = Arc::new(BoundTicketer {
            id,
            keys: Arc::clone(&self.keys),
            sessions: Arc::clone(&self.sessions),
            mode,
            resumed_from: Mutex::new(None),
        });
        let mut control = self.base.clone();
        control.session_storage = Arc::new(cache::SessionCache::new(SESSION_CACHE));
        control.ticketer = Arc::clone(&ticketer) as Arc<dyn ProducesTickets>;
        control.send_tls13_tickets = CONTROL_TICKETS;
        SessionTls {
            id,
            sessions: Arc::clone(&self.sessions),
            binding: ticketer,
            control: Arc::new(control),
            download: OnceLock::new(),
            upload: OnceLock::new(),
        }
    }
}

/// Control connections with TLS: their address and, once logged in, their user. Closed ones are kept for
/// [`SIBLING_GRACE`] so that a sibling's data connection may still resume one of their tickets.
#[derive(Debug, Default)]
struct Registry(Mutex<Members>);

/// The registry's contents. `closed` lists closed connections in the order they closed (so oldest
/// first): expiring them costs only the ones that expire, however many connections a busy server saw in
/// the grace period (a whole-map sweep on every new connection grew with that number).
#[derive(Debug, Default)]
struct Members {
    map: HashMap<u64, Member>,
    closed: VecDeque<(Instant, u64)>,
}

impl Members {
    /// Forgets the closed connections whose grace period is over.
    fn expire(&mut self, now: Instant) {
        while let Some(&(ended, id)) = self.closed.front() {
            if now.duration_since(ended) < SIBLING_GRACE {
                break;
            }
            self.closed.pop_front();
            self.map.remove(&id);
        }
    }
}

#[derive(Debug)]
struct Member {
    ip: IpAddr,
    user: Option<String>,
    ended: Option<Instant>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Members> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn open(&self, id: u64, ip: IpAddr) {
        let mut members = self.lock();
        members.expire(Instant::now());
        members.map.insert(
            id,
            Member {
                ip: ferry_admission::canonical(ip),
                user: None,
                ended: None,
            },
        );
    }

    fn set_user(&self, id: u64, user: Option<&str>) {
        if let Some(m) = self.lock().map.get_mut(&id) {
            m.user = user.map(str::to_owned);
        }
    }

    fn close(&self, id: u64) {
        let now = Instant::now();
        let mut members = self.lock();
        let Some(m) = members.map.get_mut(&id) else {
            return;
        };
        if m.ended.is_none() {
            m.ended = Some(now);
            members.closed.push_back((now, id));
        }
    }

    /// Connections known (open, or closed within the grace period).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// True when `other` is logged in (or was, within the grace period) as the same user as `me`, from the
    /// same address.
    fn siblings(&self, me: u64, other: u64) -> bool {
        self.compare(me, other, |a, b| a.user.is_some() && a.user == b.user)
    }

    /// True when `other` is, or recently was, a control connection from the same address as `me`. Whether
    /// it is also logged in as the same user is checked after the handshake (it may still be logging in).
    fn same_address(&self, me: u64, other: u64) -> bool {
        self.compare(me, other, |_, _| true)
    }

    /// `me` and a still-fresh `other` from the same address, passing `also`.
    fn compare(&self, me: u64, other: u64, also: impl Fn(&Member, &Member) -> bool) -> bool {
        let members = self.lock();
        let (Some(a), Some(b)) = (members.map.get(&me), members.map.get(&other)) else {
            return false;
        };
        let fresh = b.ended.is_none_or(|t| t.elapsed() < SIBLING_GRACE);
        fresh && a.ip == b.ip && also(a, b)
    }
}

/// Issues tickets that carry this control connection's identity, and accepts only tickets of this control
/// connection (or, when allowed, of control connections from the same address, confirmed as siblings by
/// [`BoundTicketer::confirm`] after the handshake).
pub(crate) struct BoundTicketer {
    id: u64,
    keys: Arc<dyn ProducesTickets>,
    sessions: Arc<Registry>,
    mode: DataSession,
    /// The control connection whose ticket the latest handshake resumed. A control connection has at most
    /// one data connection in its handshake at a time (one transfer, one accepted connection).
    resumed_from: Mutex<Option<u64>>,
}

impl BoundTicketer {
    fn resumed_from(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.resumed_from
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forgets the previous handshake; call before a data connection's handshake.
    pub(crate) fn clear(&self) {
        *self.resumed_from() = None;
    }

    /// After a resumed handshake: true when the session resumed belongs to this control connection, or to a
    /// sibling (same user, same address) where allowed. A sibling still logging in is waited for, up to
    /// `wait`.
    pub(crate) async fn confirm(&self, wait: Duration) -> bool {
        let from = self.resumed_from().take();
        let other = match from {
            // TLS 1.2 session IDs live in this control connection's own cache.
            None => return true,
            Some(id) if id == self.id => return true,
            Some(_) if self.mode == DataSession::DangerAny => return true,
            Some(id) => id,
        };
        let deadline = Instant::now() + wait;
        loop {
            if self.sessions.siblings(self.id, other) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl fmt::Debug for BoundTicketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundTicketer")
            .field("session", &self.id)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl ProducesTickets for BoundTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.keys.lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut sealed = Vec::with_capacity(SESSION_ID_LEN + plain.len());
        sealed.extend_from_slice(&self.id.to_be_bytes());
        sealed.extend_from_slice(plain);
        self.keys.encrypt(&sealed)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let plain = self.keys.decrypt(cipher)?;
        let (id, state) = plain.split_at_checked(SESSION_ID_LEN)?;
        let id = u64::from_be_bytes(id.try_into().ok()?);
        let ours = id == self.id
            || match self.mode {
                DataSession::Own => false,
                DataSession::SameUser => self.sessions.same_address(self.id, id),
                DataSession::DangerAny => true,
            };
        if !ours {
            return None;
        }
        *self.resumed_from() = Some(id);
        Some(state.to_vec())
    }
}

/// One control connection's TLS configurations.
pub(crate) struct SessionTls {
    id: u64,
    sessions: Arc<Registry>,
    /// Checks which control connection a data connection's session came from.
    pub(crate) binding: Arc<BoundTicketer>,
    pub(crate) control: Arc<ServerConfig>,
    /// Made on first use (most idle sessions never open a data connection); see [`SessionTls::download`].
    download: OnceLock<Arc<ServerConfig>>,
    /// Made on first use; see [`SessionTls::upload`].
    upload: OnceLock<Arc<ServerConfig>>,
}

impl SessionTls {
    /// The configuration for data connections the client reads (RETR, LIST, NLST, MLSD): one replacement
    /// ticket.
    pub(crate) fn download(&self) -> &Arc<ServerConfig> {
        self.download.get_or_init(|| self.data_config(DOWNLOAD_TICKETS))
    }

    /// The configuration for data connections the client writes (STOR, APPE, STOU): no tickets.
    pub(crate) fn upload(&self) -> &Arc<ServerConfig> {
        self.upload.get_or_init(|| self.data_config(0))
    }

    /// The control configuration (same certificate, session cache and ticketer) sending `tickets`.
    fn data_config(&self, tickets: usize) -> Arc<ServerConfig> {
        let mut config = ServerConfig::clone(&self.control);
        config.send_tls13_tickets = tickets;
        Arc::new(config)
    }

    /// Records who is logged in on this control connection (for sibling resumption).
    pub(crate) fn set_user(&self, user: Option<&str>) {
        self.sessions.set_user(self.id, user);
    }
}

impl Drop for SessionTls {
    fn drop(&mut self) {
        self.sessions.close(self.id);
    }
}

impl fmt::Debug for SessionTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionTls(..)")
    }
}

/// True when `conn`'s handshake resumed a session. With [`SessionTls`], a resumed data connection proves
/// that its client holds this control connection's TLS session.
pub(crate) fn resumed(conn: &rustls::ServerConnection) -> bool {
    conn.handshake_kind() == Some(HandshakeKind::Resumed)
}

/// Formats a SHA-256 fingerprint as colon-separated upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    colon_hex(&Sha256::digest(der))
}

fn colon_hex(digest: &[u8]) -> String {
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

fn certified_key(identity: &PemIdentity, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&identity.cert)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(&identity.key).map_err(|e| TlsError::NoKey(e.to_string()))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch,
        e => TlsError::Rejected(e),
    })
}

/// The certificate in force, swappable at runtime.
#[derive(Debug)]
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl CurrentCert {
    fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // Any SNI is accepted: one certificate serves every name the server is reached by.
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cipher_suites_are_aead_with_aes_128_gcm_preferred() {
        let tls = Tls::new(&PemIdentity::self_signed(vec!["localhost".into()]).unwrap()).unwrap();
        let names: Vec<String> = tls
            .provider
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(
            names.first().map(String::as_str),
            Some("TLS13_AES_128_GCM_SHA256"),
            "{names:?}"
        );
        assert!(tls.base.ignore_client_order);
        for n in &names {
            assert!(
                n.contains("GCM") || n.contains("CHACHA20_POLY1305"),
                "non-AEAD suite {n}"
            );
            assert!(
                n.starts_with("TLS13_") || n.contains("ECDHE"),
                "suite without forward secrecy {n}"
            );
        }
    }

    #[test]
    fn self_signed_identity_loads_and_reloads_with_a_new_fingerprint() {
        let a = PemIdentity::self_signed(vec!["localhost".into()]).unwrap();
        let tls = Tls::new(&a).unwrap();
        let fp = tls.fingerprint();
        assert_eq!(fp.len(), 32 * 3 - 1);
        let b = PemIdentity::self_signed(vec!["localhost".into()]).unwrap();
        tls.reload(&b).unwrap();
        assert_ne!(tls.fingerprint(), fp);
        // A broken identity is refused and the current one stays.
        let broken = PemIdentity {
            cert: a.cert.clone(),
            key: b.key.clone(),
        };
        let current = tls.fingerprint();
        assert!(tls.reload(&broken).is_err());
        assert_eq!(tls.fingerprint(), current);
        assert!(matches!(
            Tls::new(&PemIdentity {
                cert: b"not pem".to_vec(),
                key: b.key
            }),
            Err(TlsError::NoCertificate)
        ));
    }

    #[test]
    fn session_configs_share_only_their_own_ticket_key() {
        let tls = Tls::new(&PemIdentity::self_signed(vec!["localhost".into()]).unwrap()).unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = tls.session(ip, DataSession::Own);
        let b = tls.session(ip, DataSession::Own);
        for data in [a.download(), a.upload()] {
            assert!(Arc::ptr_eq(&a.control.ticketer, &data.ticketer));
            assert!(Arc::ptr_eq(&a.control.session_storage, &data.session_storage));
        }
        assert!(!Arc::ptr_eq(&a.control.ticketer, &b.control.ticketer));
        // A ticket of one control connection is refused by another's ticketer.
        let ticket = a.control.ticketer.encrypt(b"state").unwrap();
        assert_eq!(
            a.download().ticketer.decrypt(&ticket).as_deref(),
            Some(&b"state"[..])
        );
        assert_eq!(b.download().ticketer.decrypt(&ticket), None);
        assert!(!Arc::ptr_eq(
            &a.control.session_storage,
            &b.control.session_storage
        ));
        assert_eq!(a.upload().send_tls13_tickets, 0);
        assert_eq!(a.download().send_tls13_tickets, 1);
        assert!(a.control.send_tls13_tickets > 1);
    }

    #[test]
    fn closed_connections_are_forgotten_after_the_grace_period_only() {
        let registry = Registry::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for id in 0..1000 {
            registry.open(id, ip);
            registry.close(id);
        }
        registry.close(7); // closing twice changes nothing
        registry.open(1000, ip);
        // All closed within the grace period: still known, as siblings may resume their tickets.
        assert_eq!(registry.len(), 1001);
        assert!(registry.same_address(1000, 999));
        // Once the grace period is over, each is dropped, and only those: the open one stays.
        let later = Instant::now() + SIBLING_GRACE + Duration::from_secs(1);
        registry.lock().expire(later);
        assert_eq!(registry.len(), 1);
        assert!(registry.lock().closed.is_empty());
        assert!(!registry.same_address(1000, 999));
        registry.close(1000);
        registry.lock().expire(Instant::now());
        assert_eq!(registry.len(), 1);
    }

    #[tokio::test]
    async fn sibling_tickets_need_same_user_mode_the_same_user_and_the_same_address() {
        let tls = Tls::new(&PemIdentity::self_signed(vec!["localhost".into()]).unwrap()).unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other_ip: IpAddr = "192.0.2.2".parse().unwrap();
        let a = tls.session(ip, DataSession::SameUser);
        let b = tls.session(ip, DataSession::SameUser);
        let strict = tls.session(ip, DataSession::Own);
        let far = tls.session(other_ip, DataSession::SameUser);
        let any = tls.session(other_ip, DataSession::DangerAny);
        let ticket = a.control.ticketer.encrypt(b"state").unwrap();
        let short = Duration::from_millis(50);
        // Same address: the handshake may resume, but nobody is logged in yet, so it is not confirmed.
        b.binding.clear();
        assert!(b.upload().ticketer.decrypt(&ticket).is_some());
        assert!(!b.binding.confirm(short).await);
        // In `own` mode, or from another address, the ticket does not even decrypt.
        assert_eq!(strict.upload().ticketer.decrypt(&ticket), None);
        assert_eq!(far.upload().ticketer.decrypt(&ticket), None);
        // `danger_any`: any control connection's ticket, whoever and wherever.
        any.binding.clear();
        assert!(any.upload().ticketer.decrypt(&ticket).is_some());
        assert!(any.binding.confirm(short).await);
        for s in [&a, &b, &strict, &far] {
            s.set_user(Some("alice"));
        }
        assert!(b.upload().ticketer.decrypt(&ticket).is_some());
        assert!(b.binding.confirm(short).await);
        // Own tickets are always confirmed; a different user is not a sibling.
        let own = b.control.ticketer.encrypt(b"mine").unwrap();
        assert!(b.upload().ticketer.decrypt(&own).is_some());
        assert!(b.binding.confirm(short).await);
        b.set_user(Some("bob"));
        assert!(b.upload().ticketer.decrypt(&ticket).is_some());
        assert!(!b.binding.confirm(short).await);
        b.set_user(Some("alice"));
        // A sibling that logs in while the data connection waits is confirmed.
        a.set_user(None);
        assert!(b.upload().ticketer.decrypt(&ticket).is_some());
        let sessions = Arc::clone(&a.sessions);
        let a_id = a.id;
        let login = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            sessions.set_user(a_id, Some("alice"));
        });
        assert!(b.binding.confirm(Duration::from_secs(2)).await);
        login.await.unwrap();
        // A closed sibling's tickets stay good for the grace period.
        drop(a);
        assert!(b.upload().ticketer.decrypt(&ticket).is_some());
        assert!(b.binding.confirm(short).await);
        // Garbage and truncated tickets are refused.
        assert_eq!(b.upload().ticketer.decrypt(b"short"), None);
        assert_eq!(b.upload().ticketer.decrypt(&ticket[..ticket.len() - 1]), None);
    }
}
