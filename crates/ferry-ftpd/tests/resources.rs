//! Resource bounds: a listing of a directory with 100,000 entries streams with bounded memory,
//! wildcards stay bounded, and an idle session holds one descriptor.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::rss::rss_kib;
use common::TestServer;

const ENTRIES: usize = 100_000;

/// The tests here run one at a time: the descriptor count covers the whole test process, and the other
/// tests open files and directories by the thousand.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn listing_100k_entries_streams_with_bounded_memory() {
    let _serial = one_at_a_time();
    let server = TestServer::start();
    let dir = server.path("big");
    std::fs::create_dir(&dir).expect("mkdir");
    for i in 0..ENTRIES {
        std::fs::File::create(dir.join(format!("file-with-a-longish-name-{i:06}.dat"))).expect("create");
    }
    let mut c = server.login();
    // Warm up allocator and runtime with a small listing first.
    let (_, r) = c.download("LIST /");
    assert_eq!(r.code, 226);

    let before = rss_kib();
    let mut data = c.data();
    c.expect("LIST /big", 150);
    // Read slowly at first: a server that formatted the whole listing up front would hold all of it
    // (about 7 MB of text plus 100,000 entries) while we dawdle.
    let mut head = vec![0u8; 64 * 1024];
    data.read_exact(&mut head).expect("read the first 64 KiB");
    std::thread::sleep(Duration::from_millis(500));
    let during = rss_kib();
    let mut rest = Vec::new();
    data.read_to_end(&mut rest).expect("read the listing");
    c.expect_reply(226);
    let after = rss_kib();

    let total = head.len() + rest.len();
    let lines = head.iter().chain(&rest).filter(|&&b| b == b'\n').count();
    assert_eq!(lines, ENTRIES, "every entry listed once");
    eprintln!(
        "LIST of {ENTRIES} entries ({total} bytes): RSS before {before} KiB, while streaming {during} KiB, \
         after {after} KiB"
    );
    let growth = during.saturating_sub(before);
    assert!(
        growth < 4 * 1024,
        "RSS grew by {growth} KiB while a {total}-byte listing was in flight: not streamed"
    );
    assert!(
        total > 6_000_000,
        "the listing is big enough to matter ({total} bytes)"
    );
}

#[test]
fn a_pathological_wildcard_over_20k_long_names_finishes_in_bounded_time() {
    let _serial = one_at_a_time();
    let server = TestServer::start();
    let dir = server.path("many");
    std::fs::create_dir(&dir).expect("mkdir");
    for i in 0..20_000 {
        std::fs::File::create(dir.join(format!("{}{i}", "a".repeat(40)))).expect("create");
    }
    let mut c = server.login();
    // A pathological pattern (many stars against long names of one letter) must not backtrack
    // exponentially.
    let pattern = format!("{}b", "*a".repeat(40));
    let started = Instant::now();
    let (listing, r) = c.download(&format!("NLST /many/{pattern}"));
    let took = started.elapsed();
    assert!(listing.is_empty(), "nothing matches");
    assert!(matches!(r.code, 226 | 450 | 550), "{}", r.text());
    assert!(took < Duration::from_secs(10), "wildcard took {took:?}");
}

/// Descriptors open in this process that are not sockets (the server's and the test clients' sockets
/// aside: files and directories).
fn open_non_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|target| !target.to_string_lossy().starts_with("socket:"))
        .count()
}

#[test]
fn an_idle_logged_in_session_holds_one_descriptor_on_the_server() {
    let _serial = one_at_a_time();
    const SESSIONS: usize = 200;
    let server = TestServer::start_tweaked(|c| c.limits.max_per_ip = SESSIONS + 10);
    // The first session opens the home's handle, which the others then share.
    let mut first = server.login();
    first.expect("PWD", 257);
    let before = open_non_sockets();
    let mut sessions: Vec<_> = (0..SESSIONS).map(|_| server.login()).collect();
    for c in &mut sessions {
        c.expect("PWD", 257);
    }
    let added = open_non_sockets().saturating_sub(before);
    eprintln!("{SESSIONS} idle logged-in sessions added {added} descriptors besides sockets");
    // Nothing but its socket per session; a little slack for the runtime's own descriptors.
    assert!(
        added <= 4,
        "{SESSIONS} idle sessions added {added} descriptors besides their sockets"
    );
}
