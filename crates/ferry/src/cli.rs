//! Command-line flags. Every flag that sets a configuration key also reads a `FERRY_*` environment
//! variable; flags beat environment variables, which beat `ferry.toml`, which beats the defaults.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ferry_auth::{Password, Permissions};

use crate::config::parse;

/// ferry: a secure FTP and SFTP server.
///
/// With no configuration at all, `ferry serve` keeps its state in ./ferry-data/, serves the files
/// under ./ferry-data/files/ over FTP on port 2121 and SFTP on port 2222, and creates a first user
/// `ferry` with a generated password.
/// See docs/configuration.md for every setting.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand understands, so `serve` and `user` agree on where the state lives.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Configuration file [default: ./ferry.toml if it exists].
    ///
    /// A file named here must exist; the implicit ./ferry.toml is only read when present.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "FERRY_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// Directory for ferry's state (config key `data_dir`) [default: ./ferry-data].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "FERRY_DATA_DIR",
        value_name = "DIR"
    )]
    pub data_dir: Option<PathBuf>,

    /// User database file (config key `users_db`) [default: <data_dir>/users.db].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "FERRY_USERS_DB",
        value_name = "FILE"
    )]
    pub users_db: Option<PathBuf>,

    /// Log filter, e.g. `info` or `ferry_ftpd=debug` (config key `log`; $RUST_LOG sits between
    /// this flag and the file) [default: `info,rustls=error` for serve, `warn` for user and ban
    /// commands].
    ///
    /// Logs go to standard error. Passwords are never logged.
    #[arg(long, global = true, help_heading = "Global options", env = "FERRY_LOG", value_name = "FILTER", value_parser = parse::log_filter)]
    pub log: Option<String>,

    /// Shortest password `ferry user add` and `ferry user passwd` accept with --password or
    /// --password-stdin, 8 to 1024 (config key `min_password_length`) [default: 12]. Generated
    /// passwords are 20 characters.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "FERRY_MIN_PASSWORD_LENGTH",
        value_name = "N",
        value_parser = parse::min_password_length
    )]
    pub min_password_length: Option<usize>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the FTP and SFTP servers until SIGINT or SIGTERM.
    ///
    /// On the first start (empty user database) creates the user `ferry` with a generated
    /// password and prints it once.
    Serve(Box<ServeArgs>),

    /// Manage the users in the user database.
    #[command(subcommand)]
    User(UserCommand),

    /// List, add or lift bans of client addresses (kept in the user database; a running server
    /// picks changes up within 10 seconds).
    #[command(subcommand)]
    Ban(BanCommand),

    /// Write man pages or shell completions into a directory (a packaging step).
    #[command(hide = true)]
    Generate(crate::generate::GenerateArgs),
}

/// `ferry ban …`.
#[derive(Debug, Subcommand)]
pub enum BanCommand {
    /// List the bans in force.
    #[command(visible_alias = "ls")]
    List,

    /// Ban an address (IPv4 or IPv6).
    Add {
        /// The address to ban.
        ip: IpAddr,
        /// How long, in seconds.
        #[arg(long, default_value = "3600", value_name = "SECS", value_parser = parse::secs)]
        secs: u64,
        /// Why (shown by `ferry ban list`).
        #[arg(long, default_value = "banned by an administrator", value_name = "TEXT")]
        reason: String,
    },

    /// Lift the ban on an address and forget its earlier bans.
    #[command(visible_alias = "delete")]
    Del {
        /// The address to unban.
        ip: IpAddr,
    },
}

