//! FTPS: certificates, the shared TLS settings, and the per-session TLS configurations that bind every
//! data connection to its own control connection.
//!
//! # How data connections are bound to their control connection
//!
//! Each control connection that starts TLS gets its own pair of rustls configurations (see
//! [`Tls::session`]). The pair shares a session cache and a ticket key that exist only for that control
//! connection: nobody else can produce a ticket or session ID that it accepts. A data connection's handshake
//! can therefore only be *resumed* if the client carries over the TLS session of this very control
//! connection (or of one of its earlier data connections); a connection from anyone else, even another
//! logged-in client with its own TLS session, gets a full handshake, and [`require_resumed`] turns that into
//! `522`. This is the defence against passive-port theft that vsftpd's `require_ssl_reuse` provides, without
//! a process-wide cache that any client could populate.
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

use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::{HandshakeKind, ServerConfig};
use sha2::{Digest, Sha256};

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
    /// rustls refused the certificate or key (mismatch, unsupported algorithm).
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
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
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

    /// A fresh pair of configurations for one control connection and its data connections, sharing a
    /// session cache and ticket key that exist only for this control connection.
    pub(crate) fn session(&self) -> Result<SessionTls, TlsError> {
        let mut control = self.base.clone();
        control.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
        control.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()?;
        control.send_tls13_tickets = CONTROL_TICKETS;
        let mut download = control.clone();
        download.send_tls13_tickets = DOWNLOAD_TICKETS;
        let mut upload = control.clone();
        upload.send_tls13_tickets = 0;
        Ok(SessionTls {
            control: Arc::new(control),
            download: Arc::new(download),
            upload: Arc::new(upload),
        })
    }
}

/// One control connection's TLS configurations.
#[derive(Clone)]
pub(crate) struct SessionTls {
    pub(crate) control: Arc<ServerConfig>,
    /// Data connections the client reads (RETR, LIST, NLST, MLSD).
    pub(crate) download: Arc<ServerConfig>,
    /// Data connections the client writes (STOR, APPE, STOU): no tickets.
    pub(crate) upload: Arc<ServerConfig>,
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
    let digest = Sha256::digest(der);
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
    Ok(CertifiedKey::from_der(chain, key, provider)?)
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
        let a = tls.session().unwrap();
        let b = tls.session().unwrap();
        for data in [&a.download, &a.upload] {
            assert!(Arc::ptr_eq(&a.control.ticketer, &data.ticketer));
            assert!(Arc::ptr_eq(&a.control.session_storage, &data.session_storage));
        }
        assert!(!Arc::ptr_eq(&a.control.ticketer, &b.control.ticketer));
        assert!(!Arc::ptr_eq(
            &a.control.session_storage,
            &b.control.session_storage
        ));
        assert_eq!(a.upload.send_tls13_tickets, 0);
        assert_eq!(a.download.send_tls13_tickets, 1);
        assert!(a.control.send_tls13_tickets > 1);
    }
}
