//! The user store, in SQLite or PostgreSQL.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::cache::{Verifiers, VerifyCache};
use crate::db::{on_db, Db, Fields};
use crate::error::Error;
use crate::password::{self, hash_password, Password};
use crate::permissions::Permissions;
use crate::user::{
    validate_home, validate_name, validate_password, AuthOutcome, NewUser, User, UserTls, MAX_PASSWORD_LEN,
};

/// How long a writer waits for a lock held by another connection or process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections in the pool of a file database.
const FILE_POOL_SIZE: u32 = 4;

pub(crate) const USER_COLUMNS: &str =
    "name, home, permissions, enabled, created, require_tls, protected_data, \
                                       danger_allow_unresumed_data_tls";

/// Users in an SQLite or PostgreSQL database. Cheap to clone (it wraps a connection pool); clones
/// share the verification cache and the bound on concurrent verifications.
#[derive(Clone)]
pub struct UserStore {
    pub(crate) db: Db,
    /// Successful verifications (see [`crate::cache`]); `None` if the OS gave no random key.
    cache: Option<Arc<VerifyCache>>,
    verifiers: Verifiers,
    /// Logged-in users' quota accounts and the default limits (see [`crate::quota`]).
    accounts: Arc<crate::quota::Accounts>,
}

impl fmt::Debug for UserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        };
        f.debug_struct("UserStore")
            .field("backend", &backend)
            .finish_non_exhaustive()
    }
}

impl UserStore {
    /// Opens the database file at `path` (creating it if missing, in WAL mode) and migrates it.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(FILE_POOL_SIZE)
            .connect_with(options)
            .await?;
        Self::migrated(Db::Sqlite(pool)).await
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://USER:PASSWORD@HOST:PORT/DB`, with
    /// `?sslmode=verify-full&sslrootcert=…` for TLS) and migrates it. Several nodes may share it: users,
    /// keys, bans, defender scores and connection leases then hold for all of them.
    pub async fn open_postgres(url: &str) -> Result<Self, Error> {
        let pool = crate::db::connect_postgres(url).await?;
        Self::migrated(Db::Postgres(pool)).await
    }

    /// Whether the database is PostgreSQL (shared by every node that connects to it).
    pub fn is_postgres(&self) -> bool {
        self.db.postgres().is_some()
    }

