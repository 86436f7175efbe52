//! Directory listing formats: `LIST` (`/bin/ls -l` style), `NLST`, `MLSD`/`MLST` facts (RFC 3659 §7), and the
//! `MDTM`/`MFMT` time format (RFC 3659 §2.3), plus the client-flag handling of `LIST`/`NLST` arguments.
//!
//! Everything is UTC and computed by hand from the Unix epoch (no time-zone database, no clock: "now" is
//! passed in). Names are raw bytes and are copied as-is, except that `CR` and `LF` inside a name are
//! neutralised (see [`write_name`]) so a hostile file name can never forge extra listing or reply lines.
//!
//! What it does not do: read directories, decide permissions, or parse listings received from other
//! servers (that is the client's business).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What kind of filesystem object an [`Entry`] is (the storage layer's own type).
pub use ferry_vfs_types::EntryKind;

/// One directory entry, as the storage layer describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file name (a single component, raw bytes, not necessarily UTF-8).
    pub name: Vec<u8>,
    /// The kind of object.
    pub kind: EntryKind,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, if known.
    pub modified: Option<SystemTime>,
    /// Unix permission bits (e.g. `0o644`), if known.
    pub mode: Option<u32>,
    /// Number of hard links (shown as at least 1).
    pub nlink: u64,
    /// A stable unique identifier for the MLSx `unique` fact (e.g. device and inode), if known.
    pub unique: Option<String>,
}

/// What the logged-in user may do with an entry; rendered as the MLSx `perm` fact (RFC 3659 §7.5.5).
/// The storage layer's own permission type.
pub use ferry_vfs_types::Permissions as FactPerms;

/// The arguments of `LIST`/`NLST`, with client flags (`-a`, `-l`, `-al` …) separated from the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListArgs {
    /// The flag letters given after `-`, concatenated in order (`-a -l` gives `b"al"`). Advisory only.
    pub flags: Vec<u8>,
    /// The path to list, if one was given.
    pub path: Option<Vec<u8>>,
}

/// The `MLST` line for `FEAT`, listing the supported facts, all enabled by default (RFC 3659 §7.8).
pub const MLST_FACTS_FEAT: &str = "MLST type*;size*;modify*;perm*;unique*;unix.mode*;";