/// Server settings; each overrides the config key of the same name (with `_` for `-`).
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Root directory of the served files (config key `files_root`) [default: <data_dir>/files].
    #[arg(long, env = "FERRY_FILES_ROOT", value_name = "DIR")]
    pub files_root: Option<PathBuf>,

    /// Address(es) for FTP control connections, comma-separated or repeated (config key `listen`)
    /// [default: `0.0.0.0:2121,[::]:2121`].
    #[arg(long, env = "FERRY_LISTEN", value_name = "ADDR", value_delimiter = ',', value_parser = parse::socket_addr)]
    pub listen: Option<Vec<SocketAddr>>,

    /// Port range for passive data connections, LOW-HIGH with LOW >= 1024 (config key
    /// `passive_ports`) [default: 50000-50100].
    #[arg(long, env = "FERRY_PASSIVE_PORTS", value_name = "LOW-HIGH", value_parser = parse::port_range)]
    pub passive_ports: Option<RangeInclusive<u16>>,

    /// IPv4 address to announce in PASV replies instead of the local address, for NAT (config key
    /// `masquerade_address`) [default: none].
    #[arg(long, env = "FERRY_MASQUERADE_ADDRESS", value_name = "IPV4", value_parser = parse::masquerade_address)]
    pub masquerade_address: Option<IpAddr>,

    /// Text of the 220 greeting (config key `greeting`) [default: "ferry FTP server ready"].
    #[arg(long, env = "FERRY_GREETING", value_name = "TEXT", value_parser = parse::greeting)]
    pub greeting: Option<String>,

    /// Seconds from connecting to logging in before the server hangs up (config key
    /// `login_timeout_secs`) [default: 60].
    #[arg(long, env = "FERRY_LOGIN_TIMEOUT_SECS", value_name = "SECS", value_parser = parse::secs)]
    pub login_timeout_secs: Option<u64>,

    /// Seconds without a command (and no transfer running) before the server hangs up (config key
    /// `idle_timeout_secs`) [default: 300].
    #[arg(long, env = "FERRY_IDLE_TIMEOUT_SECS", value_name = "SECS", value_parser = parse::secs)]
    pub idle_timeout_secs: Option<u64>,

    /// Seconds allowed for a data connection to be made (config key `data_timeout_secs`)
    /// [default: 30].
    #[arg(long, env = "FERRY_DATA_TIMEOUT_SECS", value_name = "SECS", value_parser = parse::secs)]
    pub data_timeout_secs: Option<u64>,

    /// Source port of active-mode (PORT/EPRT) data connections: `any` (chosen by the system) or
    /// `control-minus-one` (20 behind port 21, for stateless firewalls; ports below 1024 need root or
    /// CAP_NET_BIND_SERVICE) (config key `active_source_port`) [default: any].
    #[arg(long, env = "FERRY_ACTIVE_SOURCE_PORT", value_name = "CHOICE", value_parser = parse::active_source_port)]
    pub active_source_port: Option<ferry_ftpd::ActiveSourcePort>,

    /// Failed passwords on one connection before it is closed (config key `max_login_attempts`)
    /// [default: 3].
    #[arg(long, env = "FERRY_MAX_LOGIN_ATTEMPTS", value_name = "N", value_parser = parse::login_attempts)]
    pub max_login_attempts: Option<u32>,

    /// Control connections open at once, all clients together (config key `max_connections`)
    /// [default: 1000].
    #[arg(long, env = "FERRY_MAX_CONNECTIONS", value_name = "N", value_parser = parse::count)]
    pub max_connections: Option<usize>,

    /// Control connections open at once from one IP address (config key
    /// `max_connections_per_ip`) [default: 50].
    #[arg(long, env = "FERRY_MAX_CONNECTIONS_PER_IP", value_name = "N", value_parser = parse::count)]
    pub max_connections_per_ip: Option<usize>,

    /// Allow anonymous login as `anonymous` or `ftp` (config key `anonymous.enabled`)
    /// [default: false].
    #[arg(
        long,
        env = "FERRY_ANONYMOUS_ENABLED",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse::boolean
    )]
    pub anonymous_enabled: Option<bool>,

    /// Virtual home of anonymous users (config key `anonymous.home`) [default: /pub].
    #[arg(long, env = "FERRY_ANONYMOUS_HOME", value_name = "PATH", value_parser = parse::home)]
    pub anonymous_home: Option<String>,

    /// What anonymous users may do (config key `anonymous.permissions`) [default: ro].
    #[arg(long, env = "FERRY_ANONYMOUS_PERMISSIONS", value_name = "PERMS", value_parser = parse::permissions)]
    pub anonymous_permissions: Option<Permissions>,

    /// TLS policy for logins from clients not on loopback: required, optional or off (config key
    /// `ftps.policy`) [default: required].
    #[arg(long, env = "FERRY_FTPS_POLICY", value_name = "POLICY", value_parser = parse::tls_policy)]
    pub ftps_policy: Option<ferry_ftpd::TlsPolicy>,

    /// TLS policy for logins from loopback clients (config key `ftps.loopback_policy`)
    /// [default: optional].
    #[arg(long, env = "FERRY_FTPS_LOOPBACK_POLICY", value_name = "POLICY", value_parser = parse::tls_policy)]
    pub ftps_loopback_policy: Option<ferry_ftpd::TlsPolicy>,

    /// PEM certificate chain for FTPS (config key `ftps.certificate`) [default: <data_dir>/tls/cert.pem,
    /// generated self-signed on first start].
    #[arg(long, env = "FERRY_FTPS_CERTIFICATE", value_name = "FILE")]
    pub ftps_certificate: Option<PathBuf>,

    /// PEM private key for FTPS (config key `ftps.private_key`) [default: <data_dir>/tls/key.pem].
    #[arg(long, env = "FERRY_FTPS_PRIVATE_KEY", value_name = "FILE")]
    pub ftps_private_key: Option<PathBuf>,

    /// Data connections must be TLS (PROT P) when the control connection is (config key
    /// `ftps.require_protected_data`) [default: true].
    #[arg(
        long,
        env = "FERRY_FTPS_REQUIRE_PROTECTED_DATA",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse::boolean
    )]
    pub ftps_require_protected_data: Option<bool>,

    /// Accept TLS data connections that do not resume the control connection's TLS session; weakens the
    /// defence against passive-port theft (config key `ftps.danger_allow_unresumed_data_tls`)
    /// [default: false].
    #[arg(
        long,
        env = "FERRY_FTPS_DANGER_ALLOW_UNRESUMED_DATA_TLS",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse::boolean
    )]
    pub ftps_danger_allow_unresumed_data_tls: Option<bool>,

    /// Accept CCC after login: the rest of the control connection goes in the clear (config key
    /// `ftps.danger_allow_ccc`) [default: false].
    #[arg(
        long,
        env = "FERRY_FTPS_DANGER_ALLOW_CCC",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse::boolean
    )]
    pub ftps_danger_allow_ccc: Option<bool>,

    /// Accept a TLS data connection that resumes a session of another control connection logged in as
    /// the same user from the same address, for clients that share one session cache among parallel
    /// connections (config key `ftps.danger_allow_data_tls_from_sibling_sessions`) [default: false].
    #[arg(
        long,
        env = "FERRY_FTPS_DANGER_ALLOW_DATA_TLS_FROM_SIBLING_SESSIONS",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse::boolean
    )]
    pub ftps_danger_allow_data_tls_from_sibling_sessions: Option<bool>,

    /// Serve implicit FTPS (TLS before the greeting) on `ftps.implicit_listen` (config key
    /// `ftps.implicit`) [default: false].
    #[arg(
        long,
        env = "FERRY_FTPS_IMPLICIT",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse::boolean
    )]
    pub ftps_implicit: Option<bool>,

    /// Address(es) for implicit FTPS, comma-separated (config key `ftps.implicit_listen`)
    /// [default: `0.0.0.0:2990,[::]:2990` when `ftps.implicit` is on].
    #[arg(long, env = "FERRY_FTPS_IMPLICIT_LISTEN", value_name = "ADDR", value_delimiter = ',', value_parser = parse::socket_addr)]
    pub ftps_implicit_listen: Option<Vec<SocketAddr>>,

    #[command(flatten)]
    pub security: crate::config::security::SecurityArgs,

    // --- SFTP ---
    /// Serve SFTP (SSH) as well (config key `sftp.enabled`) [default: true].
    #[arg(
        long,
        env = "FERRY_SFTP_ENABLED",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = parse::boolean
    )]
    pub sftp_enabled: Option<bool>,

    /// Address(es) for SFTP, comma-separated or repeated (config key `sftp.listen`)
    /// [default: `0.0.0.0:2222,[::]:2222`].
    #[arg(long, env = "FERRY_SFTP_LISTEN", value_name = "ADDR", value_delimiter = ',', value_parser = parse::socket_addr)]
    pub sftp_listen: Option<Vec<SocketAddr>>,

    /// SSH host key file(s), OpenSSH format, comma-separated or repeated (config key
    /// `sftp.host_keys`) [default: <data_dir>/ssh_host_ed25519_key, generated on first start].
    #[arg(
        long,
        env = "FERRY_SFTP_HOST_KEYS",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub sftp_host_keys: Option<Vec<PathBuf>>,

    // --- admin HTTP listener ---
    /// Address(es) for the admin HTTP listener (/metrics, /healthz, /readyz), comma-separated, or
    /// `off` (config key `admin.listen`) [default: `127.0.0.1:9021`].
    #[arg(long, env = "FERRY_ADMIN_LISTEN", value_name = "ADDR", value_delimiter = ',', value_parser = crate::config::admin::admin_addr)]
    pub admin_listen: Option<Vec<Option<SocketAddr>>>,
}

