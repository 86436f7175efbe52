//! ferry behind a real HAProxy that sends PROXY protocol v2 headers, with real clients (curl for FTP with
//! EPSV and PASV, OpenSSH sftp). Everything runs on loopback, but on distinct addresses so that the
//! header's client is not the TCP peer: HAProxy listens on 127.0.0.2, the clients connect from
//! 127.0.0.3, HAProxy connects to ferry on 127.0.0.1. ferry must treat 127.0.0.3 as the client: its
//! STAT reply names it, and banning 127.0.0.3 refuses the clients that come through the balancer.
//!
//! Both data deployments are driven: passive ports forwarded without a header (`data = none`) and
//! with one (`data = header`).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_admission::{ProxyData, ProxyMode, ProxyProtocol};
use ferry_auth::defender::{Defender, DefenderConfig};
use ferry_testkit::clients::{require, run_timeout, Run};

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";
const FERRY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const BALANCER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const STRANGER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
const PASSIVE_PORTS: u16 = 4;
const TIMEOUT: Duration = Duration::from_secs(30);

/// In-process FTP and SFTP servers sharing one defender (scoring loopback, so that a ban of a
/// 127.0.0.x address takes effect), with HAProxy in front.
struct Stack {
    ftp: SocketAddr,
    /// Implicit FTPS.
    ftps: SocketAddr,
    sftp: SocketAddr,
    passive: (u16, u16),
    defender: Arc<Defender>,
    runtime: tokio::runtime::Runtime,
    haproxy: Option<Child>,
    dir: tempfile::TempDir,
}

