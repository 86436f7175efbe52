//! Two `ferry serve` nodes behind a real HAProxy, as in docs/scale-out.md: one PostgreSQL user
//! database, one S3 bucket (s3s-fs), HAProxy with `send-proxy-v2` on control, implicit FTPS, SSH and
//! each node's own passive range, and real clients (curl, lftp, OpenSSH sftp, rclone, Python ftplib)
//! that reach the balancer from a network namespace of their own, with addresses of their own, so
//! that per-address behaviour (bans, `max_connections_per_ip`) is the real thing.
//!
//! The heavy set-up (PostgreSQL, s3s-fs, the namespace, HAProxy, the two nodes) is made once for this
//! test binary and shared; the tests take turns on it (a lock) and each uses client addresses of its
//! own. HAProxy's configuration is the reference one of docs/scale-out.md, read from there, with the
//! addresses and ports replaced.
//!
//! Clean-up does not depend on the tests ending well: the namespace lives only as long as a small
//! holder process, and every process started here has a watchdog that kills it when the test process
//! ends, however it ends (the veth pair goes with the namespace).
//!
//! Needs root (CAP_NET_ADMIN, to make the namespace and the veth pair), `ip`, `unshare`, `nsenter`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use ferry_testkit::binary::{binary_path, ferry, tempdir, text};
use ferry_testkit::clients::{require, run_timeout, Run};
use ferry_testkit::files::{pseudo_random, sha256};
use ferry_testkit::s3::TestBucket;
use ferry_testkit::wait::wait_every;

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";
const TIMEOUT: Duration = Duration::from_secs(60);
/// Passive ports per node.
const PASSIVE: u16 = 20;
/// `max_connections_per_ip` of both nodes.
const PER_IP: usize = 3;
/// `defender.threshold` of both nodes (a wrong password scores 1).
const BAN_THRESHOLD: usize = 10;

/// The client addresses, one per test (the last octet; the network is the namespace's).
mod client {
    pub const CLIENTS: u8 = 10;
    pub const KILL: u8 = 11;
    pub const BAN: u8 = 12;
    pub const PASSWORD: u8 = 13;
    pub const PER_IP: u8 = 14;
    pub const ALL: [u8; 5] = [CLIENTS, KILL, BAN, PASSWORD, PER_IP];
}

/// One ferry node: its ports on 127.0.0.1 and its process.
struct Node {
    name: &'static str,
    ftp: u16,
    ftps: u16,
    sftp: u16,
    passive: (u16, u16),
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
}

/// Everything the tests share.
struct Cluster {
    /// The namespace holder; the clients run in its network namespace.
    netns: Child,
    /// The network's first three octets (198.18.N).
    net: [u8; 3],
    haproxy: Child,
    stats: PathBuf,
    nodes: [Node; 2],
    bucket: TestBucket,
    url: String,
    ports: Ports,
    dir: tempfile::TempDir,
}

/// The balancer's ports (on the namespace link address).
#[derive(Clone, Copy)]
struct Ports {
    ftp: u16,
    ftps: u16,
    sftp: u16,
}

