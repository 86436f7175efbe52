//! `ferry bench`: a load generator on the client library. It drives many FTP, FTPS or SFTP sessions from a
//! few threads (one tokio runtime) and reports operations per second, MB/s, latency percentiles, and the
//! CPU time spent per operation by itself and, given `--server-pid`, by the server, so a figure can be
//! read as the server's limit rather than the client's.
//!
//! What it deliberately does not do: retry (every failure is counted and reported), verify file contents
//! (sizes only), or measure memory.

mod measure;
mod report;
mod run;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ferry_client::url::Scheme;
use ferry_client::Error;

use crate::client::{ClientOptions, Ctx, Exit};

/// Most sessions one run opens (each is a socket of this process).
const MAX_SESSIONS: u32 = 20_000;
/// Largest file size for `get` and `put`.
const MAX_SIZE: u64 = 64 << 30;

/// What one operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// Connect, log in, log out (a login storm with `--sessions` at once).
    Login,
    /// Download a file of `--size` bytes (uploaded to the server first, one per session).
    Get,
    /// Upload a new file of `--size` bytes.
    Put,
    /// Open `--sessions` logged-in sessions, hold them for `--hold` seconds, then check each still answers.
    Idle,
}

/// `ferry bench URL`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The server and a directory to work in: ftp://, ftpes://, ftps:// or sftp://USER@HOST:PORT/DIR/ (user and port optional).
    /// get and put create files named ferry-bench-* there (removed afterwards unless --keep).
    pub url: String,

    /// The operation to repeat.
    #[arg(long, value_enum, default_value_t = Op::Get, help_heading = "Load")]
    pub op: Op,

    /// Sessions at once. login: connections in flight; idle: sessions held.
    #[arg(long, short = 's', value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_SESSIONS)), help_heading = "Load")]
    pub sessions: u32,

    /// Operations in all, shared among the sessions (login, get, put; idle opens --sessions).
    #[arg(long, short = 'n', value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000_000), help_heading = "Load")]
    pub count: u64,

    /// Bytes per file for get and put: a number, optionally with K, KiB, M, MiB, G or GiB (powers of 1024).
    #[arg(long, value_name = "BYTES", default_value = "4KiB", value_parser = parse_size, help_heading = "Load")]
    pub size: u64,

    /// idle: seconds to hold the sessions open before checking them.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600), help_heading = "Load")]
    pub hold: u64,

    /// Threads of the load generator (sessions are tasks, not threads).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64), help_heading = "Load")]
    pub threads: u16,

    /// Start no new operation after this many seconds; the report then says the run stopped early.
    #[arg(long, value_name = "SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400), help_heading = "Load")]
    pub max_secs: u64,

    /// The server's process id: its CPU time (with its waited-for children) is read from /proc/PID/stat
    /// before and after the run and reported per operation.
    #[arg(long, value_name = "PID", help_heading = "Load")]
    pub server_pid: Option<u32>,

    /// Leave the files that get and put created on the server.
    #[arg(long, help_heading = "Load")]
    pub keep: bool,

    #[command(flatten)]
    pub opts: ClientOptions,
}

/// Runs `ferry bench`; prints the report (text, or one JSON object with `--json`) and errors as
/// `ferry: error: …`. Exit codes as the client commands: 0 all done, 1 nothing measured, 2 bad
/// arguments, 5 some operations failed or were not done.
pub fn main(args: BenchArgs) -> ExitCode {
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.threads))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferry: error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Fatal as u8);
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = run::run(plan) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    let report = match outcome {
        None => {
            eprintln!("ferry: bench interrupted; files named ferry-bench-* may be left on the server");
            return ExitCode::from(Exit::Interrupted as u8);
        }
        Some(Err(e)) => return fail(&e),
        Some(Ok(r)) => report::Report::new(&args, r),
    };
    if args.opts.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    let exit = if report.errors > 0 || report.done < report.requested {
        Exit::Partial
    } else {
        Exit::Ok
    };
    ExitCode::from(exit as u8)
}

fn fail(e: &Error) -> ExitCode {
    eprintln!("ferry: error: {e}");
    ExitCode::from(Exit::of(e) as u8)
}

/// Checks the arguments and resolves the credentials (asking for a password at most once).
fn plan(args: &BenchArgs) -> Result<run::Plan, Error> {
    let url = Ctx::url(&args.url)?;
    if args.opts.ascii {
        return Err(Error::Usage(
            "--ascii: ferry bench transfers bytes unchanged; leave --ascii out".into(),
        ));
    }
    if args.opts.active && url.scheme == Scheme::Sftp {
        return Err(Error::Usage("--active: SFTP has no data connections".into()));
    }
    let needs_count = matches!(args.op, Op::Login | Op::Get | Op::Put);
    if needs_count && u64::from(args.sessions) > args.count {
        return Err(Error::Usage(format!(
            "--sessions {} is more than --count {}: every session needs at least one operation",
            args.sessions, args.count
        )));
    }
    if let Some(pid) = args.server_pid {
        measure::cpu_time(Some(pid), true).map_err(|e| Error::Usage(format!("--server-pid {pid}: {e}")))?;
    }
    let ctx = Ctx::new(&args.opts)?;
    let (creds, connect) = ctx.credentials_once(&url)?;
    Ok(run::Plan {
        url,
        creds,
        connect,
        op: args.op,
        sessions: args.sessions,
        count: if needs_count {
            args.count
        } else {
            u64::from(args.sessions)
        },
        size: args.size,
        hold: Duration::from_secs(args.hold),
        max: Duration::from_secs(args.max_secs),
        keep: args.keep,
        server_pid: args.server_pid,
    })
}

/// `4096`, `4K`, `4KiB`, `10MiB`, `1G` … (powers of 1024), at most 64 GiB.
fn parse_size(s: &str) -> Result<u64, String> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = s.get(digits.len()..).unwrap_or("");
    let shift = match unit {
        "" | "B" => 0,
        "K" | "k" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return Err(format!("unknown unit `{unit}` (use K, KiB, M, MiB, G or GiB)")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size such as 4096, 4KiB or 10MiB"))?;
    n.checked_mul(1 << shift)
        .filter(|&b| b <= MAX_SIZE)
        .ok_or_else(|| format!("`{s}` is more than the largest size, 64GiB"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_units_and_refuse_nonsense() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("4 KiB").is_err());
        assert!(parse_size("4KB").is_err());
        assert!(parse_size("KiB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("65GiB").is_err());
        assert!(parse_size("99999999999999999999").is_err());
    }
}
