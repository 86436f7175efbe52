//! `ferry ban …`: list, add and lift bans of client addresses in the user database, which every
//! `ferry serve` sharing that database reloads every few seconds.

use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use ferry_auth::defender::{Ban, Defender};

use crate::cli::BanCommand;
use crate::config::Settings;
use crate::state::{create_store, existing_store};
use crate::user::utc_timestamp;

/// Runs one ban command against the configured user database.
pub async fn run(settings: &Settings, command: BanCommand) -> Result<()> {
    let db = &settings.users_db;
    let store = match command {
        BanCommand::Add { .. } => create_store(db).await?,
        BanCommand::List | BanCommand::Del { .. } => existing_store(db).await?,
    };
    let defender = Defender::new(settings.ftpd.defender.clone(), Some(store));
    let mut out = io::stdout().lock();
    match command {
        BanCommand::List => print_table(&mut out, &defender.active_bans().await?, SystemTime::now())?,
        BanCommand::Add { ip, secs, reason } => {
            let ban = defender.ban(ip, Duration::from_secs(secs), &reason).await?;
            writeln!(out, "banned {} until {}", ban.ip, utc_timestamp(unix(ban.until)))?;
            if defender.is_allow_listed(ip) {
                writeln!(
                    out,
                    "note: {ip} is in defender.allow_list, which wins: the ban has no effect while it is"
                )?;
            } else if defender.is_exempt(ip) {
                writeln!(
                    out,
                    "note: {ip} is a loopback address, never banned unless defender.score_loopback is on: \
                     the ban has no effect until it is"
                )?;
            }
        }
        BanCommand::Del { ip } => {
            if defender.unban(ip).await? {
                writeln!(out, "lifted the ban on {ip}")?;
            } else {
                writeln!(out, "{ip} was not banned")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn print_table(out: &mut impl Write, bans: &[Ban], now: SystemTime) -> io::Result<()> {
    if bans.is_empty() {
        return writeln!(out, "no bans");
    }
    let width = bans
        .iter()
        .map(|b| b.ip.to_string().len())
        .max()
        .unwrap_or(0)
        .max("ADDRESS".len());
    writeln!(
        out,
        "{:width$}  {:23}  {:>8}  {:>4}  REASON",
        "ADDRESS", "UNTIL", "LEFT", "BANS"
    )?;
    for b in bans {
        let left = b.until.duration_since(now).map_or(0, |d| d.as_secs());
        writeln!(
            out,
            "{:width$}  {:23}  {:>7}s  {:>4}  {}",
            b.ip.to_string(),
            utc_timestamp(unix(b.until)),
            left,
            b.count,
            b.reason.replace(|c: char| c.is_control(), " ")
        )?;
    }
    Ok(())
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
