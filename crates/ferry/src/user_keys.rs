//! `ferry user key …`: SSH public keys of users, for SFTP logins.

use std::io::{self, BufRead, Write};

use anyhow::{bail, Context, Result};
use ferry_auth::UserStore;

use crate::cli::KeyCommand;

/// Runs one key command.
pub async fn run(store: &UserStore, command: KeyCommand, out: &mut impl Write) -> Result<()> {
    match command {
        KeyCommand::Add { name, key, file } => {
            let lines = match (file, key.as_slice()) {
                (Some(path), _) => std::fs::read_to_string(&path)
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "cannot read --file {}: {}",
                            path.display(),
                            crate::state::cause(&e)
                        )
                    })?
                    .lines()
                    .map(str::to_owned)
                    .collect(),
                (None, []) => {
                    bail!("give the key (`ssh-ed25519 AAAA… comment`), `-` to read standard input, or --file")
                }
                (None, [dash]) if dash == "-" => io::stdin()
                    .lock()
                    .lines()
                    .collect::<io::Result<Vec<_>>>()
                    .context("cannot read standard input")?,
                (None, words) => vec![words.join(" ")],
            };
            let lines: Vec<&str> = lines
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            if lines.is_empty() {
                bail!("no key given");
            }
            for line in lines {
                let record = ferry_sftpd::keys::parse_authorized_key(line)?;
                let fingerprint = record.fingerprint.clone();
                let algorithm = record.algorithm.clone();
                store.add_key(&name, record).await?;
                writeln!(out, "added key {fingerprint} ({algorithm}) for {name}")?;
            }
        }
        KeyCommand::Del { name, fingerprint } => {
            store.delete_key(&name, &fingerprint).await?;
            writeln!(out, "removed key {fingerprint} of {name}")?;
        }
        KeyCommand::List { name } => {
            if store.user(&name).await?.is_none() {
                bail!("user {name:?} not found");
            }
            let keys = store.keys(&name).await?;
            if keys.is_empty() {
                writeln!(out, "{name} has no keys")?;
            }
            for key in keys {
                writeln!(out, "{} {} {}", key.fingerprint, key.algorithm, key.comment)?;
            }
        }
    }
    Ok(())
}
