//! A small fixed set of threads for Argon2id work.
//!
//! Each Argon2id verification allocates 19 MiB. On tokio's blocking pool every burst of logins can land
//! on new threads, and the C allocator keeps a freed 19 MiB block in each thread's arena, so memory grew
//! with the size of a login flood (about 400 MB for 25 concurrent failed logins). A fixed number of
//! threads bounds both the memory (threads × 19 MiB) and the CPU that password checks can take; further
//! requests queue in order.

use std::sync::mpsc;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread;

type Job = Box<dyn FnOnce() + Send>;

/// Threads doing Argon2id work: one per CPU, at least 2, at most 8.
fn threads() -> usize {
    thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8))
}

fn queue() -> Option<&'static Mutex<mpsc::Sender<Job>>> {
    static QUEUE: OnceLock<Option<Mutex<mpsc::Sender<Job>>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let rx = std::sync::Arc::new(Mutex::new(rx));
            for i in 0..threads() {
                let rx = std::sync::Arc::clone(&rx);
                let spawned = thread::Builder::new()
                    .name(format!("ferry-argon2-{i}"))
                    .spawn(move || loop {
                        let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    });
                if spawned.is_err() {
                    return None;
                }
            }
            Some(Mutex::new(tx))
        })
        .as_ref()
}

/// Runs `f` on the Argon2id threads and waits for its result without blocking the async runtime.
/// Falls back to tokio's blocking pool if the threads could not be started.
pub(crate) async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let Some(queue) = queue() else {
        return tokio::task::spawn_blocking(f).await.ok();
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    queue
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(job)
        .ok()?;
    rx.await.ok()
}
