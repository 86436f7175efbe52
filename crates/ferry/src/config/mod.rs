//! Settings: embedded defaults, overridden by `ferry.toml`, overridden by `FERRY_*` environment
//! variables and flags (clap merges those two, flags first).
//!
//! Every value goes through the same parser in [`parse`] whatever its source, and an error names the
//! key (or the flag) and the file it came from.

pub mod admin;
pub mod parse;
pub mod security;
pub mod sftp;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use ferry_auth::Permissions;
use ferry_ftpd::{Anonymous, ConnectionLimits};
use serde::Deserialize;

use crate::cli::{CommonArgs, ServeArgs};

/// The config file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "ferry.toml";
/// The state directory used when nothing else is configured.
pub const DEFAULT_DATA_DIR: &str = "ferry-data";
/// The FTP port used when nothing else is configured.
pub const DEFAULT_FTP_PORT: u16 = 2121;
/// The implicit-FTPS port used when implicit FTPS is turned on without addresses (990 is conventional but
/// needs privileges).
pub const DEFAULT_IMPLICIT_PORT: u16 = 2990;
const DEFAULT_ANONYMOUS_HOME: &str = "/pub";

/// Shortest password `ferry user add` / `passwd` accept when the operator chooses one.
pub const DEFAULT_MIN_PASSWORD_LENGTH: usize = 12;

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
    /// The SQLite user database.
    pub users_db: PathBuf,
    /// Control-connection addresses.
    pub listen: Vec<SocketAddr>,
    /// Everything the FTP server itself needs (`ftpd.ftps.tls` is filled in by `serve`).
    pub ftpd: ferry_ftpd::Config,
    /// Where the FTPS certificate comes from, and the implicit-FTPS addresses.
    pub ftps: FtpsFiles,
    /// The tracing filter, if one was configured (the command picks its own default otherwise).
    pub log: Option<String>,
    /// SFTP, when enabled.
    pub sftp: Option<sftp::SftpSettings>,
    /// The admin HTTP listener (`/metrics`, `/healthz`, `/readyz`).
    pub admin: admin::AdminSettings,
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

/// `ferry.toml` as written. Every field is optional; unknown keys are an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    files_root: Option<PathBuf>,
    users_db: Option<PathBuf>,
    listen: Option<Vec<String>>,
    passive_ports: Option<String>,
    masquerade_address: Option<String>,
    greeting: Option<String>,
    login_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    data_timeout_secs: Option<u64>,
    max_login_attempts: Option<u32>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    min_password_length: Option<usize>,
    active_source_port: Option<String>,
    anonymous: Option<AnonymousFile>,
    ftps: Option<FtpsFile>,
    log: Option<String>,

    // ----- hostile-client defences (see `security`) -----
    max_pending_connections: Option<usize>,
    max_commands_per_sec: Option<u32>,
    failed_login_delay_ms: Option<u64>,
    danger_allow_fxp: Option<bool>,
    danger_allow_fxp_users: Option<Vec<String>>,
    defender: Option<security::DefenderFile>,
    sftp: Option<sftp::SftpFile>,
    admin: Option<admin::AdminFile>,
}

/// The `[ftps]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FtpsFile {
    policy: Option<String>,
    loopback_policy: Option<String>,
    require_protected_data: Option<bool>,
    danger_allow_unresumed_data_tls: Option<bool>,
    danger_allow_ccc: Option<bool>,
    danger_allow_data_tls_from_sibling_sessions: Option<bool>,
    certificate: Option<PathBuf>,
    private_key: Option<PathBuf>,
    implicit: Option<bool>,
    implicit_listen: Option<Vec<String>>,
}

/// The `[anonymous]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnonymousFile {
    enabled: Option<bool>,
    home: Option<String>,
    permissions: Option<String>,
}

