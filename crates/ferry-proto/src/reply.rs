//! FTP replies: named reply codes and the single/multi-line encoder (RFC 959 §4.2).
//!
//! Reply text is bytes because paths (257, MLST) may not be UTF-8. The encoder guarantees that a reply can
//! never be split or forged by its content: CR and LF inside a line are neutralised and 0xFF is escaped for
//! the Telnet NVT. It does not decide *which* reply to send; that is the session's job.

use std::fmt;

use crate::telnet::escape_iac;

/// A three-digit FTP reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(pub u16);

#[allow(missing_docs)]
impl ReplyCode {
    pub const RESTART_MARKER: Self = Self(110);
    pub const SERVICE_READY_SOON: Self = Self(120);
    pub const DATA_ALREADY_OPEN: Self = Self(125);
    /// 150: file status okay; about to open data connection.
    pub const FILE_STATUS_OK: Self = Self(150);
    pub const COMMAND_OK: Self = Self(200);
    /// 202: command not implemented, superfluous at this site (ALLO, ACCT).
    pub const SUPERFLUOUS: Self = Self(202);
    pub const SYSTEM_STATUS: Self = Self(211);
    pub const DIRECTORY_STATUS: Self = Self(212);
    pub const FILE_STATUS: Self = Self(213);
    pub const HELP: Self = Self(214);
    pub const SYSTEM_TYPE: Self = Self(215);
    pub const SERVICE_READY: Self = Self(220);
    pub const CLOSING_CONTROL: Self = Self(221);
    /// 225: data connection open; no transfer in progress.
    pub const DATA_OPEN_NO_TRANSFER: Self = Self(225);
    /// 226: closing data connection; requested action successful (or ABOR completed).
    pub const CLOSING_DATA: Self = Self(226);
    pub const PASSIVE_MODE: Self = Self(227);
    pub const EXTENDED_PASSIVE_MODE: Self = Self(229);
    pub const LOGGED_IN: Self = Self(230);
    /// 234: security data exchange complete; AUTH TLS accepted (RFC 4217 §4).
    pub const AUTH_OK: Self = Self(234);
    pub const FILE_ACTION_OK: Self = Self(250);
    pub const PATH_CREATED: Self = Self(257);
    pub const NEED_PASSWORD: Self = Self(331);
    pub const NEED_ACCOUNT: Self = Self(332);
    pub const FILE_ACTION_PENDING: Self = Self(350);
    pub const SERVICE_NOT_AVAILABLE: Self = Self(421);
    pub const CANT_OPEN_DATA: Self = Self(425);
    pub const TRANSFER_ABORTED: Self = Self(426);
    pub const FILE_BUSY: Self = Self(450);
    pub const LOCAL_ERROR: Self = Self(451);
    pub const INSUFFICIENT_STORAGE: Self = Self(452);
    pub const SYNTAX_ERROR: Self = Self(500);
    pub const ARGUMENT_ERROR: Self = Self(501);
    pub const NOT_IMPLEMENTED: Self = Self(502);
    pub const BAD_SEQUENCE: Self = Self(503);
    pub const PARAMETER_NOT_IMPLEMENTED: Self = Self(504);
    /// 521: data connection cannot be opened with this PROT setting (RFC 2228).
    pub const PROT_LEVEL_DENIED: Self = Self(521);
    /// 522: network protocol not supported (RFC 2428); also the data-TLS refusal (vsftpd's usage).
    pub const PROTOCOL_NOT_SUPPORTED: Self = Self(522);
    pub const NOT_LOGGED_IN: Self = Self(530);
    /// 533: command protection level denied for policy reasons (RFC 2228).
    pub const PROTECTION_DENIED: Self = Self(533);
    /// 534: request denied for policy reasons (RFC 2228/4217).
    pub const POLICY_DENIED: Self = Self(534);
    /// 536: requested PROT level not supported by the mechanism (RFC 2228).
    pub const PROT_NOT_SUPPORTED: Self = Self(536);
    pub const FILE_UNAVAILABLE: Self = Self(550);
    pub const PAGE_TYPE_UNKNOWN: Self = Self(551);
    pub const EXCEEDED_STORAGE: Self = Self(552);
    pub const NAME_NOT_ALLOWED: Self = Self(553);
    /// 554: requested action not taken: invalid REST parameter (RFC 1123 §4.1.3.4, RFC 3659).
    pub const INVALID_REST: Self = Self(554);

    /// True for 1yz preliminary replies.
    pub fn is_preliminary(self) -> bool {
        (100..200).contains(&self.0)
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.0)
    }
}

