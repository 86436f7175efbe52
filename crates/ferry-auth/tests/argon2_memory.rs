//! Argon2id's working memory (19 MiB per hash) goes back to the kernel after each hash, so a server that
//! has checked a password once does not stay 19 MiB larger. One test in its own process: it measures the
//! process's resident memory.

use ferry_auth::{hash_password, Password};

/// Resident memory of this process in KiB (`VmRSS` in `/proc/self/status`).
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[test]
fn argon2_working_memory_is_given_back_after_each_hash() {
    let pw = Password::new("correct horse battery staple".into());
    // Warm up everything else a hash needs (the OS random source, formatting, the allocator's arenas).
    hash_password(&pw).expect("first hash");
    let before = resident_kib();
    for _ in 0..3 {
        hash_password(&pw).expect("hash");
    }
    let grown = resident_kib().saturating_sub(before);
    // One hash's working memory is 19,456 KiB; a few hundred KiB of noise are allowed.
    assert!(
        grown < 4 * 1024,
        "resident memory grew by {grown} KiB over three hashes"
    );
}
