//! Settings of the hostile-client defences: the pending-connection limit, the command-rate throttle, the
//! failed-login delay, the FXP opt-outs and the `[defender]` table. Kept apart from `mod.rs` so that the
//! defaults, parsing and checks of these keys live in one place.

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use ferry_auth::defender::{DefenderConfig, Network, Scores};
use ferry_ftpd::Protection;
use serde::Deserialize;

use super::parse;

/// Longest failed-login delay, in milliseconds.
pub const MAX_FAILED_LOGIN_DELAY_MS: u64 = 60_000;
/// Shortest failed-login delay, in milliseconds (lower would make guessing cheap).
pub const MIN_FAILED_LOGIN_DELAY_MS: u64 = 100;
/// Highest command rate accepted.
pub const MAX_COMMANDS_PER_SEC: u32 = 1_000_000;
/// Highest score per event and highest threshold.
pub const MAX_SCORE: u32 = 10_000;

/// The `[defender]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefenderFile {
    threshold: Option<u32>,
    observation_secs: Option<u64>,
    ban_secs: Option<u64>,
    max_ban_secs: Option<u64>,
    score_failed_login: Option<u32>,
    score_unknown_user: Option<u32>,
    score_pre_login_disconnect: Option<u32>,
    score_limit_exceeded: Option<u32>,
    allow_list: Option<Vec<String>>,
    score_loopback: Option<bool>,
}

impl DefenderFile {
    /// Whether every key is present (the example file must show them all).
    #[cfg(test)]
    pub fn all_set(&self) -> bool {
        self.threshold.is_some()
            && self.observation_secs.is_some()
            && self.ban_secs.is_some()
            && self.max_ban_secs.is_some()
            && self.score_failed_login.is_some()
            && self.score_unknown_user.is_some()
            && self.score_pre_login_disconnect.is_some()
            && self.score_limit_exceeded.is_some()
            && self.allow_list.is_some()
            && self.score_loopback.is_some()
    }
}

/// Flags (and `FERRY_*` variables) of these settings; flattened into `ferry serve`'s flags.
#[derive(Debug, Default, Clone, Args)]
pub struct SecurityArgs {
    /// Connections open at once that have not logged in yet [default: 200]
    #[arg(long, env = "FERRY_MAX_PENDING_CONNECTIONS", value_name = "N", value_parser = parse::count)]
    pub max_pending_connections: Option<usize>,

    /// Commands per second one session may send on average; faster clients are slowed down [default: 100]
    #[arg(long, env = "FERRY_MAX_COMMANDS_PER_SEC", value_name = "N", value_parser = commands_per_sec)]
    pub max_commands_per_sec: Option<u32>,

    /// Milliseconds from PASS to the reply of a failed login [default: 1000]
    #[arg(long, env = "FERRY_FAILED_LOGIN_DELAY_MS", value_name = "MS", value_parser = failed_login_delay_ms)]
    pub failed_login_delay_ms: Option<u64>,

