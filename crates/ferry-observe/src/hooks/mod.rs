//! Event hooks: on chosen events, run a command (argv, no shell; the event as `FERRY_*`
//! environment variables and as JSON on standard input) and/or POST the event's JSON to an HTTP(S)
//! URL.
//!
//! Deliveries go through a bounded queue ([`QUEUE`]) to a background task that runs up to
//! [`CONCURRENCY`] at once; each attempt has a time limit, a failed attempt is retried after a
//! growing pause (1 s, 2 s, 4 s … at most 60 s), and every outcome is counted through
//! [`Observer::hook_delivered`] and failures logged. A session never waits for a hook: when the
//! queue is full the delivery is dropped, counted and logged.
//!
//! The one exception is the pre-upload check ([`HookConfig::pre_upload`]): the upload waits for it,
//! within its own time limit, and does not start unless the command exits 0.

mod command;
mod http;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tracing::{info, warn};

use crate::{Event, EventKind, Observer, UploadCheck};

/// Deliveries waiting at most; more are dropped (and counted).
pub const QUEUE: usize = 1024;
/// Deliveries running at once.
pub const CONCURRENCY: usize = 4;
/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What to run, for which events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookConfig {
    /// Command to run on each event (program and arguments; empty: none).
    pub command: Vec<String>,
    /// URL to POST each event to (`http://` or `https://`; `None`: none).
    pub url: Option<String>,
    /// The events that trigger the command and the URL (empty: every hookable event).
    pub events: Vec<EventKind>,
    /// Time allowed for one attempt.
    pub timeout: Duration,
    /// Attempts after the first one fails.
    pub retries: u32,
    /// Command asked before every upload (empty: none); a non-zero exit refuses the upload.
    pub pre_upload: Vec<String>,
    /// Time allowed for the pre-upload command; when it runs out the upload is refused.
    pub pre_upload_timeout: Duration,
}

impl HookConfig {
    fn wants(&self, kind: EventKind) -> bool {
        if self.events.is_empty() {
            EventKind::HOOKABLE.contains(&kind)
        } else {
            self.events.contains(&kind)
        }
    }

    /// Whether anything is configured at all.
    pub fn is_empty(&self) -> bool {
        self.command.is_empty() && self.url.is_none() && self.pre_upload.is_empty()
    }
}

/// Where one delivery goes.
#[derive(Debug, Clone)]
enum Action {
    Command(Vec<String>),
    Http(String),
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Command(_) => "command",
            Action::Http(_) => "http",
        }
    }
}

#[derive(Debug)]
struct Job {
    action: Action,
    event: Arc<Event>,
    timeout: Duration,
    retries: u32,
}

/// The hook dispatcher: an [`Observer`] that queues deliveries.
#[derive(Debug)]
pub struct Hooks {
    config: RwLock<Arc<HookConfig>>,
    tx: mpsc::Sender<Job>,
    /// Told about delivery outcomes (the metrics).
    report: Option<Arc<dyn Observer>>,
}

impl Hooks {
    /// Starts the delivery task on the current tokio runtime. `report` counts outcomes.
    pub fn start(config: HookConfig, report: Option<Arc<dyn Observer>>) -> Arc<Hooks> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let hooks = Arc::new(Hooks {
            config: RwLock::new(Arc::new(config)),
            tx,
            report: report.clone(),
        });
        tokio::spawn(deliver_all(rx, report));
        hooks
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<HookConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Uses `config` for every event from now on (deliveries already queued keep theirs).
    pub fn set_config(&self, config: HookConfig) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }

    fn queue(&self, action: Action, event: &Arc<Event>, config: &HookConfig) {
        let name = action.name();
        let job = Job {
            action,
            event: Arc::clone(event),
            timeout: config.timeout,
            retries: config.retries,
        };
        if self.tx.try_send(job).is_err() {
            warn!(
                hook = name,
                event = event.event.as_str(),
                "hook delivery dropped: {QUEUE} deliveries are already waiting (slow or failing hook)"
            );
            self.reported(name, "dropped");
        }
    }

    fn reported(&self, action: &'static str, outcome: &'static str) {
        if let Some(r) = &self.report {
            r.hook_delivered(action, outcome);
        }
    }
}

impl Observer for Hooks {
    fn event(&self, e: &Event) {
        let config = self.config();
        if !config.wants(e.event) || (config.command.is_empty() && config.url.is_none()) {
            return;
        }
        let event = Arc::new(e.clone());
        if !config.command.is_empty() {
            self.queue(Action::Command(config.command.clone()), &event, &config);
        }
        if let Some(url) = &config.url {
            self.queue(Action::Http(url.clone()), &event, &config);
        }
    }

    fn check_upload(&self, e: &Event) -> Option<UploadCheck> {
        let config = self.config();
        if config.pre_upload.is_empty() {
            return None;
        }
        let argv = config.pre_upload.clone();
        let timeout = config.pre_upload_timeout;
        let event = e.clone();
        Some(Box::pin(async move {
            match command::run(&argv, &event, timeout).await {
                Ok(_) => Ok(()),
                Err(command::Failure::Exit { first_line, .. }) => {
                    let reason = if first_line.is_empty() {
                        "refused by the pre-upload hook".to_owned()
                    } else {
                        first_line
                    };
                    info!(path = event.path.as_deref().unwrap_or(""), %reason, "upload refused by the pre-upload hook");
                    Err(reason)
                }
                Err(e) => {
                    warn!(error = %e, "pre-upload hook failed; upload refused");
                    Err("the pre-upload check failed; try again later".to_owned())
                }
            }
        }))
    }
}

/// Runs the queued deliveries, [`CONCURRENCY`] at a time.
async fn deliver_all(mut rx: mpsc::Receiver<Job>, report: Option<Arc<dyn Observer>>) {
    let turns = Arc::new(Semaphore::new(CONCURRENCY));
    while let Some(job) = rx.recv().await {
        let Ok(turn) = Arc::clone(&turns).acquire_owned().await else {
            return;
        };
        let report = report.clone();
        tokio::spawn(async move {
            deliver(job, report.as_deref()).await;
            drop(turn);
        });
    }
}

/// One delivery with its retries.
async fn deliver(job: Job, report: Option<&dyn Observer>) {
    let name = job.action.name();
    let mut pause = Duration::from_secs(1);
    for attempt in 0..=job.retries {
        let result = match &job.action {
            Action::Command(argv) => command::run(argv, &job.event, job.timeout)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Action::Http(url) => http::post(url, job.event.to_json(), job.timeout).await,
        };
        match result {
            Ok(()) => {
                if let Some(r) = report {
                    r.hook_delivered(name, "ok");
                }
                return;
            }
            Err(e) if attempt < job.retries => {
                info!(hook = name, event = job.event.event.as_str(), attempt = attempt + 1, error = %e, "hook attempt failed; retrying in {}s", pause.as_secs());
                if let Some(r) = report {
                    r.hook_delivered(name, "retry");
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_BACKOFF);
            }
            Err(e) => {
                warn!(hook = name, event = job.event.event.as_str(), attempts = attempt + 1, error = %e, "hook delivery failed");
                if let Some(r) = report {
                    r.hook_delivered(name, "failed");
                }
            }
        }
    }
}