fn shared() -> MutexGuard<'static, Cluster> {
    static CLUSTER: OnceLock<Mutex<Cluster>> = OnceLock::new();
    static TRIED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let cluster = CLUSTER.get_or_init(|| {
        let again = TRIED.swap(true, std::sync::atomic::Ordering::SeqCst);
        assert!(
            !again,
            "the cluster set-up failed in another test: see its output"
        );
        Mutex::new(Cluster::start())
    });
    let mut guard = cluster.lock().unwrap_or_else(|e| e.into_inner());
    guard.heal();
    guard
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[test]
fn ftp_ftps_and_sftp_clients_through_haproxy_see_one_service() {
    let c = shared();
    let a = client::CLIENTS;
    let local = c.dir.path().join("local-clients");
    std::fs::create_dir_all(&local).expect("mkdir");
    let content = pseudo_random(3 << 20, 1);
    std::fs::write(local.join("up.bin"), &content).expect("write");

    // curl, plain FTP: EPSV upload, then PASV and EPSV downloads (two sessions, so both nodes are
    // likely to take part; whichever answers, the bucket is the same).
    c.curl(a, &["--ftp-create-dirs", "-T", "up.bin"], "curl/up.bin", &local)
        .assert_success();
    assert_eq!(c.bucket.object("curl/up.bin").as_deref(), Some(&content[..]));
    for pasv in [true, false] {
        let flag = if pasv { "--disable-epsv" } else { "--epsv" };
        let run = c.curl(a, &[flag, "-o", "down.bin"], "curl/up.bin", &local);
        run.assert_success();
        assert_eq!(std::fs::read(local.join("down.bin")).expect("read"), content);
        let verb = if pasv { "PASV" } else { "EPSV" };
        assert!(run.stderr.contains(&format!("> {verb}")), "{}", run.dump());
        if pasv {
            // PASV announces the balancer, never a node's own address.
            assert!(
                run.stderr
                    .contains(&format!("({}", c.balancer().to_string().replace('.', ","))),
                "{}",
                run.dump()
            );
        }
    }

    // lftp, explicit FTPS (AUTH TLS, protected data), several transfers in one session.
    let script = format!(
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:verify-certificate no; \
         set net:socket-bind-ipv4 {src}; set net:max-retries 1; set ftp:passive-mode true; \
         open -u {USER},'{PASSWORD}' ftp://{bal}:{port}; \
         mkdir -p lftp; put up.bin -o lftp/one.bin; put up.bin -o lftp/two.bin; \
         get lftp/one.bin -o lftp-back.bin; ls lftp; quit",
        src = c.client(a),
        bal = c.balancer(),
        port = c.ports.ftp,
    );
    let run = c.in_netns("lftp", &local).args(["-c", &script]).run();
    run.assert_success();
    assert!(run.out().contains("two.bin"), "{}", run.dump());
    assert_eq!(std::fs::read(local.join("lftp-back.bin")).expect("read"), content);
    assert_eq!(c.bucket.object("lftp/two.bin").as_deref(), Some(&content[..]));

    // curl, implicit FTPS.
    let url = format!("ftps://{}:{}/lftp/one.bin", c.balancer(), c.ports.ftps);
    let run = c.curl_url(a, &["-k", "--ftp-ssl-reqd", "-o", "implicit.bin"], &url, &local);
    run.assert_success();
    assert_eq!(std::fs::read(local.join("implicit.bin")).expect("read"), content);

    // OpenSSH sftp, three sessions with strict host key checking: both nodes show the same host key.
    let known = c.dir.path().join("known_hosts");
    for i in 0..3 {
        let script = format!("put up.bin sftp-{i}.bin\nget sftp-{i}.bin sftp-back.bin\nls\n");
        let run = c.sftp(a, &known, &script, &local);
        run.assert_success();
        assert_eq!(std::fs::read(local.join("sftp-back.bin")).expect("read"), content);
    }

    // rclone over FTP (its own FTP code, EPSV), a directory both ways.
    std::fs::create_dir_all(local.join("tree/sub")).expect("mkdir");
    std::fs::write(local.join("tree/a.txt"), b"first").expect("write");
    std::fs::write(local.join("tree/sub/b.bin"), pseudo_random(200_000, 2)).expect("write");
    c.rclone(a, &["copy", "tree", ":ftp:rclone"], &local)
        .assert_success();
    c.rclone(a, &["copy", ":ftp:rclone", "tree-back"], &local)
        .assert_success();
    assert_eq!(
        std::fs::read(local.join("tree-back/a.txt")).expect("read"),
        b"first"
    );
    assert_eq!(
        sha256(&std::fs::read(local.join("tree-back/sub/b.bin")).expect("read")),
        sha256(&pseudo_random(200_000, 2))
    );

    // Both nodes served these clients, which could not tell.
    for node in &c.nodes {
        let log = node.log_text();
        assert!(
            log.contains(&format!("peer={}:", c.client(a))) && log.contains("logged in"),
            "node {} served no client session:\n{log}",
            node.name
        );
    }
}