    /// DANGER: allow FXP (data connections with other addresses than the client's) for every user
    #[arg(
        long,
        env = "FERRY_DANGER_ALLOW_FXP",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse::boolean
    )]
    pub danger_allow_fxp: Option<bool>,

    /// DANGER: users allowed FXP (comma-separated)
    #[arg(
        long,
        env = "FERRY_DANGER_ALLOW_FXP_USERS",
        value_name = "USERS",
        value_delimiter = ','
    )]
    pub danger_allow_fxp_users: Option<Vec<String>>,

    /// Defender: score that bans an address [default: 15]
    #[arg(long, env = "FERRY_DEFENDER_THRESHOLD", value_name = "N", value_parser = threshold)]
    pub defender_threshold: Option<u32>,

    /// Defender: seconds an event counts towards the score [default: 1800]
    #[arg(long, env = "FERRY_DEFENDER_OBSERVATION_SECS", value_name = "SECS", value_parser = parse::secs)]
    pub defender_observation_secs: Option<u64>,

    /// Defender: seconds of a first ban; each later ban lasts twice as long [default: 1800]
    #[arg(long, env = "FERRY_DEFENDER_BAN_SECS", value_name = "SECS", value_parser = parse::secs)]
    pub defender_ban_secs: Option<u64>,

    /// Defender: longest ban in seconds [default: 86400]
    #[arg(long, env = "FERRY_DEFENDER_MAX_BAN_SECS", value_name = "SECS", value_parser = parse::secs)]
    pub defender_max_ban_secs: Option<u64>,

    /// Defender: score of a wrong password [default: 1]
    #[arg(long, env = "FERRY_DEFENDER_SCORE_FAILED_LOGIN", value_name = "N", value_parser = score)]
    pub defender_score_failed_login: Option<u32>,

    /// Defender: score of a login as an unknown user [default: 2]
    #[arg(long, env = "FERRY_DEFENDER_SCORE_UNKNOWN_USER", value_name = "N", value_parser = score)]
    pub defender_score_unknown_user: Option<u32>,

    /// Defender: score of a disconnect before login [default: 1]
    #[arg(long, env = "FERRY_DEFENDER_SCORE_PRE_LOGIN_DISCONNECT", value_name = "N", value_parser = score)]
    pub defender_score_pre_login_disconnect: Option<u32>,

    /// Defender: score of a connection refused by a limit [default: 3]
    #[arg(long, env = "FERRY_DEFENDER_SCORE_LIMIT_EXCEEDED", value_name = "N", value_parser = score)]
    pub defender_score_limit_exceeded: Option<u32>,

    /// Defender: networks never banned (comma-separated, e.g. 10.0.0.0/8,2001:db8::/32)
    #[arg(long, env = "FERRY_DEFENDER_ALLOW_LIST", value_name = "NETS", value_delimiter = ',', value_parser = network)]
    pub defender_allow_list: Option<Vec<Network>>,

    /// Defender: score and ban loopback addresses (127.0.0.0/8, ::1) too [default: false]
    #[arg(
        long,
        env = "FERRY_DEFENDER_SCORE_LOOPBACK",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse::boolean
    )]
    pub defender_score_loopback: Option<bool>,
}

/// The top-level keys of these settings as written in `ferry.toml`.
#[derive(Debug, Default)]
pub struct SecurityFile {
    pub max_pending_connections: Option<usize>,
    pub max_commands_per_sec: Option<u32>,
    pub failed_login_delay_ms: Option<u64>,
    pub danger_allow_fxp: Option<bool>,
    pub danger_allow_fxp_users: Option<Vec<String>>,
    pub defender: Option<DefenderFile>,
}

/// The validated settings.
#[derive(Debug)]
pub struct Security {
    pub max_pending: usize,
    pub protection: Protection,
    pub defender: DefenderConfig,
}

