//! `ferry mirror SRC DST`: make a local or remote directory a copy of a remote or local one.
//!
//! Both trees are listed first; then directories are created, files copied (over `--parallel`
//! connections) and, with `--delete`, extra entries removed. Names from a server listing are checked with
//! [`local_component`]: a name with `/`, `\`, `..`, a control character or an absolute path is skipped and
//! reported, so a hostile server can never make mirror write outside the target directory.
//!
//! When the server offers checksums (FTP `HASH` or `XSHA256`…, SFTP `check-file`), files of the same size
//! on both sides are compared by checksum instead of modification time, and every copy is verified
//! afterwards (a mismatch removes the bad copy and counts as a retryable failure). Otherwise, or with
//! `--no-checksum`, size and modification time decide.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ferry_client::names::{join_remote, local_component};
use ferry_client::url::RemoteUrl;
use ferry_client::{Checksum, Error, Remote};
use ferry_proto::listing::EntryKind;

use super::args::MirrorArgs;
use super::commands::{download_checked, outcome, report, upload};
use super::session::Ctx;
use super::Exit;

/// Deepest directory nesting walked.
const MAX_DEPTH: usize = 64;
/// Most entries in one tree.
const MAX_ENTRIES: usize = 1_000_000;
/// Modification times closer than this are equal (FAT and some servers keep 2 s).
const TIME_SLACK: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
struct Node {
    dir: bool,
    size: Option<u64>,
    modified: Option<SystemTime>,
}

/// Relative path (`a/b/c`, components already validated) → node.
type Tree = BTreeMap<String, Node>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Download,
    Upload,
}

struct Plan {
    mkdirs: Vec<String>,
    copies: Vec<(String, Node)>,
    deletes: Vec<(String, bool)>,
}

/// Counts shared by the workers.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failed: AtomicUsize,
    bytes: AtomicU64,
    /// Copies verified by checksum.
    verified: AtomicUsize,
    /// Files found identical by checksum (not copied although their times differ).
    same: AtomicUsize,
    last_error: Mutex<Option<Error>>,
}

impl Tally {
    fn fail(&self, what: &str, e: Error) {
        eprintln!("ferry: error: {what}: {e}");
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut l) = self.last_error.lock() {
            *l = Some(e);
        }
    }
}

