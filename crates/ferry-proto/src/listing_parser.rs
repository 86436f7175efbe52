//! Parsing directory listings received from a server: `MLSD` facts (RFC 3659 §7), Unix `ls -l` lines
//! (with or without a group column, `total N` headers, symlinks `name -> target`) and the Windows/IIS DOS
//! form (`MM-DD-YY  HH:MMAM  <DIR>  name`).
//!
//! Names are returned as the raw bytes the server sent. They are **untrusted**: they may contain `/`, `..`,
//! control characters or be absolute. Deciding whether a name is safe to write locally is the caller's
//! job (the client refuses such names). Lines that fit no format give `None`; nothing here panics on any
//! input. The time of a Unix line that shows `HH:MM` instead of a year is placed in the twelve months up to
//! `now`, which the caller passes in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::listing::{days_from_civil, days_in_month, parse_mdtm, unix_parts, Civil, EntryKind};

/// One entry parsed from a listing line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteEntry {
    /// The name as sent (untrusted, see the module docs).
    pub name: Vec<u8>,
    /// What the entry is.
    pub kind: EntryKind,
    /// Size in bytes, when the listing gives one.
    pub size: Option<u64>,
    /// Modification time (UTC), when the listing gives one.
    pub modified: Option<SystemTime>,
}

const MONTHS: [&[u8]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

/// Parse one `MLSD` line (`fact=value;…; name`). Entries of type `cdir`/`pdir` (`.` and `..`) give `None`.
pub fn parse_mlsd_line(line: &[u8]) -> Option<RemoteEntry> {
    let space = line.iter().position(|&b| b == b' ')?;
    let (facts, name) = (line.get(..space)?, line.get(space + 1..)?);
    if name.is_empty() {
        return None;
    }
    let mut entry = RemoteEntry {
        name: name.to_vec(),
        kind: EntryKind::File,
        size: None,
        modified: None,
    };
    for fact in facts.split(|&b| b == b';').filter(|f| !f.is_empty()) {
        let eq = fact.iter().position(|&b| b == b'=')?;
        let key = fact.get(..eq)?.to_ascii_lowercase();
        let value = fact.get(eq + 1..)?;
        match key.as_slice() {
            b"type" => {
                entry.kind = match value.to_ascii_lowercase().as_slice() {
                    b"file" => EntryKind::File,
                    b"dir" => EntryKind::Dir,
                    b"cdir" | b"pdir" => return None,
                    v if v.starts_with(b"os.unix=symlink") || v.starts_with(b"os.unix=slink") => {
                        EntryKind::Symlink
                    }
                    _ => EntryKind::Other,
                }
            }
            b"size" => entry.size = ascii_u64(value),
            b"modify" => {
                entry.modified = std::str::from_utf8(value).ok().and_then(parse_mdtm);
            }
            _ => {}
        }
    }
    Some(entry)
}

/// Parse one `LIST` line in Unix or DOS form. `total N` lines, `.` and `..` give `None`.
pub fn parse_list_line(line: &[u8], now: SystemTime) -> Option<RemoteEntry> {
    let entry = parse_unix(line, now).or_else(|| parse_dos(line))?;
    if entry.name == b"." || entry.name == b".." {
        return None;
    }
    Some(entry)
}

/// `perms links owner [group] size Mon DD HH:MM|YYYY name[ -> target]`.
fn parse_unix(line: &[u8], now: SystemTime) -> Option<RemoteEntry> {
    let kind = match line.first()? {
        b'-' => EntryKind::File,
        b'd' => EntryKind::Dir,
        b'l' => EntryKind::Symlink,
        b'b' | b'c' | b'p' | b's' => EntryKind::Other,
        _ => return None,
    };
    let fields = split_fields(line, 9);
    // Find the month column: the first field (after the permissions) that is a month name followed by a
    // day and a time or year. The size is the field just before it.
    let month_at = (2..fields.len().saturating_sub(3)).find(|&i| {
        fields.get(i).is_some_and(|(_, f)| month_number(f).is_some())
            && fields.get(i + 1).is_some_and(|(_, f)| ascii_u64(f).is_some())
    })?;
    let size = ascii_u64(fields.get(month_at - 1)?.1);
    let month = month_number(fields.get(month_at)?.1)?;
    let day = ascii_u64(fields.get(month_at + 1)?.1)?;
    let when = fields.get(month_at + 2)?.1;
    let (name_start, _) = *fields.get(month_at + 3)?;
    let mut name = line.get(name_start..)?;
    if kind == EntryKind::Symlink {
        if let Some(arrow) = find(name, b" -> ") {
            name = name.get(..arrow)?;
        }
    }
    if name.is_empty() {
        return None;
    }
    Some(RemoteEntry {
        name: name.to_vec(),
        kind,
        size,
        modified: unix_time(month, day, when, now),
    })
}

/// `MM-DD-YY  HH:MM(AM|PM)  (<DIR>|size)  name`.
fn parse_dos(line: &[u8]) -> Option<RemoteEntry> {
    let fields = split_fields(line, 3);
    let date = fields.first()?.1;
    let time = fields.get(1)?.1;
    let dir_or_size = fields.get(2)?.1;
    let (name_start, _) = *fields.get(3)?;
    let name = line.get(name_start..)?;
    let mut date_parts = date.split(|&b| b == b'-' || b == b'/');
    let month = ascii_u64(date_parts.next()?)?;
    let day = ascii_u64(date_parts.next()?)?;
    let mut year = i64::try_from(ascii_u64(date_parts.next()?)?).ok()?;
    if year < 100 {
        year += if year < 70 { 2000 } else { 1900 };
    }
    let (clock, pm) = match time.len().checked_sub(2).and_then(|i| time.get(i..)) {
        Some(suffix) if suffix.eq_ignore_ascii_case(b"PM") => (time.get(..time.len() - 2)?, Some(true)),
        Some(suffix) if suffix.eq_ignore_ascii_case(b"AM") => (time.get(..time.len() - 2)?, Some(false)),
        _ => (time, None),
    };
    let (mut hour, minute) = hour_minute(clock)?;
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    let (kind, size) = if dir_or_size.eq_ignore_ascii_case(b"<DIR>") {
        (EntryKind::Dir, None)
    } else {
        (EntryKind::File, Some(ascii_u64(dir_or_size)?))
    };
    if name.is_empty() {
        return None;
    }
    Some(RemoteEntry {
        name: name.to_vec(),
        kind,
        size,
        modified: to_time(
            year,
            i64::try_from(month).ok()?,
            i64::try_from(day).ok()?,
            hour,
            minute,
        ),
    })
}

/// Splits off up to `max + 1` whitespace-separated fields; each is `(start offset, bytes)`. The start of
/// the field after the `max`-th is kept so names with spaces survive.
fn split_fields(line: &[u8], max: usize) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() && out.len() <= max {
        while line.get(i).is_some_and(|&b| b == b' ' || b == b'\t') {
            i += 1;
        }
        if i >= line.len() {
            break;
        }
        let start = i;
        while line.get(i).is_some_and(|&b| b != b' ' && b != b'\t') {
            i += 1;
        }
        out.push((start, line.get(start..i).unwrap_or_default()));
    }
    out
}

