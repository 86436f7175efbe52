//! Parsers and checks for single configuration values, shared by flags, environment variables and
//! `ferry.toml` so that every source accepts and rejects exactly the same values.
//!
//! Errors are plain sentences without the key name; the caller adds the flag or key.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;

use ferry_auth::{Password, Permissions};
use tracing_subscriber::EnvFilter;

/// Longest accepted timeout: one year. Keeps deadline arithmetic far from overflow.
pub const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 60 * 60;
/// Lowest port a passive range may start at; lower ports are privileged or well known.
pub const MIN_PASSIVE_PORT: u16 = 1024;
/// Longest accepted greeting, in bytes; it must fit comfortably in one reply line.
pub const MAX_GREETING_LEN: usize = 200;

/// A filesystem path, not empty.
pub fn path(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("the path is empty: give a path".to_owned());
    }
    Ok(PathBuf::from(s))
}

/// `local` or `s3`.
pub fn storage_backend(s: &str) -> Result<&'static str, String> {
    match s.trim() {
        "local" => Ok("local"),
        "s3" => Ok("s3"),
        other => Err(format!(
            "{other:?} is not a storage back-end; expected \"local\" or \"s3\""
        )),
    }
}

/// An `http://` or `https://` URL with a host.
pub fn url(s: &str) -> Result<String, String> {
    let s = s.trim();
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| format!("{s:?} is not a URL; expected http://HOST[:PORT] or https://HOST[:PORT]"))?;
    if rest.is_empty() || rest.starts_with('/') || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{s:?} is not a URL; expected http://HOST[:PORT] or https://HOST[:PORT]"
        ));
    }
    Ok(s.trim_end_matches('/').to_owned())
}

/// `IP:PORT`, with IPv6 addresses in brackets.
pub fn socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an address; expected IP:PORT such as 0.0.0.0:2121 or [::]:2121"))
}

/// `LOW-HIGH` (or a single port) with `1024 <= LOW <= HIGH`.
pub fn port_range(s: &str) -> Result<RangeInclusive<u16>, String> {
    let bad = || format!("{s:?} is not a port range; expected LOW-HIGH such as 50000-50100");
    let (lo, hi) = match s.split_once('-') {
        Some((lo, hi)) => (lo.trim(), hi.trim()),
        None => (s.trim(), s.trim()),
    };
    let lo: u16 = lo.parse().map_err(|_| bad())?;
    let hi: u16 = hi.parse().map_err(|_| bad())?;
    if lo > hi {
        return Err(format!(
            "port range {lo}-{hi} is empty: the low port must not exceed the high port"
        ));
    }
    if lo < MIN_PASSIVE_PORT {
        return Err(format!("port range {lo}-{hi} starts below {MIN_PASSIVE_PORT}"));
    }
    Ok(lo..=hi)
}

/// An IPv4 address (PASV replies can only carry IPv4).
pub fn masquerade_address(s: &str) -> Result<IpAddr, String> {
    match s.trim().parse::<IpAddr>() {
        Ok(ip @ IpAddr::V4(_)) => Ok(ip),
        Ok(IpAddr::V6(_)) => Err(format!(
            "{s:?} is IPv6; PASV replies carry only IPv4 (IPv6 clients use EPSV, which needs none)"
        )),
        Err(_) => Err(format!("{s:?} is not an IPv4 address")),
    }
}

/// `masquerade_address`: an IPv4 address, or a DNS host name (resolved to IPv4 by `serve`).
pub fn masquerade(s: &str) -> Result<Masquerade, String> {
    let t = s.trim();
    if t.parse::<IpAddr>().is_ok() {
        return masquerade_address(t).map(Masquerade::Ip);
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let name = t.strip_suffix('.').unwrap_or(t);
    if name.len() <= 253
        && name.split('.').all(label_ok)
        && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        Ok(Masquerade::Host(name.to_ascii_lowercase()))
    } else {
        Err(format!("{s:?} is neither an IPv4 address nor a host name"))
    }
}

