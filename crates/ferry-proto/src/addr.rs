//! Data-connection address codecs: `PORT`/`PASV` (RFC 959, IPv4 only) and `EPRT`/`EPSV` (RFC 2428, IPv4
//! and IPv6), both the command arguments and the reply texts.
//!
//! Parsers are strict about shape and ranges and never panic on peer input; formatters produce exactly what
//! the parsers accept, so every address round-trips.
//!
//! What it does not do: policy. Whether an active-mode address must equal the client's control address
//! (FTP bounce defence), whether privileged ports are allowed, and which address to advertise behind NAT
//! are decided by the session and the glue.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

/// Why an address argument or reply could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrError {
    /// Malformed: wrong field count, non-numeric or out-of-range field, bad address, or a protocol number
    /// that does not match the address family (answer `501`).
    Syntax,
    /// A well-formed `EPRT`/`EPSV` naming a network protocol other than 1 (IPv4) or 2 (IPv6)
    /// (answer `522`, RFC 2428 §2).
    UnsupportedProtocol,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrError::Syntax => "malformed address",
            AddrError::UnsupportedProtocol => "unsupported network protocol",
        })
    }
}

impl std::error::Error for AddrError {}

/// The argument of `EPSV` (RFC 2428 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpsvArg {
    /// No argument: any protocol the server likes (the control connection's).
    Any,
    /// `EPSV ALL`: the client will use only `EPSV` from now on; `PORT`, `PASV` and `EPRT` must be refused.
    All,
    /// `EPSV 1` (IPv4) or `EPSV 2` (IPv6).
    Protocol(u8),
}

/// Parse a `PORT` argument `h1,h2,h3,h4,p1,p2` (six decimal numbers 0–255, spaces around them tolerated).
///
/// Port 0 is syntactically valid; refusing it is the session's decision.
///
/// # Errors
///
/// [`AddrError::Syntax`] for anything else.
pub fn parse_port_arg(arg: &str) -> Result<SocketAddrV4, AddrError> {
    let mut fields = [0u8; 6];
    let mut parts = arg.split(',');
    for field in &mut fields {
        *field = parse_byte(parts.next().ok_or(AddrError::Syntax)?.trim_matches(' '))?;
    }
    if parts.next().is_some() {
        return Err(AddrError::Syntax);
    }
    Ok(from_fields(fields))
}

/// Format an address as a `PORT` argument, `h1,h2,h3,h4,p1,p2`.
pub fn format_port_arg(addr: SocketAddrV4) -> String {
    let [a, b, c, d] = addr.ip().octets();
    let [p1, p2] = addr.port().to_be_bytes();
    format!("{a},{b},{c},{d},{p1},{p2}")
}

/// The text of a `227` reply: `Entering Passive Mode (h1,h2,h3,h4,p1,p2).`
pub fn format_pasv_reply(addr: SocketAddrV4) -> String {
    format!("Entering Passive Mode ({}).", format_port_arg(addr))
}

/// Extract the address from the text of a `227` reply.
///
/// Takes the six numbers just after the first `(`; if there is no `(` or they are not there, takes the
/// first run of exactly six comma-separated numbers anywhere in the text (some servers omit the
/// parentheses).
///
/// # Errors
///
/// [`AddrError::Syntax`] if no such run exists.
pub fn parse_pasv_reply(text: &str) -> Result<SocketAddrV4, AddrError> {
    let b = text.as_bytes();
    if let Some(open) = b.iter().position(|&c| c == b'(') {
        if let Some(fields) = b.get(open + 1..).and_then(scan_six) {
            return Ok(from_fields(fields));
        }
    }
    for start in 0..b.len() {
        // A run starts at a digit that neither continues a number nor follows a comma (spaces skipped), so
        // the tail of a longer run is never taken for a run of its own.
        let before = b
            .get(..start)
            .unwrap_or_default()
            .iter()
            .rev()
            .find(|&&c| c != b' ');
        let at_run_start = b.get(start).is_some_and(u8::is_ascii_digit)
            && b.get(start.wrapping_sub(1)).is_none_or(|c| !c.is_ascii_digit())
            && before != Some(&b',');
        if at_run_start {
            if let Some(fields) = b.get(start..).and_then(scan_six) {
                return Ok(from_fields(fields));
            }
        }
    }
    Err(AddrError::Syntax)
}

