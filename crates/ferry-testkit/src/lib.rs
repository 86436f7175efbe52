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
//! - [`s3`]: one real S3 server (`s3s-fs`) per test binary, a bucket per test.
//! - [`agent`]: a real `ssh-agent` on a private socket, holding keys made for the test.
//! - [`wait`]: waiting for a condition with a deadline rather than sleeping a fixed time.
//! - [`files`]: hashes, pseudo-random content and file trees.
//! - [`net`]: a connected pair of TCP sockets on loopback.
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
pub mod net;
pub mod postgres;
pub mod s3;
pub mod sftp;
pub mod wait;

/// The environment variable that picks the storage back-end of the in-process test servers:
/// unset or `local` for the local back-end, `s3` for the S3 back-end on the shared `s3s-fs`.
pub const STORAGE_ENV: &str = "FERRY_TEST_STORAGE";

fn s3_buckets() -> &'static std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, s3::TestBucket>> {
    static BUCKETS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<std::path::PathBuf, s3::TestBucket>>,
    > = std::sync::OnceLock::new();
    BUCKETS.get_or_init(Default::default)
}

/// The bucket [`storage_over`] serves `files` from, under `FERRY_TEST_STORAGE=s3` (`None` on the
/// local back-end).
pub fn s3_bucket_of(files: &std::path::Path) -> Option<s3::TestBucket> {
    s3_buckets()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(files)
        .cloned()
}

/// Whether the in-process test servers serve their files from S3 (`FERRY_TEST_STORAGE=s3`).
pub fn on_s3() -> bool {
    std::env::var(STORAGE_ENV).as_deref() == Ok("s3")
}

/// Under `FERRY_TEST_STORAGE=s3`, prints why the calling test does not apply to the S3 back-end
/// (`reason`: what S3 storage does differently by design, and where that is documented or tested)
/// and returns true, for the test to return; false on the local back-end.
pub fn skip_on_s3(reason: &str) -> bool {
    if on_s3() {
        eprintln!("skipped on the S3 back-end: {reason}");
        return true;
    }
    false
}

/// Under `FERRY_TEST_STORAGE=s3`, fails the test unless the bucket serving `files` holds nothing but
/// what clients stored: no multipart upload left open (aborts run in the background, so this waits
/// up to 10 s for them) and no key that is storage bookkeeping with content. Called by the test
/// servers when a test ends, before they shut down; a no-op on the local back-end.
pub fn assert_bucket_clean(files: &std::path::Path) {
    if let Err(e) = check_bucket_clean(files) {
        panic!("{e}");
    }
}

/// What [`assert_bucket_clean`] checks, as a result (for `Drop`s that shut a server down first).
pub fn check_bucket_clean(files: &std::path::Path) -> Result<(), String> {
    s3_bucket_of(files).map_or(Ok(()), |bucket| bucket.check_clean())
}

/// Opens (creating) the user database `users_db` with one user `name` (`password`, home `/`,
/// `permissions`) and the storage over `files`: what every in-process server starts from.
pub async fn store_with_user(
    files: &std::path::Path,
    users_db: &std::path::Path,
    name: &str,
    password: &str,
    permissions: ferry_auth::Permissions,
) -> Result<(ferry_auth::UserStore, std::sync::Arc<dyn ferry_vfs::Storage>), String> {
    let storage = storage_over(files).await?;
    let users = users_with(users_db, name, password, permissions).await?;
    Ok((users, storage))
}

/// The storage the test servers serve `files` with: the local back-end, or with
/// `FERRY_TEST_STORAGE=s3` the S3 back-end on a bucket of the shared `s3s-fs` whose objects are the
/// files under `files` (so tests that look at or prepare files on disk work unchanged on both).
pub async fn storage_over(files: &std::path::Path) -> Result<std::sync::Arc<dyn ferry_vfs::Storage>, String> {
    match std::env::var(STORAGE_ENV).as_deref() {
        Ok("s3") => {
            let bucket = s3::bucket_at(files);
            let fs = ferry_vfs::s3::S3Fs::connect(&bucket.config(""))
                .await
                .map_err(|e| format!("open S3 storage: {e}"))?;
            s3_buckets()
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(files.to_path_buf(), bucket);
            Ok(std::sync::Arc::new(fs))
        }
        Ok("local") | Err(_) => Ok(std::sync::Arc::new(
            ferry_vfs::LocalFs::open(files).map_err(|e| format!("open storage {}: {e}", files.display()))?,
        )),
        Ok(other) => Err(format!("{STORAGE_ENV}={other:?}: expected local or s3")),
    }
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
