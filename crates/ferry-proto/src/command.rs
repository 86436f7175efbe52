//! Parsing of FTP command lines into [`Command`] values.
//!
//! Covers every verb of RFC 959, the RFC 775 `X` aliases, RFC 2389 (FEAT, OPTS), RFC 2428 (EPRT, EPSV),
//! RFC 3659 (SIZE, MDTM, REST STREAM, MLST, MLSD), the MFMT draft, RFC 2640 (`OPTS UTF8`), and the RFC 4217
//! verbs so that they can be answered precisely until FTPS lands. Unknown verbs are a value
//! ([`Command::Unknown`]), never an error. Arguments are bytes: paths need not be UTF-8.
//!
//! Parsing never panics and never allocates more than the line it was given.

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::SystemTime;

use crate::addr::{self, AddrError, EpsvArg};
use crate::hash::{self, Algorithm, XHashArg, XHashArgError};
use crate::listing::parse_mdtm;
use crate::reply::ReplyCode;

/// A password or other secret argument; its `Debug` form never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret value; call only where it is needed (authentication).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// TYPE argument (RFC 959 §3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    /// `A` / `A N`: ASCII, line endings converted.
    Ascii,
    /// `I` / `L 8`: image (binary).
    Image,
}

/// PROT argument (RFC 2228 §4): the data channel protection level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtLevel {
    /// `C`: clear, no protection.
    Clear,
    /// `S`: integrity only; TLS has no such mode.
    Safe,
    /// `E`: confidentiality only; TLS has no such mode.
    Confidential,
    /// `P`: integrity and confidentiality (TLS).
    Private,
}

/// AUTH mechanisms (RFC 4217 §4 and the names older clients send).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMechanism {
    /// `TLS`, `TLS-C`, or the historical `SSL`.
    Tls,
    /// `TLS-P`: TLS with the data channel protected from the start (draft usage).
    TlsProtected,
}

/// OPTS arguments (RFC 2389) that ferry understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opts {
    /// `OPTS UTF8 ON|OFF` (RFC 2640 usage as clients send it).
    Utf8(bool),
    /// `OPTS MLST fact;fact;` (RFC 3659 §7.9): the facts the client wants.
    Mlst(Vec<String>),
    /// `OPTS HASH [algorithm]` (draft-bryan-ftpext-hash): show (`None`) or select the `HASH` algorithm.
    Hash(Option<Algorithm>),
}

