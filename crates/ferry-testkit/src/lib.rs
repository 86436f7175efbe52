//! The test kit shared by the integration tests of ferry-ftpd, ferry-sftpd and ferry: what those
//! suites used to carry as copies in their `tests/common` modules (which are now thin re-exports).
//!
//! - [`clients`]: run real client programs with a time limit. A missing client program fails the
//!   test with the install hint under a plain `cargo test` too — never a silent pass.
//! - [`ftp`]: an in-process ferry FTP server over a temp dir, a raw control-connection client, the
//!   Python FTPS helper and resource probes.
//! - [`sftp`]: an in-process ferry SFTP server with a user key made by `ssh-keygen`.
//! - [`binary`]: the `ferry` binary in a temp dir, a `ferry serve` child read line by line, a small
//!   FTP control client.
//! - [`agent`]: a real `ssh-agent` on a private socket, holding keys made for the test.
//! - [`wait`]: waiting for a condition with a deadline rather than sleeping a fixed time.
//! - [`files`]: hashes, pseudo-random content and file trees.
//! - [`logs`]: the servers' log captured in memory, and the check that log lines stay bounded.
//! - [`postgres`]: one throwaway PostgreSQL server per test binary, a database per test.
//! - [`store_with_user`]: a user database with one user, and local storage, for in-process servers.
//!
//! It is not published and is not part of ferry; it may panic freely (it is test code).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

pub mod agent;
pub mod binary;
pub mod clients;
pub mod files;
pub mod ftp;
pub mod logs;
pub mod postgres;
pub mod sftp;
pub mod wait;

/// Opens (creating) the user database `users_db` with one user `name` (`password`, home `/`,
/// `permissions`) and the local storage over `files`: what every in-process server starts from.
pub async fn store_with_user(
    files: &std::path::Path,
    users_db: &std::path::Path,
    name: &str,
    password: &str,
    permissions: ferry_auth::Permissions,
) -> Result<(ferry_auth::UserStore, std::sync::Arc<dyn ferry_vfs::Storage>), String> {
    let storage: std::sync::Arc<dyn ferry_vfs::Storage> = std::sync::Arc::new(
        ferry_vfs::LocalFs::open(files).map_err(|e| format!("open storage {}: {e}", files.display()))?,
    );
    let users = users_with(users_db, name, password, permissions).await?;
    Ok((users, storage))
}

/// Opens (creating) the user database `users_db` with one user `name` (`password`, home `/`,
/// `permissions`).
pub async fn users_with(
    users_db: &std::path::Path,
    name: &str,
    password: &str,
    permissions: ferry_auth::Permissions,
) -> Result<ferry_auth::UserStore, String> {
    let users = ferry_auth::UserStore::open(users_db)
        .await
        .map_err(|e| format!("open user store {}: {e}", users_db.display()))?;
    users
        .add_user(ferry_auth::NewUser {
            name: name.into(),
            password: ferry_auth::Password::new(password.into()),
            home: "/".into(),
            permissions,
        })
        .await
        .map_err(|e| format!("add user {name}: {e}"))?;
    Ok(users)
}
