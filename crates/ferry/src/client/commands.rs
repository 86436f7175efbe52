//! get, put, ls, rm, mkdir, rmdir, mv, cat, stat.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ferry_client::ftp::Fetched;
use ferry_client::names::{join_remote, remote_basename};
use ferry_client::url::RemoteUrl;
use ferry_client::{Entry, Error, Remote};
use ferry_proto::listing::EntryKind;
use std::io::Seek;

use tokio::io::AsyncWriteExt;

use super::args::{ClientCommand, GetArgs, LsArgs, MvArgs, PathsArgs, PutArgs};
use super::local::LocalFile;
use super::output::{bar, human_time, json_line, json_str, json_time};
use super::session::Ctx;
use super::Exit;

/// Runs one client command and returns its exit code (errors already printed).
pub async fn run(command: ClientCommand) -> Exit {
    let result = match command {
        ClientCommand::Get(a) => get(a).await,
        ClientCommand::Put(a) => put(a).await,
        ClientCommand::Ls(a) => ls(a).await,
        ClientCommand::Rm(a) => each_path(a, Op::Rm).await,
        ClientCommand::Mkdir(a) => each_path(a, Op::Mkdir).await,
        ClientCommand::Rmdir(a) => each_path(a, Op::Rmdir).await,
        ClientCommand::Cat(a) => each_path(a, Op::Cat).await,
        ClientCommand::Stat(a) => each_path(a, Op::Stat).await,
        ClientCommand::Mv(a) => mv(a).await,
        ClientCommand::Mirror(a) => super::mirror::run(a).await,
        ClientCommand::Shell(_) => Err(Error::Usage("the shell runs outside of a command".into())),
    };
    match result {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("ferry: error: {e}");
            Exit::of(&e)
        }
    }
}

/// Prints the JSON line (with `--json`) for one finished file.
pub fn report(ctx: &Ctx, op: &str, remote: &RemoteUrl, local: &str, result: &Result<u64, Error>) {
    report_with(ctx, op, remote, local, result, &[]);
}

