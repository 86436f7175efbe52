//! The `[sftp]` table: whether to serve SFTP, where, and with which host keys. Timeouts and
//! connection limits come from the top-level keys, which apply to SFTP as well (each protocol
//! counts its own connections).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use serde::Deserialize;

use super::parse;
use crate::cli::ServeArgs;

/// The SFTP port used when nothing else is configured.
pub const DEFAULT_SFTP_PORT: u16 = 2222;
/// File name of the generated host key in the data directory.
pub const GENERATED_HOST_KEY: &str = "ssh_host_ed25519_key";
/// Default for `sftp.max_auth_attempts` (OpenSSH's MaxAuthTries).
const DEFAULT_MAX_AUTH_ATTEMPTS: usize = 6;

/// `[sftp]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SftpFile {
    enabled: Option<bool>,
    listen: Option<Vec<String>>,
    host_keys: Option<Vec<PathBuf>>,
    max_auth_attempts: Option<usize>,
}

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

/// Merges the file's `[sftp]` table with the flags/environment.
pub(super) fn load(
    file: Option<SftpFile>,
    serve: &ServeArgs,
    data_dir: &Path,
    key_err: &dyn Fn(&str, String) -> anyhow::Error,
) -> Result<Option<SftpSettings>> {
    let file = file.unwrap_or_default();
    let file_listen = match file.listen {
        Some(list) => Some(
            list.iter()
                .map(|s| parse::socket_addr(s).map_err(|m| key_err("sftp.listen", m)))
                .collect::<Result<Vec<_>>>()?,
        ),
        None => None,
    };
    let max_auth_attempts = match file.max_auth_attempts {
        Some(n) => parse::check_count(n).map_err(|m| key_err("sftp.max_auth_attempts", m))?,
        None => DEFAULT_MAX_AUTH_ATTEMPTS,
    };
    if !serve.sftp_enabled.or(file.enabled).unwrap_or(true) {
        return Ok(None);
    }
    let listen = serve
        .sftp_listen
        .clone()
        .or(file_listen)
        .unwrap_or_else(default_listen);
    if listen.is_empty() {
        return Err(anyhow!(
            "`sftp.listen` is empty: give at least one address such as 0.0.0.0:2222, or set sftp.enabled = false"
        ));
    }
    let configured = serve.sftp_host_keys.clone().or(file.host_keys);
    if configured
        .as_ref()
        .is_some_and(|keys| keys.is_empty() || keys.iter().any(|k| k.as_os_str().is_empty()))
    {
        return Err(anyhow!(
            "`sftp.host_keys` must name at least one key file, and no empty path"
        ));
    }
    let default_key = vec![data_dir.join(GENERATED_HOST_KEY)];
    let host_keys = configured.unwrap_or_else(|| default_key.clone());
    // Only the default key (named explicitly or not) is generated when missing.
    let generate = host_keys == default_key;
    Ok(Some(SftpSettings {
        listen,
        host_keys,
        generate,
        max_auth_attempts,
    }))
}

/// The embedded default: port 2222 on every IPv4 and every IPv6 address.
pub fn default_listen() -> Vec<SocketAddr> {
    vec![
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_SFTP_PORT),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), DEFAULT_SFTP_PORT),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, serve: &ServeArgs) -> Result<Option<SftpSettings>> {
        #[derive(Deserialize)]
        struct Wrapper {
            sftp: Option<SftpFile>,
        }
        let w: Wrapper = toml::from_str(text)?;
        load(w.sftp, serve, Path::new("state"), &|k, m| {
            anyhow!("invalid `{k}`: {m}")
        })
    }

    #[test]
    fn sftp_is_on_by_default_on_port_2222_with_a_generated_key() {
        let s = load_text("", &ServeArgs::default())
            .expect("load")
            .expect("enabled");
        assert_eq!(s.listen, default_listen());
        assert_eq!(s.host_keys, vec![PathBuf::from("state/ssh_host_ed25519_key")]);
        assert!(s.generate);
        assert_eq!(s.max_auth_attempts, 6);
    }

    #[test]
    fn every_sftp_key_is_read_and_flags_win() {
        let text = "[sftp]\nenabled = true\nlisten = [\"127.0.0.1:22\"]\nhost_keys = [\"/etc/k\"]\nmax_auth_attempts = 2\n";
        let s = load_text(text, &ServeArgs::default())
            .expect("load")
            .expect("enabled");
        assert_eq!(s.listen, vec!["127.0.0.1:22".parse().expect("addr")]);
        assert_eq!(s.host_keys, vec![PathBuf::from("/etc/k")]);
        assert!(!s.generate);
        assert_eq!(s.max_auth_attempts, 2);
        let flags = ServeArgs {
            sftp_enabled: Some(false),
            ..ServeArgs::default()
        };
        assert_eq!(load_text(text, &flags).expect("load"), None);
    }

    #[test]
    fn bad_sftp_values_name_their_key() {
        for (text, key) in [
            ("[sftp]\nlisten = [\"nowhere\"]", "sftp.listen"),
            ("[sftp]\nlisten = []", "sftp.listen"),
            ("[sftp]\nhost_keys = []", "sftp.host_keys"),
            ("[sftp]\nmax_auth_attempts = 0", "sftp.max_auth_attempts"),
        ] {
            let err = format!("{:#}", load_text(text, &ServeArgs::default()).expect_err(text));
            assert!(err.contains(key), "{text}: {err}");
        }
        assert!(
            load_text("[sftp]\nport = 22", &ServeArgs::default()).is_err(),
            "unknown key"
        );
    }

    #[test]
    fn docs_and_example_cover_every_sftp_key() {
        let doc = include_str!("../../../../docs/configuration.md");
        let example = include_str!("../../../../ferry.example.toml");
        assert!(doc.contains("### `[sftp]`"), "docs/configuration.md lacks [sftp]");
        assert!(example.contains("# [sftp]"), "ferry.example.toml lacks [sftp]");
        for key in ["enabled", "listen", "host_keys", "max_auth_attempts"] {
            assert!(doc.contains(&format!("### `sftp.{key}`")), "docs lack sftp.{key}");
            assert!(
                example.contains(&format!("# {key} = ")),
                "example lacks sftp {key}"
            );
        }
    }
}
