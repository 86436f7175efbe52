//! The SSH connection under SFTP: host key checked against known_hosts, then authentication: the keys of
//! an SSH agent (if given), key files, then a password.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};

use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::trust::known_hosts::{self, HostKeyStatus};
use crate::trust::TrustOptions;

/// Checks the server's host key; a refusal is kept for the error message.
#[derive(Debug)]
pub(crate) struct HostKeyCheck {
    host: String,
    port: u16,
    trust: TrustOptions,
    refusal: Arc<Mutex<Option<(String, bool)>>>,
}

impl HostKeyCheck {
    fn refuse(&self, msg: String) -> bool {
        self.refuse_as(msg, false)
    }

    fn refuse_as(&self, msg: String, unknown: bool) -> bool {
        if let Ok(mut r) = self.refusal.lock() {
            *r = Some((msg, unknown));
        }
        false
    }

    fn decide(&self, key: &PublicKeyOrCertificate) -> bool {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return self.refuse(format!(
                "{} offered an SSH certificate; only plain host keys are supported",
                self.shown()
            ));
        };
        let Ok(openssh) = key.to_openssh() else {
            return self.refuse("the server's host key cannot be encoded".into());
        };
        let mut fields = openssh.split_whitespace();
        let (Some(kind), Some(b64)) = (fields.next(), fields.next()) else {
            return self.refuse("the server's host key cannot be encoded".into());
        };
        let fp = known_hosts::fingerprint_b64(kind, b64);
        let files = &self.trust.known_hosts;
        let first = files
            .first()
            .map_or_else(|| "known_hosts".into(), |p| p.display().to_string());
        match known_hosts::check(files, &self.host, self.port, kind, b64) {
            HostKeyStatus::Known => true,
            HostKeyStatus::Revoked => self.refuse(format!(
                "the host key of {} ({fp}) is marked @revoked",
                self.shown()
            )),
            HostKeyStatus::Changed(old) => self.refuse(format!(
                "the host key of {} has CHANGED: known {}, now offered {fp}. This may be an attack; if the \
                 change is expected, remove the old line (ssh-keygen -R) from {first}",
                self.shown(),
                old.join(", ")
            )),
            HostKeyStatus::Unknown
                if self.trust.accept_first_contact(&format!(
                    "the host key of {} is not known: {fp}",
                    self.shown()
                )) =>
            {
                match files.first() {
                    Some(file) => match known_hosts::learn(file, &self.host, self.port, kind, b64) {
                        Ok(()) => true,
                        Err(e) => self.refuse(format!("cannot record the host key in {first}: {e}")),
                    },
                    None => self.refuse("--trust-on-first-use needs a known_hosts file (set HOME)".into()),
                }
            }
            HostKeyStatus::Unknown => self.refuse_as(
                format!(
                    "the host key of {} is not known: {fp}. If that is the server's key, pass \
                     --trust-on-first-use to record it in {first}",
                    self.shown()
                ),
                true,
            ),
        }
    }

    fn shown(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Tries the agent's keys (at most [`MAX_AGENT_KEYS`]); `Ok(true)` once one is accepted. `Err` says
/// what was tried, for the error message.
async fn with_agent(handle: &mut Handle<HostKeyCheck>, user: &str, socket: &Path) -> Result<bool, String> {
    use russh::keys::agent::client::AgentClient;
    use russh::keys::agent::AgentIdentity;
    let shown = socket.display();
    let mut agent = AgentClient::connect_uds(socket)
        .await
        .map_err(|e| format!("the SSH agent at {shown} (unreachable: {e})"))?;
    let identities = agent
        .request_identities()
        .await
        .map_err(|e| format!("the SSH agent at {shown} (no key list: {e})"))?;
    let keys: Vec<_> = identities
        .into_iter()
        .filter_map(|id| match id {
            AgentIdentity::PublicKey { key, .. } => Some(key),
            AgentIdentity::Certificate { .. } => None,
        })
        .take(MAX_AGENT_KEYS)
        .collect();
    if keys.is_empty() {
        return Err(format!("the SSH agent at {shown} (it holds no keys)"));
    }
    let n = keys.len();
    for key in keys {
        let hash = if key.algorithm().is_rsa() {
            handle.best_supported_rsa_hash().await.ok().flatten().flatten()
        } else {
            None
        };
        match handle
            .authenticate_publickey_with(user, key, hash, &mut agent)
            .await
        {
            Ok(r) if r.success() => return Ok(true),
            Ok(_) => {}
            // The agent would not sign (locked, or asks for confirmation that was refused).
            Err(e) => return Err(format!("the SSH agent at {shown} (signing failed: {e})")),
        }
    }
    Err(format!("{n} key(s) of the SSH agent at {shown} (not accepted)"))
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(self.decide(key))
    }
}

/// Largest SSH channel data packet the server may send us. russh's default (32 KiB) splits every
/// 32 KiB SFTP DATA reply (32 KiB plus its 13-byte header) into two SSH packets, and each SSH packet
/// costs a decryption, an allocation and a hand-over between tasks; 256 KiB (the packet size every SSH
/// implementation must be able to receive is only 32 KiB, but this is what we accept, and OpenSSH's
/// own limit) carries a whole SFTP reply of up to 255 KiB in one packet.
const MAX_CHANNEL_PACKET: u32 = 256 * 1024;