/// [`report`] with `extra` fields after `bytes` of a successful transfer.
fn report_with(
    ctx: &Ctx,
    op: &str,
    remote: &RemoteUrl,
    local: &str,
    result: &Result<u64, Error>,
    extra: &[(&'static str, String)],
) {
    if !ctx.opts.json {
        return;
    }
    let mut fields = vec![
        ("op", json_str(op)),
        ("remote", json_str(&remote.to_string())),
        ("local", json_str(local)),
    ];
    match result {
        Ok(n) => {
            fields.push(("status", json_str("ok")));
            fields.push(("bytes", n.to_string()));
            fields.extend(extra.iter().cloned());
        }
        Err(e) => {
            fields.push(("status", json_str("error")));
            fields.push(("error", json_str(&e.to_string())));
            fields.push(("exit", (Exit::of(e) as u8).to_string()));
        }
    }
    println!("{}", json_line(&fields));
}

/// `-c` and `-n` work on byte offsets, which differ between the text on the wire and the local file.
fn ascii_conflict(ascii: bool, resume: bool, segments: u16) -> Result<(), Error> {
    if ascii && (resume || segments > 1) {
        return Err(Error::Usage(
            "--ascii cannot be combined with -c or -n: byte offsets differ in ASCII mode; use binary mode"
                .into(),
        ));
    }
    Ok(())
}

/// Segments of a download split by default (`-n` not given, file of `--segment-min-size` or more):
/// as many as rclone's default streams, enough to pass one connection's window on a long path.
const AUTO_SEGMENTS: u16 = 4;

async fn get(a: GetArgs) -> Result<Exit, Error> {
    let explicit = a.segments.unwrap_or(1);
    ascii_conflict(a.opts.ascii, a.resume, explicit)?;
    let ctx = Ctx::new(&a.opts)?;
    let url = Ctx::url(&a.url)?;
    let name = remote_basename(&url.path).ok_or_else(|| {
        Error::Usage(format!(
            "{url} names a directory; use `ferry mirror` for directories"
        ))
    })?;
    let to_stdout = a.local.as_deref() == Some(Path::new("-"));
    let local = match &a.local {
        Some(p) if p.is_dir() => p.join(name),
        Some(p) => p.clone(),
        None => PathBuf::from(name),
    };
    // Split by default only where byte offsets mean the same on both sides and a fresh file is made.
    let auto = (a.segments.is_none() && !a.resume && !a.opts.ascii && !to_stdout)
        .then(|| a.segment_min_size.saturating_mul(1024 * 1024));
    let mut used = 1;
    let result = if explicit > 1 {
        if to_stdout {
            return Err(Error::Usage(
                "--segments needs a local file, not standard output".into(),
            ));
        }
        segmented(&ctx, &url, &local, explicit, None).await.map(|(n, k)| {
            used = k;
            n
        })
    } else if to_stdout {
        // No retry once bytes may have been written: they cannot be taken back.
        match ctx.connect(&url).await {
            Ok(mut remote) => {
                let mut out = tokio::io::stdout();
                let r = remote.get(&url.path, 0, &mut out, &mut |_| {}).await;
                remote.close().await;
                r
            }
            Err(e) => Err(e),
        }
    } else {
        let mut attempt = 0u32;
        loop {
            // A retry continues the partial file when -c was given, else starts afresh.
            let r = match ctx.connect(&url).await {
                Ok(remote) => match whole_or_split(&ctx, remote, &url, &local, a.resume, auto).await {
                    Split::Done(r) => r,
                    Split::Segmented(r) => {
                        // Each segment has had its own retries.
                        break r.map(|(n, k)| {
                            used = k;
                            n
                        });
                    }
                },
                Err(e) => Err(e),
            };
            match r {
                Err(e) if e.is_retryable() && attempt < ctx.opts.retries => {
                    ctx.backoff(attempt, Some(&e)).await;
                    attempt += 1;
                }
                r => break r,
            }
        }
    };
    let extra = [("connections", used.to_string())];
    report_with(&ctx, "get", &url, &local.display().to_string(), &result, &extra);
    result.map(|_| Exit::Ok)
}

/// How [`whole_or_split`] went.
enum Split {
    /// Over the one connection.
    Done(Result<u64, Error>),
    /// In segments: the bytes and the connections used.
    Segmented(Result<(u64, usize), Error>),
}

/// Downloads over `remote` alone, or — with `auto` (the smallest size to split) when the file is at
/// least that large, the server can start a download at an offset (FTP: `REST STREAM` in FEAT) and
/// more than one connection is allowed — in segments, `remote` being the first
/// segment's connection.
async fn whole_or_split(
    ctx: &Ctx,
    mut remote: Remote,
    url: &RemoteUrl,
    local: &Path,
    resume: bool,
    auto: Option<u64>,
) -> Split {
    let size = match remote.try_stat(&url.path).await {
        Ok(entry) => entry.and_then(|e| e.size),
        Err(e) => {
            remote.close().await;
            return Split::Done(Err(e));
        }
    };
    let split = match (auto, size) {
        (Some(min), Some(size)) => {
            size >= min && remote.has_ranges() && ctx.connections(AUTO_SEGMENTS, usize::MAX) > 1
        }
        _ => false,
    };
    if let (true, Some(size)) = (split, size) {
        return Split::Segmented(segmented(ctx, url, local, AUTO_SEGMENTS, Some((remote, size))).await);
    }
    let r = download(ctx, &mut remote, &url.path, local, resume, size).await;
    remote.close().await;
    Split::Done(r)
}

/// Downloads `url` into `local` in up to `n` segments over as many connections (at most
/// `--max-connections`), starting from `first` (a connection and the file's size) when given: each
/// writes its byte range of a temporary file of the final size, renamed over `local` once every
/// segment is complete. Connections the server refuses leave fewer, larger segments. Returns the
/// bytes and the connections used.
async fn segmented(
    ctx: &Ctx,
    url: &RemoteUrl,
    local: &Path,
    n: u16,
    first: Option<(Remote, u64)>,
) -> Result<(u64, usize), Error> {
    let (first, size) = match first {
        Some(f) => f,
        None => {
            let mut remote = ctx.retry(|| ctx.connect(url)).await?;
            match remote.stat(&url.path).await.map(|e| e.size) {
                Ok(Some(size)) => (remote, size),
                Ok(None) => {
                    remote.close().await;
                    return Err(Error::Protocol(
                        "the server did not say how large the file is".into(),
                    ));
                }
                Err(e) => {
                    remote.close().await;
                    return Err(e);
                }
            }
        }
    };
    let wanted = ctx.connections(n, usize::try_from(size).unwrap_or(usize::MAX).max(1));
    let mut remotes = vec![first];
    remotes.extend(extra_connections(ctx, url, wanted.saturating_sub(1)).await);
    let used = remotes.len();
    let shown = local.display().to_string();
    let tmp = temp_name(local);
    let file =
        std::fs::File::create(&tmp).map_err(|e| Error::local(format!("creating {}", tmp.display()), e))?;
    part_started(&tmp);
    let made = file
        .set_len(size)
        .map_err(|e| Error::local(format!("creating {}", tmp.display()), e));
    let pb = bar(&shown, Some(size), ctx.opts.quiet || ctx.opts.json);
    let step = size.div_ceil(used as u64).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, remote) in remotes.into_iter().enumerate() {
        let start = (i as u64 * step).min(size);
        let len = step.min(size - start);
        if made.is_err() || (len == 0 && i > 0) {
            tasks.spawn(async move {
                remote.close().await;
                Ok(0)
            });
            continue;
        }
        let (ctx, url, tmp, pb) = (ctx.clone(), url.clone(), tmp.clone(), pb.clone());
        tasks.spawn(async move { segment(&ctx, remote, &url, &tmp, start, len, &pb).await });
    }
    let mut total = 0u64;
    let mut failure = made.err();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(got)) => total += got,
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(Error::Usage(format!("a segment task failed: {e}")))),
        }
    }
    pb.finish_and_clear();
    let synced = file
        .sync_all()
        .map_err(|e| Error::local(format!("writing {}", tmp.display()), e));
    drop(file);
    part_done(&tmp);
    if let Some(e) = failure.or(synced.err()) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if total != size {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Protocol(format!(
            "received {total} bytes of a file the server said has {size}; did it change during the download?"
        )));
    }
    std::fs::rename(&tmp, local)
        .map_err(|e| Error::local(format!("renaming {} to {shown}", tmp.display()), e))?;
    Ok((total, used))
}

