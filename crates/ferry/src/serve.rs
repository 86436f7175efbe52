//! `ferry serve`: open the user store and the files root, bind the listeners, run until a signal.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use ferry_auth::{generate_password, NewUser, Permissions, UserStore};
use ferry_ftpd::{ListenerKind, PemIdentity, Server, Tls, TlsPolicy};
use ferry_vfs::{LocalFs, Storage};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::config::{FtpsFiles, Settings};

/// Name of the user created on the first start.
const FIRST_USER: &str = "ferry";
/// Pending connections the kernel queues per listener.
const LISTEN_BACKLOG: i32 = 1024;

/// Runs the server until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn run(settings: Settings) -> Result<()> {
    info!(
        data_dir = %settings.data_dir.display(),
        files_root = %settings.files_root.display(),
        users_db = %settings.users_db.display(),
        "starting"
    );
    let listeners = bind_all(&settings.listen)?;
    let implicit = bind_all(&settings.ftps.implicit_listen)?;
    let users = open_store(&settings.users_db).await?;
    create_first_user(&users).await?;
    let storage: Arc<dyn Storage> = Arc::new(
        LocalFs::open(&settings.files_root)
            .with_context(|| format!("cannot open files root {}", settings.files_root.display()))?,
    );
    // Install the signal handlers before announcing the addresses, so a signal sent by whoever
    // reads the announcement is never missed.
    let mut signal = Signals::install()?;
    let mut ftpd = settings.ftpd;
    let tls_wanted = ftpd.ftps.policy != TlsPolicy::Off
        || ftpd.ftps.loopback_policy != TlsPolicy::Off
        || !implicit.is_empty();
    if tls_wanted {
        let tls = load_tls(&settings.ftps)?;
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "ferry: FTPS certificate {} (SHA-256 {})",
            settings.ftps.certificate.display(),
            tls.fingerprint()
        )?;
        ftpd.ftps.tls = Some(tls);
    }
    let tls = ftpd.ftps.tls.clone();
    // One login defender and one login gate for FTP and SFTP: the same scores, the same bans, one
    // budget of password checks.
    let defender = Arc::new(ferry_auth::defender::Defender::new(
        ftpd.defender.clone(),
        Some(users.clone()),
    ));
    let gate = Arc::new(ferry_admission::LoginGate::new());
    // --- SFTP: host keys and listeners are ready before anything is announced ---
    let sftp = match &settings.sftp {
        Some(sftp) => Some(sftp_server(sftp, &ftpd, &users, &storage, &defender, &gate)?),
        None => None,
    };
    let server = Server::new_shared(ftpd, users, storage, Arc::clone(&defender), gate);

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    // Bans stored by earlier runs, other nodes and `ferry ban` are loaded before the first connection
    // is accepted, then reloaded every few seconds, for every protocol.
    defender
        .refresh()
        .await
        .unwrap_or_else(|e| warn!(error = %e, "cannot load bans from the user database"));
    {
        let mut stop = stop_rx.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        tasks.spawn(ferry_admission::refresh_bans(Arc::clone(&defender), shutdown));
    }
    let mut out = io::stdout().lock();
    for listener in listeners {
        let addr = listener
            .local_addr()
            .context("cannot read a listener's address")?;
        writeln!(out, "ferry: FTP listening on {addr}")?;
        info!(%addr, "FTP listening");
        let mut stop = stop_rx.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        tasks.spawn(ferry_ftpd::serve(listener, Arc::clone(&server), shutdown));
    }
    for listener in implicit {
        let addr = listener
            .local_addr()
            .context("cannot read a listener's address")?;
        writeln!(out, "ferry: FTPS (implicit) listening on {addr}")?;
        info!(%addr, "implicit FTPS listening");
        let mut stop = stop_rx.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        tasks.spawn(ferry_ftpd::serve_kind(
            listener,
            Arc::clone(&server),
            ListenerKind::Implicit,
            shutdown,
        ));
    }
    if let Some((sftp_server, sftp_listeners, host_keys)) = sftp {
        for key in &host_keys {
            let generated = if key.generated { " (generated)" } else { "" };
            writeln!(
                out,
                "ferry: SFTP host key: {} {} {}{generated}",
                key.algorithm(),
                key.fingerprint(),
                key.path.display()
            )?;
        }
        for listener in sftp_listeners {
            let addr = listener
                .local_addr()
                .context("cannot read a listener's address")?;
            writeln!(out, "ferry: SFTP listening on {addr}")?;
            info!(%addr, "SFTP listening");
            let mut stop = stop_rx.clone();
            let shutdown = async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            tasks.spawn(ferry_sftpd::serve(listener, Arc::clone(&sftp_server), shutdown));
        }
    }
    out.flush()?;
    drop(out);

    let name = loop {
        match signal.recv().await {
            "SIGHUP" => reload_tls(tls.as_deref(), &settings.ftps),
            name => break name,
        }
    };
    info!(
        signal = name,
        "shutting down; send the signal again to stop at once"
    );
    let _ = stop_tx.send(true);
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(())) => {}
                Some(Err(e)) => warn!(error = %e, "a listener task failed"),
                None => break,
            },
            name = signal.recv() => {
                if name == "SIGHUP" {
                    continue;
                }
                warn!(signal = name, "stopping without waiting for open sessions");
                return Ok(());
            }
        }
    }
    info!("stopped");
    Ok(())
}

