//! The SSH side: russh settings, one handler per connection (authentication, channels, requests),
//! and the per-connection task with its limits and timeouts.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferry_auth::{Password, User};
use russh::keys::{Algorithm, EcdsaCurve, HashAlg};
use russh::server::{Auth, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{cipher, kex, mac, Channel, ChannelId, Disconnect, MethodKind, MethodSet, Preferred, SshId};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, field, info, info_span, warn, Instrument};

use crate::keys::key_base64;
use crate::limits::MAX_SFTP_CHANNELS;
use crate::sftp::{self, Ctx};
use crate::{LoginOutcome, Server};

/// The identification string sent to clients (RFC 4253 §4.2); no version, to say little.
const SERVER_ID: &str = "SSH-2.0-ferry";
/// Flow-control window per channel: large enough to keep a fast link busy with 64 outstanding
/// 256 KiB SFTP writes, small enough to bound the memory a client can fill.
const WINDOW_SIZE: u32 = 16 * 1024 * 1024;
/// Minimum time a failed authentication takes (russh pads rejections to it).
const AUTH_REJECTION_TIME: Duration = Duration::from_millis(500);

/// Told to anyone who asks for a shell or a command, including legacy `scp -O` (`scp -t`/`-f`).
const NO_EXEC: &str = "ferry: this server offers SFTP only; shells and commands are disabled.\r\n";
const NO_LEGACY_SCP: &str = "ferry: the legacy SCP protocol is not supported; use scp without -O \
     (OpenSSH 9.0 and later use SFTP by default), or sftp.\r\n";

/// Modern algorithms only: curve25519 (and the ML-KEM hybrid) key exchange with strict KEX
/// (Terrapin, CVE-2023-48795), AEAD ciphers first, CTR only with SHA-2 MACs, no SHA-1
/// anywhere, no CBC, no compression.
pub(crate) fn russh_config(config: &crate::Config) -> russh::server::Config {
    let preferred = Preferred {
        kex: Cow::Owned(vec![
            kex::MLKEM768X25519_SHA256,
            kex::CURVE25519,
            kex::CURVE25519_PRE_RFC_8731,
            kex::EXTENSION_SUPPORT_AS_SERVER,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
        ]),
        key: Cow::Owned(vec![
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP384,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP521,
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ]),
        cipher: Cow::Owned(vec![
            cipher::CHACHA20_POLY1305,
            cipher::AES_128_GCM,
            cipher::AES_256_GCM,
            cipher::AES_256_CTR,
            cipher::AES_128_CTR,
        ]),
        // Non-ETM SHA-2 MACs for CTR ciphers too: libssh2 before 1.11 (curl's SFTP) has no ETM.
        mac: Cow::Owned(vec![
            mac::HMAC_SHA256_ETM,
            mac::HMAC_SHA512_ETM,
            mac::HMAC_SHA256,
            mac::HMAC_SHA512,
        ]),
        ..Preferred::default()
    };
    russh::server::Config {
        server_id: SshId::Standard(Cow::Borrowed(SERVER_ID)),
        methods: MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..]),
        auth_rejection_time: AUTH_REJECTION_TIME,
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: config.host_keys.clone(),
        window_size: WINDOW_SIZE,
        preferred,
        max_auth_attempts: config.max_auth_attempts,
        inactivity_timeout: Some(config.idle_timeout),
        nodelay: true,
        ..russh::server::Config::default()
    }
}

/// Runs one connection to completion.
pub(crate) async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    server: Arc<Server>,
    mut stop: watch::Receiver<bool>,
) {
    let span = info_span!("ssh", peer = %peer, user = field::Empty);
    async move {
        let ip = canonical(peer);
        let Some(slot) = server.tracker.acquire(ip) else {
            info!("connection refused by limit");
            return;
        };
        if !server.guard.allow(ip) {
            info!("connection refused by the login guard");
            return;
        }
        info!("connected");
        let _observed =
            ferry_observe::SessionGuard::open(server.observer.get().cloned(), ferry_observe::Protocol::Sftp);
        let authenticated = Arc::new(AtomicBool::new(false));
        let handler = Connection {
            server: Arc::clone(&server),
            ip,
            user: None,
            authenticated: Arc::clone(&authenticated),
            channels: HashMap::new(),
            sftp_sessions: Arc::new(AtomicUsize::new(0)),
        };
        // The login timeout covers the identification exchange too: a client that sends nothing
        // is dropped as well.
        let deadline = tokio::time::Instant::now() + server.config.login_timeout;
        let started = russh::server::run_stream(Arc::clone(&server.ssh), stream, handler);
        let session = match tokio::time::timeout_at(deadline, started).await {
            Ok(Ok(session)) => session,
            Ok(Err(e)) => {
                debug!(error = %e, "SSH handshake failed");
                return;
            }
            Err(_) => {
                info!("login timeout before the SSH handshake");
                return;
            }
        };
        let handle = session.handle();
        // Fires at the login timeout unless the client has logged in by then.
        let login_deadline = async move {
            tokio::time::sleep_until(deadline).await;
            if authenticated.load(Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
        };
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await.map(drop);
        };
        tokio::pin!(session, login_deadline, stopped);
        tokio::select! {
            result = &mut session => {
                if let Err(e) = result {
                    debug!(error = %e, "connection ended with an error");
                }
            }
            () = &mut login_deadline => {
                info!("login timeout");
                let _ = handle
                    .disconnect(Disconnect::ByApplication, "login timeout".into(), String::new())
                    .await;
            }
            () = &mut stopped => {
                let _ = handle
                    .disconnect(Disconnect::ByApplication, "server shutting down".into(), String::new())
                    .await;
            }
        }
        drop(slot);
        info!("disconnected");
    }
    .instrument(span)
    .await
}

