//! Virtual path normalisation: arbitrary client arguments against arbitrary current directories. The
//! result is absolute, normalised (no `.`/`..`/empty components, no NUL), within the length limits, and
//! resolving it again from anywhere gives the same path.
#![no_main]

use ferry_proto::limits::{MAX_NAME, MAX_PATH};
use ferry_proto::path::VPath;
use libfuzzer_sys::fuzz_target;

fn check(p: &VPath) {
    let b = p.as_bytes();
    assert_eq!(b.first(), Some(&b'/'));
    assert!(b.len() <= MAX_PATH, "{} bytes", b.len());
    assert!(!b.contains(&0));
    assert!(p.is_root() || !b.ends_with(b"/"), "{b:?}");
    for c in p.components() {
        assert!(!c.is_empty() && c != b"." && c != b"..", "{b:?}");
        assert!(c.len() <= MAX_NAME);
    }
    assert_eq!(VPath::root().resolve(b).as_ref(), Ok(p), "not idempotent");
    assert!(p.starts_with(&VPath::root()));
    assert!(p.starts_with(&p.parent()));
}

fuzz_target!(|data: &[u8]| {
    // First part: the current directory; second part (after the first 0xFE): the argument.
    let (cwd, arg) = match data.iter().position(|&b| b == 0xFE) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let cwd = VPath::root().resolve(cwd).unwrap_or_else(|_| VPath::root());
    check(&cwd);
    if let Ok(p) = cwd.resolve(arg) {
        check(&p);
        if arg.first() != Some(&b'/') {
            assert!(p.starts_with(&VPath::root()));
        }
    }
    if let Ok(p) = cwd.join_name(arg) {
        check(&p);
    }
});
