//! Checksums computed while a file is stored ([`Digests`]), so that a later `HASH` or `check-file`
//! answers without reading the file again.
//!
//! Back-ends feed every byte of an upload through a [`Digester`] as it is written (the local one
//! on the blocking pool with the write itself, the S3 one per part while the part is uploaded) and
//! keep the result beside the file, bound to facts that change when the file does (size and
//! modification time on local, size inside the object's own metadata on S3). A value that no
//! longer matches is never returned: the front ends then compute the checksum on demand.

use std::fmt;

/// The CRC-32 of zlib and `XCRC` (ISO-HDLC), slice-by-16: about 9 times the speed of the
/// byte-wise table (1.3 GiB/s against 0.15 GiB/s measured here), for 16 KiB of tables.
static CRC32: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC);

/// SHA-256, MD5 and CRC-32 of a whole file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digests {
    /// SHA-256 (FIPS 180-4).
    pub sha256: [u8; 32],
    /// MD5 (RFC 1321).
    pub md5: [u8; 16],
    /// CRC-32 (ISO-HDLC), as a number.
    pub crc32: u32,
}

impl fmt::Debug for Digests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// Checksums a back-end kept for a file, and the size of the content they describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredDigests {
    /// The file's size when the checksums were computed (and still now).
    pub size: u64,
    /// The checksums of its whole content.
    pub digests: Digests,
}

impl Digests {
    /// `<sha256> <md5> <crc32>` in lower-case hex: the form kept beside files.
    pub fn encode(&self) -> String {
        format!("{} {} {:08x}", hex(&self.sha256), hex(&self.md5), self.crc32)
    }

    /// Parses [`encode`](Digests::encode)'s form; `None` for anything else.
    pub fn decode(s: &str) -> Option<Digests> {
        let mut words = s.split(' ');
        let (sha, md5, crc) = (words.next()?, words.next()?, words.next()?);
        if words.next().is_some() || crc.len() != 8 {
            return None;
        }
        Some(Digests {
            sha256: unhex(sha)?.try_into().ok()?,
            md5: unhex(md5)?.try_into().ok()?,
            crc32: u32::from_str_radix(crc, 16).ok()?,
        })
    }

    /// The digest named as in SFTP `check-file` (`sha256`, `md5`, `crc32`; CRC-32 big-endian, as
    /// its hex form is written), or `None` for an algorithm not kept.
    pub fn by_name(&self, name: &str) -> Option<Vec<u8>> {
        match name {
            "sha256" => Some(self.sha256.to_vec()),
            "md5" => Some(self.md5.to_vec()),
            "crc32" => Some(self.crc32.to_be_bytes().to_vec()),
            _ => None,
        }
    }

    /// The digests of `data` (tests and small files).
    pub fn of(data: &[u8]) -> Digests {
        let mut d = Digester::new();
        d.update(data);
        d.finish()
    }
}

/// SHA-256, MD5 and CRC-32 computed together over a byte stream.
#[derive(Clone)]
pub struct Digester {
    sha256: sha2::Sha256,
    md5: md5::Md5,
    crc32: crc::Digest<'static, u32, crc::Table<16>>,
    len: u64,
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Digester")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Default for Digester {
    fn default() -> Self {
        Self::new()
    }
}

impl Digester {
    /// A fresh computation.
    pub fn new() -> Digester {
        use sha2::Digest as _;
        Digester {
            sha256: sha2::Sha256::new(),
            md5: md5::Md5::new(),
            crc32: CRC32.digest(),
            len: 0,
        }
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, data: &[u8]) {
        use sha2::Digest as _;
        self.sha256.update(data);
        self.md5.update(data);
        self.crc32.update(data);
        self.len += data.len() as u64;
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The checksums of everything fed.
    pub fn finish(self) -> Digests {
        use sha2::Digest as _;
        Digests {
            sha256: self.sha256.finalize().into(),
            md5: self.md5.finalize().into(),
            crc32: self.crc32.finalize(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors_and_round_trip() {
        let d = Digests::of(b"123456789");
        assert_eq!(d.crc32, 0xcbf4_3926);
        assert_eq!(hex(&d.md5), "25f9e794323b453885f5181f1b624d0b");
        assert_eq!(
            hex(&d.sha256),
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"
        );
        assert_eq!(Digests::decode(&d.encode()), Some(d));
        let mut inc = Digester::new();
        inc.update(b"1234");
        inc.update(b"56789");
        assert_eq!(inc.len(), 9);
        assert_eq!(inc.finish(), d);
    }

    #[test]
    fn decode_refuses_anything_else() {
        let good = Digests::of(b"x").encode();
        for bad in [
            "",
            "zz",
            &good[1..],
            &format!("{good} extra"),
            &good.replace(' ', "  "),
            &good.to_uppercase().replace(|c: char| c.is_ascii_digit(), "g"),
        ] {
            assert_eq!(Digests::decode(bad), None, "{bad:?}");
        }
    }
}
