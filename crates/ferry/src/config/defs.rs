//! Every setting of ferry, each described once.
//!
//! A [`Def`] names the setting by its `ferry.toml` key and gives its [`Kind`](super::layer::Kind) (type, parser and
//! validation), its default, a one-line help text and an example value. Everything else is derived
//! from it: the flag (`--key-with-dashes`, tables joined with `-`), the `FERRY_*` environment variable
//! (the key in upper case, `.` as `_`), the `--help` line, `ferry.example.toml` and the tables in
//! docs/configuration.md (the last two are checked by tests in `reference`).
//!
//! # Adding a setting
//!
//! 1. Add one [`Def`] to [`DEFS`] (pick a [`Kind`](super::layer::Kind) from `layer`, or add one there if no existing kind
//!    parses the value).
//! 2. Use it where [`super::load`] builds the settings: `values.secs("my_key")?` and so on.
//! 3. Run `FERRY_BLESS=1 cargo test -p ferry --bin ferry config::reference` to regenerate
//!    `ferry.example.toml` and the key's table in docs/configuration.md, then write the prose under
//!    the new `### \`my_key\`` heading that the test asks for.

use super::layer::{kind, Def, Default::*, Group, Scope};

/// Groups, in the order of `ferry.example.toml`.
pub const STATE: Group = Group::top("Where state and files live", "");
pub const NETWORK: Group = Group::top("Network", "");
pub const SESSIONS: Group = Group::top("Sessions", "");
pub const HOSTILE: Group = Group::top("Hostile clients", "");
pub const LOGGING: Group = Group::top("Logging", "");
pub const ANONYMOUS: Group = Group::table(
    "anonymous",
    "Anonymous login",
    "Anonymous login (user \"anonymous\" or \"ftp\", any password) is off unless enabled here.",
);
pub const FTPS: Group = Group::table("ftps", "FTPS (FTP over TLS); see docs/ftps.md", "");
pub const DEFENDER: Group = Group::table(
    "defender",
    "Login defender",
    "Scores misbehaviour per client address and bans addresses that reach the threshold. Bans are\n\
     stored in the user database; see `ferry ban --help`.",
);
pub const PROXY_PROTOCOL: Group = Group::table(
    "proxy_protocol",
    "PROXY protocol",
    "PROXY protocol (HAProxy's, versions 1 and 2) from load balancers in front of ferry, on the FTP,\n\
     implicit FTPS and SFTP listeners. See docs/scale-out.md.",
);
pub const SFTP: Group = Group::table(
    "sftp",
    "SFTP",
    "SFTP (SSH) next to FTP, on the same users and files. Timeouts and connection limits above apply\n\
     to it too. See docs/sftp.md.",
);

pub const QUOTA: Group = Group::table(
    "quota",
    "Quotas",
    "Storage quotas for users without their own (`ferry user quota`); 0 = unlimited. See\n\
     docs/operations.md.",
);
pub const BANDWIDTH: Group = Group::table(
    "bandwidth",
    "Bandwidth",
    "Bandwidth limits for users without their own (`ferry user limit`), each shared by all of a\n\
     user's sessions (FTP and SFTP together); 0 = unlimited. See docs/operations.md.",
);

pub const ADMIN: Group = Group::table(
    "admin",
    "Admin HTTP listener",
    "/metrics (Prometheus), /healthz and /readyz; see docs/operations.md. Keep it on loopback or a\n\
     private network: it has no authentication.",
);

