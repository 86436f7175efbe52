//! Host keys: an ed25519 key generated into the data directory on first start and reused after,
//! or key files named in the configuration.

use std::io::Write;
use std::path::{Path, PathBuf};

use russh::keys::{Algorithm, HashAlg, PrivateKey};

/// Why a host key could not be loaded or created (a local problem or a bad file).
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    /// The file could not be read or written.
    #[error("host key {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not an unencrypted OpenSSH private key we support.
    #[error("host key {path}: {message}")]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// A host key and how it was obtained.
#[derive(Debug)]
pub struct HostKey {
    /// The key.
    pub key: PrivateKey,
    /// Where it is stored.
    pub path: PathBuf,
    /// Whether it was generated just now.
    pub generated: bool,
}

impl HostKey {
    /// The OpenSSH-style fingerprint, e.g. `SHA256:…`.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The key type, e.g. `ssh-ed25519`.
    pub fn algorithm(&self) -> String {
        self.key.algorithm().as_str().to_owned()
    }
}

/// Loads the ed25519 key at `path`, generating it (mode 0600, parent directory created) if the
/// file does not exist.
pub fn load_or_generate(path: &Path) -> Result<HostKey, HostKeyError> {
    if path.exists() {
        return load(path);
    }
    let io = |source| HostKeyError::Io {
        path: path.to_owned(),
        source,
    };
    let invalid = |e: &dyn std::fmt::Display| HostKeyError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let mut key =
        PrivateKey::random(&mut russh::keys::key::safe_rng(), Algorithm::Ed25519).map_err(|e| invalid(&e))?;
    key.set_comment("ferry host key");
    let text = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(|e| invalid(&e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // Write to a private temp file, then link it into place so that a concurrent first start
    // never sees a half-written key (and never replaces one another process just wrote).
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::hard_link(&temp, path)
    })();
    let _ = std::fs::remove_file(&temp);
    match written {
        Ok(()) => Ok(HostKey {
            key,
            path: path.to_owned(),
            generated: true,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load(path),
        Err(e) => Err(io(e)),
    }
}

/// Loads an unencrypted OpenSSH private key (ed25519, ECDSA or RSA).
pub fn load(path: &Path) -> Result<HostKey, HostKeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| HostKeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |message: String| HostKeyError::Invalid {
        path: path.to_owned(),
        message,
    };
    let key = PrivateKey::from_openssh(text.as_bytes())
        .map_err(|e| invalid(format!("not an OpenSSH private key: {e}")))?;
    if key.is_encrypted() {
        return Err(invalid("encrypted host keys are not supported".to_owned()));
    }
    match key.algorithm() {
        Algorithm::Ed25519 | Algorithm::Ecdsa { .. } | Algorithm::Rsa { .. } => {}
        other => return Err(invalid(format!("unsupported key type {}", other.as_str()))),
    }
    Ok(HostKey {
        key,
        path: path.to_owned(),
        generated: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/ssh_host_ed25519_key");
        let first = load_or_generate(&path).expect("generate");
        assert!(first.generated);
        assert_eq!(first.algorithm(), "ssh-ed25519");
        assert!(first.fingerprint().starts_with("SHA256:"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = load_or_generate(&path).expect("load");
        assert!(!again.generated);
        assert_eq!(again.fingerprint(), first.fingerprint());
    }

    #[test]
    fn garbage_is_refused_with_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        std::fs::write(&path, "not a key").expect("write");
        let err = load(&path).expect_err("garbage").to_string();
        assert!(err.contains("key"), "{err}");
    }
}