/// Loads the FTPS certificate; with the default paths, generates a self-signed one on the first start.
fn load_tls(files: &FtpsFiles) -> Result<Arc<Tls>> {
    let exists = files.certificate.exists() || files.private_key.exists();
    if files.generated && !exists {
        let identity = PemIdentity::self_signed(self_signed_names())
            .context("cannot generate a self-signed FTPS certificate")?;
        if let Some(dir) = files.certificate.parent() {
            create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        write_private(&files.private_key, &identity.key)?;
        std::fs::write(&files.certificate, &identity.cert)
            .with_context(|| format!("cannot write {}", files.certificate.display()))?;
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "ferry: first start: generated a self-signed FTPS certificate in {}",
            files.certificate.display()
        )?;
        writeln!(
            out,
            "ferry: clients will warn about it; compare the fingerprint below, or configure ftps.certificate"
        )?;
    }
    let identity = PemIdentity::read(&files.certificate, &files.private_key)
        .context("cannot read the FTPS certificate")?;
    let tls = Tls::new(&identity).with_context(|| {
        format!(
            "cannot use the FTPS certificate {} with key {}",
            files.certificate.display(),
            files.private_key.display()
        )
    })?;
    Ok(Arc::new(tls))
}

/// SIGHUP: reads the certificate files again. New handshakes use the new certificate; on error the old
/// one stays in force.
fn reload_tls(tls: Option<&Tls>, files: &FtpsFiles) {
    let Some(tls) = tls else {
        info!("SIGHUP: FTPS is off; nothing to reload");
        return;
    };
    let result =
        PemIdentity::read(&files.certificate, &files.private_key).and_then(|identity| tls.reload(&identity));
    match result {
        Ok(()) => {
            info!(fingerprint = %tls.fingerprint(), "SIGHUP: FTPS certificate reloaded");
            let mut out = io::stdout().lock();
            let _ = writeln!(
                out,
                "ferry: FTPS certificate reloaded (SHA-256 {})",
                tls.fingerprint()
            );
            let _ = out.flush();
        }
        Err(e) => warn!(error = %e, "SIGHUP: cannot reload the FTPS certificate; keeping the old one"),
    }
}

/// Names for the generated certificate: localhost and the loopback addresses, plus the host name.
fn self_signed_names() -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty()
            && host.len() < 254
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            names.push(host.to_owned());
        }
    }
    names
}

