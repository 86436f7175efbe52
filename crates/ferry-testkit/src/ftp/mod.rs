//! The FTP side of the test kit: an in-process ferry FTP server and a raw control-connection client.
//!
//! Each test starts its own [`TestServer`]: a ferry server on its own multi-thread tokio runtime in a
//! background thread, over a fresh temp dir (`files/` is the storage root, `users.db` the user store
//! with user [`USER`] / [`PASSWORD`]). Tests are plain `#[test]` functions that run real client programs
//! with [`run`] or talk to the control port with [`Control`].
//!
//! FTPS: [`Options::ftps`] gives the server a self-signed certificate (one per test process, also written to
//! [`TestServer::cert_path`]) and [`Options::implicit`] adds an implicit-FTPS listener
//! ([`TestServer::implicit_addr`]); per-user TLS overrides and extra users are set on the running server
//! with [`TestServer::set_user_tls`] and [`TestServer::add_user`]. The `ftps` module has the Python side.

pub mod control;
pub mod ftps;
pub mod rss;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

pub use crate::files::{
    assert_same_tree, make_dir, make_tree, names, pseudo_random, read_file, set_mtime, sha256, sha256_file,
    tree, write_file, write_random_file,
};
pub use control::{parse_pasv, reset, tcp_from, wait_until, Control, Reply};
pub use ftps::{python_ftps, test_identity, PY_FTPS};

/// The test user's name.
pub const USER: &str = "alice";
/// The test user's password (with a space, which clients must pass through intact).
pub const PASSWORD: &str = "s3cret pw";
/// [`PASSWORD`] percent-encoded for URLs.
pub const PASSWORD_URL: &str = "s3cret%20pw";
/// Passive port range: wide, so that servers of tests running in parallel rarely collide (and when they
/// do, the server picks another free port).
pub const PASSIVE_PORTS: std::ops::RangeInclusive<u16> = 40000..=49999;

// ----- server ---------------------------------------------------------------------------------------

/// A running ferry server over its own temp dir; shut down on drop.
#[derive(Debug)]
pub struct TestServer {
    /// Where the control listener is.
    pub addr: SocketAddr,
    /// Where the implicit-FTPS listener is ([`Options::implicit`]).
    pub implicit_addr: Option<SocketAddr>,
    dir: TempDir,
    users: ferry_auth::UserStore,
    runtime: tokio::runtime::Handle,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// In a mutex so that tests can share `&TestServer` between threads.
    finished: std::sync::Mutex<mpsc::Receiver<()>>,
}

/// Options for [`TestServer::start_with`].
#[derive(Default)]
pub struct Options {
    /// Anonymous login; off by default, as in the server.
    pub anonymous: Option<ferry_ftpd::Anonymous>,
    /// Any other change to the configuration.
    pub tweak: Option<ConfigTweak>,
    /// Listen on `[::1]` instead of `127.0.0.1`.
    pub ipv6: bool,
    /// FTPS: a self-signed certificate ([`test_identity`]) in `config.ftps.tls`, with the server's default
    /// policies (on loopback TLS is optional; tweak `loopback_policy` to require it). `tweak` runs after.
    pub ftps: bool,
    /// Also serve implicit FTPS on a second listener (implies `ftps`).
    pub implicit: bool,
    /// Bans written to the user database before the server starts (as by an earlier run or `ferry ban`).
    pub bans: Vec<(std::net::IpAddr, Duration)>,
    /// A clock for the login defender (instead of the system clock).
    pub clock: Option<Arc<ferry_auth::defender::ManualClock>>,
    /// The storage to serve instead of the local files dir (e.g. `ferry_vfs::MemoryFs`).
    pub storage: Option<Arc<dyn ferry_vfs::Storage>>,
    /// The permissions of user alice (default: all).
    pub permissions: Option<ferry_auth::Permissions>,
}

