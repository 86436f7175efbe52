//! Several `ferry serve` nodes on one PostgreSQL user database (a real server, one per test binary,
//! a database per test): the `ferry user` and `ferry ban` commands work against it, a ban decided on
//! one node refuses the address on the other within 2 s, `max_connections_per_ip` holds across the
//! nodes (and a killed node's slots free themselves), a password changed anywhere is in force on every
//! node at the next login, and a database that cannot be reached is refused at the door (or admitted,
//! with `cluster.fail_open`) while loopback is always admitted.
//!
//! The nodes take PROXY protocol headers from 127.0.0.1, so one test can be many client addresses.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use ferry_testkit::binary::{ferry, tempdir, text, Control, Server};
use ferry_testkit::postgres::{self, Postgres};
use ferry_testkit::wait::wait_every;

const PASSWORD: &str = "correct horse battery staple";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

/// A fresh database with user `alice`; its URL.
fn database(pg: &Postgres) -> (String, String) {
    let db = pg.fresh_database();
    let url = pg.url(&db);
    let dir = tempdir();
    let out = cli(
        dir.path(),
        &url,
        &["user", "add", "alice", "--password", PASSWORD],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    (db, url)
}

fn cli(dir: &Path, url: &str, args: &[&str]) -> Output {
    // The database first: `user key add` takes every later argument as a key.
    ferry(dir)
        .args(["--users-db", url])
        .args(args)
        .output()
        .expect("run ferry")
}

/// A node on `url` taking PROXY headers from loopback, FTP only, no TLS; `extra` flags on top.
struct Node {
    server: Server,
    addr: SocketAddr,
    sftp: Option<SocketAddr>,
    _dir: tempfile::TempDir,
}

fn node(url: &str, extra: &[&str]) -> Node {
    node_with(url, false, extra)
}

/// A node as [`node`] makes, with SFTP on a free port when `sftp` is set; the SFTP address is the
/// second returned.
fn node_with(url: &str, sftp: bool, extra: &[&str]) -> Node {
    let dir = tempdir();
    let mut args = vec![
        "--users-db",
        url,
        if sftp {
            "--sftp-enabled=true"
        } else {
            "--sftp-enabled=false"
        },
        "--proxy-protocol-mode",
        "optional",
        "--proxy-protocol-allowed",
        "127.0.0.1",
        "--ftps-policy",
        "off",
        "--ftps-loopback-policy",
        "off",
        "--admin-listen",
        "127.0.0.1:0",
        "--failed-login-delay-ms",
        "100",
    ];
    args.extend_from_slice(extra);
    let mut server = Server::start(dir.path(), &args);
    let addr = server.wait_listening();
    let sftp = sftp.then(|| {
        server
            .wait_for("ferry: SFTP listening on ")
            .parse()
            .expect("SFTP address")
    });
    Node {
        server,
        addr,
        sftp,
        _dir: dir,
    }
}

/// Whether `sftp` logs in as alice with `password` and runs `pwd`.
fn sftp_login(addr: SocketAddr, password: &str) -> bool {
    ferry_testkit::clients::require("sshpass");
    ferry_testkit::clients::require("sftp");
    let mut cmd = std::process::Command::new("sshpass");
    cmd.args(["-p", password, "sftp", "-o", "BatchMode=no", "-b", "-"])
        .args(["-P", &addr.port().to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args([
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password",
        ])
        .args(["-o", "NumberOfPasswordPrompts=1", "-o", "LogLevel=ERROR"])
        .arg(format!("alice@{}", addr.ip()));
    let run = ferry_testkit::clients::run_timeout(&mut cmd, Some(b"pwd\n"), Duration::from_secs(20));
    if run.code() != Some(0) {
        eprintln!("sftp did not log in: {}", run.dump());
    }
    run.code() == Some(0)
}

/// The first reply to a connection from `client` (220, or the 421 that refuses it) and the connection.
fn arrive(addr: SocketAddr, client: IpAddr) -> (u16, String, Control) {
    let mut c = Control::connect_as(addr, client);
    let (code, text) = c.reply();
    (code, text, c)
}

/// Logs in from `client` with `password`: the reply code to PASS (or the refusal at the door).
fn login(addr: SocketAddr, client: IpAddr, password: &str) -> u16 {
    let (code, _, mut c) = arrive(addr, client);
    if code != 220 {
        return code;
    }
    c.expect("USER alice", 331);
    let (code, _) = c.cmd(&format!("PASS {password}"));
    if code == 230 {
        c.expect("QUIT", 221);
    }
    code
}

#[test]
fn user_and_ban_commands_work_against_postgres() {
    let pg = postgres::shared();
    let (_db, url) = database(pg);
    let dir = tempdir();
    let d = dir.path();
    let ok = |args: &[&str]| {
        let out = cli(d, &url, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    ok(&["user", "add", "bob", "--password", "another long password"]);
    let list = ok(&["user", "list"]);
    assert!(list.contains("alice") && list.contains("bob"), "{list}");
    ok(&["user", "perms", "bob", "list,read"]);
    ok(&["user", "home", "bob", "/bob"]);
    ok(&["user", "disable", "bob"]);
    let show = ok(&["user", "show", "bob"]);
    assert!(
        show.contains("/bob") && show.contains("enabled:     no"),
        "{show}"
    );
    ferry_testkit::clients::require("ssh-keygen");
    let key = d.join("key");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "bob@test", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    std::fs::remove_file(&key).expect("rm key");
    std::fs::remove_file(key.with_extension("pub")).expect("rm key.pub");
    ok(&["user", "key", "add", "bob", public.trim()]);
    let keys = ok(&["user", "key", "list", "bob"]);
    let fingerprint = keys
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no fingerprint in {keys}"))
        .to_owned();
    assert!(keys.contains("bob@test"), "{keys}");
    ok(&["user", "key", "del", "bob", &fingerprint]);
    assert!(!ok(&["user", "key", "list", "bob"]).contains(&fingerprint));
    ok(&["user", "forward", "add", "bob", "db.internal:5432"]);
    assert!(ok(&["user", "forward", "list", "bob"]).contains("db.internal:5432"));
    ok(&["user", "passwd", "bob", "--password", "a third long password"]);
    ok(&["user", "del", "bob"]);
    assert!(!ok(&["user", "list"]).contains("bob"));
    ok(&["ban", "add", "203.0.113.5", "--secs", "600", "--reason", "test"]);
    let bans = ok(&["ban", "list"]);
    assert!(bans.contains("203.0.113.5") && bans.contains("test"), "{bans}");
    assert!(ok(&["ban", "del", "203.0.113.5"]).contains("lifted"));
    assert!(ok(&["ban", "list"]).contains("no bans"));
    // A URL is never taken for a path.
    let entries: Vec<_> = std::fs::read_dir(d)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        entries.is_empty(),
        "files left in the working directory: {entries:?}"
    );
}

#[test]
fn a_database_url_of_another_kind_is_refused_naming_the_setting() {
    let dir = tempdir();
    let out = cli(dir.path(), "mysql://root@127.0.0.1/ferry", &["user", "list"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("--users-db") && err.contains("`mysql://` is not a supported database"),
        "{err}"
    );
    let out = cli(dir.path(), "postgres://127.0.0.1:1/nothing", &["user", "list"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("users_db"), "{err}");
    assert!(
        std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
        "nothing may be created for a URL"
    );
}

#[test]
fn a_ban_on_one_node_refuses_the_address_on_the_other_within_two_seconds() {
    let pg = postgres::shared();
    let (_db, url) = database(pg);
    let flags = ["--defender-threshold", "3"];
    let (a, b) = (node(&url, &flags), node(&url, &flags));
    let guesser = ip("203.0.113.7");
    assert_eq!(arrive(b.addr, guesser).0, 220, "not banned yet");
    let (code, _, mut c) = arrive(a.addr, guesser);
    assert_eq!(code, 220);
    let mut banned_at = Instant::now();
    for _ in 0..3 {
        c.expect("USER alice", 331);
        // Measured from the guess that bans (its 530 comes only after the failed-login delay).
        banned_at = Instant::now();
        let (code, _) = c.cmd("PASS wrong");
        assert_eq!(code, 530);
    }
    let mut refusal = String::new();
    let refused = wait_every(Duration::from_secs(3), Duration::from_millis(10), || {
        let (code, text, _) = arrive(b.addr, guesser);
        refusal = text;
        code == 421
    });
    let delay = banned_at.elapsed();
    assert!(refused, "node B still admits the address banned on A");
    assert!(refusal.contains("banned"), "{refusal}");
    assert!(
        delay < Duration::from_secs(2),
        "ban reached node B after {delay:?}"
    );
    eprintln!(
        "ban propagation A -> B: {} ms from the banning PASS on A (100 ms of it the failed-login delay)",
        delay.as_millis()
    );
    // Other addresses are not affected.
    assert_eq!(arrive(b.addr, ip("203.0.113.8")).0, 220);
}

#[test]
fn guesses_spread_over_nodes_add_up_to_a_ban() {
    let pg = postgres::shared();
    let (_db, url) = database(pg);
    let flags = ["--defender-threshold", "4"];
    let (a, b) = (node(&url, &flags), node(&url, &flags));
    let guesser = ip("203.0.113.40");
    // Two wrong passwords on each node: each node alone counts 2, under the threshold of 4. The
    // connections stay open (leaving after a failed login would score too).
    let mut open = Vec::new();
    for (i, addr) in [a.addr, b.addr, a.addr, b.addr].into_iter().enumerate() {
        let (code, text, mut c) = arrive(addr, guesser);
        assert_eq!(code, 220, "guess {i} refused at the door: {text}");
        c.expect("USER alice", 331);
        assert_eq!(c.cmd("PASS wrong").0, 530);
        open.push(c);
    }
    // The fourth guess (on B) bans; A learns of it through the database within the 2 s bound.
    let (code, text, _) = arrive(b.addr, guesser);
    assert_eq!(code, 421, "four guesses over two nodes did not ban: {text}");
    let banned_on_a = wait_every(Duration::from_secs(2), Duration::from_millis(10), || {
        arrive(a.addr, guesser).0 == 421
    });
    assert!(banned_on_a, "the ban made on B did not reach A");
}

#[test]
fn the_per_address_limit_holds_across_nodes() {
    let pg = postgres::shared();
    let (_db, url) = database(pg);
    let flags = ["--max-connections-per-ip", "2", "--defender-threshold", "1000"];
    let (a, b) = (node(&url, &flags), node(&url, &flags));
    let x = ip("198.51.100.20");
    let (code, _, first) = arrive(a.addr, x);
    assert_eq!(code, 220);
    let (code, _, _second) = arrive(b.addr, x);
    assert_eq!(code, 220);
    for addr in [a.addr, b.addr] {
        let (code, text, _) = arrive(addr, x);
        assert_eq!(code, 421, "a third connection was admitted: {text}");
        assert!(text.contains("from your address"), "{text}");
    }
    assert_eq!(arrive(b.addr, ip("198.51.100.21")).0, 220, "another address");
    drop(first);
    let freed = wait_every(Duration::from_secs(3), Duration::from_millis(20), || {
        arrive(b.addr, x).0 == 220
    });
    assert!(freed, "the slot of the closed connection on A was not given back");
}

#[test]
fn sessions_per_user_are_limited_across_nodes() {
    let pg = postgres::shared();
    let (_db, url) = database(pg);
    let dir = tempdir();
    let out = cli(dir.path(), &url, &["user", "add", "bob", "--password", PASSWORD]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let flags = ["--max-sessions-per-user", "1"];
    let (a, b) = (node(&url, &flags), node(&url, &flags));
    let (code, _, mut first) = arrive(a.addr, ip("192.0.2.70"));
    assert_eq!(code, 220);
    first.expect("USER alice", 331);
    first.expect(&format!("PASS {PASSWORD}"), 230);
    for addr in [b.addr, a.addr] {
        let (code, _, mut c) = arrive(addr, ip("192.0.2.71"));
        assert_eq!(code, 220);
        c.expect("USER alice", 331);
        assert_eq!(
            c.cmd(&format!("PASS {PASSWORD}")).0,
            530,
            "a second session of alice"
        );
        let (code, text) = c.reply();
        assert_eq!(code, 421, "{text}");
        assert!(text.contains("Too many sessions"), "{text}");
    }
    let (code, _, mut bob) = arrive(b.addr, ip("192.0.2.71"));
    assert_eq!(code, 220);
    bob.expect("USER bob", 331);
    bob.expect(&format!("PASS {PASSWORD}"), 230);
    first.expect("QUIT", 221);
    drop(first);
    let again = wait_every(Duration::from_secs(3), Duration::from_millis(50), || {
        login(b.addr, ip("192.0.2.72"), PASSWORD) == 230
    });
    assert!(again, "alice's session on A ended but B still refuses her");
}

#[test]
fn an_sftp_session_counts_against_the_same_per_user_limit() {
    let pg = postgres::shared();
    let (_db, url) = database(pg);
    let flags = ["--max-sessions-per-user", "1"];
    let a = node(&url, &flags);
    let b = node_with(&url, true, &flags);
    let sftp = b.sftp.expect("SFTP address");
    assert!(sftp_login(sftp, PASSWORD), "SFTP login without other sessions");
    let (code, _, mut ftp) = arrive(a.addr, ip("192.0.2.80"));
    assert_eq!(code, 220);
    ftp.expect("USER alice", 331);
    ftp.expect(&format!("PASS {PASSWORD}"), 230);
    assert!(
        !sftp_login(sftp, PASSWORD),
        "an SFTP session on B while alice is logged in over FTP on A"
    );
    ftp.expect("QUIT", 221);
    drop(ftp);
    let again = wait_every(Duration::from_secs(6), Duration::from_millis(200), || {
        sftp_login(sftp, PASSWORD)
    });
    assert!(again, "the FTP session ended but SFTP still refuses alice");
}

#[test]
fn a_killed_nodes_connections_stop_counting() {
    let pg = postgres::shared();
    let (_db, url) = database(pg);
    let flags = ["--max-connections-per-ip", "1", "--defender-threshold", "1000"];
    let (mut a, b) = (node(&url, &flags), node(&url, &flags));
    let x = ip("198.51.100.30");
    let (code, _, _held) = arrive(a.addr, x);
    assert_eq!(code, 220);
    assert_eq!(arrive(b.addr, x).0, 421, "the limit counts node A's connection");
    a.server.child.kill().expect("kill -9 node A");
    let killed = Instant::now();
    let freed = wait_every(Duration::from_secs(12), Duration::from_millis(100), || {
        arrive(b.addr, x).0 == 220
    });
    assert!(freed, "the dead node's slot never freed itself");
    eprintln!(
        "slot of a killed node freed after {} ms",
        killed.elapsed().as_millis()
    );
}

#[test]
fn a_password_changed_anywhere_is_in_force_on_every_node_at_the_next_login() {
    let pg = postgres::shared();
    let (_db, url) = database(pg);
    let (a, b) = (node(&url, &[]), node(&url, &[]));
    // Both nodes remember the old password in their verification caches.
    assert_eq!(login(a.addr, ip("192.0.2.10"), PASSWORD), 230);
    assert_eq!(login(b.addr, ip("192.0.2.10"), PASSWORD), 230);
    let dir = tempdir();
    let new = "a brand new long password";
    let out = cli(dir.path(), &url, &["user", "passwd", "alice", "--password", new]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let changed = Instant::now();
    assert_eq!(
        login(b.addr, ip("192.0.2.11"), PASSWORD),
        530,
        "old password on B"
    );
    assert_eq!(
        login(a.addr, ip("192.0.2.11"), PASSWORD),
        530,
        "old password on A"
    );
    assert_eq!(login(b.addr, ip("192.0.2.12"), new), 230);
    assert_eq!(login(a.addr, ip("192.0.2.12"), new), 230);
    eprintln!(
        "password change in force on both nodes at the first login after it ({} ms later)",
        changed.elapsed().as_millis()
    );
}

#[test]
fn an_unreachable_database_refuses_new_clients_unless_fail_open_but_never_loopback() {
    let pg = postgres::shared();
    let (db, url) = database(pg);
    let closed = node(&url, &[]);
    let open = node(&url, &["--cluster-fail-open=true"]);
    let x = ip("198.51.100.40");
    assert_eq!(arrive(closed.addr, x).0, 220);
    pg.cut_off(&db);
    let mut said = String::new();
    let refused = wait_every(Duration::from_secs(10), Duration::from_millis(50), || {
        let (code, text, _) = arrive(closed.addr, x);
        said = text;
        code == 421
    });
    assert!(
        refused,
        "a fail-closed node admitted a client without its database"
    );
    assert!(said.contains("temporarily unavailable"), "{said}");
    assert_eq!(arrive(open.addr, x).0, 220, "fail-open node");
    // A local health check (no PROXY header: the client is 127.0.0.1) always gets in.
    let mut local = Control::connect(closed.addr);
    assert_eq!(local.reply().0, 220, "loopback refused");
    pg.reconnectable(&db);
    let back = wait_every(Duration::from_secs(15), Duration::from_millis(100), || {
        arrive(closed.addr, x).0 == 220
    });
    assert!(
        back,
        "the node did not admit clients again once the database was back"
    );
}

#[test]
fn queries_per_login_are_few_and_none_per_command() {
    let pg = postgres::shared();
    let (db, url) = database(pg);
    let a = node(&url, &[]);
    assert_eq!(login(a.addr, ip("192.0.2.50"), PASSWORD), 230, "warm up");
    std::thread::sleep(Duration::from_millis(300));
    let counted = |pg: &Postgres| {
        pg.statements(&db)
            .into_iter()
            .filter(|s| !s.contains("cluster_nodes"))
            .count()
    };
    let before = counted(pg);
    const LOGINS: usize = 10;
    for i in 0..LOGINS {
        let (code, _, mut c) = arrive(a.addr, ip(&format!("192.0.2.{}", 60 + i)));
        assert_eq!(code, 220);
        c.expect("USER alice", 331);
        c.expect(&format!("PASS {PASSWORD}"), 230);
        for _ in 0..20 {
            c.expect("PWD", 257);
            c.expect("NOOP", 200);
        }
        c.expect("QUIT", 221);
    }
    std::thread::sleep(Duration::from_millis(500));
    let per_login = (counted(pg) - before) as f64 / LOGINS as f64;
    eprintln!("PostgreSQL statements per FTP login (connect, login, 40 commands, quit): {per_login:.1}");
    // Take a lease, read the user, read the user's quota limits and usage, give the lease back.
    assert!(
        per_login <= 4.0,
        "{per_login} statements per login: {:?}",
        pg.statements(&db).iter().rev().take(12).collect::<Vec<_>>()
    );
}

#[test]
fn tls_to_the_database_is_used_and_verified_when_the_url_asks() {
    let pg = postgres::shared();
    let (db, url) = database(pg);
    let dir = tempdir();
    let verified = format!("{url}?sslmode=verify-full&sslrootcert={}", pg.ca_file().display());
    let out = cli(dir.path(), &verified, &["user", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("alice"));
    let n = node(&verified, &[]);
    assert_eq!(login(n.addr, ip("192.0.2.90"), PASSWORD), 230);
    let count = |tls: bool| {
        pg.psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.datname = '{db}' AND a.application_name = 'ferry' AND s.ssl = {tls}"
            ),
        )
    };
    assert_eq!(count(false), "0", "a connection of the node without TLS");
    assert_ne!(count(true), "0", "no TLS connection of the node");
    // A certificate the configured CA did not sign is refused, and the message names the setting.
    let wrong = format!(
        "{url}?sslmode=verify-full&sslrootcert={}",
        pg.unrelated_ca_file().display()
    );
    let out = cli(dir.path(), &wrong, &["user", "list"]);
    assert!(!out.status.success(), "an unverified server was accepted");
    let err = text(&out.stderr);
    assert!(err.contains("users_db") && err.contains("TLS"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_leases_on_two_nodes_never_exceed_the_limit() {
    let pg = postgres::shared();
    let (_db, url) = database(pg);
    let store = ferry_auth::UserStore::open_postgres(&url).await.expect("open");
    let a = store.cluster("node-a").expect("postgres has a cluster");
    let b = store.cluster("node-b").expect("postgres has a cluster");
    a.heartbeat().await.expect("register a");
    b.heartbeat().await.expect("register b");
    let x = ip("198.51.100.50");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move { node.take_lease(x, 5).await.expect("take") });
    }
    let mut granted = Vec::new();
    while let Some(r) = tasks.join_next().await {
        granted.extend(r.expect("task"));
    }
    assert_eq!(granted.len(), 5, "{granted:?}");
    assert_eq!(a.leases(x).await.expect("count"), 5);
    a.release(&granted[..2]).await.expect("release");
    assert_eq!(b.leases(x).await.expect("count"), 3);
    b.leave().await.expect("leave");
    let left = a.leases(x).await.expect("count");
    assert!(left <= 3, "{left}");
}