/// Up to `n` more connections, opened at once; those the server refuses are left out (with a note).
async fn extra_connections(ctx: &Ctx, url: &RemoteUrl, n: usize) -> Vec<Remote> {
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (ctx, url) = (ctx.clone(), url.clone());
        opening.spawn(async move { ctx.extra_connection(&url).await });
    }
    let mut remotes = Vec::with_capacity(n);
    while let Some(done) = opening.join_next().await {
        if let Ok(Some(remote)) = done {
            remotes.push(remote);
        }
    }
    remotes
}

/// Downloads bytes `[start, start + len)` of `url` into `tmp` at the same offsets over `remote`; a
/// retryable failure fetches the segment again over a new connection (`--retries`).
async fn segment(
    ctx: &Ctx,
    remote: Remote,
    url: &RemoteUrl,
    tmp: &Path,
    start: u64,
    len: u64,
    pb: &indicatif::ProgressBar,
) -> Result<u64, Error> {
    let mut given = Some(remote);
    ctx.retry(|| {
        let given = given.take();
        async move {
            let mut remote = match given {
                Some(r) => r,
                None => ctx.connect(url).await?,
            };
            let r = segment_once(&mut remote, url, tmp, start, len, pb).await;
            // Over FTP the early close of a range leaves the session unusable.
            remote.close().await;
            r
        }
    })
    .await
}

