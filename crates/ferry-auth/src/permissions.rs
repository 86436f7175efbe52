//! What a user may do.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The operations a user is allowed to perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permissions {
    /// List directories and read metadata.
    pub list: bool,
    /// Download files.
    pub read: bool,
    /// Upload files (create, overwrite, append).
    pub write: bool,
    /// Delete files and directories.
    pub delete: bool,
    /// Rename files and directories.
    pub rename: bool,
    /// Create directories.
    pub mkdir: bool,
}

/// Permission words in canonical order.
const WORDS: [&str; 6] = ["list", "read", "write", "delete", "rename", "mkdir"];

impl Permissions {
    /// Every permission.
    pub fn all() -> Self {
        Permissions {
            list: true,
            read: true,
            write: true,
            delete: true,
            rename: true,
            mkdir: true,
        }
    }

    /// List and read only.
    pub fn read_only() -> Self {
        Permissions {
            list: true,
            read: true,
            ..Permissions::none()
        }
    }

    /// No permission at all.
    pub fn none() -> Self {
        Permissions {
            list: false,
            read: false,
            write: false,
            delete: false,
            rename: false,
            mkdir: false,
        }
    }

    fn flags(&self) -> [bool; 6] {
        [
            self.list,
            self.read,
            self.write,
            self.delete,
            self.rename,
            self.mkdir,
        ]
    }

    fn flag_mut(&mut self, word: &str) -> Option<&mut bool> {
        match word {
            "list" => Some(&mut self.list),
            "read" => Some(&mut self.read),
            "write" => Some(&mut self.write),
            "delete" => Some(&mut self.delete),
            "rename" => Some(&mut self.rename),
            "mkdir" => Some(&mut self.mkdir),
            _ => None,
        }
    }
}

/// The storage layer's permission type, which its policy layer checks for FTP and SFTP alike.
impl From<Permissions> for ferry_vfs_types::Permissions {
    fn from(p: Permissions) -> Self {
        ferry_vfs_types::Permissions {
            list: p.list,
            read: p.read,
            write: p.write,
            delete: p.delete,
            rename: p.rename,
            mkdir: p.mkdir,
        }
    }
}

impl FromStr for Permissions {
    type Err = Error;

    /// Parses `all`, `ro`, `none`, or a comma-separated list of `list`, `read`, `write`,
    /// `delete`, `rename`, `mkdir` (case-insensitive, spaces around words allowed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "all" => return Ok(Permissions::all()),
            "ro" => return Ok(Permissions::read_only()),
            "none" => return Ok(Permissions::none()),
            "" => return Err(Error::InvalidInput("empty permission list".into())),
            _ => {}
        }
        let mut perms = Permissions::none();
        for word in s.split(',').map(str::trim) {
            match perms.flag_mut(word) {
                Some(flag) => *flag = true,
                None => {
                    return Err(Error::InvalidInput(format!(
                        "unknown permission {word:?} (expected all, ro, none, or a comma list of {})",
                        WORDS.join(", ")
                    )))
                }
            }
        }
        Ok(perms)
    }
}

impl fmt::Display for Permissions {
    /// The canonical comma list (`list,read`), or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = WORDS
            .iter()
            .zip(self.flags())
            .filter(|(_, on)| *on)
            .map(|(word, _)| *word)
            .collect();
        if words.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&words.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Permissions {
        s.parse().unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    #[test]
    fn keywords_parse_to_presets() {
        assert_eq!(parse("all"), Permissions::all());
        assert_eq!(parse("ro"), Permissions::read_only());
        assert_eq!(parse("none"), Permissions::none());
        assert_eq!(parse(" ALL "), Permissions::all());
    }

    #[test]
    fn comma_list_sets_only_named_flags() {
        let p = parse("read, write,mkdir");
        assert_eq!(
            p,
            Permissions {
                read: true,
                write: true,
                mkdir: true,
                ..Permissions::none()
            }
        );
    }

    #[test]
    fn unknown_word_is_named_in_the_error() {
        let err = "list,fly".parse::<Permissions>().expect_err("unknown");
        assert!(
            matches!(&err, Error::InvalidInput(msg) if msg.contains("\"fly\"")),
            "{err}"
        );
        assert!("list,,read".parse::<Permissions>().is_err());
        assert!("".parse::<Permissions>().is_err());
    }

    #[test]
    fn display_is_canonical_and_round_trips() {
        assert_eq!(
            Permissions::all().to_string(),
            "list,read,write,delete,rename,mkdir"
        );
        assert_eq!(Permissions::read_only().to_string(), "list,read");
        assert_eq!(Permissions::none().to_string(), "none");
        assert_eq!(parse("mkdir,list").to_string(), "list,mkdir");
        for bits in 0u8..64 {
            let p = Permissions {
                list: bits & 1 != 0,
                read: bits & 2 != 0,
                write: bits & 4 != 0,
                delete: bits & 8 != 0,
                rename: bits & 16 != 0,
                mkdir: bits & 32 != 0,
            };
            assert_eq!(parse(&p.to_string()), p);
        }
    }
}