/// Reads the config file (if any) and merges it with the defaults and the flags/environment.
///
/// `rust_log` is the value of `RUST_LOG`, which sits between `--log`/`FERRY_LOG` and the file.
pub fn load(common: &CommonArgs, serve: &ServeArgs, rust_log: Option<&str>) -> Result<Settings> {
    let (file, origin, config_file) = read_file(common.config.as_deref())?;
    let key_err = |key: &str, msg: String| anyhow!("{origin}: invalid `{key}`: {msg}");
    let check = |key: &str, raw: Option<&str>, f: &dyn Fn(&str) -> Result<(), String>| match raw {
        Some(v) => f(v).map_err(|m| key_err(key, m)),
        None => Ok(()),
    };

    let data_dir = common
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let files_root = serve
        .files_root
        .clone()
        .or(file.files_root)
        .unwrap_or_else(|| data_dir.join("files"));
    let users_db = common
        .users_db
        .clone()
        .or(file.users_db)
        .unwrap_or_else(|| data_dir.join("users.db"));

    let file_listen = match file.listen {
        Some(list) => Some(
            list.iter()
                .map(|s| parse::socket_addr(s).map_err(|m| key_err("listen", m)))
                .collect::<Result<Vec<_>>>()?,
        ),
        None => None,
    };
    let listen = serve
        .listen
        .clone()
        .or(file_listen)
        .unwrap_or_else(default_listen);
    if listen.is_empty() {
        return Err(anyhow!(
            "`listen` is empty: give at least one address such as 0.0.0.0:2121"
        ));
    }

    let file_passive = file.passive_ports.as_deref().map(parse::port_range).transpose();
    let passive_ports = match serve.passive_ports.clone() {
        Some(r) => r,
        None => file_passive
            .map_err(|m| key_err("passive_ports", m))?
            .unwrap_or(50000..=50100),
    };

    let file_masq = file
        .masquerade_address
        .as_deref()
        .map(parse::masquerade_address)
        .transpose();
    let masquerade_address = match serve.masquerade_address {
        Some(ip) => Some(ip),
        None => file_masq.map_err(|m| key_err("masquerade_address", m))?,
    };

    let file_greeting = file.greeting.as_deref().map(parse::greeting).transpose();
    let defaults = ferry_ftpd::Config::default();
    let greeting = match serve.greeting.clone() {
        Some(g) => g,
        None => file_greeting
            .map_err(|m| key_err("greeting", m))?
            .unwrap_or(defaults.session.greeting),
    };

    let secs = |key: &str, flag: Option<u64>, file: Option<u64>, default: Duration| -> Result<Duration> {
        let n = match flag {
            Some(n) => n,
            None => match file
                .map(parse::check_secs)
                .transpose()
                .map_err(|m| key_err(key, m))?
            {
                Some(n) => n,
                None => return Ok(default),
            },
        };
        Ok(Duration::from_secs(n))
    };
    let login_timeout = secs(
        "login_timeout_secs",
        serve.login_timeout_secs,
        file.login_timeout_secs,
        defaults.session.login_timeout,
    )?;
    let idle_timeout = secs(
        "idle_timeout_secs",
        serve.idle_timeout_secs,
        file.idle_timeout_secs,
        defaults.session.idle_timeout,
    )?;
    let data_timeout = secs(
        "data_timeout_secs",
        serve.data_timeout_secs,
        file.data_timeout_secs,
        defaults.data_timeout,
    )?;

    let active_source_port = match serve.active_source_port {
        Some(p) => p,
        None => file
            .active_source_port
            .as_deref()
            .map(parse::active_source_port)
            .transpose()
            .map_err(|m| key_err("active_source_port", m))?
            .unwrap_or_default(),
    };

    let max_login_attempts = match serve.max_login_attempts {
        Some(n) => n,
        None => file
            .max_login_attempts
            .map(parse::check_login_attempts)
            .transpose()
            .map_err(|m| key_err("max_login_attempts", m))?
            .unwrap_or(defaults.session.max_login_attempts),
    };
    let count = |key: &str, flag: Option<usize>, file: Option<usize>, default: usize| -> Result<usize> {
        match flag {
            Some(n) => Ok(n),
            None => Ok(file
                .map(parse::check_count)
                .transpose()
                .map_err(|m| key_err(key, m))?
                .unwrap_or(default)),
        }
    };
    let limits = ConnectionLimits {
        max_connections: count(
            "max_connections",
            serve.max_connections,
            file.max_connections,
            defaults.limits.max_connections,
        )?,
        max_per_ip: count(
            "max_connections_per_ip",
            serve.max_connections_per_ip,
            file.max_connections_per_ip,
            defaults.limits.max_per_ip,
        )?,
        max_pending: 0, // set below with the other defences
    };

    let security = security::load(
        &serve.security,
        security::SecurityFile {
            max_pending_connections: file.max_pending_connections,
            max_commands_per_sec: file.max_commands_per_sec,
            failed_login_delay_ms: file.failed_login_delay_ms,
            danger_allow_fxp: file.danger_allow_fxp,
            danger_allow_fxp_users: file.danger_allow_fxp_users,
            defender: file.defender,
        },
        defaults.limits.max_pending,
        &key_err,
    )?;
    let anon = file.anonymous.unwrap_or_default();
    check("anonymous.home", anon.home.as_deref(), &|v| {
        parse::home(v).map(drop)
    })?;
    check("anonymous.permissions", anon.permissions.as_deref(), &|v| {
        parse::permissions(v).map(drop)
    })?;
    let anonymous_enabled = serve.anonymous_enabled.or(anon.enabled).unwrap_or(false);
    let anonymous = if anonymous_enabled {
        let home = serve
            .anonymous_home
            .clone()
            .or(anon.home)
            .unwrap_or_else(|| DEFAULT_ANONYMOUS_HOME.to_owned());
        let permissions = match serve.anonymous_permissions {
            Some(p) => p,
            None => match anon.permissions.as_deref() {
                Some(p) => parse::permissions(p).map_err(|m| key_err("anonymous.permissions", m))?,
                None => Permissions::read_only(),
            },
        };
        Some(Anonymous { home, permissions })
    } else {
        None
    };

    let tf = file.ftps.unwrap_or_default();
    let policy = |key: &str, flag: Option<ferry_ftpd::TlsPolicy>, raw: Option<&str>, default| match flag {
        Some(p) => Ok(p),
        None => raw
            .map(parse::tls_policy)
            .transpose()
            .map_err(|m| key_err(key, m))
            .map(|p| p.unwrap_or(default)),
    };
    let ftps = ferry_ftpd::Ftps {
        tls: None,
        policy: policy(
            "ftps.policy",
            serve.ftps_policy,
            tf.policy.as_deref(),
            defaults.ftps.policy,
        )?,
        loopback_policy: policy(
            "ftps.loopback_policy",
            serve.ftps_loopback_policy,
            tf.loopback_policy.as_deref(),
            defaults.ftps.loopback_policy,
        )?,
        require_protected_data: serve
            .ftps_require_protected_data
            .or(tf.require_protected_data)
            .unwrap_or(defaults.ftps.require_protected_data),
        danger_allow_unresumed_data_tls: serve
            .ftps_danger_allow_unresumed_data_tls
            .or(tf.danger_allow_unresumed_data_tls)
            .unwrap_or(defaults.ftps.danger_allow_unresumed_data_tls),
        danger_allow_ccc: serve
            .ftps_danger_allow_ccc
            .or(tf.danger_allow_ccc)
            .unwrap_or(defaults.ftps.danger_allow_ccc),
        danger_allow_data_tls_from_sibling_sessions: serve
            .ftps_danger_allow_data_tls_from_sibling_sessions
            .or(tf.danger_allow_data_tls_from_sibling_sessions)
            .unwrap_or(defaults.ftps.danger_allow_data_tls_from_sibling_sessions),
        handshake_timeout: defaults.ftps.handshake_timeout,
    };
    let certificate = serve.ftps_certificate.clone().or(tf.certificate);
    let private_key = serve.ftps_private_key.clone().or(tf.private_key);
    let generated = certificate.is_none() && private_key.is_none();
    let (certificate, private_key) = match (certificate, private_key) {
        (Some(c), Some(k)) => (c, k),
        (None, None) => (data_dir.join("tls/cert.pem"), data_dir.join("tls/key.pem")),
        _ => {
            return Err(anyhow!(
                "{origin}: `ftps.certificate` and `ftps.private_key` must be given together"
            ))
        }
    };
    let file_implicit = match tf.implicit_listen {
        Some(list) => Some(
            list.iter()
                .map(|s| parse::socket_addr(s).map_err(|m| key_err("ftps.implicit_listen", m)))
                .collect::<Result<Vec<_>>>()?,
        ),
        None => None,
    };
    let implicit_listen = match serve.ftps_implicit.or(tf.implicit).unwrap_or(false) {
        true => serve
            .ftps_implicit_listen
            .clone()
            .or(file_implicit)
            .unwrap_or_else(default_implicit_listen),
        false => Vec::new(),
    };
    let ftps_files = FtpsFiles {
        certificate,
        private_key,
        generated,
        implicit_listen,
    };

    let log = match (&common.log, rust_log) {
        (Some(log), _) => Some(log.clone()),
        (None, Some(env)) => Some(parse::log_filter(env).map_err(|m| anyhow!("invalid RUST_LOG: {m}"))?),
        (None, None) => file
            .log
            .as_deref()
            .map(parse::log_filter)
            .transpose()
            .map_err(|m| key_err("log", m))?,
    };

    let ftpd = ferry_ftpd::Config {
        session: ferry_proto::session::Config {
            greeting,
            login_timeout,
            idle_timeout,
            max_login_attempts,
            tls: Default::default(),
        },
        passive_ports,
        masquerade_address,
        data_timeout,
        active_source_port,
        limits: ConnectionLimits {
            max_pending: security.max_pending,
            ..limits
        },
        anonymous,
        ftps,
        protection: security.protection,
        defender: security.defender,
    };
    for (key, path) in [
        ("data_dir", &data_dir),
        ("files_root", &files_root),
        ("users_db", &users_db),
    ] {
        if path.as_os_str().is_empty() {
            return Err(anyhow!("`{key}` is empty: give a path"));
        }
    }
    let sftp = sftp::load(file.sftp, serve, &data_dir, &key_err)?;
    let admin = admin::load(file.admin, serve, &key_err)?;
    let min_password_length = match common.min_password_length {
        Some(n) => n,
        None => file
            .min_password_length
            .map(parse::check_min_password_length)
            .transpose()
            .map_err(|m| key_err("min_password_length", m))?
            .unwrap_or(DEFAULT_MIN_PASSWORD_LENGTH),
    };
    Ok(Settings {
        config_file,
        min_password_length,
        data_dir,
        files_root,
        users_db,
        listen,
        ftpd,
        ftps: ftps_files,
        log,
        sftp,
        admin,
    })
}

