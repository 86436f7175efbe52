//! The SSH side: russh settings, one handler per connection (authentication, channels, requests),
//! and the per-connection task with its limits and timeouts.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferry_admission::{canonical, Attempt, LoginResult, Phase, Refused, Slot, Stop};
use ferry_auth::{AuthOutcome, Password, User};
use ferry_observe::{LoginOutcome, SessionTap};
use ferry_proto::untrusted::Untrusted;
use russh::keys::{Algorithm, EcdsaCurve, HashAlg};
use russh::server::{Auth, Msg, PublicKeyOffer, Response, Session, VerifiedPublicKey};
use russh::{cipher, kex, mac, Channel, ChannelId, Disconnect, MethodKind, MethodSet, Preferred, SshId};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, field, info, info_span, warn, Instrument};

use crate::keys::key_base64;
use crate::limits::{MAX_CHANNEL_PACKET, MAX_SFTP_CHANNELS};
use crate::sftp::{self, Ctx};
use crate::Server;

/// The identification string sent to clients (RFC 4253 §4.2); no version, to say little.
const SERVER_ID: &str = "SSH-2.0-ferry";
/// Flow-control window per channel: large enough to keep a fast link busy with 64 outstanding
/// 256 KiB SFTP writes, small enough to bound the memory a client can fill.
const WINDOW_SIZE: u32 = 16 * 1024 * 1024;
/// Minimum time a rejected public-key query takes (russh pads rejections to it). Failed password,
/// keyboard-interactive and signed public-key attempts take the failed-login delay instead (see
/// `ferry_admission::Admission::login`).
const AUTH_REJECTION_TIME: Duration = Duration::from_millis(100);
/// Time allowed to connect to a port-forwarding target.
const FORWARD_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest forwarding host name logged or looked up.
const MAX_FORWARD_HOST: usize = 255;
/// Time allowed to tell a banned client so before the connection is closed.
const BANNED_NOTICE_TIME: Duration = Duration::from_secs(5);

/// The authentication methods offered, listed in every failure reply (RFC 4252 §5.1).
fn auth_methods() -> MethodSet {
    MethodSet::from(
        &[
            MethodKind::PublicKey,
            MethodKind::Password,
            MethodKind::KeyboardInteractive,
        ][..],
    )
}

/// A failure reply that lists every method still allowed (russh would otherwise drop the method that
/// just failed from the list, and clients stop trying it).
fn reject() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(auth_methods()),
        partial_success: false,
    }
}

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
        methods: auth_methods(),
        auth_rejection_time: AUTH_REJECTION_TIME,
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: config.host_keys.clone(),
        window_size: WINDOW_SIZE,
        maximum_packet_size: MAX_CHANNEL_PACKET,
        preferred,
        // Attempts are counted by `Connection` (russh would count the client's `none` query too, which
        // is not an attempt); 0 turns russh's own count off.
        max_auth_attempts: 0,
        inactivity_timeout: Some(config.idle_timeout),
        nodelay: true,
        ..russh::server::Config::default()
    }
}