async fn segment_once(
    remote: &mut Remote,
    url: &RemoteUrl,
    tmp: &Path,
    start: u64,
    len: u64,
    pb: &indicatif::ProgressBar,
) -> Result<u64, Error> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(tmp)
        .map_err(|e| Error::local(format!("opening {}", tmp.display()), e))?;
    file.seek(std::io::SeekFrom::Start(start))
        .map_err(|e| Error::local(format!("writing {}", tmp.display()), e))?;
    let buffer = io_buffer(remote, Some(len));
    let mut shown = 0u64;
    let r = remote
        .get_file_range(&url.path, start, len, &file, buffer, &mut |b| {
            shown += b;
            pb.inc(b);
        })
        .await;
    if r.is_err() {
        // A retry fetches the segment again from its start.
        pb.set_position(pb.position().saturating_sub(shown));
    }
    r
}

/// Downloads `path` to `local`: resumed in place with `resume`, else into a temporary file renamed over
/// `local` only on success (a failed download never destroys an existing file).
pub async fn download(
    ctx: &Ctx,
    remote: &mut Remote,
    path: &str,
    local: &Path,
    resume: bool,
    size: Option<u64>,
) -> Result<u64, Error> {
    download_checked(ctx, remote, path, local, resume, size, false)
        .await
        .map(|(n, _)| n)
}

/// [`download`], asking with `checksum` for the server's checksum of the file along with the transfer
/// where the protocol allows (FTP `HASH` in the same write as `RETR`: no round trip of its own); the
/// answer is returned when it was asked for.
pub async fn download_checked(
    ctx: &Ctx,
    remote: &mut Remote,
    path: &str,
    local: &Path,
    resume: bool,
    size: Option<u64>,
    checksum: bool,
) -> Result<(u64, Fetched), Error> {
    let shown = local.display().to_string();
    let size = match size {
        Some(s) => Some(s),
        None => remote.try_stat(path).await?.and_then(|e| e.size),
    };
    let pb = bar(&shown, size, ctx.opts.quiet || ctx.opts.json);
    let mut progress = |n: u64| {
        pb.inc(n);
        ctx.tick(n);
    };
    let buffer = io_buffer(remote, size);
    let result = if resume {
        // Written at its end rather than opened for appending: splice(2) refuses O_APPEND files.
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(local)
            .map_err(|e| Error::local(format!("opening {shown}"), e))?;
        let have = file
            .seek(std::io::SeekFrom::End(0))
            .map_err(|e| Error::local(format!("reading {shown}"), e))?;
        pb.inc(have);
        if size.is_some_and(|s| s == have) {
            Ok((0, None))
        } else {
            // What arrived is kept for the next resume.
            remote
                .get_file(path, have, &file, buffer, &mut progress, checksum)
                .await
        }
    } else {
        let tmp = temp_name(local);
        let file = std::fs::File::create(&tmp)
            .map_err(|e| Error::local(format!("creating {}", tmp.display()), e))?;
        part_started(&tmp);
        let r = remote
            .get_file(path, 0, &file, buffer, &mut progress, checksum)
            .await;
        let synced = file.sync_all();
        drop(file);
        part_done(&tmp);
        match (r, synced) {
            (Ok(got), Ok(())) => std::fs::rename(&tmp, local)
                .map(|()| got)
                .map_err(|e| Error::local(format!("renaming {} to {shown}", tmp.display()), e)),
            (r, synced) => {
                let _ = std::fs::remove_file(&tmp);
                r.and_then(|got| {
                    synced
                        .map(|()| got)
                        .map_err(|e| Error::local(format!("writing {shown}"), e))
                })
            }
        }
    };
    pb.finish_and_clear();
    result
}

/// Size of the buffer between a transfer and its local file (read and written in place).
/// An SFTP transfer hands over data in pieces of its request size (32 KiB with servers that do not
/// state larger limits): a 1 MiB buffer makes that one system call per MiB (small files get a buffer
/// of their size). FTP needs none: a plain binary download is spliced into the file, TLS and ASCII
/// ones copy in pieces of up to 256 KiB, and an upload reads the file directly.
fn io_buffer(remote: &Remote, size: Option<u64>) -> usize {
    const MAX: u64 = 1024 * 1024;
    match remote {
        Remote::Ftp(_) => 0,
        Remote::Sftp(_) => usize::try_from(size.unwrap_or(MAX).clamp(8 * 1024, MAX)).unwrap_or(8 * 1024),
    }
}

