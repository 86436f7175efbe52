//! Per-user quotas (bytes and files) and bandwidth limits, and the usage they are checked against
//! (columns of `users`, migration `0007_user_quotas.sql`).
//!
//! The server keeps one [`Account`] per logged-in user, shared by all of that user's sessions (FTP
//! and SFTP): it is the policy layer's [`Quota`] hook (reserve, then settle on commit or delete) and
//! holds the user's [`Rates`], so a bandwidth limit holds for the user as a whole. Usage lives in
//! memory while the user is logged in and every change is written to the database as a delta (an
//! `UPDATE … SET used_bytes = used_bytes + ?`, off the transfer's path), so it is cheap and several
//! processes sharing one database add up correctly. One writer per user runs at a time: it waits
//! [`USAGE_BATCH`] after the first change and stores the sum of the changes made meanwhile, so a stream
//! of small uploads costs a few database writes a second rather than one each (each is a round trip to
//! the database's thread, which on a small machine cost more than the upload). A graceful shutdown
//! writes what is still waiting ([`UserStore::flush_usage`]); after a crash, `ferry user quota NAME
//! --recount` corrects the stored usage.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use ferry_vfs::{Error as VfsError, ErrorKind, Quota, Rates, UploadEnd, VPath};
use sqlx::Row;

use crate::db::on_db;

use crate::error::Error;
use crate::store::{found, UserStore};

/// A user's own limits; `None` means the default setting applies, `Some(0)` unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserLimits {
    /// Most bytes the user may store.
    pub quota_bytes: Option<u64>,
    /// Most files the user may store.
    pub quota_files: Option<u64>,
    /// Upload bandwidth in KiB/s, shared by all the user's sessions.
    pub upload_kib: Option<u64>,
    /// Download bandwidth in KiB/s, shared by all the user's sessions.
    pub download_kib: Option<u64>,
}

/// The defaults for users without their own limits (0 = unlimited), from the settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultLimits {
    /// `quota.default_bytes`.
    pub quota_bytes: u64,
    /// `quota.default_files`.
    pub quota_files: u64,
    /// `bandwidth.default_upload_kib`.
    pub upload_kib: u64,
    /// `bandwidth.default_download_kib`.
    pub download_kib: u64,
}

/// Limits in force for one user (0 = unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EffectiveLimits {
    /// Most bytes stored.
    pub quota_bytes: u64,
    /// Most files stored.
    pub quota_files: u64,
    /// Upload KiB/s.
    pub upload_kib: u64,
    /// Download KiB/s.
    pub download_kib: u64,
}

impl UserLimits {
    /// The limits in force given the defaults.
    pub fn effective(&self, d: &DefaultLimits) -> EffectiveLimits {
        EffectiveLimits {
            quota_bytes: self.quota_bytes.unwrap_or(d.quota_bytes),
            quota_files: self.quota_files.unwrap_or(d.quota_files),
            upload_kib: self.upload_kib.unwrap_or(d.upload_kib),
            download_kib: self.download_kib.unwrap_or(d.download_kib),
        }
    }
}

/// What a user stores (as counted by the server, or recounted from storage).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes in the user's files.
    pub bytes: u64,
    /// Number of files.
    pub files: u64,
}

/// A user's limits and usage as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaRecord {
    /// The user's own limits.
    pub limits: UserLimits,
    /// The stored usage.
    pub usage: Usage,
}

/// How long a usage writer waits after the first change before it stores the sum of the changes.
pub(crate) const USAGE_BATCH: std::time::Duration = std::time::Duration::from_millis(100);

/// The accounts of logged-in users, shared by every clone of a [`UserStore`] (so the FTP and SFTP
/// servers of one process share them), and the default limits.
#[derive(Debug, Default)]
pub(crate) struct Accounts {
    live: Mutex<HashMap<String, Weak<Account>>>,
    defaults: Mutex<DefaultLimits>,
    /// Usage changes not yet stored, per user; kept after the account ends, so that a user's writer
    /// and [`UserStore::flush_usage`] find them.
    unwritten: Mutex<HashMap<String, Arc<Mutex<Unwritten>>>>,
}