/// One parsed FTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// USER (RFC 959): user name.
    User(String),
    /// PASS (RFC 959): password.
    Pass(Secret),
    /// ACCT (RFC 959): account; superfluous here.
    Acct(String),
    /// CWD / XCWD (RFC 959, RFC 775): change working directory.
    Cwd(Vec<u8>),
    /// CDUP / XCUP (RFC 959, RFC 775): change to parent directory.
    Cdup,
    /// SMNT (RFC 959): structure mount; not supported.
    Smnt(Vec<u8>),
    /// REIN (RFC 959): reinitialise the session.
    Rein,
    /// QUIT (RFC 959): log out and close.
    Quit,
    /// PORT (RFC 959): active data connection to an IPv4 address.
    Port(SocketAddrV4),
    /// PASV (RFC 959): passive data connection, IPv4.
    Pasv,
    /// TYPE (RFC 959): representation type.
    Type(TransferType),
    /// STRU F (RFC 959): file structure; only F exists here.
    Stru,
    /// MODE S (RFC 959): stream mode; only S exists here.
    Mode,
    /// RETR (RFC 959): download.
    Retr(Vec<u8>),
    /// STOR (RFC 959): upload.
    Stor(Vec<u8>),
    /// STOU (RFC 959): upload under a unique name; the optional argument is a name hint.
    Stou(Option<Vec<u8>>),
    /// APPE (RFC 959): append upload.
    Appe(Vec<u8>),
    /// ALLO (RFC 959): allocate; superfluous here.
    Allo,
    /// REST (RFC 959 / RFC 3659 STREAM): restart offset.
    Rest(u64),
    /// RNFR (RFC 959): rename from.
    Rnfr(Vec<u8>),
    /// RNTO (RFC 959): rename to.
    Rnto(Vec<u8>),
    /// ABOR (RFC 959): abort the transfer in progress.
    Abor,
    /// DELE (RFC 959): delete a file.
    Dele(Vec<u8>),
    /// RMD / XRMD (RFC 959, RFC 775): remove a directory.
    Rmd(Vec<u8>),
    /// MKD / XMKD (RFC 959, RFC 775): make a directory.
    Mkd(Vec<u8>),
    /// PWD / XPWD (RFC 959, RFC 775): print working directory.
    Pwd,
    /// LIST (RFC 959): long listing; the raw argument (flags and path, see [`crate::listing::parse_list_args`]).
    List(Option<Vec<u8>>),
    /// NLST (RFC 959): name listing; raw argument as for LIST.
    Nlst(Option<Vec<u8>>),
    /// SITE (RFC 959): site-specific command.
    Site(String),
    /// SYST (RFC 959): system type.
    Syst,
    /// STAT (RFC 959): status, of the server or of a path.
    Stat(Option<Vec<u8>>),
    /// HELP (RFC 959): help, optionally about one verb.
    Help(Option<String>),
    /// NOOP (RFC 959).
    Noop,
    /// FEAT (RFC 2389): feature list.
    Feat,
    /// OPTS (RFC 2389).
    Opts(Opts),
    /// EPRT (RFC 2428): active data connection, IPv4 or IPv6.
    Eprt(SocketAddr),
    /// EPSV (RFC 2428): extended passive mode, or `EPSV ALL`.
    Epsv(EpsvArg),
    /// SIZE (RFC 3659): file size.
    Size(Vec<u8>),
    /// MDTM (RFC 3659): modification time.
    Mdtm(Vec<u8>),
    /// MLST (RFC 3659): machine-readable facts of one path, on the control channel.
    Mlst(Option<Vec<u8>>),
    /// MLSD (RFC 3659): machine-readable directory listing on the data channel.
    Mlsd(Option<Vec<u8>>),
    /// MFMT (draft-somers-ftp-mfxx): set modification time.
    Mfmt(SystemTime, Vec<u8>),
    /// HASH (draft-bryan-ftpext-hash): checksum of a file with the algorithm chosen by `OPTS HASH`.
    Hash(Vec<u8>),
    /// RANG (draft-bryan-ftp-range): the byte range of the next `HASH`; `None` resets (`RANG 1 0`).
    Rang(Option<hash::Range>),
    /// XSHA256, XSHA1, XMD5, XCRC (de-facto verbs of older servers): checksum with a fixed algorithm,
    /// optionally of a range.
    XHash(Algorithm, XHashArg),
    /// AUTH (RFC 2228/4217): start TLS on the control connection.
    Auth(AuthMechanism),
    /// PBSZ (RFC 4217 §8): protection buffer size; always 0 for TLS.
    Pbsz(u64),
    /// PROT (RFC 4217 §9): data channel protection level.
    Prot(ProtLevel),
    /// CCC (RFC 4217 §6): clear the command channel.
    Ccc,
    /// ADAT, MIC, CONF, ENC: RFC 2228 security verbs TLS does not use.
    Security(String),
    /// LPRT/LPSV (RFC 1639) and other known verbs ferry deliberately does not implement.
    Unsupported(String),
    /// A verb ferry does not know at all.
    Unknown(String),
}

/// Why a command line could not be parsed; carries the reply code to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The reply code: 501 (bad argument), 504 (unsupported parameter), 522 (unsupported protocol).
    pub code: ReplyCode,
    /// Human-readable reply text.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Longest verb accepted; anything longer is [`Command::Unknown`].
const MAX_VERB: usize = 8;

