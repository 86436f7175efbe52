//! Checksums kept beside local files, in the user extended attribute `user.ferry.digests` of the
//! file itself: set through the upload's own descriptor before the temp file is renamed into place,
//! read through a descriptor opened inside the jail.
//!
//! The value is bound to the file's size and modification time (nanoseconds) when it was set:
//! `1 <size> <mtime_sec>.<mtime_nsec> <sha256> <md5> <crc32>`. A file changed outside ferry gets a
//! new modification time (and usually a new size), so its value no longer matches and is ignored.
//! A modification time set through ferry (MFMT, SFTP setstat) moves a still-valid value along and
//! removes a stale one, so setting a time can neither invalidate nor revive a value. Files opened
//! for writing in place (resume, append, SFTP writes to an existing file) lose theirs at open.
//!
//! File systems without user extended attributes (or a full attribute block) refuse the calls;
//! that is ignored and checksums are then computed on demand.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use crate::digest::{Digests, StoredDigests};

/// The attribute's name.
const XATTR: &str = "user.ferry.digests";

/// Longest value read (the real one is ~130 bytes).
const MAX_VALUE: usize = 256;

/// The facts a value is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    sec: i64,
    nsec: i64,
}

impl Stamp {
    fn of(md: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: md.len(),
            sec: md.mtime(),
            nsec: md.mtime_nsec(),
        }
    }
}

/// Stores `digests` on the open file `fd`, bound to its size and modification time now. Best
/// effort: without extended attributes nothing is kept.
pub(super) fn store(fd: &std::fs::File, digests: &Digests) {
    let Ok(md) = fd.metadata() else {
        return;
    };
    let stamp = Stamp::of(&md);
    let value = format!(
        "1 {} {}.{:09} {}",
        stamp.size,
        stamp.sec,
        stamp.nsec,
        digests.encode()
    );
    if let Err(e) = rustix::fs::fsetxattr(fd, XATTR, value.as_bytes(), rustix::fs::XattrFlags::empty()) {
        tracing::debug!(error = %e, "no extended attribute for the upload's checksums; they will be computed on demand");
    }
}

/// The checksums kept on the open file `fd`, if they still describe it.
pub(super) fn load(fd: &std::fs::File) -> Option<StoredDigests> {
    let md = fd.metadata().ok()?;
    let (stamp, digests) = read(fd)?;
    (stamp == Stamp::of(&md)).then_some(StoredDigests {
        size: stamp.size,
        digests,
    })
}

/// Removes any checksums kept on `fd` (the file is about to change in place).
pub(super) fn forget(fd: impl AsFd) {
    // ENODATA (none kept) and ENOTSUP (no attributes here) are the usual answers: nothing to do.
    let _ = rustix::fs::fremovexattr(fd, XATTR);
}

/// Before a new modification time is set on `fd`: whether its checksums are valid now. Call
/// [`after_set_modified`] with the answer once the time is set.
pub(super) fn before_set_modified(fd: &std::fs::File) -> Option<Digests> {
    load(fd).map(|s| s.digests)
}

/// Re-binds still-valid checksums to the new modification time, or removes stale ones.
pub(super) fn after_set_modified(fd: &std::fs::File, valid: Option<Digests>) {
    match valid {
        Some(digests) => store(fd, &digests),
        None => forget(fd),
    }
}

fn read(fd: &std::fs::File) -> Option<(Stamp, Digests)> {
    let mut buf = [0u8; MAX_VALUE];
    let n = rustix::fs::fgetxattr(fd, XATTR, &mut buf[..]).ok()?;
    parse(std::str::from_utf8(buf.get(..n)?).ok()?)
}

fn parse(value: &str) -> Option<(Stamp, Digests)> {
    let mut words = value.splitn(4, ' ');
    if words.next()? != "1" {
        return None;
    }
    let size = words.next()?.parse().ok()?;
    let (sec, nsec) = words.next()?.split_once('.')?;
    let stamp = Stamp {
        size,
        sec: sec.parse().ok()?,
        nsec: nsec.parse().ok()?,
    };
    Some((stamp, Digests::decode(words.next()?)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn has_xattrs(f: &std::fs::File) -> bool {
        rustix::fs::fsetxattr(f, "user.ferry.probe", b"1", rustix::fs::XattrFlags::empty()).is_ok()
    }

    #[test]
    fn a_value_describes_only_the_content_it_was_computed_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let mut f = std::fs::File::create(&path).expect("create");
        if !has_xattrs(&f) {
            eprintln!("no user extended attributes on the temp dir's file system; skipped");
            return;
        }
        f.write_all(b"hello").expect("write");
        let d = Digests::of(b"hello");
        store(&f, &d);
        assert_eq!(load(&f), Some(StoredDigests { size: 5, digests: d }));

        // A new mtime set through ferry keeps a valid value valid...
        let valid = before_set_modified(&f);
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
            .expect("mtime");
        after_set_modified(&f, valid);
        assert_eq!(load(&f).map(|s| s.digests), Some(d));

        // ...a change of content outside ferry makes it stale, even with the same size...
        let mut g = std::fs::OpenOptions::new().write(true).open(&path).expect("open");
        g.write_all(b"HELLO").expect("write");
        assert_eq!(load(&f), None);
        // ...and setting the old time back does not revive it.
        let stale = before_set_modified(&f);
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
            .expect("mtime");
        after_set_modified(&f, stale);
        assert_eq!(load(&f), None);
        assert!(read(&f).is_none(), "the stale value was removed");
    }

    #[test]
    fn parse_refuses_other_versions_and_garbage() {
        let d = Digests::of(b"x").encode();
        assert!(parse(&format!("1 1 5.000000007 {d}")).is_some());
        assert!(parse(&format!("2 1 5.000000007 {d}")).is_none());
        assert!(parse(&format!("1 x 5.7 {d}")).is_none());
        assert!(parse("1 1 5.7 nothex").is_none());
    }
}
