//! SFTP memory stays bounded for users who pipeline READs and never read the replies, and comes
//! back when they leave: 12 SSH connections × 4 SFTP channels, each sending 1,000 READs of 255 KiB
//! (paramiko, raw requests). The server runs in this test process, so the process's resident set
//! is the server's (plus a small test harness).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const CONNECTIONS: usize = 12;
const CHANNELS: usize = 4;
const READS: usize = 1000;
const READ_LEN: usize = 255 * 1024;

/// The server's bound per SFTP session (docs/sftp.md): the in-progress budget (4 MiB) plus
/// slack for the SSH channel queue, buffers and allocator overhead.
const PER_SESSION_KIB: u64 = 8 * 1024;

/// A `/proc/self/status` field in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| {
            v.trim()
                .trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

const DRIVER: &str = r#"
import os, sys, paramiko
from paramiko.sftp import CMD_READ, int64
PORT = int(os.environ["PORT"]); N = int(os.environ["CONNECTIONS"]); C = int(os.environ["CHANNELS"])
READS = int(os.environ["READS"]); LEN = int(os.environ["READ_LEN"])
keep = []
for _ in range(N):
    t = paramiko.Transport(("127.0.0.1", PORT))
    t.connect(username=os.environ["USER_NAME"], password=os.environ["PASSWORD"])
    for _ in range(C):
        sftp = paramiko.SFTPClient.from_transport(t)
        f = sftp.open("big.bin")
        for i in range(READS):
            # Requests only: the replies are never read.
            sftp._async_request(type(None), CMD_READ, f.handle, int64((i % 4) * LEN), LEN)
        keep.append(sftp)
    keep.append(t)
print("sent", flush=True)
sys.stdin.readline()
for k in keep:
    if isinstance(k, paramiko.Transport):
        k.close()
print("closed", flush=True)
"#;

/// One wave: the driver's sessions send their READs, the server works on them for a while, then
/// the driver closes every connection. Returns the peak RSS seen during the wave, in KiB.
fn wave(s: &TestServer) -> u64 {
    let mut child = s
        .client("python3")
        .arg("-c")
        .arg(DRIVER)
        .env("PORT", s.port().to_string())
        .env("USER_NAME", USER)
        .env("PASSWORD", PASSWORD)
        .env("CONNECTIONS", CONNECTIONS.to_string())
        .env("CHANNELS", CHANNELS.to_string())
        .env("READS", READS.to_string())
        .env("READ_LEN", READ_LEN.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("driver output");
    assert_eq!(line.trim(), "sent", "the driver did not get its requests out");
    // Give the server time to do all it will do with the requests, sampling as it goes.
    let mut peak = status_kib("VmRSS");
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(status_kib("VmRSS"));
    }
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin).expect("tell the driver to close");
    line.clear();
    out.read_line(&mut line).expect("driver output");
    assert_eq!(line.trim(), "closed");
    let _ = child.wait();
    // Sessions wind down (requests dropped, handles closed, buffers freed) within moments.
    std::thread::sleep(Duration::from_secs(3));
    peak
}

#[test]
fn pipelined_reads_that_are_never_read_keep_server_memory_bounded() {
    if skip_unless_paramiko() {
        return;
    }
    let s = TestServer::start();
    write_random(&s.path("big.bin"), 4 * READ_LEN, 7);
    let baseline = status_kib("VmRSS");
    let peak = wave(&s);
    let after = status_kib("VmRSS");
    // A second wave must find the first one's memory free again: sessions that never ended would
    // keep theirs and the second wave would add as much again.
    let second_peak = wave(&s);
    let second_after = status_kib("VmRSS");
    let sessions = (CONNECTIONS * CHANNELS) as u64;
    let mib = |k: u64| k / 1024;
    eprintln!(
        "SFTP memory, {sessions} sessions x {READS} READs of {} KiB never read: baseline {} MiB, \
         peak {} MiB (+{} MiB), after close {} MiB; second wave peak {} MiB, after close {} MiB; \
         VmHWM {} MiB",
        READ_LEN / 1024,
        mib(baseline),
        mib(peak),
        mib(peak.saturating_sub(baseline)),
        mib(after),
        mib(second_peak),
        mib(second_after),
        mib(status_kib("VmHWM")),
    );
    let bound = sessions * PER_SESSION_KIB;
    for p in [peak, second_peak] {
        assert!(
            p.saturating_sub(baseline) <= bound,
            "peak RSS grew by {} MiB, more than {} MiB for {sessions} sessions",
            mib(p.saturating_sub(baseline)),
            mib(bound)
        );
    }
    assert!(
        second_peak.saturating_sub(after) <= bound / 4,
        "the second wave added {} MiB on top of what the first left: memory was not freed",
        mib(second_peak.saturating_sub(after))
    );
}