/// A `masquerade_networks` rule, `NETWORK=ADDRESS`: the client network and what PASV announces to it.
pub fn masquerade_rule(s: &str) -> Result<(ferry_auth::defender::Network, Masquerade), String> {
    let (net, addr) = s.split_once('=').ok_or_else(|| {
        format!("{s:?} is not a rule; expected NETWORK=ADDRESS such as 10.0.0.0/8=10.0.0.5")
    })?;
    Ok((net.trim().parse()?, masquerade(addr)?))
}

/// What `masquerade_address` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Masquerade {
    /// An IPv4 address.
    Ip(IpAddr),
    /// A host name, resolved to IPv4 at start and on SIGHUP.
    Host(String),
}

/// Greeting text: non-empty, at most [`MAX_GREETING_LEN`] bytes, no control characters.
pub fn greeting(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("the greeting is empty".to_owned());
    }
    if s.len() > MAX_GREETING_LEN {
        return Err(format!("the greeting is longer than {MAX_GREETING_LEN} bytes"));
    }
    if s.chars().any(char::is_control) {
        return Err("the greeting contains a control character (line breaks are not allowed)".to_owned());
    }
    Ok(s.to_owned())
}

/// A timeout in whole seconds, from 1 to [`MAX_TIMEOUT_SECS`].
pub fn secs(s: &str) -> Result<u64, String> {
    let n = s
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("{s:?} is not a whole number of seconds"))?;
    check_secs(n)
}

/// Checks a timeout already read as a number.
pub fn check_secs(n: u64) -> Result<u64, String> {
    if n == 0 {
        return Err("a timeout must be at least 1 second".to_owned());
    }
    if n > MAX_TIMEOUT_SECS {
        return Err(format!("{n} seconds is more than a year"));
    }
    Ok(n)
}

/// Login attempts per connection, at least 1.
pub fn login_attempts(s: &str) -> Result<u32, String> {
    let n = s
        .trim()
        .parse::<u32>()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    check_login_attempts(n)
}

/// Checks a login-attempt count already read as a number.
pub fn check_login_attempts(n: u32) -> Result<u32, String> {
    if n == 0 {
        return Err("at least 1 login attempt must be allowed".to_owned());
    }
    Ok(n)
}

/// A size in bytes, 0 or more.
pub fn bytes(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<u64>()
        .map_err(|_| format!("{s:?} is not a whole number of bytes"))
}

/// A connection count, at least 1.
/// A quota or bandwidth limit: a whole number, 0 for unlimited.
pub fn limit(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<u64>()
        .map_err(|_| format!("{s:?} is not a whole number (0 = unlimited)"))
}

pub fn count(s: &str) -> Result<usize, String> {
    let n = s
        .trim()
        .parse::<usize>()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    check_count(n)
}

/// Checks a connection count already read as a number.
pub fn check_count(n: usize) -> Result<usize, String> {
    if n == 0 {
        return Err("at least 1 connection must be allowed".to_owned());
    }
    Ok(n)
}

/// `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`).
pub fn boolean(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("{s:?} is not true or false")),
    }
}

/// A virtual home directory: absolute, without `.`/`..` components or control characters.
pub fn home(s: &str) -> Result<String, String> {
    if !s.starts_with('/') {
        return Err(format!(
            "{s:?} must start with '/' (it is a path under the files root)"
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{s:?} contains a control character"));
    }
    if s.split('/').any(|c| c == "." || c == "..") {
        return Err(format!("{s:?} contains a '.' or '..' component"));
    }
    Ok(s.to_owned())
}

/// `all`, `ro`, `none`, or a comma-separated list of list, read, write, delete, rename, mkdir.
pub fn permissions(s: &str) -> Result<Permissions, String> {
    s.parse::<Permissions>().map_err(|e| e.to_string())
}

/// A password given on the command line, kept out of `Debug` output from here on.
pub fn password(s: &str) -> Result<Password, String> {
    if s.is_empty() {
        return Err("the password is empty".to_owned());
    }
    Ok(Password::new(s.to_owned()))
}

/// A tracing filter such as `info` or `warn,ferry_ftpd=debug`.
pub fn log_filter(s: &str) -> Result<String, String> {
    EnvFilter::builder()
        .parse(s)
        .map_err(|e| format!("{s:?} is not a log filter: {e}"))?;
    Ok(s.to_owned())
}

/// A hook URL: `http://` or `https://` with a host.
pub fn hook_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?} is not an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host"));
    }
    Ok(s.to_owned())
}

