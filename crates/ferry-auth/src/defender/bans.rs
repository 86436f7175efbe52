//! Ban records in the user database (table `bans`, migration `0003_bans.sql`).

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::error::Error;
use crate::store::UserStore;

use super::net::canonical;

/// Longest ban reason stored, in bytes.
const MAX_REASON_LEN: usize = 200;

/// One ban record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// The banned address (IPv4-mapped IPv6 addresses are stored as IPv4).
    pub ip: IpAddr,
    /// When the ban ends (whole seconds).
    pub until: SystemTime,
    /// How many times this address has been banned; each ban lasts longer than the last.
    pub count: u32,
    /// Why, for `ferry ban list`.
    pub reason: String,
    /// When the record was first created.
    pub created: SystemTime,
}

impl Ban {
    /// Whether the ban is in force at `now`.
    pub fn active_at(&self, now: SystemTime) -> bool {
        now < self.until
    }
}

impl UserStore {
    /// Every ban record, active or expired (expired ones remember how often an address was banned),
    /// ordered by address.
    pub async fn bans(&self) -> Result<Vec<Ban>, Error> {
        let rows = sqlx::query("SELECT ip, until, count, reason, created FROM bans ORDER BY ip")
            .fetch_all(&self.pool)
            .await?;
        // A row that does not parse (hand-edited database) is skipped rather than failing every check.
        Ok(rows.iter().filter_map(|r| ban_from_row(r).ok()).collect())
    }

    /// The record of `ip`, if any.
    pub async fn ban(&self, ip: IpAddr) -> Result<Option<Ban>, Error> {
        let row = sqlx::query("SELECT ip, until, count, reason, created FROM bans WHERE ip = ?")
            .bind(canonical(ip).to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(ban_from_row).transpose()
    }

    /// Creates or replaces the record of `ban.ip`.
    pub async fn put_ban(&self, ban: &Ban) -> Result<(), Error> {
        let mut reason = ban.reason.clone();
        truncate(&mut reason, MAX_REASON_LEN);
        sqlx::query(
            "INSERT INTO bans (ip, until, count, reason, created) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (ip) DO UPDATE SET until = excluded.until, count = excluded.count, \
             reason = excluded.reason",
        )
        .bind(canonical(ban.ip).to_string())
        .bind(unix(ban.until))
        .bind(i64::from(ban.count))
        .bind(reason)
        .bind(unix(ban.created))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes the record of `ip` (lifting any ban and forgetting earlier ones); false if there was none.
    pub async fn delete_ban(&self, ip: IpAddr) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM bans WHERE ip = ?")
            .bind(canonical(ip).to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes records whose ban ended before `before`.
    pub async fn prune_bans(&self, before: SystemTime) -> Result<u64, Error> {
        let done = sqlx::query("DELETE FROM bans WHERE until < ?")
            .bind(unix(before))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

fn ban_from_row(row: &SqliteRow) -> Result<Ban, Error> {
    let ip: String = row.try_get("ip")?;
    let ip = ip
        .parse::<IpAddr>()
        .map_err(|_| Error::InvalidInput(format!("stored ban address {ip:?} is unreadable")))?;
    Ok(Ban {
        ip,
        until: from_unix(row.try_get("until")?),
        count: u32::try_from(row.try_get::<i64, _>("count")?).unwrap_or(1).max(1),
        reason: row.try_get("reason")?,
        created: from_unix(row.try_get("created")?),
    })
}

pub(crate) fn unix(t: SystemTime) -> i64 {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(secs).unwrap_or(i64::MAX)
}

pub(crate) fn from_unix(secs: i64) -> SystemTime {
    let secs = u64::try_from(secs).unwrap_or(0);
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(UNIX_EPOCH)
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}
