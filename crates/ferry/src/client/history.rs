//! The shell's command history on disk: `$XDG_DATA_HOME/ferry/shell_history` (else
//! `~/.local/share/ferry/shell_history`), at most [`MAX_ENTRIES`] lines, written with mode 0600 in a
//! directory of mode 0700. Lines that may carry a password (`user …`, URLs with `user:password@`) are
//! never recorded.

use std::path::{Path, PathBuf};

use rustyline::history::{History, SearchDirection};

/// Lines kept, in memory and on disk.
pub const MAX_ENTRIES: usize = 1000;
/// A history file larger than this is not read (it was not written by ferry).
const MAX_FILE: u64 = 1 << 20;

/// Where the history lives, if there is a home or data directory.
pub fn path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })?;
    Some(base.join("ferry").join("shell_history"))
}

/// Whether a line may be kept: not blank, no `user` command (its password may follow), no URL with a
/// password in it.
pub fn keep(line: &str) -> bool {
    let t = line.trim();
    if t.is_empty() || t.starts_with("user ") || t == "user" {
        return false;
    }
    !t.split_whitespace().any(url_with_password)
}

fn url_with_password(word: &str) -> bool {
    let Some((_, rest)) = word.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// The last [`MAX_ENTRIES`] lines of the history file (none if it is missing, too large or unreadable).
pub fn load(path: &Path) -> Vec<String> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    if meta.len() > MAX_FILE {
        return Vec::new();
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let lines: Vec<String> = text.lines().filter(|l| keep(l)).map(str::to_owned).collect();
    let skip = lines.len().saturating_sub(MAX_ENTRIES);
    lines.into_iter().skip(skip).collect()
}

/// Writes the last [`MAX_ENTRIES`] entries of `history` to `path` (0600, through a temporary file
/// renamed into place).
///
/// # Errors
///
/// Creating the directory or writing the file.
pub fn save(path: &Path, history: &dyn History) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut text = String::new();
    let start = history.len().saturating_sub(MAX_ENTRIES);
    for i in start..history.len() {
        if let Ok(Some(r)) = history.get(i, SearchDirection::Forward) {
            if keep(&r.entry) && !r.entry.contains('\n') {
                text.push_str(&r.entry);
                text.push('\n');
            }
        }
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustyline::history::MemHistory;

    #[test]
    fn passwords_stay_out_of_the_history() {
        assert!(keep("get a.txt"));
        assert!(keep("open ftp://alice@host/dir"));
        assert!(!keep("open ftp://alice:s3cret@host/dir"));
        assert!(!keep("open sftp://bob:pw@[::1]:22/"));
        assert!(!keep("user alice s3cret"));
        assert!(!keep("   "));
    }

    #[test]
    fn saved_history_is_bounded_private_and_loads_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/shell_history");
        let mut h = MemHistory::new();
        for i in 0..MAX_ENTRIES + 50 {
            h.add(&format!("ls {i}")).expect("add");
        }
        h.add("open ftp://a:pw@h/").expect("add");
        save(&path, &h).expect("save");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().expect("dir"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        let lines = load(&path);
        assert!(lines.len() <= MAX_ENTRIES);
        assert_eq!(
            lines.last().map(String::as_str),
            Some(&*format!("ls {}", MAX_ENTRIES + 49))
        );
        assert!(!lines.iter().any(|l| l.contains("pw")));
    }
}
