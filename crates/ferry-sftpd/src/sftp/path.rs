//! Client paths → virtual absolute paths. The working directory of an SFTP session is always the
//! user's root (`/`); `..` is resolved lexically and stops at the root, so no path can name
//! anything above it. The storage back-end still jails every access by directory handle.

use crate::limits::MAX_PATH_LEN;

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathError {
    /// Longer than [`MAX_PATH_LEN`] bytes.
    TooLong,
    /// Contains a NUL byte.
    Nul,
}

/// Resolves `raw` (absolute, or relative to the root) to a normalised absolute path: no empty,
/// `.` or `..` components; `/` for the root.
pub(crate) fn resolve(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    if raw.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if raw.contains(&0) {
        return Err(PathError::Nul);
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    let mut out = Vec::with_capacity(raw.len() + 1);
    for part in &parts {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(p: &str) -> String {
        String::from_utf8(resolve(p.as_bytes()).expect("resolves")).expect("utf8")
    }

    #[test]
    fn relative_paths_start_at_the_root() {
        assert_eq!(r(""), "/");
        assert_eq!(r("."), "/");
        assert_eq!(r("a/b"), "/a/b");
        assert_eq!(r("./a//b/"), "/a/b");
    }

    #[test]
    fn dot_dot_never_climbs_above_the_root() {
        assert_eq!(r(".."), "/");
        assert_eq!(r("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(r("a/../../b"), "/b");
        assert_eq!(r("/a/b/../c"), "/a/c");
    }

    #[test]
    fn nul_and_overlong_paths_are_refused() {
        assert_eq!(resolve(b"/a\0b"), Err(PathError::Nul));
        assert_eq!(resolve(&vec![b'a'; MAX_PATH_LEN + 1]), Err(PathError::TooLong));
    }
}
