//! Peer-provided strings in the FTP server's log lines are bounded and escaped: a long path with
//! control characters, a user name with a terminal escape. Log lines are captured from the tracing
//! subscriber this test binary installs.

mod common;

use common::TestServer;

#[test]
fn long_paths_and_odd_user_names_give_bounded_escaped_log_lines() {
    let log = ferry_testkit::logs::capture("ferry_ftpd=debug,ferry_auth=debug");
    let server = TestServer::start();
    let mut c = server.control();
    // Control characters are refused in user names; a right-to-left override and length are not.
    let mut user = "USER \u{202e}".to_string();
    user.push_str(&"m".repeat(250));
    c.send(&user);
    assert_eq!(c.reply().code, 331);
    c.send("PASS wrong");
    assert_eq!(c.reply().code, 530);
    let mut c = server.login();
    let mut line = b"SIZE /".to_vec();
    line.extend(std::iter::repeat_n(b'p', 3000));
    line.extend_from_slice(b"\x1b]0;owned\x07");
    c.send_bytes(&line);
    assert!(c.reply().code >= 500);
    c.expect("QUIT", 221);
    drop(server);
    let log = log.text();
    assert!(log.contains("login failed"), "{log}");
    assert!(
        log.contains("SIZE /ppp"),
        "the command was logged at debug level:\n{log}"
    );
    ferry_testkit::logs::assert_lines_bounded(&log, 600);
    assert!(log.contains("\\u{202e}mmm"), "the name is shown escaped:\n{log}");
    assert!(!log.contains('\u{202e}'), "raw right-to-left override in the log");
    assert!(
        log.contains("…(253 bytes)"),
        "the cut says how long the name was:\n{log}"
    );
    assert!(
        log.contains("…(3016 bytes)"),
        "the cut says how long the line was:\n{log}"
    );
}
