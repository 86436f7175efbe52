//! Whom the client trusts: TLS certificates ([`tls`]) and SSH host keys ([`known_hosts`]).
//!
//! Defaults are strict. A TLS certificate must chain to the system roots and name the host, or be pinned:
//! with `--pin SHA256:…`, or in the user's `known_certs` file (written only under trust-on-first-use). A
//! *changed* pinned certificate or host key is always refused, showing the old and new fingerprints.
//! Accepting anything (`insecure`) is a separate, explicit option.

pub mod known_hosts;
pub mod tls;

use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// How the client decides to trust a server.
#[derive(Debug, Clone, Default)]
pub struct TrustOptions {
    /// Pin a new certificate or host key on first contact (write it to the user's file) instead of refusing.
    pub trust_on_first_use: bool,
    /// Accept only a certificate with this SHA-256 fingerprint (TLS), whatever the roots say.
    pub pin: Option<Fingerprint>,
    /// Accept any certificate (TLS only; host keys are always checked). Explicit opt-in only.
    pub insecure: bool,
    /// The file of pinned TLS certificates (`host:port SHA256:…` per line).
    pub known_certs: Option<PathBuf>,
    /// OpenSSH known_hosts files read (the first is also written under trust-on-first-use).
    pub known_hosts: Vec<PathBuf>,
    /// Asked on first contact (when `trust_on_first_use` is off) with a description of the unknown
    /// certificate or host key and its fingerprint; `true` accepts and records it. The library never
    /// prompts by itself: the caller decides how to ask (the `ferry` binary asks on a terminal).
    pub confirm: Option<Confirm>,
}

/// A first-contact confirmation callback (see [`TrustOptions::confirm`]).
#[derive(Clone)]
pub struct Confirm(pub std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl std::fmt::Debug for Confirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Confirm(..)")
    }
}

impl TrustOptions {
    /// Whether to record an unknown certificate or key described by `what`: trust-on-first-use, or the
    /// caller's confirmation.
    pub(crate) fn accept_first_contact(&self, what: &str) -> bool {
        self.trust_on_first_use || self.confirm.as_ref().is_some_and(|c| (c.0)(what))
    }
}

/// A SHA-256 fingerprint of a certificate (DER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of `der`.
    pub fn of(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }

    /// Parses `SHA256:AB:CD:…`, `SHA256:abcd…` or the same without the prefix (any case).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let body = s
            .strip_prefix("SHA256:")
            .or_else(|| s.strip_prefix("sha256:"))
            .unwrap_or(s);
        let hex: String = body.chars().filter(|c| *c != ':').collect();
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
        }
        Some(Fingerprint(out))
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SHA256:")?;
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// The user's ferry config dir: `$XDG_CONFIG_HOME/ferry`, else `$HOME/.config/ferry`.
pub fn config_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("ferry"))
}

/// Appends `line` to `path`, creating the file (0600) and its directory (0700) if needed.
pub(crate) fn append_line(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{line}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip_in_every_accepted_form() {
        let fp = Fingerprint::of(b"cert");
        let shown = fp.to_string();
        assert!(shown.starts_with("SHA256:"));
        assert_eq!(Fingerprint::parse(&shown), Some(fp.clone()));
        let bare = shown.trim_start_matches("SHA256:").to_owned();
        assert_eq!(Fingerprint::parse(&bare), Some(fp.clone()));
        assert_eq!(
            Fingerprint::parse(&bare.replace(':', "").to_lowercase()),
            Some(fp)
        );
        assert_eq!(Fingerprint::parse("SHA256:abc"), None);
    }
}
