//! SSH public keys of users (for SFTP logins). The store keeps them as text and does not parse
//! them: the SFTP front end validates a key and computes its fingerprint before adding it.

use crate::db::{on_db, Db, Fields};
use crate::error::Error;
use crate::store::{found, unix_now, user_from_row, UserStore, USER_COLUMNS};
use crate::user::{validate_name, AuthOutcome};

/// Most keys one user may have.
pub const MAX_KEYS_PER_USER: i64 = 100;
/// Longest base64 key blob accepted, in bytes (an RSA-16384 key is about 2.8 KB).
const MAX_KEY_LEN: usize = 8192;
/// Longest comment, in bytes.
const MAX_COMMENT_LEN: usize = 1024;

/// A public key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyRecord {
    /// Key type, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// The key blob, base64 (as in an authorized_keys line).
    pub key_base64: String,
    /// `SHA256:…` fingerprint.
    pub fingerprint: String,
    /// Free text, usually `user@host`.
    pub comment: String,
    /// When it was added, unix seconds (ignored by [`UserStore::add_key`]).
    pub created: i64,
}

impl UserStore {
    /// Adds a public key to user `name`; `AlreadyExists` if the user has it already.
    pub async fn add_key(&self, name: &str, key: PublicKeyRecord) -> Result<(), Error> {
        let printable = |s: &str| s.chars().all(|c| !c.is_control());
        if key.algorithm.is_empty()
            || key.key_base64.is_empty()
            || key.key_base64.len() > MAX_KEY_LEN
            || key.comment.len() > MAX_COMMENT_LEN
            || !printable(&key.comment)
            || !key.algorithm.chars().all(|c| c.is_ascii_graphic())
            || !key.key_base64.chars().all(|c| c.is_ascii_graphic())
            || !key.fingerprint.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(Error::InvalidInput("malformed public key".to_owned()));
        }
        if self.user(name).await?.is_none() {
            return Err(Error::NotFound(name.to_owned()));
        }
        let sql = "SELECT COUNT(*) AS n FROM user_keys WHERE user_name = $1";
        let count = on_db!(&self.db, pool => sqlx::query(sql).bind(name).fetch_one(pool).await?.int("n")?);
        if count >= MAX_KEYS_PER_USER {
            return Err(Error::InvalidInput(format!(
                "user {name:?} already has {MAX_KEYS_PER_USER} keys"
            )));
        }
        let sql = "INSERT INTO user_keys (user_name, algorithm, key_base64, fingerprint, comment, created) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        let result = on_db!(&self.db, pool => sqlx::query(sql)
            .bind(name)
            .bind(&key.algorithm)
            .bind(&key.key_base64)
            .bind(&key.fingerprint)
            .bind(&key.comment)
            .bind(unix_now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()));
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(Error::AlreadyExists(format!("{name} key {}", key.fingerprint)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Removes user `name`'s key with this fingerprint (`SHA256:…`).
    pub async fn delete_key(&self, name: &str, fingerprint: &str) -> Result<(), Error> {
        let sql = "DELETE FROM user_keys WHERE user_name = $1 AND fingerprint = $2";
        let done = on_db!(&self.db, pool => sqlx::query(sql)
            .bind(name)
            .bind(fingerprint)
            .execute(pool)
            .await?
            .rows_affected());
        found(done, &format!("{name} key {fingerprint}"))
    }

    /// User `name`'s keys, oldest first.
    pub async fn keys(&self, name: &str) -> Result<Vec<PublicKeyRecord>, Error> {
        // Oldest first; keys added within the same second in the order they were added (SQLite's rowid),
        // or by fingerprint (PostgreSQL has no insertion order).
        let tie = match self.db {
            Db::Sqlite(_) => "rowid",
            Db::Postgres(_) => "fingerprint",
        };
        let sql = format!(
            "SELECT algorithm, key_base64, fingerprint, comment, created FROM user_keys \
             WHERE user_name = $1 ORDER BY created, {tie}"
        );
        on_db!(&self.db, pool => sqlx::query(&sql)
            .bind(name)
            .fetch_all(pool)
            .await?
            .iter()
            .map(key_from_row)
            .collect())
    }

    /// Whether `name` exists, is enabled and has the key `key_base64` (the base64 blob, which
    /// includes the key type). Signature checking is the caller's job.
    pub async fn authenticate_key(&self, name: &str, key_base64: &str) -> Result<AuthOutcome, Error> {
        if validate_name(name).is_err() {
            return Ok(AuthOutcome::UnknownUser);
        }
        match self.user(name).await? {
            None => return Ok(AuthOutcome::UnknownUser),
            Some(u) if !u.enabled => return Ok(AuthOutcome::Disabled),
            Some(_) if key_base64.len() > MAX_KEY_LEN => return Ok(AuthOutcome::WrongCredentials),
            Some(_) => {}
        }
        let columns = USER_COLUMNS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns} FROM users u JOIN user_keys k ON k.user_name = u.name \
             WHERE u.name = $1 AND k.key_base64 = $2 AND u.enabled = 1"
        );
        let user = on_db!(&self.db, pool => sqlx::query(&sql)
            .bind(name)
            .bind(key_base64)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()?);
        Ok(match user {
            Some(user) => AuthOutcome::Accepted(user),
            None => AuthOutcome::WrongCredentials,
        })
    }
}

fn key_from_row(row: &impl Fields) -> Result<PublicKeyRecord, Error> {
    Ok(PublicKeyRecord {
        algorithm: row.text("algorithm")?,
        key_base64: row.text("key_base64")?,
        fingerprint: row.text("fingerprint")?,
        comment: row.text("comment")?,
        created: row.int("created")?,
    })
}