/// A change to the server configuration, applied before the server starts.
pub type ConfigTweak = Box<dyn FnOnce(&mut ferry_ftpd::Config) + Send>;

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("anonymous", &self.anonymous)
            .field("ipv6", &self.ipv6)
            .field("ftps", &self.ftps)
            .field("implicit", &self.implicit)
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// A server with the default configuration (plus a wide passive port range) and user alice.
    pub fn start() -> TestServer {
        TestServer::start_with(Options::default())
    }

    /// A server whose configuration `tweak` changes before it starts.
    pub fn start_tweaked(tweak: impl FnOnce(&mut ferry_ftpd::Config) + Send + 'static) -> TestServer {
        TestServer::start_with(Options {
            tweak: Some(Box::new(tweak)),
            ..Options::default()
        })
    }

    /// A server with anonymous read-only login to `/` enabled.
    pub fn start_anonymous() -> TestServer {
        TestServer::start_with(Options {
            anonymous: Some(ferry_ftpd::Anonymous {
                home: "/".into(),
                permissions: ferry_auth::Permissions::read_only(),
            }),
            ..Options::default()
        })
    }

    /// A server with FTPS (explicit, and implicit on [`TestServer::implicit_addr`]) whose configuration
    /// `tweak` changes before it starts.
    pub fn start_ftps(tweak: impl FnOnce(&mut ferry_ftpd::Config) + Send + 'static) -> TestServer {
        TestServer::start_with(Options {
            ftps: true,
            implicit: true,
            tweak: Some(Box::new(tweak)),
            ..Options::default()
        })
    }

    /// A server with `options`.
    pub fn start_with(options: Options) -> TestServer {
        let dir = tempfile::tempdir().expect("create temp dir");
        let files = dir.path().join("files");
        std::fs::create_dir_all(&files).expect("create files dir");
        std::fs::create_dir_all(dir.path().join("home")).expect("create client home dir");
        let users_db = dir.path().join("users.db");
        if options.ftps || options.implicit {
            std::fs::write(dir.path().join("cert.pem"), &test_identity().cert).expect("write cert.pem");
        }
        let (addr_tx, addr_rx) = mpsc::channel::<Result<Started, String>>();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let (finished_tx, finished) = mpsc::channel::<()>();
        thread::Builder::new()
            .name("ferry-test-server".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = addr_tx.send(Err(format!("tokio runtime: {e}")));
                        return;
                    }
                };
                let bind_ip: std::net::IpAddr = if options.ipv6 {
                    std::net::Ipv6Addr::LOCALHOST.into()
                } else {
                    Ipv4Addr::LOCALHOST.into()
                };
                let implicit = options.implicit;
                runtime.block_on(async move {
                    let (server, users) = match build_server(&files, &users_db, options).await {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = addr_tx.send(Err(e));
                            return;
                        }
                    };
                    let bind = || tokio::net::TcpListener::bind((bind_ip, 0));
                    let listener = match bind().await {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = addr_tx.send(Err(format!("bind: {e}")));
                            return;
                        }
                    };
                    let implicit_listener = if implicit {
                        match bind().await {
                            Ok(l) => Some(l),
                            Err(e) => {
                                let _ = addr_tx.send(Err(format!("bind implicit: {e}")));
                                return;
                            }
                        }
                    } else {
                        None
                    };
                    let addrs = listener.local_addr().and_then(|a| {
                        Ok(Started {
                            addr: a,
                            implicit_addr: implicit_listener.as_ref().map(|l| l.local_addr()).transpose()?,
                            users,
                            runtime: tokio::runtime::Handle::current(),
                        })
                    });
                    let _ = addr_tx.send(addrs.map_err(|e| format!("local_addr: {e}")));
                    // Both listeners stop on the one shutdown signal.
                    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
                    tokio::spawn(async move {
                        let _ = shutdown_rx.await;
                        let _ = stop_tx.send(true);
                    });
                    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
                        let _ = rx.wait_for(|s| *s).await;
                    };
                    let explicit = ferry_ftpd::serve(listener, Arc::clone(&server), stopped(stop_rx.clone()));
                    let implicit = async {
                        if let Some(l) = implicit_listener {
                            ferry_ftpd::serve_kind(
                                l,
                                Arc::clone(&server),
                                ferry_ftpd::ListenerKind::Implicit,
                                stopped(stop_rx.clone()),
                            )
                            .await;
                        }
                    };
                    tokio::join!(explicit, implicit);
                });
                runtime.shutdown_timeout(Duration::from_secs(5));
                let _ = finished_tx.send(());
            })
            .expect("spawn server thread");
        let started = addr_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not start within 60 s")
            .unwrap_or_else(|e| panic!("server failed to start: {e}"));
        TestServer {
            addr: started.addr,
            implicit_addr: started.implicit_addr,
            dir,
            users: started.users,
            runtime: started.runtime,
            shutdown: Some(shutdown_tx),
            finished: std::sync::Mutex::new(finished),
        }
    }

    /// The implicit-FTPS port; panics unless the server was started with [`Options::implicit`].
    pub fn implicit_port(&self) -> u16 {
        self.implicit_addr
            .expect("server started without an implicit FTPS listener")
            .port()
    }

    /// The PEM file of the server certificate ([`Options::ftps`]), for clients that verify it.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Sets `name`'s FTPS overrides in the user store; they apply from the next login.
    pub fn set_user_tls(&self, name: &str, tls: ferry_auth::UserTls) {
        let users = self.users.clone();
        let name = name.to_owned();
        self.runtime
            .block_on(async move { users.set_tls(&name, tls).await })
            .unwrap_or_else(|e| panic!("set_tls: {e}"));
    }

    /// Sets `name`'s quota and bandwidth limits; logged-in sessions follow at once.
    pub fn set_limits(&self, name: &str, limits: ferry_auth::UserLimits) {
        let users = self.users.clone();
        let name = name.to_owned();
        self.runtime
            .block_on(async move { users.set_limits(&name, limits).await })
            .unwrap_or_else(|e| panic!("set_limits: {e}"));
    }

    /// `name`'s quota usage as stored in the user database.
    pub fn usage(&self, name: &str) -> ferry_auth::Usage {
        let users = self.users.clone();
        let name = name.to_owned();
        self.runtime
            .block_on(async move { users.quota(&name).await })
            .unwrap_or_else(|e| panic!("quota: {e}"))
            .usage
    }

    /// Adds another user with home `/` and every permission.
    pub fn add_user(&self, name: &str, password: &str) {
        let users = self.users.clone();
        let user = ferry_auth::NewUser {
            name: name.to_owned(),
            password: ferry_auth::Password::new(password.to_owned()),
            home: "/".into(),
            permissions: ferry_auth::Permissions::all(),
        };
        self.runtime
            .block_on(async move { users.add_user(user).await })
            .unwrap_or_else(|e| panic!("add_user: {e}"));
    }

    /// Signals the server to shut down, without waiting (drop waits).
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// The control port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The host directory that is the FTP root (`/`).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("files")
    }

    /// The host path of FTP path `rel` (relative to the root).
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root().join(rel)
    }

    /// The temp dir holding `files/`; tests may put client-side files and outside-the-jail targets here.
    pub fn base(&self) -> &Path {
        self.dir.path()
    }

    /// A scratch directory for client-side files, created on first use.
    pub fn local(&self, rel: &str) -> PathBuf {
        let p = self.dir.path().join("local").join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create local dir");
        }
        p
    }

    /// `ftp://ADDR/path` without credentials (`[::1]:PORT` for IPv6 servers).
    pub fn url(&self, path: &str) -> String {
        format!("ftp://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// `ftp://alice:PASSWORD@ADDR/path`.
    pub fn url_with_login(&self, path: &str) -> String {
        format!(
            "ftp://{USER}:{PASSWORD_URL}@{}/{}",
            self.addr,
            path.trim_start_matches('/')
        )
    }

    /// A `Command` for a client program, isolated from the developer's configuration: `HOME` points
    /// into the temp dir (no ~/.netrc, ~/.curlrc, ~/.lftprc …) and the locale is UTF-8.
    pub fn client(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("HOME", self.dir.path().join("home"))
            .env("LC_ALL", "C.UTF-8")
            .env("LANG", "C.UTF-8")
            .env_remove("http_proxy")
            .env_remove("ftp_proxy")
            .env_remove("all_proxy")
            .env_remove("FTP_PROXY")
            .env_remove("ALL_PROXY")
            .current_dir(self.dir.path());
        cmd
    }

    /// A raw control connection that has read the greeting.
    pub fn control(&self) -> Control {
        Control::connect(self.addr)
    }

    /// A raw control connection logged in as alice.
    pub fn login(&self) -> Control {
        let mut c = self.control();
        c.login(USER, PASSWORD);
        c
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // On S3, while the server still runs (it aborts dropped uploads in the background): the
        // bucket must hold nothing but what clients stored.
        let clean = if thread::panicking() {
            Ok(())
        } else {
            crate::check_bucket_clean(&self.root())
        };
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Bounded: a stuck shutdown must not hang the test run; it is reported instead.
        let finished = self
            .finished
            .get_mut()
            .is_ok_and(|rx| rx.recv_timeout(Duration::from_secs(15)).is_ok());
        if !finished && !thread::panicking() {
            eprintln!("warning: ferry test server did not shut down within 15 s");
        }
        if let Err(e) = clean {
            panic!("{e}");
        }
    }
}

/// A server on the calling test's own tokio runtime, so that a `#[tokio::test]` can pause the clock
/// (`tokio::time::pause()`) and see timeouts of their real length pass at once. Start it before
/// pausing: opening the user database does real I/O. Stops when dropped.
#[derive(Debug)]
pub struct LocalServer {
    /// The control-connection address.
    pub addr: SocketAddr,
    _dir: TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl LocalServer {
    /// Starts a server with `options` on the current runtime.
    pub async fn start(options: Options) -> LocalServer {
        let dir = tempfile::tempdir().expect("create temp dir");
        let files = dir.path().join("files");
        std::fs::create_dir_all(&files).expect("create files dir");
        let (server, _users) = build_server(&files, &dir.path().join("users.db"), options)
            .await
            .unwrap_or_else(|e| panic!("server failed to start: {e}"));
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(ferry_ftpd::serve(listener, server, async {
            let _ = stopped.await;
        }));
        LocalServer {
            addr,
            _dir: dir,
            _stop: stop,
        }
    }

    /// A control connection logged in as [`USER`].
    pub async fn login(&self) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let mut c = tokio::net::TcpStream::connect(self.addr).await.expect("connect");
        assert!(read_reply(&mut c).await.starts_with("220"), "no greeting");
        for (line, code) in [
            (format!("USER {USER}"), "331"),
            (format!("PASS {PASSWORD}"), "230"),
        ] {
            c.write_all(format!("{line}\r\n").as_bytes()).await.expect("send");
            let reply = read_reply(&mut c).await;
            assert!(reply.starts_with(code), "{line}: {reply}");
        }
        c
    }
}

/// Reads one (possibly multi-line) reply from an async control connection.
pub async fn read_reply(c: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut text = String::new();
    let mut line = Vec::new();
    loop {
        let mut byte = [0u8; 1];
        let n = c.read(&mut byte).await.expect("read reply");
        assert!(
            n == 1,
            "connection closed mid-reply: {text}{}",
            String::from_utf8_lossy(&line)
        );
        line.push(byte[0]);
        if line.ends_with(b"\r\n") {
            let l = String::from_utf8_lossy(&line).into_owned();
            text.push_str(&l);
            line.clear();
            if l.len() >= 4 && l.as_bytes()[3] == b' ' && l[..3].bytes().all(|b| b.is_ascii_digit()) {
                return text;
            }
        }
    }
}

/// What the server thread hands back once it listens.
struct Started {
    addr: SocketAddr,
    implicit_addr: Option<SocketAddr>,
    users: ferry_auth::UserStore,
    runtime: tokio::runtime::Handle,
}

async fn build_server(
    files: &Path,
    users_db: &Path,
    options: Options,
) -> Result<(Arc<ferry_ftpd::Server>, ferry_auth::UserStore), String> {
    let permissions = options.permissions.unwrap_or_else(ferry_auth::Permissions::all);
    let (users, storage) = match options.storage.clone() {
        Some(storage) => (
            crate::users_with(users_db, USER, PASSWORD, permissions).await?,
            storage,
        ),
        None => crate::store_with_user(files, users_db, USER, PASSWORD, permissions).await?,
    };
    let mut config = ferry_ftpd::Config {
        passive_ports: PASSIVE_PORTS,
        ..ferry_ftpd::Config::default()
    };
    config.anonymous = options.anonymous;
    if options.ftps || options.implicit {
        let tls = ferry_ftpd::Tls::new(test_identity()).map_err(|e| format!("TLS: {e}"))?;
        config.ftps.tls = Some(Arc::new(tls));
    }
    if let Some(tweak) = options.tweak {
        tweak(&mut config);
    }
    let new_defender = || {
        let d = ferry_auth::defender::Defender::new(config.defender.clone(), Some(users.clone()));
        match &options.clock {
            Some(clock) => d.with_clock(clock.clone()),
            None => d,
        }
    };
    let earlier_run = new_defender();
    for (ip, duration) in &options.bans {
        earlier_run
            .ban(*ip, *duration, "test")
            .await
            .map_err(|e| format!("ban: {e}"))?;
    }
    // A fresh defender, as after a restart: stored bans reach it only through the database.
    let defender = Arc::new(new_defender());
    // The binary's ban-refresh task loads stored bans at start; the test server does it here.
    defender.refresh().await.map_err(|e| format!("load bans: {e}"))?;
    Ok((
        ferry_ftpd::Server::new_with_defender(config, users.clone(), storage, defender),
        users,
    ))
}

pub use crate::clients::{run, run_timeout, skip_unless, Run, CLIENT_TIMEOUT};
