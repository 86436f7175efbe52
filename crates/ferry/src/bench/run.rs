//! The sessions of a bench run: a warm-up login, the sessions opened (and, for `get`, their files
//! uploaded) before the clock starts, the timed operations, then clean-up.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ferry_client::remote::{ConnectOptions, Credentials};
use ferry_client::url::RemoteUrl;
use ferry_client::{Error, Remote};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::measure::cpu_time;
use super::Op;

/// Sessions being opened at once while setting up (a server limits connections not yet logged in).
const OPENING_AT_ONCE: usize = 64;
/// Distinct error messages kept; further ones are only counted.
const ERROR_KINDS: usize = 20;

/// A checked bench run.
#[derive(Debug)]
pub struct Plan {
    pub url: RemoteUrl,
    pub creds: Credentials,
    pub connect: ConnectOptions,
    pub op: Op,
    pub sessions: u32,
    /// Operations in all (idle: the sessions).
    pub count: u64,
    pub size: u64,
    pub hold: Duration,
    /// No new operation starts after this much time.
    pub max: Duration,
    pub keep: bool,
    pub server_pid: Option<u32>,
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Operations requested.
    pub requested: u64,
    /// Counts and timings of the timed phase.
    pub tally: Tally,
    /// Sessions that could not be opened before the clock started (get, put).
    pub setup_errors: u64,
    /// Wall time of the timed phase.
    pub wall: Duration,
    /// This process's CPU time in the timed phase.
    pub client_cpu: Duration,
    /// The server's CPU time in the timed phase.
    pub server_cpu: Option<Duration>,
    /// Whether operations were left undone because `--max-secs` passed.
    pub stopped_early: bool,
    /// idle: sessions that still answered after the hold, and the server's CPU time while holding.
    pub held: Option<(u64, Option<Duration>)>,
}

/// Counts of one session, then of all.
#[derive(Debug, Default)]
pub struct Tally {
    pub done: u64,
    pub bytes: u64,
    pub latencies: Vec<Duration>,
    pub errors: Errors,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.done += other.done;
        self.bytes += other.bytes;
        self.latencies.extend(other.latencies);
        self.errors.merge(other.errors);
    }
}

/// Failures, by message.
#[derive(Debug, Default)]
pub struct Errors {
    pub total: u64,
    pub by_message: BTreeMap<String, u64>,
}

impl Errors {
    fn add(&mut self, e: &Error) {
        self.add_n(e.to_string(), 1);
    }

    fn add_n(&mut self, message: String, n: u64) {
        self.total += n;
        let key = if self.by_message.len() < ERROR_KINDS || self.by_message.contains_key(&message) {
            message
        } else {
            "(other errors)".to_owned()
        };
        *self.by_message.entry(key).or_default() += n;
    }

    fn merge(&mut self, other: Errors) {
        for (message, n) in other.by_message {
            self.add_n(message, n);
        }
    }
}

/// What every session task shares.
struct Shared {
    plan: Plan,
    /// The next operation's number.
    next: AtomicU64,
    /// The end of `--max-secs`, counted from the start of the timed phase.
    stop_at: OnceLock<Instant>,
    /// Makes file names unique to this run.
    tag: String,
}

impl Shared {
    /// The next operation's number, or `None` when all are taken or the time is up.
    fn take(&self) -> Option<u64> {
        if self.stop_at.get().is_some_and(|&t| Instant::now() >= t) {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.plan.count).then_some(i)
    }

    fn dir(&self) -> String {
        let p = &self.plan.url.path;
        if p.ends_with('/') {
            p.clone()
        } else {
            format!("{p}/")
        }
    }

    fn source(&self, session: u32) -> String {
        format!("{}ferry-bench-{}-src-{session}", self.dir(), self.tag)
    }

    fn target(&self, op: u64) -> String {
        format!("{}ferry-bench-{}-{op}", self.dir(), self.tag)
    }

