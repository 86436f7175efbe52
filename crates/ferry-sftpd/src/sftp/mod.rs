//! The SFTP subsystem of one SSH channel: frames packets, runs requests concurrently (up to
//! [`MAX_IN_FLIGHT`]) and sends each reply when it is ready, tagged with its request id.
//!
//! Memory: a request starts only once its packet and the largest reply it can produce fit the
//! session's [`IN_PROGRESS_BUDGET`]; that share is given back when the reply has been handed to
//! the SSH channel (which itself waits for the client's window). A client that sends READs and
//! never reads the replies therefore holds at most that budget of replies, not one per request;
//! further requests wait, received, in the session's buffer (up to [`MAX_BUFFERED`]).

mod checkfile;
mod handles;
pub(crate) mod ops;
mod stream;
pub(crate) mod wire;

use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Buf, Bytes, BytesMut};
use ferry_vfs::UserFs;
use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelWriteHalf};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info};

use crate::limits::{IN_PROGRESS_BUDGET, MAX_BUFFERED, MAX_IN_FLIGHT, MAX_PACKET_LEN};
use wire::{kind, Reader, Writer};

/// The SFTP protocol version spoken.
const VERSION: u32 = 3;
/// Replies smaller than this are gathered with the ones queued behind them into one channel write.
const COALESCE_LIMIT: usize = 128 * 1024;

/// What every request of a session needs.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// The user's storage, jailed at their home, through the policy layer.
    pub(crate) fs: UserFs,
    pub(crate) handles: Mutex<handles::Table>,
    /// Reports file operations and transfers.
    pub(crate) tap: Arc<ferry_observe::SessionTap>,
    /// Longest range `check-file` hashes on demand; 0 turns the extension off.
    pub(crate) hash_max_size: u64,
}

impl Ctx {
    pub(crate) fn new(fs: UserFs) -> Self {
        Ctx {
            fs,
            handles: Mutex::default(),
            tap: ferry_observe::SessionTap::none(ferry_observe::Protocol::Sftp, ([0, 0, 0, 0], 0).into()),
            hash_max_size: ferry_proto::hash::DEFAULT_MAX_SIZE,
        }
    }

    /// The same context, reporting to `tap`.
    pub(crate) fn with_tap(mut self, tap: Arc<ferry_observe::SessionTap>) -> Self {
        self.tap = tap;
        self
    }

    /// Whether a file or directory is open (a transfer may be under way).
    pub(crate) fn busy(&self) -> bool {
        !self.table().is_empty()
    }

    /// Sets the longest range `check-file` hashes (0: off).
    pub(crate) fn with_hash_max_size(mut self, max: u64) -> Self {
        self.hash_max_size = max;
        self
    }

    fn table(&self) -> std::sync::MutexGuard<'_, handles::Table> {
        self.handles.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum End {
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
    let (reply_tx, reply_rx) = mpsc::channel::<Reply>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(write_replies(tx, reply_rx));
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let budget = Arc::new(Semaphore::new(IN_PROGRESS_BUDGET));
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut initialised = false;
    // The channel is drained continuously, also while every request slot is taken: russh delivers
    // incoming data from its connection task and blocks there when the channel is full, which
    // would also stop it from processing the client's window adjustments that our replies may be
    // waiting for. Unparsed input is bounded by MAX_BUFFERED instead.
    let mut eof = false;
    // The channel is gone (closed, or the connection ended): replies can no longer be sent.
    let mut closed = false;
    let result: Result<(), End> = async {
        loop {
            let ready = packet_ready(&buf)?;
            // After EOF the requests already received still run; once the channel is gone no
            // reply can reach anyone, and the requests still waiting are dropped.
            if closed || (eof && !ready) {
                return Ok(());
            }
            if ready && !initialised {
                let packet = next_packet(&mut buf)?.ok_or(End::Sequence)?;
                let reply = init(&packet, &ctx)?;
                initialised = true;
                if reply_tx.send((reply, None)).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            tokio::select! {
                biased;
                permit = admit(&permits, &budget, &buf), if ready => {
                    let Some((permit, share)) = permit else { return Ok(()) };
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
                                let _ = reply_tx.send((reply, Some(share))).await;
                                order.release();
                            }
                            None => {
                                let _ = reply_tx.send((reply, Some(share))).await;
                            }
                        }
                        drop(permit);
                    });
                }
                msg = rx.wait(), if !closed => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        if buf.len() + data.len() > MAX_BUFFERED {
                            return Err(End::Flood);
                        }
                        buf.extend_from_slice(&data);
                    }
                    Some(ChannelMsg::Eof) => eof = true,
                    Some(ChannelMsg::Close) | None => (eof, closed) = (true, true),
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
    // discarded. Once the channel is gone the writer may wait forever for window the client will
    // never grant, and the requests behind it for the writer: stop it, so that every buffer of the
    // session is freed when the session ends.
    let drained = permits.acquire_many(MAX_IN_FLIGHT as u32);
    if closed {
        writer.abort();
        let _ = drained.await;
    } else {
        tokio::select! {
            _ = drained => {}
            () = channel_gone(&mut rx) => {
                writer.abort();
                let _ = permits.acquire_many(MAX_IN_FLIGHT as u32).await;
            }
        }
    }
    ctx.table().clear();
    drop(reply_tx);
    let _ = writer.await;
}

