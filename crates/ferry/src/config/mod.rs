//! Settings: embedded defaults, overridden by `ferry.toml`, overridden by `RUST_LOG` (for `log`
//! only), overridden by `FERRY_*` environment variables and flags (clap merges those two, flags
//! first).
//!
//! Every setting is defined once, in [`defs`]; [`layer`] turns the definitions into flags, reads the
//! file and merges the layers, parsing every value with the setting's own parser whatever its source.
//! An error names the key (or the flag) and the file it came from. This module only turns the merged
//! values into the structures the library crates take.

pub mod admin;
pub mod defs;
pub mod layer;
pub mod observe;
pub mod parse;
pub mod reference;
pub mod security;
pub mod sftp;
pub mod storage;
pub mod users_db;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use ferry_ftpd::{Anonymous, ConnectionLimits};

use crate::cli::{CommonArgs, ServeArgs};
use layer::{Layer, Value, Values};
pub use users_db::UsersDb;

/// The config file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "ferry.toml";
/// The FTP port of the embedded default `listen`.
pub const DEFAULT_FTP_PORT: u16 = 2121;

/// Validated settings, ready to hand to the library crates.
#[derive(Debug)]
pub struct Settings {
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Shortest password accepted when the operator chooses one (generated ones are longer).
    pub min_password_length: usize,
    /// Directory for ferry's state.
    pub data_dir: PathBuf,
    /// Root of the served files.
    pub files_root: PathBuf,
    /// Local back-end: compute SHA-256, MD5 and CRC-32 during uploads and keep them beside the file.
    pub keep_checksums: bool,
    /// The user database: an SQLite file or a PostgreSQL URL.
    pub users_db: UsersDb,
    /// With a PostgreSQL user database: admit connections on this node's own limits while the database
    /// cannot be reached (`cluster.fail_open`), instead of refusing them.
    pub cluster_fail_open: bool,
    /// Control-connection addresses.
    pub listen: Vec<SocketAddr>,
    /// Everything the FTP server itself needs (`ftpd.ftps.tls` is filled in by `serve`, and
    /// `ftpd.masquerade_address` from `masquerade_host` when that is set).
    pub ftpd: ferry_ftpd::Config,
    /// `masquerade_address` given as a host name: resolved to IPv4 at start and on SIGHUP.
    pub masquerade_host: Option<String>,
    /// `masquerade_networks`: per client network, an address or a host name (resolved by `serve` into
    /// `ftpd.masquerade_networks` at start and on SIGHUP).
    pub masquerade_rules: Vec<(ferry_auth::defender::Network, parse::Masquerade)>,
    /// Where the FTPS certificate comes from, and the implicit-FTPS addresses.
    pub ftps: FtpsFiles,
    /// The tracing filter, if one was configured (the command picks its own default otherwise).
    pub log: Option<String>,
    /// SFTP, when enabled.
    pub sftp: Option<sftp::SftpSettings>,
    /// The admin HTTP listener (`/metrics`, `/healthz`, `/readyz`).
    pub admin: admin::AdminSettings,
    /// Where user files live (`files_root` is used only by the local back-end).
    pub storage: storage::StorageSettings,
    /// Logs, the transfer log, shutdown and hooks.
    pub observe: observe::ObserveSettings,
    /// Every setting's merged value, to tell on SIGHUP which ones changed.
    pub values: std::collections::BTreeMap<&'static str, String>,
    /// Quotas and bandwidth limits for users without their own.
    pub default_limits: ferry_auth::DefaultLimits,
}

/// FTPS certificate files and implicit listeners.
#[derive(Debug, Clone)]
pub struct FtpsFiles {
    /// PEM certificate chain.
    pub certificate: PathBuf,
    /// PEM private key.
    pub private_key: PathBuf,
    /// True when both paths are the defaults under the data directory: a self-signed certificate is
    /// generated there if missing.
    pub generated: bool,
    /// Implicit-FTPS addresses (empty: none).
    pub implicit_listen: Vec<SocketAddr>,
}