#[test]
fn a_transfer_cut_by_kill_9_of_its_node_completes_on_the_other_when_retried() {
    let mut c = shared();
    let a = client::KILL;
    let local = c.dir.path().join("local-kill");
    std::fs::create_dir_all(&local).expect("mkdir");
    let content = pseudo_random(48 << 20, 3);
    std::fs::write(local.join("big.bin"), &content).expect("write");
    let key = "kill/big.bin";

    // A slow upload, so that it is surely running when its node dies.
    let mut slow = c
        .in_netns("curl", &local)
        .args(curl_args(&c, a))
        .args(["--user", &format!("{USER}:{PASSWORD}")])
        .args(["--limit-rate", "4M", "--ftp-create-dirs", "-T", "big.bin"])
        .arg(format!("ftp://{}:{}/{key}", c.balancer(), c.ports.ftp))
        .spawn_logged(&local.join("slow.log"));
    let started = wait_every(TIMEOUT, Duration::from_millis(50), || {
        !c.bucket.pending_uploads().is_empty()
    });
    assert!(
        started,
        "the upload did not start (no multipart upload in the bucket); curl:\n{}",
        std::fs::read_to_string(local.join("slow.log")).unwrap_or_default()
    );
    let victim = c
        .nodes
        .iter()
        .position(|n| n.log_text().contains(&format!("peer={}:", c.client(a))))
        .expect("no node logged the uploading client");
    let other = 1 - victim;
    c.nodes[victim].kill_9();
    let status = slow.wait().expect("wait curl");
    assert!(!status.success(), "the upload survived the death of its node");
    // Nothing under the final name, in the bucket or in a listing through the surviving node.
    assert!(c.bucket.object(key).is_none(), "a partial object is visible");
    let list = c.curl(a, &["--list-only"], "kill/", &local);
    assert!(!list.out().contains("big.bin"), "listed: {}", list.dump());

    // The retry reaches the other node (HAProxy redispatches) and completes.
    let retry = c.curl(a, &["-T", "big.bin"], key, &local);
    retry.assert_success();
    assert_eq!(
        c.bucket.object(key).map(|o| sha256(&o)),
        Some(sha256(&content)),
        "the retried upload is not what was sent"
    );
    let log = c.nodes[other].log_text();
    assert!(
        log.contains(&format!("peer={}:", c.client(a))),
        "node {} did not take the retry:\n{log}",
        c.nodes[other].name
    );
    drop(c); // `heal` restarts the killed node for the next test
}

#[test]
fn a_ban_decided_on_one_node_refuses_on_the_other() {
    let c = shared();
    let a = client::BAN;
    let local = c.dir.path().join("local-ban");
    std::fs::create_dir_all(&local).expect("mkdir");
    // Wrong passwords spread over the nodes until the address is banned.
    let mut guesses = 0;
    while !c.nodes.iter().any(|n| n.logged_for(&c.client(a), "banned")) {
        assert!(
            guesses < BAN_THRESHOLD * 2,
            "{guesses} wrong passwords and no ban"
        );
        let run = c.curl_as(a, USER, "wrong password", &["--list-only"], "", &local);
        run.assert_failure();
        guesses += 1;
    }
    let decided = c
        .nodes
        .iter()
        .position(|n| n.logged_for(&c.client(a), "banned"))
        .expect("banning node");
    // Every later connection is refused, on both nodes, the right password notwithstanding.
    let mut refused_on = [false; 2];
    let mut tries = 0;
    while !(refused_on[0] && refused_on[1]) {
        assert!(
            tries < 10,
            "{tries} connections and still not refused on both nodes"
        );
        let run = c.curl(a, &["--list-only"], "", &local);
        run.assert_failure();
        assert!(run.stderr.contains("421"), "{}", run.dump());
        for (i, node) in c.nodes.iter().enumerate() {
            refused_on[i] = node.logged_for(&c.client(a), "connection refused: address banned");
        }
        tries += 1;
    }
    eprintln!(
        "ban decided by node {} after {guesses} wrong passwords; both nodes refuse",
        c.nodes[decided].name
    );
    // Another client of the same balancer is not affected.
    c.curl(client::CLIENTS, &["--list-only"], "", &local)
        .assert_success();
}

