//! File checksums as clients ask for them: the algorithms and their names in FTP (`HASH`, draft-bryan-ftpext-hash,
//! and the older `XSHA256`/`XSHA1`/`XMD5`/`XCRC` verbs) and in SFTP (`check-file`,
//! draft-ietf-secsh-filexfer-extensions), an incremental [`Hasher`], the argument parsers of the FTP verbs and the
//! parser of a `HASH` reply (client side).
//!
//! Pure computation: no I/O. The glue reads the file and feeds the bytes in.

use std::fmt;

/// On-demand hashing is refused for ranges longer than this unless configured otherwise (1 GiB: a few seconds of
/// one core for SHA-256).
pub const DEFAULT_MAX_SIZE: u64 = 1 << 30;

/// A checksum algorithm ferry computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// SHA-256 (FIPS 180-4): the default.
    Sha256,
    /// SHA-1: for older clients; not collision resistant.
    Sha1,
    /// MD5 (RFC 1321): for older clients; not collision resistant.
    Md5,
    /// CRC-32 (ISO-HDLC, as zlib and `XCRC`): detects accidents only.
    Crc32,
}

impl Algorithm {
    /// Every algorithm, strongest first (the order FEAT and VERSION list them in).
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Sha256,
        Algorithm::Sha1,
        Algorithm::Md5,
        Algorithm::Crc32,
    ];

    /// The name in FTP `HASH`/`FEAT`/`OPTS HASH` (the IANA hash function text names).
    pub fn ftp_name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha1 => "SHA-1",
            Algorithm::Md5 => "MD5",
            Algorithm::Crc32 => "CRC32",
        }
    }

    /// The name in the SFTP `check-file` extension.
    pub fn sftp_name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha1 => "sha1",
            Algorithm::Md5 => "md5",
            Algorithm::Crc32 => "crc32",
        }
    }

    /// Parses an FTP name, ignoring case (`SHA-256`, also the SFTP spelling `sha256`).
    pub fn from_ftp_name(name: &str) -> Option<Algorithm> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|a| a.ftp_name().eq_ignore_ascii_case(name) || a.sftp_name().eq_ignore_ascii_case(name))
    }

    /// Parses an SFTP `check-file` name (exact, lower case, as the draft spells them).
    pub fn from_sftp_name(name: &[u8]) -> Option<Algorithm> {
        Self::ALL.into_iter().find(|a| a.sftp_name().as_bytes() == name)
    }

    /// The first algorithm of a comma-separated SFTP preference list that ferry supports.
    pub fn first_supported_sftp(list: &[u8]) -> Option<Algorithm> {
        list.split(|&b| b == b',').find_map(Self::from_sftp_name)
    }

    /// Length of the digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha1 => 20,
            Algorithm::Md5 => 16,
            Algorithm::Crc32 => 4,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ftp_name())
    }
}

/// The `FEAT` line: every algorithm, the selected one marked with `*` (`HASH SHA-256*;SHA-1;MD5;CRC32`).
pub fn feat_line(selected: Algorithm) -> String {
    let names: Vec<String> = Algorithm::ALL
        .iter()
        .map(|&a| {
            if a == selected {
                format!("{}*", a.ftp_name())
            } else {
                a.ftp_name().to_owned()
            }
        })
        .collect();
    format!("HASH {}", names.join(";"))
}

/// The table zlib's and `XCRC`'s CRC-32 uses.
static CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// An incremental digest of one algorithm.
pub struct Hasher(Inner);

enum Inner {
    Sha256(sha2::Sha256),
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
    Crc32(crc::Digest<'static, u32>),
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Hasher").field(&self.algorithm()).finish()
    }
}

