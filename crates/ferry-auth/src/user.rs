//! User records and the rules their fields must follow.

use crate::error::Error;
use crate::password::Password;
use crate::permissions::Permissions;

/// Longest user name, in characters.
pub(crate) const MAX_NAME_LEN: usize = 64;
/// Longest password, in bytes.
pub(crate) const MAX_PASSWORD_LEN: usize = 1024;
/// Longest home path, in bytes.
pub(crate) const MAX_HOME_LEN: usize = 4096;

/// A stored user (without the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Virtual home under the storage root, e.g. `/` or `/alice`.
    pub home: String,
    /// What the user may do.
    pub permissions: Permissions,
    /// Disabled users cannot log in.
    pub enabled: bool,
    /// Creation time, unix seconds.
    pub created: i64,
    /// FTPS overrides for this user.
    pub tls: UserTls,
}

/// A user's own FTPS settings; `None` means the listener's setting applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserTls {
    /// The user may log in only over TLS, even where the listener makes TLS optional.
    pub require_tls: bool,
    /// Whether data connections must be TLS (PROT P) when the control connection is.
    pub protected_data: Option<bool>,
    /// Accept TLS data connections that do not resume the control connection's TLS session (for clients
    /// that cannot resume, such as Python's ftplib). Weakens the defence against passive-port theft.
    pub danger_allow_unresumed_data_tls: Option<bool>,
}

/// A user to be added.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name: 1 to 64 characters of `A-Z a-z 0-9 . _ @ -`, not starting with `-` or `.`.
    pub name: String,
    /// Clear-text password, 1 to 1024 bytes; only its hash is stored.
    pub password: Password,
    /// Virtual home: starts with `/`, no `.` or `..` component, no NUL.
    pub home: String,
    /// What the user may do.
    pub permissions: Permissions,
}

/// Checks a user name.
pub(crate) fn validate_name(name: &str) -> Result<(), Error> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-');
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_LEN
        && name.chars().all(allowed)
        && !name.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_owned()))
    }
}

/// Checks a virtual home path.
pub(crate) fn validate_home(home: &str) -> Result<(), Error> {
    let invalid = |why: &str| Err(Error::InvalidInput(format!("home {home:?} {why}")));
    if !home.starts_with('/') {
        return invalid("must start with '/'");
    }
    if home.len() > MAX_HOME_LEN {
        return invalid("is too long");
    }
    if home.contains('\0') {
        return invalid("must not contain NUL");
    }
    if home.split('/').any(|part| part == "." || part == "..") {
        return invalid("must not contain '.' or '..' components");
    }
    Ok(())
}

/// Checks a password's length.
pub(crate) fn validate_password(pw: &Password) -> Result<(), Error> {
    let len = pw.expose().len();
    if (1..=MAX_PASSWORD_LEN).contains(&len) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "password must be 1 to {MAX_PASSWORD_LEN} bytes"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_are_accepted() {
        for name in [
            "alice",
            "a",
            "bob.smith",
            "x_y-z@example.com",
            "A9",
            &"n".repeat(64),
        ] {
            assert!(validate_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn bad_names_are_rejected() {
        for name in [
            "",
            "-x",
            ".hidden",
            "a b",
            "a/b",
            "ünï",
            "a\0",
            &"n".repeat(65),
            "semi;colon",
        ] {
            assert!(
                matches!(validate_name(name), Err(Error::InvalidName(_))),
                "{name:?}"
            );
        }
    }

    #[test]
    fn homes_must_be_absolute_and_clean() {
        for home in ["/", "/alice", "/a/b/", "/a..b"] {
            assert!(validate_home(home).is_ok(), "{home}");
        }
        for home in ["", "alice", "/../etc", "/a/..", "/a/./b", "/a\0"] {
            assert!(
                matches!(validate_home(home), Err(Error::InvalidInput(_))),
                "{home:?}"
            );
        }
    }

    #[test]
    fn password_length_is_bounded() {
        assert!(validate_password(&Password::new(String::new())).is_err());
        assert!(validate_password(&Password::new("x".repeat(1024))).is_ok());
        assert!(validate_password(&Password::new("x".repeat(1025))).is_err());
    }
}

/// The result of checking credentials (a password, or a public key), so that front ends score and log
/// each case the same way without looking the user up a second time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The credentials are right: the user, enabled.
    Accepted(User),
    /// The user exists and is enabled, but the password (or key) is not theirs.
    WrongCredentials,
    /// No user of that name (or the name is not a valid user name).
    UnknownUser,
    /// The user exists but is disabled.
    Disabled,
}

impl AuthOutcome {
    /// The user, if accepted.
    pub fn into_user(self) -> Option<User> {
        match self {
            AuthOutcome::Accepted(user) => Some(user),
            _ => None,
        }
    }

    /// Whether the credentials were accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(self, AuthOutcome::Accepted(_))
    }
}
