//! RFC 854 Telnet NVT decoding of the FTP control stream, and line framing with a hard length limit.
//!
//! [`ControlDecoder`] turns raw control-connection bytes into command lines, urgent signals (the
//! `IAC IP` / `IAC DM` pair clients send before `ABOR`) and option refusals the glue must send back.
//! It accepts arbitrary chunking: a Telnet sequence or a CRLF may be split across any number of
//! [`ControlDecoder::push`] calls. The bytes held for an incomplete line never exceed the configured limit;
//! an over-long line is discarded whole and reported once as [`ControlInput::TooLong`].
//!
//! What it does not do: parse commands (see [`crate::command`]), negotiate any Telnet option (every
//! option is refused, as RFC 959 servers do), read from or write to a socket, or decode any character set.
//! Lines are bytes; the only transformations are `IAC IAC` → `0xFF`, `CR NUL` → `CR` and removal of the
//! line terminator.

use std::borrow::Cow;
use std::collections::VecDeque;

/// An out-of-band signal seen in the control stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgent {
    /// `IAC IP` (Interrupt Process, RFC 854): the client wants the current transfer aborted.
    InterruptProcess,
    /// `IAC DM` (Data Mark, RFC 854): the end of a Telnet Synch; clients send it just before `ABOR`.
    DataMark,
}

/// One decoded item from the control stream, in order of appearance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlInput {
    /// One command line, with its `CRLF` (or bare `LF`) and any trailing `CR` removed.
    Line(Vec<u8>),
    /// A line longer than the limit was discarded entirely, through its terminating `LF`.
    TooLong,
    /// An urgent Telnet command (`IAC IP` or `IAC DM`) was seen.
    Urgent(Urgent),
    /// Bytes the glue must send back to the client verbatim (Telnet option refusals).
    Respond(Vec<u8>),
}

/// Telnet "interpret as command" escape byte.
pub const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const IP: u8 = 244;
const DM: u8 = 242;
const SE: u8 = 240;

const CR: u8 = b'\r';
const LF: u8 = b'\n';
const NUL: u8 = 0;

/// Where the decoder is inside the Telnet byte grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Plain data.
    Data,
    /// Saw `IAC`; the next byte is a command.
    Iac,
    /// Saw `IAC WILL|WONT|DO|DONT`; the next byte is the option code.
    Option(u8),
    /// Inside `IAC SB ...`; skipping until `IAC SE`.
    Subneg,
    /// Inside a subnegotiation, just after an `IAC`.
    SubnegIac,
}

/// Incremental decoder for the FTP control connection (Telnet NVT plus line framing).
///
/// Feed bytes with [`push`](Self::push) and drain decoded items with [`next`](Self::next). Items are
/// decoded eagerly, so the queue drained by `next` grows with the size of each pushed chunk; the glue is
/// expected to drain after every push. The partial line held between pushes is bounded by `max_line`.
#[derive(Debug)]
pub struct ControlDecoder {
    max_line: usize,
    state: State,
    /// Content of the current, incomplete line (never longer than `max_line`).
    line: Vec<u8>,
    /// A data `CR` was seen and not yet committed: the next data byte decides what it means.
    pending_cr: bool,
    /// The current line overflowed; discard data until the next `LF`.
    discarding: bool,
    /// Bytes skipped inside the current subnegotiation.
    subneg_len: usize,
    out: VecDeque<ControlInput>,
}

impl ControlDecoder {
    /// A decoder that accepts lines of at most `max_line` bytes (excluding the terminator).
    ///
    /// Use [`crate::limits::MAX_LINE`] for the control connection.
    pub fn new(max_line: usize) -> Self {
        ControlDecoder {
            max_line,
            state: State::Data,
            line: Vec::new(),
            pending_cr: false,
            discarding: false,
            subneg_len: 0,
            out: VecDeque::new(),
        }
    }

