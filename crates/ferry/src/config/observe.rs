//! Logging, transfer-log, shutdown and hook settings.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use ferry_observe::HookConfig;

use super::layer::{Value, Values};
use super::parse;

/// How the server's log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One line of text per event, `key=value` fields.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logs, the transfer log, the shutdown grace period and the hooks.
#[derive(Debug, Clone)]
pub struct ObserveSettings {
    /// `log_format`.
    pub log_format: LogFormat,
    /// `log_file` (standard error when not set).
    pub log_file: Option<PathBuf>,
    /// `xferlog`.
    pub xferlog: Option<PathBuf>,
    /// `shutdown_grace_secs`.
    pub shutdown_grace: Duration,
    /// `[hooks]`.
    pub hooks: HookConfig,
}

fn texts(v: &Values, key: &str) -> Result<Vec<String>> {
    Ok(v.list(key, |x| match x {
        Value::Text(s) => Some(s.clone()),
        _ => None,
    })?
    .unwrap_or_default())
}

/// Reads the settings.
pub fn build(v: &Values) -> Result<ObserveSettings> {
    let events = texts(v, "hooks.events")?
        .iter()
        .filter_map(|name| parse::hook_event(name).ok())
        .collect();
    Ok(ObserveSettings {
        log_format: match v.text("log_format")?.as_str() {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        },
        log_file: v.path("log_file")?,
        xferlog: v.path("xferlog")?,
        shutdown_grace: v.secs("shutdown_grace_secs")?,
        hooks: HookConfig {
            command: texts(v, "hooks.command")?,
            url: v.opt("hooks.url", |x| match x {
                Value::Text(s) => Some(s.clone()),
                _ => None,
            })?,
            events,
            timeout: v.secs("hooks.timeout_secs")?,
            retries: v.number("hooks.retries")?,
            pre_upload: texts(v, "hooks.pre_upload_command")?,
            pre_upload_timeout: v.secs("hooks.pre_upload_timeout_secs")?,
        },
    })
}
