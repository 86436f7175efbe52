//! Parsing replies received from a server (the client side of RFC 959 §4.2), one control line at a time.
//!
//! The parser is fed lines without their CRLF (the glue frames them, with a length limit) and returns a
//! [`Reply`] when the last line of a single- or multi-line reply arrives. A multi-line reply starts with
//! `ddd-` and ends with a line starting `ddd ` with the same code; lines in between are kept as text. The
//! number of lines in one reply is bounded ([`MAX_REPLY_LINES`]) so a hostile server cannot make the client
//! buffer without end.
//!
//! What it does not do: read sockets, apply timeouts or decide what a code means for a command.

use crate::reply::{Reply, ReplyCode};

/// Most lines accepted in one multi-line reply (FEAT of a large server has about 30).
pub const MAX_REPLY_LINES: usize = 1000;

/// Why a reply could not be parsed; the server is at fault in every case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// The first line of a reply does not start with three digits followed by a space, `-` or its end.
    Malformed,
    /// A multi-line reply went on for more than [`MAX_REPLY_LINES`] lines.
    TooLong,
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::Malformed => f.write_str("the server sent a line that is not an FTP reply"),
            ReplyError::TooLong => write!(f, "the server sent a reply of more than {MAX_REPLY_LINES} lines"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// Assembles replies from control lines.
#[derive(Debug, Default)]
pub struct ReplyParser {
    /// The code and lines so far of an unfinished multi-line reply.
    partial: Option<(ReplyCode, Vec<Vec<u8>>)>,
}

impl ReplyParser {
    /// A parser expecting the first line of a reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one line (without CRLF). Returns the reply when it is complete.
    ///
    /// # Errors
    ///
    /// [`ReplyError::Malformed`] when a reply does not start with a code, [`ReplyError::TooLong`] when a
    /// multi-line reply exceeds [`MAX_REPLY_LINES`]. After an error the parser starts afresh.
    pub fn push_line(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        if let Some((code, mut lines)) = self.partial.take() {
            if let Some((c, sep, text)) = split_code(line) {
                if c == code && sep == b' ' {
                    lines.push(text.to_vec());
                    return Ok(Some(Reply::multi(code, lines)));
                }
            }
            if lines.len() >= MAX_REPLY_LINES {
                return Err(ReplyError::TooLong);
            }
            lines.push(strip_code_prefix(line, code).to_vec());
            self.partial = Some((code, lines));
            return Ok(None);
        }
        let (code, sep, text) = split_code(line).ok_or(ReplyError::Malformed)?;
        if sep == b'-' {
            self.partial = Some((code, vec![text.to_vec()]));
            Ok(None)
        } else {
            Ok(Some(Reply::new(code, text.to_vec())))
        }
    }

    /// Whether a multi-line reply is half received.
    pub fn in_reply(&self) -> bool {
        self.partial.is_some()
    }
}

/// `ddd` + separator (`b' '` for a bare code or a space, `b'-'`) + text.
fn split_code(line: &[u8]) -> Option<(ReplyCode, u8, &[u8])> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits.iter().fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    if !(100..600).contains(&code) {
        return None;
    }
    match line.get(3) {
        None => Some((ReplyCode(code), b' ', &[])),
        Some(&sep @ (b' ' | b'-')) => Some((ReplyCode(code), sep, line.get(4..).unwrap_or_default())),
        Some(_) => None,
    }
}

/// A continuation line `ddd-text` of the reply being assembled keeps only its text; others stay whole
/// (a FEAT line keeps its leading space).
fn strip_code_prefix(line: &[u8], code: ReplyCode) -> &[u8] {
    match split_code(line) {
        Some((c, b'-', text)) if c == code => text,
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Result<Vec<Reply>, ReplyError> {
        let mut p = ReplyParser::new();
        let mut out = Vec::new();
        for l in lines {
            if let Some(r) = p.push_line(l.as_bytes())? {
                out.push(r);
            }
        }
        Ok(out)
    }

    #[test]
    fn single_line_reply() {
        let r = parse(&["220 ready"]).expect("parse");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].code(), ReplyCode::SERVICE_READY);
        assert_eq!(r[0].text(), "ready");
    }

    #[test]
    fn bare_code_is_a_reply() {
        let r = parse(&["200"]).expect("parse");
        assert_eq!(r[0].code(), ReplyCode::COMMAND_OK);
    }

    #[test]
    fn multi_line_feat_keeps_feature_lines() {
        let r = parse(&["211-Features:", " MLST type*;size*;", " EPSV", "211 End"]).expect("parse");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].code(), ReplyCode::SYSTEM_STATUS);
        assert_eq!(r[0].lines().len(), 4);
        assert_eq!(r[0].lines()[2], b" EPSV");
    }

    #[test]
    fn inner_line_with_other_code_does_not_end_the_reply() {
        let r = parse(&["230-Welcome", "220 not the end", "230-still", "230 done"]).expect("parse");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].lines().len(), 4);
        assert_eq!(r[0].lines()[2], b"still");
    }

    #[test]
    fn garbage_is_malformed() {
        assert_eq!(parse(&["hello"]), Err(ReplyError::Malformed));
        assert_eq!(parse(&["20"]), Err(ReplyError::Malformed));
        assert_eq!(parse(&["2000 x"]), Err(ReplyError::Malformed));
        assert_eq!(parse(&["999 x"]), Err(ReplyError::Malformed));
        assert_eq!(parse(&[""]), Err(ReplyError::Malformed));
    }

    #[test]
    fn endless_multi_line_reply_is_bounded() {
        let mut p = ReplyParser::new();
        assert_eq!(p.push_line(b"211-start"), Ok(None));
        let mut result = Ok(None);
        for _ in 0..MAX_REPLY_LINES + 5 {
            result = p.push_line(b" more");
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(ReplyError::TooLong));
        assert!(!p.in_reply());
    }

    #[test]
    fn any_bytes_never_panic() {
        let mut p = ReplyParser::new();
        for len in 0..8 {
            for b in [0u8, b'1', b'2', b'5', b'-', b' ', 0xff] {
                let line = vec![b; len];
                let _ = p.push_line(&line);
            }
        }
    }
}