    /// Opens a fresh in-memory database (one connection that is never recycled, so the data
    /// lives as long as the store). Meant for tests.
    pub async fn open_in_memory() -> Result<Self, Error> {
        let options = SqliteConnectOptions::new().in_memory(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::migrated(Db::Sqlite(pool)).await
    }

    async fn migrated(db: Db) -> Result<Self, Error> {
        match &db {
            Db::Sqlite(pool) => sqlx::migrate!().run(pool).await?,
            Db::Postgres(pool) => sqlx::migrate!("./migrations-postgres").run(pool).await?,
        }
        // Compute the dummy hash now rather than during someone's first failed login.
        let _ = tokio::task::spawn_blocking(password::dummy_hash).await;
        Ok(UserStore {
            db,
            cache: VerifyCache::new().map(Arc::new),
            verifiers: Verifiers::new(),
            accounts: Arc::default(),
        })
    }

    /// Adds a user; fails with `AlreadyExists` if the name is taken.
    pub async fn add_user(&self, u: NewUser) -> Result<(), Error> {
        validate_name(&u.name)?;
        validate_home(&u.home)?;
        validate_password(&u.password)?;
        let hash = hash_blocking(u.password).await?;
        let sql = "INSERT INTO users (name, password_hash, home, permissions, enabled, created) \
                   VALUES ($1, $2, $3, $4, 1, $5)";
        let result = on_db!(&self.db, pool => sqlx::query(sql)
            .bind(&u.name)
            .bind(hash)
            .bind(&u.home)
            .bind(u.permissions.to_string())
            .bind(unix_now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()));
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(Error::AlreadyExists(u.name)),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a user.
    pub async fn delete_user(&self, name: &str) -> Result<(), Error> {
        let sql = "DELETE FROM users WHERE name = $1";
        let done = on_db!(&self.db, pool => sqlx::query(sql).bind(name).execute(pool).await?.rows_affected());
        self.forget(name);
        found(done, name)
    }

    /// Replaces a user's password.
    pub async fn set_password(&self, name: &str, pw: Password) -> Result<(), Error> {
        validate_password(&pw)?;
        if self.user(name).await?.is_none() {
            return Err(Error::NotFound(name.to_owned()));
        }
        let hash = hash_blocking(pw).await?;
        let done = self.update(name, "password_hash", hash).await;
        // Not needed for correctness (a new hash never matches a cached one) but frees the entry.
        self.forget(name);
        done
    }

    /// Replaces a user's permissions.
    pub async fn set_permissions(&self, name: &str, p: Permissions) -> Result<(), Error> {
        self.update(name, "permissions", p.to_string()).await
    }

    /// Replaces a user's virtual home.
    pub async fn set_home(&self, name: &str, home: &str) -> Result<(), Error> {
        validate_home(home)?;
        self.update(name, "home", home.to_owned()).await
    }

    /// Enables or disables a user.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), Error> {
        let sql = "UPDATE users SET enabled = $1 WHERE name = $2";
        let done = on_db!(&self.db, pool => sqlx::query(sql)
            .bind(i64::from(enabled))
            .bind(name)
            .execute(pool)
            .await?
            .rows_affected());
        found(done, name)
    }

    /// Replaces a user's FTPS overrides.
    pub async fn set_tls(&self, name: &str, tls: UserTls) -> Result<(), Error> {
        let sql = "UPDATE users SET require_tls = $1, protected_data = $2, \
                   danger_allow_unresumed_data_tls = $3 WHERE name = $4";
        let done = on_db!(&self.db, pool => sqlx::query(sql)
            .bind(i64::from(tls.require_tls))
            .bind(tls.protected_data.map(i64::from))
            .bind(tls.danger_allow_unresumed_data_tls.map(i64::from))
            .bind(name)
            .execute(pool)
            .await?
            .rows_affected());
        found(done, name)
    }

    /// The user called `name`, if any.
    pub async fn user(&self, name: &str) -> Result<Option<User>, Error> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
        on_db!(&self.db, pool => sqlx::query(&sql)
            .bind(name)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose())
    }

