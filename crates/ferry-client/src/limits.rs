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

/// SFTP read and write requests kept in flight per transfer (as OpenSSH's sftp).
pub const SFTP_REQUESTS_IN_FLIGHT: usize = 64;

/// Bytes asked for by one SFTP read or sent by one write (as OpenSSH's sftp).
pub const SFTP_CHUNK: u32 = 32 * 1024;

/// Default time allowed for connecting, one reply, or one read of a stalled transfer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