/// Reads the config file (if any) and merges it with the defaults, `RUST_LOG` and the
/// flags/environment.
pub fn load(common: &CommonArgs, serve: &ServeArgs, rust_log: Option<&str>) -> Result<Settings> {
    let (file, config_file) = read_file(common.config.as_deref())?;
    let rust_log = Layer::rust_log(rust_log);
    let values = layer::merge(&[&file, &rust_log, &common.settings.0, &serve.settings.0])?;
    let mut settings = build(&values, &file.origin)?;
    settings.config_file = config_file;
    settings.values = values.fingerprint();
    settings.admin.configured = [&file, &common.settings.0, &serve.settings.0]
        .iter()
        .any(|layer| layer.sets("admin.listen"));
    Ok(settings)
}

/// Turns the merged values into [`Settings`], with the checks that involve several keys.
fn build(v: &Values, origin: &str) -> Result<Settings> {
    let data_dir = v.path("data_dir")?.unwrap_or_default();
    let files_root = v.path("files_root")?.unwrap_or_else(|| data_dir.join("files"));
    let users_db = v
        .opt("users_db", |x| match x {
            Value::Path(p) => Some(UsersDb::File(p.clone())),
            Value::Text(url) => Some(UsersDb::Postgres(url.clone())),
            _ => None,
        })?
        .unwrap_or_else(|| UsersDb::File(data_dir.join("users.db")));
    let listen = v.addrs("listen")?;
    if listen.is_empty() {
        return Err(anyhow!(
            "`listen` is empty: give at least one address such as 0.0.0.0:2121"
        ));
    }
    let anonymous = match v.bool("anonymous.enabled")? {
        true => Some(Anonymous {
            home: v.text("anonymous.home")?,
            permissions: v.get("anonymous.permissions", |x| match x {
                Value::Permissions(p) => Some(*p),
                _ => None,
            })?,
        }),
        false => None,
    };
    let security = security::build(v)?;
    let ftpd = ferry_ftpd::Config {
        session: ferry_proto::session::Config {
            greeting: v.text("greeting")?,
            login_timeout: v.secs("login_timeout_secs")?,
            idle_timeout: v.secs("idle_timeout_secs")?,
            max_login_attempts: v.number("max_login_attempts")?,
            tls: Default::default(),
            hash_max_size: v.number("hash_max_size")?,
        },
        passive_ports: v.get("passive_ports", |x| match x {
            Value::Ports(r) => Some(r.clone()),
            _ => None,
        })?,
        masquerade_address: v
            .opt("masquerade_address", |x| match x {
                Value::Ip(ip) => Some(Some(*ip)),
                Value::Text(_) => Some(None),
                _ => None,
            })?
            .flatten(),
        // Filled in by `serve`, which resolves the host names of `masquerade_rules`.
        masquerade_networks: Vec::new(),
        data_timeout: v.secs("data_timeout_secs")?,
        active_source_port: parse::active_source_port(&v.text("active_source_port")?)
            .map_err(|m| anyhow!("{origin}: invalid `active_source_port`: {m}"))?,
        limits: ConnectionLimits {
            max_connections: v.number("max_connections")?,
            max_per_ip: v.number("max_connections_per_ip")?,
            max_pending: v.number("max_pending_connections")?,
            max_per_user: v.number("max_sessions_per_user")?,
            cluster: None,
        },
        anonymous,
        ftps: ferry_ftpd::Ftps {
            tls: None,
            policy: v.policy("ftps.policy")?,
            loopback_policy: v.policy("ftps.loopback_policy")?,
            require_protected_data: v.bool("ftps.require_protected_data")?,
            danger_allow_unresumed_data_tls: v.bool("ftps.danger_allow_unresumed_data_tls")?,
            danger_allow_ccc: v.bool("ftps.danger_allow_ccc")?,
            data_session: parse::data_session(&v.text("ftps.data_session")?)
                .map_err(|m| anyhow!("{origin}: invalid `ftps.data_session`: {m}"))?,
            handshake_timeout: ferry_ftpd::Ftps::default().handshake_timeout,
        },
        protection: security.protection,
        defender: security.defender,
        proxy_protocol: proxy_protocol(v, origin)?,
    };
    let ftps = ftps_files(v, &data_dir, origin)?;
    let sftp = sftp::build(v, &data_dir)?;
    let storage = storage::build(v, origin)?;
    Ok(Settings {
        storage,
        config_file: None,
        min_password_length: v.number("min_password_length")?,
        default_limits: ferry_auth::DefaultLimits {
            quota_bytes: v.number("quota.default_bytes")?,
            quota_files: v.number("quota.default_files")?,
            upload_kib: v.number("bandwidth.default_upload_kib")?,
            download_kib: v.number("bandwidth.default_download_kib")?,
        },
        files_root,
        keep_checksums: v.bool("keep_checksums")?,
        users_db,
        cluster_fail_open: v.bool("cluster.fail_open")?,
        listen,
        ftpd,
        masquerade_host: v
            .opt("masquerade_address", |x| match x {
                Value::Text(name) => Some(Some(name.clone())),
                Value::Ip(_) => Some(None),
                _ => None,
            })?
            .flatten(),
        masquerade_rules: v
            .list("masquerade_networks", |x| match x {
                Value::MasqueradeRule(n, m) => Some((*n, m.clone())),
                _ => None,
            })?
            .unwrap_or_default(),
        ftps,
        log: v.opt("log", |x| match x {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        })?,
        sftp,
        admin: admin::AdminSettings {
            listen: v
                .list("admin.listen", |x| match x {
                    Value::Addr(a) => Some(Some(*a)),
                    Value::Text(_) => Some(None),
                    _ => None,
                })?
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .collect(),
            configured: false,
        },
        observe: observe::build(v)?,
        values: Default::default(),
        data_dir,
    })
}