/// Merges flags, file and defaults; `key_err` names the key of a bad value.
pub fn load(
    args: &SecurityArgs,
    file: SecurityFile,
    default_max_pending: usize,
    key_err: &dyn Fn(&str, String) -> anyhow::Error,
) -> Result<Security> {
    let pick =
        |flag: Option<u64>, file: Option<u64>, key: &str, check: &dyn Fn(u64) -> Result<u64, String>| {
            match flag {
                Some(v) => Ok(Some(v)),
                None => file.map(check).transpose().map_err(|m| key_err(key, m)),
            }
        };
    let protection_defaults = Protection::default();
    let max_pending = match args.max_pending_connections {
        Some(n) => n,
        None => file
            .max_pending_connections
            .map(parse::check_count)
            .transpose()
            .map_err(|m| key_err("max_pending_connections", m))?
            .unwrap_or(default_max_pending),
    };
    let max_commands_per_sec = pick(
        args.max_commands_per_sec.map(u64::from),
        file.max_commands_per_sec.map(u64::from),
        "max_commands_per_sec",
        &|n| check_range(n, 1, u64::from(MAX_COMMANDS_PER_SEC)),
    )?
    .and_then(|n| u32::try_from(n).ok())
    .unwrap_or(protection_defaults.max_commands_per_sec);
    let failed_login_delay = pick(
        args.failed_login_delay_ms,
        file.failed_login_delay_ms,
        "failed_login_delay_ms",
        &|n| check_range(n, MIN_FAILED_LOGIN_DELAY_MS, MAX_FAILED_LOGIN_DELAY_MS),
    )?
    .map_or(protection_defaults.failed_login_delay, Duration::from_millis);
    let danger_allow_fxp = args.danger_allow_fxp.or(file.danger_allow_fxp).unwrap_or(false);
    let danger_allow_fxp_users = args
        .danger_allow_fxp_users
        .clone()
        .or(file.danger_allow_fxp_users)
        .unwrap_or_default()
        .into_iter()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();

    let d = file.defender.unwrap_or_default();
    let defaults = DefenderConfig::default();
    let secs = |flag: Option<u64>, file: Option<u64>, key: &str, default: Duration| -> Result<Duration> {
        Ok(pick(flag, file, key, &parse::check_secs)?.map_or(default, Duration::from_secs))
    };
    let score = |flag: Option<u32>, file: Option<u32>, key: &str, default: u32| -> Result<u32> {
        Ok(pick(flag.map(u64::from), file.map(u64::from), key, &|n| {
            check_range(n, 0, u64::from(MAX_SCORE))
        })?
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(default))
    };
    let threshold = pick(
        args.defender_threshold.map(u64::from),
        d.threshold.map(u64::from),
        "defender.threshold",
        &|n| check_range(n, 1, u64::from(MAX_SCORE)),
    )?
    .and_then(|n| u32::try_from(n).ok())
    .unwrap_or(defaults.threshold);
    let observation = secs(
        args.defender_observation_secs,
        d.observation_secs,
        "defender.observation_secs",
        defaults.observation,
    )?;
    let ban_time = secs(
        args.defender_ban_secs,
        d.ban_secs,
        "defender.ban_secs",
        defaults.ban_time,
    )?;
    let max_ban_time = secs(
        args.defender_max_ban_secs,
        d.max_ban_secs,
        "defender.max_ban_secs",
        defaults.max_ban_time,
    )?;
    if max_ban_time < ban_time {
        return Err(key_err(
            "defender.max_ban_secs",
            format!(
                "{} seconds is shorter than defender.ban_secs ({} seconds)",
                max_ban_time.as_secs(),
                ban_time.as_secs()
            ),
        ));
    }
    let s = defaults.scores;
    let scores = Scores {
        failed_login: score(
            args.defender_score_failed_login,
            d.score_failed_login,
            "defender.score_failed_login",
            s.failed_login,
        )?,
        unknown_user: score(
            args.defender_score_unknown_user,
            d.score_unknown_user,
            "defender.score_unknown_user",
            s.unknown_user,
        )?,
        pre_login_disconnect: score(
            args.defender_score_pre_login_disconnect,
            d.score_pre_login_disconnect,
            "defender.score_pre_login_disconnect",
            s.pre_login_disconnect,
        )?,
        limit_exceeded: score(
            args.defender_score_limit_exceeded,
            d.score_limit_exceeded,
            "defender.score_limit_exceeded",
            s.limit_exceeded,
        )?,
    };
    let allow_list = match &args.defender_allow_list {
        Some(nets) => nets.clone(),
        None => d
            .allow_list
            .unwrap_or_default()
            .iter()
            .map(|n| network(n).map_err(|m| key_err("defender.allow_list", m)))
            .collect::<Result<_>>()?,
    };
    Ok(Security {
        max_pending,
        protection: Protection {
            max_commands_per_sec,
            failed_login_delay,
            danger_allow_fxp,
            danger_allow_fxp_users,
        },
        defender: DefenderConfig {
            threshold,
            observation,
            ban_time,
            max_ban_time,
            scores,
            allow_list,
            score_loopback: args
                .defender_score_loopback
                .or(d.score_loopback)
                .unwrap_or(defaults.score_loopback),
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
