//! A real S3 server for tests: one `s3s-fs` per test binary, started on first use on a free
//! loopback port, with fixed test credentials; each test takes a bucket of its own.
//!
//! `s3s-fs` keeps objects as plain files (`<root>/<bucket>/<key>`), which lets tests look behind the
//! S3 API: [`TestBucket::pending_uploads`] finds multipart uploads that were neither completed nor
//! aborted. A missing `s3s-fs` fails the test with the install hint. The server (and its files)
//! goes away within a second of the test binary's exit: a small shell watchdog kills it.
//!
//! The file depends on nothing else in the test kit (std, `base64`, `ferry_vfs` only), so that
//! ferry-vfs's own tests can use it with `#[path]` without depending on the whole kit.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;

/// Access key of the test server.
pub const ACCESS_KEY: &str = "ferry-test-access-key";
/// Secret key of the test server.
pub const SECRET_KEY: &str = "ferry-test-secret-key-not-secret";
/// The `s3s-fs` version `scripts/install-test-deps.sh` installs.
pub const S3S_FS_VERSION: &str = "0.14.1";

/// Runs `moto_server` (moto's S3 in server mode, PyPI, version pinned by install-test-deps) as a
/// second S3 implementation: in memory, so tests see it only through the S3 API; it lists bare
/// directory markers as real S3 does.
pub const MOTO_VERSION: &str = "5.2.5";

/// The shared server of this test binary.
#[derive(Debug)]
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The directory `s3s-fs` serves.
    pub root: PathBuf,
    _watchdog: Mutex<Child>,
}

static SERVER: OnceLock<S3Server> = OnceLock::new();
static MOTO: OnceLock<S3Server> = OnceLock::new();

/// The shared moto server, started on first use.
pub fn moto() -> &'static S3Server {
    MOTO.get_or_init(S3Server::start_moto)
}

/// A fresh, empty bucket on the shared moto server (only the S3 API sees into it).
pub fn moto_bucket() -> TestBucket {
    let server = moto();
    let name = bucket_name();
    let addr = server.endpoint.trim_start_matches("http://");
    // CreateBucket; moto does not check signatures.
    let mut stream = TcpStream::connect(addr).expect("connect to moto");
    let request =
        format!("PUT /{name} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    std::io::Write::write_all(&mut stream, request.as_bytes()).expect("CreateBucket");
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut stream, &mut reply).expect("CreateBucket reply");
    assert!(
        reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200"),
        "CreateBucket: {reply}"
    );
    TestBucket {
        name,
        endpoint: server.endpoint.clone(),
        root: server.root.clone(),
    }
}

/// The shared server, started on first use.
pub fn server() -> &'static S3Server {
    SERVER.get_or_init(S3Server::start)
}

/// A fresh, empty bucket on the shared server.
pub fn bucket() -> TestBucket {
    let server = server();
    let name = bucket_name();
    // s3s-fs's CreateBucket is exactly this.
    std::fs::create_dir(server.root.join(&name)).expect("create bucket directory");
    TestBucket {
        name,
        endpoint: server.endpoint.clone(),
        root: server.root.clone(),
    }
}

/// A fresh bucket whose objects are the files under `dir` (s3s-fs keeps a bucket's objects as the
/// files of its directory, here a symlink to `dir`).
pub fn bucket_at(dir: &Path) -> TestBucket {
    let server = server();
    let name = bucket_name();
    std::os::unix::fs::symlink(dir, server.root.join(&name)).expect("link bucket directory");
    TestBucket {
        name,
        endpoint: server.endpoint.clone(),
        root: server.root.clone(),
    }
}