fn unix_time(month: i64, day: u64, when: &[u8], now: SystemTime) -> Option<SystemTime> {
    let day = i64::try_from(day).ok()?;
    if when.contains(&b':') {
        let (hour, minute) = hour_minute(when)?;
        let (now_secs, _) = unix_parts(now);
        let year = Civil::from_unix(now_secs).year;
        let this_year = to_time(year, month, day, hour, minute)?;
        // A time more than a day in the future belongs to last year.
        if now
            .checked_add(Duration::from_secs(86_400))
            .is_some_and(|limit| this_year > limit)
        {
            return to_time(year - 1, month, day, hour, minute);
        }
        return Some(this_year);
    }
    let year = i64::try_from(ascii_u64(when)?).ok()?;
    to_time(year, month, day, 0, 0)
}

fn to_time(year: i64, month: i64, day: i64, hour: i64, minute: i64) -> Option<SystemTime> {
    if !(1..=12).contains(&month)
        || !(1..=9999).contains(&year)
        || day < 1
        || day > days_in_month(year, month)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60;
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    }
}

fn hour_minute(s: &[u8]) -> Option<(i64, i64)> {
    let colon = s.iter().position(|&b| b == b':')?;
    let hour = i64::try_from(ascii_u64(s.get(..colon)?)?).ok()?;
    let minute = i64::try_from(ascii_u64(s.get(colon + 1..)?)?).ok()?;
    Some((hour, minute))
}

fn month_number(s: &[u8]) -> Option<i64> {
    let lower = s.to_ascii_lowercase();
    let index = MONTHS.iter().position(|m| *m == lower.as_slice())?;
    i64::try_from(index + 1).ok()
}