/// One reply: a code and one or more lines of text.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    code: ReplyCode,
    lines: Vec<Vec<u8>>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: ReplyCode, text: impl Into<Vec<u8>>) -> Self {
        Self {
            code,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply. The first and last lines carry the code; the lines between are sent with one
    /// leading space, which is what FEAT requires and what strict parsers expect of every continuation line.
    /// An empty `lines` is sent as a single line with empty text.
    pub fn multi(code: ReplyCode, lines: Vec<Vec<u8>>) -> Self {
        Self { code, lines }
    }

    /// The `257 "path" text` reply, with inner quotes doubled (RFC 959 Appendix II).
    pub fn path_created(path: &[u8], text: &str) -> Self {
        let mut line = Vec::with_capacity(path.len() + text.len() + 3);
        line.push(b'"');
        for &b in path {
            if b == b'"' {
                line.push(b'"');
            }
            line.push(b);
        }
        line.extend_from_slice(b"\" ");
        line.extend_from_slice(text.as_bytes());
        Self::new(ReplyCode::PATH_CREATED, line)
    }

    /// The reply code.
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// The reply's lines of text, without codes.
    pub fn lines(&self) -> &[Vec<u8>] {
        &self.lines
    }

    /// The text of all lines joined by `\n`, lossily decoded; for logs and tests.
    pub fn text(&self) -> String {
        let parts: Vec<String> = self
            .lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        parts.join("\n")
    }

    /// Appends the wire form of this reply to `out`, CRLF-terminated and Telnet-escaped.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let code = self.code.to_string();
        let mut raw = Vec::with_capacity(64);
        match self.lines.as_slice() {
            [] => push_line(&mut raw, &code, b' ', b""),
            [only] => push_line(&mut raw, &code, b' ', only),
            [first, middle @ .., last] => {
                push_line(&mut raw, &code, b'-', first);
                for line in middle {
                    raw.push(b' ');
                    push_text(&mut raw, line);
                    raw.extend_from_slice(b"\r\n");
                }
                push_line(&mut raw, &code, b' ', last);
            }
        }
        out.extend_from_slice(&escape_iac(&raw));
    }

    /// The wire form of this reply as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply({} {:?})", self.code, self.text())
    }
}

fn push_line(out: &mut Vec<u8>, code: &str, sep: u8, text: &[u8]) {
    out.extend_from_slice(code.as_bytes());
    out.push(sep);
    push_text(out, text);
    out.extend_from_slice(b"\r\n");
}

/// Copies reply text, neutralising line breaks so content can never end a reply early: CR becomes
/// CR NUL and LF becomes NUL, as RFC 959 prescribes for path names in replies.
fn push_text(out: &mut Vec<u8>, text: &[u8]) {
    for &b in text {
        match b {
            b'\r' => out.extend_from_slice(b"\r\0"),
            b'\n' => out.push(0),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_reply_is_code_space_text_crlf() {
        assert_eq!(Reply::new(ReplyCode::COMMAND_OK, "OK").to_bytes(), b"200 OK\r\n");
    }

    #[test]
    fn multi_line_reply_uses_dash_first_space_middle_and_code_last() {
        let r = Reply::multi(
            ReplyCode::SYSTEM_STATUS,
            vec![
                b"Features:".to_vec(),
                b"UTF8".to_vec(),
                b"SIZE".to_vec(),
                b"End".to_vec(),
            ],
        );
        assert_eq!(r.to_bytes(), b"211-Features:\r\n UTF8\r\n SIZE\r\n211 End\r\n");
    }

    #[test]
    fn path_created_doubles_inner_quotes() {
        let r = Reply::path_created(b"/a \"b\"", "created");
        assert_eq!(r.to_bytes(), b"257 \"/a \"\"b\"\"\" created\r\n");
    }

    #[test]
    fn line_breaks_in_text_cannot_forge_a_reply() {
        let r = Reply::new(ReplyCode::FILE_ACTION_OK, b"x\r\n230 fake".to_vec());
        let wire = r.to_bytes();
        assert_eq!(wire, b"250 x\r\0\x00230 fake\r\n");
        assert_eq!(wire.windows(2).filter(|w| w == b"\r\n").count(), 1);
    }

    #[test]
    fn iac_bytes_in_text_are_escaped() {
        let r = Reply::new(ReplyCode::FILE_ACTION_OK, vec![b'a', 0xFF, b'b']);
        assert_eq!(r.to_bytes(), b"250 a\xFF\xFFb\r\n");
    }

    #[test]
    fn empty_multi_reply_is_a_single_line() {
        assert_eq!(Reply::multi(ReplyCode::HELP, vec![]).to_bytes(), b"214 \r\n");
    }
}