/// User management. Changes take effect for the next login; a running server need not restart.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. Without --password or --password-stdin a password is generated and printed.
    Add {
        /// User name: 1 to 64 characters from A-Z a-z 0-9 . _ @ -.
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
        /// Virtual home directory under the files root; the user cannot leave it.
        #[arg(long, default_value = "/", value_name = "PATH", value_parser = parse::home)]
        home: String,
        /// `all`, `ro` (list and read), `none`, or a comma-separated list of list, read, write,
        /// delete, rename, mkdir.
        #[arg(long, default_value = "all", value_name = "PERMS", value_parser = parse::permissions)]
        permissions: Permissions,
        /// Create the user disabled (it cannot log in until `ferry user enable`).
        #[arg(long)]
        disabled: bool,
    },

    /// Delete a user. Their files are kept.
    #[command(visible_alias = "delete")]
    Del {
        /// User name.
        name: String,
    },

    /// List all users: name, home, permissions, enabled.
    #[command(visible_alias = "ls")]
    List,

    /// Show one user.
    Show {
        /// User name.
        name: String,
    },

    /// Set a user's password. Without --password or --password-stdin a password is generated and
    /// printed.
    Passwd {
        /// User name.
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },

    /// Change a user's permissions.
    Perms {
        /// User name.
        name: String,
        /// `all`, `ro` (list and read), `none`, or a comma-separated list of list, read, write,
        /// delete, rename, mkdir.
        #[arg(value_name = "PERMS", value_parser = parse::permissions)]
        permissions: Permissions,
    },

    /// Change a user's virtual home directory.
    Home {
        /// User name.
        name: String,
        /// Virtual home directory under the files root, starting with `/`.
        #[arg(value_name = "PATH", value_parser = parse::home)]
        home: String,
    },

    /// Allow a user to log in again.
    Enable {
        /// User name.
        name: String,
    },

    /// Stop a user from logging in, keeping their settings.
    Disable {
        /// User name.
        name: String,
    },

    /// Set a user's FTPS overrides; options not given are left as they are. `default` means "the
    /// listener's setting applies".
    Tls {
        /// User name.
        name: String,
        /// The user may log in only over TLS, even where the listener makes TLS optional.
        #[arg(long, value_name = "BOOL", value_parser = parse::boolean)]
        require_tls: Option<bool>,
        /// Whether the user's data connections must be TLS: `required`, `optional` or `default`.
        #[arg(long, value_name = "SETTING", value_parser = parse::protected_data)]
        protected_data: Option<Option<bool>>,
        /// Accept TLS data connections that do not resume the control connection's session, for clients
        /// that cannot resume (Python ftplib, .NET): `true`, `false` or `default`.
        #[arg(long, value_name = "SETTING", value_parser = parse::optional_boolean)]
        danger_allow_unresumed_data_tls: Option<Option<bool>>,
    },

    /// Manage a user's SSH public keys (SFTP logins).
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `ferry user key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add public keys in OpenSSH authorized_keys form (`ssh-ed25519 AAAA… comment`): given as
    /// arguments, read from --file (one per line), or read from standard input with `-`.
    Add {
        /// User name.
        name: String,
        /// The key line, or `-` for standard input.
        #[arg(value_name = "KEY", num_args = 0.., allow_hyphen_values = true)]
        key: Vec<String>,
        /// Read keys from this file (authorized_keys format; blank and `#` lines are skipped).
        #[arg(long, value_name = "FILE", conflicts_with = "key")]
        file: Option<PathBuf>,
    },

    /// Remove a key, named by its SHA256 fingerprint (as `ferry user key list` shows it).
    #[command(visible_alias = "delete")]
    Del {
        /// User name.
        name: String,
        /// `SHA256:…`
        fingerprint: String,
    },

    /// List a user's keys: fingerprint, type, comment.
    #[command(visible_alias = "ls")]
    List {
        /// User name.
        name: String,
    },
}

/// Where a new password comes from.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct PasswordArgs {
    /// The password (visible to other local users in the process list; prefer --password-stdin).
    #[arg(long, value_name = "PASSWORD", value_parser = parse::password)]
    pub password: Option<Password>,

    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
}