    /// All users, ordered by name.
    pub async fn list_users(&self) -> Result<Vec<User>, Error> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
        on_db!(&self.db, pool => sqlx::query(&sql)
            .fetch_all(pool)
            .await?
            .iter()
            .map(user_from_row)
            .collect())
    }

    /// Whether there are no users at all.
    pub async fn is_empty(&self) -> Result<bool, Error> {
        let sql = "SELECT COUNT(*) AS n FROM (SELECT 1 FROM users LIMIT 1) AS any_user";
        let n = on_db!(&self.db, pool => sqlx::query(sql).fetch_one(pool).await?.int("n")?);
        Ok(n == 0)
    }

    /// The user, if `name` exists, is enabled and `pw` matches.
    ///
    /// Unknown, disabled and malformed names still cost one Argon2id verification (against a
    /// fixed dummy hash) so that response time does not reveal which names exist. Verification
    /// runs on a fixed set of Argon2id threads (the `hash_pool` module), at most one per CPU at a
    /// time. A password verified recently
    /// against the very hash stored now is accepted from a short-lived cache without a new
    /// Argon2id run (the `cache` module); a wrong password never is.
    pub async fn authenticate(&self, name: &str, pw: &Password) -> Result<AuthOutcome, Error> {
        let candidate = if validate_name(name).is_ok() && pw.expose().len() <= MAX_PASSWORD_LEN {
            let sql = format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE name = $1");
            let found = on_db!(&self.db, pool => match sqlx::query(&sql).bind(name).fetch_optional(pool).await? {
                Some(row) => Some((user_from_row(&row)?, row.text("password_hash")?)),
                None => None,
            });
            match found {
                Some((user, hash)) => {
                    if user.enabled {
                        Ok((user, hash))
                    } else {
                        Err(AuthOutcome::Disabled)
                    }
                }
                None => Err(AuthOutcome::UnknownUser),
            }
        } else {
            Err(AuthOutcome::UnknownUser)
        };
        let (user, hash) = match candidate {
            Ok(found) => found,
            Err(outcome) => {
                let pw = pw.clone();
                let _turn = self.verifiers.acquire().await;
                let _ = crate::hash_pool::run(move || password::verify_dummy(&pw)).await;
                return Ok(outcome);
            }
        };
        if let Some(cache) = &self.cache {
            if cache.hit(name, &hash, pw, Instant::now()) {
                return Ok(AuthOutcome::Accepted(user));
            }
        }
        let ok = {
            let _turn = self.verifiers.acquire().await;
            // While this login waited for its turn, another one with the same credentials (a login
            // storm) may have verified them: look again before spending Argon2id work.
            if let Some(cache) = &self.cache {
                if cache.hit(name, &hash, pw, Instant::now()) {
                    return Ok(AuthOutcome::Accepted(user));
                }
            }
            let (hash, pw) = (hash.clone(), pw.clone());
            crate::hash_pool::run(move || password::verify(&hash, &pw))
                .await
                .ok_or_else(|| Error::Hash("verification task failed".to_owned()))??
        };
        if ok {
            if let Some(cache) = &self.cache {
                cache.remember(name, &hash, pw, Instant::now());
            }
        }
        Ok(if ok {
            AuthOutcome::Accepted(user)
        } else {
            AuthOutcome::WrongCredentials
        })
    }

    /// Drops `name` from the verification cache.
    fn forget(&self, name: &str) {
        if let Some(cache) = &self.cache {
            cache.forget(name);
        }
    }

    /// The quota accounts of logged-in users.
    pub(crate) fn accounts(&self) -> &crate::quota::Accounts {
        &self.accounts
    }

    /// Sets one text column of one user.
    async fn update(&self, name: &str, column: &'static str, value: String) -> Result<(), Error> {
        let sql = format!("UPDATE users SET {column} = $1 WHERE name = $2");
        let done = on_db!(&self.db, pool => sqlx::query(&sql)
            .bind(value)
            .bind(name)
            .execute(pool)
            .await?
            .rows_affected());
        found(done, name)
    }
}

/// Hashes on the blocking pool.
async fn hash_blocking(pw: Password) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| Error::Hash(format!("hashing task failed: {e}")))?
}

pub(crate) fn found(rows_affected: u64, name: &str) -> Result<(), Error> {
    if rows_affected == 0 {
        Err(Error::NotFound(name.to_owned()))
    } else {
        Ok(())
    }
}

pub(crate) fn user_from_row(row: &impl Fields) -> Result<User, Error> {
    let name = row.text("name")?;
    let permissions = row.text("permissions")?;
    let permissions = permissions.parse().map_err(|e| {
        Error::InvalidInput(format!("stored permissions of user {name:?} are unreadable: {e}"))
    })?;
    Ok(User {
        home: row.text("home")?,
        permissions,
        enabled: row.int("enabled")? != 0,
        created: row.int("created")?,
        tls: UserTls {
            require_tls: row.int("require_tls")? != 0,
            protected_data: row.opt_int("protected_data")?.map(|v| v != 0),
            danger_allow_unresumed_data_tls: row.opt_int("danger_allow_unresumed_data_tls")?.map(|v| v != 0),
        },
        name,
    })
}

pub(crate) fn unix_now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs).unwrap_or(i64::MAX)
}