/// An event hooks can be run for.
pub fn hook_event(s: &str) -> Result<ferry_observe::EventKind, String> {
    ferry_observe::EventKind::parse(s.trim())
        .filter(|k| ferry_observe::EventKind::HOOKABLE.contains(k))
        .ok_or_else(|| {
            let names: Vec<&str> = ferry_observe::EventKind::HOOKABLE
                .iter()
                .map(|k| k.as_str())
                .collect();
            format!(
                "{s:?} is not an event hooks run for; expected one of {}",
                names.join(", ")
            )
        })
}

/// A control-channel TLS policy: `required`, `optional` or `off`.
pub fn tls_policy(s: &str) -> Result<ferry_ftpd::TlsPolicy, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "required" => Ok(ferry_ftpd::TlsPolicy::Required),
        "optional" => Ok(ferry_ftpd::TlsPolicy::Optional),
        "off" => Ok(ferry_ftpd::TlsPolicy::Off),
        _ => Err(format!(
            "{s:?} is not a TLS policy; expected required, optional or off"
        )),
    }
}

/// `ftps.data_session`: `own`, `same_user` or `danger_any`.
pub fn data_session(s: &str) -> Result<ferry_ftpd::DataSession, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "own" => Ok(ferry_ftpd::DataSession::Own),
        "same_user" => Ok(ferry_ftpd::DataSession::SameUser),
        "danger_any" => Ok(ferry_ftpd::DataSession::DangerAny),
        _ => Err(format!(
            "{s:?} is not a data-session mode; expected own, same_user or danger_any"
        )),
    }
}

/// `proxy_protocol.mode`: `off`, `optional` or `required`.
pub fn proxy_mode(s: &str) -> Result<ferry_admission::ProxyMode, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "off" => Ok(ferry_admission::ProxyMode::Off),
        "optional" => Ok(ferry_admission::ProxyMode::Optional),
        "required" => Ok(ferry_admission::ProxyMode::Required),
        _ => Err(format!(
            "{s:?} is not a PROXY protocol mode; expected off, optional or required"
        )),
    }
}

/// `proxy_protocol.data`: `none` or `header`.
pub fn proxy_data(s: &str) -> Result<ferry_admission::ProxyData, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "none" => Ok(ferry_admission::ProxyData::None),
        "header" => Ok(ferry_admission::ProxyData::Header),
        _ => Err(format!(
            "{s:?} is not a data-connection PROXY mode; expected none or header"
        )),
    }
}

/// A per-user data-protection override: `required`, `optional`, or `default` (the listener's).
pub fn protected_data(s: &str) -> Result<Option<bool>, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "required" => Ok(Some(true)),
        "optional" => Ok(Some(false)),
        "default" => Ok(None),
        _ => Err(format!("{s:?} is not required, optional or default")),
    }
}

/// A per-user boolean override: a boolean, or `default` (the listener's setting).
pub fn optional_boolean(s: &str) -> Result<Option<bool>, String> {
    if s.trim().eq_ignore_ascii_case("default") {
        return Ok(None);
    }
    boolean(s).map(Some)
}

/// Shortest password accepted from the operator; below 8 is refused outright.
pub const MIN_MIN_PASSWORD_LENGTH: usize = 8;
/// Longest `min_password_length` accepted.
pub const MAX_MIN_PASSWORD_LENGTH: usize = 1024;

/// `min_password_length`: 8 to 1024.
pub fn min_password_length(s: &str) -> Result<usize, String> {
    let n = s.parse::<usize>().map_err(|_| format!("{s:?} is not a number"))?;
    check_min_password_length(n)
}

