//! SSH local port forwarding (`ssh -N -L`) through ferry with OpenSSH: only to targets in the user's
//! permit list, byte-exact; every other target, and a user without permits, refused.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{skip_unless, TestServer, USER};
use ferry_auth::ForwardTarget;

/// An echo server on loopback that answers every connection (a thread per connection).
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    if stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn set_permits(s: &TestServer, add: &[&str], del: &[&str]) {
    let db = s.users_db();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let users = ferry_auth::UserStore::open(&db).await.expect("users");
        for t in add {
            let t: ForwardTarget = t.parse().expect("target");
            users.add_forward(USER, &t).await.expect("add forward");
        }
        for t in del {
            let t: ForwardTarget = t.parse().expect("target");
            users.delete_forward(USER, &t).await.expect("del forward");
        }
    });
}

/// `ssh -N` with these `-L` forwards, logged in with alice's key; killed on drop.
struct Tunnel(Child);

impl Tunnel {
    fn open(s: &TestServer, forwards: &[(u16, SocketAddr)]) -> Tunnel {
        let mut cmd = s.client("ssh");
        cmd.args(s.ssh_options(true))
            .args(["-N", "-p", &s.port().to_string()]);
        for (local, target) in forwards {
            cmd.arg("-L")
                .arg(format!("127.0.0.1:{local}:{}:{}", target.ip(), target.port()));
        }
        cmd.arg(format!("{USER}@127.0.0.1"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .expect("ssh (install openssh-client with scripts/install-test-deps.sh)");
        let tunnel = Tunnel(child);
        // ssh listens on the local ports once it has logged in.
        let deadline = Instant::now() + Duration::from_secs(20);
        for (local, _) in forwards {
            while TcpStream::connect((Ipv4Addr::LOCALHOST, *local)).is_err() {
                assert!(Instant::now() < deadline, "ssh did not open local port {local}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        tunnel
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `data` through local port `port` and returns what comes back until `data.len()` bytes or
/// the connection ends.
fn round_trip(port: u16, data: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to the tunnel");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let writer = {
        let mut w = s.try_clone().expect("clone");
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        })
    };
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while got.len() < data.len() {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let _ = writer.join();
    got
}

#[test]
fn local_forwarding_reaches_permitted_targets_only() {
    if skip_unless("ssh") {
        return;
    }
    let s = TestServer::start();
    let allowed = echo_server();
    let other = echo_server();
    set_permits(&s, &[&format!("127.0.0.1:{}", allowed.port())], &[]);
    let (to_allowed, to_other) = (free_port(), free_port());
    let tunnel = Tunnel::open(&s, &[(to_allowed, allowed), (to_other, other)]);
    // 1 MiB of varied bytes to the permitted target: the same bytes come back.
    let data: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(
        round_trip(to_allowed, &data) == data,
        "echo through the tunnel differs"
    );
    // Another port on the same host is not in the list: ssh's channel is refused, nothing comes back.
    assert!(
        round_trip(to_other, b"hello").is_empty(),
        "unpermitted target reached"
    );
    drop(tunnel);

    // Without the permit, the same target is refused too.
    set_permits(&s, &[], &[&format!("127.0.0.1:{}", allowed.port())]);
    let port = free_port();
    let _tunnel = Tunnel::open(&s, &[(port, allowed)]);
    assert!(
        round_trip(port, b"hello").is_empty(),
        "forwarding without a permit"
    );
}

#[test]
fn remote_forwarding_stays_refused() {
    if skip_unless("ssh") {
        return;
    }
    let s = TestServer::start();
    set_permits(&s, &["*:*"], &[]);
    let target = echo_server();
    let mut cmd = s.client("ssh");
    cmd.args(s.ssh_options(true))
        .args([
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-p",
            &s.port().to_string(),
        ])
        .arg("-R")
        .arg(format!("127.0.0.1:0:{}:{}", target.ip(), target.port()))
        .arg(format!("{USER}@127.0.0.1"));
    let r = common::run(&mut cmd, None);
    r.assert_failure();
    assert!(r.stderr.contains("remote port forwarding failed"), "{}", r.stderr);
}
