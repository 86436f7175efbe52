//! Ban records in the user database (table `bans`, migration `0003_bans.sql`).

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::db::{on_db, Db, Fields};
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
        let sql = "SELECT ip, until, count, reason, created FROM bans ORDER BY ip";
        // A row that does not parse (hand-edited database) is skipped rather than failing every check.
        Ok(on_db!(&self.db, pool => sqlx::query(sql)
            .fetch_all(pool)
            .await?
            .iter()
            .filter_map(|r| ban_from_row(r).ok())
            .collect()))
    }

    /// The record of `ip`, if any.
    pub async fn ban(&self, ip: IpAddr) -> Result<Option<Ban>, Error> {
        let sql = "SELECT ip, until, count, reason, created FROM bans WHERE ip = $1";
        on_db!(&self.db, pool => sqlx::query(sql)
            .bind(canonical(ip).to_string())
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(ban_from_row)
            .transpose())
    }

    /// Creates or replaces the record of `ban.ip`. On PostgreSQL the change is announced to every node
    /// listening (see [`Cluster::ban_changes`](crate::cluster::Cluster::ban_changes)) in the same transaction.
    pub async fn put_ban(&self, ban: &Ban) -> Result<(), Error> {
        let mut reason = ban.reason.clone();
        truncate(&mut reason, MAX_REASON_LEN);
        let ip = canonical(ban.ip).to_string();
        let sql = "INSERT INTO bans (ip, until, count, reason, created) VALUES ($1, $2, $3, $4, $5) \
                   ON CONFLICT (ip) DO UPDATE SET until = excluded.until, count = excluded.count, \
                   reason = excluded.reason";
        match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query(sql)
                    .bind(ip)
                    .bind(unix(ban.until))
                    .bind(i64::from(ban.count))
                    .bind(reason)
                    .bind(unix(ban.created))
                    .execute(pool)
                    .await?;
            }
            Db::Postgres(pool) => {
                let change = BanChange::Banned {
                    ip: ban.ip,
                    until: ban.until,
                    count: ban.count,
                };
                let mut tx = pool.begin().await?;
                sqlx::query(sql)
                    .bind(ip)
                    .bind(unix(ban.until))
                    .bind(i64::from(ban.count))
                    .bind(reason)
                    .bind(unix(ban.created))
                    .execute(&mut *tx)
                    .await?;
                notify(&mut tx, &change).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Removes the record of `ip` (lifting any ban and forgetting earlier ones); false if there was none.
    pub async fn delete_ban(&self, ip: IpAddr) -> Result<bool, Error> {
        let ip = canonical(ip);
        let sql = "DELETE FROM bans WHERE ip = $1";
        let done = match &self.db {
            Db::Sqlite(pool) => sqlx::query(sql)
                .bind(ip.to_string())
                .execute(pool)
                .await?
                .rows_affected(),
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let done = sqlx::query(sql).bind(ip.to_string()).execute(&mut *tx).await?;
                notify(&mut tx, &BanChange::Lifted { ip }).await?;
                tx.commit().await?;
                done.rows_affected()
            }
        };
        Ok(done > 0)
    }

    /// Removes records whose ban ended before `before`.
    pub async fn prune_bans(&self, before: SystemTime) -> Result<u64, Error> {
        let sql = "DELETE FROM bans WHERE until < $1";
        Ok(on_db!(&self.db, pool => sqlx::query(sql)
            .bind(unix(before))
            .execute(pool)
            .await?
            .rows_affected()))
    }
}

/// A change of the bans, as announced between nodes sharing a PostgreSQL database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanChange {
    /// `ip` is banned until `until` (its `count`-th ban).
    Banned {
        /// The address.
        ip: IpAddr,
        /// When the ban ends (whole seconds).
        until: SystemTime,
        /// How many times the address has been banned.
        count: u32,
    },
    /// The record of `ip` was removed.
    Lifted {
        /// The address.
        ip: IpAddr,
    },
}

/// The PostgreSQL notification channel of ban changes.
pub(crate) const BAN_CHANNEL: &str = "ferry_bans";

impl BanChange {
    /// The notification payload: `ban IP UNTIL COUNT` or `lift IP`.
    fn payload(&self) -> String {
        match self {
            BanChange::Banned { ip, until, count } => format!("ban {ip} {} {count}", unix(*until)),
            BanChange::Lifted { ip } => format!("lift {ip}"),
        }
    }

    /// Reads a payload written by [`BanChange::payload`]; `None` for anything else.
    pub(crate) fn parse(payload: &str) -> Option<BanChange> {
        let mut words = payload.split(' ');
        let change = match words.next()? {
            "ban" => BanChange::Banned {
                ip: canonical(words.next()?.parse().ok()?),
                until: from_unix(words.next()?.parse().ok()?),
                count: words.next()?.parse().ok()?,
            },
            "lift" => BanChange::Lifted {
                ip: canonical(words.next()?.parse().ok()?),
            },
            _ => return None,
        };
        words.next().is_none().then_some(change)
    }
}

async fn notify(tx: &mut sqlx::PgConnection, change: &BanChange) -> Result<(), Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(BAN_CHANNEL)
        .bind(change.payload())
        .execute(tx)
        .await?;
    Ok(())
}

fn ban_from_row(row: &impl Fields) -> Result<Ban, Error> {
    let ip = row.text("ip")?;
    let ip = ip
        .parse::<IpAddr>()
        .map_err(|_| Error::InvalidInput(format!("stored ban address {ip:?} is unreadable")))?;
    Ok(Ban {
        ip,
        until: from_unix(row.int("until")?),
        count: u32::try_from(row.int("count")?).unwrap_or(1).max(1),
        reason: row.text("reason")?,
        created: from_unix(row.int("created")?),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ban_changes_round_trip_and_garbage_is_ignored() {
        let banned = BanChange::Banned {
            ip: "2001:db8::7".parse().expect("ip"),
            until: from_unix(1_900_000_000),
            count: 3,
        };
        let lifted = BanChange::Lifted {
            ip: [192, 0, 2, 1].into(),
        };
        for change in [banned, lifted] {
            assert_eq!(BanChange::parse(&change.payload()), Some(change));
        }
        for bad in [
            "",
            "ban",
            "ban 1.2.3.4",
            "ban 1.2.3.4 x 1",
            "lift",
            "lift x",
            "lift 1.2.3.4 5",
            "drop 1.2.3.4",
        ] {
            assert_eq!(BanChange::parse(bad), None, "{bad:?}");
        }
    }
}