    /// What the names of this run's files look like, for error messages.
    fn any_file(&self) -> String {
        format!("{}ferry-bench-{}-*", self.dir(), self.tag)
    }

    async fn connect(&self) -> Result<Remote, Error> {
        Remote::connect(&self.plan.url, &self.plan.creds, &self.plan.connect).await
    }
}

/// Runs the plan.
///
/// # Errors
///
/// The warm-up login failed (wrong password, untrusted server, nothing listening): nothing is measured.
pub async fn run(plan: Plan) -> Result<Outcome, Error> {
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        stop_at: OnceLock::new(),
        tag: format!("{}-{}", std::process::id(), unique()),
        plan,
    });
    // One session first, alone: it proves the credentials and records a certificate or host key
    // trusted on first use before hundreds of sessions would each find it unknown.
    shared.connect().await?.close().await;
    match shared.plan.op {
        Op::Login => logins(shared).await,
        Op::Get | Op::Put => transfers(shared).await,
        Op::Idle => idle(shared).await,
    }
}

/// A number that differs between runs started in the same second by the same process id.
fn unique() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64 % 1_000_000_007)
}

/// CPU times at the start of a timed phase.
struct Clock {
    wall: Instant,
    client: Duration,
    server: Option<Duration>,
    pid: Option<u32>,
}

impl Clock {
    /// Starts the timed phase: also the time from which `--max-secs` counts.
    fn timed(shared: &Shared) -> Clock {
        let _ = shared.stop_at.set(Instant::now() + shared.plan.max);
        Clock::start(shared.plan.server_pid)
    }

    fn start(pid: Option<u32>) -> Clock {
        Clock {
            client: cpu_time(None, false).unwrap_or_default(),
            server: pid.and_then(|p| cpu_time(Some(p), true).ok()),
            wall: Instant::now(),
            pid,
        }
    }

    /// Fills in wall and CPU times since `start`.
    fn stop(&self, out: &mut Outcome) {
        out.wall = self.wall.elapsed();
        out.client_cpu = cpu_time(None, false)
            .unwrap_or_default()
            .saturating_sub(self.client);
        out.server_cpu = self.server_cpu();
    }

    fn server_cpu(&self) -> Option<Duration> {
        let before = self.server?;
        let after = cpu_time(Some(self.pid?), true).ok()?;
        Some(after.saturating_sub(before))
    }
}

/// `--op login`: each task connects, logs in and out, again and again.
async fn logins(shared: Arc<Shared>) -> Result<Outcome, Error> {
    let clock = Clock::timed(&shared);
    let mut tasks = JoinSet::new();
    for _ in 0..shared.plan.sessions {
        let shared = Arc::clone(&shared);
        tasks.spawn(async move {
            let mut tally = Tally::default();
            while shared.take().is_some() {
                let t0 = Instant::now();
                match shared.connect().await {
                    Ok(remote) => {
                        remote.close().await;
                        tally.done += 1;
                        tally.latencies.push(t0.elapsed());
                    }
                    Err(e) => tally.errors.add(&e),
                }
            }
            tally
        });
    }
    let mut out = Outcome {
        requested: shared.plan.count,
        ..Outcome::default()
    };
    while let Some(joined) = tasks.join_next().await {
        out.tally.merge(joined.unwrap_or_default());
    }
    clock.stop(&mut out);
    out.stopped_early = out.tally.done + out.tally.errors.total < out.requested;
    Ok(out)
}

/// One session of `get` or `put`, with the files it made.
struct Worker {
    id: u32,
    remote: Option<Remote>,
    made: Vec<String>,
}

