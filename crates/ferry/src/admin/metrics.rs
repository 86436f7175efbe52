//! The metrics `/metrics` exports, kept in a `prometheus-client` registry and fed through the
//! servers' [`Observer`] hook; the storage metrics are fed by [`super::storage::Metered`].
//! docs/operations.md lists every metric with its labels.

use std::time::Duration;

use ferry_observe::{Direction, Event, EventKind, LoginOutcome, Observer, Protocol};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use super::storage::StorageMetrics;

/// `protocol` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByProtocol {
    protocol: &'static str,
}

/// `protocol`, `method` and `outcome` labels of logins.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByLogin {
    protocol: &'static str,
    method: &'static str,
    outcome: &'static str,
}

/// `protocol` and `method` labels of the login latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByMethod {
    protocol: &'static str,
    method: &'static str,
}

/// The login methods of each protocol, as label values.
const FTP_METHODS: [&str; 2] = ["password", "anonymous"];
const SFTP_METHODS: [&str; 3] = ["password", "publickey", "keyboard-interactive"];
/// The `method` of a connection refused for a ban before it could send credentials.
const CONNECTION: &str = "connection";
/// Login outcomes, as label values.
const LOGIN_OUTCOMES: [LoginOutcome; 3] = [LoginOutcome::Ok, LoginOutcome::Failed, LoginOutcome::Banned];

/// Upper bounds (seconds) of the login latency buckets: a database lookup takes milliseconds,
/// an Argon2 verification tens to hundreds, a queue for a login turn seconds.
const LOGIN_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Upper bounds (seconds) of the transfer duration buckets: from a small file on a LAN to an
/// hour-long upload.
const TRANSFER_BUCKETS: [f64; 12] = [
    0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
];

fn login_histogram() -> Histogram {
    Histogram::new(LOGIN_BUCKETS)
}

fn transfer_histogram() -> Histogram {
    Histogram::new(TRANSFER_BUCKETS)
}

/// The methods `protocol` logs in with.
fn methods(protocol: Protocol) -> &'static [&'static str] {
    match protocol {
        Protocol::Ftp | Protocol::Ftps => &FTP_METHODS,
        Protocol::Sftp => &SFTP_METHODS,
    }
}

/// `protocol`, `direction` and `outcome` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByTransfer {
    protocol: &'static str,
    direction: &'static str,
    outcome: &'static str,
}

/// `protocol` and `direction` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByDirection {
    protocol: &'static str,
    direction: &'static str,
}

/// `protocol` and `reply` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByReply {
    protocol: &'static str,
    reply: &'static str,
}

/// `action` and `outcome` labels of hook deliveries.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByHook {
    action: &'static str,
    outcome: &'static str,
}

/// Hook actions and delivery outcomes, as label values.
const HOOK_ACTIONS: [&str; 2] = ["command", "http"];
const HOOK_OUTCOMES: [&str; 4] = ["ok", "retry", "failed", "dropped"];

/// The replies a failed data connection gets, as label values.
const DATA_FAILURE_REPLIES: [&str; 3] = ["425", "426", "522"];

/// Every metric of the server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sessions_active: Family<ByProtocol, Gauge>,
    sessions: Family<ByProtocol, Counter>,
    logins: Family<ByLogin, Counter>,
    login_latency: Family<ByMethod, Histogram, fn() -> Histogram>,
    transfers: Family<ByTransfer, Counter>,
    transfer_bytes: Family<ByDirection, Counter>,
    transfer_duration: Family<ByDirection, Histogram, fn() -> Histogram>,
    data_connection_failures: Family<ByReply, Counter>,
    hook_deliveries: Family<ByHook, Counter>,
    defender_bans: Family<ByProtocol, Counter>,
    storage: StorageMetrics,
}

const PROTOCOLS: [Protocol; 3] = [Protocol::Ftp, Protocol::Ftps, Protocol::Sftp];

