//! Bandwidth limits: a token bucket shared by every session of one user, so the limit holds for the
//! user as a whole, however many sessions (FTP or SFTP) they open.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::Result;
use crate::storage::FileReader;

/// How far ahead of the steady rate a transfer may run (a burst after a pause, and room for one
/// buffer): this much time's worth of bytes.
const BURST: Duration = Duration::from_millis(100);
/// The smallest slice [`RateLimit::take`] pays at a time.
const MIN_SLICE: u64 = 4096;
/// The largest slice [`RateLimit::take`] pays at a time: the usual SFTP request size, so that FTP and
/// SFTP sessions take equal turns.
const MAX_SLICE: u64 = 32 * 1024;

/// A shared rate limit in bytes per second (0 = unlimited). Transfers [`take`](RateLimit::take)
/// bytes before moving them and sleep until the rate allows; waiting transfers are served in the
/// order they asked, so sessions sharing a limit get equal shares.
#[derive(Debug, Default)]
pub struct RateLimit {
    /// Bytes per second; 0 = unlimited.
    rate: AtomicU64,
    /// The time at which everything taken so far has been paid for at the rate.
    paid_until: Mutex<Option<Instant>>,
}

impl RateLimit {
    /// A limit of `bytes_per_sec` (0 = unlimited).
    pub fn new(bytes_per_sec: u64) -> Self {
        RateLimit {
            rate: AtomicU64::new(bytes_per_sec),
            paid_until: Mutex::new(None),
        }
    }

    /// Changes the rate (0 = unlimited); transfers in progress follow it from their next buffer.
    pub fn set_rate(&self, bytes_per_sec: u64) {
        self.rate.store(bytes_per_sec, Ordering::Relaxed);
    }

    /// The rate in bytes per second (0 = unlimited).
    pub fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    /// Whether a rate is set.
    pub fn is_limited(&self) -> bool {
        self.rate() != 0
    }

    /// Waits until `bytes` may move at the rate (at once if unlimited). A large amount is paid in
    /// slices (a tenth of a second's worth, at most `MAX_SLICE`, the size of an SFTP read or write)
    /// so that sessions sharing the limit take turns in equal steps even when some move data in
    /// large buffers.
    pub async fn take(&self, bytes: u64) {
        let mut left = bytes;
        while left > 0 {
            let slice = (self.rate() / 10).clamp(MIN_SLICE, MAX_SLICE);
            let now = left.min(slice);
            left -= now;
            let wait = self.reserve(now, Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Books `bytes` at `now` and says how long to wait before moving them.
    fn reserve(&self, bytes: u64, now: Instant) -> Duration {
        let rate = self.rate();
        if rate == 0 || bytes == 0 {
            return Duration::ZERO;
        }
        let cost = Duration::from_secs_f64(bytes as f64 / rate as f64);
        let mut paid = self.paid_until.lock().unwrap_or_else(|e| e.into_inner());
        // Time not used while idle is not saved up beyond the burst.
        let start = match *paid {
            Some(t) if t + BURST > now => t,
            _ => now.checked_sub(BURST).unwrap_or(now),
        };
        let end = start + cost;
        *paid = Some(end);
        end.saturating_duration_since(now + BURST)
    }
}

/// A user's upload and download limits (shared by their sessions).
#[derive(Debug, Clone, Default)]
pub struct Rates {
    /// Bytes the user sends to the server.
    pub upload: Arc<RateLimit>,
    /// Bytes the server sends to the user.
    pub download: Arc<RateLimit>,
}

/// A download under a rate limit: each read waits for its bytes; never zero-copy (the copy loop
/// is what paces it).
#[derive(Debug)]
pub(super) struct Throttled {
    pub(super) inner: Box<dyn FileReader>,
    pub(super) fs: super::UserFs,
}

#[async_trait]
impl FileReader for Throttled {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = self.inner.read(buf).await?;
        self.fs.pace_download(n as u64).await;
        Ok(n)
    }

    fn size(&self) -> Option<u64> {
        self.inner.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_never_waits_and_a_limit_spaces_bookings_at_the_rate() {
        let now = Instant::now();
        assert_eq!(RateLimit::new(0).reserve(1 << 30, now), Duration::ZERO);
        let limit = RateLimit::new(1000);
        // The burst allowance covers the first 100 ms worth.
        assert_eq!(limit.reserve(100, now), Duration::ZERO);
        // Then each booking waits for its turn: 1000 bytes at 1000 B/s is one second more (less
        // the burst allowance).
        let wait = limit.reserve(1000, now);
        assert!((wait.as_secs_f64() - 0.9).abs() < 0.01, "{wait:?}");
        // A second taker (another session) queues behind the first.
        let wait = limit.reserve(1000, now);
        assert!((wait.as_secs_f64() - 1.9).abs() < 0.01, "{wait:?}");
        limit.set_rate(0);
        assert_eq!(limit.reserve(1000, now), Duration::ZERO);
    }
}
