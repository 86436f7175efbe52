//! `ferry user …`: manage the user database that `ferry serve` reads.

use std::io::{self, BufRead, Write};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use ferry_auth::{generate_password, NewUser, Password, Permissions, User};

use crate::cli::{PasswordArgs, UserCommand};
use crate::config::Settings;
use crate::state::{create_store, existing_store};

/// Runs one user command against the configured user database.
pub async fn run(settings: &Settings, command: UserCommand) -> Result<()> {
    let db = &settings.users_db;
    let store = match command {
        UserCommand::Add { .. } => create_store(db).await?,
        _ => existing_store(db).await?,
    };
    store.set_default_limits(settings.default_limits);
    let min = settings.min_password_length;
    let mut out = io::stdout().lock();
    match command {
        UserCommand::Add {
            name,
            password,
            home,
            permissions,
            disabled,
        } => {
            let (password, generated) = password_from(password, min)?;
            let user = NewUser {
                name: name.clone(),
                password: password.clone(),
                home,
                permissions,
            };
            store.add_user(user).await?;
            if disabled {
                store.set_enabled(&name, false).await?;
            }
            writeln!(out, "created user {name}")?;
            print_generated(&mut out, &password, generated)?;
        }
        UserCommand::Del { name } => {
            store.delete_user(&name).await?;
            writeln!(out, "deleted user {name} (their files are kept)")?;
        }
        UserCommand::List => print_table(&mut out, &store.list_users().await?)?,
        UserCommand::Show { name } => {
            let user = store
                .user(&name)
                .await?
                .ok_or_else(|| anyhow!("user {name:?} not found"))?;
            print_user(&mut out, &user)?;
            let record = store.quota(&name).await?;
            print_quota(&mut out, &record, &store.default_limits())?;
        }
        UserCommand::Quota {
            name,
            bytes,
            files,
            recount,
        } => {
            let mut record = store.quota(&name).await?;
            if bytes.is_some() || files.is_some() {
                let mut limits = record.limits;
                if let Some(b) = bytes {
                    limits.quota_bytes = b.0;
                }
                if let Some(f) = files {
                    limits.quota_files = f.0;
                }
                store.set_limits(&name, limits).await?;
            }
            if recount {
                let user = store
                    .user(&name)
                    .await?
                    .ok_or_else(|| anyhow!("user {name:?} not found"))?;
                let usage = crate::quota::count(&settings.files_root, &user.home).await?;
                store.set_usage(&name, usage).await?;
                writeln!(out, "recounted the files of {name} in storage")?;
            }
            record = store.quota(&name).await?;
            print_quota(&mut out, &record, &store.default_limits())?;
        }
        UserCommand::Limit {
            name,
            upload_kib,
            download_kib,
        } => {
            let record = store.quota(&name).await?;
            let mut limits = record.limits;
            if let Some(v) = upload_kib {
                limits.upload_kib = v.0;
            }
            if let Some(v) = download_kib {
                limits.download_kib = v.0;
            }
            store.set_limits(&name, limits).await?;
            let record = store.quota(&name).await?;
            print_quota(&mut out, &record, &store.default_limits())?;
        }
        UserCommand::Passwd { name, password } => {
            let (password, generated) = password_from(password, min)?;
            store.set_password(&name, password.clone()).await?;
            writeln!(out, "changed the password of {name}")?;
            print_generated(&mut out, &password, generated)?;
        }
        UserCommand::Perms { name, permissions } => {
            store.set_permissions(&name, permissions).await?;
            writeln!(out, "permissions of {name}: {}", permissions_label(permissions))?;
        }
        UserCommand::Home { name, home } => {
            store.set_home(&name, &home).await?;
            writeln!(out, "home of {name}: {home}")?;
        }
        UserCommand::Key(command) => crate::user_keys::run(&store, command, &mut out).await?,
        UserCommand::Forward(command) => crate::user_forwards::run(&store, command, &mut out).await?,
        UserCommand::Enable { name } => {
            store.set_enabled(&name, true).await?;
            writeln!(out, "enabled user {name}")?;
        }
        UserCommand::Disable { name } => {
            store.set_enabled(&name, false).await?;
            writeln!(out, "disabled user {name} (they can no longer log in)")?;
        }
        UserCommand::Tls {
            name,
            require_tls,
            protected_data,
            danger_allow_unresumed_data_tls,
        } => {
            let user = store
                .user(&name)
                .await?
                .ok_or_else(|| anyhow!("user {name:?} not found"))?;
            let mut tls = user.tls;
            if let Some(v) = require_tls {
                tls.require_tls = v;
            }
            if let Some(v) = protected_data {
                tls.protected_data = v;
            }
            if let Some(v) = danger_allow_unresumed_data_tls {
                tls.danger_allow_unresumed_data_tls = v;
            }
            store.set_tls(&name, tls).await?;
            writeln!(out, "FTPS settings of {name}:")?;
            print_tls(&mut out, tls)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The password the operator chose (at least `min` characters), or a generated one; `true` when
/// generated.
fn password_from(args: PasswordArgs, min: usize) -> Result<(Password, bool)> {
    if let Some(password) = args.password {
        check_length(&password, min, "--password")?;
        return Ok((password, false));
    }
    if args.password_stdin {
        let mut line = String::new();
        io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.strip_suffix('\n').unwrap_or(&line);
        let password = password.strip_suffix('\r').unwrap_or(password);
        if password.is_empty() {
            bail!("no password on standard input (expected one line)");
        }
        let password = Password::new(password.to_owned());
        check_length(&password, min, "--password-stdin")?;
        return Ok((password, false));
    }
    Ok((generate_password(), true))
}

/// A chosen password must have at least `min` characters (`min_password_length`).
fn check_length(password: &Password, min: usize, flag: &str) -> Result<()> {
    let len = password.expose().chars().count();
    if len < min {
        bail!(
            "the password given with {flag} has {len} characters; at least {min} are required (set \
             `min_password_length` / `--min-password-length`, or leave out {flag} to get a generated one)"
        );
    }
    Ok(())
}

fn print_generated(out: &mut impl Write, password: &Password, generated: bool) -> io::Result<()> {
    if generated {
        writeln!(out, "password: {}", password.expose())?;
        writeln!(out, "this generated password will not be shown again")?;
    }
    Ok(())
}

fn print_table(out: &mut impl Write, users: &[User]) -> io::Result<()> {
    if users.is_empty() {
        return writeln!(out, "no users");
    }
    let rows: Vec<[String; 4]> = users
        .iter()
        .map(|u| {
            [
                u.name.clone(),
                u.home.clone(),
                permissions_label(u.permissions),
                yes_no(u.enabled).to_owned(),
            ]
        })
        .collect();
    let header = ["NAME", "HOME", "PERMISSIONS", "ENABLED"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let [name, home, perms, enabled] = row;
        let [wn, wh, wp, _] = widths;
        writeln!(out, "{name:<wn$}  {home:<wh$}  {perms:<wp$}  {enabled}")?;
    }
    Ok(())
}

fn print_user(out: &mut impl Write, user: &User) -> io::Result<()> {
    writeln!(out, "name:        {}", user.name)?;
    writeln!(out, "home:        {}", user.home)?;
    writeln!(out, "permissions: {}", permissions_label(user.permissions))?;
    writeln!(out, "enabled:     {}", yes_no(user.enabled))?;
    writeln!(out, "created:     {}", utc_timestamp(user.created))?;
    print_tls(out, user.tls)
}

fn print_quota(
    out: &mut impl Write,
    r: &ferry_auth::QuotaRecord,
    d: &ferry_auth::DefaultLimits,
) -> io::Result<()> {
    let e = r.limits.effective(d);
    let label = |own: Option<u64>, value: u64, unit: &str| {
        let v = match value {
            0 => "unlimited".to_owned(),
            n => format!("{n}{unit}"),
        };
        match own {
            Some(_) => v,
            None => format!("{v} (default)"),
        }
    };
    writeln!(
        out,
        "quota bytes: {} used of {}",
        r.usage.bytes,
        label(r.limits.quota_bytes, e.quota_bytes, "")
    )?;
    writeln!(
        out,
        "quota files: {} used of {}",
        r.usage.files,
        label(r.limits.quota_files, e.quota_files, "")
    )?;
    writeln!(
        out,
        "upload:      {}",
        label(r.limits.upload_kib, e.upload_kib, " KiB/s")
    )?;
    writeln!(
        out,
        "download:    {}",
        label(r.limits.download_kib, e.download_kib, " KiB/s")
    )
}

fn print_tls(out: &mut impl Write, tls: ferry_auth::UserTls) -> io::Result<()> {
    let listener = "listener's setting";
    writeln!(out, "require TLS: {}", yes_no(tls.require_tls))?;
    let data = match tls.protected_data {
        Some(true) => "required",
        Some(false) => "optional",
        None => listener,
    };
    writeln!(out, "TLS data:    {data}")?;
    let unresumed = match tls.danger_allow_unresumed_data_tls {
        Some(true) => "allowed (danger)",
        Some(false) => "refused",
        None => listener,
    };
    writeln!(out, "unresumed data TLS: {unresumed}")
}

/// `all` and `none` by name, anything else as its list.
fn permissions_label(p: Permissions) -> String {
    if p == Permissions::all() {
        "all".to_owned()
    } else if p == Permissions::none() {
        "none".to_owned()
    } else {
        p.to_string()
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Formats unix seconds as `YYYY-MM-DD HH:MM:SS UTC`, using the protocol core's calendar code.
pub(crate) fn utc_timestamp(unix: i64) -> String {
    let offset = Duration::from_secs(unix.unsigned_abs());
    let t = if unix >= 0 {
        UNIX_EPOCH + offset
    } else {
        UNIX_EPOCH - offset
    };
    // `YYYYMMDDHHMMSS`; creation times are whole seconds, so there is no fraction.
    let s = ferry_proto::listing::format_mdtm(t);
    let part = |r: std::ops::Range<usize>| s.get(r).unwrap_or("??");
    format!(
        "{}-{}-{} {}:{}:{} UTC",
        part(0..4),
        part(4..6),
        part(6..8),
        part(8..10),
        part(10..12),
        part(12..14)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_formatted_in_utc() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_timestamp(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc_timestamp(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn table_columns_line_up() {
        let user = |name: &str, enabled| User {
            name: name.to_owned(),
            home: "/".to_owned(),
            permissions: ferry_auth::Permissions::all(),
            enabled,
            created: 0,
            tls: ferry_auth::UserTls::default(),
        };
        let mut out = Vec::new();
        print_table(&mut out, &[user("alice", true), user("bob-the-builder", false)]).expect("print");
        let text = String::from_utf8(out).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let col = lines[0].find("HOME").expect("HOME");
        assert!(
            lines
                .iter()
                .all(|l| l.get(col..col + 1) == Some("/") || l.contains("HOME")),
            "{text}"
        );
        assert!(lines[2].ends_with("no"), "{text}");
    }
}
