//! SSH host keys in OpenSSH's `known_hosts` format: plain and hashed (`|1|salt|hash`) host patterns,
//! `[host]:port` for non-standard ports, `*`/`?` wildcards, `!` negation, and `@revoked` markers
//! (`@cert-authority` lines are ignored: certificates are not accepted).

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::append_line;

/// What the known_hosts files say about a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// A line for this host names exactly this key.
    Known,
    /// The host is listed only with other keys: their fingerprints.
    Changed(Vec<String>),
    /// The key is marked `@revoked`.
    Revoked,
    /// The host is not listed.
    Unknown,
}

/// Checks `key` (`<type> <base64>`) for `host`/`port` against every file in `files`.
pub fn check(files: &[PathBuf], host: &str, port: u16, key_type: &str, key_b64: &str) -> HostKeyStatus {
    let name = host_name(host, port);
    let texts: Vec<String> = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    let entries: Vec<Line<'_>> = texts
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(parse_line)
        .collect();
    let same_key = |e: &Line<'_>| e.key_type == key_type && e.key_b64 == key_b64;
    // A revoked key is refused whatever other lines say.
    if entries.iter().any(|e| e.marker == Marker::Revoked && same_key(e)) {
        return HostKeyStatus::Revoked;
    }
    let mut others = Vec::new();
    for entry in entries
        .iter()
        .filter(|e| e.marker == Marker::None && matches_patterns(e.hosts, &name))
    {
        if same_key(entry) {
            return HostKeyStatus::Known;
        }
        others.push(fingerprint_b64(entry.key_type, entry.key_b64));
    }
    if others.is_empty() {
        HostKeyStatus::Unknown
    } else {
        HostKeyStatus::Changed(others)
    }
}

/// Appends a line for `host`/`port` with `key` to `file`.
///
/// # Errors
///
/// The I/O error from creating or writing the file.
pub fn learn(file: &Path, host: &str, port: u16, key_type: &str, key_b64: &str) -> std::io::Result<()> {
    append_line(file, &format!("{} {key_type} {key_b64}", host_name(host, port)))
}

/// `SHA256:<base64 without padding>` of a key given as base64 of its wire form (as `ssh-keygen -l`).
pub fn fingerprint_b64(key_type: &str, key_b64: &str) -> String {
    use sha2::{Digest, Sha256};
    match STANDARD.decode(key_b64) {
        Ok(blob) => {
            let digest = Sha256::digest(&blob);
            let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest);
            format!("{key_type} SHA256:{b64}")
        }
        Err(_) => format!("{key_type} (unreadable key)"),
    }
}

/// The name known_hosts uses: `host` on port 22, else `[host]:port`.
fn host_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

struct Line<'a> {
    marker: Marker,
    hosts: &'a str,
    key_type: &'a str,
    key_b64: &'a str,
}

fn parse_line(line: &str) -> Option<Line<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return None,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    Some(Line {
        marker,
        hosts: first,
        key_type: fields.next()?,
        key_b64: fields.next()?,
    })
}

/// OpenSSH semantics: the name matches if some positive pattern matches and no negated one does.
fn matches_patterns(patterns: &str, name: &str) -> bool {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        return matches_hashed(hashed, name);
    }
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard(negated.as_bytes(), name.as_bytes()) {
                return false;
            }
        } else if wildcard(pattern.as_bytes(), name.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// `salt|hash`, both base64; hash = HMAC-SHA1(key = salt, name).
fn matches_hashed(salt_and_hash: &str, name: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// Case-insensitive `*`/`?` matching (host names), with the server's bounded matcher.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    ferry_proto::glob::matches(&pattern.to_ascii_lowercase(), &name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const OTHER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIHnNpv0fK3qBbzVjq5p1KlzS3xg+OeYy9jJ7kX7r0rTQ";

    fn file(text: &str) -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, text).expect("write");
        (dir, vec![path])
    }

    fn hashed(name: &str) -> String {
        let salt = [7u8; 20];
        let mut mac = Hmac::<Sha1>::new_from_slice(&salt).expect("hmac");
        mac.update(name.as_bytes());
        format!(
            "|1|{}|{}",
            STANDARD.encode(salt),
            STANDARD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn plain_and_bracketed_port_entries() {
        let (_d, f) = file(&format!(
            "example.org ssh-ed25519 {KEY}\n[127.0.0.1]:2222 ssh-ed25519 {KEY}\n"
        ));
        assert_eq!(
            check(&f, "example.org", 22, "ssh-ed25519", KEY),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&f, "127.0.0.1", 2222, "ssh-ed25519", KEY),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&f, "127.0.0.1", 22, "ssh-ed25519", KEY),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            check(&f, "example.org", 2222, "ssh-ed25519", KEY),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn hashed_entries_match() {
        let (_d, f) = file(&format!("{} ssh-ed25519 {KEY}\n", hashed("[h.example]:2200")));
        assert_eq!(
            check(&f, "h.example", 2200, "ssh-ed25519", KEY),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&f, "other", 2200, "ssh-ed25519", KEY),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn changed_key_reports_the_old_fingerprint() {
        let (_d, f) = file(&format!("host ssh-ed25519 {OTHER}\n"));
        match check(&f, "host", 22, "ssh-ed25519", KEY) {
            HostKeyStatus::Changed(old) => assert_eq!(old, vec![fingerprint_b64("ssh-ed25519", OTHER)]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn revoked_key_is_refused_even_if_listed() {
        let (_d, f) = file(&format!("host ssh-ed25519 {KEY}\n@revoked * ssh-ed25519 {KEY}\n"));
        assert_eq!(check(&f, "host", 22, "ssh-ed25519", KEY), HostKeyStatus::Revoked);
    }

    #[test]
    fn wildcards_and_negation() {
        let (_d, f) = file(&format!("*.example.org,!bad.example.org ssh-ed25519 {KEY}\n"));
        assert_eq!(
            check(&f, "a.example.org", 22, "ssh-ed25519", KEY),
            HostKeyStatus::Known
        );
        assert_eq!(
            check(&f, "bad.example.org", 22, "ssh-ed25519", KEY),
            HostKeyStatus::Unknown
        );
    }

    #[test]
    fn learned_keys_are_found_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/known_hosts");
        learn(&path, "::1", 2022, "ssh-ed25519", KEY).expect("learn");
        assert_eq!(
            check(&[path], "::1", 2022, "ssh-ed25519", KEY),
            HostKeyStatus::Known
        );
    }
}
