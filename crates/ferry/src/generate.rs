//! `ferry generate man|completions DIR`: man pages and shell completions written from the same
//! command-line definition `ferry --help` shows, so they cannot drift from it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::Shell;

use crate::cli::Cli;

/// `ferry generate …` (hidden: a packaging step, not an everyday command).
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to write.
    #[arg(value_enum)]
    pub what: Generated,
    /// Directory to write the files into (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// The kinds of generated files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generated {
    /// Man pages: ferry.1 and one page per subcommand (ferry-serve.1, ferry-user-add.1, …).
    Man,
    /// Completion scripts for bash, zsh, fish, elvish and PowerShell.
    Completions,
}

/// Writes the requested files and lists them on standard output.
pub fn run(args: &GenerateArgs) -> Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create the directory {}", args.dir.display()))?;
    let written = match args.what {
        Generated::Man => man(&args.dir)?,
        Generated::Completions => completions(&args.dir)?,
    };
    // A closed standard output (`… | head`) is an error main() ends quietly, not a panic.
    let mut out = std::io::stdout().lock();
    for path in written {
        writeln!(out, "{}", path.display())?;
    }
    out.flush()?;
    Ok(())
}

fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Fills in the subcommands' bin names (`ferry user add`) and page names (`ferry-user-add`).
    cmd.build();
    cmd
}

/// One page per command and subcommand, hidden ones left out.
fn man(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    write_pages(&command(), dir, &mut written)?;
    Ok(written)
}

fn write_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<()> {
    let path = clap_mangen::Man::new(cmd.clone())
        .generate_to(dir)
        .with_context(|| {
            format!(
                "cannot write the man page of `{}` into {}",
                cmd.get_name(),
                dir.display()
            )
        })?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}

fn completions(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut cmd = command();
    let mut written = Vec::new();
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::PowerShell,
    ] {
        let path = clap_complete::generate_to(shell, &mut cmd, "ferry", dir)
            .with_context(|| format!("cannot write the {shell} completions into {}", dir.display()))?;
        written.push(path);
    }
    Ok(written)
}