/// Decimal digits only (at most 19, so no overflow), else `None`.
fn ascii_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        // 2026-06-15 12:00 UTC
        to_time(2026, 6, 15, 12, 0).expect("time")
    }

    #[test]
    fn unix_file_with_group_and_recent_time() {
        let e = parse_list_line(
            b"-rw-r--r--    1 ftp      ftp          1234 Jun 02 15:04 report final.txt",
            now(),
        )
        .expect("entry");
        assert_eq!(e.name, b"report final.txt");
        assert_eq!(e.kind, EntryKind::File);
        assert_eq!(e.size, Some(1234));
        assert_eq!(e.modified, to_time(2026, 6, 2, 15, 4));
    }

    #[test]
    fn unix_time_in_the_future_is_last_year() {
        let e = parse_list_line(b"-rw-r--r-- 1 a b 5 Dec 24 10:00 x", now()).expect("entry");
        assert_eq!(e.modified, to_time(2025, 12, 24, 10, 0));
    }

    #[test]
    fn unix_without_group_and_with_year() {
        let e = parse_list_line(b"drwxr-xr-x 2 owner 4096 Jan  3  2019 docs", now()).expect("entry");
        assert_eq!(e.name, b"docs");
        assert_eq!(e.kind, EntryKind::Dir);
        assert_eq!(e.size, Some(4096));
        assert_eq!(e.modified, to_time(2019, 1, 3, 0, 0));
    }

    #[test]
    fn unix_symlink_drops_target() {
        let e = parse_list_line(b"lrwxrwxrwx 1 a b 7 Jan 3 2019 link -> /etc/passwd", now()).expect("entry");
        assert_eq!(e.name, b"link");
        assert_eq!(e.kind, EntryKind::Symlink);
    }

    #[test]
    fn total_dot_and_dotdot_are_skipped() {
        assert_eq!(parse_list_line(b"total 12", now()), None);
        assert_eq!(
            parse_list_line(b"drwxr-xr-x 2 a b 4096 Jan 3 2019 .", now()),
            None
        );
        assert_eq!(
            parse_list_line(b"drwxr-xr-x 2 a b 4096 Jan 3 2019 ..", now()),
            None
        );
    }

    #[test]
    fn hostile_names_are_returned_raw_for_the_caller_to_judge() {
        let e = parse_list_line(b"-rw-r--r-- 1 a b 5 Jan 3 2019 ../../etc/passwd", now()).expect("entry");
        assert_eq!(e.name, b"../../etc/passwd");
    }

    #[test]
    fn dos_lines() {
        let e = parse_list_line(b"01-02-24  03:04PM       <DIR>          My Docs", now()).expect("entry");
        assert_eq!(e.name, b"My Docs");
        assert_eq!(e.kind, EntryKind::Dir);
        assert_eq!(e.modified, to_time(2024, 1, 2, 15, 4));
        let f = parse_list_line(b"12-31-98  12:00AM              42 a.txt", now()).expect("entry");
        assert_eq!(f.size, Some(42));
        assert_eq!(f.modified, to_time(1998, 12, 31, 0, 0));
    }

    #[test]
    fn mlsd_lines() {
        let e = parse_mlsd_line(b"type=file;size=10;modify=20240102030405;perm=r; a b.txt").expect("entry");
        assert_eq!(e.name, b"a b.txt");
        assert_eq!(e.size, Some(10));
        assert_eq!(
            e.modified,
            to_time(2024, 1, 2, 3, 4).map(|t| t + Duration::from_secs(5))
        );
        let d = parse_mlsd_line(b"Type=dir;Modify=20240102030405; sub").expect("entry");
        assert_eq!(d.kind, EntryKind::Dir);
        assert_eq!(parse_mlsd_line(b"type=cdir; ."), None);
        assert_eq!(parse_mlsd_line(b"type=pdir; .."), None);
        assert_eq!(parse_mlsd_line(b"no-space-here"), None);
    }

    #[test]
    fn lines_written_by_the_server_side_parse_back() {
        use crate::listing::{write_list_line, write_mlsx_facts, Entry, FactPerms};
        let recent = to_time(2026, 5, 1, 8, 30).expect("time");
        let old = to_time(2019, 2, 28, 0, 0).expect("time");
        let names: [&[u8]; 4] = [
            b"plain.txt",
            b"with  two spaces",
            b"Jan 1 2020 tricky",
            b"\xc3\xbc-utf8",
        ];
        for (i, name) in names.iter().enumerate() {
            for (kind, modified) in [(EntryKind::File, recent), (EntryKind::Dir, old)] {
                let e = Entry {
                    name: name.to_vec(),
                    kind,
                    size: 1000 + i as u64,
                    modified: Some(modified),
                    mode: Some(0o644),
                    nlink: 1,
                    unique: None,
                };
                let mut line = Vec::new();
                write_list_line(&mut line, &e, now());
                let line = line.strip_suffix(b"\r\n").expect("crlf");
                let parsed = parse_list_line(line, now()).expect("LIST line parses");
                assert_eq!((parsed.name.as_slice(), parsed.kind), (*name, kind), "{line:?}");
                assert_eq!(parsed.size, Some(e.size));
                assert_eq!(parsed.modified, Some(modified));
                let mut facts = Vec::new();
                write_mlsx_facts(&mut facts, &e, FactPerms::default());
                let parsed = parse_mlsd_line(&facts).expect("MLSD line parses");
                assert_eq!((parsed.name.as_slice(), parsed.kind), (*name, kind));
                assert_eq!(parsed.modified, Some(modified));
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let samples: [&[u8]; 8] = [
            b"",
            b"-",
            b"d",
            b"-rw 1 a b c Jan",
            b"01-02-24",
            b"99-99-99 99:99PM <DIR> x",
            b"type=; x",
            b"\xff\xfe Jan 1 1:1 x",
        ];
        for s in samples {
            let _ = parse_list_line(s, now());
            let _ = parse_mlsd_line(s);
        }
        assert_eq!(
            parse_list_line(b"99-99-99 99:99PM <DIR> x", now()).map(|e| e.modified),
            Some(None)
        );
    }
}