/// Temporary download files being written, removed when the user interrupts (Ctrl-C).
static PARTS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Remembers a temporary file until [`part_done`].
fn part_started(p: &Path) {
    if let Ok(mut parts) = PARTS.lock() {
        parts.push(p.to_path_buf());
    }
}

/// Forgets a temporary file (renamed into place or removed).
fn part_done(p: &Path) {
    if let Ok(mut parts) = PARTS.lock() {
        parts.retain(|q| q != p);
    }
}

/// Removes every temporary download file still being written; returns how many.
pub fn remove_parts() -> usize {
    let Ok(mut parts) = PARTS.lock() else {
        return 0;
    };
    parts
        .drain(..)
        .filter(|p| std::fs::remove_file(p).is_ok())
        .count()
}

/// `dir/.name.ferry-part`: in the same directory, so the final rename stays on one filesystem.
pub fn temp_name(local: &Path) -> PathBuf {
    let name = local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    local.with_file_name(format!(".{name}.ferry-part"))
}

async fn put(a: PutArgs) -> Result<Exit, Error> {
    ascii_conflict(a.opts.ascii, a.resume, 1)?;
    let ctx = Ctx::new(&a.opts)?;
    let Some((target, locals)) = a.args.split_last() else {
        return Err(Error::Usage("ferry put LOCAL… URL".into()));
    };
    let url = Ctx::url(target)?;
    let mut remote = ctx.connect(&url).await?;
    let into_dir = locals.len() > 1
        || url.path.ends_with('/')
        || url.path == "."
        || matches!(remote.try_stat(&url.path).await?, Some(e) if e.kind == EntryKind::Dir);
    let jobs: VecDeque<(PathBuf, String)> = locals
        .iter()
        .map(PathBuf::from)
        .map(|local| {
            let name = local
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let path = if into_dir {
                join_remote(&url.path, &name)
            } else {
                url.path.clone()
            };
            (local, path)
        })
        .collect();
    let workers = ctx.connections(a.jobs, jobs.len());
    let bytes = jobs
        .iter()
        .filter_map(|(l, _)| std::fs::metadata(l).ok())
        .map(|m| m.len())
        .sum();
    let total = super::output::Total::new(jobs.len(), bytes, ctx.opts.quiet || ctx.opts.json);
    let mut ctx = ctx;
    ctx.total = Some(total.clone());
    let queue = Arc::new(Mutex::new(jobs));
    let mut tasks = tokio::task::JoinSet::new();
    // The connection that looked at the target uploads too: one login fewer.
    let mut first = Some(remote);
    for _ in 0..workers {
        let (ctx, url, queue, conn) = (ctx.clone(), url.clone(), queue.clone(), first.take());
        tasks.spawn(put_worker(ctx, url, queue, a.resume, conn));
    }
    if let Some(unused) = first {
        unused.close().await;
    }
    let (mut ok, mut failed, mut last_err) = (0usize, 0usize, None);
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((o, f, e)) => {
                ok += o;
                failed += f;
                last_err = e.or(last_err);
            }
            // A worker that died took its file with it: never report success for it.
            Err(e) => {
                failed += 1;
                last_err = Some(Error::Usage(format!("an upload task failed: {e}")));
            }
        }
    }
    total.finish();
    Ok(outcome(ok, failed, last_err.as_ref()))
}

