//! `ferry serve`: open the user store and the files root, bind the listeners, run until a signal.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use ferry_auth::{generate_password, NewUser, Permissions, UserStore};
use ferry_ftpd::{ListenerKind, PemIdentity, Server, Tls, TlsPolicy};
use ferry_vfs::Storage;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::config::{FtpsFiles, Settings, UsersDb};
use crate::state::{absolute, cause, create_private_dir, create_store, write_private};

/// Name of the user created on the first start.
const FIRST_USER: &str = "ferry";
/// Pending connections the kernel queues per listener.
const LISTEN_BACKLOG: i32 = 1024;

/// Runs the server until SIGINT or SIGTERM, then shuts down gracefully: no new connections, idle
/// sessions closed at once, running transfers given `shutdown_grace_secs`. SIGHUP reopens the log
/// files and reloads the configuration with `reload` (see [`crate::reload`]).
pub async fn run(mut settings: Settings, reload: impl Fn() -> Result<Settings>) -> Result<()> {
    // Relative paths are relative to the working directory: say where they lead.
    info!(
        config = %settings.config_file.as_deref().map_or("none (built-in defaults)".into(), |p| absolute(p).display().to_string()),
        data_dir = %absolute(&settings.data_dir).display(),
        files_root = %absolute(&settings.files_root).display(),
        users_db = %users_db_shown(&settings.users_db),
        "starting"
    );
    create_private_dir(&settings.data_dir).map_err(|e| {
        anyhow!(
            "cannot create the data directory {}: {} (set `data_dir` / `--data-dir`)",
            settings.data_dir.display(),
            cause(&e)
        )
    })?;
    let listeners = bind_all(&settings.listen, LISTEN)?;
    let implicit = bind_all(&settings.ftps.implicit_listen, IMPLICIT_LISTEN)?;
    let admin_listeners = bind_admin(&settings.admin)?;
    let users = create_store(&settings.users_db).await?;
    users.set_default_limits(settings.default_limits);
    #[cfg(unix)]
    if let Some(path) = settings.users_db.file() {
        crate::state::check_private(path);
    }
    let (storage, storage_probe) = crate::storage::open(&settings).await?;
    // Install the signal handlers before announcing the addresses, so a signal sent by whoever
    // reads the announcement is never missed.
    let mut signal = Signals::install()?;
    let mut ftpd = settings.ftpd.clone();
    let tls_wanted = ftpd.ftps.policy != TlsPolicy::Off
        || ftpd.ftps.loopback_policy != TlsPolicy::Off
        || !implicit.is_empty();
    if tls_wanted {
        let tls = load_tls(&settings.ftps)?;
        let port = listeners
            .first()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port());
        print_certificate(&settings.ftps, &tls, port)?;
        ftpd.ftps.tls = Some(tls);
    }
    let tls = ftpd.ftps.tls.clone();
    if let Some(host) = &settings.masquerade_host {
        let ip = resolve_masquerade(host)
            .await
            .with_context(|| format!("cannot resolve masquerade_address {host:?}"))?;
        info!(%host, %ip, "masquerade_address resolved");
        ftpd.masquerade_address = Some(ip);
    }
    ftpd.masquerade_networks = resolve_rules(&settings.masquerade_rules).await?;
    // One login defender and one login gate for FTP and SFTP: the same scores, the same bans, one
    // budget of password checks.
    let defender = Arc::new(ferry_auth::defender::Defender::new(
        ftpd.defender.clone(),
        Some(users.clone()),
    ));
    // On PostgreSQL, several nodes may share the database: the per-address limit counts all of them.
    let cluster = join_cluster(&users, &mut ftpd, settings.cluster_fail_open).await?;
    let gate = Arc::new(ferry_admission::LoginGate::new());
    let metrics = Arc::new(crate::admin::Metrics::new());
    // Storage operations are counted only where someone can scrape them.
    let storage = if admin_listeners.is_empty() {
        storage
    } else {
        crate::admin::storage::Metered::wrap(storage, metrics.storage())
    };
    let sinks = crate::reload::Sinks::start(&settings.observe, &metrics)?;
    // --- SFTP: host keys and listeners are ready before anything is announced ---
    let sftp = match &settings.sftp {
        Some(sftp) => Some(sftp_server(
            sftp,
            &ftpd,
            &users,
            &storage,
            &defender,
            &gate,
            &sinks.observer,
        )?),
        None => None,
    };
    let admin = crate::admin::Admin::new(
        Arc::clone(&metrics),
        users.clone(),
        settings.users_db.file().map(Path::to_owned),
        storage_probe,
    );
    // Every start-up check has passed: only now is the one-time password shown.
    create_first_user(&users).await?;
    let server = Server::new_shared(ftpd, users.clone(), storage, Arc::clone(&defender), gate);
    server.set_observer(Arc::clone(&sinks.observer));
    server.set_shutdown_grace(settings.observe.shutdown_grace);

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
    if let Some(cluster) = cluster {
        let mut stop = stop_rx.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        tasks.spawn(ferry_admission::run_cluster(
            cluster,
            Arc::clone(&defender),
            shutdown,
        ));
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
    let mut sftp_running = None;
    if let Some((sftp_server, sftp_listeners, host_keys)) = sftp {
        sftp_server.set_shutdown_grace(settings.observe.shutdown_grace);
        sftp_running = Some(Arc::clone(&sftp_server));
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
    // Dropped (so stopped) when `run` returns: /readyz answers 503 while the sessions drain.
    let mut admin_tasks = JoinSet::new();
    for listener in admin_listeners {
        let addr = listener
            .local_addr()
            .context("cannot read a listener's address")?;
        writeln!(
            out,
            "ferry: admin listening on http://{addr}/ (/metrics, /healthz, /readyz)"
        )?;
        info!(%addr, "admin listening");
        admin_tasks.spawn(crate::admin::serve(listener, Arc::clone(&admin)));
    }
    out.flush()?;
    drop(out);

    let name = loop {
        match signal.recv().await {
            "SIGHUP" => {
                sinks.reopen().await;
                match reload() {
                    Ok(new) => {
                        let servers = crate::reload::Servers {
                            ftp: &server,
                            sftp: sftp_running.as_deref(),
                            users: &users,
                        };
                        crate::reload::apply(&mut settings, new, &sinks, &servers);
                    }
                    Err(e) => warn!(
                        error = %crate::error_text(&e),
                        "SIGHUP: the configuration cannot be read; nothing changed"
                    ),
                }
                reload_tls(tls.as_deref(), &settings.ftps);
                reload_masquerade(&server, settings.masquerade_host.as_deref()).await;
                if settings.masquerade_host.is_none() {
                    server.set_masquerade_address(settings.ftpd.masquerade_address);
                }
                match resolve_rules(&settings.masquerade_rules).await {
                    Ok(rules) => server.set_masquerade_networks(rules),
                    Err(e) => warn!(
                        error = %crate::error_text(&e),
                        "SIGHUP: keeping the previous masquerade_networks addresses"
                    ),
                }
            }
            name => break name,
        }
    };
    info!(
        signal = name,
        grace_secs = settings.observe.shutdown_grace.as_secs(),
        "shutting down: no new connections, idle sessions closed, running transfers may finish; \
         send the signal again to stop at once"
    );
    admin.start_draining();
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
                users.flush_usage().await;
                return Ok(());
            }
        }
    }
    // Usage changes still waiting for their batched database write.
    users.flush_usage().await;
    info!("stopped");
    Ok(())
}