/// Parse an `EPRT` argument `<d><proto><d><addr><d><port><d>`, e.g. `|1|132.235.1.2|6275|` or `|2|::1|6275|`.
///
/// The delimiter `<d>` is the first character and may be any printable ASCII character (33–126).
///
/// # Errors
///
/// [`AddrError::UnsupportedProtocol`] for a numeric protocol other than 1 or 2; [`AddrError::Syntax`] for
/// any other malformation, a protocol that does not match the address family, or port 0.
pub fn parse_eprt_arg(arg: &str) -> Result<SocketAddr, AddrError> {
    let arg = arg.trim_matches(' ');
    let delim = arg.chars().next().ok_or(AddrError::Syntax)?;
    if !(33..=126).contains(&u32::from(delim)) {
        return Err(AddrError::Syntax);
    }
    let mut parts = arg.split(delim);
    let (Some(""), Some(proto), Some(host), Some(port), Some(""), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(AddrError::Syntax);
    };
    let family = parse_protocol(proto)?;
    let ip = match family {
        1 => IpAddr::V4(host.parse::<Ipv4Addr>().map_err(|_| AddrError::Syntax)?),
        2 => IpAddr::V6(host.parse::<Ipv6Addr>().map_err(|_| AddrError::Syntax)?),
        _ => return Err(AddrError::UnsupportedProtocol),
    };
    let port = parse_port_number(port)?;
    Ok(SocketAddr::new(ip, port))
}

/// Format an address as an `EPRT` argument with `|` delimiters, e.g. `|2|::1|6275|`.
pub fn format_eprt_arg(addr: SocketAddr) -> String {
    let proto = if addr.is_ipv4() { 1 } else { 2 };
    format!("|{proto}|{}|{}|", addr.ip(), addr.port())
}

/// The text of a `229` reply: `Entering Extended Passive Mode (|||6446|)`.
pub fn format_epsv_reply(port: u16) -> String {
    format!("Entering Extended Passive Mode (|||{port}|)")
}

/// Extract the port from the text of a `229` reply: `(<d><d><d><port><d>)` after the first `(`, with any
/// printable delimiter (all four the same).
///
/// # Errors
///
/// [`AddrError::Syntax`] if that shape is absent or the port is not 1–65535.
pub fn parse_epsv_reply(text: &str) -> Result<u16, AddrError> {
    let open = text.find('(').ok_or(AddrError::Syntax)?;
    let inner = text.get(open + 1..).ok_or(AddrError::Syntax)?;
    let inner = inner.split(')').next().unwrap_or_default();
    let delim = inner.chars().next().ok_or(AddrError::Syntax)?;
    if !(33..=126).contains(&u32::from(delim)) || delim.is_ascii_digit() {
        return Err(AddrError::Syntax);
    }
    let mut parts = inner.split(delim);
    let (Some(""), Some(""), Some(""), Some(port), Some(""), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(AddrError::Syntax);
    };
    parse_port_number(port)
}

/// Parse the optional argument of `EPSV`: none or empty → [`EpsvArg::Any`], `ALL` (any case) →
/// [`EpsvArg::All`], `1`/`2` → [`EpsvArg::Protocol`].
///
/// # Errors
///
/// [`AddrError::UnsupportedProtocol`] for any other number, [`AddrError::Syntax`] for anything else.
pub fn parse_epsv_arg(arg: Option<&str>) -> Result<EpsvArg, AddrError> {
    let arg = arg.unwrap_or_default().trim_matches(' ');
    if arg.is_empty() {
        return Ok(EpsvArg::Any);
    }
    if arg.eq_ignore_ascii_case("ALL") {
        return Ok(EpsvArg::All);
    }
    match parse_protocol(arg)? {
        n @ (1 | 2) => Ok(EpsvArg::Protocol(n)),
        _ => Err(AddrError::UnsupportedProtocol),
    }
}

