//! Errors of the user store.

/// Why a user-store operation failed.
///
/// `NotFound`, `AlreadyExists`, `InvalidName` and `InvalidInput` are the caller's fault (wrong
/// arguments); `Database` and `Hash` are local failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No user with this name.
    #[error("user {0:?} not found")]
    NotFound(String),
    /// A user with this name already exists.
    #[error("user {0:?} already exists")]
    AlreadyExists(String),
    /// The user name is not acceptable.
    #[error(
        "invalid user name {0:?}: use 1 to 64 characters from A-Z a-z 0-9 . _ @ -, \
         not starting with '-' or '.'"
    )]
    InvalidName(String),
    /// Some other argument (home, password, permissions) is not acceptable.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The database failed.
    #[error("user database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Hashing or verifying a password failed (e.g. a stored hash is corrupt).
    #[error("password hash error: {0}")]
    Hash(String),
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Error::Database(sqlx::Error::Migrate(Box::new(err)))
    }
}
