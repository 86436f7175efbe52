//! Waiting for something to happen, with a deadline, instead of sleeping a fixed time.

use std::thread;
use std::time::{Duration, Instant};

/// Polls `cond` every 20 ms for up to `limit`; returns whether it became true.
pub fn wait_until(limit: Duration, cond: impl FnMut() -> bool) -> bool {
    wait_every(limit, Duration::from_millis(20), cond)
}

/// Polls `cond` every `every` for up to `limit`; returns whether it became true. For conditions
/// that cost something to test (each poll of a server opens a connection, say).
pub fn wait_every(limit: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(every.min(deadline.saturating_duration_since(Instant::now())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_returns_as_soon_as_the_condition_holds_and_false_at_the_deadline() {
        let mut n = 0;
        assert!(wait_until(Duration::from_secs(5), || {
            n += 1;
            n == 3
        }));
        assert_eq!(n, 3);
        let started = Instant::now();
        assert!(!wait_every(
            Duration::from_millis(50),
            Duration::from_millis(10),
            || false
        ));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
