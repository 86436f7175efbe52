//! Every bound of the SFTP server in one place. Connection limits are `ferry-admission`'s, shared in
//! kind with FTP.

/// Longest SFTP packet accepted from a client (length field excluded): a 256 KiB write plus header.
pub const MAX_PACKET_LEN: usize = 256 * 1024 + 1024;
/// Most bytes returned by one READ, and advertised as `max-read-length` (limits@openssh.com).
/// Below 256 KiB so the DATA reply fits the 256 KiB packet limit of OpenSSH's client.
pub const MAX_READ_LEN: usize = 256 * 1024 - 1024;
/// Most bytes one WRITE may carry, advertised as `max-write-length`.
pub const MAX_WRITE_LEN: usize = 256 * 1024 - 1024;
/// Largest SSH channel data packet a client may send, announced when a channel opens (RFC 4254
/// §5.1). russh's default, 32 KiB, made a client split every maximal WRITE ([`MAX_WRITE_LEN`] plus
/// its header) into eight SSH packets, each with its own MAC, decryption and hand-over; 256 KiB
/// carries one in a single packet. It is what russh's transport accepts at most (a larger packet
/// ends the connection with a packet-size error) and what OpenSSH accepts; what a client may send
/// in all stays bounded by the channel window.
pub const MAX_CHANNEL_PACKET: u32 = 256 * 1024;
/// Bytes of received but not yet started requests one SFTP session may hold; more ends the
/// session. Input is read even while [`MAX_IN_FLIGHT`] requests run (see `sftp::run`), so this is
/// what bounds a client that sends faster than the server works; OpenSSH's client never gets near
/// it (64 requests of at most 256 KiB), nor does rclone's default of 64 outstanding 32 KiB writes
/// per file with 4 files at once.
pub const MAX_BUFFERED: usize = 16 * 1024 * 1024;
/// Bytes of requests in progress and of replies not yet handed to the SSH channel, per SFTP
/// session. A request starts only when its packet plus the largest reply it can produce
/// ([`MAX_READ_LEN`] for a READ) fit, so a client that pipelines READs without reading the replies
/// holds at most this much of them; with [`MAX_BUFFERED`] of received requests and the SSH
/// channel's own queue this bounds a session's memory (docs/sftp.md, "Memory"). 4 MiB keeps 64
/// OpenSSH-sized (32 KiB) or 16 maximal (255 KiB) reads in flight.
pub const IN_PROGRESS_BUDGET: usize = 4 * 1024 * 1024;
/// Open file and directory handles per SFTP session.
pub const MAX_HANDLES: usize = 256;
/// Requests of one SFTP session being processed at once; further requests wait, received, in
/// the session's buffer (up to [`MAX_BUFFERED`]). OpenSSH's client keeps up to 64 in flight.
pub const MAX_IN_FLIGHT: usize = 64;
/// Longest path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 4096;
/// Directory entries per READDIR reply.
pub const READDIR_BATCH: usize = 64;
/// Session channels (SFTP sessions) open at once on one SSH connection.
pub const MAX_SFTP_CHANNELS: usize = 4;
/// Longest extension name accepted (longer ones are unsupported anyway).
pub const MAX_EXTENSION_NAME: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maximal_write_fits_one_channel_packet() {
        // length, type, id, handle (the largest SFTP v3 allows: 256 bytes), offset, data length.
        let header = 4 + 1 + 4 + (4 + 256) + 8 + 4;
        assert!(header + MAX_WRITE_LEN <= MAX_CHANNEL_PACKET as usize);
        assert!(MAX_WRITE_LEN + header <= MAX_PACKET_LEN + 4);
    }
}
