//! Listing formatters (LIST, NLST, MLSx facts), LIST argument splitting and MDTM times: arbitrary names,
//! sizes, modes and times. Each formatted entry is exactly one line: a file name can never add a line
//! break (which would forge listing entries or control replies).
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferry_proto::listing::{
    format_mdtm, parse_list_args, parse_mdtm, write_list_line, write_mlsx_facts, write_name, write_nlst_line,
    Entry, EntryKind, FactPerms,
};
use libfuzzer_sys::fuzz_target;

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, dst) in b.iter_mut().enumerate() {
        *dst = data.get(at + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

fn one_line(out: &[u8]) {
    assert!(out.ends_with(b"\r\n"), "{out:?}");
    let body = &out[..out.len() - 2];
    assert!(!body.contains(&b'\n'), "LF inside a listing line: {out:?}");
    // A CR inside is always followed by NUL (RFC 959's pathname convention), never by LF.
    for w in body.windows(2) {
        if w[0] == b'\r' {
            assert_eq!(w[1], 0, "{out:?}");
        }
    }
    assert!(body.last() != Some(&b'\r'), "{out:?}");
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 26 {
        return;
    }
    let flags = data[0];
    let kinds = [
        EntryKind::File,
        EntryKind::Dir,
        EntryKind::Symlink,
        EntryKind::Other,
    ];
    let secs = u64_at(data, 1);
    let modified = (flags & 1 != 0)
        .then(|| {
            if flags & 2 != 0 {
                UNIX_EPOCH.checked_add(Duration::from_secs(secs))
            } else {
                UNIX_EPOCH.checked_sub(Duration::from_secs(secs % (1 << 40)))
            }
        })
        .flatten();
    let name = data[25..].to_vec();
    let e = Entry {
        name: name.clone(),
        kind: kinds[usize::from(flags >> 2) % 4],
        size: u64_at(data, 9),
        modified,
        mode: (flags & 0x10 != 0).then(|| u64_at(data, 17) as u32),
        nlink: u64_at(data, 17),
        unique: (flags & 0x20 != 0).then(|| String::from_utf8_lossy(&data[25..]).into_owned()),
    };
    let now = UNIX_EPOCH + Duration::from_secs(u64_at(data, 17) % (1 << 36));
    let mut out = Vec::new();
    write_list_line(&mut out, &e, now);
    one_line(&out);
    out.clear();
    write_nlst_line(&mut out, &name);
    one_line(&out);
    out.clear();
    let perms = FactPerms {
        read: flags & 1 != 0,
        write: flags & 2 != 0,
        delete: flags & 4 != 0,
        rename: flags & 8 != 0,
        mkdir: flags & 16 != 0,
        list: flags & 32 != 0,
    };
    write_mlsx_facts(&mut out, &e, perms);
    write_name(&mut out, &name);
    out.extend_from_slice(b"\r\n");
    if e.unique.as_deref().is_none_or(|u| !u.contains(['\r', '\n'])) {
        one_line(&out);
    }

    let args = parse_list_args(Some(&name));
    if let Some(p) = &args.path {
        assert!(!p.is_empty());
    }
    let text = String::from_utf8_lossy(&name);
    if let Some(t) = parse_mdtm(&text) {
        // Whole-millisecond times survive a round trip.
        let back = parse_mdtm(&format_mdtm(t)).expect("formatted time parses");
        assert_eq!(back, t, "{text:?}");
    }
    if let Some(t) = modified {
        let _ = parse_mdtm(&format_mdtm(t)).expect("formatted time parses");
    }
    let _: Option<SystemTime> = None;
});