/// Runs `ferry mirror`.
pub async fn run(a: MirrorArgs) -> Result<Exit, Error> {
    let ctx = Ctx::new(&a.opts)?;
    if a.opts.ascii {
        return Err(Error::Usage(
            "mirror copies files byte for byte; --ascii is for get, put and cat".into(),
        ));
    }
    let (url, local, dir) = match (RemoteUrl::parse(&a.src)?, RemoteUrl::parse(&a.dst)?) {
        (Some(src), None) => (src, PathBuf::from(&a.dst), Direction::Download),
        (None, Some(dst)) => (dst, PathBuf::from(&a.src), Direction::Upload),
        (Some(_), Some(_)) => {
            return Err(Error::Usage(
                "mirror copies between a server and a local directory; for two servers, mirror to a local directory first".into(),
            ))
        }
        (None, None) => return Err(Error::Usage("one of SRC and DST must be a URL".into())),
    };
    let tally = Arc::new(Tally::default());
    let mut remote = ctx.connect(&url).await?;
    let remote_exists = matches!(remote.try_stat(&url.path).await?, Some(e) if e.kind == EntryKind::Dir);
    let remote_tree = if remote_exists {
        walk_remote(&mut remote, &url.path, &a.exclude, &tally).await?
    } else if dir == Direction::Download {
        return Err(Error::NotFound(format!("{url} (no such directory)")));
    } else {
        Tree::new()
    };
    let local_tree = match std::fs::symlink_metadata(&local) {
        Ok(m) if m.is_dir() => walk_local(&local, &a.exclude, &tally)?,
        Ok(_) => return Err(Error::Usage(format!("{} is not a directory", local.display()))),
        Err(_) if dir == Direction::Upload => {
            return Err(Error::NotFound(format!(
                "{} (no such directory)",
                local.display()
            )))
        }
        Err(_) => Tree::new(),
    };
    let (src, dst) = match dir {
        Direction::Download => (&remote_tree, &local_tree),
        Direction::Upload => (&local_tree, &remote_tree),
    };
    let checksums = !a.no_checksum && remote.has_checksums();
    let verdicts = if checksums && !a.only_newer {
        compare_by_checksum(&mut remote, &url.path, &local, src, dst, &tally).await?
    } else {
        HashMap::new()
    };
    let plan = plan(src, dst, a.only_newer, a.delete, &verdicts, &tally);
    if a.dry_run {
        print_plan(&plan, dir);
        remote.close().await;
        let failed = tally.failed.load(Ordering::Relaxed);
        return Ok(if failed > 0 { Exit::Partial } else { Exit::Ok });
    }
    let root_missing = match dir {
        Direction::Download => !local.is_dir(),
        Direction::Upload => !remote_exists,
    };
    if root_missing {
        make_dir(&mut remote, dir, &url.path, &local).await?;
    }
    for rel in &plan.mkdirs {
        let r = make_dir(
            &mut remote,
            dir,
            &join_remote(&url.path, rel),
            &local_path(&local, rel),
        )
        .await;
        if let Err(e) = r {
            tally.fail(rel, e);
        }
    }
    let bytes = plan.copies.iter().filter_map(|(_, n)| n.size).sum();
    let total = super::output::Total::new(plan.copies.len(), bytes, ctx.opts.quiet || ctx.opts.json);
    let mut copy_ctx = ctx.clone();
    copy_ctx.total = Some(total.clone());
    let job = Job {
        ctx: copy_ctx,
        url: url.clone(),
        local: local.clone(),
        dir,
        verify: checksums,
    };
    // The listing's connection becomes the first worker's: one login fewer.
    copy_all(job, plan.copies, remote, a.parallel, &tally).await;
    total.finish();
    if !plan.deletes.is_empty() {
        let mut remote = ctx.connect(&url).await?;
        for (rel, is_dir) in &plan.deletes {
            let r = delete(
                &mut remote,
                dir,
                &join_remote(&url.path, rel),
                &local_path(&local, rel),
                *is_dir,
            )
            .await;
            if let Err(e) = r {
                tally.fail(rel, e);
            }
        }
        remote.close().await;
    }
    let (ok, failed) = (
        tally.ok.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    if !ctx.opts.json && !ctx.opts.quiet {
        let check = if checksums {
            format!(
                ", {} verified by checksum, {} unchanged by checksum",
                tally.verified.load(Ordering::Relaxed),
                tally.same.load(Ordering::Relaxed)
            )
        } else {
            String::new()
        };
        eprintln!(
            "ferry: mirror: {ok} file(s) copied ({} bytes){check}, {} deleted, {failed} failed",
            tally.bytes.load(Ordering::Relaxed),
            plan.deletes.len()
        );
    }
    let last = tally.last_error.lock().ok().and_then(|mut l| l.take());
    Ok(match (ok, failed) {
        (_, 0) => Exit::Ok,
        // Nothing to copy but something failed: still partial unless every file failed.
        (0, _) if last.is_some() && failed > 0 => outcome(0, failed, last.as_ref()).max_partial(),
        _ => Exit::Partial,
    })
}

impl Exit {
    /// A failure in a tree operation where other parts may have succeeded.
    fn max_partial(self) -> Exit {
        match self {
            Exit::Ok => Exit::Ok,
            Exit::Interrupted => Exit::Interrupted,
            Exit::Usage | Exit::NotFound | Exit::Fatal | Exit::Retryable | Exit::Partial => Exit::Partial,
        }
    }
}

/// For files of equal size on both sides: `true` when their checksums are equal. Files the server
/// gives no checksum for are left out (size and time decide for them).
async fn compare_by_checksum(
    remote: &mut Remote,
    root: &str,
    local: &Path,
    src: &Tree,
    dst: &Tree,
    tally: &Tally,
) -> Result<HashMap<String, bool>, Error> {
    let mut verdicts = HashMap::new();
    for (rel, s) in src {
        let Some(d) = dst.get(rel) else { continue };
        if s.dir || d.dir || s.size.is_none() || s.size != d.size {
            continue;
        }
        let Some(theirs) = remote.checksum(&join_remote(root, rel)).await? else {
            continue;
        };
        let ours = local_checksum(&local_path(local, rel), theirs.algorithm).await?;
        let same = ours == theirs.digest;
        if same {
            tally.same.fetch_add(1, Ordering::Relaxed);
        }
        verdicts.insert(rel.clone(), same);
    }
    Ok(verdicts)
}

/// The checksum of a local file, read off the async threads.
pub(super) async fn local_checksum(
    path: &Path,
    algorithm: ferry_proto::hash::Algorithm,
) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let shown = path.display().to_string();
    // A small file is read and hashed right here (microseconds); a large one off the async threads.
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.len() <= 64 * 1024 {
            let data = std::fs::read(path).map_err(|e| Error::local(format!("hashing {shown}"), e))?;
            return Ok(ferry_proto::hash::Hasher::digest(algorithm, &data));
        }
    }
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(&path)?;
        let mut h = ferry_proto::hash::Hasher::new(algorithm);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(h.finish());
            }
            h.update(buf.get(..n).unwrap_or_default());
        }
    })
    .await
    .map_err(|e| Error::local(format!("hashing {shown}"), std::io::Error::other(e)))?
    .map_err(|e| Error::local(format!("hashing {shown}"), e))
}

