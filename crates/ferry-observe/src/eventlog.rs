//! The event log: every [`Event`] as one `tracing` line at info, target `ferry::event`, message
//! `event`, with the event's fields under their documented names (docs/logging.md). The text or
//! JSON layout is the subscriber's (`log_format`); strings from clients are escaped in text.

use ferry_proto::untrusted::Untrusted;
use tracing::field::{display, DisplayValue};

use crate::{Event, Observer};

/// Logs every event.
#[derive(Debug, Default)]
pub struct EventLog;

impl Observer for EventLog {
    fn event(&self, e: &Event) {
        // Escaped as the line is written, without a copy of each string first.
        fn esc(s: &Option<String>) -> Option<DisplayValue<Untrusted<'_>>> {
            s.as_deref().map(|s| display(Untrusted::str(s)))
        }
        tracing::info!(
            target: "ferry::event",
            event = e.event.as_str(),
            protocol = e.protocol.as_str(),
            session = e.session,
            client_ip = %e.client_ip,
            client_port = e.client_port,
            user = esc(&e.user),
            method = e.method,
            path = esc(&e.path),
            new_path = esc(&e.new_path),
            bytes = e.bytes,
            duration_ms = e.duration_ms,
            result = e.result.as_str(),
            error = esc(&e.error),
            until = e.until.as_deref(),
            "event"
        );
    }
}