/// russh's default algorithms (all safe: no SHA-1, no CBC), with the AEAD ciphers ordered by speed on
/// this machine: AES-GCM first where the CPU has AES instructions (there AES-GCM is several times
/// faster than chacha20-poly1305), chacha20-poly1305 first elsewhere. Both are AEAD ciphers with
/// 256-bit keys; AES-128-GCM comes after both. The server picks the first one of ours it supports.
fn preferred() -> russh::Preferred {
    use russh::cipher;
    let aead: &[cipher::Name] = if aes_hardware() {
        &[cipher::AES_256_GCM, cipher::CHACHA20_POLY1305]
    } else {
        &[cipher::CHACHA20_POLY1305, cipher::AES_256_GCM]
    };
    let mut ciphers = aead.to_vec();
    ciphers.extend([
        cipher::AES_128_GCM,
        cipher::AES_256_CTR,
        cipher::AES_192_CTR,
        cipher::AES_128_CTR,
    ]);
    russh::Preferred {
        cipher: std::borrow::Cow::Owned(ciphers),
        ..russh::Preferred::default()
    }
}

/// Whether the CPU has AES instructions (AES-NI with carry-less multiply, or the ARMv8 AES extension).
fn aes_hardware() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// Reads the private key at `path`, decrypting it with `passphrase` when it is protected; `Err` says
/// why it cannot be used (for the authentication error).
fn load_key(
    path: &Path,
    passphrase: Option<&Secret>,
) -> std::result::Result<russh::keys::PrivateKey, String> {
    match russh::keys::load_secret_key(path, None) {
        Ok(key) => Ok(key),
        Err(russh::keys::Error::KeyIsEncrypted) => match passphrase {
            None => Err(
                "passphrase-protected: give its passphrase in $FERRY_KEY_PASSPHRASE, run on a terminal to be asked, or add the key to ssh-agent"
                    .into(),
            ),
            Some(p) => russh::keys::load_secret_key(path, Some(p.expose()))
                .map_err(|_| "passphrase-protected, and the passphrase given does not decrypt it".into()),
        },
        Err(russh::keys::Error::IO(e)) => Err(format!("unreadable: {e}")),
        Err(e) => Err(format!("not a private key this client reads: {e}")),
    }
}

/// Whether the private key file at `path` is passphrase-protected (`false` when it is unreadable or
/// not a key: the login attempt reports that).
pub fn key_is_encrypted(path: &Path) -> bool {
    matches!(
        russh::keys::load_secret_key(path, None),
        Err(russh::keys::Error::KeyIsEncrypted)
    )
}

/// Most agent keys offered: servers count every attempt (OpenSSH's MaxAuthTries is 6), and the key
/// files and the password come after them.
const MAX_AGENT_KEYS: usize = 4;

/// Connects, checks the host key and logs in: the agent's keys, each key in `identities` (a
/// passphrase-protected one decrypted with `passphrase`), then `password` if given.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn connect(
    host: &str,
    port: u16,
    user: &str,
    password: Option<&Secret>,
    identities: &[PathBuf],
    passphrase: Option<&Secret>,
    agent: Option<&Path>,
    trust: &TrustOptions,
    timeout: Duration,
) -> Result<Handle<HostKeyCheck>> {
    let refusal = Arc::new(Mutex::new(None));
    let handler = HostKeyCheck {
        host: host.to_owned(),
        port,
        trust: trust.clone(),
        refusal: refusal.clone(),
    };
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        nodelay: true,
        window_size: 16 * 1024 * 1024,
        maximum_packet_size: MAX_CHANNEL_PACKET,
        preferred: preferred(),
        ..client::Config::default()
    });
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let tcp = crate::ftp::connect_tcp(host, port, timeout).await?;
    let connected = tokio::time::timeout(timeout, client::connect_stream(config, tcp, handler)).await;
    let mut handle = match connected {
        Err(_) => {
            return Err(Error::Timeout {
                what: format!("the SSH handshake with {shown}"),
                secs: timeout.as_secs(),
            })
        }
        Ok(Err(e)) => {
            let refused = refusal.lock().ok().and_then(|mut r| r.take());
            return Err(match refused {
                Some((msg, true)) => Error::Unknown(msg),
                Some((msg, false)) => Error::Trust(msg),
                None => Error::Ssh(format!("connecting to {shown}: {e}")),
            });
        }
        Ok(Ok(h)) => h,
    };
    let auth = async {
        let mut tried = Vec::new();
        if let Some(socket) = agent {
            match with_agent(&mut handle, user, socket).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(why) => tried.push(why),
            }
        }
        for path in identities {
            let key = match load_key(path, passphrase) {
                Ok(key) => key,
                Err(why) => {
                    tried.push(format!("{} ({why})", path.display()));
                    continue;
                }
            };
            let hash = handle.best_supported_rsa_hash().await.ok().flatten().flatten();
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            match handle.authenticate_publickey(user, key).await {
                Ok(r) if r.success() => return Ok(()),
                Ok(_) => tried.push(format!("{} (not accepted)", path.display())),
                Err(e) => return Err(Error::Ssh(format!("public key authentication: {e}"))),
            }
        }
        if let Some(pw) = password {
            match handle.authenticate_password(user, pw.expose()).await {
                Ok(r) if r.success() => return Ok(()),
                Ok(_) => tried.push("the password (not accepted)".into()),
                Err(e) => return Err(Error::Ssh(format!("password authentication: {e}"))),
            }
        }
        if tried.is_empty() {
            tried.push("nothing: no key in ~/.ssh or --identity, and no password".into());
        }
        Err(Error::Auth(format!(
            "as {user} on {shown}; tried {}",
            tried.join(", ")
        )))
    };
    tokio::time::timeout(timeout, auth)
        .await
        .map_err(|_| Error::Timeout {
            what: "SSH authentication".into(),
            secs: timeout.as_secs(),
        })??;
    Ok(handle)
}