#[test]
fn a_password_changed_on_one_node_logs_in_on_the_other() {
    let c = shared();
    let a = client::PASSWORD;
    let local = c.dir.path().join("local-password");
    std::fs::create_dir_all(&local).expect("mkdir");
    let (old, new) = ("bob's first long password", "bob's second long password");
    c.cli(&["user", "add", "bob", "--password", old]);
    // Both nodes log bob in (and cache the verification).
    let both = |password: &str, expect_ok: bool| {
        let mut seen = [false; 2];
        let before: Vec<usize> = c.nodes.iter().map(|n| n.log_text().len()).collect();
        for _ in 0..8 {
            let run = c.curl_as(a, "bob", password, &["--list-only"], "", &local);
            if expect_ok {
                run.assert_success();
            } else {
                run.assert_failure();
            }
            for (i, node) in c.nodes.iter().enumerate() {
                let log = node.log_text();
                let fresh = log.get(before[i]..).unwrap_or("");
                let needle = if expect_ok { "logged in" } else { "login failed" };
                seen[i] = fresh
                    .lines()
                    .any(|l| l.contains(&format!("peer={}:", c.client(a))) && l.contains(needle));
            }
            if seen[0] && seen[1] {
                return;
            }
        }
        panic!("not seen on both nodes: {seen:?}");
    };
    both(old, true);
    // The change is made through node 1's configuration (the same database as every node).
    let out = ferry(&c.nodes[0].dir)
        .args(["--users-db", &c.url, "user", "passwd", "bob", "--password", new])
        .output()
        .expect("ferry user passwd");
    assert!(out.status.success(), "{}", text(&out.stderr));
    both(new, true);
    both(old, false);
}

#[test]
fn max_connections_per_ip_holds_across_both_nodes() {
    let c = shared();
    let a = client::PER_IP;
    require("python3");
    let mut held = Vec::new();
    for i in 0..PER_IP {
        let mut s = c.ftplib_session(a);
        let greeting = s.first_line();
        assert!(greeting.starts_with("220"), "connection {i}: {greeting}");
        held.push(s);
    }
    // The connections are spread over both nodes, and the next one is refused wherever it lands.
    for node in &c.nodes {
        assert!(
            node.logged_for(&c.client(a), "connected"),
            "node {} holds none of the {PER_IP} connections",
            node.name
        );
    }
    for _ in 0..2 {
        let mut s = c.ftplib_session(a);
        let reply = s.first_line();
        assert!(reply.starts_with("421"), "connection past the limit: {reply}");
    }
    // A closed connection gives its slot back.
    drop(held.pop());
    let admitted = wait_every(Duration::from_secs(10), Duration::from_millis(1000), || {
        let mut s = c.ftplib_session(a);
        let ok = s.first_line().starts_with("220");
        if ok {
            held.push(s);
        }
        ok
    });
    assert!(admitted, "the slot of a closed connection was not given back");
}

// ---------------------------------------------------------------------------------------------
// The shared set-up
// ---------------------------------------------------------------------------------------------