    /// Feed raw bytes received on the control connection. Any chunking is accepted.
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    /// The next decoded item, in order of appearance, or `None` if more input is needed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<ControlInput> {
        let input = self.out.pop_front();
        if input.is_none() && self.out.capacity() > 0 {
            // Everything read has been handed out: an idle connection keeps no queue.
            self.out = VecDeque::new();
        }
        input
    }

    /// Bytes held for the incomplete current line; always `<= max_line`.
    pub fn buffered(&self) -> usize {
        self.line.len()
    }

    /// Forget everything: queued items, the partial line and any half-seen Telnet sequence.
    ///
    /// The glue calls this when switching the control connection to TLS, so that cleartext pipelined after
    /// `AUTH TLS` is never executed (Pure-FTPd CVE-2011-1575).
    pub fn reset(&mut self) {
        self.state = State::Data;
        self.line.clear();
        self.pending_cr = false;
        self.discarding = false;
        self.subneg_len = 0;
        self.out.clear();
    }

    fn byte(&mut self, b: u8) {
        match self.state {
            State::Data => {
                if b == IAC {
                    self.state = State::Iac;
                } else {
                    self.data(b);
                }
            }
            State::Iac => self.command(b),
            State::Option(verb) => {
                self.state = State::Data;
                match verb {
                    WILL => self.respond([IAC, DONT, b]),
                    DO => self.respond([IAC, WONT, b]),
                    // WONT and DONT confirm the state we are already in: no answer (RFC 854 loop rule).
                    _ => {}
                }
            }
            State::Subneg => {
                if b == IAC {
                    self.state = State::SubnegIac;
                } else {
                    self.subneg_byte();
                }
            }
            State::SubnegIac => {
                if b == SE {
                    self.state = State::Data;
                    self.subneg_len = 0;
                } else {
                    // `IAC IAC` is an escaped data byte; any other command inside SB is malformed and skipped.
                    self.state = State::Subneg;
                    self.subneg_byte();
                }
            }
        }
    }

    /// Handle the byte after an `IAC` in data state.
    fn command(&mut self, b: u8) {
        self.state = State::Data;
        match b {
            IAC => self.data(IAC),
            WILL | WONT | DO | DONT => self.state = State::Option(b),
            SB => {
                self.state = State::Subneg;
                self.subneg_len = 0;
            }
            IP => self.out.push_back(ControlInput::Urgent(Urgent::InterruptProcess)),
            DM => self.out.push_back(ControlInput::Urgent(Urgent::DataMark)),
            // NOP, BRK, AO, AYT, EC, EL, GA, a stray SE, or a byte that is not a command: ignored.
            _ => {}
        }
    }

    /// Count one skipped subnegotiation byte; give up skipping if the subnegotiation never ends.
    fn subneg_byte(&mut self) {
        self.subneg_len = self.subneg_len.saturating_add(1);
        if self.subneg_len > self.max_line {
            // No real FTP client negotiates options; an endless SB is garbage. Resume reading data so a
            // misbehaving peer cannot make the decoder swallow everything that follows.
            self.state = State::Data;
            self.subneg_len = 0;
        }
    }

    /// Handle one data byte (after Telnet unescaping).
    fn data(&mut self, b: u8) {
        if self.pending_cr {
            self.pending_cr = false;
            match b {
                LF => {
                    self.end_line();
                    return;
                }
                // CR NUL is how Telnet sends a bare carriage return.
                NUL => {
                    self.append(CR);
                    return;
                }
                _ => self.append(CR),
            }
        }
        match b {
            CR => self.pending_cr = true,
            LF => self.end_line(),
            _ => self.append(b),
        }
    }

    fn append(&mut self, b: u8) {
        if self.discarding {
            return;
        }
        if self.line.len() >= self.max_line {
            self.line = Vec::new();
            self.discarding = true;
            return;
        }
        self.line.push(b);
    }

    fn end_line(&mut self) {
        if self.discarding {
            self.discarding = false;
            self.out.push_back(ControlInput::TooLong);
            return;
        }
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&CR) {
            line.pop();
        }
        self.out.push_back(ControlInput::Line(line));
    }

    /// Queue a response, merging it with a response queued just before it.
    fn respond(&mut self, bytes: [u8; 3]) {
        if let Some(ControlInput::Respond(prev)) = self.out.back_mut() {
            prev.extend_from_slice(&bytes);
        } else {
            self.out.push_back(ControlInput::Respond(bytes.to_vec()));
        }
    }
}

