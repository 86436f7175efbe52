//! The database behind the store: SQLite (one file, one node) or PostgreSQL (shared by many nodes).
//!
//! Every query is written once, with `$1`-style parameters (which both databases accept), and run on
//! whichever pool the store has through [`on_db!`]. Integers are `INTEGER` in SQLite and `BIGINT` in
//! PostgreSQL, so both decode as `i64`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::Row;

use crate::error::Error;

/// Connections in the pool of a PostgreSQL database, per process.
pub const POSTGRES_POOL_SIZE: u32 = 8;
/// How long a query waits for a free connection (or for a new one to be made) before it fails: a
/// database that does not answer turns into errors quickly rather than into hung logins.
pub const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// A connection pool of one of the supported databases.
#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever database it is.
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

impl Db {
    /// Whether this is the PostgreSQL pool.
    pub(crate) fn postgres(&self) -> Option<&PgPool> {
        match self {
            Db::Postgres(pool) => Some(pool),
            Db::Sqlite(_) => None,
        }
    }
}

/// Connects to the PostgreSQL database at `url` (`postgres://user:password@host:port/db?sslmode=…`).
pub(crate) async fn connect_postgres(url: &str) -> Result<PgPool, Error> {
    let options = PgConnectOptions::from_str(url)?.application_name("ferry");
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_POOL_SIZE)
        .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Reading columns the same way from either database's rows.
pub(crate) trait Fields {
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
}

macro_rules! fields {
    ($row:ty) => {
        impl Fields for $row {
            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                self.try_get(column)
            }
            fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
                self.try_get(column)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(column)
            }
        }
    };
}
fields!(SqliteRow);
fields!(PgRow);

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn migrations(dir: &str) -> Vec<(String, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("migrations directory")
            .flatten()
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(e.path()).expect("migration"))
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn postgres_migrations_are_the_sqlite_ones_with_bigint() {
        let sqlite = migrations("migrations");
        let postgres = migrations("migrations-postgres");
        let names = |m: &[(String, String)]| m.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(&sqlite),
            names(&postgres),
            "the same migrations, by version and name"
        );
        for ((name, lite), (_, pg)) in sqlite.iter().zip(&postgres) {
            if name == "0006_cluster.sql" {
                // The same tables; PostgreSQL adds the functions that take leases and add scores.
                for table in ["cluster_nodes", "connection_leases", "defender_events"] {
                    assert!(lite.contains(table) && pg.contains(table), "{name}: {table}");
                }
                continue;
            }
            assert_eq!(&lite.replace("INTEGER", "BIGINT"), pg, "{name}");
        }
    }
}
