//! A log file written line by line by a background thread, reopened on request (after logrotate
//! has moved it away) so no line is written to the rotated file once the reopen returns.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

/// Lines queued for the writer thread at most; beyond that lines are dropped and counted (a
/// connection task never waits for the disk).
pub const QUEUE: usize = 16 * 1024;

enum Msg {
    Line(Vec<u8>),
    Reopen(mpsc::Sender<io::Result<()>>),
    Flush(mpsc::Sender<()>),
}

/// An append-only log file (created 0640 if missing).
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl LogFile {
    /// Opens (creates) `path` for appending and starts its writer thread.
    pub fn open(path: &Path) -> io::Result<LogFile> {
        let file = open_append(path)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let thread_path = path.to_owned();
        std::thread::Builder::new()
            .name("ferry-log-writer".to_owned())
            .spawn(move || write_loop(thread_path, file, rx))?;
        Ok(LogFile {
            path: path.to_owned(),
            tx,
            dropped: AtomicU64::new(0),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one line (a newline is added when missing); never blocks. `false` when the queue was
    /// full and the line was dropped.
    pub fn write_line(&self, line: impl Into<Vec<u8>>) -> bool {
        let mut line = line.into();
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        match self.tx.try_send(Msg::Line(line)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Lines dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes out the lines queued so far, then opens the path again (a new file if logrotate moved
    /// the old one away). Blocks until done: call it from a blocking context. On error the old file
    /// stays in use.
    pub fn reopen(&self) -> io::Result<()> {
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(Msg::Reopen(tx))
            .map_err(|_| io::Error::other("the log writer has stopped"))?;
        rx.recv()
            .map_err(|_| io::Error::other("the log writer has stopped"))?
    }

    /// Waits until every line queued so far is written.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
    options.open(path)
}

fn write_loop(path: PathBuf, file: File, rx: Receiver<Msg>) {
    let mut out = BufWriter::new(file);
    // Write errors (a full disk) must not stop the server; the line is lost, the next may succeed.
    while let Ok(msg) = rx.recv() {
        let mut next = Some(msg);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Line(line) => {
                    let _ = out.write_all(&line);
                }
                Msg::Flush(done) => {
                    let _ = out.flush();
                    let _ = done.send(());
                }
                Msg::Reopen(done) => {
                    let _ = out.flush();
                    let result = open_append(&path).map(|f| out = BufWriter::new(f));
                    let _ = done.send(result);
                }
            }
            next = rx.try_recv().ok();
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_starts_a_new_file_after_a_rename() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.log");
        let log = LogFile::open(&path).expect("open");
        assert!(log.write_line("one"));
        log.flush();
        std::fs::rename(&path, dir.path().join("x.log.1")).expect("rotate");
        assert!(log.write_line("two"));
        log.reopen().expect("reopen");
        assert!(log.write_line("three"));
        log.flush();
        let old = std::fs::read_to_string(dir.path().join("x.log.1")).expect("old");
        let new = std::fs::read_to_string(&path).expect("new");
        assert_eq!(old, "one\ntwo\n");
        assert_eq!(new, "three\n");
    }
}
