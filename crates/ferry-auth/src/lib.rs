//! Users, permissions and Argon2id password hashes for ferry, stored in SQLite or PostgreSQL.
//!
//! # What it does
//! - [`UserStore`] keeps users (name, Argon2id hash, virtual home, [`Permissions`], enabled flag)
//!   in an SQLite database ([`UserStore::open`]) or a PostgreSQL database shared by several nodes
//!   ([`UserStore::open_postgres`]), migrated on open from the embedded `migrations/` (SQLite) or
//!   `migrations-postgres/` (the same migrations, `BIGINT` for `INTEGER`, plus the functions of
//!   [`cluster`]). Every query is the same text on both.
//! - [`UserStore::authenticate`] verifies passwords off the async threads, at most one per CPU at
//!   a time, and spends the same work for unknown or disabled users, so timing does not reveal
//!   which names exist. Recent successful verifications are remembered for a few minutes (keyed
//!   HMAC of the password plus the stored hash; never matches a wrong or changed password). The
//!   hash is read from the database at every login, so a password changed on any node, or by the
//!   CLI, is in force on every node at its next login.
//! - [`Password`] keeps secrets out of `Debug` output and logs.
//! - [`defender::Defender`] scores failed logins and other misbehaviour per client address and bans
//!   addresses past a threshold, with the bans stored in the same database (see the module docs).
//! - [`cluster`]: on PostgreSQL, what several nodes share: node heartbeats, connection leases per
//!   address, defender scores, and ban changes announced to every node.
//! - SSH public keys per user ([`PublicKeyRecord`], [`UserStore::authenticate_key`]) for SFTP logins;
//!   stored as text, parsed and fingerprinted by the caller.
//!
//! # What it deliberately does not do
//! - No protocol logic: it does not know FTP or SFTP, and does not enforce permissions on file
//!   operations (the front ends do, with the [`Permissions`] returned here).
//! - No printing, no logging setup. Secrets are not zeroed in memory.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
pub mod cluster;
mod db;
pub mod defender;
mod error;
mod forwards;
mod hash_pool;
mod keys;
mod password;
mod permissions;
mod quota;
mod store;
mod user;

pub use db::{POSTGRES_ACQUIRE_TIMEOUT, POSTGRES_POOL_SIZE};
pub use error::Error;
pub use forwards::{ForwardTarget, MAX_FORWARDS_PER_USER};
pub use keys::{PublicKeyRecord, MAX_KEYS_PER_USER};
pub use password::{generate_password, hash_password, Password};
pub use permissions::Permissions;
pub use quota::{Account, DefaultLimits, EffectiveLimits, QuotaRecord, Usage, UserLimits};
pub use store::UserStore;
pub use user::{AuthOutcome, NewUser, User, UserTls};