/// Uploads files from `queue` over one connection: (uploaded, failed, last error).
async fn put_worker(
    ctx: Ctx,
    url: RemoteUrl,
    queue: Arc<Mutex<VecDeque<(PathBuf, String)>>>,
    resume: bool,
    conn: Option<Remote>,
) -> (usize, usize, Option<Error>) {
    let (mut ok, mut failed, mut last_err) = (0usize, 0usize, None);
    // The first worker has the connection that looked at the target; the others add theirs if the
    // server allows.
    let mut remote = match conn {
        Some(c) => Some(c),
        None => match ctx.extra_connection(&url).await {
            Some(c) => Some(c),
            None => return (ok, failed, last_err),
        },
    };
    while let Some((local, path)) = next_upload(&queue) {
        let mut attempt = 0u32;
        let result = loop {
            let r = match remote.as_mut() {
                Some(r) => upload(&ctx, r, &local, &path, resume || attempt > 0).await,
                None => match ctx.connect(&url).await {
                    Ok(r) => upload(&ctx, remote.insert(r), &local, &path, resume || attempt > 0).await,
                    Err(e) => Err(e),
                },
            };
            match r {
                // Reconnect and continue this file (resuming: part of it may be there).
                Err(e) if e.is_retryable() && attempt < ctx.opts.retries => {
                    remote = None;
                    ctx.backoff(attempt, Some(&e)).await;
                    attempt += 1;
                }
                r => break r,
            }
        };
        ctx.file_done();
        report(
            &ctx,
            "put",
            &url.with_path(path.clone()),
            &local.display().to_string(),
            &result,
        );
        match result {
            Ok(_) => ok += 1,
            Err(e) => {
                eprintln!("ferry: error: {}: {e}", local.display());
                failed += 1;
                last_err = Some(e);
            }
        }
    }
    if let Some(r) = remote {
        r.close().await;
    }
    (ok, failed, last_err)
}

fn next_upload(queue: &Mutex<VecDeque<(PathBuf, String)>>) -> Option<(PathBuf, String)> {
    queue.lock().ok().and_then(|mut q| q.pop_front())
}

/// Uploads `local` to `path`; with `resume`, skips the bytes the remote file already has.
pub async fn upload(
    ctx: &Ctx,
    remote: &mut Remote,
    local: &Path,
    path: &str,
    resume: bool,
) -> Result<u64, Error> {
    let shown = local.display().to_string();
    let mut file = std::fs::File::open(local).map_err(|e| Error::local(format!("opening {shown}"), e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::local(format!("reading {shown}"), e))?
        .len();
    let offset = if resume {
        remote
            .try_stat(path)
            .await?
            .and_then(|e| e.size)
            .unwrap_or(0)
            .min(len)
    } else {
        0
    };
    if resume && offset == len && len > 0 {
        return Ok(0);
    }
    if offset > 0 {
        file.seek(std::io::SeekFrom::Start(offset))
            .map_err(|e| Error::local(format!("reading {shown}"), e))?;
    }
    let mut file = LocalFile(file);
    let pb = bar(&shown, Some(len), ctx.opts.quiet || ctx.opts.json);
    pb.inc(offset);
    let mut progress = |n: u64| {
        pb.inc(n);
        ctx.tick(n);
    };
    let r = match io_buffer(remote, Some(len - offset)) {
        0 => remote.put(path, offset, &mut file, &mut progress).await,
        cap => {
            let mut file = tokio::io::BufReader::with_capacity(cap, file);
            remote.put(path, offset, &mut file, &mut progress).await
        }
    };
    pb.finish_and_clear();
    r
}

/// Exit code of a multi-file operation.
pub fn outcome(ok: usize, failed: usize, last: Option<&Error>) -> Exit {
    match (ok, failed, last) {
        (_, 0, _) => Exit::Ok,
        (0, _, Some(e)) => Exit::of(e),
        _ => Exit::Partial,
    }
}

async fn ls(a: LsArgs) -> Result<Exit, Error> {
    let ctx = Ctx::new(&a.opts)?;
    let url = Ctx::url(&a.url)?;
    let entries = ctx
        .retry(|| async {
            let mut remote = ctx.connect(&url).await?;
            let e = match remote.stat(&url.path).await {
                Ok(e) if e.kind != EntryKind::Dir => Ok(vec![e]),
                Ok(_) | Err(_) => remote.list(&url.path).await,
            };
            remote.close().await;
            e
        })
        .await?;
    let mut entries = entries;
    entries.sort_by(|x, y| x.name.cmp(&y.name));
    for e in &entries {
        print_entry(&ctx, e, a.long);
    }
    Ok(Exit::Ok)
}

fn kind_name(k: EntryKind) -> &'static str {
    match k {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink => "symlink",
        EntryKind::Other => "other",
    }
}