impl Cluster {
    fn start() -> Cluster {
        for tool in [
            "haproxy", "ip", "unshare", "nsenter", "curl", "lftp", "sftp", "rclone",
        ] {
            require(tool);
        }
        assert!(
            is_root(),
            "the cluster test makes a network namespace and a veth pair: run it as root \
             (scripts/test.sh in CI does)"
        );
        let dir = tempdir();
        let pg = ferry_testkit::postgres::shared();
        let url = pg.url(&pg.fresh_database());
        let bucket = ferry_testkit::s3::bucket();
        let status = ferry(dir.path())
            .args(["--users-db", &url, "user", "add", USER, "--password", PASSWORD])
            .status()
            .expect("ferry user add");
        assert!(status.success(), "ferry user add failed");

        let (netns, net) = make_netns();
        let ports = Ports {
            ftp: free_port(),
            ftps: free_port(),
            sftp: free_port(),
        };
        let base = free_range(2 * PASSIVE);
        let mut nodes = [
            Node::new("node1", dir.path(), (base, base + PASSIVE - 1)),
            Node::new("node2", dir.path(), (base + PASSIVE, base + 2 * PASSIVE - 1)),
        ];
        // Node 1 makes the FTPS certificate and the SSH host key; node 2 uses the same ones, so that
        // clients see one server.
        nodes[0].configure(&url, &bucket, None);
        nodes[0].start();
        let identity = nodes[0].dir.clone();
        nodes[1].configure(&url, &bucket, Some(&identity));
        nodes[1].start();
        let stats = dir.path().join("haproxy.sock");
        let cfg = haproxy_config(Ipv4Addr::from([net[0], net[1], net[2], 1]), ports, &nodes, &stats);
        let cfg_path = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg_path, cfg).expect("write haproxy.cfg");
        let haproxy = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("haproxy.log")).expect("log"))
            .spawn()
            .expect("start haproxy");
        watchdog(haproxy.id());
        let cluster = Cluster {
            netns,
            net,
            haproxy,
            stats,
            nodes,
            bucket,
            url,
            ports,
            dir,
        };
        cluster.wait_all_up();
        cluster
    }

    /// Restarts a node that a test killed, and waits until HAProxy sees every node up.
    fn heal(&mut self) {
        if let Ok(Some(status)) = self.haproxy.try_wait() {
            panic!(
                "haproxy exited ({status}): {}",
                std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
            );
        }
        for node in &mut self.nodes {
            if !node.running() {
                node.start();
            }
        }
        self.wait_all_up();
    }

    fn wait_all_up(&self) {
        let mut last = String::new();
        let log = || std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default();
        let up = wait_every(TIMEOUT, Duration::from_millis(200), || {
            assert!(!log().contains("[ALERT]"), "haproxy failed:\n{}", log());
            last = haproxy_command(&self.stats, "show stat");
            let servers: Vec<&str> = last
                .lines()
                .filter(|l| l.contains(",node1,") || l.contains(",node2,"))
                .filter(|l| l.starts_with("ftp_nodes") || l.starts_with("sftp_nodes"))
                .collect();
            servers.len() == 4 && servers.iter().all(|l| l.contains(",UP,"))
        });
        assert!(
            up,
            "HAProxy does not see both nodes up:\n{last}\nhaproxy's log:\n{}",
            log()
        );
    }

    fn balancer(&self) -> Ipv4Addr {
        Ipv4Addr::from([self.net[0], self.net[1], self.net[2], 1])
    }

    fn client(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::from([self.net[0], self.net[1], self.net[2], last])
    }

    fn cli(&self, args: &[&str]) {
        let out = ferry(self.dir.path())
            .args(["--users-db", &self.url])
            .args(args)
            .output()
            .expect("run ferry");
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }

    /// `program` run in the clients' namespace, in `cwd`.
    fn in_netns(&self, program: &str, cwd: &Path) -> NetnsCommand {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.netns.id().to_string())
            .args(["-n", "--"])
            .arg(program)
            .current_dir(cwd)
            .env("HOME", self.dir.path());
        NetnsCommand(cmd)
    }

    fn curl(&self, a: u8, args: &[&str], path: &str, cwd: &Path) -> Run {
        self.curl_as(a, USER, PASSWORD, args, path, cwd)
    }

    /// curl from client address `a` as `user` with `args`, on `ftp://balancer/path`.
    fn curl_as(&self, a: u8, user: &str, password: &str, args: &[&str], path: &str, cwd: &Path) -> Run {
        let url = format!("ftp://{}:{}/{path}", self.balancer(), self.ports.ftp);
        self.in_netns("curl", cwd)
            .args(curl_args(self, a))
            .args(["--user", &format!("{user}:{password}")])
            .args(args)
            .arg(url)
            .run()
    }

    fn curl_url(&self, a: u8, args: &[&str], url: &str, cwd: &Path) -> Run {
        self.in_netns("curl", cwd)
            .args(curl_args(self, a))
            .args(["--user", &format!("{USER}:{PASSWORD}")])
            .args(args)
            .arg(url)
            .run()
    }

    fn sftp(&self, a: u8, known_hosts: &Path, script: &str, cwd: &Path) -> Run {
        require("sshpass");
        let mut cmd = self.in_netns("sshpass", cwd);
        cmd.args(["-p", PASSWORD, "sftp", "-F", "/dev/null"])
            .args(["-o", "StrictHostKeyChecking=accept-new"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args([
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password",
            ])
            .args(["-o", "NumberOfPasswordPrompts=1", "-o", "BatchMode=no"])
            .arg("-o")
            .arg(format!("BindAddress={}", self.client(a)))
            .args(["-P", &self.ports.sftp.to_string(), "-b", "-"])
            .arg(format!("{USER}@{}", self.balancer()));
        cmd.stdin(script.as_bytes())
    }

    fn rclone(&self, a: u8, args: &[&str], cwd: &Path) -> Run {
        let obscured = Command::new("rclone")
            .args(["obscure", PASSWORD])
            .output()
            .expect("rclone obscure");
        let obscured = text(&obscured.stdout).trim().to_owned();
        let mut cmd = self.in_netns("rclone", cwd);
        cmd.args(args)
            .args(["--config", "/dev/null", "--bind", &self.client(a).to_string()])
            .args(["--ftp-host", &self.balancer().to_string()])
            .args(["--ftp-port", &self.ports.ftp.to_string()])
            .args(["--ftp-user", USER, "--ftp-pass", &obscured])
            .args(["--transfers", "1", "--checkers", "1", "--ftp-concurrency", "2"])
            .args(["--retries", "1", "--low-level-retries", "1"]);
        cmd.run()
    }

    /// A Python ftplib control connection from client address `a`, held open until dropped.
    fn ftplib_session(&self, a: u8) -> Held {
        let script = "import ftplib, sys\n\
            f = ftplib.FTP()\n\
            try:\n    print(f.connect(sys.argv[1], int(sys.argv[2]), timeout=20, source_address=(sys.argv[3], 0)), flush=True)\n\
            except Exception as e:\n    print(e, flush=True)\n    sys.exit(0)\n\
            sys.stdin.read()\n";
        let mut cmd = self.in_netns("python3", self.dir.path()).0;
        cmd.args(["-c", script])
            .arg(self.balancer().to_string())
            .arg(self.ports.ftp.to_string())
            .arg(self.client(a).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("python3");
        watchdog(child.id());
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Held { child, stdin, stdout }
    }
}

impl Node {
    fn new(name: &'static str, top: &Path, passive: (u16, u16)) -> Node {
        let dir = top.join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        Node {
            name,
            ftp: free_port(),
            ftps: free_port(),
            sftp: free_port(),
            passive,
            log: dir.join("serve.log"),
            dir,
            args: Vec::new(),
            child: None,
        }
    }

    /// The node's flags; `identity` is the data directory whose certificate and host key it shares.
    fn configure(&mut self, url: &str, bucket: &TestBucket, identity: Option<&Path>) {
        let mut args: Vec<String> = [
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", self.ftp),
            "--sftp-listen",
            &format!("127.0.0.1:{}", self.sftp),
            "--ftps-implicit=true",
            "--ftps-implicit-listen",
            &format!("127.0.0.1:{}", self.ftps),
            "--passive-ports",
            &format!("{}-{}", self.passive.0, self.passive.1),
            "--users-db",
            url,
            "--proxy-protocol-mode",
            "required",
            "--proxy-protocol-allowed",
            "127.0.0.1",
            "--proxy-protocol-data",
            "header",
            "--ftps-policy",
            "optional",
            "--admin-listen",
            "off",
            "--failed-login-delay-ms",
            "100",
            "--defender-threshold",
            &BAN_THRESHOLD.to_string(),
            "--max-connections-per-ip",
            &PER_IP.to_string(),
            "--log",
            "info",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(bucket.serve_flags(""));
        if let Some(id) = identity {
            for (flag, file) in [
                ("--ftps-certificate", "tls/cert.pem"),
                ("--ftps-private-key", "tls/key.pem"),
                ("--sftp-host-keys", "ssh_host_ed25519_key"),
            ] {
                args.push(flag.to_owned());
                args.push(id.join("ferry-data").join(file).display().to_string());
            }
        }
        self.args = args;
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("node log");
        let mut child = ferry(&self.dir)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary_path().display()));
        watchdog(child.id());
        let ready = wait_every(TIMEOUT, Duration::from_millis(100), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{} exited ({status}):\n{}", self.name, self.log_text());
            }
            [self.ftp, self.ftps, self.sftp]
                .iter()
                .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
        });
        assert!(ready, "{} did not listen:\n{}", self.name, self.log_text());
        self.child = Some(child);
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether a log line about client `ip` contains `needle`.
    fn logged_for(&self, ip: &Ipv4Addr, needle: &str) -> bool {
        let peer = format!("peer={ip}:");
        self.log_text()
            .lines()
            .any(|l| l.contains(&peer) && l.contains(needle))
    }
}

