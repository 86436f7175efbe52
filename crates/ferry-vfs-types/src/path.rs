//! Virtual paths: the normalised, absolute view of a user's tree that every FTP command works on.
//!
//! A [`VPath`] always starts with `/`, has no empty, `.` or `..` components, no trailing `/` (except the
//! root itself) and no NUL byte. Resolving a client argument against the current directory can therefore
//! never climb above `/`: `..` at the root stays at the root.
//!
//! It is the one normaliser of ferry: the FTP session resolves arguments against its working directory
//! with it, the SFTP server against the root, and every storage back-end takes a [`VPath`], so no layer
//! parses a path again.
//!
//! What it does not do: touch the filesystem, follow symlinks or decide what `/` maps to. Keeping the
//! user inside their directory is enforced by `ferry-vfs` with directory handles, not by string checks here;
//! this module only guarantees the path handed over is lexically clean. Neither protocol performs decoding,
//! so `\` and `%` are ordinary bytes, and names need not be UTF-8.

use std::fmt;

/// Longest virtual path, in bytes, after normalisation.
pub const MAX_PATH: usize = 4096;

/// Longest single path component (file name), in bytes, matching common filesystems.
pub const MAX_NAME: usize = 255;

/// A normalised absolute virtual path (raw bytes, `/`-separated).
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct VPath(Vec<u8>);

/// Why a client-supplied path was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// The path contains a NUL byte.
    Nul,
    /// The normalised path is longer than [`MAX_PATH`] bytes.
    TooLong,
    /// A component is longer than [`MAX_NAME`] bytes.
    NameTooLong,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::Nul => "path contains a NUL byte",
            PathError::TooLong => "path too long",
            PathError::NameTooLong => "file name too long",
        })
    }
}

impl std::error::Error for PathError {}

impl VPath {
    /// The root directory `/`.
    pub fn root() -> VPath {
        VPath(vec![b'/'])
    }

    /// Normalises `path` taken from the root (a leading `/` is optional): the same as
    /// `VPath::root().resolve(path)`.
    ///
    /// # Errors
    ///
    /// As for [`resolve`](Self::resolve).
    pub fn parse(path: &[u8]) -> Result<VPath, PathError> {
        Self::build(&[], path)
    }

    /// The path as raw bytes, starting with `/`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether this is `/`.
    pub fn is_root(&self) -> bool {
        self.0.len() == 1
    }

    /// Resolve a client argument against this path (the current directory).
    ///
    /// An argument starting with `/` is absolute, anything else is relative to `self`; `""` yields `self`.
    /// Repeated slashes collapse, `.` is dropped and `..` removes the previous component (and stays at the
    /// root when there is none).
    ///
    /// # Errors
    ///
    /// [`PathError::Nul`] if `arg` contains NUL, [`PathError::NameTooLong`] if any component of `arg` is
    /// longer than [`MAX_NAME`], [`PathError::TooLong`] if the result is longer than [`MAX_PATH`].
    pub fn resolve(&self, arg: &[u8]) -> Result<VPath, PathError> {
        let base = if arg.first() == Some(&b'/') {
            &[][..]
        } else {
            self.relative()
        };
        Self::build(base, arg)
    }

    /// The parent directory; the root's parent is the root.
    pub fn parent(&self) -> VPath {
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(0) | None => VPath::root(),
            Some(i) => VPath(self.0.get(..i).unwrap_or(b"/").to_vec()),
        }
    }

    /// The last component, or `None` for the root.
    pub fn file_name(&self) -> Option<&[u8]> {
        if self.is_root() {
            return None;
        }
        self.components().last()
    }

    /// Join a name below this path.
    ///
    /// `name` is always taken as relative to `self`, even if it starts with `/`, and is otherwise
    /// normalised exactly like [`resolve`](Self::resolve) (so a `..` in it still cannot climb above `/`).
    /// For a plain file name from a directory listing this is simply `self/name`.
    ///
    /// # Errors
    ///
    /// As for [`resolve`](Self::resolve).
    pub fn join_name(&self, name: &[u8]) -> Result<VPath, PathError> {
        Self::build(self.relative(), name)
    }

    /// The path without its leading `/`; `b""` for the root.
    pub fn relative(&self) -> &[u8] {
        self.0.get(1..).unwrap_or_default()
    }

    /// The components from the root down, without separators; empty for the root.
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.relative().split(|&b| b == b'/').filter(|c| !c.is_empty())
    }

    /// Whether `self` is `base` or lies below it (component-wise, so `/ab` is not below `/a`).
    pub fn starts_with(&self, base: &VPath) -> bool {
        if base.is_root() {
            return true;
        }
        match self.0.strip_prefix(base.0.as_slice()) {
            Some(rest) => rest.is_empty() || rest.first() == Some(&b'/'),
            None => false,
        }
    }

    /// The path as text for logs, with invalid UTF-8 replaced.
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// Normalise `arg`'s components on top of the already-normalised relative path `base`.
    fn build(base: &[u8], arg: &[u8]) -> Result<VPath, PathError> {
        if arg.contains(&0) {
            return Err(PathError::Nul);
        }
        let mut parts: Vec<&[u8]> = base.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
        for comp in arg.split(|&b| b == b'/') {
            match comp {
                b"" | b"." => {}
                b".." => {
                    parts.pop();
                }
                _ if comp.len() > MAX_NAME => return Err(PathError::NameTooLong),
                _ => parts.push(comp),
            }
        }
        let len = parts.iter().map(|p| p.len() + 1).sum::<usize>().max(1);
        if len > MAX_PATH {
            return Err(PathError::TooLong);
        }
        let mut out = Vec::with_capacity(len);
        for p in &parts {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        Ok(VPath(out))
    }
}

