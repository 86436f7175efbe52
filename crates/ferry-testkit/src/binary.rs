//! The `ferry` binary's end-to-end harness: running the binary in a temporary directory, a
//! `ferry serve` child read line by line, and a minimal FTP control connection.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// The `ferry` binary cargo built next to the running test (`target/<profile>/ferry`; integration
/// tests run from `target/<profile>/deps/`).
pub fn binary_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    let dir = exe.parent().and_then(Path::parent).expect("target directory");
    let bin = dir.join("ferry");
    assert!(
        bin.is_file(),
        "{} not found: run the tests of the ferry crate (cargo builds it)",
        bin.display()
    );
    bin
}

/// Generous: the first start hashes a password and generates a certificate and a host key.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// `ferry` run in `dir`, unaffected by the caller's `FERRY_*` and `RUST_LOG` variables.
pub fn ferry(dir: &Path) -> Command {
    let mut cmd = Command::new(binary_path());
    cmd.current_dir(dir);
    for (key, _) in std::env::vars_os() {
        if key
            .to_str()
            .is_some_and(|k| k.starts_with("FERRY_") || k == "RUST_LOG")
        {
            cmd.env_remove(key);
        }
    }
    cmd
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// A running `ferry serve` (FTP and SFTP on free loopback ports); killed when dropped so a failing test
/// leaves no process behind. Its standard error goes to a file, quoted when an expected line is missing.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    lines: Receiver<String>,
    /// Everything printed on standard output so far.
    pub printed: Vec<String>,
    stderr_log: PathBuf,
}

impl Server {
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let stderr_log = dir.join(format!("serve-stderr-{}.log", N.fetch_add(1, Ordering::Relaxed)));
        let mut child = ferry(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            // Not the default SFTP port 2222: tests run in parallel.
            .args(["--sftp-listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).expect("stderr log"))
            .spawn()
            .expect("spawn ferry serve");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            lines,
            printed: Vec::new(),
            stderr_log,
        }
    }

    /// Waits until the server's standard error (its log) contains `needle`; fails the test, quoting
    /// the log, if it does not within the start-up timeout.
    pub fn wait_logged(&self, needle: &str) {
        let logged = crate::wait::wait_until(STARTUP_TIMEOUT, || {
            std::fs::read_to_string(&self.stderr_log).is_ok_and(|log| log.contains(needle))
        });
        assert!(
            logged,
            "ferry serve did not log {needle:?}; its stderr:\n{}",
            std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
        );
    }

    /// Reads stdout until a line starting with `prefix`; returns the rest of that line.
    pub fn wait_for(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no line starting with {prefix:?}; printed so far: {:?}\nstderr: {}",
                    self.printed,
                    std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
                )
            });
            self.printed.push(line.clone());
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_owned();
            }
        }
    }

    /// Waits for the FTP listening line; returns the address.
    pub fn wait_listening(&mut self) -> SocketAddr {
        self.wait_for("ferry: FTP listening on ")
            .parse()
            .expect("listening address")
    }

    /// The first user's password, if this start printed one.
    pub fn printed_password(&self) -> Option<String> {
        self.printed
            .iter()
            .find_map(|l| l.strip_prefix("ferry: password: ").map(str::to_owned))
    }

    /// The FTPS fingerprint printed at start-up (`ferry: FTPS certificate PATH (SHA-256 FP)`).
    pub fn printed_fingerprint(&self) -> Option<String> {
        self.printed.iter().find_map(|l| {
            l.strip_prefix("ferry: FTPS certificate ")
                .and_then(|rest| rest.split_once("(SHA-256 "))
                .map(|(_, fp)| fp.trim_end_matches(')').to_owned())
        })
    }

    /// Sends signal `name` (e.g. `HUP`) to the server.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal cleartext FTP control connection.
#[derive(Debug)]
pub struct Control {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Control {
    /// Connects; the greeting is left for the caller to read.
    pub fn connect(addr: SocketAddr) -> Control {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        let writer = stream.try_clone().expect("clone");
        Control {
            reader: BufReader::new(stream),
            writer,
        }
    }

    /// Connects and sends a PROXY protocol v1 header naming `client` as the client (for a server that
    /// takes headers from 127.0.0.1), so one test can be many client addresses. The greeting (or the
    /// refusal) is left for the caller to read.
    pub fn connect_as(addr: SocketAddr, client: std::net::IpAddr) -> Control {
        let mut c = Control::connect(addr);
        let family = if client.is_ipv4() { "TCP4" } else { "TCP6" };
        let header = format!("PROXY {family} {client} {} 40000 {}\r\n", addr.ip(), addr.port());
        c.writer.write_all(header.as_bytes()).expect("send PROXY header");
        c
    }

    /// Connects and reads the `220` greeting.
    pub fn connect_greeted(addr: SocketAddr) -> Control {
        let mut c = Control::connect(addr);
        assert_eq!(c.reply().0, 220);
        c
    }

    /// Reads one (possibly multi-line) reply; returns its code and all its lines.
    pub fn reply(&mut self) -> (u16, String) {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read reply");
            assert!(n > 0, "connection closed while waiting for a reply");
            all.push_str(&line);
            let b = line.as_bytes();
            if b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' ' {
                return (line[..3].parse().expect("code"), all.trim_end().to_owned());
            }
        }
    }

    pub fn cmd(&mut self, line: &str) -> (u16, String) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("send");
        self.reply()
    }

    #[track_caller]
    pub fn expect(&mut self, line: &str, code: u16) -> String {
        let (got, text) = self.cmd(line);
        assert_eq!(got, code, "{line} -> {text}");
        text
    }

    /// Reads the final reply of a transfer.
    #[track_caller]
    pub fn expect_final(&mut self, code: u16) {
        let (got, text) = self.reply();
        assert_eq!(got, code, "{text}");
    }

    /// `EPSV`, then a data connection to the announced port.
    pub fn epsv(&mut self, addr: SocketAddr) -> TcpStream {
        let text = self.expect("EPSV", 229);
        let start = text.find("(|||").expect("EPSV reply") + 4;
        let port: u16 = text[start..]
            .split('|')
            .next()
            .expect("port")
            .parse()
            .expect("port number");
        let data = TcpStream::connect_timeout(&SocketAddr::new(addr.ip(), port), IO_TIMEOUT).expect("data");
        data.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        data
    }
}
