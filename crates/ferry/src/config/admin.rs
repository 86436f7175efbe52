//! The `[admin]` table: the HTTP listener for `/metrics`, `/healthz` and `/readyz`.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Result;
use serde::Deserialize;

use super::parse;
use crate::cli::ServeArgs;

/// The admin port used when nothing else is configured.
pub const DEFAULT_ADMIN_PORT: u16 = 9021;

/// `[admin]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdminFile {
    listen: Option<Vec<String>>,
}

impl AdminFile {
    /// Whether the file sets `listen` (for the example-file test).
    #[cfg(test)]
    pub(super) fn has_listen(&self) -> bool {
        self.listen.is_some()
    }
}

/// Validated admin-listener settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// Listening addresses; empty: no admin listener.
    pub listen: Vec<SocketAddr>,
    /// Whether the addresses were configured (a flag, the environment or the file) rather than the
    /// default. A default address that is taken only costs a warning; a configured one is an error.
    pub configured: bool,
}

/// `--admin-listen` value: an address, or `off`.
pub fn admin_addr(s: &str) -> Result<Option<SocketAddr>, String> {
    match s.trim() {
        "off" | "" => Ok(None),
        addr => parse::socket_addr(addr).map(Some),
    }
}

/// Merges the file's `[admin]` table with the flags/environment.
pub(super) fn load(
    file: Option<AdminFile>,
    serve: &ServeArgs,
    key_err: &dyn Fn(&str, String) -> anyhow::Error,
) -> Result<AdminSettings> {
    if let Some(flag) = &serve.admin_listen {
        return Ok(AdminSettings {
            listen: flag.iter().flatten().copied().collect(),
            configured: true,
        });
    }
    match file.and_then(|f| f.listen) {
        Some(list) => Ok(AdminSettings {
            listen: list
                .iter()
                .map(|s| parse::socket_addr(s).map_err(|m| key_err("admin.listen", m)))
                .collect::<Result<Vec<_>>>()?,
            configured: true,
        }),
        None => Ok(AdminSettings {
            listen: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_ADMIN_PORT))],
            configured: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_err(key: &str, msg: String) -> anyhow::Error {
        anyhow::anyhow!("invalid `{key}`: {msg}")
    }

    fn file(text: &str) -> Option<AdminFile> {
        Some(toml::from_str(text).expect("[admin] parses"))
    }

    #[test]
    fn default_is_loopback_9021_and_not_configured() {
        let s = load(None, &ServeArgs::default(), &key_err).expect("loads");
        assert_eq!(s.listen, vec!["127.0.0.1:9021".parse().expect("addr")]);
        assert!(!s.configured);
    }

    #[test]
    fn an_empty_list_or_off_turns_it_off() {
        let s = load(file("listen = []"), &ServeArgs::default(), &key_err).expect("loads");
        assert!(s.listen.is_empty() && s.configured);
        let serve = ServeArgs {
            admin_listen: Some(vec![admin_addr("off").expect("off")]),
            ..ServeArgs::default()
        };
        let s = load(file(r#"listen = ["127.0.0.1:9100"]"#), &serve, &key_err).expect("loads");
        assert!(s.listen.is_empty() && s.configured, "the flag beats the file");
    }

    #[test]
    fn a_bad_address_names_the_key() {
        let err = load(file(r#"listen = ["localhost"]"#), &ServeArgs::default(), &key_err)
            .expect_err("bad address");
        assert!(err.to_string().contains("admin.listen"), "{err}");
        let err = toml::from_str::<AdminFile>("port = 1").expect_err("unknown key");
        assert!(err.to_string().contains("port"), "{err}");
    }
}