/// Returns once the channel is closed or its connection has ended (other messages are dropped).
async fn channel_gone(rx: &mut russh::ChannelReadHalf) {
    loop {
        match rx.wait().await {
            Some(ChannelMsg::Close) | None => return,
            Some(_) => {}
        }
    }
}

/// A reply and its share of the in-progress budget, given back once the reply is sent.
type Reply = (Bytes, Option<OwnedSemaphorePermit>);

/// Waits until the complete packet at the front of `buf` may start: a request slot, and its
/// packet plus its largest reply in the budget. `None` once the semaphores are closed.
async fn admit(
    permits: &Arc<Semaphore>,
    budget: &Arc<Semaphore>,
    buf: &[u8],
) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
    let packet_len = match buf.get(..4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]) as usize,
        _ => 0,
    };
    let cost = 4 + packet_len.min(MAX_PACKET_LEN) + ops::reply_bound(buf.get(4..).unwrap_or_default());
    let cost = u32::try_from(cost.min(IN_PROGRESS_BUDGET)).unwrap_or(u32::MAX);
    let permit = Arc::clone(permits).acquire_owned().await.ok()?;
    let share = Arc::clone(budget).acquire_many_owned(cost).await.ok()?;
    Some((permit, share))
}

/// Whether a complete packet is at the front of `buf` (an impossible length is an error).
pub(crate) fn packet_ready(buf: &[u8]) -> Result<bool, End> {
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
pub(crate) fn next_packet(buf: &mut BytesMut) -> Result<Option<Bytes>, End> {
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

/// Answers INIT with VERSION and the extensions the user's storage supports.
pub(crate) fn init(packet: &[u8], ctx: &Ctx) -> Result<Bytes, End> {
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
    for (name, data) in ops::extensions(ctx.fs.capabilities()) {
        w.string(name.as_bytes()).string(data.as_bytes());
    }
    if ctx.hash_max_size > 0 {
        for (name, data) in checkfile::EXTENSIONS {
            w.string(name.as_bytes()).string(data.as_bytes());
        }
    }
    Ok(w.finish())
}

/// Sends replies in the order they complete; small ones queued together go in one channel write.
///
/// Each reply's budget share is held until its bytes have been handed to the channel.
async fn write_replies(tx: ChannelWriteHalf<Msg>, mut replies: mpsc::Receiver<Reply>) {
    let mut shares = Vec::new();
    while let Some((first, share)) = replies.recv().await {
        shares.extend(share);
        let out = if first.len() >= COALESCE_LIMIT {
            first
        } else {
            let mut batch = BytesMut::from(first);
            while batch.len() < COALESCE_LIMIT {
                match replies.try_recv() {
                    Ok((next, share)) => {
                        batch.extend_from_slice(&next);
                        shares.extend(share);
                    }
                    Err(_) => break,
                }
            }
            batch.freeze()
        };
        if tx.data_bytes(out).await.is_err() {
            return;
        }
        shares.clear();
    }
    // Like sshd when sftp-server exits: scp treats a channel closed without an exit status as a
    // failure.
    let _ = tx.exit_status(0).await;
    let _ = tx.eof().await;
    let _ = tx.close().await;
}