/// Every setting, in the order of `ferry.example.toml` and docs/configuration.md.
pub const DEFS: &[Def] = &[
    // ----- state -----
    Def {
        key: "data_dir",
        kind: &kind::PATH,
        list: false,
        default: Is("ferry-data"),
        scope: Scope::Global,
        group: &STATE,
        help: "Directory for ferry's state; files_root and users_db default to places inside it",
        example: "/var/lib/ferry",
    },
    Def {
        key: "files_root",
        kind: &kind::PATH,
        list: false,
        default: Derived("`<data_dir>/files`", "ferry-data/files"),
        scope: Scope::Serve,
        group: &STATE,
        help: "Root directory of the served files; user homes are paths under it",
        example: "/srv/ftp",
    },
    Def {
        key: "users_db",
        kind: &kind::PATH,
        list: false,
        default: Derived("`<data_dir>/users.db`", "ferry-data/users.db"),
        scope: Scope::Global,
        group: &STATE,
        help: "SQLite user database",
        example: "/var/lib/ferry/users.db",
    },
    // ----- network -----
    Def {
        key: "listen",
        kind: &kind::SOCKET_ADDR,
        list: true,
        default: Is("0.0.0.0:2121,[::]:2121"),
        scope: Scope::Serve,
        group: &NETWORK,
        help: "Addresses for FTP control connections (IPv6 in brackets)",
        example: "192.0.2.5:21,[2001:db8::5]:21",
    },
    Def {
        key: "passive_ports",
        kind: &kind::PORT_RANGE,
        list: false,
        default: Is("50000-50100"),
        scope: Scope::Serve,
        group: &NETWORK,
        help: "Ports for passive (PASV/EPSV) data connections, LOW-HIGH with LOW >= 1024",
        example: "40000-40999",
    },
    Def {
        key: "masquerade_address",
        kind: &kind::IPV4,
        list: false,
        default: Unset("not set (announce the address the client connected to)"),
        scope: Scope::Serve,
        group: &NETWORK,
        help: "IPv4 address (or host name, resolved at start and on SIGHUP) announced in PASV replies \
               instead of the address the client connected to, for NAT and load balancers",
        example: "203.0.113.10",
    },
    Def {
        key: "active_source_port",
        kind: &kind::ACTIVE_SOURCE_PORT,
        list: false,
        default: Is("any"),
        scope: Scope::Serve,
        group: &NETWORK,
        help: "Source port of active (PORT/EPRT) data connections: any, or control-minus-one (20 behind port 21; below 1024 needs root or CAP_NET_BIND_SERVICE)",
        example: "control-minus-one",
    },
    // ----- sessions -----
    Def {
        key: "greeting",
        kind: &kind::GREETING,
        list: false,
        default: Is("ferry FTP server ready"),
        scope: Scope::Serve,
        group: &SESSIONS,
        help: "Text of the 220 greeting",
        example: "Example Corp file drop",
    },
    Def {
        key: "login_timeout_secs",
        kind: &kind::SECS,
        list: false,
        default: Is("60"),
        scope: Scope::Serve,
        group: &SESSIONS,
        help: "Seconds from connecting to logging in before the server hangs up",
        example: "30",
    },
    Def {
        key: "idle_timeout_secs",
        kind: &kind::SECS,
        list: false,
        default: Is("300"),
        scope: Scope::Serve,
        group: &SESSIONS,
        help: "Seconds without a command (and no transfer running) before the server hangs up",
        example: "900",
    },
    Def {
        key: "data_timeout_secs",
        kind: &kind::SECS,
        list: false,
        default: Is("30"),
        scope: Scope::Serve,
        group: &SESSIONS,
        help: "Seconds allowed for a data connection to be made, and for a stalled transfer",
        example: "60",
    },
    Def {
        key: "max_login_attempts",
        kind: &kind::LOGIN_ATTEMPTS,
        list: false,
        default: Is("3"),
        scope: Scope::Serve,
        group: &SESSIONS,
        help: "Failed passwords on one connection before it is closed",
        example: "5",
    },
    Def {
        key: "max_connections",
        kind: &kind::COUNT,
        list: false,
        default: Is("1000"),
        scope: Scope::Serve,
        group: &SESSIONS,
        help: "Control connections open at once, all clients together",
        example: "200",
    },
    Def {
        key: "max_connections_per_ip",
        kind: &kind::COUNT,
        list: false,
        default: Is("50"),
        scope: Scope::Serve,
        group: &SESSIONS,
        help: "Control connections open at once from one IP address",
        example: "10",
    },
    // ----- hostile clients -----
    Def {
        key: "min_password_length",
        kind: &kind::MIN_PASSWORD_LENGTH,
        list: false,
        default: Is("12"),
        scope: Scope::Global,
        group: &HOSTILE,
        help: "Shortest password `ferry user add`/`passwd` accept with --password or --password-stdin (generated ones have 20 characters)",
        example: "16",
    },
    Def {
        key: "max_pending_connections",
        kind: &kind::COUNT,
        list: false,
        default: Is("200"),
        scope: Scope::Serve,
        group: &HOSTILE,
        help: "Connections open at once that have not logged in yet",
        example: "500",
    },
    Def {
        key: "max_commands_per_sec",
        kind: &kind::COMMANDS_PER_SEC,
        list: false,
        default: Is("10000"),
        scope: Scope::Serve,
        group: &HOSTILE,
        help: "Commands per second one session may send on average; faster clients are slowed down",
        example: "100",
    },
    Def {
        key: "failed_login_delay_ms",
        kind: &kind::FAILED_LOGIN_DELAY_MS,
        list: false,
        default: Is("1000"),
        scope: Scope::Serve,
        group: &HOSTILE,
        help: "Milliseconds from PASS to the reply of a failed login, the same for unknown users",
        example: "2000",
    },
    Def {
        key: "danger_allow_fxp",
        kind: &kind::BOOL,
        list: false,
        default: Is("false"),
        scope: Scope::Serve,
        group: &HOSTILE,
        help: "DANGER: allow FXP (data connections with other addresses than the client's) for every user",
        example: "true",
    },
    Def {
        key: "danger_allow_fxp_users",
        kind: &kind::TEXT,
        list: true,
        default: Is(""),
        scope: Scope::Serve,
        group: &HOSTILE,
        help: "DANGER: users allowed FXP while it is off for everyone else",
        example: "mirror",
    },
    // ----- logging -----
    Def {
        key: "log",
        kind: &kind::LOG_FILTER,
        list: false,
        default: Unset("`\"info,rustls=error\"` for `ferry serve`, `\"warn\"` for the other commands"),
        scope: Scope::Global,
        group: &LOGGING,
        help: "Log filter such as `info` or `info,ferry_ftpd=debug` (logs go to standard error; \
               RUST_LOG sits between FERRY_LOG and the file)",
        example: "info,ferry_ftpd=debug",
    },
    // ----- [anonymous] -----
    Def {
        key: "anonymous.enabled",
        kind: &kind::BOOL,
        list: false,
        default: Is("false"),
        scope: Scope::Serve,
        group: &ANONYMOUS,
        help: "Allow anonymous login as `anonymous` or `ftp`",
        example: "true",
    },
    Def {
        key: "anonymous.home",
        kind: &kind::HOME,
        list: false,
        default: Is("/pub"),
        scope: Scope::Serve,
        group: &ANONYMOUS,
        help: "Virtual home of anonymous users, under files_root",
        example: "/public",
    },
    Def {
        key: "anonymous.permissions",
        kind: &kind::PERMISSIONS,
        list: false,
        default: Is("ro"),
        scope: Scope::Serve,
        group: &ANONYMOUS,
        help: "What anonymous users may do: all, ro, none or a list such as list,read,write",
        example: "list,read",
    },
    // ----- [ftps] -----
    Def {
        key: "ftps.policy",
        kind: &kind::TLS_POLICY,
        list: false,
        default: Is("required"),
        scope: Scope::Serve,
        group: &FTPS,
        help: "TLS policy for logins from clients not on loopback: required, optional or off",
        example: "optional",
    },
    Def {
        key: "ftps.loopback_policy",
        kind: &kind::TLS_POLICY,
        list: false,
        default: Is("optional"),
        scope: Scope::Serve,
        group: &FTPS,
        help: "TLS policy for logins from loopback clients (127.0.0.0/8, ::1)",
        example: "required",
    },
    Def {
        key: "ftps.require_protected_data",
        kind: &kind::BOOL,
        list: false,
        default: Is("true"),
        scope: Scope::Serve,
        group: &FTPS,
        help: "Data connections must be TLS (PROT P) when the control connection is",
        example: "false",
    },
    Def {
        key: "ftps.danger_allow_unresumed_data_tls",
        kind: &kind::BOOL,
        list: false,
        default: Is("false"),
        scope: Scope::Serve,
        group: &FTPS,
        help: "DANGER: accept TLS data connections that do not resume the control connection's TLS \
               session; weakens the defence against passive-port theft",
        example: "true",
    },
    Def {
        key: "ftps.danger_allow_ccc",
        kind: &kind::BOOL,
        list: false,
        default: Is("false"),
        scope: Scope::Serve,
        group: &FTPS,
        help: "DANGER: accept CCC after login: the rest of the control connection goes in the clear",
        example: "true",
    },
    Def {
        key: "ftps.data_session",
        kind: &kind::DATA_SESSION,
        list: false,
        default: Is("same_user"),
        scope: Scope::Serve,
        group: &FTPS,
        help: "Whose TLS session a data connection may resume: own (its control connection's), same_user \
               (also another control connection logged in as the same user from the same address, as \
               rclone does) or danger_any",
        example: "own",
    },
    Def {
        key: "ftps.certificate",
        kind: &kind::PATH,
        list: false,
        default: Derived(
            "`<data_dir>/tls/cert.pem`, generated self-signed on the first start",
            "ferry-data/tls/cert.pem",
        ),
        scope: Scope::Serve,
        group: &FTPS,
        help: "PEM certificate chain for FTPS, leaf first (give it with ftps.private_key)",
        example: "/etc/letsencrypt/live/ftp.example.com/fullchain.pem",
    },
    Def {
        key: "ftps.private_key",
        kind: &kind::PATH,
        list: false,
        default: Derived("`<data_dir>/tls/key.pem`", "ferry-data/tls/key.pem"),
        scope: Scope::Serve,
        group: &FTPS,
        help: "PEM private key of ftps.certificate",
        example: "/etc/letsencrypt/live/ftp.example.com/privkey.pem",
    },
    Def {
        key: "ftps.implicit",
        kind: &kind::BOOL,
        list: false,
        default: Is("false"),
        scope: Scope::Serve,
        group: &FTPS,
        help: "Serve implicit FTPS (TLS before the greeting) on ftps.implicit_listen",
        example: "true",
    },
    Def {
        key: "ftps.implicit_listen",
        kind: &kind::SOCKET_ADDR,
        list: true,
        default: Is("0.0.0.0:2990,[::]:2990"),
        scope: Scope::Serve,
        group: &FTPS,
        help: "Addresses for implicit FTPS, used when ftps.implicit is on",
        example: "0.0.0.0:990,[::]:990",
    },
    // ----- [defender] -----
    Def {
        key: "defender.threshold",
        kind: &kind::THRESHOLD,
        list: false,
        default: Is("15"),
        scope: Scope::Serve,
        group: &DEFENDER,
        help: "Total score within observation_secs that bans an address",
        example: "30",
    },
    Def {
        key: "defender.observation_secs",
        kind: &kind::SECS,
        list: false,
        default: Is("1800"),
        scope: Scope::Serve,
        group: &DEFENDER,
        help: "Seconds an event counts towards the score",
        example: "600",
    },
    Def {
        key: "defender.ban_secs",
        kind: &kind::SECS,
        list: false,
        default: Is("1800"),
        scope: Scope::Serve,
        group: &DEFENDER,
        help: "Seconds of a first ban; each later ban of the same address lasts twice as long",
        example: "600",
    },
    Def {
        key: "defender.max_ban_secs",
        kind: &kind::SECS,
        list: false,
        default: Is("86400"),
        scope: Scope::Serve,
        group: &DEFENDER,
        help: "Longest ban in seconds, at least defender.ban_secs",
        example: "604800",
    },
    Def {
        key: "defender.score_failed_login",
        kind: &kind::SCORE,
        list: false,
        default: Is("1"),
        scope: Scope::Serve,
        group: &DEFENDER,
        help: "Score of a wrong password for an existing, enabled user",
        example: "2",
    },
    Def {
        key: "defender.score_unknown_user",
        kind: &kind::SCORE,
        list: false,
        default: Is("2"),
        scope: Scope::Serve,
        group: &DEFENDER,
        help: "Score of a login as a user that does not exist or is disabled",
        example: "3",
    },
    Def {
        key: "defender.score_pre_login_disconnect",
        kind: &kind::SCORE,
        list: false,
        default: Is("1"),
        scope: Scope::Serve,
        group: &DEFENDER,
        help: "Score of a connection that ends without a successful login after it tried to log in \
               (sent USER/PASS or an SSH authentication request); connect-and-close scores nothing",
        example: "0",
    },
    Def {
        key: "defender.score_limit_exceeded",
        kind: &kind::SCORE,
        list: false,
        default: Is("3"),
        scope: Scope::Serve,
        group: &DEFENDER,
        help: "Score of a connection refused by a connection limit",
        example: "5",
    },
    Def {
        key: "defender.score_loopback",
        kind: &kind::BOOL,
        list: false,
        default: Is("false"),
        scope: Scope::Serve,
        group: &DEFENDER,
        help: "Also score and ban loopback addresses (127.0.0.0/8, ::1); off so that local monitors and \
               tests never lock anyone out",
        example: "true",
    },
    Def {
        key: "defender.allow_list",
        kind: &kind::NETWORK,
        list: true,
        default: Is(""),
        scope: Scope::Serve,
        group: &DEFENDER,
        help: "Networks never scored or banned (health checks, monitoring, your office)",
        example: "192.0.2.0/24,2001:db8::/32,127.0.0.1",
    },
    // ----- [admin] -----
    Def {
        key: "admin.listen",
        kind: &kind::ADMIN_ADDR,
        list: true,
        default: Is("127.0.0.1:9021"),
        scope: Scope::Serve,
        group: &ADMIN,
        help: "Addresses of the admin HTTP listener (/metrics, /healthz, /readyz); an empty list or off turns it off",
        example: "127.0.0.1:9100",
    },
    // ----- [proxy_protocol] -----
    Def {
        key: "proxy_protocol.mode",
        kind: &kind::PROXY_MODE,
        list: false,
        default: Is("off"),
        scope: Scope::Serve,
        group: &PROXY_PROTOCOL,
        help: "Read a PROXY header (v1 or v2) before each connection: off; optional (peers in \
               proxy_protocol.allowed may send one); required (every connection must come from an \
               allowed peer and send one)",
        example: "required",
    },
    Def {
        key: "proxy_protocol.allowed",
        kind: &kind::NETWORK,
        list: true,
        default: Is(""),
        scope: Scope::Serve,
        group: &PROXY_PROTOCOL,
        help: "Load balancers whose PROXY headers are believed; needed when the mode is not off",
        example: "10.0.0.5,10.0.1.0/24",
    },
    Def {
        key: "proxy_protocol.header_timeout_secs",
        kind: &kind::SECS,
        list: false,
        default: Is("5"),
        scope: Scope::Serve,
        group: &PROXY_PROTOCOL,
        help: "Time for the whole PROXY header to arrive",
        example: "2",
    },
    Def {
        key: "proxy_protocol.data",
        kind: &kind::PROXY_DATA,
        list: false,
        default: Is("none"),
        scope: Scope::Serve,
        group: &PROXY_PROTOCOL,
        help: "Passive FTP data connections of a proxied session: none (they come from an allowed \
               balancer without a header) or header (they carry a PROXY header naming the control \
               connection's client)",
        example: "header",
    },
    // ----- [sftp] -----
    Def {
        key: "sftp.enabled",
        kind: &kind::BOOL,
        list: false,
        default: Is("true"),
        scope: Scope::Serve,
        group: &SFTP,
        help: "Serve SFTP (SSH) as well",
        example: "false",
    },
    Def {
        key: "sftp.listen",
        kind: &kind::SOCKET_ADDR,
        list: true,
        default: Is("0.0.0.0:2222,[::]:2222"),
        scope: Scope::Serve,
        group: &SFTP,
        help: "Addresses for SFTP (SSH) connections",
        example: "0.0.0.0:22",
    },
    Def {
        key: "sftp.host_keys",
        kind: &kind::PATH,
        list: true,
        default: Derived(
            "`[\"<data_dir>/ssh_host_ed25519_key\"]`, generated (ed25519) on the first start",
            "ferry-data/ssh_host_ed25519_key",
        ),
        scope: Scope::Serve,
        group: &SFTP,
        help: "SSH host key files (unencrypted OpenSSH private keys)",
        example: "/etc/ssh/ssh_host_ed25519_key",
    },
    Def {
        key: "sftp.max_auth_attempts",
        kind: &kind::COUNT,
        list: false,
        default: Is("6"),
        scope: Scope::Serve,
        group: &SFTP,
        help: "Authentication attempts per SSH connection (each password or public key offered counts)",
        example: "3",
    },
    // ----- quotas and bandwidth -----
    Def {
        key: "quota.default_bytes",
        kind: &kind::LIMIT,
        list: false,
        default: Is("0"),
        scope: Scope::Global,
        group: &QUOTA,
        help: "Bytes a user may store, for users without their own quota (0 = unlimited)",
        example: "10737418240",
    },
    Def {
        key: "quota.default_files",
        kind: &kind::LIMIT,
        list: false,
        default: Is("0"),
        scope: Scope::Global,
        group: &QUOTA,
        help: "Files a user may store, for users without their own quota (0 = unlimited)",
        example: "100000",
    },
    Def {
        key: "bandwidth.default_upload_kib",
        kind: &kind::LIMIT,
        list: false,
        default: Is("0"),
        scope: Scope::Global,
        group: &BANDWIDTH,
        help: "Upload KiB/s per user, all their sessions together, for users without their own limit (0 = unlimited)",
        example: "10240",
    },
    Def {
        key: "bandwidth.default_download_kib",
        kind: &kind::LIMIT,
        list: false,
        default: Is("0"),
        scope: Scope::Global,
        group: &BANDWIDTH,
        help: "Download KiB/s per user, all their sessions together, for users without their own limit (0 = unlimited)",
        example: "10240",
    },
];