impl Default for VPath {
    fn default() -> Self {
        VPath::root()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> VPath {
        match VPath::root().resolve(s.as_bytes()) {
            Ok(v) => v,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn resolve(base: &str, arg: &[u8]) -> Result<String, PathError> {
        p(base).resolve(arg).map(|v| v.display())
    }

    #[test]
    fn root_is_a_single_slash() {
        let r = VPath::root();
        assert_eq!(r.as_bytes(), b"/");
        assert!(r.is_root());
        assert_eq!(r.relative(), b"");
        assert_eq!(r.components().count(), 0);
        assert_eq!(r.file_name(), None);
        assert_eq!(r.parent(), r);
        assert_eq!(VPath::default(), r);
    }

    #[test]
    fn empty_argument_resolves_to_self() {
        assert_eq!(resolve("/a/b", b""), Ok("/a/b".into()));
    }

    #[test]
    fn absolute_argument_ignores_the_base() {
        assert_eq!(resolve("/a/b", b"/c"), Ok("/c".into()));
        assert_eq!(resolve("/a/b", b"/"), Ok("/".into()));
    }

    #[test]
    fn relative_argument_is_joined_to_the_base() {
        assert_eq!(resolve("/a", b"b/c"), Ok("/a/b/c".into()));
        assert_eq!(resolve("/", b"x"), Ok("/x".into()));
    }

    #[test]
    fn dot_dot_at_root_stays_at_root() {
        assert_eq!(resolve("/", b".."), Ok("/".into()));
        assert_eq!(resolve("/a", b"../../../../etc/passwd"), Ok("/etc/passwd".into()));
        assert_eq!(resolve("/a", b"/.."), Ok("/".into()));
    }

    #[test]
    fn dot_dot_removes_the_previous_component() {
        assert_eq!(resolve("/a/b", b".."), Ok("/a".into()));
        assert_eq!(resolve("/a/b", b"../c/./d/.."), Ok("/a/c".into()));
    }

    #[test]
    fn repeated_slashes_and_dots_collapse() {
        assert_eq!(resolve("/", b"//a///b/./c//"), Ok("/a/b/c".into()));
        assert_eq!(resolve("/a", b"./"), Ok("/a".into()));
    }

    #[test]
    fn dot_prefixed_names_are_ordinary() {
        assert_eq!(resolve("/", b"...//.hidden/..x"), Ok("/.../.hidden/..x".into()));
    }

    #[test]
    fn backslash_and_percent_are_ordinary_bytes() {
        assert_eq!(resolve("/", b"..\\..\\etc"), Ok("/..\\..\\etc".into()));
        assert_eq!(resolve("/", b"%2e%2e/x"), Ok("/%2e%2e/x".into()));
    }

    #[test]
    fn non_utf8_names_are_kept_as_bytes() {
        let v = VPath::root().resolve(b"caf\xe9").map(|v| v.as_bytes().to_vec());
        assert_eq!(v, Ok(b"/caf\xe9".to_vec()));
    }

    #[test]
    fn nul_is_rejected() {
        assert_eq!(resolve("/", b"a\0b"), Err(PathError::Nul));
    }

    #[test]
    fn over_long_component_is_rejected() {
        let name = vec![b'n'; MAX_NAME + 1];
        assert_eq!(VPath::root().resolve(&name), Err(PathError::NameTooLong));
        let name = vec![b'n'; MAX_NAME];
        assert!(VPath::root().resolve(&name).is_ok());
    }

    #[test]
    fn over_long_path_is_rejected() {
        let comp = [b'c'; 100];
        let mut arg = Vec::new();
        while arg.len() <= MAX_PATH {
            arg.push(b'/');
            arg.extend_from_slice(&comp);
        }
        assert_eq!(VPath::root().resolve(&arg), Err(PathError::TooLong));
    }

    #[test]
    fn path_of_exactly_max_length_is_accepted() {
        // "/" + 4095 bytes split into components of at most MAX_NAME bytes.
        let mut arg = Vec::new();
        while arg.len() < MAX_PATH {
            let room = MAX_PATH - arg.len() - 1;
            arg.push(b'/');
            arg.extend(std::iter::repeat_n(b'x', room.min(MAX_NAME)));
        }
        let v = VPath::root().resolve(&arg).map(|v| v.as_bytes().len());
        assert_eq!(v, Ok(MAX_PATH));
    }

    #[test]
    fn long_path_shortened_by_dot_dot_is_accepted() {
        let mut arg = vec![b'/'];
        arg.extend(std::iter::repeat_n(b'x', 200));
        for _ in 0..100 {
            arg.extend_from_slice(b"/yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy/..");
        }
        assert!(VPath::root().resolve(&arg).is_ok());
    }

    #[test]
    fn parent_and_file_name() {
        let v = p("/a/b/c");
        assert_eq!(v.parent(), p("/a/b"));
        assert_eq!(v.file_name(), Some(&b"c"[..]));
        assert_eq!(p("/a").parent(), VPath::root());
        assert_eq!(p("/a").file_name(), Some(&b"a"[..]));
    }

    #[test]
    fn relative_and_components() {
        let v = p("/a/b");
        assert_eq!(v.relative(), b"a/b");
        assert_eq!(v.components().collect::<Vec<_>>(), vec![&b"a"[..], &b"b"[..]]);
    }

    #[test]
    fn join_name_appends_a_component() {
        assert_eq!(p("/a").join_name(b"f.txt"), Ok(p("/a/f.txt")));
        assert_eq!(VPath::root().join_name(b"f"), Ok(p("/f")));
    }

    #[test]
    fn join_name_treats_a_leading_slash_as_relative() {
        assert_eq!(p("/a").join_name(b"/b"), Ok(p("/a/b")));
        assert_eq!(p("/a").join_name(b".."), Ok(VPath::root()));
        assert_eq!(VPath::root().join_name(b"../.."), Ok(VPath::root()));
        assert_eq!(p("/a").join_name(b"x\0"), Err(PathError::Nul));
    }

    #[test]
    fn starts_with_is_component_wise() {
        assert!(p("/a/b").starts_with(&p("/a")));
        assert!(p("/a").starts_with(&p("/a")));
        assert!(p("/a").starts_with(&VPath::root()));
        assert!(!p("/ab").starts_with(&p("/a")));
        assert!(!p("/a").starts_with(&p("/a/b")));
    }

    #[test]
    fn display_is_lossy() {
        assert_eq!(p("/ok").display(), "/ok");
        let v = VPath::root().resolve(b"\xff").map(|v| v.display());
        assert_eq!(v, Ok("/\u{fffd}".into()));
    }

    #[test]
    fn path_error_messages_are_readable() {
        assert_eq!(PathError::Nul.to_string(), "path contains a NUL byte");
        assert_eq!(PathError::TooLong.to_string(), "path too long");
        assert_eq!(PathError::NameTooLong.to_string(), "file name too long");
    }

    fn assert_normalised(v: &VPath) {
        let b = v.as_bytes();
        assert_eq!(b.first(), Some(&b'/'), "{v:?}");
        assert!(!b.contains(&0));
        if !v.is_root() {
            assert_ne!(b.last(), Some(&b'/'), "{v:?}");
        }
        for c in b.get(1..).unwrap_or_default().split(|&x| x == b'/') {
            if v.is_root() {
                break;
            }
            assert!(!c.is_empty() && c != b"." && c != b"..", "{v:?}");
        }
    }

    #[test]
    fn generated_inputs_always_resolve_to_normalised_paths() {
        const ALPHABET: &[u8] = b"//..a.b\\%\xff~";
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut base = VPath::root();
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let arg: Vec<u8> = (0..len)
                .filter_map(|_| ALPHABET.get((next() as usize) % ALPHABET.len()).copied())
                .collect();
            let Ok(v) = base.resolve(&arg) else {
                panic!("{arg:?} should resolve");
            };
            assert_normalised(&v);
            // Normalisation is idempotent: resolving the result again changes nothing.
            assert_eq!(base.resolve(v.as_bytes()), Ok(v.clone()));
            assert_eq!(VPath::root().resolve(v.relative()), Ok(v.clone()));
            assert_normalised(&v.parent());
            if let Ok(j) = v.join_name(&arg) {
                assert_normalised(&j);
            }
            base = if v.components().count() > 6 {
                VPath::root()
            } else {
                v
            };
        }
    }
}
