//! Active mode from the control port minus one (`active_source_port = "control-minus-one"`, RFC 959's
//! default data port L-1): the client's listener sees the data connection come from control port − 1, and
//! two clients can receive at the same time from that one source port (SO_REUSEADDR).

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::{pseudo_random, write_file, Control, TestServer, PASSWORD, USER};
use ferry_ftpd::ActiveSourcePort;

/// A server whose control port P has P − 1 ≥ 1024 free, with active connections from P − 1. The control
/// port is ephemeral, so the port below it is nearly always free; retried otherwise.
fn server(source: ActiveSourcePort) -> TestServer {
    for _ in 0..20 {
        let server = TestServer::start_tweaked(move |c| c.active_source_port = source);
        let below = server.addr.port() - 1;
        if below >= 1024 && TcpListener::bind(("127.0.0.1", below)).is_ok() {
            return server;
        }
    }
    panic!("no control port with a free port below it");
}

fn eprt(c: &mut Control, listener: &TcpListener) {
    let port = listener.local_addr().expect("addr").port();
    c.expect(&format!("EPRT |1|127.0.0.1|{port}|"), 200);
}

fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    listener.set_nonblocking(false).expect("blocking");
    let (stream, from) = listener.accept().expect("accept data connection");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    (stream, from)
}

#[test]
fn active_data_connections_leave_from_the_control_port_minus_one() {
    let server = server(ActiveSourcePort::ControlMinusOne);
    let body = pseudo_random(100_000, 1);
    write_file(&server.root().join("f.bin"), &body);
    let mut c = Control::connect(server.addr);
    c.login(USER, PASSWORD);
    c.expect("TYPE I", 200);
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    eprt(&mut c, &listener);
    c.send("RETR f.bin");
    let (mut data, from) = accept(&listener);
    c.expect_reply(150);
    assert_eq!(from.port(), server.addr.port() - 1, "data from {from}");
    let mut got = Vec::new();
    data.read_to_end(&mut got).expect("read");
    c.expect_reply(226);
    assert_eq!(got, body);

    // PORT as well as EPRT, and again at once (the port is reused while the last is in TIME_WAIT).
    for _ in 0..3 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = listener.local_addr().expect("addr").port();
        c.expect(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff), 200);
        c.send("RETR f.bin");
        let (mut data, from) = accept(&listener);
        c.expect_reply(150);
        assert_eq!(from.port(), server.addr.port() - 1);
        let mut got = Vec::new();
        data.read_to_end(&mut got).expect("read");
        c.expect_reply(226);
        assert_eq!(got.len(), body.len());
    }
}

#[test]
fn two_concurrent_active_transfers_share_the_source_port() {
    let server = server(ActiveSourcePort::ControlMinusOne);
    // Large enough that neither transfer can finish into the socket buffers while the other starts.
    let body = pseudo_random(32 << 20, 2);
    write_file(&server.root().join("big.bin"), &body);
    let mut clients: Vec<(Control, TcpListener)> = (0..2)
        .map(|_| {
            let mut c = Control::connect(server.addr);
            c.login(USER, PASSWORD);
            c.expect("TYPE I", 200);
            let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
            eprt(&mut c, &listener);
            (c, listener)
        })
        .collect();
    let mut streams = Vec::new();
    for (c, listener) in &mut clients {
        c.send("RETR big.bin");
        let (data, from) = accept(listener);
        c.expect_reply(150);
        assert_eq!(from.port(), server.addr.port() - 1, "data from {from}");
        streams.push(data);
    }
    // Both are open now, from the same source port to two client ports; read both to the end.
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                let mut got = Vec::new();
                s.read_to_end(&mut got).expect("read");
                got
            })
        })
        .collect();
    for (reader, (c, _)) in readers.into_iter().zip(&mut clients) {
        let got = reader.join().expect("reader");
        c.expect_reply(226);
        assert!(got == body, "transfer corrupted ({} bytes)", got.len());
    }
}

#[test]
fn by_default_active_data_connections_use_any_port() {
    let server = TestServer::start();
    write_file(&server.root().join("f.txt"), b"hello");
    let mut c = Control::connect(server.addr);
    c.login(USER, PASSWORD);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        eprt(&mut c, &listener);
        c.send("RETR f.txt");
        let (mut data, from) = accept(&listener);
        c.expect_reply(150);
        let mut got = Vec::new();
        data.read_to_end(&mut got).expect("read");
        c.expect_reply(226);
        seen.push(from.port());
    }
    assert!(
        seen.iter().any(|p| *p != server.addr.port() - 1),
        "ephemeral source ports expected: {seen:?}"
    );
}