/// The PROXY protocol settings; a mode other than off needs the balancers' addresses.
fn proxy_protocol(v: &Values, origin: &str) -> Result<ferry_admission::ProxyProtocol> {
    let mode = parse::proxy_mode(&v.text("proxy_protocol.mode")?)
        .map_err(|m| anyhow!("{origin}: invalid `proxy_protocol.mode`: {m}"))?;
    let allowed = v
        .list("proxy_protocol.allowed", |x| match x {
            Value::Network(n) => Some(*n),
            _ => None,
        })?
        .unwrap_or_default();
    if mode != ferry_admission::ProxyMode::Off && allowed.is_empty() {
        return Err(anyhow!(
            "{origin}: `proxy_protocol.mode` is not \"off\" but `proxy_protocol.allowed` is empty: \
             list the load balancers' addresses whose PROXY headers ferry may believe"
        ));
    }
    Ok(ferry_admission::ProxyProtocol {
        mode,
        allowed,
        header_timeout: v.secs("proxy_protocol.header_timeout_secs")?,
        data: parse::proxy_data(&v.text("proxy_protocol.data")?)
            .map_err(|m| anyhow!("{origin}: invalid `proxy_protocol.data`: {m}"))?,
    })
}

/// The certificate files (given together, or both defaulted) and the implicit listeners.
fn ftps_files(v: &Values, data_dir: &Path, origin: &str) -> Result<FtpsFiles> {
    let (certificate, private_key) = match (v.path("ftps.certificate")?, v.path("ftps.private_key")?) {
        (Some(c), Some(k)) => (c, k),
        (None, None) => (data_dir.join("tls/cert.pem"), data_dir.join("tls/key.pem")),
        _ => {
            return Err(anyhow!(
                "{origin}: `ftps.certificate` and `ftps.private_key` must be given together"
            ))
        }
    };
    let implicit_listen = match v.bool("ftps.implicit")? {
        true => v.addrs("ftps.implicit_listen")?,
        false => Vec::new(),
    };
    Ok(FtpsFiles {
        generated: v.path("ftps.certificate")?.is_none(),
        certificate,
        private_key,
        implicit_listen,
    })
}

/// The embedded default: port 2121 on every IPv4 and every IPv6 address.
#[cfg(test)]
fn default_listen() -> Vec<SocketAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    vec![
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 2121),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 2121),
    ]
}