/// Seconds before "now" within which `LIST` shows a time of day instead of a year (about six months).
const RECENT_PAST_SECS: i64 = 15_552_000;
/// Seconds after "now" still shown with a time of day (clock skew allowance).
const RECENT_FUTURE_SECS: i64 = 3_600;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Append one `LIST` line in `/bin/ls -l` form, terminated by CRLF.
///
/// For example `drwxr-xr-x 1 ftp ftp         4096 Jan 02 15:04 name`. The time is shown as `Mon DD HH:MM`
/// when `modified` lies within about six months before `now` (and at most an hour after it), otherwise as
/// `Mon DD  YYYY`. A missing time is shown as the Unix epoch; a missing mode as `0644` (files) or `0755`
/// (directories).
pub fn write_list_line(out: &mut Vec<u8>, e: &Entry, now: SystemTime) {
    let type_char = match e.kind {
        EntryKind::Dir => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::File | EntryKind::Other => '-',
    };
    let mode = e
        .mode
        .unwrap_or(if e.kind == EntryKind::Dir { 0o755 } else { 0o644 });
    let mut line = String::with_capacity(64);
    line.push(type_char);
    line.push_str(&perm_string(mode));

    let (secs, _) = unix_parts(e.modified.unwrap_or(UNIX_EPOCH));
    let (now_secs, _) = unix_parts(now);
    let civil = Civil::from_unix(secs);
    let month = MONTHS
        .get(civil.month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("Jan");
    let recent = secs > now_secs.saturating_sub(RECENT_PAST_SECS)
        && secs <= now_secs.saturating_add(RECENT_FUTURE_SECS);
    let when = if recent {
        format!("{month} {:02} {:02}:{:02}", civil.day, civil.hour, civil.minute)
    } else {
        format!("{month} {:02}  {:04}", civil.day, civil.year)
    };
    line.push_str(&format!(" {} ftp ftp {:>12} {when} ", e.nlink.max(1), e.size));
    out.extend_from_slice(line.as_bytes());
    write_name(out, &e.name);
    out.extend_from_slice(b"\r\n");
}

/// Append one `NLST` line: the name, terminated by CRLF.
pub fn write_nlst_line(out: &mut Vec<u8>, name: &[u8]) {
    write_name(out, name);
    out.extend_from_slice(b"\r\n");
}

/// Append the MLSx facts and name for one entry, e.g.
/// `type=file;size=12;modify=20240101120000;perm=rw;unique=801g1;unix.mode=0644; name`.
///
/// No leading space and no CRLF: `MLSD` adds the CRLF, `MLST` adds the leading space and the reply framing.
/// `size` is given for files only; `modify`, `unique` and `unix.mode` only when known. Characters that
/// cannot appear in a fact value (`;`, space, controls, non-ASCII) are dropped from `unique`.
pub fn write_mlsx_facts(out: &mut Vec<u8>, e: &Entry, perms: FactPerms) {
    let mut facts = String::with_capacity(96);
    facts.push_str(match e.kind {
        EntryKind::File => "type=file;",
        EntryKind::Dir => "type=dir;",
        EntryKind::Symlink => "type=OS.unix=symlink;",
        EntryKind::Other => "type=OS.unix=other;",
    });
    if e.kind == EntryKind::File {
        facts.push_str(&format!("size={};", e.size));
    }
    if let Some(t) = e.modified {
        facts.push_str(&format!("modify={};", format_mdtm(t)));
    }
    facts.push_str("perm=");
    let letters: &[(bool, char)] = if e.kind == EntryKind::Dir {
        &[
            (perms.write, 'c'),
            (perms.delete, 'd'),
            (perms.list, 'e'),
            (perms.rename, 'f'),
            (perms.list, 'l'),
            (perms.mkdir, 'm'),
            (perms.delete, 'p'),
        ]
    } else {
        &[
            (perms.write, 'a'),
            (perms.delete, 'd'),
            (perms.rename, 'f'),
            (perms.read, 'r'),
            (perms.write, 'w'),
        ]
    };
    facts.extend(letters.iter().filter(|(on, _)| *on).map(|(_, c)| *c));
    facts.push(';');
    if let Some(unique) = &e.unique {
        let clean: String = unique
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != ';')
            .collect();
        if !clean.is_empty() {
            facts.push_str(&format!("unique={clean};"));
        }
    }
    if let Some(mode) = e.mode {
        facts.push_str(&format!("unix.mode={:04o};", mode & 0o7777));
    }
    facts.push(' ');
    out.extend_from_slice(facts.as_bytes());
    write_name(out, &e.name);
}

/// Append a file name to a listing line, neutralising line breaks.
///
/// Bytes are copied as-is except: `CR` is sent as `CR NUL` (the RFC 959 / RFC 3659 §2.2 convention for a
/// carriage return inside a pathname), and `LF` is sent as `NUL`, since a bare `LF` would end the line for
/// most clients and let a file name forge listing entries or control replies.
pub fn write_name(out: &mut Vec<u8>, name: &[u8]) {
    for &b in name {
        match b {
            b'\r' => out.extend_from_slice(b"\r\0"),
            b'\n' => out.push(0),
            _ => out.push(b),
        }
    }
}

/// Format a time as UTC `YYYYMMDDHHMMSS`, with `.sss` appended only when the milliseconds are not zero
/// (RFC 3659 `time-val`). Times outside years 0000–9999 are clamped to that range.
pub fn format_mdtm(t: SystemTime) -> String {
    let (secs, nanos) = unix_parts(t);
    let (secs, millis) = if secs < MIN_SECS {
        (MIN_SECS, 0)
    } else if secs > MAX_SECS {
        (MAX_SECS, 999)
    } else {
        (secs, nanos / 1_000_000)
    };
    let c = Civil::from_unix(secs);
    let mut s = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    if millis != 0 {
        s.push_str(&format!(".{millis:03}"));
    }
    s
}

