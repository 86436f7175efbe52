//! Every bound the protocol core enforces, in one place (vsftpd `defs.h` style).
//!
//! Each limit has a defined reply when exceeded; see the item docs.

/// Longest control line accepted, in bytes, excluding the CRLF. Longer lines are discarded whole and
/// answered `500`; the session continues.
pub const MAX_LINE: usize = 4096;

/// Longest virtual path, in bytes, after normalisation. Longer paths are answered `553`/`550`.
pub use ferry_vfs_types::path::MAX_PATH;

/// Longest single path component (file name), in bytes, matching common filesystems.
pub use ferry_vfs_types::path::MAX_NAME;

/// Longest user name accepted by USER; longer ones are answered `501`.
pub const MAX_USER: usize = 256;

/// Commands the session holds while a transfer or storage request is outstanding. A client that pipelines
/// more than this is answered `421` and disconnected.
pub const MAX_PENDING_COMMANDS: usize = 64;

/// Failed PASS attempts allowed on one connection before it is closed with `421`.
pub const MAX_LOGIN_ATTEMPTS: u32 = 3;

/// Entries STAT shows for a directory over the control channel; LIST has no such limit (it streams).
pub const MAX_STAT_ENTRIES: usize = 200;
