//! The event sinks of `ferry serve` (metrics, event log, xferlog, hooks) and SIGHUP: reopen the log
//! files, read the configuration again, apply what can change in a running server and say which
//! changed settings need a restart.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Result};
use ferry_observe::{EventLog, Fanout, Hooks, LogFile, Observer, Xferlog};
use tracing::{info, warn};

use crate::config::observe::ObserveSettings;
use crate::config::Settings;

/// The log filter of `ferry serve` when `log` is not set.
pub const DEFAULT_SERVE_LOG: &str = "info,rustls=error";

/// Settings a SIGHUP applies to the running server (tables: every key in them). The certificate is
/// read again and `masquerade_address` and `masquerade_networks` resolved again on every SIGHUP,
/// changed or not.
const RELOADABLE: &[&str] = &[
    "log",
    "max_connections",
    "max_connections_per_ip",
    "max_pending_connections",
    "greeting",
    "login_timeout_secs",
    "idle_timeout_secs",
    "data_timeout_secs",
    "max_login_attempts",
    "masquerade_address",
    "masquerade_networks",
    "ftps.certificate",
    "ftps.private_key",
    "hooks.",
    "quota.",
    "bandwidth.",
];

/// The running servers, for settings that change in them.
#[derive(Debug)]
pub struct Servers<'a> {
    /// The FTP server.
    pub ftp: &'a ferry_ftpd::Server,
    /// The SFTP server, when enabled.
    pub sftp: Option<&'a ferry_sftpd::Server>,
    /// The user database (default quotas and bandwidth limits).
    pub users: &'a ferry_auth::UserStore,
}

/// What the servers report to.
#[derive(Debug)]
pub struct Sinks {
    /// Everything, in one observer for the servers.
    pub observer: Arc<dyn Observer>,
    hooks: Arc<Hooks>,
    xferlog: Option<Arc<LogFile>>,
}

impl Sinks {
    /// The metrics, the event log, the xferlog (if configured) and the hooks.
    pub fn start(settings: &ObserveSettings, metrics: &Arc<crate::admin::Metrics>) -> Result<Sinks> {
        let xferlog = match &settings.xferlog {
            Some(path) => Some(Arc::new(LogFile::open(path).map_err(|e| {
                anyhow!(
                    "cannot open the transfer log {}: {} (set `xferlog` / `--xferlog`)",
                    path.display(),
                    crate::state::cause(&e)
                )
            })?)),
            None => None,
        };
        let report: Arc<dyn Observer> = metrics.clone();
        let hooks = Hooks::start(settings.hooks.clone(), Some(report));
        let mut all: Vec<Arc<dyn Observer>> = vec![metrics.clone(), Arc::new(EventLog)];
        if let Some(file) = &xferlog {
            all.push(Arc::new(Xferlog::new(Arc::clone(file))));
        }
        all.push(hooks.clone());
        Ok(Sinks {
            observer: Arc::new(Fanout(all)),
            hooks,
            xferlog,
        })
    }

    /// SIGHUP: reopens the log file and the transfer log (logrotate has moved them away).
    pub async fn reopen(&self) {
        let xferlog = self.xferlog.clone();
        let done = tokio::task::spawn_blocking(move || {
            let log = crate::logging::reopen();
            let xfer = xferlog.map(|f| {
                f.reopen()
                    .map(|()| f.path().to_owned())
                    .map_err(|e| format!("cannot reopen the transfer log {}: {e}", f.path().display()))
            });
            (log, xfer)
        })
        .await;
        let Ok((log, xfer)) = done else { return };
        for result in [log, xfer].into_iter().flatten() {
            report_reopen(result);
        }
    }
}

fn report_reopen(result: Result<PathBuf, String>) {
    match result {
        Ok(path) => info!(path = %path.display(), "SIGHUP: log file reopened"),
        Err(e) => warn!(error = %e, "SIGHUP: keeping the old log file"),
    }
}