/// Checks a `min_password_length` from the config file.
pub fn check_min_password_length(n: usize) -> Result<usize, String> {
    if (MIN_MIN_PASSWORD_LENGTH..=MAX_MIN_PASSWORD_LENGTH).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{n} is out of range: give {MIN_MIN_PASSWORD_LENGTH} to {MAX_MIN_PASSWORD_LENGTH}"
        ))
    }
}

/// `active_source_port`: `any` or `control-minus-one`.
pub fn active_source_port(s: &str) -> Result<ferry_ftpd::ActiveSourcePort, String> {
    match s {
        "any" => Ok(ferry_ftpd::ActiveSourcePort::Any),
        "control-minus-one" => Ok(ferry_ftpd::ActiveSourcePort::ControlMinusOne),
        other => Err(format!(
            "{other:?} is not a source port choice: give \"any\" or \"control-minus-one\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_accepts_ranges_and_single_ports() {
        assert_eq!(port_range("50000-50100"), Ok(50000..=50100));
        assert_eq!(port_range(" 2000 - 2001 "), Ok(2000..=2001));
        assert_eq!(port_range("40000"), Ok(40000..=40000));
    }

    #[test]
    fn port_range_rejects_reversed_privileged_and_garbage() {
        assert!(port_range("50100-50000").is_err());
        assert!(port_range("80-2000").is_err());
        assert!(port_range("1-2-3").is_err());
        assert!(port_range("").is_err());
        assert!(port_range("50000-70000").is_err());
    }

    #[test]
    fn timeouts_must_be_positive_and_bounded() {
        assert_eq!(secs("30"), Ok(30));
        assert!(secs("0").is_err());
        assert!(secs("-1").is_err());
        assert!(secs(&u64::MAX.to_string()).is_err());
    }

    #[test]
    fn masquerade_address_is_ipv4_or_a_host_name() {
        assert_eq!(
            masquerade("ftp.Example.com").ok(),
            Some(Masquerade::Host("ftp.example.com".into()))
        );
        assert_eq!(
            masquerade("203.0.113.7").ok(),
            Some(Masquerade::Ip("203.0.113.7".parse().expect("ip")))
        );
        for bad in ["", "a b", "-x.example", "999.1.1.1", "2001:db8::1", "x..y"] {
            assert!(masquerade(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn masquerade_rules_name_a_network_and_an_address_or_host() {
        let (net, m) = masquerade_rule("10.0.0.0/8=gw.example.com").expect("rule");
        assert!(net.contains("10.1.2.3".parse().expect("ip")));
        assert_eq!(m, Masquerade::Host("gw.example.com".into()));
        let (_, m) = masquerade_rule(" 192.0.2.1 = 198.51.100.7 ").expect("rule");
        assert_eq!(m, Masquerade::Ip("198.51.100.7".parse().expect("ip")));
        for bad in [
            "10.0.0.0/8",
            "10.0.0.0/40=1.2.3.4",
            "10.0.0.0/8=2001:db8::1",
            "=1.2.3.4",
            "x=1.2.3.4",
        ] {
            assert!(masquerade_rule(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn masquerade_address_must_be_ipv4() {
        assert!(masquerade_address("203.0.113.7").is_ok());
        assert!(masquerade_address("2001:db8::1").is_err());
        assert!(masquerade_address("example.com").is_err());
    }

    #[test]
    fn greeting_rejects_line_breaks() {
        assert!(greeting("hello").is_ok());
        assert!(greeting("hello\r\n230 fake").is_err());
        assert!(greeting("  ").is_err());
    }

    #[test]
    fn home_must_be_absolute_without_dot_components() {
        assert!(home("/").is_ok());
        assert!(home("/pub/incoming/").is_ok());
        assert!(home("pub").is_err());
        assert!(home("/pub/../etc").is_err());
        assert!(home("/./x").is_err());
    }

    #[test]
    fn booleans_in_several_spellings() {
        assert_eq!(boolean("TRUE"), Ok(true));
        assert_eq!(boolean("off"), Ok(false));
        assert!(boolean("maybe").is_err());
    }

    #[test]
    fn log_filter_is_checked() {
        assert!(log_filter("info,ferry_ftpd=debug").is_ok());
        assert!(log_filter("info,=[").is_err());
    }
}
