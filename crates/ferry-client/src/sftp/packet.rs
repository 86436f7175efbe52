//! SFTP v3 packets (draft-ietf-secsh-filexfer-02): encoding of requests, decoding of responses. No I/O.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub(crate) const INIT: u8 = 1;
pub(crate) const VERSION: u8 = 2;
pub(crate) const OPEN: u8 = 3;
pub(crate) const CLOSE: u8 = 4;
pub(crate) const READ: u8 = 5;
pub(crate) const WRITE: u8 = 6;
pub(crate) const SETSTAT: u8 = 9;
pub(crate) const OPENDIR: u8 = 11;
pub(crate) const READDIR: u8 = 12;
pub(crate) const REMOVE: u8 = 13;
pub(crate) const MKDIR: u8 = 14;
pub(crate) const RMDIR: u8 = 15;
pub(crate) const STAT: u8 = 17;
pub(crate) const RENAME: u8 = 18;
pub(crate) const EXTENDED: u8 = 200;
pub(crate) const EXTENDED_REPLY: u8 = 201;
pub(crate) const STATUS: u8 = 101;
pub(crate) const HANDLE: u8 = 102;
pub(crate) const DATA: u8 = 103;
pub(crate) const NAME: u8 = 104;
pub(crate) const ATTRS: u8 = 105;

pub(crate) const FXF_READ: u32 = 0x01;
pub(crate) const FXF_WRITE: u32 = 0x02;
pub(crate) const FXF_CREAT: u32 = 0x08;
pub(crate) const FXF_TRUNC: u32 = 0x10;

pub(crate) const FX_OK: u32 = 0;
pub(crate) const FX_EOF: u32 = 1;
pub(crate) const FX_NO_SUCH_FILE: u32 = 2;
pub(crate) const FX_PERMISSION_DENIED: u32 = 3;

const ATTR_SIZE: u32 = 0x1;
const ATTR_UIDGID: u32 = 0x2;
const ATTR_PERMISSIONS: u32 = 0x4;
const ATTR_ACMODTIME: u32 = 0x8;
const ATTR_EXTENDED: u32 = 0x8000_0000;

/// A response: its type, request id and the rest of the body.
#[derive(Debug)]
pub(crate) struct Packet {
    pub kind: u8,
    pub id: u32,
    pub body: Bytes,
}

/// File attributes (the parts the client uses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attrs {
    pub size: Option<u64>,
    pub permissions: Option<u32>,
    pub mtime: Option<u32>,
}

impl Attrs {
    pub(crate) fn is_dir(&self) -> bool {
        self.permissions.is_some_and(|p| p & 0o170_000 == 0o040_000)
    }

    pub(crate) fn is_symlink(&self) -> bool {
        self.permissions.is_some_and(|p| p & 0o170_000 == 0o120_000)
    }

    pub(crate) fn is_regular(&self) -> bool {
        self.permissions.is_none_or(|p| p & 0o170_000 == 0o100_000)
    }

    pub(crate) fn modified(&self) -> Option<SystemTime> {
        self.mtime
            .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(u64::from(s))))
    }
}

/// Room kept in front of a request body for the packet's length, type and id, so that
/// [`Body::packet`] completes the packet in place instead of copying the body (a WRITE's data).
const HEADER: usize = 9;

/// Body of a request after its type and id (preceded by [`HEADER`] bytes of room).
#[derive(Debug)]
pub(crate) struct Body(BytesMut);

