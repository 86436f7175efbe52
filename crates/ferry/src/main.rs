//! The `ferry` command: turns flags, `FERRY_*` environment variables and `ferry.toml` into validated
//! settings, then runs the FTP server (`ferry serve`), manages users (`ferry user …`) or bans
//! (`ferry ban …`).
//!
//! This crate is deliberately thin: it parses configuration, sets up logging, binds sockets, waits
//! for signals and prints what an operator needs to see. Everything FTP means lives in `ferry-proto`,
//! everything the server does on the network in `ferry-ftpd`, users in `ferry-auth` and files in
//! `ferry-vfs`. It is the only crate that uses `anyhow`, prints, or installs a tracing subscriber.
#![forbid(unsafe_code)]

mod admin;
mod ban;
mod bench;
mod cli;
mod client;
mod config;
mod generate;
mod logging;
mod quota;
mod reload;
mod serve;
mod state;
mod storage;
mod sweep;
mod user;
mod user_forwards;
mod user_keys;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use cli::{Cli, Command, ServeArgs};

/// How long to wait for stray blocking work (e.g. a password hash) when the runtime stops.
const RUNTIME_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Client(command) = cli.command {
        return client::main(command);
    }
    if let Command::Bench(args) = cli.command {
        return bench::main(*args);
    }
    let serving = matches!(cli.command, Command::Serve(_));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `ferry user list | head -1`: the reader has all it wanted; that is not an error. (A server
        // that cannot print its announcements still stops with the error.)
        Err(e) if !serving && is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry: error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: libraries often repeat their source in their own message
/// (`… (os error 2): … (os error 2)`), so a cause already contained in the text so far is left out.
pub(crate) fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if part.is_empty() || text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Whether the error is a write to a closed standard output (a pipe whose reader has exited).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<()> {
    // Packaging needs neither settings nor a runtime.
    if let Command::Generate(args) = &cli.command {
        return generate::run(args);
    }
    if let Command::Config(cli::ConfigCommand::Example) = cli.command {
        print!("{}", config::reference::example_file(true));
        return Ok(());
    }
    let rust_log = std::env::var("RUST_LOG").ok().filter(|s| !s.is_empty());
    let no_serve_flags = ServeArgs::default();
    let serve_args = match &cli.command {
        Command::Serve(args) => args.as_ref(),
        Command::User(_)
        | Command::Ban(_)
        | Command::Config(_)
        | Command::Client(_)
        | Command::Bench(_)
        | Command::Generate(_) => &no_serve_flags,
    };
    let settings = config::load(&cli.common, serve_args, rust_log.as_deref())?;
    // User commands are quiet unless asked otherwise; the server reports its progress.
    let default_log = match cli.command {
        // rustls warns about every client quirk (an IP address sent as SNI, say); ferry logs what matters.
        Command::Serve(_) => "info,rustls=error",
        Command::User(_)
        | Command::Ban(_)
        | Command::Config(_)
        | Command::Client(_)
        | Command::Bench(_)
        | Command::Generate(_) => "warn",
    };
    let filter = settings.log.as_deref().unwrap_or(default_log);
    match cli.command {
        Command::Serve(_) => logging::init(
            filter,
            settings.observe.log_format,
            settings.observe.log_file.as_deref(),
        )?,
        _ => logging::init(filter, config::observe::LogFormat::Text, None)?,
    }
    // SIGHUP reads the configuration again, from the same file, variables and flags.
    let reload = {
        let (common, serve_args) = (cli.common.clone(), serve_args.clone());
        move || config::load(&common, &serve_args, rust_log.as_deref())
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = match cli.command {
        Command::Serve(_) => runtime.block_on(serve::run(settings, reload)),
        Command::User(command) => runtime.block_on(user::run(&settings, command)),
        Command::Ban(command) => runtime.block_on(ban::run(&settings, command)),
        Command::Config(_) | Command::Client(_) | Command::Bench(_) | Command::Generate(_) => Ok(()),
    };
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_GRACE);
    logging::flush();
    result
}
