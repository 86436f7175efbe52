//! Remote URLs: `ftp://`, `ftpes://` (FTP with explicit `AUTH TLS`), `ftps://` (implicit TLS) and
//! `sftp://`, with optional `user[:password]@`, port, and a path.
//!
//! The path is percent-decoded and used as written: `/dir/f` is absolute on the server, a path starting
//! `/~/` is relative to the login directory, and an empty path means the login directory (`.`).

use std::fmt;

use crate::error::{Error, Result};
use crate::names::check_arg;
use crate::secret::Secret;

/// The protocol and how its security starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain FTP (cleartext).
    Ftp,
    /// FTP upgraded with `AUTH TLS` (RFC 4217) before login; refused if the server cannot.
    Ftpes,
    /// FTP inside TLS from the first byte (implicit FTPS, port 990 by default).
    Ftps,
    /// SFTP over SSH.
    Sftp,
}

impl Scheme {
    /// The default port.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Ftp | Scheme::Ftpes => 21,
            Scheme::Ftps => 990,
            Scheme::Sftp => 22,
        }
    }

    /// The URL scheme name.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Ftp => "ftp",
            Scheme::Ftpes => "ftpes",
            Scheme::Ftps => "ftps",
            Scheme::Sftp => "sftp",
        }
    }
}

/// A parsed remote location. `Display` never shows the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    /// Protocol.
    pub scheme: Scheme,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name from the URL, if any.
    pub user: Option<String>,
    /// Password from the URL, if any.
    pub password: Option<Secret>,
    /// The remote path (see the module docs).
    pub path: String,
}

impl RemoteUrl {
    /// Parses `s`; `None` when it does not look like a URL at all (then it is a local path).
    ///
    /// # Errors
    ///
    /// [`Error::Usage`] for an unknown scheme, a missing host, or CR/LF/NUL in the path or user.
    pub fn parse(s: &str) -> Result<Option<RemoteUrl>> {
        let Some((scheme, _)) = s.split_once("://") else {
            return Ok(None);
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "ftp" => Scheme::Ftp,
            "ftpes" => Scheme::Ftpes,
            "ftps" => Scheme::Ftps,
            "sftp" => Scheme::Sftp,
            other => {
                return Err(Error::Usage(format!(
                    "unknown URL scheme `{other}://` (use ftp://, ftpes://, ftps:// or sftp://)"
                )))
            }
        };
        let parsed = ::url::Url::parse(s).map_err(|e| Error::Usage(format!("invalid URL: {e}")))?;
        let host = match parsed.host() {
            Some(::url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err(Error::Usage("the URL has no host".into())),
        };
        let user = Some(decode(parsed.username())?).filter(|u| !u.is_empty());
        let password = parsed.password().map(decode).transpose()?.map(Secret::new);
        let raw_path = decode(parsed.path())?;
        let path = if raw_path.is_empty() {
            ".".to_owned()
        } else if let Some(rest) = raw_path.strip_prefix("/~/") {
            if rest.is_empty() {
                ".".to_owned()
            } else {
                rest.to_owned()
            }
        } else if raw_path == "/~" {
            ".".to_owned()
        } else {
            raw_path
        };
        check_arg(&path)?;
        if let Some(u) = &user {
            check_arg(u)?;
        }
        Ok(Some(RemoteUrl {
            scheme,
            port: parsed.port().unwrap_or(scheme.default_port()),
            host,
            user,
            password,
            path,
        }))
    }

    /// `host:port`, with brackets around IPv6 addresses.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The same server with another path.
    pub fn with_path(&self, path: impl Into<String>) -> RemoteUrl {
        RemoteUrl {
            path: path.into(),
            ..self.clone()
        }
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.name())?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        let sep = if self.path.starts_with('/') { "" } else { "/" };
        write!(f, "{}{sep}{}", self.authority(), self.path)
    }
}

fn decode(s: &str) -> Result<String> {
    percent_decode(s)
        .ok_or_else(|| Error::Usage(format!("invalid percent-encoding or UTF-8 in URL part `{s}`")))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme_with_defaults() {
        let u = RemoteUrl::parse("sftp://alice@example.org/data/x.bin")
            .expect("ok")
            .expect("url");
        assert_eq!(
            (u.scheme, u.port, u.user.as_deref()),
            (Scheme::Sftp, 22, Some("alice"))
        );
        assert_eq!(u.path, "/data/x.bin");
        let u = RemoteUrl::parse("ftps://h").expect("ok").expect("url");
        assert_eq!((u.scheme, u.port, u.path.as_str()), (Scheme::Ftps, 990, "."));
        let u = RemoteUrl::parse("ftpes://h:2121/~/f").expect("ok").expect("url");
        assert_eq!((u.scheme, u.port, u.path.as_str()), (Scheme::Ftpes, 2121, "f"));
    }

    #[test]
    fn password_is_decoded_and_never_displayed() {
        let u = RemoteUrl::parse("ftp://bob:p%40ss%20w@[::1]:21/a%20b")
            .expect("ok")
            .expect("url");
        assert_eq!(u.password.as_ref().map(Secret::expose), Some("p@ss w"));
        assert_eq!(u.host, "::1");
        assert_eq!(u.path, "/a b");
        assert_eq!(u.to_string(), "ftp://bob@[::1]:21/a b");
        assert!(!format!("{u:?}").contains("p@ss"));
    }

    #[test]
    fn local_paths_and_bad_urls() {
        assert_eq!(RemoteUrl::parse("./local/file").expect("ok"), None);
        assert!(RemoteUrl::parse("http://h/").is_err());
        assert!(RemoteUrl::parse("ftp://h/a%0d%0aDELE%20x").is_err());
        assert!(RemoteUrl::parse("ftp://h/a%00").is_err());
    }
}
