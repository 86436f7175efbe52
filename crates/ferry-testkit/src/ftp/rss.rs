//! Memory and descriptor helpers for the resource and flood tests (Linux `/proc`).

/// Resident set size of this process (server and test client together), in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Raises the soft limit on open files to at least `want` (up to the hard limit); returns the new limit.
pub fn raise_nofile(want: u64) -> u64 {
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap_or((1024, 1024));
    if soft >= want {
        return soft;
    }
    let new = want.min(hard);
    match rlimit::Resource::NOFILE.set(new, hard) {
        Ok(()) => new,
        Err(_) => soft,
    }
}