impl Command {
    /// Parses one control line (without CRLF).
    pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
        let (verb_bytes, arg) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        // Tolerate trailing spaces after argument-less verbs ("PWD ") but keep argument bytes intact.
        let arg = arg.filter(|a| !a.iter().all(|&b| b == b' '));
        if verb_bytes.is_empty() || verb_bytes.len() > MAX_VERB || !verb_bytes.is_ascii() {
            return Ok(Command::Unknown(lossy(
                &verb_bytes[..verb_bytes.len().min(MAX_VERB)],
            )));
        }
        let verb = String::from_utf8_lossy(verb_bytes).to_ascii_uppercase();
        let cmd = match verb.as_str() {
            "USER" => Command::User(text(required(&verb, arg)?)),
            "PASS" => Command::Pass(Secret::new(arg.map(lossy).unwrap_or_default())),
            "ACCT" => Command::Acct(text(required(&verb, arg)?)),
            "CWD" | "XCWD" => Command::Cwd(required(&verb, arg)?.to_vec()),
            "CDUP" | "XCUP" => Command::Cdup,
            "SMNT" => Command::Smnt(required(&verb, arg)?.to_vec()),
            "REIN" => Command::Rein,
            "QUIT" => Command::Quit,
            "PORT" => {
                let a = text(required(&verb, arg)?);
                Command::Port(addr::parse_port_arg(&a).map_err(|e| addr_error("PORT", e))?)
            }
            "PASV" => Command::Pasv,
            "TYPE" => Command::Type(parse_type(required(&verb, arg)?)?),
            "STRU" => match text(required(&verb, arg)?).to_ascii_uppercase().as_str() {
                "F" => Command::Stru,
                "R" | "P" => return Err(unsupported_param("Only file structure (STRU F) is supported")),
                _ => return Err(bad_arg("Unknown structure")),
            },
            "MODE" => match text(required(&verb, arg)?).to_ascii_uppercase().as_str() {
                "S" => Command::Mode,
                "B" | "C" | "Z" => return Err(unsupported_param("Only stream mode (MODE S) is supported")),
                _ => return Err(bad_arg("Unknown mode")),
            },
            "RETR" => Command::Retr(required(&verb, arg)?.to_vec()),
            "STOR" => Command::Stor(required(&verb, arg)?.to_vec()),
            "STOU" => Command::Stou(arg.map(<[u8]>::to_vec)),
            "APPE" => Command::Appe(required(&verb, arg)?.to_vec()),
            "ALLO" => Command::Allo,
            "REST" => {
                let a = text(required(&verb, arg)?);
                let a = a.trim();
                if a.eq_ignore_ascii_case("STREAM") {
                    // `REST STREAM` is how RFC 3659 clients probe; the offset form is what we support.
                    return Err(bad_arg("REST needs a byte offset"));
                }
                match parse_offset(a) {
                    Some(n) => Command::Rest(n),
                    None => return Err(bad_arg("REST needs a decimal byte offset")),
                }
            }
            "RNFR" => Command::Rnfr(required(&verb, arg)?.to_vec()),
            "RNTO" => Command::Rnto(required(&verb, arg)?.to_vec()),
            "ABOR" => Command::Abor,
            "DELE" => Command::Dele(required(&verb, arg)?.to_vec()),
            "RMD" | "XRMD" => Command::Rmd(required(&verb, arg)?.to_vec()),
            "MKD" | "XMKD" => Command::Mkd(required(&verb, arg)?.to_vec()),
            "PWD" | "XPWD" => Command::Pwd,
            "LIST" => Command::List(arg.map(<[u8]>::to_vec)),
            "NLST" => Command::Nlst(arg.map(<[u8]>::to_vec)),
            "SITE" => Command::Site(text(required(&verb, arg)?)),
            "SYST" => Command::Syst,
            "STAT" => Command::Stat(arg.map(<[u8]>::to_vec)),
            "HELP" => Command::Help(arg.map(text)),
            "NOOP" => Command::Noop,
            "FEAT" => Command::Feat,
            "OPTS" => Command::Opts(parse_opts(required(&verb, arg)?)?),
            "EPRT" => {
                let a = text(required(&verb, arg)?);
                Command::Eprt(addr::parse_eprt_arg(a.trim()).map_err(|e| addr_error("EPRT", e))?)
            }
            "EPSV" => {
                let a = arg.map(text);
                Command::Epsv(
                    addr::parse_epsv_arg(a.as_deref().map(str::trim)).map_err(|e| addr_error("EPSV", e))?,
                )
            }
            "SIZE" => Command::Size(required(&verb, arg)?.to_vec()),
            "MDTM" => Command::Mdtm(required(&verb, arg)?.to_vec()),
            "MLST" => Command::Mlst(arg.map(<[u8]>::to_vec)),
            "MLSD" => Command::Mlsd(arg.map(<[u8]>::to_vec)),
            "MFMT" => {
                let a = required(&verb, arg)?;
                let (time, path) = match a.iter().position(|&b| b == b' ') {
                    Some(i) => (&a[..i], &a[i + 1..]),
                    None => return Err(bad_arg("MFMT needs a time and a path")),
                };
                let time = std::str::from_utf8(time).ok().and_then(parse_mdtm);
                match time {
                    Some(t) if !path.is_empty() => Command::Mfmt(t, path.to_vec()),
                    Some(_) => return Err(bad_arg("MFMT needs a path")),
                    None => return Err(bad_arg("MFMT time must be YYYYMMDDHHMMSS")),
                }
            }
            "HASH" => Command::Hash(required(&verb, arg)?.to_vec()),
            "RANG" => match hash::parse_rang_arg(&text(required(&verb, arg)?)) {
                Ok(range) => Command::Rang(range),
                Err(XHashArgError::EmptyRange) => return Err(bad_arg("RANG end is before its start")),
                Err(XHashArgError::Syntax) => return Err(bad_arg("RANG needs a start and an end byte")),
            },
            "XSHA256" | "XSHA1" | "XMD5" | "XCRC" => {
                let algorithm = match verb.as_str() {
                    "XSHA256" => Algorithm::Sha256,
                    "XSHA1" => Algorithm::Sha1,
                    "XMD5" => Algorithm::Md5,
                    _ => Algorithm::Crc32,
                };
                match hash::parse_xhash_arg(required(&verb, arg)?) {
                    Ok(a) => Command::XHash(algorithm, a),
                    Err(XHashArgError::EmptyRange) => {
                        return Err(bad_arg("End offset is before the start offset"))
                    }
                    Err(XHashArgError::Syntax) => {
                        return Err(bad_arg(&format!("{verb} takes a path, or \"path\" start [end]")))
                    }
                }
            }
            "AUTH" => match text(required(&verb, arg)?).trim().to_ascii_uppercase().as_str() {
                "TLS" | "TLS-C" | "SSL" => Command::Auth(AuthMechanism::Tls),
                "TLS-P" => Command::Auth(AuthMechanism::TlsProtected),
                _ => return Err(unsupported_param("Unsupported AUTH mechanism; use AUTH TLS")),
            },
            "PBSZ" => match parse_offset(text(required(&verb, arg)?).trim()) {
                Some(n) => Command::Pbsz(n),
                None => return Err(bad_arg("PBSZ needs a decimal number")),
            },
            "PROT" => match text(required(&verb, arg)?).trim().to_ascii_uppercase().as_str() {
                "C" => Command::Prot(ProtLevel::Clear),
                "S" => Command::Prot(ProtLevel::Safe),
                "E" => Command::Prot(ProtLevel::Confidential),
                "P" => Command::Prot(ProtLevel::Private),
                _ => {
                    return Err(unsupported_param(
                        "Unknown protection level; use PROT P or PROT C",
                    ))
                }
            },
            "CCC" => Command::Ccc,
            "ADAT" | "MIC" | "CONF" | "ENC" => Command::Security(verb),
            "LPRT" | "LPSV" | "LANG" | "HOST" | "XRCP" | "XRSQ" | "XSEM" | "XSEN" | "MLFL" | "MAIL"
            | "MSND" | "MSOM" | "MSAM" | "MRSQ" | "MRCP" => Command::Unsupported(verb),
            _ => Command::Unknown(verb),
        };
        Ok(cmd)
    }

    /// The canonical verb, for logs and HELP. Aliases report their RFC 959 name.
    pub fn verb(&self) -> &str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Acct(_) => "ACCT",
            Command::Cwd(_) => "CWD",
            Command::Cdup => "CDUP",
            Command::Smnt(_) => "SMNT",
            Command::Rein => "REIN",
            Command::Quit => "QUIT",
            Command::Port(_) => "PORT",
            Command::Pasv => "PASV",
            Command::Type(_) => "TYPE",
            Command::Stru => "STRU",
            Command::Mode => "MODE",
            Command::Retr(_) => "RETR",
            Command::Stor(_) => "STOR",
            Command::Stou(_) => "STOU",
            Command::Appe(_) => "APPE",
            Command::Allo => "ALLO",
            Command::Rest(_) => "REST",
            Command::Rnfr(_) => "RNFR",
            Command::Rnto(_) => "RNTO",
            Command::Abor => "ABOR",
            Command::Dele(_) => "DELE",
            Command::Rmd(_) => "RMD",
            Command::Mkd(_) => "MKD",
            Command::Pwd => "PWD",
            Command::List(_) => "LIST",
            Command::Nlst(_) => "NLST",
            Command::Site(_) => "SITE",
            Command::Syst => "SYST",
            Command::Stat(_) => "STAT",
            Command::Help(_) => "HELP",
            Command::Noop => "NOOP",
            Command::Feat => "FEAT",
            Command::Opts(_) => "OPTS",
            Command::Eprt(_) => "EPRT",
            Command::Epsv(_) => "EPSV",
            Command::Size(_) => "SIZE",
            Command::Mdtm(_) => "MDTM",
            Command::Mlst(_) => "MLST",
            Command::Mlsd(_) => "MLSD",
            Command::Mfmt(..) => "MFMT",
            Command::Hash(_) => "HASH",
            Command::Rang(_) => "RANG",
            Command::XHash(Algorithm::Sha256, _) => "XSHA256",
            Command::XHash(Algorithm::Sha1, _) => "XSHA1",
            Command::XHash(Algorithm::Md5, _) => "XMD5",
            Command::XHash(Algorithm::Crc32, _) => "XCRC",
            Command::Auth(_) => "AUTH",
            Command::Pbsz(_) => "PBSZ",
            Command::Prot(_) => "PROT",
            Command::Ccc => "CCC",
            Command::Security(v) | Command::Unsupported(v) | Command::Unknown(v) => v,
        }
    }
}