fn curl_args(c: &Cluster, a: u8) -> Vec<String> {
    ["-sS", "-v", "--max-time", "50", "--interface"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([c.client(a).to_string()])
        .collect()
}

/// A command run in the clients' namespace.
struct NetnsCommand(Command);

impl NetnsCommand {
    fn arg(&mut self, a: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.0.arg(a);
        self
    }

    fn args<I, S>(&mut self, a: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.0.args(a);
        self
    }

    fn run(&mut self) -> Run {
        run_timeout(&mut self.0, None, TIMEOUT)
    }

    fn stdin(&mut self, input: &[u8]) -> Run {
        run_timeout(&mut self.0, Some(input), TIMEOUT)
    }

    /// Starts the command in the background, its output going to `log`.
    fn spawn_logged(&mut self, log: &Path) -> Child {
        let file = std::fs::File::create(log).expect("client log");
        let child = self
            .0
            .stdout(file.try_clone().expect("client log"))
            .stderr(file)
            .spawn()
            .expect("spawn client");
        watchdog(child.id());
        child
    }
}

/// A client process holding a connection until dropped.
struct Held {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Held {
    fn first_line(&mut self) -> String {
        let mut line = String::new();
        let _ = self.stdout.read_line(&mut line);
        line.trim().to_owned()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The reference configuration of docs/scale-out.md with this test's addresses and ports.
fn haproxy_config(balancer: Ipv4Addr, ports: Ports, nodes: &[Node; 2], stats: &Path) -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/scale-out.md"))
        .expect("read docs/scale-out.md");
    let start = "<!-- reference haproxy.cfg (crates/ferry/tests/cluster.rs runs it) -->\n```haproxy\n";
    let body = doc
        .split_once(start)
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .map(|(cfg, _)| cfg.to_owned())
        .expect("docs/scale-out.md has no reference haproxy.cfg block");
    let mut cfg = body;
    let mut replace = |from: &str, to: String| {
        assert!(cfg.contains(from), "the reference haproxy.cfg lost {from:?}");
        cfg = cfg.replace(from, &to);
    };
    replace("/run/haproxy/ferry.sock", stats.display().to_string());
    for (i, node) in nodes.iter().enumerate() {
        let ip = format!("10.0.0.2{}", i + 1);
        replace(&format!("{ip}:21 "), format!("127.0.0.1:{} ", node.ftp));
        replace(&format!("{ip}:990 "), format!("127.0.0.1:{} ", node.ftps));
        replace(&format!("{ip}:22 "), format!("127.0.0.1:{} ", node.sftp));
        replace(&format!("{ip} "), "127.0.0.1 ".to_owned());
    }
    replace("203.0.113.10:21\n", format!("{balancer}:{}\n", ports.ftp));
    replace("203.0.113.10:990\n", format!("{balancer}:{}\n", ports.ftps));
    replace("203.0.113.10:22\n", format!("{balancer}:{}\n", ports.sftp));
    replace(
        "203.0.113.10:50000-50099\n",
        format!("{balancer}:{}-{}\n", nodes[0].passive.0, nodes[0].passive.1),
    );
    replace(
        "203.0.113.10:50100-50199\n",
        format!("{balancer}:{}-{}\n", nodes[1].passive.0, nodes[1].passive.1),
    );
    assert!(
        !cfg.contains("203.0.113.") && !cfg.contains("10.0.0."),
        "an address of the reference haproxy.cfg was not replaced:\n{cfg}"
    );
    cfg
}

/// Sends `command` to HAProxy's stats socket; the answer (empty if it cannot be reached yet).
fn haproxy_command(socket: &Path, command: &str) -> String {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(format!("{command}\n").as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A network namespace for the clients, alive as long as its holder process: a veth pair links it to
/// this namespace, where HAProxy listens on 198.18.N.1; the clients have 198.18.N.10 and up.
fn make_netns() -> (Child, [u8; 3]) {
    // The holder ends when this test process does (its parent), taking the namespace with it.
    let holder = Command::new("unshare")
        .args(["--net", "--", "sh", "-c"])
        .arg("while kill -0 $PPID 2>/dev/null; do sleep 1; done")
        .stdin(Stdio::null())
        .spawn()
        .expect("unshare");
    let pid = holder.id();
    let net = [198, 18, (pid % 200 + 20) as u8];
    let host_if = format!("fc{pid}h");
    let ns_if = format!("fc{pid}n");
    let sh = |script: &str| {
        let out = Command::new("sh")
            .args(["-e", "-c", script])
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "network set-up failed: {script}\n{}",
            text(&out.stderr)
        );
    };
    // The holder must have entered its namespace before the veth end is moved into it.
    let own = std::fs::read_link("/proc/self/ns/net").ok();
    let entered = wait_every(Duration::from_secs(5), Duration::from_millis(20), || {
        std::fs::read_link(format!("/proc/{pid}/ns/net")).ok() != own
    });
    assert!(entered, "unshare did not make a network namespace");
    let [a, b, n] = net;
    let mut script = format!(
        "ip link add {host_if} type veth peer name {ns_if}\n\
         ip link set {ns_if} netns {pid}\n\
         ip addr add {a}.{b}.{n}.1/24 dev {host_if}\n\
         ip link set {host_if} up\n\
         nsenter -t {pid} -n ip link set lo up\n\
         nsenter -t {pid} -n ip link set {ns_if} up\n"
    );
    for last in client::ALL {
        script.push_str(&format!(
            "nsenter -t {pid} -n ip addr add {a}.{b}.{n}.{last}/24 dev {ns_if}\n"
        ));
    }
    sh(&script);
    (holder, net)
}

/// Kills process `pid` when this test process ends, however it ends (the process's own end ends the
/// watchdog too).
fn watchdog(pid: u32) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(
            "while kill -0 $PPID 2>/dev/null && kill -0 $1 2>/dev/null; do sleep 1; done; \
             kill -0 $PPID 2>/dev/null || kill -9 $1 2>/dev/null",
        )
        .arg("sh")
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| text(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `len` consecutive ports free on 127.0.0.1 now, below Linux's ephemeral range (32768 and up) so
/// that the outgoing connections of tests running beside this one do not land in it.
fn free_range(len: u16) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    // A different start for each try (and each test process): the low bits of the clock and the pid.
    let mut seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::from(d.subsec_nanos()))
            .unwrap_or(0);
    loop {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let span = u64::from(32_000 - len - 20_000);
        let base = 20_000 + u16::try_from((seed >> 33) % span).expect("below 12,000");
        let held: Vec<_> = (base..base + len)
            .map_while(|p| TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], p))).ok())
            .collect();
        if held.len() == usize::from(len) {
            return base;
        }
        assert!(Instant::now() < deadline, "no {len} free consecutive ports");
    }
}

