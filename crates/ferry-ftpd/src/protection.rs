//! Per-session defences against hostile clients that the protocol core cannot enforce on its own: the
//! command-rate throttle, the delay after a failed login, and the FXP opt-outs. Connection limits are in
//! `limits`, the login defender in `ferry_auth::defender`.

use std::time::{Duration, Instant};

/// Per-session protections. Everything is on by default; opt-outs have `danger` in their names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection {
    /// Commands a session may send per second, on average. A client that sends faster is not
    /// disconnected: the server stops reading its control connection until it is back under the rate
    /// (bursts of up to twice the rate are absorbed). Keeps one client from monopolising a core.
    pub max_commands_per_sec: u32,
    /// Time from `PASS` to the `530` of a failed login, the same whether or not the user exists.
    pub failed_login_delay: Duration,
    /// Allow FXP (site-to-site transfers) for every user: `PORT`/`EPRT` to any address and passive
    /// connections from any address. Off: data connections only with the control connection's peer.
    pub danger_allow_fxp: bool,
    /// Users allowed FXP even when `danger_allow_fxp` is off.
    pub danger_allow_fxp_users: Vec<String>,
}

impl Default for Protection {
    fn default() -> Self {
        Protection {
            max_commands_per_sec: 10_000,
            failed_login_delay: Duration::from_secs(1),
            danger_allow_fxp: false,
            danger_allow_fxp_users: Vec::new(),
        }
    }
}

impl Protection {
    /// Whether `user` may use FXP.
    pub fn allows_fxp(&self, user: &str) -> bool {
        self.danger_allow_fxp || self.danger_allow_fxp_users.iter().any(|u| u == user)
    }
}

/// A token bucket counting commands: `rate` tokens a second, at most `2 × rate` saved up. Commands are
/// counted after they are read (a read can hold many pipelined lines), so the balance can go negative;
/// the connection loop stops reading until it is back at zero.
#[derive(Debug)]
pub(crate) struct Throttle {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Throttle {
    pub(crate) fn new(rate: u32, now: Instant) -> Self {
        let rate = f64::from(rate.max(1));
        Throttle {
            rate,
            burst: 2.0 * rate,
            tokens: 2.0 * rate,
            last: now,
        }
    }

    /// Counts `n` commands at `now`.
    pub(crate) fn take(&mut self, now: Instant, n: usize) {
        self.refill(now);
        // Bounded: a read holds at most a few KiB of lines.
        self.tokens -= n as f64;
    }

    /// When reading may resume, if the session is over its rate at `now`.
    pub(crate) fn blocked_until(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        if self.tokens >= 0.0 {
            return None;
        }
        let wait = Duration::from_secs_f64((-self.tokens / self.rate).min(3600.0));
        Some(now + wait)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_allows_a_burst_then_delays_by_the_debt() {
        let t0 = Instant::now();
        let mut t = Throttle::new(10, t0);
        t.take(t0, 20);
        assert_eq!(t.blocked_until(t0), None, "a burst of twice the rate is free");
        t.take(t0, 30);
        let until = t.blocked_until(t0).expect("over the rate");
        assert_eq!(until.duration_since(t0), Duration::from_secs(3));
        assert!(t.blocked_until(t0 + Duration::from_millis(2900)).is_some());
        assert_eq!(t.blocked_until(t0 + Duration::from_millis(3001)), None);
    }

    #[test]
    fn fxp_is_off_unless_allowed_globally_or_per_user() {
        let mut p = Protection::default();
        assert!(!p.allows_fxp("alice"));
        p.danger_allow_fxp_users = vec!["bob".into()];
        assert!(p.allows_fxp("bob") && !p.allows_fxp("alice"));
        p.danger_allow_fxp = true;
        assert!(p.allows_fxp("alice"));
    }
}