/// IPv4-mapped IPv6 addresses count as IPv4 for limits and the guard.
fn canonical(peer: SocketAddr) -> std::net::IpAddr {
    match peer.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    }
}

/// One SSH connection's state.
struct Connection {
    server: Arc<Server>,
    ip: std::net::IpAddr,
    /// Set once authentication succeeded.
    user: Option<User>,
    authenticated: Arc<AtomicBool>,
    /// Session channels opened but not yet given a subsystem.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// SFTP sessions running on this connection.
    sftp_sessions: Arc<AtomicUsize>,
}

impl Connection {
    fn outcome(&mut self, user: &str, found: Result<Option<User>, ferry_auth::Error>) -> Auth {
        match found {
            Ok(Some(u)) => {
                tracing::Span::current().record("user", u.name.as_str());
                info!(user = %u.name, "login");
                self.server.guard.record(self.ip, &u.name, LoginOutcome::Success);
                self.user = Some(u);
                Auth::Accept
            }
            Ok(None) => {
                info!(user, "login failed");
                self.server.guard.record(self.ip, user, LoginOutcome::Failure);
                Auth::reject()
            }
            Err(e) => {
                warn!(error = %e, "user database error during login");
                Auth::reject()
            }
        }
    }

    /// Replies to a request for a shell or command with an explanation and exit status 1.
    fn refuse_exec(
        &mut self,
        channel: ChannelId,
        message: &str,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        self.channels.remove(&channel);
        session.channel_success(channel)?;
        session.extended_data(channel, 1, bytes::Bytes::copy_from_slice(message.as_bytes()))?;
        session.exit_status_request(channel, 1)?;
        session.eof(channel)?;
        session.close(channel)
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if !self.server.guard.allow(self.ip) {
            return Ok(Auth::reject());
        }
        let password = Password::new(password.to_owned());
        let found = self.server.users.authenticate(user, &password).await;
        Ok(self.outcome(user, found))
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // RSA signatures with SHA-1 (`ssh-rsa`) are refused; rsa-sha2-256/512 are fine.
        if matches!(offer.algorithm, Algorithm::Rsa { hash: None }) || !self.server.guard.allow(self.ip) {
            return Ok(Auth::reject());
        }
        let Some(blob) = key_base64(offer.public_key) else {
            return Ok(Auth::reject());
        };
        match self.server.users.authenticate_key(user, &blob).await {
            Ok(Some(_)) => Ok(Auth::Accept),
            Ok(None) => Ok(Auth::reject()),
            Err(e) => {
                warn!(error = %e, "user database error during key lookup");
                Ok(Auth::reject())
            }
        }
    }

    async fn auth_publickey(&mut self, user: &str, key: VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        if matches!(key.algorithm, Algorithm::Rsa { hash: None }) || !self.server.guard.allow(self.ip) {
            return Ok(Auth::reject());
        }
        let Some(blob) = key_base64(key.public_key) else {
            return Ok(Auth::reject());
        };
        let found = self.server.users.authenticate_key(user, &blob).await;
        Ok(self.outcome(user, found))
    }

    async fn auth_succeeded(&mut self, _session: &mut Session) -> Result<(), Self::Error> {
        self.authenticated.store(true, Ordering::Relaxed);
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let running = self.sftp_sessions.load(Ordering::Relaxed);
        if self.user.is_none() || self.channels.len() + running >= MAX_SFTP_CHANNELS {
            // Dropping the reply handle rejects the channel.
            return Ok(());
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(user), true) = (self.user.clone(), name == "sftp") else {
            info!(subsystem = name, "subsystem refused");
            return session.channel_failure(channel);
        };
        let Some(ch) = self.channels.remove(&channel) else {
            return session.channel_failure(channel);
        };
        let storage = match self.server.storage.scoped(user.home.as_bytes(), true).await {
            Ok(storage) => storage,
            Err(e) => {
                warn!(error = %e, home = %user.home, "cannot open the user's home");
                return session.channel_failure(channel);
            }
        };
        session.channel_success(channel)?;
        info!("SFTP session started");
        let ctx = Arc::new(Ctx::new(storage, user.permissions));
        let running = Arc::clone(&self.sftp_sessions);
        running.fetch_add(1, Ordering::Relaxed);
        let session = async move {
            sftp::run(ch, ctx).await;
            running.fetch_sub(1, Ordering::Relaxed);
        };
        tokio::spawn(session.instrument(tracing::Span::current()));
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data);
        let legacy_scp = command.trim_start().starts_with("scp ");
        info!(command = %command.chars().take(200).collect::<String>(), "exec refused");
        self.refuse_exec(channel, if legacy_scp { NO_LEGACY_SCP } else { NO_EXEC }, session)
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        info!("shell refused");
        self.refuse_exec(channel, NO_EXEC, session)
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }
}
