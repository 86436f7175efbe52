//! Open file and directory handles of one SFTP session, and the ordering rule for requests on the
//! same file: reads and writes of ranges that do not overlap run at once; overlapping ones, and
//! every other request on the handle (CLOSE, FSTAT, FSETSTAT, fsync), wait for the requests
//! received before them — as if the client had waited for each reply (draft-02 §6).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use ferry_vfs::{DirStream, PositionalFile};
use tokio::sync::{oneshot, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use crate::limits::MAX_HANDLES;

/// An open handle.
#[derive(Debug)]
pub(crate) enum Handle {
    File(FileHandle),
    Dir(tokio::sync::Mutex<DirHandle>),
}

/// An open file.
#[derive(Debug)]
pub(crate) struct FileHandle {
    pub(crate) file: Box<dyn PositionalFile>,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    order: Arc<RwLock<()>>,
    /// Ranges of reads and writes under way: (start, end, is_write).
    ranges: Mutex<Vec<(u64, u64, bool)>>,
    /// Fires when the reply to the latest request on this handle has been queued.
    last_reply: Mutex<Option<oneshot::Receiver<()>>>,
}

/// Keeps the replies to requests on one file handle in request order: the request waits for
/// `previous` before queuing its reply, then fires `done`. (The requests themselves still run
/// concurrently. paramiko's pipelined writes, for one, hang if their acknowledgements come back
/// out of order, and OpenSSH's server never reorders them.)
#[derive(Debug)]
pub(crate) struct ReplyOrder {
    previous: Option<oneshot::Receiver<()>>,
    done: oneshot::Sender<()>,
}

impl ReplyOrder {
    /// Waits until the replies to earlier requests on the handle are queued.
    pub(crate) async fn wait(&mut self) {
        if let Some(previous) = self.previous.take() {
            // An error means the earlier request was dropped: nothing left to wait for.
            let _ = previous.await;
        }
    }

    /// Lets the next request's reply go.
    pub(crate) fn release(self) {
        let _ = self.done.send(());
    }
}

/// A directory being listed.
#[derive(Debug)]
pub(crate) struct DirHandle {
    /// `None` once the listing is complete.
    pub(crate) stream: Option<Box<dyn DirStream>>,
}

/// Permission to run a request on a file handle, held until the request finishes (the guards
/// are only held for their `Drop`).
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) enum Turn {
    Shared(OwnedRwLockReadGuard<()>),
    Exclusive(OwnedRwLockWriteGuard<()>),
}

/// A turn that is queued but may still have to wait.
pub(crate) enum Waiting {
    Ready(Turn),
    Shared(Pin<Box<dyn Future<Output = OwnedRwLockReadGuard<()>> + Send>>),
    Exclusive(Pin<Box<dyn Future<Output = OwnedRwLockWriteGuard<()>> + Send>>),
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Waiting::Ready(_) => "Waiting::Ready",
            Waiting::Shared(_) => "Waiting::Shared",
            Waiting::Exclusive(_) => "Waiting::Exclusive",
        })
    }
}

impl Waiting {
    /// Waits for the turn.
    pub(crate) async fn turn(self) -> Turn {
        match self {
            Waiting::Ready(t) => t,
            Waiting::Shared(f) => Turn::Shared(f.await),
            Waiting::Exclusive(f) => Turn::Exclusive(f.await),
        }
    }
}

/// Polls `fut` once so that it takes its place in the lock's FIFO queue now, in the order the
/// requests arrived, rather than when the spawned request task first runs.
fn enqueue<T, F>(mut fut: Pin<Box<F>>, wrap: fn(T) -> Turn, pending: fn(Pin<Box<F>>) -> Waiting) -> Waiting
where
    F: Future<Output = T> + Send + ?Sized,
{
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(guard) => Waiting::Ready(wrap(guard)),
        Poll::Pending => pending(fut),
    }
}

impl FileHandle {
    pub(crate) fn new(file: Box<dyn PositionalFile>, readable: bool, writable: bool) -> Self {
        FileHandle {
            file,
            readable,
            writable,
            order: Arc::new(RwLock::new(())),
            ranges: Mutex::new(Vec::new()),
            last_reply: Mutex::new(None),
        }
    }

    /// Takes the next place in the reply order (call in request order).
    pub(crate) fn reply_order(&self) -> ReplyOrder {
        let (done, next) = oneshot::channel();
        let mut last = self.last_reply.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = last.replace(next);
        ReplyOrder { previous, done }
    }

    /// Queues a whole-handle request (CLOSE, FSTAT, FSETSTAT, fsync).
    pub(crate) fn exclusive(&self) -> Waiting {
        let fut: Pin<Box<dyn Future<Output = OwnedRwLockWriteGuard<()>> + Send>> =
            Box::pin(Arc::clone(&self.order).write_owned());
        enqueue(fut, Turn::Exclusive, Waiting::Exclusive)
    }

    /// Queues a read or write of `len` bytes at `offset`; returns the range token to pass to
    /// [`FileHandle::done`] when the request finishes.
    pub(crate) fn io(&self, offset: u64, len: u64, write: bool) -> (Waiting, (u64, u64, bool)) {
        let range = (offset, offset.saturating_add(len), write);
        let mut ranges = self.ranges.lock().unwrap_or_else(PoisonError::into_inner);
        let conflict = ranges
            .iter()
            .any(|&(s, e, w)| (w || write) && s < range.1 && range.0 < e);
        ranges.push(range);
        drop(ranges);
        let waiting = if conflict {
            self.exclusive()
        } else {
            let fut: Pin<Box<dyn Future<Output = OwnedRwLockReadGuard<()>> + Send>> =
                Box::pin(Arc::clone(&self.order).read_owned());
            enqueue(fut, Turn::Shared, Waiting::Shared)
        };
        (waiting, range)
    }

    /// Forgets a finished read or write.
    pub(crate) fn done(&self, range: (u64, u64, bool)) {
        let mut ranges = self.ranges.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = ranges.iter().position(|&r| r == range) {
            ranges.swap_remove(i);
        }
    }
}

/// The handles of one session, named by 4-byte strings.
#[derive(Debug, Default)]
pub(crate) struct Table {
    next: u32,
    open: HashMap<u32, Arc<Handle>>,
}

impl Table {
    /// Stores `handle` and returns its name, or `None` when [`MAX_HANDLES`] are open.
    pub(crate) fn insert(&mut self, handle: Handle) -> Option<[u8; 4]> {
        if self.open.len() >= MAX_HANDLES {
            return None;
        }
        loop {
            self.next = self.next.wrapping_add(1);
            if !self.open.contains_key(&self.next) {
                break;
            }
        }
        self.open.insert(self.next, Arc::new(handle));
        Some(self.next.to_be_bytes())
    }

    pub(crate) fn get(&self, name: &[u8]) -> Option<Arc<Handle>> {
        self.open.get(&Self::id(name)?).cloned()
    }

    pub(crate) fn remove(&mut self, name: &[u8]) -> Option<Arc<Handle>> {
        self.open.remove(&Self::id(name)?)
    }

    /// Whether no handle is open.
    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Drops every handle (uploads not closed are discarded when their last user finishes).
    pub(crate) fn clear(&mut self) {
        self.open.clear();
    }

    fn id(name: &[u8]) -> Option<u32> {
        let bytes: [u8; 4] = name.try_into().ok()?;
        Some(u32::from_be_bytes(bytes))
    }
}
