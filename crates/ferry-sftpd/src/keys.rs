//! Users' public keys in OpenSSH authorized_keys form, parsed and fingerprinted for the store.

use ferry_auth::PublicKeyRecord;
use russh::keys::{Algorithm, HashAlg, PublicKey};

/// Longest authorized_keys line accepted.
const MAX_LINE: usize = 16 * 1024;

/// Why a public key line was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not `TYPE BASE64 [COMMENT]`, or the key does not decode.
    #[error("not an OpenSSH public key line (expected `TYPE BASE64 [COMMENT]`): {0}")]
    Malformed(String),
    /// authorized_keys options such as `from="…"` or `command="…"`.
    #[error("authorized_keys options are not supported; give only `TYPE BASE64 [COMMENT]`")]
    Options,
    /// Key types we do not accept (DSA, certificates …).
    #[error(
        "key type {0} is not supported; use ssh-ed25519, ecdsa-sha2-* or ssh-rsa (RSA keys sign with SHA-2)"
    )]
    Unsupported(String),
}

/// Parses one authorized_keys line into a record for [`ferry_auth::UserStore::add_key`].
pub fn parse_authorized_key(line: &str) -> Result<PublicKeyRecord, KeyError> {
    let line = line.trim();
    if line.len() > MAX_LINE {
        return Err(KeyError::Malformed("line too long".to_owned()));
    }
    let first = line.split_whitespace().next().unwrap_or_default();
    if !first.is_empty() && !looks_like_key_type(first) {
        return Err(KeyError::Options);
    }
    let key = PublicKey::from_openssh(line).map_err(|e| KeyError::Malformed(e.to_string()))?;
    let algorithm = key.algorithm();
    match algorithm {
        Algorithm::Ed25519 | Algorithm::Ecdsa { .. } | Algorithm::Rsa { .. } => {}
        other => return Err(KeyError::Unsupported(other.as_str().to_owned())),
    }
    let comment = key.comment().as_str_lossy().to_owned();
    Ok(PublicKeyRecord {
        algorithm: algorithm.as_str().to_owned(),
        key_base64: key_base64(&key).ok_or_else(|| KeyError::Malformed("cannot encode".to_owned()))?,
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        comment,
        created: 0,
    })
}

/// The base64 key blob of `key` (the second field of its authorized_keys line).
pub(crate) fn key_base64(key: &PublicKey) -> Option<String> {
    let mut bare = key.clone();
    bare.set_comment("");
    let line = bare.to_openssh().ok()?;
    line.split_whitespace().nth(1).map(str::to_owned)
}

fn looks_like_key_type(word: &str) -> bool {
    word.starts_with("ssh-") || word.starts_with("ecdsa-") || word.starts_with("sk-")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDNpCkxX+h4RcV2EqMIM4l1+Y/34t0ZTfJVPgjQtt8Xc alice@laptop";

    #[test]
    fn ed25519_line_is_parsed_with_comment_and_fingerprint() {
        let rec = parse_authorized_key(ED25519).expect("parses");
        assert_eq!(rec.algorithm, "ssh-ed25519");
        assert_eq!(rec.comment, "alice@laptop");
        assert!(rec.fingerprint.starts_with("SHA256:"), "{}", rec.fingerprint);
        assert_eq!(Some(rec.key_base64.as_str()), ED25519.split(' ').nth(1));
    }

    #[test]
    fn options_garbage_and_dsa_are_refused() {
        let with_options = format!("from=\"10.0.0.1\" {ED25519}");
        assert!(matches!(
            parse_authorized_key(&with_options),
            Err(KeyError::Options)
        ));
        assert!(matches!(
            parse_authorized_key("ssh-ed25519 AAAA"),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(parse_authorized_key(""), Err(KeyError::Malformed(_))));
    }
}