/// A protocol number: ASCII digits only. Returns 0 (never a valid family) for values too large for `u8`,
/// so that a long but numeric protocol is reported as unsupported rather than malformed.
fn parse_protocol(s: &str) -> Result<u8, AddrError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddrError::Syntax);
    }
    Ok(s.parse::<u8>().unwrap_or(0))
}

/// A TCP port 1–65535 in plain decimal.
fn parse_port_number(s: &str) -> Result<u16, AddrError> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddrError::Syntax);
    }
    match s.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(AddrError::Syntax),
    }
}

/// A number 0–255 in plain decimal (leading zeros allowed, at most three digits).
fn parse_byte(s: &str) -> Result<u8, AddrError> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddrError::Syntax);
    }
    s.parse::<u8>().map_err(|_| AddrError::Syntax)
}

fn from_fields([a, b, c, d, p1, p2]: [u8; 6]) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), u16::from_be_bytes([p1, p2]))
}

/// Read six comma-separated numbers 0–255 at the start of `b` (spaces allowed around them), not followed
/// by a seventh.
fn scan_six(b: &[u8]) -> Option<[u8; 6]> {
    let mut fields = [0u8; 6];
    let mut i = 0;
    let skip_spaces = |i: &mut usize| {
        while b.get(*i) == Some(&b' ') {
            *i += 1;
        }
    };
    for (n, field) in fields.iter_mut().enumerate() {
        skip_spaces(&mut i);
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = std::str::from_utf8(b.get(start..i)?).ok()?;
        *field = parse_byte(digits).ok()?;
        skip_spaces(&mut i);
        if n < 5 {
            if b.get(i) != Some(&b',') {
                return None;
            }
            i += 1;
        }
    }
    if b.get(i) == Some(&b',') {
        let mut j = i + 1;
        skip_spaces(&mut j);
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            return None;
        }
    }
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddrV6;

    fn v4(a: [u8; 4], port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(a), port)
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("test address literal")
    }

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn port_arg_is_parsed() {
        assert_eq!(parse_port_arg("192,168,1,2,4,1"), Ok(v4([192, 168, 1, 2], 1025)));
        assert_eq!(parse_port_arg(" 10 , 0,0 ,1, 0 ,21 "), Ok(v4([10, 0, 0, 1], 21)));
        assert_eq!(parse_port_arg("010,000,0,1,0,021"), Ok(v4([10, 0, 0, 1], 21)));
        assert_eq!(parse_port_arg("0,0,0,0,0,0"), Ok(v4([0, 0, 0, 0], 0)));
    }

    #[test]
    fn malformed_port_args_are_rejected() {
        for bad in [
            "",
            "1,2,3,4,5",
            "1,2,3,4,5,6,7",
            "1,2,3,4,5,256",
            "1,2,3,4,5,-1",
            "1,2,3,4,5,+1",
            "1,2,3,4,,6",
            "1,2,3,4,5,6,",
            "1.2.3.4,5,6",
            "1,2,3,4,5,0006",
            "1,2,3,4,5,6\t",
            "a,b,c,d,e,f",
            "1,2,3,4,5,٣",
        ] {
            assert_eq!(parse_port_arg(bad), Err(AddrError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn pasv_reply_has_the_standard_text() {
        assert_eq!(
            format_pasv_reply(v4([127, 0, 0, 1], 50_000)),
            "Entering Passive Mode (127,0,0,1,195,80)."
        );
    }

    #[test]
    fn pasv_reply_is_found_in_variant_texts() {
        let want = Ok(v4([10, 1, 2, 3], 258));
        assert_eq!(parse_pasv_reply("Entering Passive Mode (10,1,2,3,1,2)."), want);
        assert_eq!(parse_pasv_reply("Entering Passive Mode (10, 1, 2, 3, 1, 2"), want);
        assert_eq!(parse_pasv_reply("Entering Passive Mode 10,1,2,3,1,2"), want);
        assert_eq!(parse_pasv_reply("=10,1,2,3,1,2"), want);
        assert_eq!(parse_pasv_reply("Mode v2 (x) 10,1,2,3,1,2 ok"), want);
        assert_eq!(parse_pasv_reply("(1,2) then 10,1,2,3,1,2"), want);
    }

    #[test]
    fn pasv_reply_without_six_numbers_is_rejected() {
        for bad in [
            "",
            "Entering Passive Mode",
            "(1,2,3,4,5)",
            "1,2,3,4,5,6,7",
            "(1,2,3,4,5,300)",
            "((((",
        ] {
            assert_eq!(parse_pasv_reply(bad), Err(AddrError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn eprt_arg_is_parsed_for_both_families() {
        assert_eq!(parse_eprt_arg("|1|132.235.1.2|6275|"), Ok(sa("132.235.1.2:6275")));
        assert_eq!(
            parse_eprt_arg("|2|::1|6275|"),
            Ok(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 6275))
        );
        assert_eq!(
            parse_eprt_arg("!2!1080::8:800:200C:417A!5282!"),
            Ok(sa("[1080::8:800:200c:417a]:5282"))
        );
    }

    #[test]
    fn eprt_protocol_must_match_the_family() {
        assert_eq!(parse_eprt_arg("|1|::1|6275|"), Err(AddrError::Syntax));
        assert_eq!(parse_eprt_arg("|2|127.0.0.1|6275|"), Err(AddrError::Syntax));
    }

    #[test]
    fn eprt_unknown_protocol_is_unsupported() {
        assert_eq!(
            parse_eprt_arg("|3|1.2.3.4|21|"),
            Err(AddrError::UnsupportedProtocol)
        );
        assert_eq!(
            parse_eprt_arg("|0|1.2.3.4|21|"),
            Err(AddrError::UnsupportedProtocol)
        );
        assert_eq!(
            parse_eprt_arg("|99999999999|x|21|"),
            Err(AddrError::UnsupportedProtocol)
        );
    }

    #[test]
    fn malformed_eprt_args_are_rejected() {
        for bad in [
            "",
            "|",
            "|1|1.2.3.4|21",
            "1|1.2.3.4|21|",
            "|1|1.2.3.4|21||",
            "|1|1.2.3.4|0|",
            "|1|1.2.3.4|65536|",
            "|1|1.2.3.4|+21|",
            "|1|1.2.3.4||",
            "||1.2.3.4|21|",
            "|x|1.2.3.4|21|",
            "|1|1.2.3|21|",
            "|1|host.example|21|",
            "|2|fe80::1%eth0|21|",
            "|2|[::1]|21|",
            " 1 1.2.3.4 21 ",
            "\u{7f}1\u{7f}1.2.3.4\u{7f}21\u{7f}",
            "é1é1.2.3.4é21é",
        ] {
            assert_eq!(parse_eprt_arg(bad), Err(AddrError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn epsv_reply_has_the_standard_text() {
        assert_eq!(
            format_epsv_reply(6446),
            "Entering Extended Passive Mode (|||6446|)"
        );
    }

    #[test]
    fn epsv_reply_port_is_extracted() {
        assert_eq!(
            parse_epsv_reply("Entering Extended Passive Mode (|||6446|)"),
            Ok(6446)
        );
        assert_eq!(
            parse_epsv_reply("Entering Extended Passive Mode (!!!6446!)."),
            Ok(6446)
        );
        assert_eq!(parse_epsv_reply("ok (|||1|"), Ok(1));
    }

    #[test]
    fn malformed_epsv_replies_are_rejected() {
        for bad in [
            "",
            "Entering Extended Passive Mode",
            "(|||0|)",
            "(|||65536|)",
            "(||6446|)",
            "(|!|6446|)",
            "(|||6446)",
            "(|1|1.2.3.4|6446|)",
            "(111161)",
            "(",
        ] {
            assert_eq!(parse_epsv_reply(bad), Err(AddrError::Syntax), "{bad:?}");
        }
    }

    #[test]
    fn epsv_arg_variants() {
        assert_eq!(parse_epsv_arg(None), Ok(EpsvArg::Any));
        assert_eq!(parse_epsv_arg(Some("")), Ok(EpsvArg::Any));
        assert_eq!(parse_epsv_arg(Some("ALL")), Ok(EpsvArg::All));
        assert_eq!(parse_epsv_arg(Some("all")), Ok(EpsvArg::All));
        assert_eq!(parse_epsv_arg(Some("1")), Ok(EpsvArg::Protocol(1)));
        assert_eq!(parse_epsv_arg(Some("2")), Ok(EpsvArg::Protocol(2)));
        assert_eq!(parse_epsv_arg(Some("3")), Err(AddrError::UnsupportedProtocol));
        assert_eq!(parse_epsv_arg(Some("300")), Err(AddrError::UnsupportedProtocol));
        assert_eq!(parse_epsv_arg(Some("ALLX")), Err(AddrError::Syntax));
        assert_eq!(parse_epsv_arg(Some("-1")), Err(AddrError::Syntax));
    }

    #[test]
    fn error_messages_are_readable() {
        assert_eq!(AddrError::Syntax.to_string(), "malformed address");
        assert_eq!(
            AddrError::UnsupportedProtocol.to_string(),
            "unsupported network protocol"
        );
    }

    #[test]
    fn port_and_pasv_round_trip_over_many_addresses() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for _ in 0..5_000 {
            let r = rng.next();
            let [a, b, c, d, p1, p2, ..] = r.to_le_bytes();
            let addr = v4([a, b, c, d], u16::from_le_bytes([p1, p2]));
            assert_eq!(parse_port_arg(&format_port_arg(addr)), Ok(addr));
            assert_eq!(parse_pasv_reply(&format_pasv_reply(addr)), Ok(addr));
        }
    }

    #[test]
    fn eprt_and_epsv_round_trip_over_many_addresses() {
        let mut rng = Rng(0x0fed_cba9_8765_4321);
        for i in 0..5_000u32 {
            let port = (rng.next() % 65_535) as u16 + 1;
            let addr: SocketAddr = if i % 2 == 0 {
                SocketAddrV4::new(Ipv4Addr::from(rng.next() as u32), port).into()
            } else {
                // Vary the zero runs so "::" compression is exercised.
                let mut segs = [0u16; 8];
                for seg in &mut segs {
                    let r = rng.next();
                    *seg = if r.is_multiple_of(3) { 0 } else { (r >> 16) as u16 };
                }
                SocketAddrV6::new(Ipv6Addr::from(segs), port, 0, 0).into()
            };
            assert_eq!(parse_eprt_arg(&format_eprt_arg(addr)), Ok(addr), "{addr}");
            assert_eq!(parse_epsv_reply(&format_epsv_reply(port)), Ok(port));
        }
        let mapped: SocketAddr =
            SocketAddrV6::new(Ipv4Addr::new(1, 2, 3, 4).to_ipv6_mapped(), 21, 0, 0).into();
        assert_eq!(parse_eprt_arg(&format_eprt_arg(mapped)), Ok(mapped));
    }

    #[test]
    fn random_garbage_never_panics() {
        const ALPHABET: &[u8] = b"0123456789,|(). :!abcALL-\xc3\xa9";
        let mut rng = Rng(42);
        for _ in 0..20_000 {
            let len = (rng.next() % 30) as usize;
            let bytes: Vec<u8> = (0..len)
                .filter_map(|_| ALPHABET.get(rng.next() as usize % ALPHABET.len()).copied())
                .collect();
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_port_arg(&text);
            let _ = parse_pasv_reply(&text);
            let _ = parse_eprt_arg(&text);
            let _ = parse_epsv_reply(&text);
            let _ = parse_epsv_arg(Some(&text));
        }
    }
}
