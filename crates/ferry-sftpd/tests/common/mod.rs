//! Harness for the real-client SFTP tests: a ferry SFTP server on its own tokio runtime over a temp
//! dir (`files/` is the storage root), user [`USER`] with [`PASSWORD`] and an ed25519 key made with
//! `ssh-keygen`, and helpers to run client programs with a time limit.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use ferry_auth::Permissions;
use tempfile::TempDir;

/// The test user's name.
pub const USER: &str = "alice";
/// The test user's password (with a space, which clients must pass through intact).
pub const PASSWORD: &str = "s3cret pw";
/// Default time limit for one client process.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A running server; shut down on drop.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    dir: TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    finished: mpsc::Receiver<()>,
}

impl TestServer {
    /// A server where alice has every permission.
    pub fn start() -> TestServer {
        TestServer::start_with(Permissions::all(), |_| {})
    }

    /// A server where alice has `perms`, with its config changed by `tweak`.
    pub fn start_with(
        perms: Permissions,
        tweak: impl FnOnce(&mut ferry_sftpd::Config) + Send + 'static,
    ) -> TestServer {
        TestServer::start_in(&std::env::temp_dir(), perms, tweak)
    }

    /// Like [`TestServer::start_with`], with the temp dir under `parent` (e.g. `/dev/shm`).
    pub fn start_in(
        parent: &Path,
        perms: Permissions,
        tweak: impl FnOnce(&mut ferry_sftpd::Config) + Send + 'static,
    ) -> TestServer {
        let defender = ferry_auth::defender::DefenderConfig::default();
        TestServer::start_full(parent, perms, tweak, defender)
    }

    /// A server whose login defender has these settings (e.g. `score_loopback` on).
    pub fn start_defended(defender: ferry_auth::defender::DefenderConfig) -> TestServer {
        TestServer::start_full(&std::env::temp_dir(), Permissions::all(), |_| {}, defender)
    }

    fn start_full(
        parent: &Path,
        perms: Permissions,
        tweak: impl FnOnce(&mut ferry_sftpd::Config) + Send + 'static,
        defender: ferry_auth::defender::DefenderConfig,
    ) -> TestServer {
        if let Ok(filter) = std::env::var("FERRY_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        let dir = tempfile::tempdir_in(parent).expect("temp dir");
        for sub in ["files", "home", "local"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        let key = dir.path().join("home/id_ed25519");
        let keygen = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@test", "-f"])
            .arg(&key)
            .status();
        let has_key = keygen.is_ok_and(|s| s.success());
        let public = std::fs::read_to_string(key.with_extension("pub"))
            .ok()
            .filter(|_| has_key);
        let (files, users_db) = (dir.path().join("files"), dir.path().join("users.db"));
        let host_key_path = dir.path().join("ssh_host_ed25519_key");
        let (addr_tx, addr_rx) = mpsc::channel::<Result<SocketAddr, String>>();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let (finished_tx, finished) = mpsc::channel::<()>();
        thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let built = build(&files, &users_db, &host_key_path, perms, public, tweak, defender).await;
                let server = match built {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = addr_tx.send(Err(e));
                        return;
                    }
                };
                let listener = match tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = addr_tx.send(Err(format!("bind: {e}")));
                        return;
                    }
                };
                let _ = addr_tx.send(listener.local_addr().map_err(|e| e.to_string()));
                ferry_sftpd::serve(listener, server, async move {
                    let _ = shutdown_rx.await;
                })
                .await;
            });
            runtime.shutdown_timeout(Duration::from_secs(5));
            let _ = finished_tx.send(());
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not start")
            .unwrap_or_else(|e| panic!("server failed to start: {e}"));
        TestServer {
            addr,
            dir,
            shutdown: Some(shutdown_tx),
            finished,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The host directory that is the SFTP root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("files")
    }

    /// Host path of SFTP path `rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel.trim_start_matches('/'))
    }

    /// The temp dir (outside the root): a place for escape targets.
    pub fn base(&self) -> &Path {
        self.dir.path()
    }

    /// A client-side scratch path.
    pub fn local(&self, rel: &str) -> PathBuf {
        let p = self.dir.path().join("local").join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir local");
        }
        p
    }

    /// alice's private key file.
    /// The user database the server uses.
    pub fn users_db(&self) -> PathBuf {
        self.dir.path().join("users.db")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("home/id_ed25519")
    }

    /// A client command isolated from the developer's configuration (HOME in the temp dir).
    pub fn client(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("HOME", self.dir.path().join("home"))
            .env("LC_ALL", "C.UTF-8")
            .env_remove("SSH_AUTH_SOCK")
            .current_dir(self.dir.path().join("local"));
        cmd
    }

    /// OpenSSH options: no config files, no host key checks, only alice's key (or only a
    /// password with `key = false`).
    pub fn ssh_options(&self, key: bool) -> Vec<String> {
        let mut o: Vec<String> = [
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=VERBOSE",
            "-o",
            "IdentityAgent=none",
        ]
        .map(String::from)
        .to_vec();
        if key {
            o.extend(
                [
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "IdentitiesOnly=yes",
                    "-o",
                    "PasswordAuthentication=no",
                    "-i",
                ]
                .map(String::from),
            );
            o.push(self.key().display().to_string());
        } else {
            // BatchMode=no first: `sftp -b` turns batch mode (no password prompts) on after our options.
            o.extend(
                [
                    "-o",
                    "BatchMode=no",
                    "-o",
                    "PubkeyAuthentication=no",
                    "-o",
                    "NumberOfPasswordPrompts=1",
                ]
                .map(String::from),
            );
        }
        o
    }

    /// `sftp -b -` with key login, running `script`.
    pub fn sftp_batch(&self, script: &str) -> Run {
        let mut cmd = self.client("sftp");
        cmd.args(self.ssh_options(true))
            .args(["-P", &self.port().to_string(), "-b", "-"])
            .arg(format!("{USER}@127.0.0.1"));
        run(&mut cmd, Some(script.as_bytes()))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if self.finished.recv_timeout(Duration::from_secs(15)).is_err() && !thread::panicking() {
            eprintln!("warning: ferry test server did not shut down within 15 s");
        }
    }
}

