//! Entry point for the SFTP packet fuzz target (`fuzz/fuzz_targets/sftp_packets.rs`), behind the
//! `fuzzing` feature; not a public API.
//!
//! Runs a byte stream through the session's own framing, the INIT exchange, the request parser and
//! the operation layer against real storage, one request at a time, and checks every reply is one
//! well-formed packet within the size a client accepts.

use std::sync::Arc;

use bytes::BytesMut;
use ferry_auth::Permissions;
use ferry_vfs::Storage;

use crate::limits::MAX_PACKET_LEN;
use crate::sftp::{init, next_packet, ops, packet_ready, Ctx};

/// Most requests run per input, so that one input stays quick.
const MAX_REQUESTS: usize = 256;

/// Feeds `input` (SFTP packets with their length fields, INIT first) to a session over `storage`
/// with `perms`. Returns the number of replies produced.
///
/// # Panics
/// When a reply is not a well-formed packet (the invariant the fuzz target checks).
pub async fn run_packets(storage: Arc<dyn Storage>, perms: Permissions, input: &[u8]) -> usize {
    let fs = ferry_vfs::UserFs::new(storage, ferry_vfs::Protocol::Sftp, "fuzz", perms);
    let ctx = Ctx::new(fs);
    let mut buf = BytesMut::from(input);
    let mut replies = 0;
    let mut initialised = false;
    while replies < MAX_REQUESTS && matches!(packet_ready(&buf), Ok(true)) {
        let Ok(Some(packet)) = next_packet(&mut buf) else {
            break;
        };
        let reply = if initialised {
            let Ok(Some(request)) = ops::Request::parse(packet, &ctx) else {
                break;
            };
            let (reply, order) = request.run(&ctx).await;
            if let Some(mut order) = order {
                order.wait().await;
                order.release();
            }
            reply
        } else {
            let Ok(reply) = init(&packet, &ctx) else {
                break;
            };
            initialised = true;
            reply
        };
        check_reply(&reply);
        replies += 1;
    }
    ctx.handles
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    replies
}

fn check_reply(reply: &[u8]) {
    let (len, rest) = reply
        .split_at_checked(4)
        .expect("reply shorter than its length field");
    let len = u32::from_be_bytes(len.try_into().expect("four bytes")) as usize;
    assert_eq!(len, rest.len(), "reply length field disagrees with the reply");
    assert!((1..=MAX_PACKET_LEN).contains(&len), "reply of {len} bytes");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(body: &[u8]) -> Vec<u8> {
        let mut p = u32::try_from(body.len()).expect("len").to_be_bytes().to_vec();
        p.extend_from_slice(body);
        p
    }

    fn string(s: &[u8]) -> Vec<u8> {
        let mut v = u32::try_from(s.len()).expect("len").to_be_bytes().to_vec();
        v.extend_from_slice(s);
        v
    }

    /// A valid session (INIT, OPEN, WRITE, READ at offsets no file reaches, CLOSE, statvfs of a
    /// missing path) and every truncation and byte flip of it run without a panic.
    #[tokio::test(flavor = "current_thread")]
    async fn a_session_and_its_mutations_never_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage: Arc<dyn Storage> = Arc::new(ferry_vfs::LocalFs::open(dir.path()).expect("fs"));
        let mut stream = packet(&[1, 0, 0, 0, 3]);
        let mut open = vec![3, 0, 0, 0, 1];
        open.extend(string(b"/f"));
        open.extend([0, 0, 0, 0x1a, 0, 0, 0, 0]); // WRITE|CREAT|TRUNC, no attributes
        stream.extend(packet(&open));
        // The first handle is named 1, as four bytes.
        let mut write = vec![6, 0, 0, 0, 2];
        write.extend(string(&[0, 0, 0, 1]));
        write.extend(0u64.to_be_bytes());
        write.extend(string(b"hello"));
        stream.extend(packet(&write));
        let mut read = vec![5, 0, 0, 0, 3];
        read.extend(string(&[0, 0, 0, 1]));
        read.extend(u64::MAX.to_be_bytes());
        read.extend(100u32.to_be_bytes());
        stream.extend(packet(&read));
        let mut close = vec![4, 0, 0, 0, 4];
        close.extend(string(&[0, 0, 0, 1]));
        stream.extend(packet(&close));
        let mut statvfs = vec![200, 0, 0, 0, 5];
        statvfs.extend(string(b"statvfs@openssh.com"));
        statvfs.extend(string(b"/missing"));
        stream.extend(packet(&statvfs));
        let all = Permissions::all();
        assert_eq!(run_packets(Arc::clone(&storage), all, &stream).await, 6);
        for cut in 0..stream.len() {
            run_packets(Arc::clone(&storage), all, &stream[..cut]).await;
        }
        for i in 0..stream.len() {
            let mut flipped = stream.clone();
            flipped[i] ^= 0xa5;
            run_packets(Arc::clone(&storage), all, &flipped).await;
        }
    }
}
