//! The client commands: `ferry get/put/ls/rm/mkdir/rmdir/mv/cat/stat/mirror/shell`, on top of `ferry-client`.
//!
//! This module resolves credentials (URL, `--user`, `$FERRY_PASSWORD`, `~/.netrc`, a no-echo prompt),
//! builds the trust options, shows progress on a terminal, prints results (text or `--json`) and maps
//! failures to the documented exit codes.

mod args;
mod commands;
mod creds;
mod history;
mod local;
mod mirror;
mod output;
mod session;
mod shell;

use std::process::ExitCode;

pub use args::ClientCommand;
pub(crate) use args::ClientOptions;
pub(crate) use session::Ctx;

/// Exit codes of the client commands (docs/client.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: everything done.
    Ok = 0,
    /// 1: a fatal error (refused, login failed, untrusted server, protocol violation, local error).
    Fatal = 1,
    /// 2: wrong usage (bad URL or arguments).
    Usage = 2,
    /// 3: a remote or local file or directory does not exist.
    NotFound = 3,
    /// 4: a retryable error persisted after the retries (timeouts, lost connections, 4xx replies).
    Retryable = 4,
    /// 5: some files were transferred, some failed.
    Partial = 5,
    /// 130: interrupted (Ctrl-C); partial downloads were removed.
    Interrupted = 130,
}

impl Exit {
    /// The exit code for `e`.
    pub fn of(e: &ferry_client::Error) -> Exit {
        use ferry_client::Error as E;
        match e {
            E::Usage(_) => Exit::Usage,
            E::NotFound(_) => Exit::NotFound,
            E::Local { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Exit::NotFound,
            e if e.is_retryable() => Exit::Retryable,
            _ => Exit::Fatal,
        }
    }
}

/// After Ctrl-C: removes the temporary files of unfinished downloads.
pub fn interrupted() -> Exit {
    let n = commands::remove_parts();
    eprintln!("ferry: interrupted; {n} unfinished download(s) removed");
    Exit::Interrupted
}

/// Runs a client command; prints errors as `ferry: error: …`.
pub fn main(command: ClientCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferry: error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Fatal as u8);
        }
    };
    let exit = match command {
        ClientCommand::Shell(args) => shell::run(&runtime, args),
        command => runtime.block_on(async {
            tokio::select! {
                exit = commands::run(command) => exit,
                _ = tokio::signal::ctrl_c() => interrupted(),
            }
        }),
    };
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(exit as u8)
}