/// Every verb ferry implements, for HELP.
pub const IMPLEMENTED_VERBS: &[&str] = &[
    "ABOR", "ACCT", "ALLO", "APPE", "AUTH", "CCC", "CDUP", "CWD", "DELE", "EPRT", "EPSV", "FEAT", "HASH",
    "HELP", "LIST", "MDTM", "MFMT", "MKD", "MLSD", "MLST", "MODE", "NLST", "NOOP", "OPTS", "PASS", "PASV",
    "PBSZ", "PORT", "PROT", "PWD", "QUIT", "RANG", "REIN", "REST", "RETR", "RMD", "RNFR", "RNTO", "SITE",
    "SIZE", "STAT", "STOR", "STOU", "STRU", "SYST", "TYPE", "USER", "XCRC", "XCUP", "XCWD", "XMD5", "XMKD",
    "XPWD", "XRMD", "XSHA1", "XSHA256",
];

fn required<'a>(verb: &str, arg: Option<&'a [u8]>) -> Result<&'a [u8], ParseError> {
    match arg {
        Some(a) if !a.is_empty() => Ok(a),
        _ => Err(bad_arg(&format!("{verb} needs an argument"))),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn text(b: &[u8]) -> String {
    lossy(b)
}

fn bad_arg(message: &str) -> ParseError {
    ParseError {
        code: ReplyCode::ARGUMENT_ERROR,
        message: message.to_owned(),
    }
}

fn unsupported_param(message: &str) -> ParseError {
    ParseError {
        code: ReplyCode::PARAMETER_NOT_IMPLEMENTED,
        message: message.to_owned(),
    }
}

fn addr_error(verb: &str, e: AddrError) -> ParseError {
    match e {
        AddrError::UnsupportedProtocol => ParseError {
            code: ReplyCode::PROTOCOL_NOT_SUPPORTED,
            message: "Network protocol not supported, use (1,2)".to_owned(),
        },
        AddrError::Syntax => bad_arg(&format!("Malformed {verb} argument")),
    }
}

fn parse_offset(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_type(arg: &[u8]) -> Result<TransferType, ParseError> {
    let a = text(arg).to_ascii_uppercase();
    let mut words = a.split_ascii_whitespace();
    let kind = words.next().unwrap_or_default();
    let param = words.next();
    if words.next().is_some() {
        return Err(bad_arg("Too many TYPE parameters"));
    }
    match (kind, param) {
        ("A", None | Some("N")) => Ok(TransferType::Ascii),
        ("A", Some("T" | "C")) => Err(unsupported_param("Only non-print ASCII (TYPE A N) is supported")),
        ("I", None) | ("L", Some("8")) => Ok(TransferType::Image),
        ("L", Some(_)) => Err(unsupported_param("Only byte size 8 (TYPE L 8) is supported")),
        ("E", _) => Err(unsupported_param("EBCDIC is not supported")),
        _ => Err(bad_arg("Unknown TYPE")),
    }
}

fn parse_opts(arg: &[u8]) -> Result<Opts, ParseError> {
    let a = text(arg);
    let mut parts = a.splitn(2, ' ');
    let name = parts.next().unwrap_or_default().to_ascii_uppercase();
    let value = parts.next().unwrap_or_default().trim();
    match name.as_str() {
        "UTF8" | "UTF-8" => match value.to_ascii_uppercase().as_str() {
            "ON" | "" => Ok(Opts::Utf8(true)),
            "OFF" => Ok(Opts::Utf8(false)),
            _ => Err(bad_arg("OPTS UTF8 takes ON or OFF")),
        },
        "MLST" => Ok(Opts::Mlst(
            value
                .split(';')
                .filter(|f| !f.is_empty())
                .map(|f| f.to_ascii_lowercase())
                .take(32)
                .collect(),
        )),
        "HASH" if value.is_empty() => Ok(Opts::Hash(None)),
        "HASH" => match Algorithm::from_ftp_name(value) {
            Some(a) => Ok(Opts::Hash(Some(a))),
            None => Err(unsupported_param(
                "Unknown hash algorithm; use SHA-256, SHA-1, MD5 or CRC32",
            )),
        },
        _ => Err(bad_arg("Option not understood")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn p(line: &str) -> Result<Command, ParseError> {
        Command::parse(line.as_bytes())
    }

    #[test]
    fn verbs_are_case_insensitive_and_aliases_map_to_rfc959_verbs() {
        assert_eq!(p("user alice"), Ok(Command::User("alice".into())));
        assert_eq!(p("XPWD"), Ok(Command::Pwd));
        assert_eq!(p("xcwd /a"), Ok(Command::Cwd(b"/a".to_vec())));
        assert_eq!(p("XCUP"), Ok(Command::Cdup));
        assert_eq!(p("XMKD d"), Ok(Command::Mkd(b"d".to_vec())));
        assert_eq!(p("XRMD d"), Ok(Command::Rmd(b"d".to_vec())));
    }

    #[test]
    fn unknown_verb_is_a_value_not_an_error() {
        assert_eq!(p("FOO bar"), Ok(Command::Unknown("FOO".into())));
        assert_eq!(p(""), Ok(Command::Unknown(String::new())));
        assert!(matches!(Command::parse(b"\xff\xfe x"), Ok(Command::Unknown(_))));
        assert!(matches!(p("ABCDEFGHIJKLMNOP"), Ok(Command::Unknown(_))));
    }

    #[test]
    fn path_arguments_keep_spaces_and_raw_bytes() {
        assert_eq!(p("RETR a file.txt"), Ok(Command::Retr(b"a file.txt".to_vec())));
        assert_eq!(
            Command::parse(b"STOR \xe9t\xe9"),
            Ok(Command::Stor(b"\xe9t\xe9".to_vec()))
        );
        assert_eq!(p("MKD  lead"), Ok(Command::Mkd(b" lead".to_vec())));
    }

    #[test]
    fn missing_required_argument_is_501() {
        for verb in [
            "USER", "CWD", "RETR", "STOR", "APPE", "DELE", "RMD", "MKD", "RNFR", "RNTO", "SIZE", "MDTM",
        ] {
            let err = p(verb).unwrap_err();
            assert_eq!(err.code, ReplyCode::ARGUMENT_ERROR, "{verb}");
        }
    }

    #[test]
    fn argumentless_verbs_tolerate_trailing_space() {
        assert_eq!(p("PWD "), Ok(Command::Pwd));
        assert_eq!(p("LIST "), Ok(Command::List(None)));
    }

    #[test]
    fn port_and_eprt_parse_addresses() {
        assert_eq!(
            p("PORT 127,0,0,1,4,1"),
            Ok(Command::Port(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1025)))
        );
        assert_eq!(
            p("EPRT |2|::1|5282|"),
            Ok(Command::Eprt(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 5282)))
        );
        assert_eq!(p("PORT 1,2,3").unwrap_err().code, ReplyCode::ARGUMENT_ERROR);
        assert_eq!(
            p("EPRT |3|x|1|").unwrap_err().code,
            ReplyCode::PROTOCOL_NOT_SUPPORTED
        );
    }

    #[test]
    fn epsv_forms() {
        assert_eq!(p("EPSV"), Ok(Command::Epsv(EpsvArg::Any)));
        assert_eq!(p("EPSV ALL"), Ok(Command::Epsv(EpsvArg::All)));
        assert_eq!(p("epsv all"), Ok(Command::Epsv(EpsvArg::All)));
        assert_eq!(p("EPSV 2"), Ok(Command::Epsv(EpsvArg::Protocol(2))));
        assert_eq!(p("EPSV 9").unwrap_err().code, ReplyCode::PROTOCOL_NOT_SUPPORTED);
    }

    #[test]
    fn type_stru_mode_supported_and_unsupported_parameters() {
        assert_eq!(p("TYPE I"), Ok(Command::Type(TransferType::Image)));
        assert_eq!(p("TYPE A"), Ok(Command::Type(TransferType::Ascii)));
        assert_eq!(p("TYPE A N"), Ok(Command::Type(TransferType::Ascii)));
        assert_eq!(p("TYPE L 8"), Ok(Command::Type(TransferType::Image)));
        assert_eq!(
            p("TYPE E").unwrap_err().code,
            ReplyCode::PARAMETER_NOT_IMPLEMENTED
        );
        assert_eq!(p("TYPE X").unwrap_err().code, ReplyCode::ARGUMENT_ERROR);
        assert_eq!(p("STRU F"), Ok(Command::Stru));
        assert_eq!(
            p("STRU R").unwrap_err().code,
            ReplyCode::PARAMETER_NOT_IMPLEMENTED
        );
        assert_eq!(p("MODE S"), Ok(Command::Mode));
        assert_eq!(
            p("MODE B").unwrap_err().code,
            ReplyCode::PARAMETER_NOT_IMPLEMENTED
        );
    }

    #[test]
    fn rest_offsets() {
        assert_eq!(p("REST 0"), Ok(Command::Rest(0)));
        assert_eq!(p("REST 18446744073709551615"), Ok(Command::Rest(u64::MAX)));
        assert_eq!(
            p("REST 18446744073709551616").unwrap_err().code,
            ReplyCode::ARGUMENT_ERROR
        );
        assert_eq!(p("REST -1").unwrap_err().code, ReplyCode::ARGUMENT_ERROR);
    }

    #[test]
    fn opts_utf8_and_mlst() {
        assert_eq!(p("OPTS UTF8 ON"), Ok(Command::Opts(Opts::Utf8(true))));
        assert_eq!(p("opts utf8 off"), Ok(Command::Opts(Opts::Utf8(false))));
        assert_eq!(
            p("OPTS MLST type;size;"),
            Ok(Command::Opts(Opts::Mlst(vec!["type".into(), "size".into()])))
        );
        assert_eq!(p("OPTS FOO").unwrap_err().code, ReplyCode::ARGUMENT_ERROR);
    }

    #[test]
    fn mfmt_parses_time_and_path() {
        let Ok(Command::Mfmt(_, path)) = p("MFMT 20200102030405 my file") else {
            panic!("mfmt")
        };
        assert_eq!(path, b"my file");
        assert_eq!(p("MFMT 2020 x").unwrap_err().code, ReplyCode::ARGUMENT_ERROR);
        assert_eq!(
            p("MFMT 20200102030405").unwrap_err().code,
            ReplyCode::ARGUMENT_ERROR
        );
    }

    #[test]
    fn hash_verbs_parse() {
        assert_eq!(p("HASH my file"), Ok(Command::Hash(b"my file".to_vec())));
        assert_eq!(p("HASH").unwrap_err().code, ReplyCode::ARGUMENT_ERROR);
        assert_eq!(p("OPTS HASH"), Ok(Command::Opts(Opts::Hash(None))));
        assert_eq!(
            p("OPTS HASH md5"),
            Ok(Command::Opts(Opts::Hash(Some(Algorithm::Md5))))
        );
        assert_eq!(
            p("OPTS HASH SHA-512").unwrap_err().code,
            ReplyCode::PARAMETER_NOT_IMPLEMENTED
        );
        assert_eq!(
            p("RANG 0 9"),
            Ok(Command::Rang(Some(hash::Range {
                start: 0,
                end: Some(10)
            })))
        );
        assert_eq!(p("RANG 1 0"), Ok(Command::Rang(None)));
        assert_eq!(p("RANG x").unwrap_err().code, ReplyCode::ARGUMENT_ERROR);
        let Ok(Command::XHash(Algorithm::Crc32, arg)) = p("XCRC \"a b\" 1 5") else {
            panic!("xcrc")
        };
        assert_eq!(arg.path, b"a b");
        assert!(matches!(p("xsha256 f"), Ok(Command::XHash(Algorithm::Sha256, _))));
        assert_eq!(p("XMD5 \"f\" 5 1").unwrap_err().code, ReplyCode::ARGUMENT_ERROR);
        assert_eq!(p("XSHA1").unwrap_err().code, ReplyCode::ARGUMENT_ERROR);
    }

    #[test]
    fn password_debug_is_redacted() {
        let c = p("PASS hunter2").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn security_and_unsupported_verbs_are_recognised() {
        assert_eq!(p("AUTH TLS"), Ok(Command::Auth(AuthMechanism::Tls)));
        assert_eq!(p("auth ssl"), Ok(Command::Auth(AuthMechanism::Tls)));
        assert_eq!(p("AUTH TLS-P"), Ok(Command::Auth(AuthMechanism::TlsProtected)));
        assert_eq!(p("AUTH KERBEROS_V4").unwrap_err().code, ReplyCode(504));
        assert_eq!(p("AUTH").unwrap_err().code, ReplyCode(501));
        assert_eq!(p("PBSZ 0"), Ok(Command::Pbsz(0)));
        assert_eq!(p("PBSZ x").unwrap_err().code, ReplyCode(501));
        assert_eq!(p("PROT p"), Ok(Command::Prot(ProtLevel::Private)));
        assert_eq!(p("PROT C"), Ok(Command::Prot(ProtLevel::Clear)));
        assert_eq!(p("PROT E"), Ok(Command::Prot(ProtLevel::Confidential)));
        assert_eq!(p("PROT X").unwrap_err().code, ReplyCode(504));
        assert_eq!(p("CCC"), Ok(Command::Ccc));
        assert_eq!(p("ADAT x"), Ok(Command::Security("ADAT".into())));
        assert_eq!(p("LPSV"), Ok(Command::Unsupported("LPSV".into())));
    }
}