impl Hasher {
    /// A fresh digest.
    pub fn new(algorithm: Algorithm) -> Self {
        use sha2::Digest as _;
        Hasher(match algorithm {
            Algorithm::Sha256 => Inner::Sha256(sha2::Sha256::new()),
            Algorithm::Sha1 => Inner::Sha1(sha1::Sha1::new()),
            Algorithm::Md5 => Inner::Md5(md5::Md5::new()),
            Algorithm::Crc32 => Inner::Crc32(CRC32.digest()),
        })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.0 {
            Inner::Sha256(_) => Algorithm::Sha256,
            Inner::Sha1(_) => Algorithm::Sha1,
            Inner::Md5(_) => Algorithm::Md5,
            Inner::Crc32(_) => Algorithm::Crc32,
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        use sha2::Digest as _;
        match &mut self.0 {
            Inner::Sha256(h) => h.update(data),
            Inner::Sha1(h) => h.update(data),
            Inner::Md5(h) => h.update(data),
            Inner::Crc32(h) => h.update(data),
        }
    }

    /// The digest (CRC-32 big-endian, as its hex form is written).
    pub fn finish(self) -> Vec<u8> {
        use sha2::Digest as _;
        match self.0 {
            Inner::Sha256(h) => h.finalize().to_vec(),
            Inner::Sha1(h) => h.finalize().to_vec(),
            Inner::Md5(h) => h.finalize().to_vec(),
            Inner::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
        }
    }

    /// The digest of `data` in one call.
    pub fn digest(algorithm: Algorithm, data: &[u8]) -> Vec<u8> {
        let mut h = Hasher::new(algorithm);
        h.update(data);
        h.finish()
    }
}

/// Digests of consecutive blocks of a byte stream (SFTP `check-file` with a block size), or of the whole
/// stream when the block size is 0. The digests are concatenated.
#[derive(Debug)]
pub struct BlockHasher {
    block_size: u64,
    current: Hasher,
    in_block: u64,
    out: Vec<u8>,
}

impl BlockHasher {
    /// Hashes blocks of `block_size` bytes (0: one digest of everything).
    pub fn new(algorithm: Algorithm, block_size: u64) -> Self {
        BlockHasher {
            block_size,
            current: Hasher::new(algorithm),
            in_block: 0,
            out: Vec::new(),
        }
    }

    /// How many digest bytes `len` bytes of input give.
    pub fn output_len(algorithm: Algorithm, block_size: u64, len: u64) -> u64 {
        let blocks = if block_size == 0 {
            1
        } else {
            len.div_ceil(block_size).max(1)
        };
        blocks.saturating_mul(algorithm.digest_len() as u64)
    }

    /// Feeds bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = if self.block_size == 0 {
                data.len()
            } else {
                usize::try_from(self.block_size - self.in_block)
                    .unwrap_or(usize::MAX)
                    .min(data.len())
            };
            let (now, rest) = data.split_at(room);
            self.current.update(now);
            self.in_block += room as u64;
            data = rest;
            if self.block_size > 0 && self.in_block == self.block_size {
                let algorithm = self.current.algorithm();
                let done = std::mem::replace(&mut self.current, Hasher::new(algorithm));
                self.out.extend_from_slice(&done.finish());
                self.in_block = 0;
            }
        }
    }

    /// The concatenated digests; a final partial block (or an empty input) gives one more.
    pub fn finish(mut self) -> Vec<u8> {
        if self.in_block > 0 || self.out.is_empty() {
            self.out.extend_from_slice(&self.current.finish());
        }
        self.out
    }
}

/// Lower-case hex, as `sha256sum` prints it.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// A byte range of a file to hash: from `start` to `end` (exclusive), or to the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte; `None` for the end of the file.
    pub end: Option<u64>,
}

/// The argument of `XSHA256`/`XSHA1`/`XMD5`/`XCRC`: a path, optionally quoted and followed by a start and an end
/// offset (`XCRC "my file" 0 1024`). An unquoted argument is all path, spaces included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XHashArg {
    /// The path bytes.
    pub path: Vec<u8>,
    /// The range; the whole file unless offsets were given.
    pub range: Range,
}

/// Why an `X…` hash argument was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XHashArgError {
    /// A quote was opened but not closed, or the offsets are not decimal numbers.
    Syntax,
    /// The end offset is before the start offset.
    EmptyRange,
}

/// Parses an `X…` hash argument (see [`XHashArg`]).
pub fn parse_xhash_arg(arg: &[u8]) -> Result<XHashArg, XHashArgError> {
    let Some(rest) = arg.strip_prefix(b"\"") else {
        return Ok(XHashArg {
            path: arg.to_vec(),
            range: Range::default(),
        });
    };
    let close = rest
        .iter()
        .position(|&b| b == b'"')
        .ok_or(XHashArgError::Syntax)?;
    let (path, tail) = rest.split_at(close);
    let tail = std::str::from_utf8(tail.get(1..).unwrap_or_default()).map_err(|_| XHashArgError::Syntax)?;
    let mut numbers = tail.split_ascii_whitespace().map(parse_u64);
    let start = numbers.next().transpose()?.unwrap_or(0);
    let end = numbers.next().transpose()?;
    if numbers.next().is_some() || path.is_empty() {
        return Err(XHashArgError::Syntax);
    }
    if end.is_some_and(|e| e < start) {
        return Err(XHashArgError::EmptyRange);
    }
    Ok(XHashArg {
        path: path.to_vec(),
        range: Range { start, end },
    })
}

