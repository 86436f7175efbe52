//! SFTP version 3 wire format (draft-ietf-secsh-filexfer-02): packet types, status codes, a bounded
//! decoder for requests and an encoder for replies. No I/O.

use bytes::{BufMut, Bytes, BytesMut};

/// Packet types (draft-02 §3).
pub(crate) mod kind {
    pub const INIT: u8 = 1;
    pub const VERSION: u8 = 2;
    pub const OPEN: u8 = 3;
    pub const CLOSE: u8 = 4;
    pub const READ: u8 = 5;
    pub const WRITE: u8 = 6;
    pub const LSTAT: u8 = 7;
    pub const FSTAT: u8 = 8;
    pub const SETSTAT: u8 = 9;
    pub const FSETSTAT: u8 = 10;
    pub const OPENDIR: u8 = 11;
    pub const READDIR: u8 = 12;
    pub const REMOVE: u8 = 13;
    pub const MKDIR: u8 = 14;
    pub const RMDIR: u8 = 15;
    pub const REALPATH: u8 = 16;
    pub const STAT: u8 = 17;
    pub const RENAME: u8 = 18;
    pub const READLINK: u8 = 19;
    pub const SYMLINK: u8 = 20;
    pub const STATUS: u8 = 101;
    pub const HANDLE: u8 = 102;
    pub const DATA: u8 = 103;
    pub const NAME: u8 = 104;
    pub const ATTRS: u8 = 105;
    pub const EXTENDED: u8 = 200;
    pub const EXTENDED_REPLY: u8 = 201;
}

/// `SSH_FX_*` status codes (draft-02 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Status {
    Ok = 0,
    Eof = 1,
    NoSuchFile = 2,
    PermissionDenied = 3,
    Failure = 4,
    BadMessage = 5,
    OpUnsupported = 8,
}

impl Status {
    /// The fixed English text sent with the code (never a host path).
    pub(crate) fn text(self) -> &'static str {
        match self {
            Status::Ok => "Success",
            Status::Eof => "End of file",
            Status::NoSuchFile => "No such file",
            Status::PermissionDenied => "Permission denied",
            Status::Failure => "Failure",
            Status::BadMessage => "Bad message",
            Status::OpUnsupported => "Operation unsupported",
        }
    }
}

/// `SSH_FXF_*` open flags.
pub(crate) mod open_flags {
    pub const READ: u32 = 0x01;
    pub const WRITE: u32 = 0x02;
    pub const APPEND: u32 = 0x04;
    pub const CREAT: u32 = 0x08;
    pub const TRUNC: u32 = 0x10;
    pub const EXCL: u32 = 0x20;
}

/// `SSH_FILEXFER_ATTR_*` flags.
pub(crate) mod attr_flags {
    pub const SIZE: u32 = 0x01;
    pub const UIDGID: u32 = 0x02;
    pub const PERMISSIONS: u32 = 0x04;
    pub const ACMODTIME: u32 = 0x08;
    pub const EXTENDED: u32 = 0x8000_0000;
}

/// File type bits of `st_mode`, sent in the permissions attribute.
pub(crate) mod mode_bits {
    pub const S_IFREG: u32 = 0o100_000;
    pub const S_IFDIR: u32 = 0o040_000;
    pub const S_IFLNK: u32 = 0o120_000;
}

/// The peer sent a malformed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed SFTP packet")]
pub(crate) struct Malformed;

/// File attributes (draft-02 §5). Extended attributes are skipped on input and never sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attrs {
    pub size: Option<u64>,
    pub uid_gid: Option<(u32, u32)>,
    pub permissions: Option<u32>,
    /// (atime, mtime), unix seconds.
    pub times: Option<(u32, u32)>,
}

/// Most extended attribute pairs accepted in one ATTRS.
const MAX_EXTENDED_ATTRS: u32 = 64;

/// Reads the fields of a request body; every read is bounds-checked.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.buf.len() < n {
            return Err(Malformed);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Malformed> {
        let hi = u64::from(self.u32()?);
        let lo = u64::from(self.u32()?);
        Ok(hi << 32 | lo)
    }

    /// A length-prefixed byte string.
    pub(crate) fn string(&mut self) -> Result<&'a [u8], Malformed> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    /// Whatever is left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn attrs(&mut self) -> Result<Attrs, Malformed> {
        let flags = self.u32()?;
        let mut a = Attrs::default();
        if flags & attr_flags::SIZE != 0 {
            a.size = Some(self.u64()?);
        }
        if flags & attr_flags::UIDGID != 0 {
            a.uid_gid = Some((self.u32()?, self.u32()?));
        }
        if flags & attr_flags::PERMISSIONS != 0 {
            a.permissions = Some(self.u32()?);
        }
        if flags & attr_flags::ACMODTIME != 0 {
            a.times = Some((self.u32()?, self.u32()?));
        }
        if flags & attr_flags::EXTENDED != 0 {
            let count = self.u32()?;
            if count > MAX_EXTENDED_ATTRS {
                return Err(Malformed);
            }
            for _ in 0..count {
                self.string()?;
                self.string()?;
            }
        }
        Ok(a)
    }
}