/// One logged-in user's quota state and bandwidth limits, shared by their sessions.
#[derive(Debug)]
pub struct Account {
    name: String,
    store: UserStore,
    limits: Mutex<EffectiveLimits>,
    state: Mutex<State>,
    rates: Rates,
    /// Usage deltas not yet in the database.
    unwritten: Arc<Mutex<Unwritten>>,
}

/// Usage changes waiting for the account's database writer.
#[derive(Debug, Default)]
struct Unwritten {
    bytes: i64,
    files: i64,
    /// A writer task runs; it takes these changes before it ends.
    writer: bool,
    /// Changes taken from here and being written now.
    writing: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct State {
    bytes: i64,
    files: i64,
    reserved_bytes: u64,
    reserved_files: u64,
}

const KIB: u64 = 1024;

fn opt(v: Option<i64>) -> Option<u64> {
    v.map(|v| u64::try_from(v).unwrap_or(0))
}

fn col(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

impl UserStore {
    /// `name`'s limits and stored usage.
    pub async fn quota(&self, name: &str) -> Result<QuotaRecord, Error> {
        let sql = "SELECT quota_bytes, quota_files, upload_kib, download_kib, used_bytes, used_files \
                   FROM users WHERE name = $1";
        on_db!(&self.db, pool => {
            let row = sqlx::query(sql)
                .bind(name)
                .fetch_optional(pool)
                .await?
                .ok_or_else(|| Error::NotFound(name.to_owned()))?;
            Ok(QuotaRecord {
                limits: UserLimits {
                    quota_bytes: opt(row.try_get("quota_bytes")?),
                    quota_files: opt(row.try_get("quota_files")?),
                    upload_kib: opt(row.try_get("upload_kib")?),
                    download_kib: opt(row.try_get("download_kib")?),
                },
                usage: Usage {
                    bytes: opt(Some(row.try_get("used_bytes")?)).unwrap_or(0),
                    files: opt(Some(row.try_get("used_files")?)).unwrap_or(0),
                },
            })
        })
    }

    /// Replaces `name`'s own limits; a logged-in user's sessions follow at once.
    pub async fn set_limits(&self, name: &str, l: UserLimits) -> Result<(), Error> {
        let sql = "UPDATE users SET quota_bytes = $1, quota_files = $2, upload_kib = $3, download_kib = $4 \
                   WHERE name = $5";
        let done = on_db!(&self.db, pool => sqlx::query(sql)
            .bind(col(l.quota_bytes))
            .bind(col(l.quota_files))
            .bind(col(l.upload_kib))
            .bind(col(l.download_kib))
            .bind(name)
            .execute(pool)
            .await?
            .rows_affected());
        found(done, name)?;
        if let Some(account) = self.live_account(name) {
            account.set_limits(l.effective(&self.default_limits()));
        }
        Ok(())
    }

    /// Replaces `name`'s stored usage (after counting the files in storage).
    pub async fn set_usage(&self, name: &str, u: Usage) -> Result<(), Error> {
        let sql = "UPDATE users SET used_bytes = $1, used_files = $2 WHERE name = $3";
        let done = on_db!(&self.db, pool => sqlx::query(sql)
            .bind(col(Some(u.bytes)))
            .bind(col(Some(u.files)))
            .bind(name)
            .execute(pool)
            .await?
            .rows_affected());
        found(done, name)?;
        if let Some(account) = self.live_account(name) {
            account.set_usage(u);
        }
        Ok(())
    }

    /// Sets the limits for users without their own (from the settings).
    pub fn set_default_limits(&self, d: DefaultLimits) {
        *self.accounts().defaults.lock().unwrap_or_else(|e| e.into_inner()) = d;
    }

    /// The limits for users without their own.
    pub fn default_limits(&self) -> DefaultLimits {
        *self.accounts().defaults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The account of a user who just logged in: the one their other sessions share, or a new one
    /// with the usage and limits from the database.
    pub async fn account(&self, name: &str) -> Result<Arc<Account>, Error> {
        let record = self.quota(name).await?;
        let limits = record.limits.effective(&self.default_limits());
        let mut live = self.accounts().live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(account) = live.get(name).and_then(Weak::upgrade) {
            account.set_limits(limits);
            return Ok(account);
        }
        live.retain(|_, a| a.strong_count() > 0);
        let account = Arc::new(Account {
            name: name.to_owned(),
            store: self.clone(),
            limits: Mutex::new(limits),
            state: Mutex::new(State {
                bytes: i64::try_from(record.usage.bytes).unwrap_or(i64::MAX),
                files: i64::try_from(record.usage.files).unwrap_or(i64::MAX),
                ..State::default()
            }),
            rates: Rates::default(),
            unwritten: Arc::clone(
                self.accounts()
                    .unwritten
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(name.to_owned())
                    .or_default(),
            ),
        });
        account.set_limits(limits);
        live.insert(name.to_owned(), Arc::downgrade(&account));
        Ok(account)
    }

    /// The account of `name` if they are logged in now.
    pub fn live_account(&self, name: &str) -> Option<Arc<Account>> {
        let live = self.accounts().live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(name).and_then(Weak::upgrade)
    }

    /// Stores every usage change still waiting for its writer (at shutdown), and waits (up to 5 s)
    /// for writes already under way.
    pub async fn flush_usage(&self) {
        let pending: Vec<(String, Arc<Mutex<Unwritten>>)> = {
            let all = self
                .accounts()
                .unwritten
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            all.iter().map(|(n, u)| (n.clone(), Arc::clone(u))).collect()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        for (name, unwritten) in pending {
            let (bytes, files) = {
                let mut u = unwritten.lock().unwrap_or_else(|e| e.into_inner());
                (std::mem::take(&mut u.bytes), std::mem::take(&mut u.files))
            };
            if bytes != 0 || files != 0 {
                if let Err(e) = self.add_usage(&name, bytes, files).await {
                    tracing::warn!(user = %name, error = %e, "cannot store the quota usage change; \
                        run `ferry user quota {name} --recount` to correct it");
                }
            }
            while unwritten.lock().unwrap_or_else(|e| e.into_inner()).writing
                && std::time::Instant::now() < deadline
            {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    }

    /// Adds a usage change to the stored usage.
    async fn add_usage(&self, name: &str, bytes: i64, files: i64) -> Result<(), Error> {
        let sql =
            "UPDATE users SET used_bytes = used_bytes + $1, used_files = used_files + $2 WHERE name = $3";
        on_db!(&self.db, pool => sqlx::query(sql)
            .bind(bytes)
            .bind(files)
            .bind(name)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }
}

impl Account {
    /// The user's bandwidth limits (give them to the policy layer).
    pub fn rates(&self) -> Rates {
        self.rates.clone()
    }

    /// The limits in force.
    pub fn limits(&self) -> EffectiveLimits {
        *self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Usage as counted now (committed uploads and deletes; uploads in progress not included).
    pub fn usage(&self) -> Usage {
        let s = *self.state.lock().unwrap_or_else(|e| e.into_inner());
        Usage {
            bytes: u64::try_from(s.bytes).unwrap_or(0),
            files: u64::try_from(s.files).unwrap_or(0),
        }
    }

    fn set_limits(&self, l: EffectiveLimits) {
        *self.limits.lock().unwrap_or_else(|e| e.into_inner()) = l;
        self.rates.upload.set_rate(l.upload_kib.saturating_mul(KIB));
        self.rates.download.set_rate(l.download_kib.saturating_mul(KIB));
    }

    fn set_usage(&self, u: Usage) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.bytes = i64::try_from(u.bytes).unwrap_or(i64::MAX);
        s.files = i64::try_from(u.files).unwrap_or(i64::MAX);
    }

    /// Writes a usage change to the database, off the caller's path: added to the account's unwritten
    /// changes, which its one writer task (started here if none runs) stores until none are left.
    fn persist(&self, bytes: i64, files: i64) {
        if bytes == 0 && files == 0 {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(user = %self.name, "usage change not stored: no runtime");
            return;
        };
        {
            let mut u = self.unwritten.lock().unwrap_or_else(|e| e.into_inner());
            u.bytes = u.bytes.saturating_add(bytes);
            u.files = u.files.saturating_add(files);
            if u.writer {
                return;
            }
            u.writer = true;
        }
        let (store, name) = (self.store.clone(), self.name.clone());
        let unwritten = Arc::clone(&self.unwritten);
        rt.spawn(async move {
            loop {
                // The changes of the next moment go into the same write.
                tokio::time::sleep(USAGE_BATCH).await;
                let (bytes, files) = {
                    let mut u = unwritten.lock().unwrap_or_else(|e| e.into_inner());
                    if u.bytes == 0 && u.files == 0 {
                        u.writer = false;
                        return;
                    }
                    u.writing = true;
                    (std::mem::take(&mut u.bytes), std::mem::take(&mut u.files))
                };
                if let Err(e) = store.add_usage(&name, bytes, files).await {
                    tracing::warn!(user = %name, error = %e, "cannot store the quota usage change; \
                        run `ferry user quota {name} --recount` to correct it");
                }
                unwritten.lock().unwrap_or_else(|e| e.into_inner()).writing = false;
            }
        });
    }

    /// Whether every usage change has been written (for tests and `show`).
    pub fn settled(&self) -> bool {
        let u = self.unwritten.lock().unwrap_or_else(|e| e.into_inner());
        !u.writer && u.bytes == 0 && u.files == 0
    }
}

fn exceeded(what: &str, used: i64, limit: u64, adding: &str) -> VfsError {
    VfsError::new(ErrorKind::QuotaExceeded)
        .detail(format!("quota exceeded: {what} ({used} of {limit} used{adding})"))
}

impl Quota for Account {
    fn counts(&self) -> bool {
        true
    }

    fn status(&self) -> Option<ferry_vfs::QuotaStatus> {
        let (u, l) = (self.usage(), self.limits());
        Some(ferry_vfs::QuotaStatus {
            bytes: u.bytes,
            files: u.files,
            max_bytes: l.quota_bytes,
            max_files: l.quota_files,
        })
    }

    fn before_upload(&self, _user: &str, _path: &VPath, existing: Option<u64>) -> ferry_vfs::Result<()> {
        let l = self.limits();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if existing.is_none() {
            let files = s.files.saturating_add(s.reserved_files as i64);
            if l.quota_files != 0 && files >= l.quota_files as i64 {
                return Err(exceeded("files", files, l.quota_files, ""));
            }
            s.reserved_files += 1;
        }
        let bytes = s.bytes.saturating_add(s.reserved_bytes as i64);
        if l.quota_bytes != 0 && bytes > l.quota_bytes as i64 {
            if existing.is_none() {
                s.reserved_files -= 1;
            }
            return Err(exceeded("bytes", bytes, l.quota_bytes, ""));
        }
        Ok(())
    }

    fn add_bytes(&self, _user: &str, bytes: u64) -> ferry_vfs::Result<()> {
        let l = self.limits();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let used = s.bytes.saturating_add(s.reserved_bytes as i64);
        if l.quota_bytes != 0 && used.saturating_add(bytes as i64) > l.quota_bytes as i64 {
            return Err(exceeded(
                "bytes",
                used,
                l.quota_bytes,
                "; the upload would add more",
            ));
        }
        s.reserved_bytes += bytes;
        Ok(())
    }

    fn upload_ended(&self, _user: &str, _path: &VPath, end: &UploadEnd) {
        let files = i64::from(end.new_file && end.committed);
        {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.reserved_bytes = s.reserved_bytes.saturating_sub(end.reserved);
            if end.new_file {
                s.reserved_files = s.reserved_files.saturating_sub(1);
            }
            if end.committed {
                s.bytes = s.bytes.saturating_add(end.size_change);
                s.files = s.files.saturating_add(files);
            }
        }
        if end.committed {
            self.persist(end.size_change, files);
        }
    }

    fn file_removed(&self, _user: &str, _path: &VPath, size: Option<u64>) {
        let bytes = size.map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX));
        {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.bytes = s.bytes.saturating_sub(bytes);
            s.files = s.files.saturating_sub(1);
        }
        self.persist(-bytes, -1);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ferry_vfs::{FileWriter, MemoryFs, NoEvents, Protocol, Upload, UserFs};

    use super::*;
    use crate::{NewUser, Password, Permissions};

    fn v(p: &str) -> VPath {
        VPath::parse(p.as_bytes()).expect("path")
    }

    async fn put(fs: &UserFs, p: &str, data: usize) -> ferry_vfs::Result<u64> {
        let mut w = fs.upload(&v(p), Upload::Replace, None).await?;
        w.write_owned(vec![b'x'; data]).await?;
        Box::new(w).commit().await
    }

    async fn settled(store: &UserStore, account: &Account) -> Usage {
        for _ in 0..200 {
            if account.settled() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        store.quota("alice").await.expect("quota").usage
    }

    /// alice's files in memory, under her account's limits.
    fn alice_fs(account: &Arc<Account>) -> UserFs {
        UserFs::with_limits(
            Arc::new(MemoryFs::new()),
            Protocol::Ftp,
            "alice",
            Permissions::all(),
            Arc::new(NoEvents),
            account.clone(),
            account.rates(),
        )
    }

    /// A store in memory with the user alice (all permissions, home `/`).
    async fn store_with_alice() -> UserStore {
        let store = UserStore::open_in_memory().await.expect("store");
        store
            .add_user(NewUser {
                name: "alice".into(),
                password: Password::new("pw".into()),
                home: "/".into(),
                permissions: Permissions::all(),
            })
            .await
            .expect("add");
        store
    }

    #[tokio::test]
    async fn quota_reserves_settles_and_persists_usage() {
        let store = store_with_alice().await;
        store.set_default_limits(DefaultLimits {
            quota_files: 2,
            ..DefaultLimits::default()
        });
        store
            .set_limits(
                "alice",
                UserLimits {
                    quota_bytes: Some(10),
                    ..UserLimits::default()
                },
            )
            .await
            .expect("limits");
        let account = store.account("alice").await.expect("account");
        assert_eq!(account.limits().quota_files, 2, "the default applies");
        let fs = alice_fs(&account);
        put(&fs, "/a", 6).await.expect("within the quota");
        let e = put(&fs, "/b", 6).await.expect_err("crosses the quota");
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
        assert!(e.message().contains("quota exceeded: bytes"), "{}", e.message());
        assert!(fs.stat(&v("/b")).await.is_err(), "nothing stored");
        // Replacing a file costs only the difference.
        put(&fs, "/a", 9).await.expect("replace within the quota");
        assert_eq!(account.usage(), Usage { bytes: 9, files: 1 });
        put(&fs, "/c", 1).await.expect("second file");
        let e = put(&fs, "/d", 0).await.expect_err("third file");
        assert!(e.message().contains("quota exceeded: files"), "{}", e.message());
        fs.remove_file(&v("/a")).await.expect("delete");
        assert_eq!(account.usage(), Usage { bytes: 1, files: 1 });
        assert_eq!(settled(&store, &account).await, Usage { bytes: 1, files: 1 });
        // Another session shares the account.
        let again = store.account("alice").await.expect("account");
        assert!(Arc::ptr_eq(&account, &again));
    }

    #[tokio::test]
    async fn usage_changes_are_batched_and_a_flush_stores_them_at_once() {
        let store = store_with_alice().await;
        let account = store.account("alice").await.expect("account");
        let fs = alice_fs(&account);
        for i in 0..3 {
            put(&fs, &format!("/f{i}"), 4).await.expect("upload");
        }
        // The writer waits USAGE_BATCH before it stores the sum; a flush (at shutdown) does not wait.
        store.flush_usage().await;
        let stored = store.quota("alice").await.expect("quota").usage;
        assert_eq!(stored, Usage { bytes: 12, files: 3 });
        // The writer then finds nothing left to add: nothing is counted twice.
        assert_eq!(settled(&store, &account).await, Usage { bytes: 12, files: 3 });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn usage_changes_made_while_one_is_written_are_all_stored() {
        let store = store_with_alice().await;
        let account = store.account("alice").await.expect("account");
        let fs = alice_fs(&account);
        // Uploads from several sessions at once, then deletions: each change lands while earlier
        // ones may still be on their way to the database, and none is lost or counted twice.
        let mut tasks = Vec::new();
        for i in 0..40 {
            let fs = fs.clone();
            tasks.push(tokio::spawn(async move { put(&fs, &format!("/f{i}"), 3).await }));
        }
        for t in tasks {
            t.await.expect("task").expect("upload");
        }
        for i in 0..5 {
            fs.remove_file(&v(&format!("/f{i}"))).await.expect("delete");
        }
        assert_eq!(
            account.usage(),
            Usage {
                bytes: 105,
                files: 35
            }
        );
        assert_eq!(
            settled(&store, &account).await,
            Usage {
                bytes: 105,
                files: 35
            }
        );
    }
}