/// Parses `RANG <start> <end>` (draft-bryan-ftp-range; `end` is the last byte, inclusive). `Ok(None)` is the
/// reset form `RANG 1 0`.
pub fn parse_rang_arg(arg: &str) -> Result<Option<Range>, XHashArgError> {
    let mut words = arg.split_ascii_whitespace();
    let (Some(start), Some(end), None) = (words.next(), words.next(), words.next()) else {
        return Err(XHashArgError::Syntax);
    };
    let (start, end) = (parse_u64(start)?, parse_u64(end)?);
    if (start, end) == (1, 0) {
        return Ok(None);
    }
    if end < start {
        return Err(XHashArgError::EmptyRange);
    }
    Ok(Some(Range {
        start,
        end: end.checked_add(1),
    }))
}

fn parse_u64(s: &str) -> Result<u64, XHashArgError> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(XHashArgError::Syntax);
    }
    s.parse().map_err(|_| XHashArgError::Syntax)
}

/// A `HASH` reply as a client reads it: `213 SHA-256 0-49 <hex> <path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashReply {
    /// The algorithm the server used.
    pub algorithm: Algorithm,
    /// First byte hashed.
    pub start: u64,
    /// One past the last byte hashed.
    pub end: u64,
    /// The digest.
    pub digest: Vec<u8>,
}

/// Parses the text of a `213` reply to `HASH` (without the code). `None` when it is not in the draft's form or
/// names an algorithm ferry does not know.
pub fn parse_hash_reply(text: &str) -> Option<HashReply> {
    let mut words = text.trim_start().splitn(4, ' ');
    let algorithm = Algorithm::from_ftp_name(words.next()?)?;
    let (start, end) = words.next()?.split_once('-')?;
    let digest = parse_hex(words.next()?)?;
    if digest.len() != algorithm.digest_len() {
        return None;
    }
    Some(HashReply {
        algorithm,
        start: start.parse().ok()?,
        end: end.parse().ok()?,
        digest,
    })
}

/// Parses the text of a reply to `XSHA256`/`XSHA1`/`XMD5`/`XCRC`: the digest in hex as the first or last word
/// (servers differ), of the algorithm's length.
pub fn parse_xhash_reply(algorithm: Algorithm, text: &str) -> Option<Vec<u8>> {
    let mut words = text.split_ascii_whitespace();
    let first = words.next()?;
    let last = words.next_back().unwrap_or(first);
    [first, last]
        .into_iter()
        .filter_map(parse_hex)
        .find(|d| d.len() == algorithm.digest_len())
}