async fn build(
    files: &Path,
    users_db: &Path,
    host_key: &Path,
    perms: Permissions,
    public: Option<String>,
    tweak: impl FnOnce(&mut ferry_sftpd::Config),
    defender: ferry_auth::defender::DefenderConfig,
) -> Result<Arc<ferry_sftpd::Server>, String> {
    let storage: Arc<dyn ferry_vfs::Storage> =
        Arc::new(ferry_vfs::LocalFs::open(files).map_err(|e| format!("storage: {e}"))?);
    let users = ferry_auth::UserStore::open(users_db)
        .await
        .map_err(|e| format!("users: {e}"))?;
    users
        .add_user(ferry_auth::NewUser {
            name: USER.into(),
            password: ferry_auth::Password::new(PASSWORD.into()),
            home: "/".into(),
            permissions: perms,
        })
        .await
        .map_err(|e| format!("add user: {e}"))?;
    if let Some(line) = public {
        let record = ferry_sftpd::keys::parse_authorized_key(&line).map_err(|e| e.to_string())?;
        users.add_key(USER, record).await.map_err(|e| e.to_string())?;
    }
    let key = ferry_sftpd::hostkey::load_or_generate(host_key).map_err(|e| e.to_string())?;
    let mut config = ferry_sftpd::Config::new(vec![key.key]);
    tweak(&mut config);
    // Scores and bans as `ferry serve` keeps them (in the user database).
    let defender = ferry_auth::defender::Defender::new(defender, Some(users.clone()));
    Ok(ferry_sftpd::Server::new(
        config,
        users,
        storage,
        Arc::new(defender),
        Arc::new(ferry_admission::LoginGate::new()),
    ))
}

// ----- clients ---------------------------------------------------------------------------------------

/// Whether to skip because `tool` is missing (a failure with `FERRY_REQUIRE_CLIENTS=1`).
pub fn skip_unless(tool: &str) -> bool {
    let found =
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
    if found {
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

/// Whether to skip because python3 cannot import paramiko.
pub fn skip_unless_paramiko() -> bool {
    if skip_unless("python3") {
        return true;
    }
    let ok = Command::new("python3")
        .args(["-c", "import paramiko"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return false;
    }
    if std::env::var("FERRY_REQUIRE_CLIENTS").is_ok_and(|v| v == "1") {
        panic!(
            "python module paramiko is missing and FERRY_REQUIRE_CLIENTS=1; run scripts/install-test-deps.sh"
        );
    }
    eprintln!("SKIPPED: python module paramiko is not installed (run scripts/install-test-deps.sh)");
    true
}

/// What a finished client printed.
#[derive(Debug)]
pub struct Run {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
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

    pub fn assert_failure(&self) -> &Self {
        assert!(
            !self.status.success(),
            "`{}` should have failed\n{}",
            self.command,
            self.dump()
        );
        self
    }

    pub fn dump(&self) -> String {
        format!("--- stdout ---\n{}\n--- stderr ---\n{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` with `stdin`, within [`CLIENT_TIMEOUT`].
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Run {
    run_timeout(cmd, stdin, CLIENT_TIMEOUT)
}

/// Runs `cmd`, killing it (and failing the test) after `timeout`.
pub fn run_timeout(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Run {
    let command = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
    let input = stdin.map(<[u8]>::to_vec);
    let child_stdin = child.stdin.take();
    let writer = thread::spawn(move || {
        if let (Some(mut s), Some(input)) = (child_stdin, input) {
            let _ = s.write_all(&input);
        }
    });
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("wait") {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    };
    let _ = writer.join();
    let (stdout, stderr) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    match status {
        Some(status) => Run {
            command,
            status,
            stdout,
            stderr,
        },
        None => panic!(
            "{command} did not finish within {timeout:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        ),
    }
}

/// Writes `len` pseudo-random bytes (deterministic for a seed) to `path`.
pub fn write_random(path: &Path, len: usize, seed: u64) {
    let mut state = seed | 1;
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        data.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    data.truncate(len);
    std::fs::write(path, data).expect("write random file");
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Names in a host directory (sorted), hiding nothing: upload temp files would show up here.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