/// Parse a UTC `YYYYMMDDHHMMSS` time with an optional `.s`, `.ss` or `.sss` fraction (as sent by `MFMT`
/// and the `MDTM` set form).
///
/// Returns `None` unless the text is exactly that shape with every field in range (month 1–12, day valid
/// for the month, hour 0–23, minute and second 0–59).
pub fn parse_mdtm(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let (main, frac) = match b.get(14) {
        None => (b, &[][..]),
        Some(b'.') => (b.get(..14)?, b.get(15..)?),
        Some(_) => return None,
    };
    if main.len() != 14 || !main.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 14 && (frac.is_empty() || frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit)) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        main.get(r)?
            .iter()
            .try_fold(0i64, |acc, d| Some(acc * 10 + i64::from(d.checked_sub(b'0')?)))
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(8..10)?, num(10..12)?, num(12..14)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let millis = frac
        .iter()
        .chain(std::iter::repeat(&b'0'))
        .take(3)
        .try_fold(0u64, |acc, d| Some(acc * 10 + u64::from(d.checked_sub(b'0')?)))?;
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    let base = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))?
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))?
    };
    base.checked_add(Duration::from_millis(millis))
}

/// Split a `LIST`/`NLST` argument into client flags and path.
///
/// Leading words starting with `-` are flags (`-al`, `-a -l`); `--` ends the flags. Whatever follows is the
/// path, spaces included. Surrounding whitespace is trimmed. An argument not starting with `-` is always
/// entirely a path.
pub fn parse_list_args(arg: Option<&[u8]>) -> ListArgs {
    let mut rest = arg.unwrap_or_default().trim_ascii();
    let mut flags = Vec::new();
    while let Some(after_dash) = rest.strip_prefix(b"-") {
        let end = after_dash
            .iter()
            .position(u8::is_ascii_whitespace)
            .unwrap_or(after_dash.len());
        let (word, tail) = after_dash.split_at(end);
        rest = tail.trim_ascii();
        if word == b"-" {
            break;
        }
        flags.extend_from_slice(word);
    }
    ListArgs {
        flags,
        path: if rest.is_empty() {
            None
        } else {
            Some(rest.to_vec())
        },
    }
}

/// `rwxr-xr-x` from permission bits, including setuid/setgid/sticky (`s`/`S`, `t`/`T`).
fn perm_string(mode: u32) -> String {
    let bit = |mask: u32, c: char| if mode & mask != 0 { c } else { '-' };
    let special = |exec: bool, special: bool, on: char, off: char| match (exec, special) {
        (true, true) => on,
        (false, true) => off,
        (true, false) => 'x',
        (false, false) => '-',
    };
    let mut s = String::with_capacity(9);
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(mode & 0o100 != 0, mode & 0o4000 != 0, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(mode & 0o010 != 0, mode & 0o2000 != 0, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(mode & 0o001 != 0, mode & 0o1000 != 0, 't', 'T'));
    s
}

/// Seconds of 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z relative to the Unix epoch.
const MIN_SECS: i64 = -62_167_219_200;
const MAX_SECS: i64 = 253_402_300_799;

/// Whole seconds (floored) and nanoseconds since the Unix epoch, saturating far outside any real date.
pub(crate) fn unix_parts(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).map(|s| -s).unwrap_or(i64::MIN + 1);
            match d.subsec_nanos() {
                0 => (secs, 0),
                n => (secs.saturating_sub(1), 1_000_000_000 - n),
            }
        }
    }
}

/// A UTC calendar date and time of day (years 0 to 9999; times outside are clamped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// The year.
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 to 59.
    pub second: u32,
    /// Day of the week, 0 = Sunday.
    pub weekday: u32,
}

impl Civil {
    /// The UTC date and time of `t`, to the second (floored).
    pub fn from_system_time(t: SystemTime) -> Civil {
        Civil::from_unix(unix_parts(t).0)
    }