impl Metrics {
    /// A registry with every metric registered, and every series present at zero so a scrape shows
    /// it (and `rate()` works) before the first event.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ferry");
        let sessions_active = Family::<ByProtocol, Gauge>::default();
        let sessions = Family::<ByProtocol, Counter>::default();
        let logins = Family::<ByLogin, Counter>::default();
        let login_latency: Family<ByMethod, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(login_histogram);
        let transfers = Family::<ByTransfer, Counter>::default();
        let transfer_bytes = Family::<ByDirection, Counter>::default();
        let transfer_duration: Family<ByDirection, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(transfer_histogram);
        let data_connection_failures = Family::<ByReply, Counter>::default();
        let hook_deliveries = Family::<ByHook, Counter>::default();
        let defender_bans = Family::<ByProtocol, Counter>::default();
        let storage = StorageMetrics::register(&mut registry);
        registry.register(
            "hook_deliveries",
            "Event hook deliveries by action (command, http) and outcome (ok; retry: an attempt \
             failed and is retried; failed: every attempt failed; dropped: the queue was full)",
            hook_deliveries.clone(),
        );
        for action in HOOK_ACTIONS {
            for outcome in HOOK_OUTCOMES {
                drop(hook_deliveries.get_or_create(&ByHook { action, outcome }));
            }
        }
        registry.register(
            "sessions_active",
            "Sessions open now, by protocol",
            sessions_active.clone(),
        );
        registry.register(
            "sessions",
            "Sessions accepted since the start, by protocol",
            sessions.clone(),
        );
        registry.register(
            "logins",
            "Login attempts by protocol, method (password, anonymous, publickey, keyboard-interactive; \
             connection: refused on connecting, before any credentials) and outcome (ok, failed; \
             banned: refused because the address is banned)",
            logins.clone(),
        );
        registry.register(
            "login_latency_seconds",
            "Time from a login's credentials arriving to the verdict (waiting for a login turn, \
             Argon2, the user database; not the failed-login delay), by protocol and method",
            login_latency.clone(),
        );
        registry.register(
            "defender_bans",
            "Addresses banned by the login defender, by the protocol of the session that caused it",
            defender_bans.clone(),
        );
        registry.register(
            "transfers",
            "File transfers ended, by protocol, direction (upload, download) and outcome (ok, failed)",
            transfers.clone(),
        );
        registry.register(
            "transfer_duration_seconds",
            "Time file transfers took (complete or not), by protocol and direction",
            transfer_duration.clone(),
        );
        registry.register(
            "transfer_bytes",
            "File bytes moved by transfers (complete or not), by protocol and direction",
            transfer_bytes.clone(),
        );
        registry.register(
            "data_connection_failures",
            "FTP data connections that failed, by protocol and the reply the client got (425 none made, \
             426 broken, 522 TLS refused)",
            data_connection_failures.clone(),
        );
        // Creating a series is enough; the returned read guard is released at once.
        for p in PROTOCOLS {
            let protocol = p.as_str();
            drop(sessions_active.get_or_create(&ByProtocol { protocol }));
            drop(sessions.get_or_create(&ByProtocol { protocol }));
            drop(defender_bans.get_or_create(&ByProtocol { protocol }));
            drop(logins.get_or_create(&ByLogin {
                protocol,
                method: CONNECTION,
                outcome: LoginOutcome::Banned.as_str(),
            }));
            for &method in methods(p) {
                drop(login_latency.get_or_create(&ByMethod { protocol, method }));
                for outcome in LOGIN_OUTCOMES {
                    drop(logins.get_or_create(&ByLogin {
                        protocol,
                        method,
                        outcome: outcome.as_str(),
                    }));
                }
            }
            if p != Protocol::Sftp {
                for reply in DATA_FAILURE_REPLIES {
                    drop(data_connection_failures.get_or_create(&ByReply { protocol, reply }));
                }
            }
            for direction in [Direction::Upload, Direction::Download] {
                let direction = direction.as_str();
                drop(transfer_bytes.get_or_create(&ByDirection { protocol, direction }));
                drop(transfer_duration.get_or_create(&ByDirection { protocol, direction }));
                for outcome in ["ok", "failed"] {
                    drop(transfers.get_or_create(&ByTransfer {
                        protocol,
                        direction,
                        outcome,
                    }));
                }
            }
        }
        Metrics {
            registry,
            sessions_active,
            sessions,
            logins,
            login_latency,
            transfers,
            transfer_bytes,
            transfer_duration,
            data_connection_failures,
            hook_deliveries,
            defender_bans,
            storage,
        }
    }

    /// The storage metrics (for [`super::storage::Metered`]).
    pub fn storage(&self) -> &StorageMetrics {
        &self.storage
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for Metrics {
    fn hook_delivered(&self, action: &'static str, outcome: &'static str) {
        self.hook_deliveries
            .get_or_create(&ByHook { action, outcome })
            .inc();
    }

    fn data_connection_failed(&self, protocol: Protocol, reply: u16) {
        // Only the replies documented; anything else would be a new series nobody expects.
        if let Some(reply) = DATA_FAILURE_REPLIES
            .into_iter()
            .find(|r| r.parse::<u16>().ok() == Some(reply))
        {
            self.data_connection_failures
                .get_or_create(&ByReply {
                    protocol: protocol.as_str(),
                    reply,
                })
                .inc();
        }
    }

    fn session_opened(&self, protocol: Protocol) {
        let labels = ByProtocol {
            protocol: protocol.as_str(),
        };
        self.sessions.get_or_create(&labels).inc();
        self.sessions_active.get_or_create(&labels).inc();
    }

    fn session_closed(&self, protocol: Protocol) {
        let labels = ByProtocol {
            protocol: protocol.as_str(),
        };
        self.sessions_active.get_or_create(&labels).dec();
    }

    fn login_attempt(
        &self,
        protocol: Protocol,
        method: &'static str,
        outcome: LoginOutcome,
        verification: Option<Duration>,
    ) {
        // Only the documented methods: anything else would be a new series nobody expects.
        let Some(&method) = methods(protocol).iter().find(|m| **m == method) else {
            return;
        };
        let protocol = protocol.as_str();
        self.logins
            .get_or_create(&ByLogin {
                protocol,
                method,
                outcome: outcome.as_str(),
            })
            .inc();
        if let Some(took) = verification {
            self.login_latency
                .get_or_create(&ByMethod { protocol, method })
                .observe(took.as_secs_f64());
        }
    }

    fn connection_banned(&self, protocol: Protocol) {
        self.logins
            .get_or_create(&ByLogin {
                protocol: protocol.as_str(),
                method: CONNECTION,
                outcome: LoginOutcome::Banned.as_str(),
            })
            .inc();
    }

    fn event(&self, event: &Event) {
        if event.event == EventKind::Ban {
            self.defender_bans
                .get_or_create(&ByProtocol {
                    protocol: event.protocol.as_str(),
                })
                .inc();
        }
    }

    fn transfer_duration(&self, protocol: Protocol, direction: Direction, duration: Duration, _ok: bool) {
        self.transfer_duration
            .get_or_create(&ByDirection {
                protocol: protocol.as_str(),
                direction: direction.as_str(),
            })
            .observe(duration.as_secs_f64());
    }

    fn transfer(&self, protocol: Protocol, direction: Direction, bytes: u64, ok: bool) {
        let (protocol, direction) = (protocol.as_str(), direction.as_str());
        let outcome = if ok { "ok" } else { "failed" };
        self.transfers
            .get_or_create(&ByTransfer {
                protocol,
                direction,
                outcome,
            })
            .inc();
        self.transfer_bytes
            .get_or_create(&ByDirection { protocol, direction })
            .inc_by(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_show_in_the_exposition() {
        let m = Metrics::new();
        m.session_opened(Protocol::Ftp);
        m.login_attempt(
            Protocol::Ftp,
            "password",
            LoginOutcome::Failed,
            Some(Duration::from_millis(30)),
        );
        m.login_attempt(Protocol::Ftp, "bogus", LoginOutcome::Failed, None);
        m.connection_banned(Protocol::Sftp);
        m.transfer(Protocol::Ftps, Direction::Upload, 1234, true);
        let text = m.encode();
        assert!(
            text.contains("ferry_sessions_total{protocol=\"ftp\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ferry_sessions_active{protocol=\"ftp\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ferry_logins_total{protocol=\"ftp\",method=\"password\",outcome=\"failed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ferry_logins_total{protocol=\"sftp\",method=\"connection\",outcome=\"banned\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("bogus"),
            "an undocumented method makes no series: {text}"
        );
        let bucket = |le: &str| {
            text.lines()
                .find(|l| {
                    l.starts_with("ferry_login_latency_seconds_bucket{")
                        && l.contains("protocol=\"ftp\"")
                        && l.contains("method=\"password\"")
                        && l.contains(&format!("le=\"{le}\""))
                })
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_owned)
        };
        assert_eq!(bucket("0.025").as_deref(), Some("0"), "{text}");
        assert_eq!(bucket("0.05").as_deref(), Some("1"), "{text}");
        assert!(
            text.contains("ferry_transfer_bytes_total{protocol=\"ftps\",direction=\"upload\"} 1234"),
            "{text}"
        );
        m.data_connection_failed(Protocol::Ftps, 522);
        m.data_connection_failed(Protocol::Ftp, 999);
        let text = m.encode();
        assert!(
            text.contains("ferry_data_connection_failures_total{protocol=\"ftps\",reply=\"522\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("999"),
            "an undocumented reply makes no series: {text}"
        );
        m.session_closed(Protocol::Ftp);
        assert!(m.encode().contains("ferry_sessions_active{protocol=\"ftp\"} 0"));
    }
}
