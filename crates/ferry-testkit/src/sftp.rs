//! Harness for the real-client SFTP tests: a ferry SFTP server on its own tokio runtime over a temp
//! dir (`files/` is the storage root), user [`USER`] with [`PASSWORD`] and an ed25519 key made with
//! `ssh-keygen`, and helpers to run client programs with a time limit.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use ferry_auth::Permissions;
use tempfile::TempDir;

/// The test user's name.
pub const USER: &str = "alice";
/// The test user's password (with a space, which clients must pass through intact).
pub const PASSWORD: &str = "s3cret pw";

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
        TestServer::start_full(parent, perms, tweak, defender, None)
    }

    /// A server whose login defender has these settings (e.g. `score_loopback` on).
    pub fn start_defended(defender: ferry_auth::defender::DefenderConfig) -> TestServer {
        TestServer::start_full(&std::env::temp_dir(), Permissions::all(), |_| {}, defender, None)
    }

    /// A server over `storage` (e.g. `ferry_vfs::MemoryFs`) instead of the local files dir, where
    /// alice has `perms`.
    pub fn start_on(storage: Arc<dyn ferry_vfs::Storage>, perms: Permissions) -> TestServer {
        let defender = ferry_auth::defender::DefenderConfig::default();
        TestServer::start_full(&std::env::temp_dir(), perms, |_| {}, defender, Some(storage))
    }

    fn start_full(
        parent: &Path,
        perms: Permissions,
        tweak: impl FnOnce(&mut ferry_sftpd::Config) + Send + 'static,
        defender: ferry_auth::defender::DefenderConfig,
        storage: Option<Arc<dyn ferry_vfs::Storage>>,
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
                let built = build(
                    &files,
                    &users_db,
                    &host_key_path,
                    perms,
                    public,
                    tweak,
                    defender,
                    storage,
                )
                .await;
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

    /// alice's private key file.
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
        if self.finished.recv_timeout(Duration::from_secs(15)).is_err() && !thread::panicking() {
            eprintln!("warning: ferry test server did not shut down within 15 s");
        }
        if let Err(e) = clean {
            panic!("{e}");
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn build(
    files: &Path,
    users_db: &Path,
    host_key: &Path,
    perms: Permissions,
    public: Option<String>,
    tweak: impl FnOnce(&mut ferry_sftpd::Config),
    defender: ferry_auth::defender::DefenderConfig,
    storage: Option<Arc<dyn ferry_vfs::Storage>>,
) -> Result<Arc<ferry_sftpd::Server>, String> {
    let (users, storage) = match storage {
        Some(storage) => (crate::users_with(users_db, USER, PASSWORD, perms).await?, storage),
        None => crate::store_with_user(files, users_db, USER, PASSWORD, perms).await?,
    };
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

pub use crate::clients::{run, run_timeout, skip_unless, Run, CLIENT_TIMEOUT};
pub use crate::files::{names, sha256_file, write_random};

/// Fails the test (with the install hint) unless python3 can import paramiko; returns `false`.
pub fn skip_unless_paramiko() -> bool {
    crate::clients::skip_unless_python_module("paramiko")
}
