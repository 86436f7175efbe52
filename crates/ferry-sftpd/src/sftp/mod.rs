//! The SFTP subsystem of one SSH channel: frames packets, runs requests concurrently (up to
//! [`MAX_IN_FLIGHT`]) and sends each reply when it is ready, tagged with its request id.

mod handles;
mod ops;
pub(crate) mod path;
pub(crate) mod wire;

use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Buf, Bytes, BytesMut};
use ferry_auth::Permissions;
use ferry_vfs::Storage;
use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelWriteHalf};
use tokio::sync::{mpsc, Semaphore};
use tracing::{debug, info};

use crate::limits::{MAX_BUFFERED, MAX_IN_FLIGHT, MAX_PACKET_LEN};
use wire::{kind, Reader, Writer};

/// The SFTP protocol version spoken.
const VERSION: u32 = 3;
/// Replies smaller than this are gathered with the ones queued behind them into one channel write.
const COALESCE_LIMIT: usize = 128 * 1024;

/// What every request of a session needs.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// The user's storage, jailed at their home.
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) perms: Permissions,
    pub(crate) handles: Mutex<handles::Table>,
}

impl Ctx {
    pub(crate) fn new(storage: Arc<dyn Storage>, perms: Permissions) -> Self {
        Ctx {
            storage,
            perms,
            handles: Mutex::default(),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, handles::Table> {
        self.handles.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
enum End {
    #[error("packet length {0} out of bounds")]
    PacketLength(usize),
    #[error("malformed packet")]
    Malformed(#[from] wire::Malformed),
    #[error("request before INIT, or a second INIT")]
    Sequence,
    #[error("client speaks SFTP version {0}; version 3 or later is needed")]
    Version(u32),
    #[error("more than {MAX_BUFFERED} bytes of requests queued")]
    Flood,
}

/// Serves SFTP on `channel` until the client closes it.
pub(crate) async fn run(channel: Channel<Msg>, ctx: Arc<Ctx>) {
    let (mut rx, tx) = channel.split();
    let (reply_tx, reply_rx) = mpsc::channel::<Bytes>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(write_replies(tx, reply_rx));
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut initialised = false;
    // The channel is drained continuously, also while every request slot is taken: russh delivers
    // incoming data from its connection task and blocks there when the channel is full, which
    // would also stop it from processing the client's window adjustments that our replies may be
    // waiting for. Unparsed input is bounded by MAX_BUFFERED instead.
    let mut eof = false;
    let result: Result<(), End> = async {
        loop {
            let ready = packet_ready(&buf)?;
            if eof && !ready {
                return Ok(());
            }
            if ready && !initialised {
                let packet = next_packet(&mut buf)?.ok_or(End::Sequence)?;
                let reply = init(&packet)?;
                initialised = true;
                if reply_tx.send(reply).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            tokio::select! {
                biased;
                permit = Arc::clone(&permits).acquire_owned(), if ready => {
                    let Ok(permit) = permit else { return Ok(()) };
                    let packet = next_packet(&mut buf)?.ok_or(End::Sequence)?;
                    let Some(request) = ops::Request::parse(packet, &ctx)? else {
                        return Err(End::Sequence);
                    };
                    let (ctx, reply_tx) = (Arc::clone(&ctx), reply_tx.clone());
                    tokio::spawn(async move {
                        let (reply, order) = request.run(&ctx).await;
                        match order {
                            Some(mut order) => {
                                order.wait().await;
                                let _ = reply_tx.send(reply).await;
                                order.release();
                            }
                            None => {
                                let _ = reply_tx.send(reply).await;
                            }
                        }
                        drop(permit);
                    });
                }
                msg = rx.wait(), if !eof => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        if buf.len() + data.len() > MAX_BUFFERED {
                            return Err(End::Flood);
                        }
                        buf.extend_from_slice(&data);
                    }
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => eof = true,
                    Some(_) => {}
                },
            }
        }
    }
    .await;
    match result {
        Ok(()) => debug!("SFTP session ended"),
        Err(e) => info!(error = %e, "SFTP session closed: protocol error"),
    }
    // Let running requests finish, then drop the handles: uploads that were never closed are
    // discarded.
    let _ = permits.acquire_many(MAX_IN_FLIGHT as u32).await;
    ctx.table().clear();
    drop(reply_tx);
    let _ = writer.await;
}

/// Whether a complete packet is at the front of `buf` (an impossible length is an error).
fn packet_ready(buf: &[u8]) -> Result<bool, End> {
    if buf.len() < 4 {
        return Ok(false);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(1..=MAX_PACKET_LEN).contains(&len) {
        return Err(End::PacketLength(len));
    }
    Ok(buf.len() >= 4 + len)
}

/// Takes one complete packet (without its length field) off the front of `buf`.
fn next_packet(buf: &mut BytesMut) -> Result<Option<Bytes>, End> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(1..=MAX_PACKET_LEN).contains(&len) {
        return Err(End::PacketLength(len));
    }
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

/// Answers INIT with VERSION and the extensions we support.
fn init(packet: &[u8]) -> Result<Bytes, End> {
    let mut r = Reader::new(packet);
    if r.u8()? != kind::INIT {
        return Err(End::Sequence);
    }
    let version = r.u32()?;
    if version < VERSION {
        return Err(End::Version(version));
    }
    let mut w = Writer::new(kind::VERSION, None, 256);
    w.u32(VERSION);
    for (name, data) in ops::EXTENSIONS {
        w.string(name.as_bytes()).string(data.as_bytes());
    }
    Ok(w.finish())
}

/// Sends replies in the order they complete; small ones queued together go in one channel write.
async fn write_replies(tx: ChannelWriteHalf<Msg>, mut replies: mpsc::Receiver<Bytes>) {
    while let Some(first) = replies.recv().await {
        let out = if first.len() >= COALESCE_LIMIT {
            first
        } else {
            let mut batch = BytesMut::from(first);
            while batch.len() < COALESCE_LIMIT {
                match replies.try_recv() {
                    Ok(next) => batch.extend_from_slice(&next),
                    Err(_) => break,
                }
            }
            batch.freeze()
        };
        if tx.data_bytes(out).await.is_err() {
            return;
        }
    }
    // Like sshd when sftp-server exits: scp treats a channel closed without an exit status as a
    // failure.
    let _ = tx.exit_status(0).await;
    let _ = tx.eof().await;
    let _ = tx.close().await;
}
