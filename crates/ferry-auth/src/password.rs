//! Passwords and their Argon2id hashes.

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::distr::{Alphanumeric, SampleString};
use rand::TryRngCore;

use crate::error::Error;

/// Length of passwords made by [`generate_password`].
const GENERATED_LEN: usize = 20;
/// Salt length in bytes (the PHC recommendation).
const SALT_LEN: usize = 16;
/// Argon2 blocks (1 KiB each) reserved at least for one hash's working memory: just over 32 MiB.
///
/// Argon2id's working memory (19 MiB with the default parameters) is allocated for each hash and freed after
/// it. glibc's malloc maps a request afresh from the kernel, and unmaps it when freed, only above its mmap
/// threshold, and that threshold rises to the size of the largest mapped block freed so far, up to 32 MiB:
/// after the first login a 19 MiB request came from the heap, and the heap kept it for the life of the
/// process. A reservation above 32 MiB is always mapped and always given back; only the blocks the hash
/// uses are ever touched, so the rest costs address space, not memory.
const RESERVED_BLOCKS: usize = 32 * 1024 + 1;

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
    phc_hash(pw.expose().as_bytes(), &salt)
}

/// The Argon2id PHC string of `pw` with `salt` and the default parameters.
fn phc_hash(pw: &[u8], salt: &SaltString) -> Result<String, Error> {
    let hash_err = |e: &dyn fmt::Display| Error::Hash(e.to_string());
    let params = Params::default();
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| hash_err(&e))?;
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    argon2id(
        Algorithm::Argon2id,
        Version::default(),
        &params,
        pw,
        salt_bytes,
        &mut out,
    )?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::default().into()),
        params: ParamsString::try_from(&params).map_err(|e| hash_err(&e))?,
        salt: Some(Salt::from(salt)),
        hash: Some(Output::new(&out).map_err(|e| hash_err(&e))?),
    };
    Ok(hash.to_string())
}

/// Runs Argon2 with working memory that goes back to the kernel when it returns (see
/// [`RESERVED_BLOCKS`]).
fn argon2id(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    pw: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    let blocks = params.block_count();
    let mut memory: Vec<Block> = Vec::new();
    memory
        .try_reserve_exact(blocks.max(RESERVED_BLOCKS))
        .map_err(|e| Error::Hash(format!("no memory for Argon2: {e}")))?;
    memory.resize(blocks, Block::default());
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(pw, salt, out, &mut memory)
        .map_err(|e| Error::Hash(e.to_string()))
}

/// A new random password of 20 ASCII letters and digits.
pub fn generate_password() -> Password {
    Password(Alphanumeric.sample_string(&mut rand::rng(), GENERATED_LEN))
}

/// Whether `pw` matches the PHC string `hash` (with the algorithm, version and parameters it names). Blocking
/// (it is meant to be slow).
pub(crate) fn verify(hash: &str, pw: &Password) -> Result<bool, Error> {
    let unreadable = |e: &dyn fmt::Display| Error::Hash(format!("stored hash unreadable: {e}"));
    let parsed = PasswordHash::new(hash).map_err(|e| unreadable(&e))?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| unreadable(&e))?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|e| unreadable(&e))?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).map_err(|e| unreadable(&e))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(unreadable(&"no salt or no hash"));
    };
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| unreadable(&e))?;
    let mut out = vec![0u8; expected.len()];
    argon2id(
        algorithm,
        version,
        &params,
        pw.expose().as_bytes(),
        salt_bytes,
        &mut out,
    )?;
    // `Output`'s comparison takes constant time.
    Ok(Output::new(&out).map_err(|e| unreadable(&e))? == expected)
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
            phc_hash(b"ferry-dummy-password", &salt).ok()
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
    fn hashes_of_the_argon2_crate_verify_and_ours_match_them() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let pw = Password::new("correct horse".into());
        let salt = SaltString::encode_b64(b"sixteen byte salt").expect("salt");
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .expect("hash");
        assert_eq!(
            phc_hash(b"correct horse", &salt).expect("ours"),
            theirs.to_string()
        );
        assert!(verify(&theirs.to_string(), &pw).expect("verify"));
        let ours = hash_password(&pw).expect("hash");
        let parsed = PasswordHash::new(&ours).expect("parse");
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
    }

    #[test]
    fn stored_parameters_and_variant_are_honoured() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::encode_b64(b"sixteen byte salt").expect("salt");
        let params = Params::new(1024, 1, 1, Some(24)).expect("params");
        let hasher = Argon2::new(Algorithm::Argon2i, Version::V0x10, params);
        let stored = hasher.hash_password(b"pw", &salt).expect("hash").to_string();
        assert!(stored.starts_with("$argon2i$v=16$m=1024,t=1,p=1$"), "{stored}");
        assert!(verify(&stored, &Password::new("pw".into())).expect("verify"));
        assert!(!verify(&stored, &Password::new("pw2".into())).expect("verify"));
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