/// Builds one reply packet: `uint32 length` is patched in by [`Writer::finish`].
#[derive(Debug)]
pub(crate) struct Writer {
    buf: BytesMut,
}

impl Writer {
    /// A packet of `kind` for request `id` (`None` for VERSION), with room for `capacity` bytes.
    pub(crate) fn new(kind: u8, id: Option<u32>, capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(capacity + 9);
        buf.put_u32(0);
        buf.put_u8(kind);
        if let Some(id) = id {
            buf.put_u32(id);
        }
        Writer { buf }
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.put_u32(v);
        self
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.put_u64(v);
        self
    }

    pub(crate) fn string(&mut self, s: &[u8]) -> &mut Self {
        // Every string we send is far below 4 GiB (bounded by the packet limits).
        self.buf.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.buf.put_slice(s);
        self
    }

    /// Bytes with no length prefix (the rest of a packet).
    pub(crate) fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.put_slice(b);
        self
    }

    pub(crate) fn attrs(&mut self, a: &Attrs) -> &mut Self {
        let mut flags = 0;
        if a.size.is_some() {
            flags |= attr_flags::SIZE;
        }
        if a.uid_gid.is_some() {
            flags |= attr_flags::UIDGID;
        }
        if a.permissions.is_some() {
            flags |= attr_flags::PERMISSIONS;
        }
        if a.times.is_some() {
            flags |= attr_flags::ACMODTIME;
        }
        self.u32(flags);
        if let Some(size) = a.size {
            self.u64(size);
        }
        if let Some((uid, gid)) = a.uid_gid {
            self.u32(uid).u32(gid);
        }
        if let Some(p) = a.permissions {
            self.u32(p);
        }
        if let Some((atime, mtime)) = a.times {
            self.u32(atime).u32(mtime);
        }
        self
    }

    /// Bytes written so far (including the header).
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn finish(mut self) -> Bytes {
        let len = u32::try_from(self.buf.len() - 4).unwrap_or(u32::MAX);
        self.buf[..4].copy_from_slice(&len.to_be_bytes());
        self.buf.freeze()
    }
}

/// A STATUS reply.
pub(crate) fn status(id: u32, status: Status) -> Bytes {
    status_with(id, status, status.text())
}

/// A STATUS reply with its own message.
pub(crate) fn status_with(id: u32, status: Status, message: &str) -> Bytes {
    let mut w = Writer::new(kind::STATUS, Some(id), 16 + message.len());
    w.u32(status as u32).string(message.as_bytes()).string(b"en");
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_refuses_truncated_fields() {
        assert_eq!(Reader::new(&[0, 0, 0]).u32(), Err(Malformed));
        assert_eq!(Reader::new(&[0, 0, 0, 5, b'a']).string(), Err(Malformed));
        let mut r = Reader::new(&[0, 0, 0, 1, b'a', 9]);
        assert_eq!(r.string(), Ok(&b"a"[..]));
        assert_eq!(r.u8(), Ok(9));
        assert_eq!(r.u8(), Err(Malformed));
    }

    #[test]
    fn attrs_round_trip_and_extended_pairs_are_bounded() {
        let a = Attrs {
            size: Some(1 << 40),
            uid_gid: Some((1, 2)),
            permissions: Some(0o100_644),
            times: Some((3, 4)),
        };
        let mut w = Writer::new(kind::ATTRS, Some(7), 64);
        w.attrs(&a);
        let packet = w.finish();
        let mut r = Reader::new(&packet[4..]);
        assert_eq!(r.u8(), Ok(kind::ATTRS));
        assert_eq!(r.u32(), Ok(7));
        assert_eq!(r.attrs(), Ok(a));
        assert!(r.rest().is_empty());

        let mut huge = attr_flags::EXTENDED.to_be_bytes().to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(Reader::new(&huge).attrs(), Err(Malformed));
    }

    #[test]
    fn status_packet_has_length_type_id_code_message_language() {
        let p = status(9, Status::NoSuchFile);
        let mut r = Reader::new(&p);
        assert_eq!(r.u32(), Ok(u32::try_from(p.len() - 4).expect("len")));
        assert_eq!(r.u8(), Ok(kind::STATUS));
        assert_eq!(r.u32(), Ok(9));
        assert_eq!(r.u32(), Ok(2));
        assert_eq!(r.string(), Ok(&b"No such file"[..]));
        assert_eq!(r.string(), Ok(&b"en"[..]));
    }
}