fn bucket_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("t{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

impl S3Server {
    fn start() -> S3Server {
        require_s3s_fs();
        let root = std::env::temp_dir().join(format!(
            "ferry-s3s-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&root).expect("s3s-fs root");
        let mut last_log = String::new();
        // Another process may take the free port before s3s-fs binds it: try a few.
        for _ in 0..5 {
            let port = free_port();
            let log = root.with_extension("log");
            let mut child = watchdog(port, &root, &log);
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            let up = loop {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break true;
                }
                if child.try_wait().ok().flatten().is_some() || std::time::Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            if up && child.try_wait().ok().flatten().is_none() {
                return S3Server {
                    endpoint: format!("http://{addr}"),
                    root,
                    _watchdog: Mutex::new(child),
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("s3s-fs did not start; its output:\n{last_log}");
    }
}

impl S3Server {
    fn start_moto() -> S3Server {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("moto_server").is_file()));
        assert!(
            found,
            "S3 server `moto_server` (moto[server] {MOTO_VERSION}) is not installed: run \
             scripts/install-test-deps.sh (scripts/test.sh does it for you)"
        );
        let root = std::env::temp_dir().join(format!("ferry-moto-{}", std::process::id()));
        std::fs::create_dir_all(&root).expect("moto dir");
        for _ in 0..5 {
            let port = free_port();
            let log = root.join("moto.log");
            let mut child = spawn_watched(
                r#"moto_server -H 127.0.0.1 -p "$1" >"$5" 2>&1 &"#,
                port,
                &root,
                &log,
            );
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if wait_up(addr, &mut child, Duration::from_secs(30)) {
                return S3Server {
                    endpoint: format!("http://{addr}"),
                    root,
                    _watchdog: Mutex::new(child),
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "moto_server did not start; see {}",
            root.join("moto.log").display()
        );
    }
}

/// Whether the server at `addr` accepts connections within `limit` (false if it exited).
fn wait_up(addr: SocketAddr, child: &mut Child, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return child.try_wait().ok().flatten().is_none();
        }
        if child.try_wait().ok().flatten().is_some() || std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fails the test, with the install hint, unless `s3s-fs` is on `PATH`.
fn require_s3s_fs() {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("s3s-fs").is_file()));
    assert!(
        found,
        "S3 server `s3s-fs` {S3S_FS_VERSION} is not installed: run scripts/install-test-deps.sh \
         (scripts/test.sh does it for you)"
    );
}

/// `s3s-fs` under a shell that kills it (and removes its files) when this test process is gone.
fn watchdog(port: u16, root: &Path, log: &Path) -> Child {
    spawn_watched(
        r#"s3s-fs --host 127.0.0.1 --port "$1" --access-key "$2" --secret-key "$3" "$4" >"$5" 2>&1 &"#,
        port,
        root,
        log,
    )
}

/// Runs `start` (a shell line that starts a server in the background, with `$1` port, `$2`/`$3` the
/// test keys, `$4` the root and `$5` the log) under a shell that kills the server, and removes its
/// files, once this test process (`$6`) is gone.
fn spawn_watched(start: &str, port: u16, root: &Path, log: &Path) -> Child {
    let script = format!(
        r#"
        {start}
        server=$!
        while kill -0 "$6" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 0.3; done
        kill "$server" 2>/dev/null
        wait "$server" 2>/dev/null
        rm -rf "$4" "$5"
    "#
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("ferry-s3-watchdog")
        .arg(port.to_string())
        .arg(ACCESS_KEY)
        .arg(SECRET_KEY)
        .arg(root)
        .arg(log)
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh for the S3 server")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A bucket of one test.
#[derive(Debug, Clone)]
pub struct TestBucket {
    /// Bucket name.
    pub name: String,
    /// The server's endpoint.
    pub endpoint: String,
    root: PathBuf,
}

impl TestBucket {
    /// Settings for ferry's S3 back-end on this bucket (path-style, test credentials), with `prefix`.
    pub fn config(&self, prefix: &str) -> ferry_vfs::s3::S3Config {
        ferry_vfs::s3::S3Config {
            endpoint: Some(self.endpoint.clone()),
            bucket: self.name.clone(),
            region: "us-east-1".into(),
            prefix: prefix.into(),
            path_style: true,
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(SECRET_KEY.into()),
            danger_allow_dir_rename: false,
        }
    }

    /// The `ferry serve` flags for this bucket.
    pub fn serve_flags(&self, prefix: &str) -> Vec<String> {
        [
            "--storage-backend",
            "s3",
            "--storage-endpoint",
            &self.endpoint,
            "--storage-bucket",
            &self.name,
            "--storage-prefix",
            prefix,
            "--storage-path-style",
            "--storage-access-key-id",
            ACCESS_KEY,
            "--storage-secret-access-key",
            SECRET_KEY,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    /// The directory holding this bucket's objects (`<dir>/<key>`), to check what S3 really stores.
    pub fn dir(&self) -> PathBuf {
        self.root.join(&self.name)
    }

    /// The object `key` as stored, if it exists as a file.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        let path = self.dir().join(key);
        path.is_file().then(|| std::fs::read(path).expect("read object"))
    }

    /// Fails unless this bucket holds nothing but what clients stored: no multipart upload left
    /// open (a dropped upload is aborted in the background, so this waits up to 10 s), no upload
    /// temp key, and every hidden directory marker `.ferry-dir` empty. (s3s-fs does not implement
    /// ListMultipartUploads; its upload files are read instead, see [`TestBucket::pending_uploads`].)
    pub fn assert_clean(&self) {
        if let Err(e) = self.check_clean() {
            panic!("{e}");
        }
    }

    /// What [`TestBucket::assert_clean`] checks, as a result.
    pub fn check_clean(&self) -> Result<(), String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut pending = self.pending_uploads();
        while !pending.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            pending = self.pending_uploads();
        }
        if !pending.is_empty() {
            return Err(format!(
                "bucket {}: multipart uploads left open (neither completed nor aborted) for {pending:?}",
                self.name
            ));
        }
        let mut stray = Vec::new();
        let mut dirs = vec![self.dir()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if path.is_dir() {
                    dirs.push(path);
                } else if name.starts_with(".ferry-upload")
                    || name.starts_with(".tmp.")
                    || (name == ".ferry-dir" && entry.metadata().map_or(true, |m| m.len() != 0))
                {
                    stray.push(path);
                }
            }
        }
        if !stray.is_empty() {
            return Err(format!("bucket {}: keys no client stored: {stray:?}", self.name));
        }
        Ok(())
    }

    /// Keys of this bucket's multipart uploads that were started and neither completed nor aborted
    /// (what a lifecycle rule would have to clean up).
    pub fn pending_uploads(&self) -> Vec<String> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let head = format!(".bucket-{}.object-", b64.encode(&self.name));
        let mut pending = Vec::new();
        for entry in std::fs::read_dir(&self.root).expect("read s3s-fs root").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(&head) else {
                continue;
            };
            let Some((key, upload)) = rest.split_once(".upload-") else {
                continue;
            };
            let Some(upload) = upload.strip_suffix(".metadata.json") else {
                continue;
            };
            let open = self.root.join(format!(".upload-{upload}.json")).exists()
                || std::fs::read_dir(&self.root)
                    .expect("read s3s-fs root")
                    .flatten()
                    .any(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(&format!(".upload_id-{upload}."))
                    });
            if open {
                let key = b64
                    .decode(key)
                    .map(|k| String::from_utf8_lossy(&k).into_owned())
                    .unwrap_or_else(|_| key.to_owned());
                pending.push(key);
            }
        }
        pending
    }
}
