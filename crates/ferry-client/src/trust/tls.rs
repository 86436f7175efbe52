//! TLS for FTPS: a rustls client configuration per control connection (so its data connections resume
//! the control connection's session), with a certificate verifier that applies [`super::TrustOptions`].

use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{append_line, Fingerprint, TrustOptions};
use crate::error::{Error, Result};

/// The TLS versions a control connection offers.
///
/// FTPS needs one resumption of the control connection's session per data connection (servers refuse
/// data connections that do not resume it). A TLS 1.2 session can be resumed any number of times; a
/// TLS 1.3 ticket only once in rustls, and servers rightly send no new ticket on a connection the client
/// only writes to, so a session of uploads over TLS 1.3 runs out of tickets after the few sent at login.
/// ferry therefore offers TLS 1.2 first and TLS 1.3 only to servers that refuse 1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersions {
    /// TLS 1.2 only (ECDHE key exchange and AEAD ciphers only, as rustls offers them).
    Tls12,
    /// TLS 1.3 and 1.2 (the server chooses, so 1.3 where it has it).
    Tls13,
}

static TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
static TLS13_AND_12: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A TLS client configuration for one control connection and its data connections.
#[derive(Debug, Clone)]
pub struct TlsContext {
    /// The rustls configuration (its session cache is shared by this connection's data connections only).
    pub config: Arc<rustls::ClientConfig>,
    /// The name presented and verified.
    pub server_name: ServerName<'static>,
    verifier: Arc<Verifier>,
}

impl TlsContext {
    /// A fresh context for `host:port` (a new session cache).
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] for a host that is not a valid DNS name or IP address, [`Error::Tls`] when no
    /// protocol version can be configured.
    pub fn new(host: &str, port: u16, trust: &TrustOptions) -> Result<TlsContext> {
        Self::with_versions(host, port, trust, TlsVersions::Tls13)
    }

    /// A fresh context for `host:port` offering `versions`.
    ///
    /// # Errors
    ///
    /// As [`TlsContext::new`].
    pub fn with_versions(
        host: &str,
        port: u16,
        trust: &TrustOptions,
        versions: TlsVersions,
    ) -> Result<TlsContext> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(Verifier {
            webpki: system_verifier(&provider),
            provider: provider.clone(),
            trust: trust.clone(),
            key: format!("{host}:{port}"),
            refusal: Mutex::new(None),
        });
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(match versions {
                TlsVersions::Tls12 => TLS12_ONLY,
                TlsVersions::Tls13 => TLS13_AND_12,
            })
            .map_err(|e| Error::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"ftp".to_vec()];
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|_| Error::Usage(format!("`{host}` is not a valid host name for TLS")))?;
        Ok(TlsContext {
            config: Arc::new(config),
            server_name,
            verifier,
        })
    }

    /// Maps a handshake failure to an error: a trust refusal (unknown or refused), else a TLS error.
    pub fn handshake_error(&self, what: &str, e: std::io::Error) -> Error {
        match self.verifier.refusal.lock().ok().and_then(|mut r| r.take()) {
            Some((msg, true)) => Error::Unknown(msg),
            Some((msg, false)) => Error::Trust(msg),
            None => Error::Tls(format!("{what}: {e}")),
        }
    }
}

/// The system roots, loaded once; `None` when there are none (then only pins can be trusted).
fn system_verifier(provider: &Arc<CryptoProvider>) -> Option<Arc<WebPkiServerVerifier>> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        let mut store = RootCertStore::empty();
        let loaded = rustls_native_certs::load_native_certs();
        let _ = store.add_parsable_certificates(loaded.certs);
        Arc::new(store)
    });
    if roots.is_empty() {
        return None;
    }
    WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .ok()
}

#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    trust: TrustOptions,
    /// `host:port`, the key in the known_certs file.
    key: String,
    /// Why the last certificate was refused, for the error message, and whether it is merely unknown.
    refusal: Mutex<Option<(String, bool)>>,
}

impl Verifier {
    fn refuse(&self, msg: String) -> rustls::Error {
        self.refuse_as(msg, false)
    }

    fn refuse_as(&self, msg: String, unknown: bool) -> rustls::Error {
        if let Ok(mut r) = self.refusal.lock() {
            *r = Some((msg.clone(), unknown));
        }
        rustls::Error::General(msg)
    }

    fn pinned(&self) -> Option<Fingerprint> {
        let path = self.trust.known_certs.as_ref()?;
        let text = std::fs::read_to_string(path).ok()?;
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(k, _)| *k == self.key)
            .filter_map(|(_, fp)| Fingerprint::parse(fp))
            .last()
    }

    fn check_pins(
        &self,
        fp: &Fingerprint,
        system_error: Option<String>,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let why = system_error.unwrap_or_else(|| "it is not signed by a trusted authority".into());
        match self.pinned() {
            Some(old) if old == *fp => Ok(ServerCertVerified::assertion()),
            Some(old) => Err(self.refuse(format!(
                "the TLS certificate of {} has CHANGED: pinned {old}, now offered {fp}. This may be an attack; \
                 if the change is expected, remove the line for {} from {}",
                self.key,
                self.key,
                self.known_certs_shown()
            ))),
            None if self.trust.accept_first_contact(&format!(
                "the TLS certificate of {} is not signed by an authority this system trusts ({why}); its \
                 fingerprint is {fp}",
                self.key
            )) =>
            {
                let path = self.trust.known_certs.as_ref().ok_or_else(|| {
                    self.refuse("--trust-on-first-use needs a config dir to pin certificates in (set HOME or XDG_CONFIG_HOME)".into())
                })?;
                append_line(path, &format!("{} {fp}", self.key)).map_err(|e| {
                    self.refuse(format!("cannot pin the certificate in {}: {e}", path.display()))
                })?;
                Ok(ServerCertVerified::assertion())
            }
            None => Err(self.refuse_as(format!(
                "the TLS certificate of {} is not trusted ({why}); its fingerprint is {fp}. If that is the \
                 server's certificate, pass --pin {fp} or --trust-on-first-use to pin it in {}",
                self.key,
                self.known_certs_shown()
            ), true)),
        }
    }

    fn known_certs_shown(&self) -> String {
        self.trust
            .known_certs
            .as_ref()
            .map_or_else(|| "the known_certs file".into(), |p| p.display().to_string())
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.trust.insecure {
            return Ok(ServerCertVerified::assertion());
        }
        let fp = Fingerprint::of(end_entity.as_ref());
        if let Some(pin) = &self.trust.pin {
            if *pin == fp {
                return Ok(ServerCertVerified::assertion());
            }
            return Err(self.refuse(format!(
                "the TLS certificate of {} is {fp}, which does not match --pin {pin}",
                self.key
            )));
        }
        let system = match &self.webpki {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            None => Err(rustls::Error::General("no system root certificates found".into())),
        };
        match system {
            Ok(ok) => Ok(ok),
            Err(e) => self.check_pins(&fp, Some(e.to_string())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
