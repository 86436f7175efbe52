//! The local back-end's view of a [`VPath`]: a path relative to the jail root, with the names it
//! reserves refused.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::{ErrorKind, Result};
use crate::{VPath, TEMP_PREFIX};

/// A virtual path checked for the local back-end.
#[derive(Debug, Clone)]
pub(crate) struct HostPath<'a> {
    path: &'a VPath,
}

impl<'a> HostPath<'a> {
    /// Refuses components starting with the upload temp prefix (the path is already normalised).
    pub(crate) fn check(path: &'a VPath) -> Result<HostPath<'a>> {
        if path.components().any(|c| c.starts_with(TEMP_PREFIX)) {
            return Err(ErrorKind::InvalidName.into());
        }
        Ok(HostPath { path })
    }

    /// Whether this is the root of the jail.
    pub(crate) fn is_root(&self) -> bool {
        self.path.is_root()
    }

    /// The path relative to the jail root (`.` for the root).
    pub(crate) fn rel(&self) -> PathBuf {
        if self.path.is_root() {
            return PathBuf::from(".");
        }
        PathBuf::from(OsStr::from_bytes(self.path.relative()))
    }

    /// The parent (relative to the jail root) and the last component; `None` for the root.
    pub(crate) fn split(&self) -> Option<(PathBuf, OsString)> {
        let name = self.path.file_name()?;
        let parent = self.path.parent();
        let parent = if parent.is_root() {
            PathBuf::from(".")
        } else {
            PathBuf::from(OsStr::from_bytes(parent.relative()))
        };
        Some((parent, OsStr::from_bytes(name).to_os_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(p: &[u8]) -> VPath {
        VPath::parse(p).expect("path")
    }

    #[test]
    fn root_maps_to_dot() {
        let root = VPath::root();
        let p = HostPath::check(&root).expect("root");
        assert!(p.is_root());
        assert_eq!(p.rel(), PathBuf::from("."));
        assert!(p.split().is_none());
    }

    #[test]
    fn nested_path_splits_into_parent_and_name() {
        let path = v(b"//a//b/c/");
        let p = HostPath::check(&path).expect("path");
        assert_eq!(p.rel(), PathBuf::from("a/b/c"));
        let (parent, name) = p.split().expect("split");
        assert_eq!(parent, PathBuf::from("a/b"));
        assert_eq!(name, OsString::from("c"));
        let x = v(b"/x");
        let (parent, _) = HostPath::check(&x).expect("x").split().expect("split");
        assert_eq!(parent, PathBuf::from("."));
    }

    #[test]
    fn temp_names_are_invalid() {
        let path = v(b"/dir/.ferry-upload.abc.tmp/x");
        assert_eq!(
            HostPath::check(&path).err().map(|e| e.kind()),
            Some(ErrorKind::InvalidName)
        );
    }

    #[test]
    fn non_utf8_and_dotted_names_are_accepted() {
        let path = v(b"/caf\xe9/..x/...");
        assert!(HostPath::check(&path).is_ok());
    }
}
