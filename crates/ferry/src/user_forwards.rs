//! `ferry user forward …`: where a user may forward ports over SSH (`ssh -L`).

use std::io::Write;

use anyhow::{bail, Result};
use ferry_auth::{ForwardTarget, UserStore};

use crate::cli::ForwardCommand;

/// Runs one forward command.
pub async fn run(store: &UserStore, command: ForwardCommand, out: &mut impl Write) -> Result<()> {
    match command {
        ForwardCommand::Add { name, target } => {
            let target: ForwardTarget = target.parse()?;
            store.add_forward(&name, &target).await?;
            writeln!(out, "{name} may forward to {target}")?;
        }
        ForwardCommand::Del { name, target } => {
            let target: ForwardTarget = target.parse()?;
            store.delete_forward(&name, &target).await?;
            writeln!(out, "{name} may no longer forward to {target}")?;
        }
        ForwardCommand::List { name } => {
            if store.user(&name).await?.is_none() {
                bail!("user {name:?} not found");
            }
            let targets = store.forwards(&name).await?;
            if targets.is_empty() {
                writeln!(out, "{name} may not forward ports")?;
            }
            for target in targets {
                writeln!(out, "{target}")?;
            }
        }
    }
    Ok(())
}