/// SIGHUP: applies the settings of `new` that can change while running, keeps the others (and
/// says which of those changed: they need a restart).
pub fn apply(current: &mut Settings, new: Settings, sinks: &Sinks, servers: &Servers<'_>) {
    let keys: BTreeSet<&'static str> = current.values.keys().chain(new.values.keys()).copied().collect();
    let changed: Vec<&'static str> = keys
        .into_iter()
        .filter(|k| current.values.get(k) != new.values.get(k))
        .collect();
    let (applied, restart): (Vec<&str>, Vec<&str>) = changed.into_iter().partition(|k| reloadable(k));
    if applied.contains(&"log") {
        let filter = new.log.as_deref().unwrap_or(DEFAULT_SERVE_LOG);
        if let Err(e) = crate::logging::set_filter(filter) {
            warn!(error = %e, "SIGHUP: cannot change the log filter");
        }
        current.log = new.log.clone();
    }
    if applied.iter().any(|k| k.starts_with("max_")) {
        current.ftpd.limits = new.ftpd.limits.clone();
        servers.ftp.set_limits(new.ftpd.limits.clone());
        if let Some(sftp) = servers.sftp {
            sftp.set_limits(new.ftpd.limits.clone());
        }
    }
    const SESSION: [&str; 5] = [
        "greeting",
        "login_timeout_secs",
        "idle_timeout_secs",
        "data_timeout_secs",
        "max_login_attempts",
    ];
    if applied.iter().any(|k| SESSION.contains(k)) {
        let tls = current.ftpd.session.tls;
        current.ftpd.session = ferry_proto::session::Config {
            tls,
            ..new.ftpd.session.clone()
        };
        current.ftpd.data_timeout = new.ftpd.data_timeout;
        servers
            .ftp
            .set_session_config(current.ftpd.session.clone(), current.ftpd.data_timeout);
        if let Some(sftp) = servers.sftp {
            sftp.set_timeouts(
                current.ftpd.session.login_timeout,
                current.ftpd.session.idle_timeout,
            );
        }
    }
    if applied.iter().any(|k| k.starts_with("hooks.")) {
        sinks.hooks.set_config(new.observe.hooks.clone());
        current.observe.hooks = new.observe.hooks.clone();
    }
    if applied
        .iter()
        .any(|k| k.starts_with("quota.") || k.starts_with("bandwidth."))
    {
        // Applies from each user's next login; sessions already logged in keep their limits.
        servers.users.set_default_limits(new.default_limits);
        current.default_limits = new.default_limits;
    }
    if applied.contains(&"masquerade_address") {
        current.masquerade_host = new.masquerade_host.clone();
        current.ftpd.masquerade_address = new.ftpd.masquerade_address;
    }
    if applied.contains(&"masquerade_networks") {
        current.masquerade_rules = new.masquerade_rules.clone();
    }
    if applied.iter().any(|k| k.starts_with("ftps.")) {
        current.ftps.certificate = new.ftps.certificate.clone();
        current.ftps.private_key = new.ftps.private_key.clone();
    }
    for key in &applied {
        match new.values.get(key) {
            Some(v) => current.values.insert(key, v.clone()),
            None => current.values.remove(key),
        };
    }
    if applied.is_empty() {
        info!("SIGHUP: configuration read again; no reloadable setting changed");
    } else {
        info!(settings = %applied.join(", "), "SIGHUP: configuration reloaded; changed");
    }
    if !restart.is_empty() {
        warn!(
            settings = %restart.join(", "),
            "SIGHUP: these changed settings take effect only after a restart"
        );
    }
}

fn reloadable(key: &str) -> bool {
    RELOADABLE
        .iter()
        .any(|r| key == *r || (r.ends_with('.') && key.starts_with(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_keys_are_matched_exactly() {
        assert!(reloadable("hooks.url"));
        assert!(reloadable("quota.default_bytes"));
        assert!(reloadable("bandwidth.default_upload_kib"));
        assert!(reloadable("log"));
        assert!(!reloadable("log_format"));
        assert!(reloadable("idle_timeout_secs"));
        assert!(!reloadable("defender.threshold"));
        assert!(!reloadable("listen"));
        assert!(!reloadable("ftps.policy"));
    }
}
