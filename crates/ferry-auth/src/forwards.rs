//! Per-user permits for SSH local port forwarding (`direct-tcpip`), with OpenSSH `PermitOpen`
//! semantics (table `user_forwards`, migration `0005_user_forwards.sql`). No permit, no forwarding.

use std::fmt;
use std::str::FromStr;

use crate::db::{on_db, Fields};
use crate::error::Error;
use crate::store::{found, UserStore};

/// Targets one user may have at most.
pub const MAX_FORWARDS_PER_USER: i64 = 100;
/// Longest host name of a target.
const MAX_HOST_LEN: usize = 255;

/// A `HOST:PORT` a user may forward to. `*` as host matches any host, `*` as port any port; a host is
/// compared as written (case-insensitively), never resolved, as OpenSSH's `PermitOpen` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardTarget {
    /// Host name or address as the client must request it (IPv6 without brackets), or `*`.
    pub host: String,
    /// TCP port, or `None` for any port (`*`).
    pub port: Option<u16>,
}

impl ForwardTarget {
    /// Whether a request for `host`:`port` is covered by this target.
    pub fn allows(&self, host: &str, port: u32) -> bool {
        let host_ok = self.host == "*" || self.host.eq_ignore_ascii_case(host);
        let port_ok = match self.port {
            None => (1..=65_535).contains(&port),
            Some(p) => u32::from(p) == port,
        };
        host_ok && port_ok
    }
}

impl FromStr for ForwardTarget {
    type Err = Error;

    /// `HOST:PORT`, `[IPV6]:PORT`, with `*` for any host or port.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::InvalidInput(format!(
                "{s:?} is not a forwarding target; expected HOST:PORT such as localhost:5432, \
                 [::1]:80 or db.internal:* (`*` for any host or port)"
            ))
        };
        let (host, port) = match s.strip_prefix('[') {
            Some(rest) => {
                let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
                (host, port)
            }
            None => s.rsplit_once(':').ok_or_else(bad)?,
        };
        let host_ok = !host.is_empty()
            && host.len() <= MAX_HOST_LEN
            && (host == "*"
                || host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':')));
        if !host_ok || (host.contains(':') && !s.starts_with('[')) {
            return Err(bad());
        }
        let port = match port {
            "*" => None,
            p => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(bad()),
            },
        };
        Ok(ForwardTarget {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl fmt::Display for ForwardTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let port = self.port.map_or_else(|| "*".to_owned(), |p| p.to_string());
        if self.host.contains(':') {
            write!(f, "[{}]:{port}", self.host)
        } else {
            write!(f, "{}:{port}", self.host)
        }
    }
}

impl UserStore {
    /// Lets user `name` forward to `target`.
    pub async fn add_forward(&self, name: &str, target: &ForwardTarget) -> Result<(), Error> {
        if self.user(name).await?.is_none() {
            return Err(Error::NotFound(name.to_owned()));
        }
        let sql = "SELECT COUNT(*) AS n FROM user_forwards WHERE user_name = $1";
        let count = on_db!(&self.db, pool => sqlx::query(sql).bind(name).fetch_one(pool).await?.int("n")?);
        if count >= MAX_FORWARDS_PER_USER {
            return Err(Error::InvalidInput(format!(
                "user {name:?} already has {MAX_FORWARDS_PER_USER} forwarding targets"
            )));
        }
        let sql = "INSERT INTO user_forwards (user_name, host, port) VALUES ($1, $2, $3)";
        let result = on_db!(&self.db, pool => sqlx::query(sql)
            .bind(name)
            .bind(&target.host)
            .bind(i64::from(target.port.unwrap_or(0)))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()));
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(Error::AlreadyExists(format!("{name} forward {target}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Takes `target` away from user `name`.
    pub async fn delete_forward(&self, name: &str, target: &ForwardTarget) -> Result<(), Error> {
        let sql = "DELETE FROM user_forwards WHERE user_name = $1 AND host = $2 AND port = $3";
        let done = on_db!(&self.db, pool => sqlx::query(sql)
            .bind(name)
            .bind(&target.host)
            .bind(i64::from(target.port.unwrap_or(0)))
            .execute(pool)
            .await?
            .rows_affected());
        found(done, &format!("{name} forward {target}"))
    }

    /// User `name`'s forwarding targets, by host and port.
    pub async fn forwards(&self, name: &str) -> Result<Vec<ForwardTarget>, Error> {
        let sql = "SELECT host, port FROM user_forwards WHERE user_name = $1 ORDER BY host, port";
        on_db!(&self.db, pool => sqlx::query(sql)
            .bind(name)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| {
                Ok(ForwardTarget {
                    host: row.text("host")?,
                    port: u16::try_from(row.int("port")?).ok().filter(|p| *p > 0),
                })
            })
            .collect())
    }

    /// Whether user `name` may forward to `host`:`port`.
    pub async fn may_forward(&self, name: &str, host: &str, port: u32) -> Result<bool, Error> {
        Ok(self.forwards(name).await?.iter().any(|t| t.allows(host, port)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> ForwardTarget {
        s.parse().expect(s)
    }

    #[test]
    fn targets_parse_print_and_match_like_permitopen() {
        assert_eq!(t("localhost:5432").to_string(), "localhost:5432");
        assert_eq!(t("[::1]:80").to_string(), "[::1]:80");
        assert_eq!(t("DB.internal:*").to_string(), "db.internal:*");
        assert!(t("localhost:5432").allows("LOCALHOST", 5432));
        assert!(
            !t("localhost:5432").allows("127.0.0.1", 5432),
            "names are not resolved"
        );
        assert!(!t("localhost:5432").allows("localhost", 5433));
        assert!(t("db:*").allows("db", 1) && !t("db:*").allows("db", 0));
        assert!(t("*:22").allows("anything", 22) && !t("*:22").allows("anything", 23));
        for bad in [
            "",
            "host",
            "host:",
            ":80",
            "host:0",
            "host:65536",
            "::1:80",
            "a b:1",
            "[::1]80",
        ] {
            assert!(bad.parse::<ForwardTarget>().is_err(), "{bad:?}");
        }
    }
}