pub fn print_entry(ctx: &Ctx, e: &Entry, long: bool) {
    // Names are printed with control characters escaped: a listing cannot drive the terminal.
    let name = e.name.escape_debug().to_string();
    if ctx.opts.json {
        println!(
            "{}",
            json_line(&[
                ("name", json_str(&e.name)),
                ("kind", json_str(kind_name(e.kind))),
                ("size", e.size.map_or_else(|| "null".into(), |s| s.to_string())),
                ("modified", json_time(e.modified)),
            ])
        );
    } else if long {
        let kind = match e.kind {
            EntryKind::Dir => 'd',
            EntryKind::Symlink => 'l',
            EntryKind::File => '-',
            EntryKind::Other => '?',
        };
        let size = e.size.map_or_else(|| "-".into(), |s| s.to_string());
        println!("{kind} {size:>12} {} {name}", human_time(e.modified));
    } else if e.kind == EntryKind::Dir {
        println!("{name}/");
    } else {
        println!("{name}");
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Rm,
    Mkdir,
    Rmdir,
    Cat,
    Stat,
}

async fn each_path(a: PathsArgs, op: Op) -> Result<Exit, Error> {
    let ctx = Ctx::new(&a.opts)?;
    let urls = a
        .urls
        .iter()
        .map(|u| Ctx::url(u))
        .collect::<Result<Vec<_>, _>>()?;
    let (mut ok, mut failed, mut last) = (0, 0, None);
    let mut session: Option<(RemoteUrl, Remote)> = None;
    for url in &urls {
        let same = session.as_ref().is_some_and(|(u, _)| {
            u.scheme == url.scheme && u.host == url.host && u.port == url.port && u.user == url.user
        });
        if !same {
            if let Some((_, r)) = session.take() {
                r.close().await;
            }
            session = Some((url.clone(), ctx.connect(url).await?));
        }
        let Some((_, remote)) = session.as_mut() else {
            continue;
        };
        let r = match op {
            Op::Rm => remote.remove(&url.path).await,
            Op::Mkdir => remote.mkdir(&url.path).await,
            Op::Rmdir => remote.rmdir(&url.path).await,
            Op::Cat => {
                let mut out = tokio::io::stdout();
                let r = remote.get(&url.path, 0, &mut out, &mut |_| {}).await.map(|_| ());
                let _ = out.flush().await;
                r
            }
            Op::Stat => remote.stat(&url.path).await.map(|e| print_stat(&ctx, url, &e)),
        };
        match r {
            Ok(()) => ok += 1,
            Err(e) => {
                eprintln!("ferry: error: {url}: {e}");
                failed += 1;
                last = Some(e);
            }
        }
    }
    if let Some((_, r)) = session {
        r.close().await;
    }
    Ok(outcome(ok, failed, last.as_ref()))
}

fn print_stat(ctx: &Ctx, url: &RemoteUrl, e: &Entry) {
    if ctx.opts.json {
        println!(
            "{}",
            json_line(&[
                ("remote", json_str(&url.to_string())),
                ("kind", json_str(kind_name(e.kind))),
                ("size", e.size.map_or_else(|| "null".into(), |s| s.to_string())),
                ("modified", json_time(e.modified)),
            ])
        );
    } else {
        println!("path: {}", url.path.escape_debug());
        println!("kind: {}", kind_name(e.kind));
        println!("size: {}", e.size.map_or_else(|| "-".into(), |s| s.to_string()));
        println!("modified: {} UTC", human_time(e.modified));
    }
}

async fn mv(a: MvArgs) -> Result<Exit, Error> {
    let ctx = Ctx::new(&a.opts)?;
    let url = Ctx::url(&a.url)?;
    let to = match Ctx::url(&a.to) {
        Ok(t) if t.host == url.host && t.port == url.port && t.scheme == url.scheme => t.path,
        Ok(_) => {
            return Err(Error::Usage(
                "ferry mv renames within one server; the new URL names another".into(),
            ))
        }
        Err(_) => a.to.clone(),
    };
    let mut remote = ctx.connect(&url).await?;
    let r = remote.rename(&url.path, &to).await;
    remote.close().await;
    r.map(|()| Exit::Ok)
}