/// Parses hex digits (either case) into bytes.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || !s.len().is_multiple_of(2) || s.len() > 256 {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = char::from(*pair.first()?).to_digit(16)?;
            let lo = char::from(*pair.get(1)?).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_known_vectors() {
        let abc = b"abc";
        assert_eq!(
            hex(&Hasher::digest(Algorithm::Sha256, abc)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&Hasher::digest(Algorithm::Sha1, abc)),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&Hasher::digest(Algorithm::Md5, abc)),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        // zlib.crc32(b"123456789") == 0xcbf43926
        assert_eq!(hex(&Hasher::digest(Algorithm::Crc32, b"123456789")), "cbf43926");
    }

    #[test]
    fn incremental_equals_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for a in Algorithm::ALL {
            let mut h = Hasher::new(a);
            for chunk in data.chunks(333) {
                h.update(chunk);
            }
            assert_eq!(h.finish(), Hasher::digest(a, &data), "{a}");
        }
    }

    #[test]
    fn block_hasher_splits_at_block_boundaries() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 7) as u8).collect();
        let mut b = BlockHasher::new(Algorithm::Md5, 256);
        for chunk in data.chunks(100) {
            b.update(chunk);
        }
        let out = b.finish();
        let expected: Vec<u8> = data
            .chunks(256)
            .flat_map(|c| Hasher::digest(Algorithm::Md5, c))
            .collect();
        assert_eq!(out, expected);
        assert_eq!(
            out.len() as u64,
            BlockHasher::output_len(Algorithm::Md5, 256, 1000)
        );
        let mut whole = BlockHasher::new(Algorithm::Sha1, 0);
        whole.update(&data);
        assert_eq!(whole.finish(), Hasher::digest(Algorithm::Sha1, &data));
        assert_eq!(
            BlockHasher::new(Algorithm::Crc32, 256).finish(),
            Hasher::digest(Algorithm::Crc32, b"")
        );
    }

    #[test]
    fn names_round_trip() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_ftp_name(a.ftp_name()), Some(a));
            assert_eq!(Algorithm::from_ftp_name(&a.ftp_name().to_lowercase()), Some(a));
            assert_eq!(Algorithm::from_sftp_name(a.sftp_name().as_bytes()), Some(a));
        }
        assert_eq!(Algorithm::from_ftp_name("SHA-512"), None);
        assert_eq!(
            Algorithm::first_supported_sftp(b"sha512,md5,sha256"),
            Some(Algorithm::Md5)
        );
        assert_eq!(Algorithm::first_supported_sftp(b"sha384"), None);
        assert_eq!(feat_line(Algorithm::Md5), "HASH SHA-256;SHA-1;MD5*;CRC32");
    }

    #[test]
    fn xhash_arguments() {
        assert_eq!(
            parse_xhash_arg(b"a file.txt"),
            Ok(XHashArg {
                path: b"a file.txt".to_vec(),
                range: Range::default()
            })
        );
        assert_eq!(
            parse_xhash_arg(b"\"a file\" 10 20"),
            Ok(XHashArg {
                path: b"a file".to_vec(),
                range: Range {
                    start: 10,
                    end: Some(20)
                }
            })
        );
        assert_eq!(
            parse_xhash_arg(b"\"f\" 5").map(|a| a.range),
            Ok(Range { start: 5, end: None })
        );
        assert_eq!(parse_xhash_arg(b"\"f"), Err(XHashArgError::Syntax));
        assert_eq!(parse_xhash_arg(b"\"f\" x"), Err(XHashArgError::Syntax));
        assert_eq!(parse_xhash_arg(b"\"f\" 1 2 3"), Err(XHashArgError::Syntax));
        assert_eq!(parse_xhash_arg(b"\"f\" 9 2"), Err(XHashArgError::EmptyRange));
        assert_eq!(parse_xhash_arg(b"\"\""), Err(XHashArgError::Syntax));
    }

    #[test]
    fn rang_end_is_inclusive_and_1_0_resets() {
        assert_eq!(
            parse_rang_arg("0 9"),
            Ok(Some(Range {
                start: 0,
                end: Some(10)
            }))
        );
        assert_eq!(parse_rang_arg("1 0"), Ok(None));
        assert_eq!(parse_rang_arg("5 2"), Err(XHashArgError::EmptyRange));
        assert_eq!(parse_rang_arg("5"), Err(XHashArgError::Syntax));
        assert_eq!(parse_rang_arg("-1 2"), Err(XHashArgError::Syntax));
    }

    #[test]
    fn hash_replies_parse() {
        let r = parse_hash_reply(
            "SHA-256 0-3 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad my file",
        )
        .expect("reply");
        assert_eq!(r.algorithm, Algorithm::Sha256);
        assert_eq!((r.start, r.end), (0, 3));
        assert_eq!(
            hex(&r.digest),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(parse_hash_reply("SHA-256 0-3 abcd f"), None);
        assert_eq!(parse_hash_reply("BLAKE3 0-3 abcd f"), None);
        assert_eq!(parse_hash_reply("garbage"), None);
        assert_eq!(
            parse_xhash_reply(Algorithm::Crc32, "CBF43926"),
            Some(vec![0xcb, 0xf4, 0x39, 0x26])
        );
        assert_eq!(
            parse_xhash_reply(Algorithm::Md5, "file 900150983cd24fb0d6963f7d28e17f72").map(|d| hex(&d)),
            Some("900150983cd24fb0d6963f7d28e17f72".to_owned())
        );
        assert_eq!(parse_xhash_reply(Algorithm::Md5, "nothing here"), None);
    }
}
