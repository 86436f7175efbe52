//! Settings of the hostile-client defences: the command-rate throttle, the failed-login delay, the FXP
//! opt-outs and the `[defender]` table: their value checks and how the merged values become the
//! library's [`Protection`] and [`DefenderConfig`].

use std::time::Duration;

use anyhow::{anyhow, Result};
use ferry_auth::defender::{DefenderConfig, Network, Scores};
use ferry_ftpd::Protection;

use super::layer::{Value, Values};

/// Longest failed-login delay, in milliseconds.
pub const MAX_FAILED_LOGIN_DELAY_MS: u64 = 60_000;
/// Shortest failed-login delay, in milliseconds (lower would make guessing cheap).
pub const MIN_FAILED_LOGIN_DELAY_MS: u64 = 100;
/// Highest command rate accepted.
pub const MAX_COMMANDS_PER_SEC: u32 = 1_000_000;
/// Highest score per event and highest threshold.
pub const MAX_SCORE: u32 = 10_000;

/// The validated settings.
#[derive(Debug)]
pub struct Security {
    pub protection: Protection,
    pub defender: DefenderConfig,
}

/// Builds the defences from the merged values; `defender.max_ban_secs` must not be shorter than
/// `defender.ban_secs`.
pub fn build(v: &Values) -> Result<Security> {
    let ban_time = v.secs("defender.ban_secs")?;
    let max_ban_time = v.secs("defender.max_ban_secs")?;
    if max_ban_time < ban_time {
        return Err(anyhow!(
            "invalid `defender.max_ban_secs`: {} seconds is shorter than defender.ban_secs ({} seconds)",
            max_ban_time.as_secs(),
            ban_time.as_secs()
        ));
    }
    let users = v.list("danger_allow_fxp_users", |x| match x {
        Value::Text(s) => Some(s.clone()),
        _ => None,
    })?;
    Ok(Security {
        protection: Protection {
            max_commands_per_sec: v.number("max_commands_per_sec")?,
            failed_login_delay: Duration::from_millis(v.number("failed_login_delay_ms")?),
            danger_allow_fxp: v.bool("danger_allow_fxp")?,
            danger_allow_fxp_users: users
                .unwrap_or_default()
                .into_iter()
                .filter(|u| !u.is_empty())
                .collect(),
        },
        defender: DefenderConfig {
            threshold: v.number("defender.threshold")?,
            observation: v.secs("defender.observation_secs")?,
            ban_time,
            max_ban_time,
            scores: Scores {
                failed_login: v.number("defender.score_failed_login")?,
                unknown_user: v.number("defender.score_unknown_user")?,
                pre_login_disconnect: v.number("defender.score_pre_login_disconnect")?,
                limit_exceeded: v.number("defender.score_limit_exceeded")?,
            },
            score_loopback: v.bool("defender.score_loopback")?,
            allow_list: v
                .list("defender.allow_list", |x| match x {
                    Value::Network(n) => Some(*n),
                    _ => None,
                })?
                .unwrap_or_default(),
        },
    })
}

fn check_range(n: u64, lo: u64, hi: u64) -> Result<u64, String> {
    if (lo..=hi).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is outside {lo}–{hi}"))
    }
}

fn number(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<u64>()
        .map_err(|_| format!("{s:?} is not a whole number"))
}

/// A command rate, 1 to [`MAX_COMMANDS_PER_SEC`].
pub fn commands_per_sec(s: &str) -> Result<u32, String> {
    let n = check_range(number(s)?, 1, u64::from(MAX_COMMANDS_PER_SEC))?;
    u32::try_from(n).map_err(|e| e.to_string())
}

/// A failed-login delay in milliseconds.
pub fn failed_login_delay_ms(s: &str) -> Result<u64, String> {
    check_range(number(s)?, MIN_FAILED_LOGIN_DELAY_MS, MAX_FAILED_LOGIN_DELAY_MS)
}

/// A defender threshold, 1 to [`MAX_SCORE`].
pub fn threshold(s: &str) -> Result<u32, String> {
    let n = check_range(number(s)?, 1, u64::from(MAX_SCORE))?;
    u32::try_from(n).map_err(|e| e.to_string())
}

/// A defender score, 0 (the event is not counted) to [`MAX_SCORE`].
pub fn score(s: &str) -> Result<u32, String> {
    let n = check_range(number(s)?, 0, u64::from(MAX_SCORE))?;
    u32::try_from(n).map_err(|e| e.to_string())
}

/// A network, `ADDRESS/PREFIX` or a single address.
pub fn network(s: &str) -> Result<Network, String> {
    s.parse()
}
