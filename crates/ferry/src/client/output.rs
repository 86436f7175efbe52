//! What the client prints: JSON lines for scripts, progress bars on a terminal.

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// All bars of this process, drawn together so parallel transfers do not overwrite each other.
fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(MultiProgress::new)
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One JSON object from `(key, already-encoded value)` pairs.
pub fn json_line(fields: &[(&str, String)]) -> String {
    let inner: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", json_str(k)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Seconds since the epoch, or `null`.
pub fn json_time(t: Option<SystemTime>) -> String {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or_else(|| "null".into(), |d| d.as_secs().to_string())
}

/// `YYYY-MM-DD HH:MM` (UTC), or `-`.
pub fn human_time(t: Option<SystemTime>) -> String {
    match t {
        Some(t) => {
            let s = ferry_proto::listing::format_mdtm(t);
            match (s.get(0..4), s.get(4..6), s.get(6..8), s.get(8..10), s.get(10..12)) {
                (Some(y), Some(mo), Some(d), Some(h), Some(mi)) => format!("{y}-{mo}-{d} {h}:{mi}"),
                _ => "-".into(),
            }
        }
        None => "-".into(),
    }
}

/// A progress bar for one file, shown only when standard error is a terminal and output is for people.
pub fn bar(name: &str, len: Option<u64>, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    let style = ProgressStyle::with_template(
        "{msg:30!} {bytes:>10}/{total_bytes:10} {binary_bytes_per_sec:>12} {wide_bar} {eta:>4}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(name.to_owned());
    multi().add(bar)
}

/// The total of a multi-file operation (put of several files, mirror): bytes, rate, ETA and files done,
/// drawn above the per-file bars; shown only on a terminal, for people, and for more than one file.
#[derive(Debug, Clone)]
pub struct Total {
    bar: ProgressBar,
    files: usize,
    done: Arc<AtomicUsize>,
}

impl Total {
    /// A total over `files` files of `bytes` bytes.
    pub fn new(files: usize, bytes: u64, quiet: bool) -> Total {
        let bar = if quiet || files < 2 || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let style = ProgressStyle::with_template(
                "{msg:30!} {bytes:>10}/{total_bytes:10} {binary_bytes_per_sec:>12} {wide_bar} {eta:>4}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bar = multi().insert(0, ProgressBar::new(bytes));
            bar.set_style(style);
            bar
        };
        let total = Total {
            bar,
            files,
            done: Arc::new(AtomicUsize::new(0)),
        };
        total.show_files(0);
        total
    }

    /// Bytes transferred.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// One more file finished (copied or failed).
    pub fn file_done(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.show_files(done);
    }

    /// Files finished so far.
    #[cfg(test)]
    pub fn files_done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn show_files(&self, done: usize) {
        self.bar
            .set_message(format!("total: {done}/{} files", self.files));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_control_characters_and_quotes() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u0001""#);
        assert_eq!(json_line(&[("n", "1".into())]), r#"{"n":1}"#);
    }

    #[test]
    fn total_counts_files_and_stays_hidden_off_a_terminal() {
        let t = Total::new(3, 300, false);
        t.inc(100);
        t.file_done();
        t.file_done();
        assert_eq!(t.files_done(), 2);
        // Test output is not a terminal: nothing is drawn.
        assert!(t.bar.is_hidden());
        t.finish();
    }
}
