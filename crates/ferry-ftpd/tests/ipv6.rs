//! RFC 2428 over IPv6: EPSV and EPRT on `[::1]` with curl and the raw control channel, and the IPv4-only
//! commands refused clearly.

mod common;

use common::{pseudo_random, read_file, run, sha256, skip_unless, write_file, TestServer};

fn v6_server() -> TestServer {
    TestServer::start_with(common::Options {
        ipv6: true,
        ..Default::default()
    })
}

fn curl(server: &TestServer) -> std::process::Command {
    let mut cmd = server.client("curl");
    cmd.args(["-sS", "-g", "-v", "--connect-timeout", "10", "--max-time", "50"])
        .arg("--user")
        .arg(format!("{}:{}", common::USER, common::PASSWORD));
    cmd
}

#[test]
fn curl_epsv_download_and_upload_over_ipv6() {
    if skip_unless("curl") {
        return;
    }
    let server = v6_server();
    let data = pseudo_random(300_000, 6);
    write_file(&server.path("v6.bin"), &data);
    let out = server.local("v6-down.bin");
    let r = run(curl(&server).arg("-o").arg(&out).arg(server.url("v6.bin")), None);
    r.assert_success();
    assert!(r.stderr.contains("> EPSV"), "{}", r.dump());
    assert_eq!(sha256(&read_file(&out)), sha256(&data));

    let up = server.local("v6-up.bin");
    write_file(&up, &data);
    run(
        curl(&server).arg("-T").arg(&up).arg(server.url("v6-up.bin")),
        None,
    )
    .assert_success();
    assert_eq!(sha256(&read_file(&server.path("v6-up.bin"))), sha256(&data));
}

#[test]
fn curl_active_eprt_over_ipv6() {
    if skip_unless("curl") {
        return;
    }
    let server = v6_server();
    write_file(&server.path("a.txt"), b"active over v6\n");
    let out = server.local("a.txt");
    let r = run(
        curl(&server)
            .args(["-P", "-"])
            .arg("-o")
            .arg(&out)
            .arg(server.url("a.txt")),
        None,
    );
    r.assert_success();
    assert!(r.stderr.contains("> EPRT |2|::1|"), "{}", r.dump());
    assert_eq!(read_file(&out), b"active over v6\n");
}

#[test]
fn ipv4_only_and_foreign_family_commands_are_refused_on_ipv6() {
    let server = v6_server();
    let mut c = server.login();
    // PASV cannot describe an IPv6 address.
    c.expect("PASV", 425);
    // EPSV with the other family's protocol number: 522 naming the one we support.
    let r = c.expect("EPSV 1", 522);
    assert!(r.text().contains("(2)"), "{}", r.text());
    // EPRT to an IPv4 address from an IPv6 peer is not the peer's address.
    c.expect("EPRT |1|127.0.0.1|40000|", 501);
    c.expect("PORT 127,0,0,1,156,64", 501);
    // The session still works, and EPSV gives a usable data connection.
    write_file(&server.path("x"), b"xyz");
    let (data, end) = c.download("RETR x");
    assert_eq!(end.code, 226);
    assert_eq!(data, b"xyz");
}
