//! Capturing what the servers log in-process, and checking that untrusted input leaves bounded,
//! escaped lines.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Everything logged in this test process since [`capture`] was first called.
#[derive(Debug, Clone)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// The log so far, lossily decoded.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

/// Installs (once per test process) a tracing subscriber with `filter`, without colours, writing
/// into memory. Later calls return the same capture; their filter is ignored.
pub fn capture(filter: &str) -> Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Captured(Arc::new(Mutex::new(Vec::new())));
        let sink = log.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .init();
        log
    })
    .clone()
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Fails the test unless every line of `log` is shorter than `max_len` bytes and holds no raw
/// control character (tabs aside): what peer-provided strings must be reduced to before logging.
pub fn assert_lines_bounded(log: &str, max_len: usize) {
    for line in log.lines() {
        let head: String = line.chars().take(200).collect();
        assert!(line.len() < max_len, "log line of {} bytes: {head}…", line.len());
        assert!(
            !line.chars().any(|c| c.is_control() && c != '\t'),
            "raw control character in {line:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::assert_lines_bounded;

    #[test]
    fn short_escaped_lines_pass() {
        assert_lines_bounded("login failed user=\\u{1b}[31muuu…(65005 bytes)\n\tnext", 600);
    }

    #[test]
    #[should_panic(expected = "log line of")]
    fn a_long_line_fails() {
        assert_lines_bounded(&"u".repeat(700), 600);
    }

    #[test]
    #[should_panic(expected = "raw control character")]
    fn a_raw_escape_fails() {
        assert_lines_bounded("user=\u{1b}[31m", 600);
    }
}
