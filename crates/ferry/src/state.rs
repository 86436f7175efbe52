//! ferry's state on disk: the data directory and the directories it creates are private (0700), the
//! user database, keys and certificates are readable by their owner only (0600), and an admin command
//! never mistakes a database it cannot open for an empty one.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use ferry_auth::UserStore;

use crate::config::UsersDb;

/// Flags and keys that choose where the user database is, for messages.
const DB_SETTINGS: &str = "set `users_db` / `--users-db`, or `data_dir` / `--data-dir`";

/// Opens the user database, creating it (an SQLite file: 0600, in a 0700 directory) when missing. For
/// `ferry serve` and the commands that add something. A PostgreSQL database must exist; its tables are
/// created (migrated) on open.
pub async fn create_store(db: &UsersDb) -> Result<UserStore> {
    match db {
        UsersDb::File(path) => create_file_store(path).await,
        UsersDb::Postgres(url) => open_postgres(db, url).await,
    }
}

/// Opens an existing user database; an error if it does not exist or cannot be read, never "no users".
/// For the commands that read or change what is there.
pub async fn existing_store(db: &UsersDb) -> Result<UserStore> {
    match db {
        UsersDb::File(path) => existing_file_store(path).await,
        UsersDb::Postgres(url) => open_postgres(db, url).await,
    }
}

async fn open_postgres(db: &UsersDb, url: &str) -> Result<UserStore> {
    UserStore::open_postgres(url).await.map_err(|e| {
        let why = match &e {
            // rustls reports a refused certificate through the stream, as invalid data.
            ferry_auth::Error::Database(sqlx::Error::Io(io)) if io.kind() == io::ErrorKind::InvalidData => {
                format!("TLS failed: {}", cause(io))
            }
            e => database_cause(e),
        };
        anyhow!("cannot open the user database {db}: {why} (set `users_db` / `--users-db`)")
    })
}

async fn create_file_store(path: &Path) -> Result<UserStore> {
    if let Some(dir) = parent(path) {
        create_private_dir(dir).map_err(|e| {
            anyhow!(
                "cannot create the directory {} of the user database: {} ({DB_SETTINGS})",
                dir.display(),
                cause(&e)
            )
        })?;
    }
    if !path.exists() {
        create_private_file(path).map_err(|e| {
            anyhow!(
                "cannot create the user database {}: {} ({DB_SETTINGS})",
                path.display(),
                cause(&e)
            )
        })?;
    }
    open(path).await
}

async fn existing_file_store(path: &Path) -> Result<UserStore> {
    if !path.exists() {
        bail!(
            "the user database {}{} does not exist: `ferry serve` or `ferry user add` creates it \
             ({DB_SETTINGS}, or `--config`, to use another)",
            path.display(),
            absolute_hint(path)
        );
    }
    if let Err(e) = std::fs::File::open(path) {
        bail!(
            "cannot read the user database {}: {} (run ferry as the user that owns it, or {DB_SETTINGS})",
            path.display(),
            cause(&e)
        );
    }
    open(path).await
}

/// Warns when the user database (password hashes) is readable by other users.
#[cfg(unix)]
pub fn check_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "the user database is readable by other users; run `chmod 600` on it"
            );
        }
    }
}

/// Creates `dir` and its missing parents, private to this user.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes a new file readable only by its owner.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f =
        create_private_file(path).map_err(|e| anyhow!("cannot create {}: {}", path.display(), cause(&e)))?;
    f.write_all(bytes)
        .map_err(|e| anyhow!("cannot write {}: {}", path.display(), cause(&e)))?;
    Ok(())
}

/// An I/O error as a person reads it: the kind in words, without the `(os error N)` suffix.
pub fn cause(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "it does not exist".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::ReadOnlyFilesystem => "the file system is read-only".to_owned(),
        io::ErrorKind::AlreadyExists => "it already exists".to_owned(),
        io::ErrorKind::NotADirectory => "a part of the path is not a directory".to_owned(),
        io::ErrorKind::IsADirectory => "it is a directory".to_owned(),
        io::ErrorKind::StorageFull => "no space left on the device".to_owned(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(end) => text[..end].to_owned(),
                None => text,
            }
        }
    }
}

fn create_private_file(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

async fn open(path: &Path) -> Result<UserStore> {
    UserStore::open(path).await.map_err(|e| {
        let dir = parent(path).unwrap_or(Path::new("."));
        let hint = if dir_writable(dir) {
            String::new()
        } else {
            format!(
                " (the directory {} must be writable: SQLite keeps its journal there)",
                dir.display()
            )
        };
        anyhow!(
            "cannot open the user database {}: {}{hint}",
            path.display(),
            database_cause(&e)
        )
    })
}

/// The database's own words, once (sqlx repeats the code and prefixes).
fn database_cause(e: &ferry_auth::Error) -> String {
    match e {
        ferry_auth::Error::Database(sqlx::Error::Database(db)) => db.message().to_owned(),
        ferry_auth::Error::Database(sqlx::Error::Io(io)) => cause(io),
        ferry_auth::Error::Database(sqlx::Error::Migrate(m)) => {
            format!("it is not a ferry user database or is from a newer ferry ({m})")
        }
        ferry_auth::Error::Database(sqlx::Error::PoolTimedOut) => format!(
            "no answer within {} s",
            ferry_auth::POSTGRES_ACQUIRE_TIMEOUT.as_secs()
        ),
        ferry_auth::Error::Database(sqlx::Error::Tls(e)) => format!("TLS failed: {e}"),
        ferry_auth::Error::Database(sqlx::Error::Configuration(e)) => e.to_string(),
        other => other.to_string(),
    }
}

/// Whether this process may create files in `dir` (probed by creating and removing one).
fn dir_writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".ferry-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

fn parent(path: &Path) -> Option<&Path> {
    path.parent().filter(|d| !d.as_os_str().is_empty())
}

/// ` (ABSOLUTE PATH)` for a relative path, so "run from another directory" is visible.
fn absolute_hint(path: &Path) -> String {
    if path.is_absolute() {
        return String::new();
    }
    match std::env::current_dir() {
        Ok(cwd) => format!(" ({})", cwd.join(path).display()),
        Err(_) => String::new(),
    }
}

/// The absolute form of `path` for the start-up log (the path as given if the working directory is
/// unknown).
pub fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_owned();
    }
    std::env::current_dir().map_or_else(|_| path.to_owned(), |cwd| cwd.join(path))
}
