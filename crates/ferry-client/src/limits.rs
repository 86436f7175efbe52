//! Every bound the client applies to what a server sends, in one place.

use std::time::Duration;

/// Longest control line accepted from an FTP server, in bytes (ferry-proto's server-side limit).
pub const MAX_CONTROL_LINE: usize = ferry_proto::limits::MAX_LINE;

/// Longest listing line accepted (LIST/MLSD), in bytes.
pub const MAX_LISTING_LINE: usize = 8192;

/// Most entries kept from one directory listing.
pub const MAX_LISTING_ENTRIES: usize = 1_000_000;

/// Largest SFTP packet accepted from a server (OpenSSH's own limit is 256 KiB).
pub const MAX_SFTP_PACKET: usize = 256 * 1024 + 1024;

/// Most SFTP read or write requests kept in flight per transfer (as OpenSSH's sftp).
pub const SFTP_REQUESTS_IN_FLIGHT: usize = 64;

/// Bytes asked for by one SFTP read or sent by one write when the server does not say what it takes
/// (as OpenSSH's sftp; every server must accept 32 KiB).
pub const SFTP_CHUNK: u32 = 32 * 1024;

/// Largest SFTP read or write, used when the server announces larger limits (limits@openssh.com):
/// a DATA reply of this size, with its headers, still fits one 256 KiB SSH packet and
/// [`MAX_SFTP_PACKET`].
pub const SFTP_MAX_CHUNK: u32 = 256 * 1024 - 1024;

/// Bytes of reads or writes kept in flight per transfer: with large chunks, fewer requests
/// ([`SFTP_REQUESTS_IN_FLIGHT`] of [`SFTP_CHUNK`] is 2 MiB).
pub const SFTP_BYTES_IN_FLIGHT: usize = 8 * 1024 * 1024;

/// Default time allowed for connecting, one reply, or one read of a stalled transfer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
