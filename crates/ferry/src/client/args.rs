//! Flags of the client commands (`ferry get`, `put`, `ls`, …, `mirror`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// The client subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Download a remote file: `ferry get URL [LOCAL]`.
    Get(GetArgs),
    /// Upload local files: `ferry put LOCAL… URL`.
    Put(PutArgs),
    /// List a remote directory.
    Ls(LsArgs),
    /// Delete remote files.
    Rm(PathsArgs),
    /// Create remote directories.
    Mkdir(PathsArgs),
    /// Remove empty remote directories.
    Rmdir(PathsArgs),
    /// Rename a remote file or directory: `ferry mv URL NEW-PATH`.
    Mv(MvArgs),
    /// Write a remote file to standard output.
    Cat(PathsArgs),
    /// Show what a remote path is (kind, size, modification time).
    Stat(PathsArgs),
    /// Make DST a copy of directory SRC; one of them is a URL, the other a local directory.
    Mirror(MirrorArgs),
    /// An interactive session with the classic ftp commands (or a script of them on standard input).
    Shell(super::shell::ShellArgs),
}

/// Options every client command understands.
#[derive(Debug, Clone, Args)]
pub struct ClientOptions {
    /// User name (else the URL's, else ~/.netrc's, else `anonymous` for FTP and $USER for SFTP).
    /// The password comes from the URL, $FERRY_PASSWORD, ~/.netrc, or a prompt on a terminal.
    #[arg(long, short = 'u', value_name = "USER", help_heading = "Connection")]
    pub user: Option<String>,

    /// SSH private key to log in with (repeatable) [default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa].
    #[arg(long, short = 'i', value_name = "FILE", help_heading = "Connection")]
    pub identity: Vec<PathBuf>,

    /// Trust an unknown TLS certificate or SSH host key on first contact and remember it
    /// (certificates in $XDG_CONFIG_HOME/ferry/known_certs, host keys in ~/.ssh/known_hosts).
    /// A changed certificate or key is still refused.
    #[arg(long, help_heading = "Trust")]
    pub trust_on_first_use: bool,

    /// Accept only the TLS certificate with this SHA-256 fingerprint (as `ferry serve` prints it).
    #[arg(long, value_name = "SHA256:…", help_heading = "Trust")]
    pub pin: Option<String>,

    /// DANGER: accept any TLS certificate (an attacker on the path can read and change everything,
    /// password included). SSH host keys are still checked.
    #[arg(
        short = 'k',
        long = "danger-accept-any-certificate",
        visible_alias = "insecure",
        help_heading = "Trust"
    )]
    pub danger_accept_any_certificate: bool,

    /// FTP: active data connections (the server connects back to this host: EPRT, else PORT) instead
    /// of passive ones. Only connections from the server's own address are accepted.
    #[arg(long, help_heading = "Connection")]
    pub active: bool,

    /// FTP: transfer text (TYPE A): CRLF line endings on the wire, LF in local files. Not with
    /// `-c`, `-n` or `mirror` (byte offsets and sizes differ between the two forms).
    #[arg(long, help_heading = "Connection")]
    pub ascii: bool,

    /// Most connections open at once to the server: `put -j`, `mirror --parallel` and `get -n` above it
    /// are lowered to it. When the server refuses a further connection (too many), the transfer
    /// continues over the connections it has.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64), help_heading = "Connection")]
    pub max_connections: u16,

    /// Seconds to wait for connecting, a reply, or a stalled transfer.
    #[arg(long, value_name = "SECS", default_value_t = 30, help_heading = "Connection")]
    pub timeout: u64,

    /// Attempts after a retryable failure (timeouts, lost connections, 4xx replies), with
    /// exponential backoff from 1 s.
    #[arg(long, value_name = "N", default_value_t = 2, help_heading = "Connection")]
    pub retries: u32,

    /// One JSON object per file (or entry) on standard output, for scripts.
    #[arg(long, help_heading = "Output")]
    pub json: bool,

    /// No progress bars.
    #[arg(long, short = 'q', help_heading = "Output")]
    pub quiet: bool,
}

/// `ferry get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The remote file.
    pub url: String,
    /// Where to write it [default: its name, in the current directory]; `-` for standard output.
    pub local: Option<PathBuf>,
    /// Continue a partial download: keep the bytes LOCAL has and fetch the rest.
    #[arg(short = 'c', long = "continue")]
    pub resume: bool,
    /// Download the file in N byte ranges over N connections at once (FTP: REST and an early close)
    /// [default: 4 for a file of --segment-min-size or more, else 1]; `-n 1` uses one connection.
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=16), conflicts_with = "resume")]
    pub segments: Option<u16>,
    /// Without -n: files of this many MiB or more are downloaded in 4 segments (at most
    /// --max-connections).
    #[arg(long, value_name = "MIB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub segment_min_size: u64,
    #[command(flatten)]
    pub opts: ClientOptions,
}

/// `ferry put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// Local files, then the remote file or directory URL (a directory when it ends with `/`,
    /// exists, or several files are given).
    #[arg(required = true, num_args = 2..)]
    pub args: Vec<String>,
    /// Continue a partial upload: keep the bytes the remote file has and send the rest.
    #[arg(short = 'c', long = "continue")]
    pub resume: bool,
    /// Files uploaded at once, each over its own connection.
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    #[command(flatten)]
    pub opts: ClientOptions,
}

/// `ferry ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// The remote directory (or file).
    pub url: String,
    /// Long form: kind, size, modification time (UTC), name.
    #[arg(short = 'l', long)]
    pub long: bool,
    #[command(flatten)]
    pub opts: ClientOptions,
}

/// Commands that take remote paths.
#[derive(Debug, Args)]
pub struct PathsArgs {
    /// Remote URLs.
    #[arg(required = true)]
    pub urls: Vec<String>,
    #[command(flatten)]
    pub opts: ClientOptions,
}

/// `ferry mv`.
#[derive(Debug, Args)]
pub struct MvArgs {
    /// The remote file or directory.
    pub url: String,
    /// The new path on the same server (a path, or a URL of the same server).
    pub to: String,
    #[command(flatten)]
    pub opts: ClientOptions,
}

/// `ferry mirror`.
#[derive(Debug, Args)]
pub struct MirrorArgs {
    /// Source directory (URL or local path).
    pub src: String,
    /// Destination directory (local path or URL); created if missing.
    pub dst: String,
    /// Delete files and directories in DST that SRC does not have.
    #[arg(long)]
    pub delete: bool,
    /// Copy a file only when SRC's is newer than DST's (or DST has none) [default: when size or
    /// modification time differ].
    #[arg(long)]
    pub only_newer: bool,
    /// Skip names matching GLOB (`*` and `?`; repeatable; matched against each name, not the path).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Show what would be done, change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Files transferred at once, each over its own connection (at most --max-connections).
    #[arg(long, short = 'P', value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Compare files by size and modification time only, and do not verify copies, even when the server
    /// offers checksums [default: files of equal size are compared by checksum (FTP HASH/XSHA256…, SFTP
    /// check-file) and every copy is verified].
    #[arg(long)]
    pub no_checksum: bool,
    #[command(flatten)]
    pub opts: ClientOptions,
}
