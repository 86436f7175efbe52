//! Defensive checks that turn a virtual path into a path relative to a jail root.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::{ErrorKind, Result};
use crate::TEMP_PREFIX;

/// Longest virtual path accepted, in bytes.
const MAX_PATH_LEN: usize = 4096;

/// A validated virtual path.
#[derive(Debug, Clone)]
pub(crate) struct VPath {
    components: Vec<OsString>,
}

impl VPath {
    /// Validates an absolute virtual path such as `/dir/file`; empty components (`//`) are
    /// ignored, anything suspicious is `InvalidName`.
    pub(crate) fn parse(path: &[u8]) -> Result<VPath> {
        if path.first() != Some(&b'/') || path.len() > MAX_PATH_LEN || path.contains(&0) {
            return Err(ErrorKind::InvalidName.into());
        }
        let mut components = Vec::new();
        for part in path.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
            if part == b"." || part == b".." || part.starts_with(TEMP_PREFIX) {
                return Err(ErrorKind::InvalidName.into());
            }
            components.push(OsStr::from_bytes(part).to_os_string());
        }
        Ok(VPath { components })
    }

    /// Whether this is the root of the jail.
    pub(crate) fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// The path relative to the jail root (`.` for the root).
    pub(crate) fn rel(&self) -> PathBuf {
        if self.components.is_empty() {
            return PathBuf::from(".");
        }
        self.components.iter().collect()
    }

    /// The parent (relative to the jail root) and the last component; `None` for the root.
    pub(crate) fn split(&self) -> Option<(PathBuf, OsString)> {
        let (name, parents) = self.components.split_last()?;
        let parent = if parents.is_empty() {
            PathBuf::from(".")
        } else {
            parents.iter().collect()
        };
        Some((parent, name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn kind(path: &[u8]) -> Option<ErrorKind> {
        VPath::parse(path).err().map(|e| e.kind())
    }

    #[test]
    fn root_maps_to_dot() {
        let p = VPath::parse(b"/").expect("root");
        assert!(p.is_root());
        assert_eq!(p.rel(), PathBuf::from("."));
        assert!(p.split().is_none());
    }

    #[test]
    fn nested_path_splits_into_parent_and_name() {
        let p = VPath::parse(b"//a//b/c/").expect("path");
        assert_eq!(p.rel(), PathBuf::from("a/b/c"));
        let (parent, name) = p.split().expect("split");
        assert_eq!(parent, PathBuf::from("a/b"));
        assert_eq!(name, OsString::from("c"));
        let (parent, _) = VPath::parse(b"/x").expect("x").split().expect("split");
        assert_eq!(parent, PathBuf::from("."));
    }

    #[test]
    fn dot_dot_nul_relative_and_temp_names_are_invalid() {
        for bad in [
            &b"/../x"[..],
            b"/a/..",
            b"/a/./b",
            b"/.",
            b"relative",
            b"",
            b"/a\0b",
            b"/dir/.ferry-upload.abc.tmp",
        ] {
            assert_eq!(kind(bad), Some(ErrorKind::InvalidName), "{bad:?}");
        }
    }

    #[test]
    fn non_utf8_and_dotted_names_are_accepted() {
        assert!(VPath::parse(b"/caf\xe9/..x/...").is_ok());
    }

    #[test]
    fn overlong_path_is_invalid() {
        let mut long = vec![b'/'];
        long.extend(std::iter::repeat_n(b'a', MAX_PATH_LEN));
        assert_eq!(kind(&long), Some(ErrorKind::InvalidName));
    }
}