/// `--op get` and `--op put`: sessions opened (and sources uploaded) first; then each session takes
/// operations until all are done; then the files are removed.
async fn transfers(shared: Arc<Shared>) -> Result<Outcome, Error> {
    let (workers, mut setup) = open_sessions(&shared).await;
    let mut ready = Vec::new();
    for mut w in workers {
        if shared.plan.op == Op::Get {
            if let Err(e) = upload_source(&shared, &mut w).await {
                setup.add(&e);
                continue;
            }
        }
        ready.push(w);
    }
    if ready.is_empty() {
        return Err(first_error(setup, "no session could be set up"));
    }
    let mut out = Outcome {
        requested: shared.plan.count,
        setup_errors: setup.total,
        ..Outcome::default()
    };
    let clock = Clock::timed(&shared);
    let mut tasks = JoinSet::new();
    for w in ready {
        let shared = Arc::clone(&shared);
        tasks.spawn(async move { transfer_loop(&shared, w).await });
    }
    let mut finished = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((tally, w)) = joined {
            out.tally.merge(tally);
            finished.push(w);
        }
    }
    clock.stop(&mut out);
    out.stopped_early = out.tally.done + out.tally.errors.total < out.requested;
    clean_up(&shared, finished).await;
    Ok(out)
}

/// Opens `--sessions` sessions, [`OPENING_AT_ONCE`] at a time.
async fn open_sessions(shared: &Arc<Shared>) -> (Vec<Worker>, Errors) {
    let gate = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let mut tasks = JoinSet::new();
    for id in 0..shared.plan.sessions {
        let (shared, gate) = (Arc::clone(shared), Arc::clone(&gate));
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let t0 = Instant::now();
            (id, shared.connect().await, t0.elapsed())
        });
    }
    let (mut workers, mut errors) = (Vec::new(), Errors::default());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((id, Ok(remote), _)) => workers.push(Worker {
                id,
                remote: Some(remote),
                made: Vec::new(),
            }),
            Ok((_, Err(e), _)) => errors.add(&e),
            Err(e) => errors.add_n(format!("session task failed: {e}"), 1),
        }
    }
    workers.sort_by_key(|w| w.id);
    (workers, errors)
}

async fn upload_source(shared: &Shared, w: &mut Worker) -> Result<(), Error> {
    let name = shared.source(w.id);
    let remote = w
        .remote
        .as_mut()
        .ok_or_else(|| Error::Usage("no session".into()))?;
    put(remote, &name, shared.plan.size).await?;
    w.made.push(name);
    Ok(())
}

fn first_error(errors: Errors, fallback: &str) -> Error {
    match errors.by_message.into_keys().next() {
        Some(message) => Error::Usage(format!("{fallback}: {message}")),
        None => Error::Usage(fallback.to_owned()),
    }
}

/// Takes operations until none are left. After a failure the session is dropped and a new one opened
/// (a failed transfer may leave a connection in any state); when that fails too, the session stops.
async fn transfer_loop(shared: &Shared, mut w: Worker) -> (Tally, Worker) {
    let mut tally = Tally::default();
    while let Some(i) = shared.take() {
        let remote = match w.remote.as_mut() {
            Some(r) => r,
            None => match shared.connect().await {
                Ok(r) => w.remote.insert(r),
                Err(e) => {
                    tally.errors.add(&e);
                    break;
                }
            },
        };
        let name = match shared.plan.op {
            Op::Put => shared.target(i),
            _ => shared.source(w.id),
        };
        let t0 = Instant::now();
        let result = match shared.plan.op {
            Op::Put => put(remote, &name, shared.plan.size).await,
            _ => get(remote, &name, shared.plan.size).await,
        };
        match result {
            Ok(n) => {
                tally.latencies.push(t0.elapsed());
                tally.done += 1;
                tally.bytes += n;
                if shared.plan.op == Op::Put {
                    w.made.push(name);
                }
            }
            Err(e) => {
                // One line per cause, not per file: the file's own name is replaced by a pattern.
                let message = e.to_string().replace(&name, &shared.any_file());
                tally.errors.add_n(message, 1);
                w.remote = None;
            }
        }
    }
    (tally, w)
}

/// Uploads `size` bytes (a repeated pattern, generated as sent) to `name`.
async fn put(remote: &mut Remote, name: &str, size: u64) -> Result<u64, Error> {
    let mut input = tokio::io::repeat(b'f').take(size);
    let n = remote.put(name, 0, &mut input, &mut |_| {}).await?;
    expect_size(name, n, size)
}

