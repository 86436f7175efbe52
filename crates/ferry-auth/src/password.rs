//! Passwords and their Argon2id hashes.

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::distr::{Alphanumeric, SampleString};
use rand::TryRngCore;

use crate::error::Error;

/// Length of passwords made by [`generate_password`].
const GENERATED_LEN: usize = 20;
/// Salt length in bytes (the PHC recommendation).
const SALT_LEN: usize = 16;

/// A password in clear text. `Debug` prints `Password(***)`; there is no `Display`.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a clear-text password.
    pub fn new(password: String) -> Self {
        Password(password)
    }

    /// The clear text, for hashing or for handing to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Hashes `pw` with Argon2id (default parameters) and a random salt from the OS, returning the
/// PHC string (`$argon2id$v=19$...`).
pub fn hash_password(pw: &Password) -> Result<String, Error> {
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| Error::Hash(format!("no randomness for the salt: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Hash(e.to_string()))?;
    let hash = Argon2::default()
        .hash_password(pw.expose().as_bytes(), &salt)
        .map_err(|e| Error::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// A new random password of 20 ASCII letters and digits.
pub fn generate_password() -> Password {
    Password(Alphanumeric.sample_string(&mut rand::rng(), GENERATED_LEN))
}

/// Whether `pw` matches the PHC string `hash`. Blocking (it is meant to be slow).
pub(crate) fn verify(hash: &str, pw: &Password) -> Result<bool, Error> {
    let parsed = PasswordHash::new(hash).map_err(|e| Error::Hash(format!("stored hash unreadable: {e}")))?;
    match Argon2::default().verify_password(pw.expose().as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(Error::Hash(e.to_string())),
    }
}

/// Spends the same work as a real verification, for unknown or disabled users.
pub(crate) fn verify_dummy(pw: &Password) {
    if let Some(hash) = dummy_hash() {
        let _ = verify(hash, pw);
    }
}

/// A hash with the same parameters as real ones; computed once (its salt need not be secret).
pub(crate) fn dummy_hash() -> Option<&'static str> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let salt = SaltString::encode_b64(b"ferry-dummy-salt").ok()?;
            let hash = Argon2::default()
                .hash_password(b"ferry-dummy-password", &salt)
                .ok()?;
            Some(hash.to_string())
        })
        .as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_password() {
        let pw = Password::new("hunter2".into());
        assert_eq!(format!("{pw:?}"), "Password(***)");
        assert_eq!(format!("{:?}", Some(&pw)), "Some(Password(***))");
    }

    #[test]
    fn hash_is_argon2id_with_random_salt_and_verifies() {
        let pw = Password::new("correct horse".into());
        let a = hash_password(&pw).expect("hash");
        let b = hash_password(&pw).expect("hash");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "salts differ");
        assert!(verify(&a, &pw).expect("verify"));
        assert!(!verify(&a, &Password::new("wrong".into())).expect("verify"));
    }

    #[test]
    fn corrupt_hash_is_a_hash_error() {
        let err = verify("not a phc string", &Password::new("x".into())).expect_err("corrupt");
        assert!(matches!(err, Error::Hash(_)));
    }

    #[test]
    fn dummy_hash_uses_the_same_algorithm() {
        let dummy = dummy_hash().expect("dummy");
        let real = hash_password(&Password::new("x".into())).expect("hash");
        let params = |h: &str| h.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(params(dummy), params(&real));
    }

    #[test]
    fn generated_passwords_are_twenty_alphanumerics_and_differ() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.expose().len(), 20);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.expose(), b.expose());
    }
}