    /// Break seconds since the Unix epoch into a proleptic Gregorian date and time (UTC).
    pub(crate) fn from_unix(secs: i64) -> Civil {
        let secs = secs.clamp(MIN_SECS, MAX_SECS);
        let days = secs.div_euclid(86_400);
        let tod = secs.rem_euclid(86_400);
        // Civil-from-days over 400-year eras (146097 days each), with years starting on 1 March.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month: month as u32,
            day: day as u32,
            hour: (tod / 3_600) as u32,
            minute: (tod % 3_600 / 60) as u32,
            second: (tod % 60) as u32,
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (inverse of [`Civil::from_unix`]).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-02T15:04:05Z.
    const T0: u64 = 1_704_207_845;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn entry(name: &[u8], kind: EntryKind) -> Entry {
        Entry {
            name: name.to_vec(),
            kind,
            size: 4096,
            modified: Some(at(T0)),
            mode: None,
            nlink: 1,
            unique: None,
        }
    }

    fn list(e: &Entry, now: SystemTime) -> String {
        let mut out = Vec::new();
        write_list_line(&mut out, e, now);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn facts(e: &Entry, perms: FactPerms) -> Vec<u8> {
        let mut out = Vec::new();
        write_mlsx_facts(&mut out, e, perms);
        out
    }

    #[test]
    fn list_line_for_recent_directory_shows_time_of_day() {
        let e = entry(b"name", EntryKind::Dir);
        assert_eq!(
            list(&e, at(T0 + 60)),
            "drwxr-xr-x 1 ftp ftp         4096 Jan 02 15:04 name\r\n"
        );
    }

    #[test]
    fn list_line_for_old_file_shows_year_with_two_spaces() {
        let mut e = entry(b"f.txt", EntryKind::File);
        e.size = 12;
        e.mode = Some(0o600);
        e.nlink = 3;
        let now = at(T0 + 200 * 86_400);
        assert_eq!(
            list(&e, now),
            "-rw------- 3 ftp ftp           12 Jan 02  2024 f.txt\r\n"
        );
    }

    #[test]
    fn list_line_for_future_file_shows_year() {
        let e = entry(b"f", EntryKind::File);
        assert!(list(&e, at(T0 - 7_200)).contains("Jan 02  2024 f"));
        assert!(list(&e, at(T0 - 1_800)).contains("Jan 02 15:04 f"));
    }

    #[test]
    fn list_line_defaults_missing_fields() {
        let mut e = entry(b"f", EntryKind::File);
        e.modified = None;
        e.nlink = 0;
        assert_eq!(
            list(&e, at(T0)),
            "-rw-r--r-- 1 ftp ftp         4096 Jan 01  1970 f\r\n"
        );
    }

    #[test]
    fn list_line_type_characters() {
        assert!(list(&entry(b"l", EntryKind::Symlink), at(T0)).starts_with("lrw-r--r-- "));
        assert!(list(&entry(b"o", EntryKind::Other), at(T0)).starts_with("-rw-r--r-- "));
    }

    #[test]
    fn list_line_renders_special_mode_bits() {
        let mut e = entry(b"x", EntryKind::File);
        e.mode = Some(0o7755);
        assert!(list(&e, at(T0)).starts_with("-rwsr-sr-t "));
        e.mode = Some(0o7644);
        assert!(list(&e, at(T0)).starts_with("-rwSr-Sr-T "));
    }

    #[test]
    fn list_line_copies_non_utf8_names() {
        let mut out = Vec::new();
        write_list_line(&mut out, &entry(b"caf\xe9 x", EntryKind::File), at(T0));
        assert!(out.ends_with(b" caf\xe9 x\r\n"));
    }

    #[test]
    fn line_breaks_in_names_cannot_forge_lines() {
        let mut out = Vec::new();
        write_nlst_line(&mut out, b"a\r\n226 fake\n");
        assert_eq!(out, b"a\r\0\x00226 fake\x00\r\n");
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
    }

    #[test]
    fn nlst_line_is_name_and_crlf() {
        let mut out = Vec::new();
        write_nlst_line(&mut out, b"file name");
        assert_eq!(out, b"file name\r\n");
    }

    #[test]
    fn mlsx_facts_for_file() {
        let mut e = entry(b"f.txt", EntryKind::File);
        e.size = 12;
        e.mode = Some(0o644);
        e.unique = Some("801g1".into());
        e.modified = Some(at(1_704_110_400));
        let perms = FactPerms {
            read: true,
            write: true,
            ..FactPerms::default()
        };
        assert_eq!(
            facts(&e, perms),
            b"type=file;size=12;modify=20240101120000;perm=arw;unique=801g1;unix.mode=0644; f.txt"
        );
    }

    #[test]
    fn mlsx_facts_for_directory_omit_size_and_use_directory_letters() {
        let mut e = entry(b"d", EntryKind::Dir);
        e.modified = None;
        let all = FactPerms {
            read: true,
            write: true,
            delete: true,
            rename: true,
            mkdir: true,
            list: true,
        };
        assert_eq!(facts(&e, all), b"type=dir;perm=cdeflmp; d");
        let list_only = FactPerms {
            list: true,
            ..FactPerms::default()
        };
        assert_eq!(facts(&e, list_only), b"type=dir;perm=el; d");
    }

    #[test]
    fn mlsx_facts_for_file_with_all_permissions() {
        let mut e = entry(b"f", EntryKind::File);
        e.modified = None;
        let all = FactPerms {
            read: true,
            write: true,
            delete: true,
            rename: true,
            mkdir: true,
            list: true,
        };
        assert_eq!(facts(&e, all), b"type=file;size=4096;perm=adfrw; f");
        assert_eq!(facts(&e, FactPerms::default()), b"type=file;size=4096;perm=; f");
    }

    #[test]
    fn mlsx_types_for_symlink_and_other() {
        let mut e = entry(b"l", EntryKind::Symlink);
        e.modified = None;
        assert!(facts(&e, FactPerms::default()).starts_with(b"type=OS.unix=symlink;perm=;"));
        e.kind = EntryKind::Other;
        assert!(facts(&e, FactPerms::default()).starts_with(b"type=OS.unix=other;perm=;"));
    }

    #[test]
    fn mlsx_unique_is_sanitised() {
        let mut e = entry(b"f", EntryKind::Dir);
        e.modified = None;
        e.unique = Some("a; b\r\n=c".into());
        assert_eq!(facts(&e, FactPerms::default()), b"type=dir;perm=;unique=ab=c; f");
        e.unique = Some(" ; ".into());
        assert_eq!(facts(&e, FactPerms::default()), b"type=dir;perm=; f");
    }

    #[test]
    fn mlsx_name_may_contain_spaces_and_semicolons() {
        let mut e = entry(b" a;b=c ", EntryKind::Dir);
        e.modified = None;
        assert_eq!(facts(&e, FactPerms::default()), b"type=dir;perm=;  a;b=c ");
    }

    #[test]
    fn mdtm_format_without_and_with_millis() {
        assert_eq!(format_mdtm(at(T0)), "20240102150405");
        assert_eq!(
            format_mdtm(at(T0) + Duration::from_millis(7)),
            "20240102150405.007"
        );
        assert_eq!(format_mdtm(at(T0) + Duration::from_micros(999)), "20240102150405");
        assert_eq!(format_mdtm(UNIX_EPOCH), "19700101000000");
    }

    #[test]
    fn mdtm_format_before_the_epoch() {
        assert_eq!(format_mdtm(UNIX_EPOCH - Duration::from_secs(1)), "19691231235959");
        assert_eq!(
            format_mdtm(UNIX_EPOCH - Duration::from_millis(1)),
            "19691231235959.999"
        );
    }

    #[test]
    fn mdtm_parse_accepts_valid_times() {
        assert_eq!(parse_mdtm("20240102150405"), Some(at(T0)));
        assert_eq!(
            parse_mdtm("20240102150405.5"),
            Some(at(T0) + Duration::from_millis(500))
        );
        assert_eq!(
            parse_mdtm("20240102150405.05"),
            Some(at(T0) + Duration::from_millis(50))
        );
        assert_eq!(
            parse_mdtm("20240102150405.123"),
            Some(at(T0) + Duration::from_millis(123))
        );
        assert_eq!(parse_mdtm("20240229000000"), Some(at(1_709_164_800)));
        assert_eq!(
            parse_mdtm("19691231235959"),
            Some(UNIX_EPOCH - Duration::from_secs(1))
        );
    }

    #[test]
    fn mdtm_parse_rejects_malformed_or_out_of_range() {
        for bad in [
            "",
            "2024010215040",
            "202401021504055",
            "2024010215040a",
            "20240102150405.",
            "20240102150405.1234",
            "20240102150405.x",
            "20240102150405 ",
            " 20240102150405",
            "+2024010215040",
            "20241302150405",
            "20240002150405",
            "20240100150405",
            "20230229000000",
            "20240431000000",
            "20240102240000",
            "20240102156000",
            "20240102150460",
            "２０２４0102150405",
        ] {
            assert_eq!(parse_mdtm(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn mdtm_round_trips_over_many_times() {
        let mut t: i64 = -2_000_000_000;
        while t < 5_000_000_000 {
            let st = if t >= 0 {
                UNIX_EPOCH + Duration::from_secs(t as u64)
            } else {
                UNIX_EPOCH - Duration::from_secs(t.unsigned_abs())
            };
            let st = st + Duration::from_millis((t.unsigned_abs() % 1000) / 3);
            assert_eq!(parse_mdtm(&format_mdtm(st)), Some(st), "{t}");
            t += 7_654_321;
        }
    }

    #[test]
    fn civil_conversion_matches_days_from_civil() {
        for days in (-700_000..700_000).step_by(97) {
            let c = Civil::from_unix(days * 86_400);
            assert_eq!(
                days_from_civil(c.year, i64::from(c.month), i64::from(c.day)),
                days
            );
        }
    }

    #[test]
    fn far_times_are_clamped() {
        assert_eq!(
            format_mdtm(UNIX_EPOCH + Duration::from_secs(1 << 40)),
            "99991231235959.999"
        );
        assert_eq!(
            format_mdtm(UNIX_EPOCH - Duration::from_secs(100_000_000_000)),
            "00000101000000"
        );
    }

    fn args(s: &str) -> ListArgs {
        parse_list_args(Some(s.as_bytes()))
    }

    fn la(flags: &str, path: Option<&str>) -> ListArgs {
        ListArgs {
            flags: flags.as_bytes().to_vec(),
            path: path.map(|p| p.as_bytes().to_vec()),
        }
    }

    #[test]
    fn list_args_without_argument() {
        assert_eq!(parse_list_args(None), la("", None));
        assert_eq!(args(""), la("", None));
        assert_eq!(args("   "), la("", None));
    }

    #[test]
    fn list_args_flags_then_path() {
        assert_eq!(args("-al /dir"), la("al", Some("/dir")));
        assert_eq!(args("-l"), la("l", None));
        assert_eq!(args("-a -l dir name"), la("al", Some("dir name")));
        assert_eq!(args("  -la\t /x  "), la("la", Some("/x")));
    }

    #[test]
    fn list_args_plain_path_is_kept_whole() {
        assert_eq!(args("dir with spaces"), la("", Some("dir with spaces")));
        assert_eq!(args("a -l"), la("", Some("a -l")));
    }

    #[test]
    fn list_args_double_dash_ends_flags() {
        assert_eq!(args("-l -- -weird"), la("l", Some("-weird")));
        assert_eq!(args("-"), la("", None));
    }

    #[test]
    fn feat_line_lists_enabled_facts() {
        assert!(MLST_FACTS_FEAT.starts_with("MLST "));
        for fact in [
            "type*;",
            "size*;",
            "modify*;",
            "perm*;",
            "unique*;",
            "unix.mode*;",
        ] {
            assert!(MLST_FACTS_FEAT.contains(fact));
        }
    }
}