/// Runs one connection to completion.
pub(crate) async fn run(mut stream: TcpStream, tcp_peer: SocketAddr, server: Arc<Server>, stop: Stop) {
    // Behind a load balancer the client is the one its PROXY header names (limits, bans, logs).
    let Ok(arrival) = server.admission.arrive(&mut stream, tcp_peer).await else {
        return;
    };
    let peer = arrival.client;
    let span = info_span!("ssh", peer = %peer, via = field::Empty, user = field::Empty);
    if let Some(via) = arrival.via {
        span.record("via", field::display(via));
    }
    async move {
        let ip = canonical(peer.ip());
        let slot = match server.admission.admit(ip).await {
            Ok(slot) => slot,
            Err(Refused::Banned(until)) => {
                info!("connection refused: address banned");
                if let Some(o) = server.observer.get() {
                    o.connection_banned(ferry_observe::Protocol::Sftp);
                }
                tell_banned(stream, &server, until).await;
                return;
            }
            Err(Refused::Limit(refusal)) => {
                info!(reason = refusal.text(), "connection closed");
                return;
            }
        };
        info!("connected");
        let tap = SessionTap::open(
            server.observer.get().cloned(),
            ferry_observe::Protocol::Sftp,
            peer,
        );
        let sftp_contexts: Contexts = Arc::default();
        let authenticated = Arc::new(AtomicBool::new(false));
        let tried_login = Arc::new(AtomicBool::new(false));
        let (goodbye_tx, mut goodbye_rx) = watch::channel(None);
        let handler = Connection {
            server: Arc::clone(&server),
            ip,
            slot,
            user: None,
            authenticated: Arc::clone(&authenticated),
            tried_login: Arc::clone(&tried_login),
            failures: 0,
            goodbye: goodbye_tx,
            channels: HashMap::new(),
            sftp_sessions: Arc::new(AtomicUsize::new(0)),
            tap,
            contexts: Arc::clone(&sftp_contexts),
        };
        // The login timeout covers the identification exchange too: a client that sends nothing
        // is dropped as well.
        let deadline = tokio::time::Instant::now() + server.login_timeout();
        // russh applies its `nodelay` setting only to sockets it accepts itself: without this, Nagle's
        // algorithm holds back the second of two small replies (e.g. a READ's data and the next
        // request's EOF) until the client's delayed ACK, 40 ms per small file.
        let _ = stream.set_nodelay(true);
        let started = russh::server::run_stream(server.ssh_config(), stream, handler);
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
        let logged_in = Arc::clone(&authenticated);
        // Fires at the login timeout unless the client has logged in by then.
        let login_deadline = async move {
            tokio::time::sleep_until(deadline).await;
            if logged_in.load(Ordering::Relaxed) {
                std::future::pending::<()>().await;
            }
        };
        let stopped = drained(stop, sftp_contexts);
        let told_to_go = async move {
            let text = goodbye_rx.wait_for(Option::is_some).await.map(|t| t.clone());
            match text {
                Ok(text) => text,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::pin!(session, login_deadline, stopped, told_to_go);
        let goodbye = tokio::select! {
            result = &mut session => {
                if let Err(e) = result {
                    debug!(error = %e, "connection ended with an error");
                }
                None
            }
            () = &mut login_deadline => {
                info!("login timeout");
                Some("login timeout".to_owned())
            }
            text = &mut stopped => Some(text),
            text = &mut told_to_go => text,
        };
        if let Some(text) = goodbye {
            let _ = handle
                .disconnect(Disconnect::ByApplication, text, String::new())
                .await;
            let _ = tokio::time::timeout(BANNED_NOTICE_TIME, &mut session).await;
        }
        let logged_in = authenticated.load(Ordering::Relaxed);
        server
            .admission
            .left(ip, logged_in, tried_login.load(Ordering::Relaxed))
            .await;
        info!("disconnected");
    }
    .instrument(span)
    .await
}

/// The SFTP contexts of one connection.
type Contexts = Arc<std::sync::Mutex<Vec<std::sync::Weak<Ctx>>>>;

fn lock(c: &Contexts) -> std::sync::MutexGuard<'_, Vec<std::sync::Weak<Ctx>>> {
    c.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether a file is open in one of the connection's SFTP sessions.
fn busy(c: &Contexts) -> bool {
    let mut contexts = lock(c);
    contexts.retain(|w| w.strong_count() > 0);
    contexts
        .iter()
        .filter_map(std::sync::Weak::upgrade)
        .any(|ctx| ctx.busy())
}

/// Completes when the connection must end for a shutdown, with the text the client is told: at once
/// when no file is open; otherwise once every file is closed, or when the grace period ends (an
/// upload not yet closed is then discarded).
async fn drained(mut stop: Stop, contexts: Contexts) -> String {
    stop.draining().await;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while stop.phase() != Phase::Closing && busy(&contexts) {
        tokio::select! {
            _ = stop.next() => {}
            _ = tick.tick() => {}
        }
    }
    if busy(&contexts) {
        info!("shutdown grace period over: disconnecting with a file still open");
        "server shutting down; unfinished transfer aborted".to_owned()
    } else {
        "server shutting down".to_owned()
    }
}

/// What a banned client is told: until when, in UTC.
fn banned_text(until: SystemTime) -> String {
    format!(
        "ferry: your address is banned until {} after too many failed logins; try again later",
        ferry_auth::defender::utc(until)
    )
}

/// Tells a banned client why it is refused: an SSH disconnect message, which russh sends once the key
/// exchange is done (no authentication is offered), then the connection is closed; a client that does
/// not complete the key exchange is closed after [`BANNED_NOTICE_TIME`].
async fn tell_banned(stream: TcpStream, server: &Server, until: SystemTime) {
    let notice = async {
        let session = russh::server::run_stream(server.ssh_config(), stream, Banned).await?;
        let _ = session
            .handle()
            .disconnect(Disconnect::ByApplication, banned_text(until), String::new())
            .await;
        session.await
    };
    let _ = tokio::time::timeout(BANNED_NOTICE_TIME, notice).await;
}

/// The handler of a banned client's connection, which is told so and closed at once.
struct Banned;

impl russh::server::Handler for Banned {
    type Error = russh::Error;

    async fn auth_password(&mut self, _user: &str, _password: &str) -> Result<Auth, Self::Error> {
        Ok(reject())
    }
}

/// One SSH connection's state.
struct Connection {
    server: Arc<Server>,
    ip: IpAddr,
    /// The connection's place in the connection limits (pending until login).
    slot: Slot,
    /// Set once authentication succeeded.
    user: Option<User>,
    authenticated: Arc<AtomicBool>,
    /// The client sent an authentication request (only then does leaving before login score).
    tried_login: Arc<AtomicBool>,
    /// Failed authentication attempts so far (every rejected request but `none`).
    failures: usize,
    /// Set when the connection must end during authentication (the address was banned, or too many
    /// attempts): the client is told this text in a disconnect message.
    goodbye: watch::Sender<Option<String>>,
    /// Session channels opened but not yet given a subsystem.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// SFTP sessions running on this connection.
    sftp_sessions: Arc<AtomicUsize>,
    /// Reports the session's events.
    tap: Arc<SessionTap>,
    /// The SFTP sessions' contexts, to see whether a file is open when the server shuts down.
    contexts: Contexts,
}

impl Connection {
    /// One scored authentication attempt (password, keyboard-interactive, or a signed public key)
    /// through the admission gate: a failure is scored and answered after the failed-login delay.
    async fn attempt<F, Fut>(&mut self, user: &str, method: &'static str, check: F) -> Auth
    where
        F: FnOnce(ferry_auth::UserStore) -> Fut,
        Fut: std::future::Future<Output = Result<AuthOutcome, ferry_auth::Error>>,
    {
        self.tried_login.store(true, Ordering::Relaxed);
        let users = self.server.users.clone();
        // From the credentials' arrival to the verdict, for the login latency metric.
        let received = std::time::Instant::now();
        let verified = std::sync::OnceLock::new();
        let verified_at = &verified;
        let result = self
            .server
            .admission
            .login(self.ip, || async move {
                let attempt = match check(users).await {
                    Ok(AuthOutcome::Accepted(u)) => Attempt::Accepted(u),
                    Ok(outcome) => Attempt::Failed(outcome),
                    Err(e) => {
                        warn!(error = %e, "user database error during login");
                        Attempt::Error
                    }
                };
                let _ = verified_at.set(received.elapsed());
                attempt
            })
            .await;
        let verification = verified.get().copied();
        match &result {
            LoginResult::Accepted(u) => {
                self.tap
                    .login_result(&u.name, method, LoginOutcome::Ok, verification)
            }
            LoginResult::Refused {
                already_banned: true, ..
            } => self.tap.login_result(user, method, LoginOutcome::Banned, None),
            LoginResult::Refused { banned, .. } => {
                self.tap
                    .login_result(user, method, LoginOutcome::Failed, verification);
                if let Some(until) = banned {
                    self.tap.banned(*until);
                }
            }
        }
        match result {
            LoginResult::Accepted(u) => {
                if let Err(refusal) = self.server.admission.logged_in(&mut self.slot, &u.name).await {
                    // The credentials were right: not scored as a guesser leaving.
                    self.tried_login.store(false, Ordering::Relaxed);
                    self.goodbye.send_replace(Some(refusal.text().to_owned()));
                    return reject();
                }
                tracing::Span::current().record("user", field::display(Untrusted::str(&u.name)));
                info!(user = %Untrusted::str(&u.name), "login");
                self.user = Some(u);
                Auth::Accept
            }
            LoginResult::Refused { banned, .. } => {
                info!(user = %Untrusted::str(user), "login failed");
                match banned {
                    Some(until) => {
                        self.goodbye.send_replace(Some(banned_text(until)));
                    }
                    None => self.failed(),
                }
                reject()
            }
        }
    }

    /// Counts a failed attempt; past `max_auth_attempts` the connection is told so and closed (after
    /// the failure reply, so every request is answered).
    fn failed(&mut self) {
        self.failures += 1;
        if self.failures >= self.server.config.max_auth_attempts {
            info!(attempts = self.failures, "too many authentication attempts");
            self.goodbye
                .send_replace(Some("Too many authentication attempts".to_owned()));
        }
    }

    /// Whether the address is banned now (further attempts are refused without a check).
    fn is_banned(&self) -> bool {
        self.server.admission.banned(self.ip).is_some()
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

    /// The client names a user (like FTP's USER): leaving without logging in now scores.
    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        self.tried_login.store(true, Ordering::Relaxed);
        Ok(reject())
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let name = user.to_owned();
        let password = Password::new(password.to_owned());
        Ok(self
            .attempt(user, "password", |users| async move {
                users.authenticate(&name, &password).await
            })
            .await)
    }

    /// Keyboard-interactive (RFC 4256) as one password prompt, for clients that prefer it.
    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        self.tried_login.store(true, Ordering::Relaxed);
        let Some(mut response) = response else {
            return Ok(Auth::Partial {
                name: Cow::Borrowed(""),
                instructions: Cow::Borrowed(""),
                prompts: Cow::Owned(vec![(Cow::Borrowed("Password: "), false)]),
            });
        };
        let answer = response.next().unwrap_or_default();
        let name = user.to_owned();
        let password = Password::new(String::from_utf8_lossy(&answer).into_owned());
        Ok(self
            .attempt(user, "keyboard-interactive", |users| async move {
                users.authenticate(&name, &password).await
            })
            .await)
    }

    /// A query whether a key would do (no signature yet): answered, not scored as a failure.
    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        self.tried_login.store(true, Ordering::Relaxed);
        // RSA signatures with SHA-1 (`ssh-rsa`) are refused; rsa-sha2-256/512 are fine.
        let usable = !matches!(offer.algorithm, Algorithm::Rsa { hash: None }) && !self.is_banned();
        let found = match key_base64(offer.public_key) {
            Some(blob) if usable => self.server.users.authenticate_key(user, &blob).await,
            _ => Ok(AuthOutcome::WrongCredentials),
        };
        match found {
            Ok(AuthOutcome::Accepted(_)) => Ok(Auth::Accept),
            Ok(_) => {
                self.failed();
                Ok(reject())
            }
            Err(e) => {
                warn!(error = %e, "user database error during key lookup");
                Ok(reject())
            }
        }
    }

    async fn auth_publickey(&mut self, user: &str, key: VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        if matches!(key.algorithm, Algorithm::Rsa { hash: None }) {
            return Ok(reject());
        }
        let Some(blob) = key_base64(key.public_key) else {
            return Ok(reject());
        };
        let name = user.to_owned();
        Ok(self
            .attempt(user, "publickey", |users| async move {
                users.authenticate_key(&name, &blob).await
            })
            .await)
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

    /// Local port forwarding (`ssh -L`, RFC 4254 §7.2): only to a target in the user's permit list
    /// (`ferry user forward add`, OpenSSH `PermitOpen` semantics; none by default), counted in the
    /// connection limits like a connection from the client's address, logged with user and target.
    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Dropping `reply` refuses the channel.
        let Some(user) = &self.user else {
            return Ok(());
        };
        let name = user.name.clone();
        let host: String = host_to_connect.chars().take(MAX_FORWARD_HOST).collect();
        let target = format!("{}:{port_to_connect}", host.escape_debug());
        let permitted = match self.server.users.may_forward(&name, &host, port_to_connect).await {
            Ok(permitted) => permitted,
            Err(e) => {
                warn!(error = %e, "user database error during a forwarding check");
                false
            }
        };
        let port = u16::try_from(port_to_connect).ok().filter(|p| *p > 0);
        let (true, Some(port)) = (permitted, port) else {
            info!(user = %name, %target, "port forwarding refused: not in the user's permit list");
            return Ok(());
        };
        let mut slot = match self.server.admission.admit(self.ip).await {
            Ok(slot) => slot,
            Err(_) => {
                info!(user = %name, %target, "port forwarding refused by a connection limit");
                return Ok(());
            }
        };
        slot.logged_in();
        let forward = async move {
            let connect =
                tokio::time::timeout(FORWARD_CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port)));
            let mut stream = match connect.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    info!(user = %name, %target, error = %e, "port forwarding: cannot connect");
                    return;
                }
                Err(_) => {
                    info!(user = %name, %target, "port forwarding: connecting timed out");
                    return;
                }
            };
            reply.accept().await;
            info!(user = %name, %target, "port forwarding opened");
            let mut channel = channel.into_stream();
            let moved = tokio::io::copy_bidirectional(&mut channel, &mut stream).await;
            let (up, down) = moved.unwrap_or_default();
            info!(user = %name, %target, bytes_to_target = up, bytes_from_target = down, "port forwarding closed");
            drop(slot);
        };
        tokio::spawn(forward.instrument(tracing::Span::current()));
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
            info!(subsystem = %Untrusted::str(name), "subsystem refused");
            return session.channel_failure(channel);
        };
        let Some(ch) = self.channels.remove(&channel) else {
            return session.channel_failure(channel);
        };
        let home = match ferry_vfs::VPath::parse(user.home.as_bytes()) {
            Ok(home) => home,
            Err(e) => {
                warn!(error = %e, home = %user.home, "the user's home is not a valid path");
                return session.channel_failure(channel);
            }
        };
        let storage = match self.server.storage.scoped(&home, true).await {
            Ok(storage) => storage,
            Err(e) => {
                warn!(error = %e, home = %user.home, "cannot open the user's home");
                return session.channel_failure(channel);
            }
        };
        // The quota and bandwidth account shared by all the user's sessions.
        let account = match self.server.users.account(&user.name).await {
            Ok(account) => account,
            Err(e) => {
                warn!(error = %e, "cannot load the user's quota");
                return session.channel_failure(channel);
            }
        };
        session.channel_success(channel)?;
        info!("SFTP session started");
        let fs = ferry_vfs::UserFs::with_limits(
            storage,
            ferry_vfs::Protocol::Sftp,
            user.name.clone(),
            user.permissions,
            Arc::new(ferry_observe::TapEvents(Arc::clone(&self.tap))),
            account.clone(),
            account.rates(),
        );
        let ctx = Arc::new(
            Ctx::new(fs)
                .with_hash_max_size(self.server.config.hash_max_size)
                .with_tap(Arc::clone(&self.tap)),
        );
        lock(&self.contexts).push(Arc::downgrade(&ctx));
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
        info!(command = %Untrusted::new(data), "exec refused");
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
