//! Command-line flags. The flags that set configuration keys are made from the setting definitions
//! in `config::defs` (each also reads a `FERRY_*` environment variable); flags beat environment
//! variables, which beat `ferry.toml`, which beats the defaults.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ferry_auth::{Password, Permissions};

use crate::config::layer::{GlobalFlags, ServeFlags};
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
#[derive(Debug, Clone, Args)]
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

    /// `--data-dir`, `--users-db` and `--log`, made from their definitions in `config::defs`.
    #[command(flatten)]
    pub settings: GlobalFlags,
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

    /// Client commands: get, put, ls, rm, mkdir, rmdir, mv, cat, stat, mirror (docs/client.md).
    #[command(flatten)]
    Client(crate::client::ClientCommand),

    /// Load generator: many FTP, FTPS or SFTP sessions from few threads; reports op/s, MB/s, latency
    /// percentiles and CPU per operation of itself and of the server (docs/benchmarks.md).
    Bench(Box<crate::bench::BenchArgs>),

    /// Write man pages or shell completions into a directory (a packaging step).
    #[command(hide = true)]
    Generate(crate::generate::GenerateArgs),

    /// Show configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `ferry config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a ferry.toml with every key, commented out, at its default.
    Example,
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

/// Server settings; each overrides the config key of the same name (with `_` for `-`). The flags are
/// made from the definitions in `config::defs`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub settings: ServeFlags,
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

    /// Show or set a user's storage quota (bytes and files) and usage. A limit is a number (bytes
    /// take K, M, G, T suffixes, powers of 1024), `0` for unlimited, or `default` for the
    /// `quota.default_*` setting. Logged-in users follow at once.
    Quota {
        /// User name.
        name: String,
        /// Most bytes the user may store.
        #[arg(long, value_name = "SIZE|0|default", value_parser = parse_size_limit)]
        bytes: Option<LimitArg>,
        /// Most files the user may store.
        #[arg(long, value_name = "N|0|default", value_parser = parse_count_limit)]
        files: Option<LimitArg>,
        /// Count the user's files and bytes in storage and store that as their usage (for files
        /// changed outside ferry).
        #[arg(long)]
        recount: bool,
    },

    /// Show or set a user's bandwidth limits in KiB/s, shared by all their sessions (FTP and SFTP
    /// together): a number, `0` for unlimited, or `default` for the `bandwidth.default_*` setting.
    /// Logged-in users follow at once.
    Limit {
        /// User name.
        name: String,
        /// Upload KiB/s.
        #[arg(long, value_name = "KIB|0|default", value_parser = parse_count_limit)]
        upload_kib: Option<LimitArg>,
        /// Download KiB/s.
        #[arg(long, value_name = "KIB|0|default", value_parser = parse_count_limit)]
        download_kib: Option<LimitArg>,
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

    /// Manage where a user may forward ports over SSH (`ssh -L`); nowhere by default.
    #[command(subcommand)]
    Forward(ForwardCommand),
}

/// `ferry user forward …`.
#[derive(Debug, Subcommand)]
pub enum ForwardCommand {
    /// Let the user forward to HOST:PORT (`[IPV6]:PORT`; `*` for any host or any port), as OpenSSH's
    /// PermitOpen: the host is matched as the client names it, never resolved.
    Add {
        /// User name.
        name: String,
        /// HOST:PORT
        target: String,
    },

    /// Take a forwarding target away from the user.
    #[command(visible_alias = "delete")]
    Del {
        /// User name.
        name: String,
        /// HOST:PORT, as `ferry user forward list` shows it.
        target: String,
    },

    /// List where the user may forward.
    #[command(visible_alias = "ls")]
    List {
        /// User name.
        name: String,
    },
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

/// A limit given on the command line: a number (0 = unlimited), or `None` for `default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitArg(pub Option<u64>);

/// `default` (None), or a whole number.
fn parse_count_limit(s: &str) -> Result<LimitArg, String> {
    match s.trim() {
        "default" => Ok(LimitArg(None)),
        n => n
            .parse::<u64>()
            .map(|n| LimitArg(Some(n)))
            .map_err(|_| format!("{s:?}: expected a whole number, 0 for unlimited, or `default`")),
    }
}

/// `default` (None), or a size in bytes with an optional K, M, G or T suffix (powers of 1024).
fn parse_size_limit(s: &str) -> Result<LimitArg, String> {
    let t = s.trim();
    if t == "default" {
        return Ok(LimitArg(None));
    }
    let bad = || format!("{s:?}: expected a size such as 500M or 10G, 0 for unlimited, or `default`");
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(bad()),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1u64 << shift)
        .map(|n| LimitArg(Some(n)))
        .ok_or_else(bad)
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn limits_parse_sizes_zero_and_default() {
        assert_eq!(parse_size_limit("10G"), Ok(LimitArg(Some(10 << 30))));
        assert_eq!(parse_size_limit("1536"), Ok(LimitArg(Some(1536))));
        assert_eq!(parse_size_limit("0"), Ok(LimitArg(Some(0))));
        assert_eq!(parse_size_limit("default"), Ok(LimitArg(None)));
        assert!(parse_size_limit("10X").is_err());
        assert!(parse_size_limit("99999999999T").is_err());
        assert_eq!(parse_count_limit("512"), Ok(LimitArg(Some(512))));
        assert!(parse_count_limit("-1").is_err());
    }
}
