//! The `[sftp]` table: whether to serve SFTP, where, and with which host keys. Timeouts and
//! connection limits come from the top-level keys, which apply to SFTP as well (each protocol
//! counts its own connections).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

use super::layer::{Value, Values};

/// File name of the generated host key in the data directory.
pub const GENERATED_HOST_KEY: &str = "ssh_host_ed25519_key";
/// Validated SFTP settings (present only when SFTP is enabled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpSettings {
    /// Listening addresses.
    pub listen: Vec<SocketAddr>,
    /// Host key files.
    pub host_keys: Vec<PathBuf>,
    /// Whether the host key is the default one (`<data_dir>/ssh_host_ed25519_key`), generated on
    /// first start if missing.
    pub generate: bool,
    /// Authentication attempts per connection.
    pub max_auth_attempts: usize,
}

/// The SFTP settings from the merged values (`None` when SFTP is off).
pub(super) fn build(v: &Values, data_dir: &Path) -> Result<Option<SftpSettings>> {
    if !v.bool("sftp.enabled")? {
        return Ok(None);
    }
    let listen = v.addrs("sftp.listen")?;
    if listen.is_empty() {
        return Err(anyhow!(
            "`sftp.listen` is empty: give at least one address such as 0.0.0.0:2222, or set sftp.enabled = false"
        ));
    }
    let configured = v.list("sftp.host_keys", |x| match x {
        Value::Path(p) => Some(p.clone()),
        _ => None,
    })?;
    if configured.as_ref().is_some_and(Vec::is_empty) {
        return Err(anyhow!("`sftp.host_keys` must name at least one key file"));
    }
    let default_key = vec![data_dir.join(GENERATED_HOST_KEY)];
    let host_keys = configured.unwrap_or_else(|| default_key.clone());
    // Only the default key (named explicitly or not) is generated when missing.
    let generate = host_keys == default_key;
    Ok(Some(SftpSettings {
        listen,
        host_keys,
        generate,
        max_auth_attempts: v.number("sftp.max_auth_attempts")?,
    }))
}

/// The embedded default: port 2222 on every IPv4 and every IPv6 address.
#[cfg(test)]
fn default_listen() -> Vec<SocketAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    vec![
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 2222),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 2222),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::layer::{merge, Layer};

    fn load_text(text: &str, flags: &Layer) -> Result<Option<SftpSettings>> {
        let file = Layer::from_toml(text, "ferry.toml")?;
        build(&merge(&[&file, flags])?, Path::new("state"))
    }

    #[test]
    fn sftp_is_on_by_default_on_port_2222_with_a_generated_key() {
        let s = load_text("", &Layer::default()).expect("load").expect("enabled");
        assert_eq!(s.listen, default_listen());
        assert_eq!(s.host_keys, vec![PathBuf::from("state/ssh_host_ed25519_key")]);
        assert!(s.generate);
        assert_eq!(s.max_auth_attempts, 6);
    }

    #[test]
    fn every_sftp_key_is_read_and_flags_win() {
        let text = "[sftp]\nenabled = true\nlisten = [\"127.0.0.1:22\"]\nhost_keys = [\"/etc/k\"]\nmax_auth_attempts = 2\n";
        let s = load_text(text, &Layer::default())
            .expect("load")
            .expect("enabled");
        assert_eq!(s.listen, vec!["127.0.0.1:22".parse().expect("addr")]);
        assert_eq!(s.host_keys, vec![PathBuf::from("/etc/k")]);
        assert!(!s.generate);
        assert_eq!(s.max_auth_attempts, 2);
        let mut flags = Layer::new("flags");
        flags.set("sftp.enabled", "false");
        assert_eq!(load_text(text, &flags).expect("load"), None);
    }

    #[test]
    fn bad_sftp_values_name_their_key() {
        for (text, key) in [
            ("[sftp]\nlisten = [\"nowhere\"]", "sftp.listen"),
            ("[sftp]\nlisten = []", "sftp.listen"),
            ("[sftp]\nhost_keys = []", "sftp.host_keys"),
            ("[sftp]\nhost_keys = [\"\"]", "sftp.host_keys"),
            ("[sftp]\nmax_auth_attempts = 0", "sftp.max_auth_attempts"),
        ] {
            let err = format!("{:#}", load_text(text, &Layer::default()).expect_err(text));
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = format!(
            "{:#}",
            load_text("[sftp]\nport = 22", &Layer::default()).expect_err("unknown")
        );
        assert!(err.contains("sftp.port"), "{err}");
    }
}