/// Reads and parses the config file: `explicit` if given (it must exist), else `./ferry.toml` if it
/// exists, else nothing. Returns the layer and the file's path.
fn read_file(explicit: Option<&Path>) -> Result<(Layer, Option<PathBuf>)> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => {
            let implicit = PathBuf::from(DEFAULT_CONFIG_FILE);
            if !implicit.exists() {
                return Ok((Layer::new("defaults"), None));
            }
            implicit
        }
    };
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow!(
            "cannot read the config file {origin}: {} (set `--config` / FERRY_CONFIG)",
            crate::state::cause(&e)
        )
    })?;
    Ok((Layer::from_toml(&text, &origin)?, Some(path)))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use clap::Parser;
    use ferry_auth::Permissions;

    use super::*;

    fn no_flags() -> (CommonArgs, ServeArgs) {
        (
            CommonArgs {
                config: None,
                settings: crate::config::layer::GlobalFlags::default(),
            },
            ServeArgs::default(),
        )
    }

    fn load_text(text: &str) -> Result<Settings> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ferry.toml");
        std::fs::write(&path, text).expect("write");
        let (mut common, serve) = no_flags();
        common.config = Some(path);
        load(&common, &serve, None)
    }

    #[test]
    fn empty_file_gives_the_embedded_defaults() {
        let s = load_text("").expect("load");
        assert_eq!(s.data_dir, PathBuf::from("ferry-data"));
        assert_eq!(s.files_root, PathBuf::from("ferry-data/files"));
        assert_eq!(s.users_db, UsersDb::File(PathBuf::from("ferry-data/users.db")));
        assert_eq!(s.listen, default_listen());
        assert_eq!(s.ftpd.passive_ports, 50000..=50100);
        assert_eq!(s.ftpd.session.login_timeout, Duration::from_secs(60));
        assert_eq!(s.ftpd.session.idle_timeout, Duration::from_secs(300));
        assert_eq!(s.ftpd.data_timeout, Duration::from_secs(30));
        assert_eq!(s.ftpd.session.max_login_attempts, 3);
        assert_eq!(
            s.ftpd.limits,
            ConnectionLimits {
                max_connections: 1000,
                max_per_ip: 50,
                max_pending: 200,
                max_per_user: 0,
                cluster: None,
            }
        );
        assert!(s.ftpd.anonymous.is_none());
        assert_eq!(s.log, None);
    }

    #[test]
    fn every_key_is_read_from_the_file() {
        let s = load_text(
            r#"
            data_dir = "/srv/ferry"
            files_root = "/srv/files"
            users_db = "/srv/users.db"
            listen = ["127.0.0.1:21", "[::1]:21"]
            passive_ports = "40000-40010"
            masquerade_address = "203.0.113.7"
            greeting = "hello"
            login_timeout_secs = 10
            idle_timeout_secs = 20
            data_timeout_secs = 5
            max_login_attempts = 2
            max_connections = 7
            max_connections_per_ip = 3
            min_password_length = 16
            active_source_port = "control-minus-one"
            max_pending_connections = 5
            max_commands_per_sec = 40
            failed_login_delay_ms = 2500
            danger_allow_fxp = true
            danger_allow_fxp_users = ["bob"]
            log = "debug"
            [anonymous]
            enabled = true
            home = "/public"
            permissions = "list,read,write"
            [ftps]
            policy = "optional"
            loopback_policy = "off"
            require_protected_data = false
            danger_allow_unresumed_data_tls = true
            danger_allow_ccc = true
            data_session = "danger_any"
            certificate = "/etc/ferry/cert.pem"
            private_key = "/etc/ferry/key.pem"
            implicit = true
            implicit_listen = ["127.0.0.1:990"]
            [defender]
            threshold = 7
            observation_secs = 60
            ban_secs = 120
            max_ban_secs = 240
            score_failed_login = 2
            score_unknown_user = 3
            score_pre_login_disconnect = 0
            score_limit_exceeded = 4
            score_loopback = true
            allow_list = ["10.0.0.0/8", "2001:db8::1"]
            "#,
        )
        .expect("load");
        assert_eq!(s.ftpd.ftps.policy, ferry_ftpd::TlsPolicy::Optional);
        assert_eq!(s.ftpd.ftps.loopback_policy, ferry_ftpd::TlsPolicy::Off);
        assert!(!s.ftpd.ftps.require_protected_data);
        assert!(s.ftpd.ftps.danger_allow_unresumed_data_tls);
        assert!(s.ftpd.ftps.danger_allow_ccc);
        assert_eq!(s.ftpd.ftps.data_session, ferry_ftpd::DataSession::DangerAny);
        assert_eq!(s.ftps.certificate, PathBuf::from("/etc/ferry/cert.pem"));
        assert_eq!(s.ftps.private_key, PathBuf::from("/etc/ferry/key.pem"));
        assert!(!s.ftps.generated);
        assert_eq!(s.ftps.implicit_listen, vec!["127.0.0.1:990".parse().unwrap()]);
        assert_eq!(s.files_root, PathBuf::from("/srv/files"));
        assert_eq!(s.users_db, UsersDb::File(PathBuf::from("/srv/users.db")));
        assert_eq!(s.listen.len(), 2);
        assert_eq!(s.ftpd.passive_ports, 40000..=40010);
        assert_eq!(
            s.ftpd.masquerade_address,
            Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)))
        );
        assert_eq!(s.ftpd.session.greeting, "hello");
        assert_eq!(s.ftpd.session.login_timeout, Duration::from_secs(10));
        assert_eq!(s.ftpd.session.idle_timeout, Duration::from_secs(20));
        assert_eq!(s.ftpd.data_timeout, Duration::from_secs(5));
        assert_eq!(s.ftpd.session.max_login_attempts, 2);
        assert_eq!(s.min_password_length, 16);
        assert_eq!(
            s.ftpd.active_source_port,
            ferry_ftpd::ActiveSourcePort::ControlMinusOne
        );
        assert_eq!(
            s.ftpd.limits,
            ConnectionLimits {
                max_connections: 7,
                max_per_ip: 3,
                max_pending: 5,
                max_per_user: 0,
                cluster: None,
            }
        );
        let p = &s.ftpd.protection;
        assert_eq!(p.max_commands_per_sec, 40);
        assert_eq!(p.failed_login_delay, Duration::from_millis(2500));
        assert!(p.danger_allow_fxp);
        assert_eq!(p.danger_allow_fxp_users, vec!["bob".to_owned()]);
        let d = &s.ftpd.defender;
        assert_eq!(d.threshold, 7);
        assert_eq!(d.observation, Duration::from_secs(60));
        assert_eq!(d.ban_time, Duration::from_secs(120));
        assert_eq!(d.max_ban_time, Duration::from_secs(240));
        assert_eq!(
            d.scores,
            ferry_auth::defender::Scores {
                failed_login: 2,
                unknown_user: 3,
                pre_login_disconnect: 0,
                limit_exceeded: 4
            }
        );
        assert!(d.score_loopback);
        assert_eq!(d.allow_list.len(), 2);
        assert!(d.allow_list[0].contains("10.1.2.3".parse().expect("ip")));
        let anon = s.ftpd.anonymous.expect("anonymous");
        assert_eq!(anon.home, "/public");
        assert!(anon.permissions.write && !anon.permissions.delete);
        assert_eq!(s.log.as_deref(), Some("debug"));
    }

    #[test]
    fn data_dir_moves_the_derived_paths() {
        let s = load_text("data_dir = \"state\"").expect("load");
        assert_eq!(s.files_root, PathBuf::from("state/files"));
        assert_eq!(s.users_db, UsersDb::File(PathBuf::from("state/users.db")));
    }

    #[test]
    fn anonymous_defaults_to_read_only_pub() {
        let s = load_text("[anonymous]\nenabled = true").expect("load");
        let anon = s.ftpd.anonymous.expect("anonymous");
        assert_eq!(anon.home, "/pub");
        assert_eq!(anon.permissions, Permissions::read_only());
    }

    #[test]
    fn flags_beat_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ferry.toml");
        std::fs::write(&path, "data_dir = \"a\"\nidle_timeout_secs = 9\nlog = \"warn\"").expect("write");
        let (mut common, mut serve) = no_flags();
        common.config = Some(path);
        common.settings.0.set("data_dir", "b");
        serve.settings.0.set("idle_timeout_secs", "11");
        let s = load(&common, &serve, None).expect("load");
        assert_eq!(s.data_dir, PathBuf::from("b"));
        assert_eq!(s.ftpd.session.idle_timeout, Duration::from_secs(11));
        assert_eq!(s.log.as_deref(), Some("warn"));
        let s = load(&common, &serve, Some("error")).expect("load");
        assert_eq!(s.log.as_deref(), Some("error"), "RUST_LOG beats the file");
    }

    #[test]
    fn masquerade_address_may_be_a_host_name() {
        let s = load_text("masquerade_address = \"ftp.example.com\"").expect("load");
        assert_eq!(s.masquerade_host.as_deref(), Some("ftp.example.com"));
        assert_eq!(s.ftpd.masquerade_address, None);
        let s = load_text("masquerade_address = \"203.0.113.7\"").expect("load");
        assert_eq!(s.masquerade_host, None);
        assert!(s.ftpd.masquerade_address.is_some());
    }

    #[test]
    fn proxy_protocol_settings() {
        let s = load_text("").expect("defaults");
        assert_eq!(s.ftpd.proxy_protocol.mode, ferry_admission::ProxyMode::Off);
        let s = load_text(
            "[proxy_protocol]\nmode = \"required\"\nallowed = [\"10.0.0.0/8\"]\n\
             header_timeout_secs = 2\ndata = \"header\"",
        )
        .expect("load");
        let p = &s.ftpd.proxy_protocol;
        assert_eq!(p.mode, ferry_admission::ProxyMode::Required);
        assert!(p.is_allowed("10.1.2.3".parse().expect("ip")));
        assert!(!p.is_allowed("192.0.2.1".parse().expect("ip")));
        assert_eq!(p.header_timeout, Duration::from_secs(2));
        assert_eq!(p.data, ferry_admission::ProxyData::Header);
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let err = format!("{:#}", load_text("listen_port = 21").expect_err("unknown key"));
        assert!(err.contains("listen_port"), "{err}");
        let err = format!(
            "{:#}",
            load_text("[anonymous]\nenable = true").expect_err("unknown key")
        );
        assert!(err.contains("enable"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("passive_ports = \"60000-50000\"", "passive_ports"),
            ("passive_ports = \"21-30\"", "passive_ports"),
            ("login_timeout_secs = 0", "login_timeout_secs"),
            ("idle_timeout_secs = 0", "idle_timeout_secs"),
            ("data_timeout_secs = 0", "data_timeout_secs"),
            ("max_login_attempts = 0", "max_login_attempts"),
            ("max_connections = 0", "max_connections"),
            ("max_connections_per_ip = 0", "max_connections_per_ip"),
            ("min_password_length = 3", "min_password_length"),
            ("active_source_port = \"20\"", "active_source_port"),
            ("listen = [\"localhost\"]", "listen"),
            ("listen = []", "listen"),
            ("masquerade_address = \"::1\"", "masquerade_address"),
            ("greeting = \"a\\r\\n230 b\"", "greeting"),
            ("log = \"=[\"", "log"),
            ("login_timeout_secs = \"ten\"", "login_timeout_secs"),
            ("[anonymous]\nhome = \"pub\"", "anonymous.home"),
            ("[anonymous]\npermissions = \"fly\"", "anonymous.permissions"),
            ("max_pending_connections = 0", "max_pending_connections"),
            ("max_commands_per_sec = 0", "max_commands_per_sec"),
            ("failed_login_delay_ms = 5", "failed_login_delay_ms"),
            ("failed_login_delay_ms = 999999", "failed_login_delay_ms"),
            ("danger_allow_fxp = \"maybe\"", "danger_allow_fxp"),
            ("[defender]\nthreshold = 0", "defender.threshold"),
            ("[defender]\nban_secs = 0", "defender.ban_secs"),
            (
                "[defender]\nban_secs = 100\nmax_ban_secs = 50",
                "defender.max_ban_secs",
            ),
            (
                "[defender]\nscore_unknown_user = 100000",
                "defender.score_unknown_user",
            ),
            (
                "[defender]\nallow_list = [\"10.0.0.0/40\"]",
                "defender.allow_list",
            ),
            (
                "[defender]\nallow_list = [\"example.com\"]",
                "defender.allow_list",
            ),
            ("[proxy_protocol]\nmode = \"maybe\"", "proxy_protocol.mode"),
            ("[proxy_protocol]\nmode = \"required\"", "proxy_protocol.allowed"),
            (
                "[proxy_protocol]\nmode = \"optional\"\nallowed = []",
                "proxy_protocol.allowed",
            ),
            ("[proxy_protocol]\ndata = \"both\"", "proxy_protocol.data"),
            (
                "[proxy_protocol]\nheader_timeout_secs = 0",
                "proxy_protocol.header_timeout_secs",
            ),
            ("[ftps]\ndata_session = \"anyone\"", "ftps.data_session"),
            (
                "[ftps]\ndanger_allow_data_tls_from_sibling_sessions = true",
                "replaced: use ftps.data_session",
            ),
            ("[defender]\nthreshhold = 3", "threshhold"),
        ] {
            let err = format!("{:#}", load_text(text).expect_err(text));
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn defaults_match_the_library_defaults() {
        let s = load_text("").expect("load");
        let lib = ferry_ftpd::Config::default();
        assert_eq!(s.ftpd.session.greeting, lib.session.greeting);
        assert_eq!(s.ftpd.session.login_timeout, lib.session.login_timeout);
        assert_eq!(s.ftpd.session.idle_timeout, lib.session.idle_timeout);
        assert_eq!(s.ftpd.session.max_login_attempts, lib.session.max_login_attempts);
        assert_eq!(s.ftpd.passive_ports, lib.passive_ports);
        assert_eq!(s.ftpd.data_timeout, lib.data_timeout);
        assert_eq!(s.ftpd.limits, lib.limits);
        assert_eq!(s.ftpd.protection, lib.protection);
        assert_eq!(s.ftpd.defender, lib.defender);
        assert_eq!(s.ftpd.ftps.policy, lib.ftps.policy);
        assert_eq!(s.ftpd.ftps.loopback_policy, lib.ftps.loopback_policy);
        assert_eq!(
            s.ftpd.ftps.require_protected_data,
            lib.ftps.require_protected_data
        );
        assert_eq!(
            s.ftpd.ftps.danger_allow_unresumed_data_tls,
            lib.ftps.danger_allow_unresumed_data_tls
        );
        assert_eq!(s.ftpd.ftps.danger_allow_ccc, lib.ftps.danger_allow_ccc);
        assert_eq!(s.ftpd.ftps.data_session, lib.ftps.data_session);
    }

    #[test]
    fn flags_and_variables_are_made_from_the_definitions() {
        use clap::CommandFactory;
        let cmd = crate::cli::Cli::command();
        let serve = cmd.find_subcommand("serve").expect("serve");
        for def in defs::DEFS {
            let arg = cmd
                .get_arguments()
                .chain(serve.get_arguments())
                .find(|a| a.get_long() == Some(def.flag().as_str()))
                .unwrap_or_else(|| panic!("no flag for {}", def.key));
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(def.env().as_str()),
                "{}",
                def.key
            );
        }
        let m = crate::cli::Cli::try_parse_from([
            "ferry",
            "--data-dir",
            "d",
            "serve",
            "--listen",
            "127.0.0.1:1,127.0.0.1:2",
            "--listen=127.0.0.1:3",
            "--anonymous-enabled",
            "--ftps-policy",
            "off",
        ])
        .expect("parses");
        let crate::cli::Command::Serve(serve) = &m.command else {
            panic!("serve")
        };
        let s = load(&m.common, serve.as_ref(), None).expect("load");
        assert_eq!(s.data_dir, PathBuf::from("d"));
        assert_eq!(s.listen.len(), 3);
        assert!(s.ftpd.anonymous.is_some());
        assert_eq!(s.ftpd.ftps.policy, ferry_ftpd::TlsPolicy::Off);
        let err =
            crate::cli::Cli::try_parse_from(["ferry", "serve", "--max-connections", "0"]).expect_err("zero");
        assert!(err.to_string().contains("--max-connections"), "{err}");
    }

    #[test]
    fn a_named_config_file_must_exist() {
        let (mut common, serve) = no_flags();
        common.config = Some(PathBuf::from("/nonexistent/ferry.toml"));
        let err = format!("{:#}", load(&common, &serve, None).expect_err("missing"));
        assert!(err.contains("/nonexistent/ferry.toml"), "{err}");
    }
}