/// The user database for the start-up log: the absolute path, or the URL without its password.
fn users_db_shown(db: &UsersDb) -> String {
    match db {
        UsersDb::File(path) => absolute(path).display().to_string(),
        UsersDb::Postgres(_) => db.to_string(),
    }
}

/// With a PostgreSQL user database, registers this node and makes `ftpd`'s (and so SFTP's) per-address
/// limit hold across every node on the database. `None` on SQLite.
async fn join_cluster(
    users: &UserStore,
    ftpd: &mut ferry_ftpd::Config,
    fail_open: bool,
) -> Result<Option<Arc<ferry_admission::ClusterLimits>>> {
    let node = node_name();
    let Some(cluster) = users.cluster(&node) else {
        return Ok(None);
    };
    let limits = ferry_admission::ClusterLimits::new(
        cluster,
        ftpd.limits.max_per_ip,
        ftpd.limits.max_per_user,
        fail_open,
    );
    limits
        .register()
        .await
        .context("cannot register this node in the user database (users_db)")?;
    info!(
        node,
        fail_open, "cluster: connection limits and bans are shared through the user database"
    );
    ftpd.limits.cluster = Some(Arc::clone(&limits));
    Ok(Some(limits))
}

/// This node's name in the cluster tables: host name, process id and a random part (a restarted node
/// is a new node; the old one's leases expire).
fn node_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.len() < 64)
        .unwrap_or_else(|| "ferry".to_owned());
    format!("{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}

/// Loads the FTPS certificate; with the default paths, generates a self-signed one on the first start.
fn load_tls(files: &FtpsFiles) -> Result<Arc<Tls>> {
    let exists = files.certificate.exists() || files.private_key.exists();
    if files.generated && !exists {
        let identity = PemIdentity::self_signed(self_signed_names())
            .context("cannot generate a self-signed FTPS certificate")?;
        if let Some(dir) = files.certificate.parent() {
            create_private_dir(dir)
                .map_err(|e| anyhow!("cannot create the directory {}: {}", dir.display(), cause(&e)))?;
        }
        write_private(&files.private_key, &identity.key)?;
        write_private(&files.certificate, &identity.cert)?;
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
    let identity = read_identity(files)?;
    let tls = Tls::new(&identity).map_err(|e| tls_error(e, files))?;
    Ok(Arc::new(tls))
}

/// Reads the certificate and key files, naming the setting of the one that cannot be read.
fn read_identity(files: &FtpsFiles) -> Result<PemIdentity> {
    let read = |path: &Path, what: &str, key: &str, flag: &str| {
        std::fs::read(path).map_err(|e| {
            anyhow!(
                "cannot read the FTPS {what} {}: {} (set `{key}` / `{flag}`)",
                path.display(),
                cause(&e)
            )
        })
    };
    Ok(PemIdentity {
        cert: read(
            &files.certificate,
            "certificate",
            "ftps.certificate",
            "--ftps-certificate",
        )?,
        key: read(
            &files.private_key,
            "private key",
            "ftps.private_key",
            "--ftps-private-key",
        )?,
    })
}

/// A certificate that cannot be used, said once with the settings that name the files.
fn tls_error(e: ferry_ftpd::TlsError, files: &FtpsFiles) -> anyhow::Error {
    let (cert, key) = (files.certificate.display(), files.private_key.display());
    match e {
        ferry_ftpd::TlsError::KeyMismatch => anyhow!(
            "the FTPS certificate {cert} and the private key {key} do not match (ftps.certificate, \
             ftps.private_key)"
        ),
        ferry_ftpd::TlsError::NoCertificate => anyhow!(
            "no PEM certificate in {cert} (set `ftps.certificate` / `--ftps-certificate` to a PEM \
             certificate chain)"
        ),
        ferry_ftpd::TlsError::NoKey(why) => anyhow!(
            "no usable PEM private key in {key}: {why} (set `ftps.private_key` / `--ftps-private-key`)"
        ),
        e => anyhow!("cannot use the FTPS certificate {cert} with the key {key}: {e} (ftps.certificate, ftps.private_key)"),
    }
}

/// The certificate's fingerprints (SHA-256 as browsers and OpenSSL show it, SHA-1 as lftp shows it) and,
/// for the generated self-signed one, ready-to-paste client settings that trust it.
fn print_certificate(files: &FtpsFiles, tls: &Tls, port: Option<u16>) -> Result<()> {
    let mut out = io::stdout().lock();
    let cert = files.certificate.display();
    writeln!(
        out,
        "ferry: FTPS certificate {cert} (SHA-256 {})",
        tls.fingerprint()
    )?;
    writeln!(
        out,
        "ferry: FTPS certificate SHA-1 {} (as lftp shows it)",
        tls.fingerprint_sha1()
    )?;
    if files.generated {
        let port = port.unwrap_or(crate::config::DEFAULT_FTP_PORT);
        writeln!(
            out,
            "ferry: the certificate is self-signed; to trust it, from this directory:"
        )?;
        writeln!(
            out,
            "ferry:   curl --ssl-reqd --cacert {cert} -u ferry:PASSWORD ftp://127.0.0.1:{port}/"
        )?;
        writeln!(
            out,
            "ferry:   lftp -u ferry,PASSWORD -p {port} -e 'set ssl:ca-file {cert}; ls; bye' 127.0.0.1"
        )?;
        writeln!(
            out,
            "ferry:   or in lftp, from anywhere: set ssl:verify-certificate/{} no",
            tls.fingerprint_sha1()
        )?;
    }
    out.flush()?;
    Ok(())
}

/// The first IPv4 address of `host` (PASV replies carry only IPv4).
async fn resolve_masquerade(host: &str) -> Result<std::net::IpAddr> {
    let addrs = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::lookup_host((host, 0)),
    )
    .await
    .map_err(|_| anyhow!("no answer within 10 s"))??;
    addrs
        .map(|a| a.ip())
        .find(|ip| ip.is_ipv4())
        .ok_or_else(|| anyhow!("{host} has no IPv4 address (PASV replies carry only IPv4)"))
}

/// The `masquerade_networks` rules with their host names resolved to IPv4; an error names the setting
/// and the host that does not resolve.
async fn resolve_rules(
    rules: &[(ferry_auth::defender::Network, crate::config::parse::Masquerade)],
) -> Result<Vec<(ferry_auth::defender::Network, std::net::IpAddr)>> {
    let mut out = Vec::with_capacity(rules.len());
    for (net, m) in rules {
        let ip = match m {
            crate::config::parse::Masquerade::Ip(ip) => *ip,
            crate::config::parse::Masquerade::Host(host) => {
                let ip = resolve_masquerade(host)
                    .await
                    .with_context(|| format!("cannot resolve {host:?} in masquerade_networks"))?;
                info!(%host, %ip, "masquerade_networks host resolved");
                ip
            }
        };
        out.push((*net, ip));
    }
    Ok(out)
}

/// SIGHUP: resolves a `masquerade_address` host name again; on error the old address stays.
async fn reload_masquerade(server: &Server, host: Option<&str>) {
    let Some(host) = host else { return };
    match resolve_masquerade(host).await {
        Ok(ip) => {
            server.set_masquerade_address(Some(ip));
            info!(%host, %ip, "SIGHUP: masquerade_address resolved again");
        }
        Err(e) => {
            warn!(%host, error = %e, "SIGHUP: cannot resolve masquerade_address; keeping the old address")
        }
    }
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
    observer: &Arc<dyn ferry_observe::Observer>,
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
        .collect::<Result<Vec<_>, _>>()
        .map_err(host_key_error)?;
    let listeners = bind_all(&sftp.listen, SFTP_LISTEN)?;
    let mut config = ferry_sftpd::Config::new(host_keys.iter().map(|k| k.key.clone()).collect());
    config.limits = ftpd.limits.clone();
    config.failed_login_delay = ftpd.protection.failed_login_delay;
    config.login_timeout = ftpd.session.login_timeout;
    config.idle_timeout = ftpd.session.idle_timeout;
    config.max_auth_attempts = sftp.max_auth_attempts;
    config.proxy_protocol = ftpd.proxy_protocol.clone();
    config.hash_max_size = ftpd.session.hash_max_size;
    // The FTP server's login defender and gate: the same events score the same on both protocols.
    let server = ferry_sftpd::Server::new(
        config,
        users.clone(),
        Arc::clone(storage),
        Arc::clone(defender),
        Arc::clone(gate),
    );
    server.set_observer(Arc::clone(observer));
    Ok((server, listeners, host_keys))
}

/// Binds the admin listener. The default address (nothing configured) may be taken, e.g. by a second
/// ferry on the host: that costs a warning, not the start; a configured address must be bound.
fn bind_admin(admin: &crate::config::admin::AdminSettings) -> Result<Vec<TcpListener>> {
    if admin.configured {
        return bind_all(&admin.listen, ADMIN_LISTEN);
    }
    let mut bound = Vec::new();
    for &addr in &admin.listen {
        match bind(addr) {
            Ok(listener) => bound.push(listener),
            Err(e) => warn!(
                %addr,
                error = %cause(&e),
                "cannot listen on the default admin address; no /metrics, /healthz or /readyz \
                 (set `admin.listen` / `--admin-listen` to another address, or to off)"
            ),
        }
    }
    Ok(bound)
}

/// The setting (file key and flag) that chose a group of listening addresses, for error messages.
#[derive(Debug, Clone, Copy)]
struct ListenSetting {
    key: &'static str,
    flag: &'static str,
}

const LISTEN: ListenSetting = ListenSetting {
    key: "listen",
    flag: "--listen",
};
const IMPLICIT_LISTEN: ListenSetting = ListenSetting {
    key: "ftps.implicit_listen",
    flag: "--ftps-implicit-listen",
};
const ADMIN_LISTEN: ListenSetting = ListenSetting {
    key: "admin.listen",
    flag: "--admin-listen",
};
const SFTP_LISTEN: ListenSetting = ListenSetting {
    key: "sftp.listen",
    flag: "--sftp-listen",
};

/// A host key that cannot be loaded or generated, with the setting that names it.
fn host_key_error(e: ferry_sftpd::hostkey::HostKeyError) -> anyhow::Error {
    use ferry_sftpd::hostkey::HostKeyError;
    const SETTING: &str = "set `sftp.host_keys` / `--sftp-host-keys`";
    match e {
        HostKeyError::Io { path, source } => anyhow!(
            "cannot read or create the SSH host key {}: {} ({SETTING})",
            path.display(),
            cause(&source)
        ),
        HostKeyError::Invalid { path, message } => anyhow!(
            "the SSH host key {} cannot be used: {message} ({SETTING})",
            path.display()
        ),
    }
}

/// Binds every address. An IPv6 address that cannot be bound is skipped with a warning when an IPv4
/// address was bound (hosts without IPv6 still start on the default `0.0.0.0` + `[::]`); any other
/// failure is an error.
fn bind_all(addrs: &[SocketAddr], setting: ListenSetting) -> Result<Vec<TcpListener>> {
    let mut bound = Vec::new();
    let mut v6_failures = Vec::new();
    for &addr in addrs {
        match bind(addr) {
            Ok(listener) => bound.push(listener),
            // A port in use or a privileged port fails the same way on IPv4: report it either way.
            Err(e)
                if addr.is_ipv6()
                    && !matches!(
                        e.kind(),
                        io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
                    ) =>
            {
                v6_failures.push((addr, e))
            }
            Err(e) => return Err(bind_error(addr, &e, setting)),
        }
    }
    let any_v4 = bound
        .iter()
        .any(|l| l.local_addr().map(|a| a.is_ipv4()).unwrap_or(false));
    for (addr, e) in v6_failures {
        if !any_v4 {
            return Err(bind_error(addr, &e, setting));
        }
        warn!(%addr, error = %cause(&e), "cannot listen on IPv6 address; continuing with IPv4 only");
    }
    Ok(bound)
}

/// Why an address cannot be listened on, and the setting to change.
fn bind_error(addr: SocketAddr, e: &io::Error, setting: ListenSetting) -> anyhow::Error {
    let ListenSetting { key, flag } = setting;
    let port = addr.port();
    let ip = addr.ip();
    match e.kind() {
        io::ErrorKind::AddrInUse => {
            anyhow!("port {port} is in use on {ip} (another program, or another ferry, listens there; set `{key}` / `{flag}`)")
        }
        io::ErrorKind::PermissionDenied if port < 1024 => anyhow!(
            "binding port {port} needs root or CAP_NET_BIND_SERVICE (set `{key}` / `{flag}` to a port of 1024 \
             or more, or grant the capability: setcap cap_net_bind_service=+ep <ferry binary>)"
        ),
        io::ErrorKind::AddrNotAvailable => {
            anyhow!("{ip} is not an address of this host (set `{key}` / `{flag}`)")
        }
        _ => anyhow!("cannot listen on {addr}: {} (set `{key}` / `{flag}`)", cause(e)),
    }
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
    match users.add_user(user).await {
        Ok(()) => {}
        // Another node on the same (PostgreSQL) database created it first.
        Err(ferry_auth::Error::AlreadyExists(_)) => return Ok(()),
        Err(e) => return Err(anyhow::Error::new(e).context("cannot create the first user")),
    }
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