impl Stack {
    fn start(data: ProxyData) -> Stack {
        require("haproxy");
        require("curl");
        require("sftp");
        require("ssh-keygen");
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["files", "home", "local"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        let key = dir.path().join("home/id_ed25519");
        let keygen = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@test", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen");
        assert!(keygen.success(), "ssh-keygen failed");
        let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
        let passive = free_range();
        let proxy = ProxyProtocol {
            mode: ProxyMode::Required,
            allowed: vec![IpAddr::V4(FERRY).into_network()],
            header_timeout: Duration::from_secs(2),
            data,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let root = dir.path().to_owned();
        let (ftp, ftps, sftp, defender) = runtime.block_on(async move {
            let (users, storage) = ferry_testkit::store_with_user(
                &root.join("files"),
                &root.join("users.db"),
                USER,
                PASSWORD,
                ferry_auth::Permissions::all(),
            )
            .await
            .expect("users and storage");
            let record = ferry_sftpd::keys::parse_authorized_key(&public).expect("key");
            users.add_key(USER, record).await.expect("add key");
            let defender = Arc::new(Defender::new(
                DefenderConfig {
                    score_loopback: true,
                    ..DefenderConfig::default()
                },
                Some(users.clone()),
            ));
            let gate = Arc::new(ferry_admission::LoginGate::new());
            let identity = ferry_ftpd::PemIdentity::self_signed(vec!["localhost".into()]).expect("cert");
            let ftp_config = ferry_ftpd::Config {
                passive_ports: passive.0..=passive.1,
                proxy_protocol: proxy.clone(),
                ftps: ferry_ftpd::Ftps {
                    tls: Some(Arc::new(ferry_ftpd::Tls::new(&identity).expect("tls"))),
                    ..ferry_ftpd::Ftps::default()
                },
                ..ferry_ftpd::Config::default()
            };
            let ftp_server = ferry_ftpd::Server::new_shared(
                ftp_config,
                users.clone(),
                Arc::clone(&storage),
                Arc::clone(&defender),
                Arc::clone(&gate),
            );
            let host = ferry_sftpd::hostkey::load_or_generate(&root.join("host_key")).expect("host key");
            let mut sftp_config = ferry_sftpd::Config::new(vec![host.key]);
            sftp_config.proxy_protocol = proxy;
            let sftp_server =
                ferry_sftpd::Server::new(sftp_config, users, storage, Arc::clone(&defender), gate);
            let ftp = tokio::net::TcpListener::bind((FERRY, 0)).await.expect("bind");
            let ftps = tokio::net::TcpListener::bind((FERRY, 0)).await.expect("bind");
            let sftp = tokio::net::TcpListener::bind((FERRY, 0)).await.expect("bind");
            let addr = |l: &tokio::net::TcpListener| l.local_addr().expect("addr");
            let addrs = (addr(&ftp), addr(&ftps), addr(&sftp));
            tokio::spawn(ferry_ftpd::serve(
                ftp,
                Arc::clone(&ftp_server),
                std::future::pending(),
            ));
            tokio::spawn(ferry_ftpd::serve_kind(
                ftps,
                ftp_server,
                ferry_ftpd::ListenerKind::Implicit,
                std::future::pending(),
            ));
            tokio::spawn(ferry_sftpd::serve(sftp, sftp_server, std::future::pending()));
            (addrs.0, addrs.1, addrs.2, defender)
        });
        let mut stack = Stack {
            ftp,
            ftps,
            sftp,
            passive,
            defender,
            runtime,
            haproxy: None,
            dir,
        };
        stack.start_haproxy(data);
        stack
    }

    /// HAProxy in TCP mode: control and SSH frontends with `send-proxy-v2`, and the passive range
    /// forwarded port by port (with a header only for `data = header`).
    fn start_haproxy(&mut self, data: ProxyData) {
        let front = port_block(3);
        let (ftp_front, sftp_front, ftps_front) = (front, front + 1, front + 2);
        let data_header = match data {
            ProxyData::Header => " send-proxy-v2",
            ProxyData::None => "",
        };
        let cfg = format!(
            "global\n  maxconn 100\n  noreuseport\n\
             defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\
             frontend ftp\n  bind {BALANCER}:{ftp_front}\n  default_backend ftp\n\
             backend ftp\n  server ferry {ftp} send-proxy-v2\n\
             frontend passive\n  bind {BALANCER}:{lo}-{hi}\n  default_backend passive\n\
             backend passive\n  server ferry {FERRY}{data_header}\n\
             frontend sftp\n  bind {BALANCER}:{sftp_front}\n  default_backend sftp\n\
             backend sftp\n  server ferry {sftp} send-proxy-v2\n\
             frontend ftps\n  bind {BALANCER}:{ftps_front}\n  default_backend ftps\n\
             backend ftps\n  server ferry {ftps} send-proxy-v2\n",
            ftp = self.ftp,
            ftps = self.ftps,
            sftp = self.sftp,
            lo = self.passive.0,
            hi = self.passive.1,
        );
        let path = self.dir.path().join("haproxy.cfg");
        std::fs::write(&path, cfg).expect("write haproxy.cfg");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start haproxy");
        self.haproxy = Some(child);
        let ftp_addr = SocketAddr::from((BALANCER, ftp_front));
        let deadline = Instant::now() + TIMEOUT;
        while TcpStream::connect(ftp_addr).is_err() {
            if let Some(status) = self.haproxy.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let mut err = String::new();
                if let Some(mut e) = self.haproxy.as_mut().and_then(|c| c.stderr.take()) {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("haproxy exited ({status}): {err}");
            }
            assert!(Instant::now() < deadline, "haproxy did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.ftp = ftp_addr;
        self.sftp = SocketAddr::from((BALANCER, sftp_front));
        self.ftps = SocketAddr::from((BALANCER, ftps_front));
    }

    fn ban(&self, ip: Ipv4Addr) {
        let d = Arc::clone(&self.defender);
        self.runtime
            .block_on(async move { d.ban(IpAddr::V4(ip), Duration::from_secs(600), "test").await })
            .expect("ban");
    }

    fn unban(&self, ip: Ipv4Addr) {
        let d = Arc::clone(&self.defender);
        self.runtime
            .block_on(async move { d.unban(IpAddr::V4(ip)).await })
            .expect("unban");
    }

    /// curl from the client address through the balancer, with `args` and `ftp://…/path`.
    fn curl(&self, args: &[&str], path: &str) -> Run {
        self.curl_url(args, &format!("ftp://{}/{path}", self.ftp))
    }

    /// curl from the client address with `args` and `url`.
    fn curl_url(&self, args: &[&str], url: &str) -> Run {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "-v",
            "--max-time",
            "20",
            "--interface",
            &CLIENT.to_string(),
        ])
        .args(["--user", &format!("{USER}:{PASSWORD}")])
        .args(args)
        .arg(url)
        .current_dir(self.dir.path().join("local"));
        run_timeout(&mut cmd, None, TIMEOUT)
    }

    /// OpenSSH sftp from the client address through the balancer, running `script`.
    fn sftp(&self, script: &str) -> Run {
        let mut cmd = Command::new("sftp");
        cmd.env("HOME", self.dir.path().join("home"))
            .env_remove("SSH_AUTH_SOCK")
            .current_dir(self.dir.path().join("local"))
            .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "IdentityAgent=none"])
            .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
            .args(["-o", "PasswordAuthentication=no", "-o", "ConnectTimeout=20"])
            .args(["-o", &format!("BindAddress={CLIENT}")])
            .arg("-i")
            .arg(self.dir.path().join("home/id_ed25519"))
            .args(["-P", &self.sftp.port().to_string(), "-b", "-"])
            .arg(format!("{USER}@{}", self.sftp.ip()));
        run_timeout(&mut cmd, Some(script.as_bytes()), TIMEOUT)
    }

    fn local(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join("local").join(name)
    }

    fn served(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join("files").join(name)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(mut child) = self.haproxy.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

trait IntoNetwork {
    fn into_network(self) -> ferry_auth::defender::Network;
}

impl IntoNetwork for IpAddr {
    fn into_network(self) -> ferry_auth::defender::Network {
        self.to_string().parse().expect("network")
    }
}

/// A run of `n` (at most 8) ports free now on both the balancer's and ferry's address, for HAProxy's
/// frontends and the passive range. HAProxy needs fixed ports, so they are taken from 20000–29999,
/// below the ephemeral range that port-0 binds use, in blocks of 8 that the tests of this process
/// never share; HAProxy runs with `noreuseport`, so a clash with another process fails loudly
/// instead of two balancers sharing a port.
fn port_block(n: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(2_654_435_761) >> 4;
    for _ in 0..200 {
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = 20_000 + (seed.wrapping_add(k) % 1250) as u16 * 8;
        let free = (base..base + n)
            .all(|p| TcpListener::bind((BALANCER, p)).is_ok() && TcpListener::bind((FERRY, p)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free run of {n} ports on loopback");
}

/// The passive range: [`PASSIVE_PORTS`] ports.
fn free_range() -> (u16, u16) {
    let lo = port_block(PASSIVE_PORTS);
    (lo, lo + PASSIVE_PORTS - 1)
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).expect("write");
}

/// Uploads with EPSV, lists with EPSV, downloads with PASV, all through the balancer; STAT names the
/// header's client; a ban of that client refuses it at the door.
fn ftp_through_the_balancer(data: ProxyData) {
    let stack = Stack::start(data);
    let payload = ferry_testkit::files::pseudo_random(300_000, 7);
    write(&stack.local("up.bin"), &payload);
    stack.curl(&["-T", "up.bin"], "up.bin").assert_success();
    assert_eq!(std::fs::read(stack.served("up.bin")).expect("uploaded"), payload);

    let listed = stack.curl(&["-Q", "STAT"], "");
    let list = listed.assert_success().dump();
    assert!(listed.out().contains("up.bin"), "EPSV listing: {list}");
    assert!(
        list.contains(&format!("Connected from {CLIENT}")),
        "STAT should name the header's client: {list}"
    );
    assert!(list.contains("229 "), "curl used EPSV: {list}");

    let pasv = stack.curl(&["--disable-epsv", "-o", "down.bin"], "up.bin");
    pasv.assert_success();
    let dump = pasv.dump();
    assert!(
        dump.contains(&format!(
            "227 Entering Passive Mode ({},",
            BALANCER.to_string().replace('.', ",")
        )),
        "PASV announces the balancer's address: {dump}"
    );
    assert_eq!(
        std::fs::read(stack.local("down.bin")).expect("downloaded"),
        payload
    );

    stack.ban(CLIENT);
    let refused = stack.curl(&[], "");
    refused.assert_failure();
    assert!(refused.dump().contains("banned"), "{}", refused.dump());
    stack.unban(CLIENT);
    stack.curl(&[], "").assert_success();

    // Implicit FTPS through the balancer: the header comes before the TLS handshake.
    let ftps = stack.curl_url(&["-k", "-Q", "STAT"], &format!("ftps://{}/", stack.ftps));
    let dump = ftps.assert_success().dump();
    assert!(ftps.out().contains("up.bin"), "implicit FTPS listing: {dump}");
    assert!(dump.contains(&format!("Connected from {CLIENT}")), "{dump}");
}

#[test]
fn ftp_epsv_and_pasv_through_haproxy_without_data_headers() {
    ftp_through_the_balancer(ProxyData::None);
}

#[test]
fn ftp_epsv_and_pasv_through_haproxy_with_data_headers() {
    ftp_through_the_balancer(ProxyData::Header);
}

#[test]
fn sftp_through_haproxy_is_the_header_client() {
    let stack = Stack::start(ProxyData::None);
    let payload = ferry_testkit::files::pseudo_random(200_000, 9);
    write(&stack.local("s.bin"), &payload);
    let run = stack.sftp("put s.bin\nget s.bin back.bin\n");
    run.assert_success();
    assert_eq!(std::fs::read(stack.served("s.bin")).expect("uploaded"), payload);
    assert_eq!(
        std::fs::read(stack.local("back.bin")).expect("downloaded"),
        payload
    );
    stack.ban(CLIENT);
    stack.sftp("ls\n").assert_failure();
    // The balancer's own address is not banned: only the client named in the header is.
    stack.unban(CLIENT);
    stack.ban(STRANGER);
    stack.sftp("ls\n").assert_success();
}

#[test]
fn required_mode_refuses_missing_headers_and_strangers() {
    let stack = Stack::start(ProxyData::None);
    // Straight to ferry from an allowed address, without a header: closed without a greeting.
    let backend = backend_addr(&stack);
    let mut s = TcpStream::connect(backend).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(buf.is_empty(), "no greeting without a header: {buf:?}");
    // From an address outside `allowed`, even with a header: closed at once.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from((STRANGER, 0)).into())
        .expect("bind stranger");
    socket.connect(&backend.into()).expect("connect");
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = s.write_all(b"PROXY TCP4 192.0.2.1 127.0.0.1 1000 21\r\n");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(buf.is_empty(), "no greeting for a stranger: {buf:?}");
}

/// ferry's own FTP listener (behind HAProxy), read back from the HAProxy configuration.
fn backend_addr(stack: &Stack) -> SocketAddr {
    let cfg = std::fs::read_to_string(stack.dir.path().join("haproxy.cfg")).expect("cfg");
    let line = cfg
        .lines()
        .find(|l| l.contains("server ferry") && l.contains("send-proxy-v2") && l.contains(':'))
        .expect("ftp backend line");
    line.split_whitespace()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .expect("backend address")
}

/// `masquerade_address` as a host name: `ferry serve` resolves it at start and again on SIGHUP, and
/// PASV announces the resolved address instead of the one the client connected to (127.0.0.2 here,
/// while `localhost` is 127.0.0.1).
#[test]
fn masquerade_host_name_is_resolved_at_start_and_on_sighup() {
    use ferry_testkit::binary::{Control, Server};
    let dir = ferry_testkit::binary::tempdir();
    let mut server = Server::start(
        dir.path(),
        &["--listen", "127.0.0.2:0", "--masquerade-address", "localhost"],
    );
    let mut addrs = vec![server.wait_listening(), server.wait_listening()];
    addrs.retain(|a| a.ip() == IpAddr::V4(BALANCER));
    let addr = addrs.pop().expect("a listener on 127.0.0.2");
    let password = server
        .printed_password()
        .expect("first start prints the password");
    server.wait_logged("masquerade_address resolved");
    let pasv = |ctl: &mut Control| ctl.expect("PASV", 227);
    let mut ctl = Control::connect_greeted(addr);
    ctl.expect("USER ferry", 331);
    ctl.expect(&format!("PASS {password}"), 230);
    let reply = pasv(&mut ctl);
    assert!(
        reply.contains("(127,0,0,1,"),
        "PASV announces localhost's address: {reply}"
    );
    server.signal("HUP");
    server.wait_logged("masquerade_address resolved again");
    let reply = pasv(&mut ctl);
    assert!(reply.contains("(127,0,0,1,"), "{reply}");
    ctl.expect("QUIT", 221);
}