/// Double every `0xFF` (IAC) byte so that `bytes` can be sent as Telnet data (replies containing paths).
///
/// Borrows when there is nothing to escape.
pub fn escape_iac(bytes: &[u8]) -> Cow<'_, [u8]> {
    let count = bytes.iter().filter(|&&b| b == IAC).count();
    if count == 0 {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len().saturating_add(count));
    for &b in bytes {
        out.push(b);
        if b == IAC {
            out.push(IAC);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decoder_whose_input_was_handed_out_keeps_no_queue() {
        let mut d = ControlDecoder::new(crate::limits::MAX_LINE);
        d.push(b"NOOP\r\nPWD\r\n");
        assert!(matches!(d.next(), Some(ControlInput::Line(l)) if l == b"NOOP"));
        assert!(matches!(d.next(), Some(ControlInput::Line(l)) if l == b"PWD"));
        assert!(d.next().is_none());
        assert_eq!(d.out.capacity(), 0);
    }

    /// Decode `input` in one push and also byte by byte; both must agree. Returns the items.
    fn decode(max_line: usize, input: &[u8]) -> Vec<ControlInput> {
        let mut whole = ControlDecoder::new(max_line);
        whole.push(input);
        let a: Vec<_> = std::iter::from_fn(|| whole.next()).collect();

        let mut split = ControlDecoder::new(max_line);
        let mut b = Vec::new();
        for byte in input {
            split.push(std::slice::from_ref(byte));
            assert!(split.buffered() <= max_line);
            b.extend(std::iter::from_fn(|| split.next()));
        }
        // Byte-by-byte draining may leave adjacent responses unmerged; compare with responses flattened.
        assert_eq!(
            flatten(&a),
            flatten(&b),
            "chunking changed the result for {input:?}"
        );
        assert_eq!(whole.buffered(), split.buffered());
        a
    }

    fn flatten(items: &[ControlInput]) -> Vec<ControlInput> {
        let mut out: Vec<ControlInput> = Vec::new();
        for item in items {
            match (out.last_mut(), item) {
                (Some(ControlInput::Respond(prev)), ControlInput::Respond(next)) => prev.extend(next),
                _ => out.push(item.clone()),
            }
        }
        out
    }

    fn line(s: &[u8]) -> ControlInput {
        ControlInput::Line(s.to_vec())
    }

    #[test]
    fn crlf_terminated_lines_are_split_and_stripped() {
        assert_eq!(
            decode(100, b"USER a\r\nPASS b\r\n"),
            vec![line(b"USER a"), line(b"PASS b")]
        );
    }

    #[test]
    fn bare_lf_ends_a_line() {
        assert_eq!(decode(100, b"NOOP\nPWD\n"), vec![line(b"NOOP"), line(b"PWD")]);
    }

    #[test]
    fn incomplete_line_is_held_until_lf() {
        let mut d = ControlDecoder::new(100);
        d.push(b"LIS");
        assert_eq!(d.next(), None);
        assert_eq!(d.buffered(), 3);
        d.push(b"T\r");
        assert_eq!(d.next(), None);
        d.push(b"\n");
        assert_eq!(d.next(), Some(line(b"LIST")));
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn empty_line_is_reported() {
        assert_eq!(decode(100, b"\r\n\n"), vec![line(b""), line(b"")]);
    }

    #[test]
    fn cr_nul_becomes_cr_inside_a_line() {
        assert_eq!(decode(100, b"a\r\0b\r\n"), vec![line(b"a\rb")]);
    }

    #[test]
    fn lone_cr_inside_a_line_is_kept() {
        assert_eq!(decode(100, b"a\rb\rc\r\n"), vec![line(b"a\rb\rc")]);
    }

    #[test]
    fn doubled_cr_before_lf_is_stripped_as_trailing_cr() {
        assert_eq!(decode(100, b"NOOP\r\r\n"), vec![line(b"NOOP")]);
    }

    #[test]
    fn trailing_cr_from_cr_nul_is_stripped() {
        assert_eq!(decode(100, b"ab\r\0\n"), vec![line(b"ab")]);
    }

    #[test]
    fn iac_iac_is_one_ff_data_byte() {
        assert_eq!(
            decode(100, b"RETR \xff\xff\xfe\r\n"),
            vec![line(b"RETR \xff\xfe")]
        );
    }

    #[test]
    fn will_is_refused_with_dont() {
        assert_eq!(
            decode(100, &[IAC, WILL, 1, b'X', b'\n']),
            vec![ControlInput::Respond(vec![IAC, DONT, 1]), line(b"X")]
        );
    }

    #[test]
    fn do_is_refused_with_wont() {
        assert_eq!(
            decode(100, &[IAC, DO, 3]),
            vec![ControlInput::Respond(vec![IAC, WONT, 3])]
        );
    }

    #[test]
    fn wont_and_dont_get_no_answer() {
        assert_eq!(decode(100, &[IAC, WONT, 1, IAC, DONT, 1, b'\n']), vec![line(b"")]);
    }

    #[test]
    fn option_code_255_is_an_option_not_an_escape() {
        assert_eq!(
            decode(100, &[IAC, DO, IAC, b'a', b'\n']),
            vec![ControlInput::Respond(vec![IAC, WONT, IAC]), line(b"a")]
        );
    }

    #[test]
    fn consecutive_refusals_are_merged_into_one_response() {
        let mut d = ControlDecoder::new(100);
        d.push(&[IAC, WILL, 1, IAC, DO, 2]);
        assert_eq!(
            d.next(),
            Some(ControlInput::Respond(vec![IAC, DONT, 1, IAC, WONT, 2]))
        );
        assert_eq!(d.next(), None);
    }

    #[test]
    fn abort_sequence_yields_urgent_signals_before_the_line() {
        assert_eq!(
            decode(100, &[IAC, IP, IAC, DM, b'A', b'B', b'O', b'R', b'\r', b'\n']),
            vec![
                ControlInput::Urgent(Urgent::InterruptProcess),
                ControlInput::Urgent(Urgent::DataMark),
                line(b"ABOR"),
            ]
        );
    }

    #[test]
    fn other_two_byte_commands_are_ignored_mid_line() {
        // NOP, AYT, GA, EC, EL, AO, BRK, stray SE, and a non-command byte.
        let input = [
            b'N', IAC, 241, b'O', IAC, 246, IAC, 249, b'O', IAC, 247, IAC, 248, IAC, 245, IAC, 243,
        ];
        let mut input = input.to_vec();
        input.extend_from_slice(&[IAC, SE, b'P', IAC, 7, b'\n']);
        assert_eq!(decode(100, &input), vec![line(b"NOOP")]);
    }

    #[test]
    fn subnegotiation_is_skipped() {
        let input = [b'a', IAC, SB, 24, 0, b'x', IAC, IAC, b'\n', IAC, SE, b'b', b'\n'];
        assert_eq!(decode(100, &input), vec![line(b"ab")]);
    }

    #[test]
    fn endless_subnegotiation_is_abandoned_after_the_limit() {
        let mut input = vec![IAC, SB];
        input.extend(std::iter::repeat_n(b'x', 20));
        input.extend_from_slice(b"\nOK\n");
        let items = decode(8, &input);
        assert_eq!(items.last(), Some(&line(b"OK")));
    }

    #[test]
    fn cr_split_from_lf_across_pushes_still_ends_the_line() {
        let mut d = ControlDecoder::new(100);
        d.push(b"PWD\r");
        d.push(b"\n");
        assert_eq!(d.next(), Some(line(b"PWD")));
    }

    #[test]
    fn iac_split_across_pushes_is_reassembled() {
        let mut d = ControlDecoder::new(100);
        d.push(&[b'a', IAC]);
        d.push(&[IAC]);
        d.push(&[IAC]);
        d.push(&[DO]);
        d.push(&[5, b'\n']);
        assert_eq!(d.next(), Some(ControlInput::Respond(vec![IAC, WONT, 5])));
        assert_eq!(d.next(), Some(line(&[b'a', IAC])));
    }

    #[test]
    fn line_of_exactly_the_limit_is_accepted() {
        assert_eq!(decode(4, b"abcd\r\n"), vec![line(b"abcd")]);
    }

    #[test]
    fn over_long_line_is_discarded_and_reported_once() {
        assert_eq!(
            decode(4, b"abcde\r\nok\r\n"),
            vec![ControlInput::TooLong, line(b"ok")]
        );
    }

    #[test]
    fn huge_line_keeps_memory_bounded() {
        let mut d = ControlDecoder::new(16);
        for _ in 0..1000 {
            d.push(&[b'x'; 1000]);
            assert!(d.buffered() <= 16);
            assert_eq!(d.next(), None);
        }
        d.push(b"\r\nQUIT\r\n");
        assert_eq!(d.next(), Some(ControlInput::TooLong));
        assert_eq!(d.next(), Some(line(b"QUIT")));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn telnet_commands_still_work_while_discarding() {
        let mut input = vec![b'x'; 10];
        input.extend_from_slice(&[IAC, IP, IAC, WILL, 1, b'x', b'\n']);
        assert_eq!(
            decode(4, &input),
            vec![
                ControlInput::Urgent(Urgent::InterruptProcess),
                ControlInput::Respond(vec![IAC, DONT, 1]),
                ControlInput::TooLong,
            ]
        );
    }

    #[test]
    fn zero_limit_only_accepts_empty_lines() {
        assert_eq!(decode(0, b"\r\na\n"), vec![line(b""), ControlInput::TooLong]);
    }

    #[test]
    fn reset_drops_pipelined_input() {
        let mut d = ControlDecoder::new(100);
        d.push(b"AUTH TLS\r\nUSER evil\r\nPA");
        assert_eq!(d.next(), Some(line(b"AUTH TLS")));
        d.reset();
        assert_eq!(d.next(), None);
        assert_eq!(d.buffered(), 0);
        d.push(b"USER good\r\n");
        assert_eq!(d.next(), Some(line(b"USER good")));
    }

    #[test]
    fn random_input_never_exceeds_the_buffer_limit() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..300 {
            let mut input = Vec::new();
            for _ in 0..64 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let b = match seed % 8 {
                    0 => IAC,
                    1 => CR,
                    2 => LF,
                    3 => NUL,
                    4 => (seed >> 8) as u8 | 0xf0,
                    _ => (seed >> 8) as u8,
                };
                input.push(b);
            }
            let _ = decode(7, &input);
        }
    }

    #[test]
    fn escape_iac_doubles_ff_and_borrows_otherwise() {
        assert!(matches!(escape_iac(b"plain"), Cow::Borrowed(_)));
        assert_eq!(escape_iac(b"a\xffb\xff").as_ref(), b"a\xff\xffb\xff\xff");
    }

    #[test]
    fn escaped_bytes_decode_back_to_the_original() {
        let original: Vec<u8> = (0u8..=255).filter(|&b| b != CR && b != LF).collect();
        let mut wire = escape_iac(&original).into_owned();
        wire.extend_from_slice(b"\r\n");
        assert_eq!(decode(1000, &wire), vec![ControlInput::Line(original.clone())]);
    }
}