fn plan(
    src: &Tree,
    dst: &Tree,
    only_newer: bool,
    delete: bool,
    verdicts: &HashMap<String, bool>,
    tally: &Tally,
) -> Plan {
    let mut p = Plan {
        mkdirs: Vec::new(),
        copies: Vec::new(),
        deletes: Vec::new(),
    };
    for (rel, s) in src {
        match (s.dir, dst.get(rel)) {
            (true, None) => p.mkdirs.push(rel.clone()),
            (true, Some(d)) if d.dir => {}
            (false, None) => p.copies.push((rel.clone(), *s)),
            (false, Some(d)) if !d.dir => {
                let copy = match verdicts.get(rel) {
                    Some(same) => !same,
                    None => needs_copy(s, d, only_newer),
                };
                if copy {
                    p.copies.push((rel.clone(), *s));
                }
            }
            (_, Some(_)) => tally.fail(
                rel,
                Error::Usage("a file on one side is a directory on the other; skipped".into()),
            ),
        }
    }
    if delete {
        // Deepest first, so directories are empty when removed.
        for (rel, d) in dst.iter().rev() {
            if !src.contains_key(rel) {
                p.deletes.push((rel.clone(), d.dir));
            }
        }
    }
    p
}

fn needs_copy(s: &Node, d: &Node, only_newer: bool) -> bool {
    let newer = match (s.modified, d.modified) {
        (Some(st), Some(dt)) => st.duration_since(dt).is_ok_and(|diff| diff > TIME_SLACK),
        _ => false,
    };
    if only_newer {
        return newer || (s.modified.is_none() || d.modified.is_none()) && s.size != d.size;
    }
    s.size != d.size || newer
}

fn print_plan(plan: &Plan, dir: Direction) {
    let verb = if dir == Direction::Download { "get" } else { "put" };
    for rel in &plan.mkdirs {
        println!("mkdir {}", rel.escape_debug());
    }
    for (rel, _) in &plan.copies {
        println!("{verb} {}", rel.escape_debug());
    }
    for (rel, is_dir) in &plan.deletes {
        println!("{} {}", if *is_dir { "rmdir" } else { "rm" }, rel.escape_debug());
    }
}

/// `root/a/b` from a validated relative path `a/b`.
fn local_path(root: &Path, rel: &str) -> PathBuf {
    rel.split('/').fold(root.to_path_buf(), |p, c| p.join(c))
}

fn excluded(name: &str, globs: &[String]) -> bool {
    globs
        .iter()
        .any(|g| ferry_proto::glob::matches(g.as_bytes(), name.as_bytes()))
}

async fn walk_remote(
    remote: &mut Remote,
    root: &str,
    exclude: &[String],
    tally: &Tally,
) -> Result<Tree, Error> {
    let mut tree = Tree::new();
    let mut queue = VecDeque::from([(String::new(), 0usize)]);
    while let Some((rel, depth)) = queue.pop_front() {
        let entries = remote.list(&join_remote(root, &rel)).await?;
        for e in entries {
            let name = match local_component(&e.raw_name) {
                Ok(n) => n.to_owned(),
                Err(err) => {
                    tally.fail(&format!("listing of {}", join_remote(root, &rel)), err);
                    continue;
                }
            };
            if excluded(&name, exclude) || !matches!(e.kind, EntryKind::File | EntryKind::Dir) {
                continue;
            }
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if tree.len() >= MAX_ENTRIES {
                return Err(Error::Protocol(format!(
                    "the remote tree has more than {MAX_ENTRIES} entries"
                )));
            }
            let dir = e.kind == EntryKind::Dir;
            if dir && depth + 1 < MAX_DEPTH {
                queue.push_back((child.clone(), depth + 1));
            }
            tree.insert(
                child,
                Node {
                    dir,
                    size: e.size,
                    modified: e.modified,
                },
            );
        }
    }
    Ok(tree)
}