impl Body {
    pub(crate) fn new() -> Self {
        Self::with_capacity(64)
    }
    /// A body with room for `n` bytes.
    pub(crate) fn with_capacity(n: usize) -> Self {
        let mut b = BytesMut::with_capacity(HEADER + n);
        b.put_bytes(0, HEADER);
        Body(b)
    }
    pub(crate) fn u32(mut self, v: u32) -> Self {
        self.0.put_u32(v);
        self
    }
    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.0.put_u64(v);
        self
    }
    pub(crate) fn string(mut self, s: &[u8]) -> Self {
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        self.0.put_u32(len);
        self.0.put_slice(s);
        self
    }
    /// Attributes with only the modification (and access) time set, or none (`mtime = None`).
    pub(crate) fn attrs(self, mtime: Option<u32>) -> Self {
        match mtime {
            Some(t) => self.u32(ATTR_ACMODTIME).u32(t).u32(t),
            None => self.u32(0),
        }
    }
    /// The whole packet: length, type, id (if any), body.
    pub(crate) fn packet(self, kind: u8, id: Option<u32>) -> Bytes {
        let mut out = self.0;
        // Without an id the packet starts 4 bytes later: length, type, body.
        let start = if id.is_some() { 0 } else { 4 };
        let len = u32::try_from(out.len() - start - 4).unwrap_or(u32::MAX);
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&len.to_be_bytes());
        header[4] = kind;
        if let Some(id) = id {
            header[5..].copy_from_slice(&id.to_be_bytes());
        }
        if let (Some(room), Some(fill)) = (out.get_mut(start..HEADER), header.get(..HEADER - start)) {
            room.copy_from_slice(fill);
        }
        out.freeze().slice(start..)
    }
    /// The body alone.
    #[cfg(test)]
    fn into_body(self) -> Bytes {
        self.0.freeze().slice(HEADER..)
    }
}

/// A reader over a response body that never panics: every getter returns `None` when bytes run out.
#[derive(Debug)]
pub(crate) struct Reader(pub Bytes);

impl Reader {
    pub(crate) fn u32(&mut self) -> Option<u32> {
        (self.0.remaining() >= 4).then(|| self.0.get_u32())
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        (self.0.remaining() >= 8).then(|| self.0.get_u64())
    }
    pub(crate) fn string(&mut self) -> Option<Bytes> {
        let len = usize::try_from(self.u32()?).ok()?;
        (self.0.remaining() >= len).then(|| self.0.split_to(len))
    }
    pub(crate) fn attrs(&mut self) -> Option<Attrs> {
        let flags = self.u32()?;
        let mut a = Attrs::default();
        if flags & ATTR_SIZE != 0 {
            a.size = Some(self.u64()?);
        }
        if flags & ATTR_UIDGID != 0 {
            self.u32()?;
            self.u32()?;
        }
        if flags & ATTR_PERMISSIONS != 0 {
            a.permissions = Some(self.u32()?);
        }
        if flags & ATTR_ACMODTIME != 0 {
            self.u32()?;
            a.mtime = Some(self.u32()?);
        }
        if flags & ATTR_EXTENDED != 0 {
            let count = self.u32()?;
            for _ in 0..count {
                self.string()?;
                self.string()?;
            }
        }
        Some(a)
    }
}

/// Splits one packet (type, id, body) from a frame's payload (after the length).
pub(crate) fn parse(payload: Bytes) -> Option<Packet> {
    let mut r = Reader(payload);
    if r.0.remaining() < 1 {
        return None;
    }
    let kind = r.0.get_u8();
    let id = r.u32()?;
    Some(Packet { kind, id, body: r.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_framing() {
        let p = Body::new()
            .string(b"/a")
            .u32(FXF_READ)
            .attrs(None)
            .packet(OPEN, Some(7));
        assert_eq!(
            &p[..],
            &[0, 0, 0, 19, OPEN, 0, 0, 0, 7, 0, 0, 0, 2, b'/', b'a', 0, 0, 0, 1, 0, 0, 0, 0][..]
        );
    }

    #[test]
    fn framing_without_id() {
        let p = Body::new().u32(3).packet(INIT, None);
        assert_eq!(&p[..], &[0, 0, 0, 5, INIT, 0, 0, 0, 3][..]);
    }

    #[test]
    fn truncated_responses_give_none() {
        let mut r = Reader(Bytes::from_static(&[0, 0, 0, 9, b'x']));
        assert_eq!(r.string(), None);
        let mut r = Reader(Bytes::from_static(&[0, 0, 0, 1]));
        assert_eq!(r.attrs(), None);
        assert!(parse(Bytes::from_static(&[DATA, 0, 0])).is_none());
    }

    #[test]
    fn attributes_decode() {
        let body = Body::new()
            .u32(ATTR_SIZE | ATTR_PERMISSIONS | ATTR_ACMODTIME)
            .u64(42)
            .u32(0o040_755)
            .u32(1)
            .u32(2);
        let a = Reader(body.into_body()).attrs().expect("attrs");
        assert_eq!(a.size, Some(42));
        assert!(a.is_dir());
        assert_eq!(a.mtime, Some(2));
    }
}
