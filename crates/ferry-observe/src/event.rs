//! The event model: one [`Event`] per session start and end, login attempt, file operation and
//! transfer, with the same fields for FTP and SFTP. The event log, the xferlog writer and the hooks
//! all read it; the field names are documented in docs/logging.md and never change meaning.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::Protocol;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A connection was admitted (after the connection limits and bans).
    SessionStart,
    /// A session ended (`duration_ms` is its length).
    SessionEnd,
    /// A login succeeded.
    Login,
    /// A login attempt failed.
    LoginFailed,
    /// A file was stored (complete or not: see `result`).
    Upload,
    /// A file was sent.
    Download,
    /// A file was deleted.
    Delete,
    /// A file or directory was renamed (`path` to `new_path`).
    Rename,
    /// A directory was created.
    Mkdir,
    /// A directory was removed.
    Rmdir,
    /// The client's address was banned by the login defender.
    Ban,
}

impl EventKind {
    /// Every kind, in documentation order.
    pub const ALL: [EventKind; 11] = [
        EventKind::SessionStart,
        EventKind::SessionEnd,
        EventKind::Login,
        EventKind::LoginFailed,
        EventKind::Upload,
        EventKind::Download,
        EventKind::Delete,
        EventKind::Rename,
        EventKind::Mkdir,
        EventKind::Rmdir,
        EventKind::Ban,
    ];

    /// The kinds hooks can be run for (every kind but session start and end).
    pub const HOOKABLE: [EventKind; 9] = [
        EventKind::Upload,
        EventKind::Download,
        EventKind::Delete,
        EventKind::Rename,
        EventKind::Mkdir,
        EventKind::Rmdir,
        EventKind::Login,
        EventKind::LoginFailed,
        EventKind::Ban,
    ];

    /// The name used in logs, JSON and `hooks.events`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SessionStart => "session_start",
            EventKind::SessionEnd => "session_end",
            EventKind::Login => "login",
            EventKind::LoginFailed => "login_failed",
            EventKind::Upload => "upload",
            EventKind::Download => "download",
            EventKind::Delete => "delete",
            EventKind::Rename => "rename",
            EventKind::Mkdir => "mkdir",
            EventKind::Rmdir => "rmdir",
            EventKind::Ban => "ban",
        }
    }

    /// The kind named `name` (as [`EventKind::as_str`] writes it).
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One event, with every field the logs and hooks show. Strings that came from a client (user
/// names, paths) are kept as sent (lossy UTF-8); each sink escapes them for its own format.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// What happened.
    pub event: EventKind,
    /// When, as RFC 3339 UTC with milliseconds.
    pub time: String,
    /// The protocol of the session.
    pub protocol: Protocol,
    /// The session's number, unique within this process (links the events of one session).
    pub session: u64,
    /// The client's IP address (the one a PROXY header named, behind a load balancer).
    pub client_ip: String,
    /// The client's port.
    pub client_port: u16,
    /// The user, once known (for `login_failed`: the name the client tried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// How the user authenticated: `password`, `publickey`, `keyboard-interactive` or `anonymous`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    /// The virtual path (as the user sees it, from their home).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The new path of a rename.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_path: Option<String>,
    /// File bytes moved (transfers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// How long the transfer or session took, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `ok` or `failed`.
    pub result: Outcome,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Until when a ban holds (RFC 3339 UTC), for `ban`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// When the event was made (for the xferlog's time stamp); not serialised, `time` is.
    #[serde(skip)]
    pub at: SystemTime,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// It failed (see `error`).
    Failed,
}

impl Outcome {
    /// `ok` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
        }
    }
}

impl Event {
    /// An event of `kind` for the session `session` of `client`, now, successful, with no other
    /// field set.
    pub fn new(kind: EventKind, protocol: Protocol, session: u64, client: SocketAddr) -> Event {
        let at = SystemTime::now();
        Event {
            event: kind,
            time: crate::time::rfc3339(at),
            protocol,
            session,
            client_ip: ferry_proto_ip(client),
            client_port: client.port(),
            user: None,
            method: None,
            path: None,
            new_path: None,
            bytes: None,
            duration_ms: None,
            result: Outcome::Ok,
            error: None,
            until: None,
            at,
        }
    }

    /// The same event with `result`: an error message makes it `failed`.
    pub fn with_result(mut self, result: Result<(), String>) -> Event {
        match result {
            Ok(()) => self.result = Outcome::Ok,
            Err(e) => {
                self.result = Outcome::Failed;
                self.error = Some(e);
            }
        }
        self
    }

    /// Sets the duration.
    pub fn with_duration(mut self, d: Duration) -> Event {
        self.duration_ms = Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// The event as one line of JSON (what hooks receive on stdin or as the POST body).
    pub fn to_json(&self) -> String {
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The event as environment variables for a hook command: `FERRY_EVENT`, `FERRY_USER`, ...
    /// (only the fields that are set; NUL bytes, which cannot be in a variable, become `?`).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let clean = |s: &str| s.replace('\0', "?");
        let mut vars = vec![
            ("FERRY_EVENT", self.event.as_str().to_owned()),
            ("FERRY_TIME", self.time.clone()),
            ("FERRY_PROTOCOL", self.protocol.as_str().to_owned()),
            ("FERRY_SESSION", self.session.to_string()),
            ("FERRY_CLIENT_IP", self.client_ip.clone()),
            ("FERRY_CLIENT_PORT", self.client_port.to_string()),
            ("FERRY_RESULT", self.result.as_str().to_owned()),
        ];
        let optional = [
            ("FERRY_USER", self.user.as_deref().map(clean)),
            ("FERRY_METHOD", self.method.map(str::to_owned)),
            ("FERRY_PATH", self.path.as_deref().map(clean)),
            ("FERRY_NEW_PATH", self.new_path.as_deref().map(clean)),
            ("FERRY_BYTES", self.bytes.map(|b| b.to_string())),
            ("FERRY_DURATION_MS", self.duration_ms.map(|d| d.to_string())),
            ("FERRY_ERROR", self.error.as_deref().map(clean)),
            ("FERRY_UNTIL", self.until.clone()),
        ];
        vars.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        vars
    }
}

/// The client's IP as text, IPv4-mapped IPv6 addresses as IPv4.
fn ferry_proto_ip(client: SocketAddr) -> String {
    match client.ip() {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        v4 => v4.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_documented_fields_and_omits_unset_ones() {
        let mut e = Event::new(
            EventKind::Upload,
            Protocol::Sftp,
            7,
            "[::ffff:192.0.2.1]:4000".parse().expect("addr"),
        );
        e.user = Some("alice".into());
        e.path = Some("/a b\n.txt".into());
        e.bytes = Some(42);
        let e = e.with_result(Err("quota".into()));
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).expect("json");
        assert_eq!(v["event"], "upload");
        assert_eq!(v["protocol"], "sftp");
        assert_eq!(v["client_ip"], "192.0.2.1");
        assert_eq!(v["path"], "/a b\n.txt");
        assert_eq!(v["bytes"], 42);
        assert_eq!(v["result"], "failed");
        assert_eq!(v["error"], "quota");
        assert!(v.get("new_path").is_none() && v.get("method").is_none());
        let env = e.env();
        assert!(env.contains(&("FERRY_PATH", "/a b\n.txt".to_owned())));
        assert!(!env.iter().any(|(k, _)| *k == "FERRY_NEW_PATH"));
    }

    #[test]
    fn kind_names_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::parse("nope"), None);
    }
}
