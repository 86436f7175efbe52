//! The transfer log in the xferlog format of wu-ftpd and ProFTPD, one line per finished transfer,
//! for the log analysers that read it:
//!
//! `current-time transfer-time remote-host file-size filename transfer-type special-action-flag
//! direction access-mode username service-name authentication-method authenticated-user-id
//! completion-status`
//!
//! The time is UTC. White space and control characters in file and user names become `_` so the
//! line keeps its fourteen fields; the service name is `ftp` for FTP and FTPS and `sftp` for SFTP.

use std::sync::Arc;
use std::time::SystemTime;

use crate::{Event, EventKind, LogFile, Observer, Outcome};

/// Writes transfer events to an xferlog file.
#[derive(Debug)]
pub struct Xferlog {
    file: Arc<LogFile>,
}

impl Xferlog {
    /// Writes to `file`.
    pub fn new(file: Arc<LogFile>) -> Self {
        Xferlog { file }
    }
}

impl Observer for Xferlog {
    fn event(&self, e: &Event) {
        if let Some(line) = line(e) {
            self.file.write_line(line);
        }
    }
}

/// The xferlog line of a transfer event (`None` for other events).
pub(crate) fn line(e: &Event) -> Option<String> {
    let direction = match e.event {
        EventKind::Upload => 'i',
        EventKind::Download => 'o',
        _ => return None,
    };
    let user = e.user.as_deref().unwrap_or("-");
    let anonymous = e.method == Some("anonymous");
    let secs = e.duration_ms.unwrap_or(0).div_ceil(1000);
    let service = match e.protocol {
        crate::Protocol::Sftp => "sftp",
        _ => "ftp",
    };
    Some(format!(
        "{} {secs} {} {} {} b _ {direction} {} {} {service} 0 * {}",
        crate::time::ctime(at(e)),
        e.client_ip,
        e.bytes.unwrap_or(0),
        field(e.path.as_deref().unwrap_or("-")),
        if anonymous { 'a' } else { 'r' },
        field(user),
        if e.result == Outcome::Ok { 'c' } else { 'i' },
    ))
}

fn at(e: &Event) -> SystemTime {
    e.at
}

/// One field: no white space or control characters, never empty.
fn field(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if out.is_empty() {
        "-".to_owned()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Protocol;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn upload_line_has_the_fourteen_fields() {
        let mut e = Event::new(
            EventKind::Upload,
            Protocol::Ftps,
            3,
            "192.0.2.9:5000".parse().expect("addr"),
        );
        e.at = UNIX_EPOCH + Duration::from_secs(1_796_425_206);
        e.user = Some("alice".into());
        e.method = Some("password");
        e.path = Some("/in/my file.txt".into());
        e.bytes = Some(1234);
        let e = e.with_duration(Duration::from_millis(1500));
        let l = line(&e).expect("a transfer");
        assert_eq!(
            l,
            "Fri Dec  4 23:00:06 2026 2 192.0.2.9 1234 /in/my_file.txt b _ i r alice ftp 0 * c"
        );
        // ctime's five words plus thirteen more.
        assert_eq!(l.split_whitespace().count(), 18);
        let mut d = e.clone();
        d.event = EventKind::Download;
        d.protocol = Protocol::Sftp;
        d.method = Some("anonymous");
        let d = d.with_result(Err("broken".into()));
        assert!(line(&d).expect("transfer").ends_with(" o a alice sftp 0 * i"));
        let mut other = e;
        other.event = EventKind::Delete;
        assert!(line(&other).is_none());
    }
}