fn walk_local(root: &Path, exclude: &[String], tally: &Tally) -> Result<Tree, Error> {
    let mut tree = Tree::new();
    let mut stack = vec![(String::new(), 0usize)];
    while let Some((rel, depth)) = stack.pop() {
        let dir = local_path(root, &rel);
        let read =
            std::fs::read_dir(&dir).map_err(|e| Error::local(format!("reading {}", dir.display()), e))?;
        for item in read {
            let item = item.map_err(|e| Error::local(format!("reading {}", dir.display()), e))?;
            let Some(name) = item.file_name().to_str().map(str::to_owned) else {
                tally.fail(
                    &dir.display().to_string(),
                    Error::Usage(format!("{:?} is not UTF-8; skipped", item.file_name())),
                );
                continue;
            };
            let meta = item
                .metadata()
                .map_err(|e| Error::local(format!("reading {}", item.path().display()), e))?;
            if excluded(&name, exclude) || !(meta.is_file() || meta.is_dir()) {
                continue; // symlinks and special files are not mirrored
            }
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if meta.is_dir() && depth + 1 < MAX_DEPTH {
                stack.push((child.clone(), depth + 1));
            }
            tree.insert(
                child,
                Node {
                    dir: meta.is_dir(),
                    size: meta.is_file().then_some(meta.len()),
                    modified: meta.modified().ok(),
                },
            );
        }
    }
    Ok(tree)
}

async fn make_dir(remote: &mut Remote, dir: Direction, path: &str, local: &Path) -> Result<(), Error> {
    match dir {
        Direction::Download => std::fs::create_dir_all(local)
            .map_err(|e| Error::local(format!("creating {}", local.display()), e)),
        Direction::Upload => remote.mkdir(path).await,
    }
}

async fn delete(
    remote: &mut Remote,
    dir: Direction,
    path: &str,
    local: &Path,
    is_dir: bool,
) -> Result<(), Error> {
    match (dir, is_dir) {
        (Direction::Download, true) => {
            std::fs::remove_dir(local).map_err(|e| Error::local(format!("removing {}", local.display()), e))
        }
        (Direction::Download, false) => {
            std::fs::remove_file(local).map_err(|e| Error::local(format!("removing {}", local.display()), e))
        }
        (Direction::Upload, true) => remote.rmdir(path).await,
        (Direction::Upload, false) => remote.remove(path).await,
    }
}

/// What every copy of one mirror run shares.
#[derive(Clone)]
struct Job {
    ctx: Ctx,
    url: RemoteUrl,
    local: PathBuf,
    dir: Direction,
    /// Verify each copy by checksum.
    verify: bool,
}

