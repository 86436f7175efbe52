//! Names and arguments: what may be sent to a server and what may be written locally.
//!
//! Two rules protect the user from a hostile server or a hostile listing:
//! - [`check_arg`]: no CR, LF or NUL ever goes into an FTP command or SFTP path (they would split the
//!   command and inject another one, as in suppaftp's GHSA-8mhj-xm4h-m5m6).
//! - [`local_component`]: a name taken from a listing becomes at most one local path component: no `/`,
//!   `\`, `..`, `.`, empty name, or control character, so mirroring can never write outside its target.

use crate::error::{Error, Result};

/// Refuses an argument that contains CR, LF or NUL.
///
/// # Errors
///
/// [`Error::Usage`] naming the offending character.
pub fn check_arg(arg: &str) -> Result<()> {
    if let Some(c) = arg.chars().find(|c| matches!(c, '\r' | '\n' | '\0')) {
        return Err(Error::Usage(format!(
            "refusing to send a name containing {} to the server: {}",
            c.escape_debug(),
            arg.escape_debug()
        )));
    }
    Ok(())
}

/// The listing name `name` as one safe local path component.
///
/// # Errors
///
/// [`Error::Protocol`] for a name that is not UTF-8, is empty, `.` or `..`, contains `/` or `\`, or a
/// control character.
pub fn local_component(name: &[u8]) -> Result<&str> {
    let shown = String::from_utf8_lossy(name).escape_debug().to_string();
    let s = std::str::from_utf8(name)
        .map_err(|_| Error::Protocol(format!("a listed name is not UTF-8: {shown}")))?;
    let bad =
        s.is_empty() || s == "." || s == ".." || s.contains(['/', '\\']) || s.chars().any(char::is_control);
    if bad {
        return Err(Error::Protocol(format!(
            "the server listed a name that is not a plain file name: \"{shown}\""
        )));
    }
    Ok(s)
}

/// Joins a remote directory and a name with exactly one `/`.
pub fn join_remote(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The last component of a remote path (`/a/b.txt` → `b.txt`); `None` for `/` or an empty path.
pub fn remote_basename(path: &str) -> Option<&str> {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_with_line_breaks_or_nul_are_refused() {
        assert!(check_arg("a.txt").is_ok());
        assert!(check_arg("a b/ü.txt").is_ok());
        for bad in ["a\r\nDELE x", "a\nb", "a\rb", "a\0b"] {
            assert!(matches!(check_arg(bad), Err(Error::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn hostile_listing_names_are_refused() {
        assert_eq!(local_component(b"ok name.txt").ok(), Some("ok name.txt"));
        for bad in [
            &b""[..],
            b".",
            b"..",
            b"../x",
            b"/etc/passwd",
            b"a/b",
            b"a\\b",
            b"..\\..\\x",
            b"a\x1bb",
            b"a\nb",
            b"\xff",
        ] {
            assert!(local_component(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn remote_paths_join_and_split() {
        assert_eq!(join_remote("/a", "b"), "/a/b");
        assert_eq!(join_remote("/", "b"), "/b");
        assert_eq!(join_remote("", "b"), "b");
        assert_eq!(remote_basename("/a/b.txt"), Some("b.txt"));
        assert_eq!(remote_basename("/a/dir/"), Some("dir"));
        assert_eq!(remote_basename("/"), None);
        assert_eq!(remote_basename("/a/.."), None);
    }
}
