//! The tracing subscriber: a filter that SIGHUP can change, text or JSON lines (`log_format`), on
//! standard error or in a file (`log_file`) that SIGHUP reopens. The event log's text lines are
//! written by a layout of our own (module `text`), byte for byte as the general one writes them.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, OnceLock};

use anyhow::{anyhow, Result};
use ferry_observe::LogFile;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry};

use crate::config::observe::LogFormat;

mod text;

/// What SIGHUP may change in the logging set up at start.
#[derive(Debug)]
pub struct Control {
    filter: reload::Handle<EnvFilter, Registry>,
    file: Option<Arc<LogFile>>,
}

static CONTROL: OnceLock<Control> = OnceLock::new();

/// Logs filtered by `filter` (already validated), in `format`, to `file` or standard error.
pub fn init(filter: &str, format: LogFormat, file: Option<&std::path::Path>) -> Result<()> {
    let file = match file {
        Some(path) => Some(Arc::new(LogFile::open(path).map_err(|e| {
            anyhow!(
                "cannot open the log file {}: {} (set `log_file` / `--log-file`)",
                path.display(),
                crate::state::cause(&e)
            )
        })?)),
        None => None,
    };
    let (filter, handle) = reload::Layer::new(EnvFilter::builder().parse_lossy(filter));
    let writer = || match &file {
        Some(f) => BoxMakeWriter::new(FileWriter(Arc::clone(f))),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let ansi = file.is_none() && std::io::stderr().is_terminal();
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(text::TextFormat::new())
                    .with_writer(writer())
                    .with_ansi(ansi),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_span_list(false)
                    .with_writer(writer()),
            )
            .init(),
    }
    let _ = CONTROL.set(Control { filter: handle, file });
    Ok(())
}

/// SIGHUP: reopens the log file (after logrotate moved it). Blocking; returns what happened.
pub fn reopen() -> Option<Result<std::path::PathBuf, String>> {
    let file = CONTROL.get()?.file.as_ref()?;
    Some(
        file.reopen()
            .map(|()| file.path().to_owned())
            .map_err(|e| format!("cannot reopen the log file {}: {e}", file.path().display())),
    )
}

/// SIGHUP: the new log filter.
pub fn set_filter(filter: &str) -> Result<(), String> {
    let Some(control) = CONTROL.get() else {
        return Ok(());
    };
    control
        .filter
        .reload(EnvFilter::builder().parse_lossy(filter))
        .map_err(|e| e.to_string())
}

/// Writes out what is queued for the log file (before the process exits).
pub fn flush() {
    if let Some(file) = CONTROL.get().and_then(|c| c.file.as_ref()) {
        file.flush();
    }
}

/// Each event is formatted into a buffer, then queued for the file as one line.
#[derive(Debug, Clone)]
struct FileWriter(Arc<LogFile>);

impl<'a> MakeWriter<'a> for FileWriter {
    type Writer = LineBuffer;

    fn make_writer(&'a self) -> LineBuffer {
        LineBuffer {
            buf: Vec::new(),
            file: Arc::clone(&self.0),
        }
    }
}

#[derive(Debug)]
struct LineBuffer {
    buf: Vec<u8>,
    file: Arc<LogFile>,
}

impl Write for LineBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.file.write_line(std::mem::take(&mut self.buf));
        }
    }
}
