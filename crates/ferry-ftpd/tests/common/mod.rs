//! Shared harness for the real-client integration tests.
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
#![allow(dead_code, unused_imports)] // each test binary uses a different part of the harness

mod control;
mod files;
mod ftps;
pub mod rss;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use control::{parse_pasv, reset, tcp_from, wait_until, Control, Reply};
pub use files::{
    assert_same_tree, make_tree, pseudo_random, read_file, set_mtime, sha256, sha256_file, tree, write_file,
    write_random_file,
};
pub use ftps::{python_ftps, test_identity, PY_FTPS};

/// The test user's name.
pub const USER: &str = "alice";
/// The test user's password (with a space, which clients must pass through intact).
pub const PASSWORD: &str = "s3cret pw";
/// [`PASSWORD`] percent-encoded for URLs.
pub const PASSWORD_URL: &str = "s3cret%20pw";
/// Default time limit for one client process.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
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
    let storage: Arc<dyn ferry_vfs::Storage> =
        Arc::new(ferry_vfs::LocalFs::open(files).map_err(|e| format!("open storage: {e}"))?);
    let users = ferry_auth::UserStore::open(users_db)
        .await
        .map_err(|e| format!("open user store: {e}"))?;
    users
        .add_user(ferry_auth::NewUser {
            name: USER.into(),
            password: ferry_auth::Password::new(PASSWORD.into()),
            home: "/".into(),
            permissions: ferry_auth::Permissions::all(),
        })
        .await
        .map_err(|e| format!("add user: {e}"))?;
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

// ----- client programs ------------------------------------------------------------------------------

/// Whether the test must be skipped because client `tool` is not installed. With
/// `FERRY_REQUIRE_CLIENTS=1` (set by `scripts/test.sh`) a missing client fails the test instead.
pub fn skip_unless(tool: &str) -> bool {
    if on_path(tool) {
        return false;
    }
    if std::env::var("FERRY_REQUIRE_CLIENTS").is_ok_and(|v| v == "1") {
        panic!(
            "client `{tool}` is not installed and FERRY_REQUIRE_CLIENTS=1; run scripts/install-test-deps.sh"
        );
    }
    eprintln!("SKIPPED: client `{tool}` is not installed (run scripts/install-test-deps.sh)");
    true
}

fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(tool)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// What a finished client process printed.
#[derive(Debug)]
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Raw standard output.
    pub stdout: Vec<u8>,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Run {
    /// Standard output, lossily decoded.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with the full output unless the process exited 0.
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "`{}` failed: {}\n{}",
            self.command,
            self.status,
            self.dump()
        );
        self
    }

    /// The exit code (None if killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Both outputs, for assertion messages.
    pub fn dump(&self) -> String {
        format!("--- stdout ---\n{}\n--- stderr ---\n{}", self.out(), self.stderr)
    }
}

/// Runs `cmd` with `stdin` (or nothing) as input, within [`CLIENT_TIMEOUT`].
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Run {
    run_timeout(cmd, stdin, CLIENT_TIMEOUT)
}

/// Runs `cmd` and waits at most `timeout`; on timeout the process is killed and the test fails with
/// whatever it printed.
pub fn run_timeout(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Run {
    let command = describe(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
    let input = stdin.map(<[u8]>::to_vec);
    let mut child_stdin = child.stdin.take();
    let writer = thread::spawn(move || {
        if let (Some(mut s), Some(input)) = (child_stdin.take(), input) {
            let _ = s.write_all(&input);
        }
    });
    let out_reader = drain(child.stdout.take());
    let err_reader = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for `{command}`: {e}"),
        }
    };
    let _ = writer.join();
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    match status {
        Some(status) => Run { command, status, stdout, stderr },
        None => panic!(
            "`{command}` did not finish within {timeout:?}; killed\n--- stdout ---\n{}\n--- stderr ---\n{stderr}",
            String::from_utf8_lossy(&stdout)
        ),
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&shell_quote(a));
    }
    s
}

fn shell_quote(a: &OsStr) -> String {
    let a = a.to_string_lossy();
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
    {
        a.into_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}