// ---------------------------------------------------------------------------------------------
// masquerade_networks in `ferry serve` (no cluster needed)
// ---------------------------------------------------------------------------------------------

/// A `masquerade_networks` host name is resolved at start (PASV to a client in its network announces
/// it, not `masquerade_address`) and again on SIGHUP; one that does not resolve stops the start with a
/// message naming the setting and the host.
#[test]
fn masquerade_networks_rules_are_resolved_and_a_bad_host_stops_the_start() {
    use ferry_testkit::binary::{Control, Server};
    let dir = tempdir();
    let mut server = Server::start(
        dir.path(),
        &[
            "--listen",
            "127.0.0.2:0",
            "--masquerade-address",
            "192.0.2.1",
            "--masquerade-networks",
            "10.0.0.0/8=10.0.0.5,127.0.0.0/8=localhost",
        ],
    );
    let addr = server.wait_listening();
    let password = server
        .printed_password()
        .expect("first start prints the password");
    server.wait_logged("masquerade_networks host resolved");
    let mut ctl = Control::connect_greeted(addr);
    ctl.expect("USER ferry", 331);
    ctl.expect(&format!("PASS {password}"), 230);
    let reply = ctl.expect("PASV", 227);
    assert!(
        reply.contains("(127,0,0,1,"),
        "PASV to a 127.0.0.0/8 client: {reply}"
    );
    server.signal("HUP");
    let reply = ctl.expect("PASV", 227);
    assert!(reply.contains("(127,0,0,1,"), "{reply}");
    ctl.expect("QUIT", 221);

    let out = ferry(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--sftp-enabled=false"])
        .args(["--masquerade-networks", "10.0.0.0/8=no-such-host.invalid"])
        .output()
        .expect("ferry serve");
    assert!(!out.status.success(), "started with a host that does not resolve");
    let err = text(&out.stderr);
    assert!(
        err.contains("masquerade_networks") && err.contains("no-such-host.invalid"),
        "{err}"
    );
}
