//! Peer-provided strings made safe to log: bounded and escaped.
//!
//! User names, paths, command lines, subsystem names and client identifiers come from the peer,
//! possibly before login. Logged as they are, one 65,000-byte user name per attempt floods the log,
//! and control characters (newlines, terminal escapes) can forge or hide log lines. [`Untrusted`]
//! shows at most [`MAX_LOGGED_CHARS`] characters, escapes control characters and backslashes, and
//! says how long the original was when it cut. FTP and SFTP log every such string through it.

use std::fmt;

/// Most characters of one peer-provided string shown in a log line (OpenSSH also cuts logged
/// user names at 100).
pub const MAX_LOGGED_CHARS: usize = 100;

/// A peer-provided string, displayed bounded and escaped (see the module doc).
///
/// ```
/// use ferry_proto::untrusted::Untrusted;
/// assert_eq!(Untrusted::new(b"bob\r\nfake line").to_string(), "bob\\r\\nfake line");
/// let long = vec![b'a'; 65_000];
/// assert!(Untrusted::new(&long).to_string().len() < 200);
/// ```
#[derive(Clone, Copy)]
pub struct Untrusted<'a>(&'a [u8]);

impl<'a> Untrusted<'a> {
    /// Wraps raw bytes (not necessarily UTF-8).
    pub fn new(bytes: &'a [u8]) -> Self {
        Untrusted(bytes)
    }

    /// Wraps a string.
    pub fn str(s: &'a str) -> Self {
        Untrusted(s.as_bytes())
    }
}

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = 0;
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                if shown == MAX_LOGGED_CHARS {
                    return write!(f, "…({} bytes)", self.0.len());
                }
                shown += 1;
                match c {
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    '\t' => f.write_str("\\t")?,
                    c if c.is_control() || is_invisible(c) => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                    c => fmt::Write::write_char(f, c)?,
                }
            }
            for b in chunk.invalid() {
                if shown == MAX_LOGGED_CHARS {
                    return write!(f, "…({} bytes)", self.0.len());
                }
                shown += 1;
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Characters that change how a line reads without being control characters: line and paragraph
/// separators and the bidirectional overrides.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_are_cut_and_say_their_length() {
        let name = vec![b'x'; 65_000];
        let shown = Untrusted::new(&name).to_string();
        assert!(shown.starts_with(&"x".repeat(MAX_LOGGED_CHARS)));
        assert!(shown.ends_with("…(65000 bytes)"), "{shown}");
        assert!(shown.len() < MAX_LOGGED_CHARS + 20);
    }

    #[test]
    fn control_characters_and_invalid_utf8_are_escaped() {
        let shown = Untrusted::new(b"a\nb\x1b[31m\\c\xff\x00\xe2\x80\xaed").to_string();
        assert_eq!(shown, "a\\nb\\u{1b}[31m\\\\c\\xff\\u{0}\\u{202e}d");
        assert!(!shown.chars().any(char::is_control));
    }

    #[test]
    fn escaping_counts_towards_the_bound() {
        let nasty = vec![0u8; 10_000];
        let shown = Untrusted::new(&nasty).to_string();
        assert!(shown.len() <= MAX_LOGGED_CHARS * 6 + 20, "{}", shown.len());
    }

    #[test]
    fn plain_names_are_unchanged() {
        assert_eq!(Untrusted::str("alice").to_string(), "alice");
        assert_eq!(Untrusted::str("dir/Ünïcode.txt").to_string(), "dir/Ünïcode.txt");
        assert_eq!(format!("{:?}", Untrusted::str("a")), "\"a\"");
    }
}
