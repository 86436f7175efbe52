//! The metrics `/metrics` exports, kept in a `prometheus-client` registry and fed through the
//! servers' [`Observer`] hook (and, for SFTP logins, the login guard).

use ferry_observe::{Direction, Observer, Protocol};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `protocol` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByProtocol {
    protocol: &'static str,
}

/// `protocol` and `outcome` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByOutcome {
    protocol: &'static str,
    outcome: &'static str,
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
    logins: Family<ByOutcome, Counter>,
    transfers: Family<ByTransfer, Counter>,
    transfer_bytes: Family<ByDirection, Counter>,
    data_connection_failures: Family<ByReply, Counter>,
    hook_deliveries: Family<ByHook, Counter>,
}

const PROTOCOLS: [Protocol; 3] = [Protocol::Ftp, Protocol::Ftps, Protocol::Sftp];

impl Metrics {
    /// A registry with every metric registered, and every series present at zero so a scrape shows
    /// it (and `rate()` works) before the first event.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ferry");
        let sessions_active = Family::<ByProtocol, Gauge>::default();
        let sessions = Family::<ByProtocol, Counter>::default();
        let logins = Family::<ByOutcome, Counter>::default();
        let transfers = Family::<ByTransfer, Counter>::default();
        let transfer_bytes = Family::<ByDirection, Counter>::default();
        let data_connection_failures = Family::<ByReply, Counter>::default();
        let hook_deliveries = Family::<ByHook, Counter>::default();
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
            "Login attempts by protocol and outcome (ok, failed)",
            logins.clone(),
        );
        registry.register(
            "transfers",
            "File transfers ended, by protocol, direction (upload, download) and outcome (ok, failed)",
            transfers.clone(),
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
            for outcome in ["ok", "failed"] {
                drop(logins.get_or_create(&ByOutcome { protocol, outcome }));
            }
            if p != Protocol::Sftp {
                for reply in DATA_FAILURE_REPLIES {
                    drop(data_connection_failures.get_or_create(&ByReply { protocol, reply }));
                }
            }
            for direction in [Direction::Upload, Direction::Download] {
                let direction = direction.as_str();
                drop(transfer_bytes.get_or_create(&ByDirection { protocol, direction }));
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
            transfers,
            transfer_bytes,
            data_connection_failures,
            hook_deliveries,
        }
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

    fn login(&self, protocol: Protocol, ok: bool) {
        let labels = ByOutcome {
            protocol: protocol.as_str(),
            outcome: if ok { "ok" } else { "failed" },
        };
        self.logins.get_or_create(&labels).inc();
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
        m.login(Protocol::Ftp, false);
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
            text.contains("ferry_logins_total{protocol=\"ftp\",outcome=\"failed\"} 1"),
            "{text}"
        );
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