/// Writes a file readable only by its owner.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The SFTP server: host keys loaded (the default one generated on first start), listeners bound.
/// Timeouts, connection limits and the failed-login delay are the FTP ones (each protocol counts its
/// own connections).
fn sftp_server(
    sftp: &crate::config::sftp::SftpSettings,
    ftpd: &ferry_ftpd::Config,
    users: &UserStore,
    storage: &Arc<dyn Storage>,
    defender: &Arc<ferry_auth::defender::Defender>,
    gate: &Arc<ferry_admission::LoginGate>,
) -> Result<(
    Arc<ferry_sftpd::Server>,
    Vec<TcpListener>,
    Vec<ferry_sftpd::hostkey::HostKey>,
)> {
    let host_keys = sftp
        .host_keys
        .iter()
        .map(|path| {
            if sftp.generate {
                ferry_sftpd::hostkey::load_or_generate(path)
            } else {
                ferry_sftpd::hostkey::load(path)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let listeners = bind_all(&sftp.listen).context("SFTP")?;
    let mut config = ferry_sftpd::Config::new(host_keys.iter().map(|k| k.key.clone()).collect());
    config.limits = ftpd.limits.clone();
    config.failed_login_delay = ftpd.protection.failed_login_delay;
    config.login_timeout = ftpd.session.login_timeout;
    config.idle_timeout = ftpd.session.idle_timeout;
    config.max_auth_attempts = sftp.max_auth_attempts;
    // The FTP server's login defender and gate: the same events score the same on both protocols.
    let server = ferry_sftpd::Server::new(
        config,
        users.clone(),
        Arc::clone(storage),
        Arc::clone(defender),
        Arc::clone(gate),
    );
    Ok((server, listeners, host_keys))
}

/// Binds every address. An IPv6 address that cannot be bound is skipped with a warning when an IPv4
/// address was bound (hosts without IPv6 still start on the default `0.0.0.0` + `[::]`); any other
/// failure is an error.
fn bind_all(addrs: &[SocketAddr]) -> Result<Vec<TcpListener>> {
    let mut bound = Vec::new();
    let mut v6_failures = Vec::new();
    for &addr in addrs {
        match bind(addr) {
            Ok(listener) => bound.push(listener),
            Err(e) if addr.is_ipv6() => v6_failures.push((addr, e)),
            Err(e) => return Err(anyhow!("cannot listen on {addr}: {e}")),
        }
    }
    let any_v4 = bound
        .iter()
        .any(|l| l.local_addr().map(|a| a.is_ipv4()).unwrap_or(false));
    for (addr, e) in v6_failures {
        if !any_v4 {
            return Err(anyhow!("cannot listen on {addr}: {e}"));
        }
        warn!(%addr, error = %e, "cannot listen on IPv6 address; continuing with IPv4 only");
    }
    Ok(bound)
}

/// One listening socket. IPv6 sockets are IPv6-only so `0.0.0.0:P` and `[::]:P` can both be bound.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Lets a restarted server bind while old connections linger in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Opens the user database, creating its directory (private to this user) if missing.
pub async fn open_store(path: &Path) -> Result<UserStore> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    UserStore::open(path)
        .await
        .with_context(|| format!("cannot open user database {}", path.display()))
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// On the first start (no users at all) creates `ferry` with a generated password and prints it.
async fn create_first_user(users: &UserStore) -> Result<()> {
    if !users.is_empty().await.context("cannot read the user database")? {
        return Ok(());
    }
    let password = generate_password();
    let user = NewUser {
        name: FIRST_USER.to_owned(),
        password: password.clone(),
        home: "/".to_owned(),
        permissions: Permissions::all(),
    };
    users
        .add_user(user)
        .await
        .context("cannot create the first user")?;
    info!(user = FIRST_USER, "first start: created user");
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "ferry: first start: created user {FIRST_USER:?} (home /, all permissions)"
    )?;
    writeln!(out, "ferry: user: {FIRST_USER}")?;
    writeln!(out, "ferry: password: {}", password.expose())?;
    writeln!(
        out,
        "ferry: this password will not be shown again; change it with `ferry user passwd {FIRST_USER}`"
    )?;
    out.flush()?;
    Ok(())
}

/// SIGINT and SIGTERM (Ctrl-C only, off Unix), and SIGHUP (reload the certificate).
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
            let int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
            let hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
            Ok(Signals { term, int, hup })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for the next signal and names it.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
                _ = self.hup.recv() => "SIGHUP",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
