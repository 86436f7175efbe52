//! A throwaway PostgreSQL server: ONE per test binary, started on first use, with a database of its own
//! for each test.
//!
//! The server is Debian's `postgresql` package (`/usr/lib/postgresql/N/bin`), installed by
//! scripts/install-test-deps.sh; a missing server fails the test with the install hint. `initdb` makes
//! a cluster in a temporary directory (trust authentication, user `postgres`, durability off), and the
//! server listens on 127.0.0.1 on a free port and on a Unix socket in that directory. PostgreSQL
//! refuses to run as root: as root, the directory is given to the `postgres` user (or `nobody`) and
//! both programs run as that user through `setpriv`. A small shell watchdog stops the server and
//! removes the directory when the test process exits, however it exits.
//!
//! The server offers TLS with a certificate for 127.0.0.1 and `localhost` signed by a test CA
//! ([`Postgres::ca_file`]), so clients can check it with `sslmode=verify-full`.
//!
//! Every statement is logged (`log_statement = all`, with the database name first), so tests can count
//! the queries ferry makes ([`Postgres::statements`]).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::clients::{require, INSTALL_HINT};

/// The shared server of this test binary.
#[derive(Debug)]
pub struct Postgres {
    port: u16,
    dir: PathBuf,
    /// The watchdog shell (it outlives nothing: it ends with the server, after this process).
    _watchdog: std::process::Child,
}

/// The server of this test binary, started on first use.
pub fn shared() -> &'static Postgres {
    static SERVER: OnceLock<Postgres> = OnceLock::new();
    SERVER.get_or_init(Postgres::start)
}

impl Postgres {
    /// The URL of database `db` (as the superuser `postgres`, no password).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The PEM file of the CA that signed the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The PEM file of a CA that signed nothing the server has (to see verification fail).
    pub fn unrelated_ca_file(&self) -> PathBuf {
        self.dir.join("unrelated-ca.pem")
    }

    /// Creates a new, empty database and returns its name.
    pub fn fresh_database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("t{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        name
    }

    /// Runs `sql` in database `db` with psql; returns what it printed (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
            .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-tAq", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Makes database `db` unreachable: new connections are refused and open ones are ended (the other
    /// databases of the server are not affected). [`Postgres::reconnectable`] undoes it.
    pub fn cut_off(&self, db: &str) {
        self.psql(
            "postgres",
            &format!("ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false"),
        );
        self.psql(
            "postgres",
            &format!("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{db}'"),
        );
    }

    /// Lets clients connect to database `db` again.
    pub fn reconnectable(&self, db: &str) {
        self.psql(
            "postgres",
            &format!("ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true"),
        );
    }

    /// The statements run in database `db` so far, in order, from the server's log.
    pub fn statements(&self, db: &str) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default();
        let prefix = format!("[{db}] LOG:  ");
        log.lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .filter(|rest| rest.starts_with("statement: ") || rest.starts_with("execute "))
            .map(str::to_owned)
            .collect()
    }

    fn start() -> Postgres {
        require("psql");
        require("setpriv");
        let bin = server_bin_dir();
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ferry-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the PostgreSQL directory");
        write_certificates(&dir);
        let run_as = run_as(&dir);
        let status = Command::new(&run_as[0])
            .args(&run_as[1..])
            .arg(bin.join("initdb"))
            .args(["-D"])
            .arg(dir.join("data"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed in {}", dir.display());
        let port = free_port();
        // The watchdog: runs the server until this test process ends, then stops it (fast shutdown) and
        // removes the directory.
        let watchdog = r#"
            dir=$1; shift
            "$@" >"$dir/postgres.log" 2>&1 &
            pg=$!
            while kill -0 "$PPID" 2>/dev/null && kill -0 "$pg" 2>/dev/null; do sleep 1; done
            kill -INT "$pg" 2>/dev/null
            wait "$pg"
            rm -rf "$dir"
        "#;
        let watchdog = Command::new("sh")
            .args(["-c", watchdog, "sh"])
            .arg(&dir)
            .args(&run_as)
            .arg(bin.join("postgres"))
            .arg("-D")
            .arg(dir.join("data"))
            .arg("-k")
            .arg(&dir)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ])
            .args([
                "-c",
                "max_connections=300",
                "-c",
                "log_statement=all",
                "-c",
                "ssl=on",
            ])
            .arg("-c")
            .arg(format!("ssl_cert_file={}", dir.join("server.pem").display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", dir.join("server.key").display()))
            .args(["-c", "log_line_prefix=[%d] ", "-c", "log_min_messages=warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the PostgreSQL watchdog");
        let server = Postgres {
            port,
            dir,
            _watchdog: watchdog,
        };
        let up = crate::wait::wait_every(Duration::from_secs(30), Duration::from_millis(100), || {
            Command::new("psql")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                .args(["-d", "postgres", "-tAqc", "SELECT 1"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(
            up,
            "PostgreSQL did not start; its log:\n{}",
            std::fs::read_to_string(server.dir.join("postgres.log")).unwrap_or_default()
        );
        server
    }
}

/// A test CA (`ca.pem`) and a server certificate for 127.0.0.1 and localhost signed by it
/// (`server.pem`, `server.key`; the key readable by its owner only, as PostgreSQL requires).
fn write_certificates(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let new_ca = || {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ferry test CA");
        let cert = params.self_signed(&key).expect("CA certificate");
        (cert, key)
    };
    let (ca, ca_key) = new_ca();
    std::fs::write(dir.join("unrelated-ca.pem"), new_ca().0.pem()).expect("write unrelated-ca.pem");
    let key = rcgen::KeyPair::generate().expect("server key");
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server params");
    let cert = params.signed_by(&key, &ca, &ca_key).expect("server certificate");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write ca.pem");
    std::fs::write(dir.join("server.pem"), cert.pem()).expect("write server.pem");
    let key_file = dir.join("server.key");
    std::fs::write(&key_file, key.serialize_pem()).expect("write server.key");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod server.key");
}

/// The newest `/usr/lib/postgresql/N/bin` with `initdb` and `postgres` in it.
fn server_bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => {
            panic!("the PostgreSQL server (Debian package `postgresql`) is not installed: {INSTALL_HINT}")
        }
    }
}

/// The command prefix that runs a program as a user PostgreSQL accepts: nothing for an ordinary user;
/// as root, `setpriv` to `postgres` (or `nobody`), who is given `dir`.
fn run_as(dir: &Path) -> Vec<String> {
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return vec!["env".to_owned()];
    }
    let user = ["postgres", "nobody"]
        .into_iter()
        .find(|u| {
            Command::new("id")
                .arg(u)
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("neither a `postgres` nor a `nobody` user to run PostgreSQL as");
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, user]).output().expect("id");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let (uid, gid) = (id("-u"), id("-g"));
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(dir)
        .status()
        .expect("chown");
    assert!(status.success(), "cannot give {} to {user}", dir.display());
    [
        "setpriv",
        "--reuid",
        &uid,
        "--regid",
        &gid,
        "--clear-groups",
        "--",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}