/// Downloads `name` (expected to be `size` bytes), discarding the bytes.
async fn get(remote: &mut Remote, name: &str, size: u64) -> Result<u64, Error> {
    let mut sink = tokio::io::sink();
    let n = remote.get(name, 0, &mut sink, &mut |_| {}).await?;
    expect_size(name, n, size)
}

fn expect_size(name: &str, n: u64, size: u64) -> Result<u64, Error> {
    if n == size {
        Ok(n)
    } else {
        Err(Error::Protocol(format!(
            "{name}: {n} bytes transferred, {size} expected"
        )))
    }
}

/// Removes the files made (unless `--keep`) and closes the sessions.
async fn clean_up(shared: &Arc<Shared>, workers: Vec<Worker>) {
    let mut tasks = JoinSet::new();
    for w in workers {
        let shared = Arc::clone(shared);
        tasks.spawn(async move {
            let mut failed = 0u64;
            let mut remote = match w.remote {
                Some(r) => Some(r),
                None => shared.connect().await.ok(),
            };
            if !shared.plan.keep {
                for name in &w.made {
                    let removed = match remote.as_mut() {
                        Some(r) => r.remove(name).await.is_ok(),
                        None => false,
                    };
                    failed += u64::from(!removed);
                }
            }
            if let Some(r) = remote {
                r.close().await;
            }
            failed
        });
    }
    let mut failed = 0;
    while let Some(joined) = tasks.join_next().await {
        failed += joined.unwrap_or(1);
    }
    if failed > 0 {
        eprintln!(
            "ferry: warning: {failed} file(s) named ferry-bench-{}-* could not be removed from the server",
            shared.tag
        );
    }
}

/// `--op idle`: the sessions are opened (timed), held, then each is asked for the directory's status.
async fn idle(shared: Arc<Shared>) -> Result<Outcome, Error> {
    let clock = Clock::timed(&shared);
    let gate = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let mut tasks = JoinSet::new();
    for _ in 0..shared.plan.sessions {
        let (shared, gate) = (Arc::clone(&shared), Arc::clone(&gate));
        tasks.spawn(async move {
            let permit = gate.acquire_owned().await;
            let t0 = Instant::now();
            let r = shared.connect().await;
            drop(permit);
            (r, t0.elapsed())
        });
    }
    let mut out = Outcome {
        requested: shared.plan.count,
        ..Outcome::default()
    };
    let mut open = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((Ok(remote), took)) => {
                out.tally.done += 1;
                out.tally.latencies.push(took);
                open.push(remote);
            }
            Ok((Err(e), _)) => out.tally.errors.add(&e),
            Err(e) => out.tally.errors.add_n(format!("session task failed: {e}"), 1),
        }
    }
    clock.stop(&mut out);
    let holding = Clock::start(shared.plan.server_pid);
    tokio::time::sleep(shared.plan.hold).await;
    let held_cpu = holding.server_cpu();
    let answered = check_and_close(&shared, open, &mut out.tally.errors).await;
    out.held = Some((answered, held_cpu));
    Ok(out)
}

/// Asks each session for the status of the working directory, then closes it; returns how many answered.
async fn check_and_close(shared: &Arc<Shared>, open: Vec<Remote>, errors: &mut Errors) -> u64 {
    let gate = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let mut tasks = JoinSet::new();
    for mut remote in open {
        let (dir, gate) = (shared.dir(), Arc::clone(&gate));
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let r = remote.stat(&dir).await.map(|_| ());
            remote.close().await;
            r
        });
    }
    let mut answered = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => answered += 1,
            Ok(Err(e)) => errors.add(&Error::Usage(format!("after holding: {e}"))),
            Err(e) => errors.add_n(format!("session task failed: {e}"), 1),
        }
    }
    answered
}