/// Implicit FTPS on [`DEFAULT_IMPLICIT_PORT`], every IPv4 and IPv6 address.
pub fn default_implicit_listen() -> Vec<SocketAddr> {
    vec![
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_IMPLICIT_PORT),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), DEFAULT_IMPLICIT_PORT),
    ]
}

/// The embedded default: port 2121 on every IPv4 and every IPv6 address.
pub fn default_listen() -> Vec<SocketAddr> {
    vec![
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_FTP_PORT),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), DEFAULT_FTP_PORT),
    ]
}

/// Reads and parses the config file: `explicit` if given (it must exist), else `./ferry.toml` if it
/// exists, else nothing. Returns the parsed file, a name for it in error messages and its path.
fn read_file(explicit: Option<&Path>) -> Result<(FileConfig, String, Option<PathBuf>)> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => {
            let implicit = PathBuf::from(DEFAULT_CONFIG_FILE);
            if !implicit.exists() {
                return Ok((FileConfig::default(), "defaults".to_owned(), None));
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
    let file = parse_file(&text).with_context(|| format!("invalid config file {origin}"))?;
    Ok((file, origin, Some(path)))
}

fn parse_file(text: &str) -> Result<FileConfig, toml::de::Error> {
    toml::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_flags() -> (CommonArgs, ServeArgs) {
        (
            CommonArgs {
                config: None,
                data_dir: None,
                users_db: None,
                log: None,
                min_password_length: None,
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
        assert_eq!(s.users_db, PathBuf::from("ferry-data/users.db"));
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
            danger_allow_data_tls_from_sibling_sessions = true
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
            allow_list = ["10.0.0.0/8", "2001:db8::1"]
            "#,
        )
        .expect("load");
        assert_eq!(s.ftpd.ftps.policy, ferry_ftpd::TlsPolicy::Optional);
        assert_eq!(s.ftpd.ftps.loopback_policy, ferry_ftpd::TlsPolicy::Off);
        assert!(!s.ftpd.ftps.require_protected_data);
        assert!(s.ftpd.ftps.danger_allow_unresumed_data_tls);
        assert!(s.ftpd.ftps.danger_allow_ccc);
        assert!(s.ftpd.ftps.danger_allow_data_tls_from_sibling_sessions);
        assert_eq!(s.ftps.certificate, PathBuf::from("/etc/ferry/cert.pem"));
        assert_eq!(s.ftps.private_key, PathBuf::from("/etc/ferry/key.pem"));
        assert!(!s.ftps.generated);
        assert_eq!(s.ftps.implicit_listen, vec!["127.0.0.1:990".parse().unwrap()]);
        assert_eq!(s.files_root, PathBuf::from("/srv/files"));
        assert_eq!(s.users_db, PathBuf::from("/srv/users.db"));
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
        assert_eq!(s.users_db, PathBuf::from("state/users.db"));
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
        common.data_dir = Some(PathBuf::from("b"));
        serve.idle_timeout_secs = Some(11);
        let s = load(&common, &serve, None).expect("load");
        assert_eq!(s.data_dir, PathBuf::from("b"));
        assert_eq!(s.ftpd.session.idle_timeout, Duration::from_secs(11));
        assert_eq!(s.log.as_deref(), Some("warn"));
        let s = load(&common, &serve, Some("error")).expect("load");
        assert_eq!(s.log.as_deref(), Some("error"), "RUST_LOG beats the file");
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
            ("[defender]\nthreshhold = 3", "threshhold"),
        ] {
            let err = format!("{:#}", load_text(text).expect_err(text));
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    /// Every key, as documented (`[anonymous]` keys with their table prefix).
    const KEYS: [&str; 48] = [
        "admin",
        "admin.listen",
        "min_password_length",
        "active_source_port",
        "data_dir",
        "files_root",
        "users_db",
        "listen",
        "passive_ports",
        "masquerade_address",
        "greeting",
        "login_timeout_secs",
        "idle_timeout_secs",
        "data_timeout_secs",
        "max_login_attempts",
        "max_connections",
        "max_connections_per_ip",
        "log",
        "anonymous",
        "anonymous.enabled",
        "anonymous.home",
        "anonymous.permissions",
        "ftps",
        "ftps.policy",
        "ftps.loopback_policy",
        "ftps.require_protected_data",
        "ftps.danger_allow_unresumed_data_tls",
        "ftps.danger_allow_ccc",
        "ftps.danger_allow_data_tls_from_sibling_sessions",
        "ftps.certificate",
        "ftps.private_key",
        "ftps.implicit",
        "ftps.implicit_listen",
        "max_pending_connections",
        "max_commands_per_sec",
        "failed_login_delay_ms",
        "danger_allow_fxp",
        "danger_allow_fxp_users",
        "defender",
        "defender.threshold",
        "defender.observation_secs",
        "defender.ban_secs",
        "defender.max_ban_secs",
        "defender.score_failed_login",
        "defender.score_unknown_user",
        "defender.score_pre_login_disconnect",
        "defender.score_limit_exceeded",
        "defender.allow_list",
    ];

    /// The settings lines of `ferry.example.toml`, uncommented.
    fn uncommented_example() -> String {
        let example = include_str!("../../../../ferry.example.toml");
        example
            .lines()
            .filter_map(|line| {
                let body = line.strip_prefix("# ")?;
                let is_key = |k: &str| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_');
                let setting = body == "[anonymous]"
                    || body == "[ftps]"
                    || body == "[defender]"
                    || body == "[sftp]"
                    || body == "[admin]"
                    || body.split_once(" = ").is_some_and(|(k, _)| is_key(k));
                setting.then(|| format!("{body}\n"))
            })
            .collect()
    }

    #[test]
    fn example_file_has_every_key_at_its_default() {
        let text = uncommented_example();
        let file: FileConfig = toml::from_str(&text).expect("example parses");
        let anon = file.anonymous.as_ref().expect("[anonymous]");
        let defender = file.defender.as_ref().expect("[defender]");
        assert!(
            file.data_dir.is_some()
                && file.files_root.is_some()
                && file.users_db.is_some()
                && file.listen.is_some()
                && file.passive_ports.is_some()
                && file.masquerade_address.is_some()
                && file.greeting.is_some()
                && file.login_timeout_secs.is_some()
                && file.idle_timeout_secs.is_some()
                && file.data_timeout_secs.is_some()
                && file.max_login_attempts.is_some()
                && file.max_connections.is_some()
                && file.max_connections_per_ip.is_some()
                && file.min_password_length.is_some()
                && file.active_source_port.is_some()
                && file.log.is_some()
                && anon.enabled.is_some()
                && anon.home.is_some()
                && anon.permissions.is_some()
                && file.ftps.as_ref().is_some_and(|f| f.policy.is_some()
                    && f.loopback_policy.is_some()
                    && f.require_protected_data.is_some()
                    && f.danger_allow_unresumed_data_tls.is_some()
                    && f.danger_allow_ccc.is_some()
                    && f.danger_allow_data_tls_from_sibling_sessions.is_some()
                    && f.certificate.is_some()
                    && f.private_key.is_some()
                    && f.implicit.is_some()
                    && f.implicit_listen.is_some())
                && file.max_pending_connections.is_some()
                && file.max_commands_per_sec.is_some()
                && file.failed_login_delay_ms.is_some()
                && file.danger_allow_fxp.is_some()
                && file.danger_allow_fxp_users.is_some()
                && defender.all_set()
                && file.admin.as_ref().is_some_and(|a| a.has_listen()),
            "a key is missing from ferry.example.toml:\n{text}"
        );

        let example = load_text(&text).expect("example loads");
        let defaults = load_text("").expect("defaults load");
        assert_eq!(example.data_dir, defaults.data_dir);
        assert_eq!(example.files_root, defaults.files_root);
        assert_eq!(example.users_db, defaults.users_db);
        assert_eq!(example.listen, defaults.listen);
        assert_eq!(example.admin.listen, defaults.admin.listen);
        assert_eq!(example.ftpd.passive_ports, defaults.ftpd.passive_ports);
        assert_eq!(example.ftpd.session.greeting, defaults.ftpd.session.greeting);
        assert_eq!(
            example.ftpd.session.login_timeout,
            defaults.ftpd.session.login_timeout
        );
        assert_eq!(
            example.ftpd.session.idle_timeout,
            defaults.ftpd.session.idle_timeout
        );
        assert_eq!(
            example.ftpd.session.max_login_attempts,
            defaults.ftpd.session.max_login_attempts
        );
        assert_eq!(example.ftpd.data_timeout, defaults.ftpd.data_timeout);
        assert_eq!(example.min_password_length, defaults.min_password_length);
        assert_eq!(example.ftpd.active_source_port, defaults.ftpd.active_source_port);
        assert_eq!(example.ftpd.limits, defaults.ftpd.limits);
        assert!(example.ftpd.anonymous.is_none());
        assert_eq!(example.ftpd.ftps.policy, defaults.ftpd.ftps.policy);
        assert_eq!(
            example.ftpd.ftps.loopback_policy,
            defaults.ftpd.ftps.loopback_policy
        );
        assert_eq!(
            example.ftpd.ftps.require_protected_data,
            defaults.ftpd.ftps.require_protected_data
        );
        assert!(!example.ftpd.ftps.danger_allow_unresumed_data_tls);
        assert!(!example.ftpd.ftps.danger_allow_ccc);
        assert!(!example.ftpd.ftps.danger_allow_data_tls_from_sibling_sessions);
        assert_eq!(example.ftps.implicit_listen, defaults.ftps.implicit_listen);
        assert_eq!(example.ftpd.protection, defaults.ftpd.protection);
        assert_eq!(example.ftpd.defender, defaults.ftpd.defender);
        assert_eq!(example.sftp, defaults.sftp);
    }

    #[test]
    fn configuration_reference_documents_every_key() {
        let doc = include_str!("../../../../docs/configuration.md");
        for key in KEYS {
            let shown = match key {
                "anonymous" => "[anonymous]",
                "ftps" => "[ftps]",
                "defender" => "[defender]",
                "admin" => "[admin]",
                key => key,
            };
            assert!(
                doc.contains(&format!("### `{shown}`")),
                "docs/configuration.md lacks a section for {key}"
            );
        }
    }

    #[test]
    fn a_named_config_file_must_exist() {
        let (mut common, serve) = no_flags();
        common.config = Some(PathBuf::from("/nonexistent/ferry.toml"));
        let err = format!("{:#}", load(&common, &serve, None).expect_err("missing"));
        assert!(err.contains("/nonexistent/ferry.toml"), "{err}");
    }
}