/// Copies over `parallel` connections; `first` (already logged in) serves the first worker.
async fn copy_all(job: Job, copies: Vec<(String, Node)>, first: Remote, parallel: u16, tally: &Arc<Tally>) {
    let workers = job.ctx.connections(parallel, copies.len());
    if workers == 0 {
        first.close().await;
        return;
    }
    let queue = Arc::new(Mutex::new(VecDeque::from(copies)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut first = Some(first);
    for _ in 0..workers {
        let (job, queue, tally, conn) = (job.clone(), queue.clone(), tally.clone(), first.take());
        tasks.spawn(async move { worker(job, queue, tally, conn).await });
    }
    while tasks.join_next().await.is_some() {}
}

async fn worker(
    job: Job,
    queue: Arc<Mutex<VecDeque<(String, Node)>>>,
    tally: Arc<Tally>,
    conn: Option<Remote>,
) {
    let Job {
        ctx,
        url,
        local,
        dir,
        verify,
    } = job;
    // The first worker has the listing's connection; the others add theirs if the server allows.
    let mut remote = match conn {
        Some(c) => Some(c),
        None => match ctx.extra_connection(&url).await {
            Some(c) => Some(c),
            None => return,
        },
    };
    while let Some((rel, node)) = next_job(&queue) {
        let path = join_remote(&url.path, &rel);
        let file = local_path(&local, &rel);
        let mut attempt = 0u32;
        let result = loop {
            let copied = copy_one(
                &ctx,
                &url,
                &mut remote,
                dir,
                &path,
                &file,
                &node,
                attempt > 0,
                verify,
            )
            .await;
            let (mut r, fetched) = match copied {
                Ok((n, fetched)) => (Ok(n), fetched),
                Err(e) => (Err(e), None),
            };
            if let (Ok(_), true, Some(conn)) = (&r, verify, remote.as_mut()) {
                match verify_copy(conn, dir, &path, &file, fetched).await {
                    Ok(true) => {
                        tally.verified.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(false) => {}
                    Err(e) => r = Err(e),
                }
            }
            match r {
                Err(e) if e.is_retryable() && attempt < ctx.opts.retries => {
                    remote = None; // reconnect
                    ctx.backoff(attempt, Some(&e)).await;
                    attempt += 1;
                }
                r => break r,
            }
        };
        ctx.file_done();
        let verb = if dir == Direction::Download { "get" } else { "put" };
        report(
            &ctx,
            verb,
            &url.with_path(path.clone()),
            &file.display().to_string(),
            &result,
        );
        match result {
            Ok(n) => {
                tally.ok.fetch_add(1, Ordering::Relaxed);
                tally.bytes.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => tally.fail(&rel, e),
        }
    }
    if let Some(r) = remote {
        r.close().await;
    }
}

/// Compares the copy with the original by the server's checksum: `Ok(true)` when they match, `Ok(false)`
/// when the server gives none for this file. On a mismatch the copy is removed (so that a retry starts
/// over instead of resuming a bad file) and a retryable error returned. `fetched` is the server's answer
/// when it came with the copy already (an upload's `MFMT` + `HASH`, a download's `HASH` + `RETR`).
async fn verify_copy(
    remote: &mut Remote,
    dir: Direction,
    path: &str,
    file: &Path,
    fetched: Option<Result<Option<Checksum>, Error>>,
) -> Result<bool, Error> {
    let answer = match fetched {
        Some(answer) => answer,
        None => remote.checksum(path).await,
    };
    // A file the server no longer shows (an upload directory that takes files away) cannot be checked.
    let theirs = match answer {
        Err(Error::NotFound(_)) => return Ok(false),
        other => other?,
    };
    let Some(Checksum { algorithm, digest }) = theirs else {
        return Ok(false);
    };
    let ours = local_checksum(file, algorithm).await?;
    if ours == digest {
        return Ok(true);
    }
    match dir {
        Direction::Download => {
            let _ = std::fs::remove_file(file);
        }
        Direction::Upload => {
            let _ = remote.remove(path).await;
        }
    }
    Err(Error::Transient {
        what: format!("verifying {path}"),
        reply: format!(
            "{algorithm} differs after the copy: server {}, local {}; the copy was removed",
            ferry_proto::hash::hex(&digest),
            ferry_proto::hash::hex(&ours)
        ),
    })
}

/// The next file to copy (the lock is released before the copy starts).
fn next_job(queue: &Mutex<VecDeque<(String, Node)>>) -> Option<(String, Node)> {
    queue.lock().ok().and_then(|mut q| q.pop_front())
}

#[allow(clippy::too_many_arguments)]
async fn copy_one(
    ctx: &Ctx,
    url: &RemoteUrl,
    remote: &mut Option<Remote>,
    dir: Direction,
    path: &str,
    file: &Path,
    node: &Node,
    resume: bool,
    verify: bool,
) -> Result<(u64, Option<Result<Option<Checksum>, Error>>), Error> {
    if remote.is_none() {
        *remote = Some(ctx.connect(url).await?);
    }
    let Some(r) = remote.as_mut() else {
        return Err(Error::Usage("no connection".into()));
    };
    match dir {
        Direction::Download => {
            // The checksum is asked for with the transfer (FTP: `HASH` in the same write as `RETR`).
            let (n, theirs) = download_checked(ctx, r, path, file, resume, node.size, verify).await?;
            if let Some(t) = node.modified {
                if let Ok(f) = std::fs::File::options().write(true).open(file) {
                    let _ = f.set_modified(t);
                }
            }
            Ok((n, theirs))
        }
        Direction::Upload => {
            let n = upload(ctx, r, file, path, resume).await?;
            match node.modified {
                // The time and the checksum in one round trip.
                Some(t) if verify => {
                    let (_, theirs) = r.set_modified_and_checksum(path, t).await?;
                    Ok((n, Some(theirs)))
                }
                Some(t) => {
                    r.set_modified(path, t).await?;
                    Ok((n, None))
                }
                None => Ok((n, None)),
            }
        }
    }
}
