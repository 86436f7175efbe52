//! `ferry shell [URL]`: an interactive session with the classic ftp commands.
//!
//! On a terminal it reads lines with rustyline (line editing, in-memory history, completion of command
//! names, remote names in the current remote directory and local file names). When standard input is
//! not a terminal it reads one command per line, prints no prompt, and the exit code says whether any
//! command failed. Every command ends with exactly one reply line on standard output: `ok: …` or
//! `error: …` (a listing or `status` prints its lines before it). Transfers go through the same code as
//! `ferry get` and `ferry put`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use clap::Args;
use ferry_client::names::{join_remote, local_component, remote_basename};
use ferry_client::url::RemoteUrl;
use ferry_client::{Error, Remote, Secret};
use ferry_proto::listing::EntryKind;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::Helper;

use super::args::ClientOptions;
use super::commands::{download, print_entry, upload};
use super::session::{Ctx, Tick};
use super::Exit;

/// `ferry shell`.
#[derive(Debug, Args)]
pub struct ShellArgs {
    /// The server (and starting directory) to connect to; without it, use `open URL`.
    pub url: Option<String>,
    #[command(flatten)]
    pub opts: ClientOptions,
}

/// Bytes per `#` mark when `hash` is on.
const HASH_BYTES: u64 = 1 << 20;

/// The commands, with their one-line help.
const COMMANDS: &[(&str, &str)] = &[
    (
        "open",
        "open URL: connect to another server (closes the current session)",
    ),
    ("user", "user NAME [PASSWORD]: log in again as NAME"),
    ("ls", "ls [PATH]: list names in a remote directory"),
    ("dir", "dir [PATH]: list a remote directory in long form"),
    ("cd", "cd PATH: change the remote directory"),
    ("lcd", "lcd [DIR]: change the local directory (default: home)"),
    ("pwd", "pwd: show the remote directory"),
    ("get", "get REMOTE [LOCAL]: download a file"),
    ("put", "put LOCAL [REMOTE]: upload a file"),
    (
        "mget",
        "mget GLOB…: download the remote files matching each pattern (* and ?)",
    ),
    (
        "mput",
        "mput GLOB…: upload the local files matching each pattern (* and ?)",
    ),
    ("mkdir", "mkdir PATH: create a remote directory"),
    ("rmdir", "rmdir PATH: remove an empty remote directory"),
    ("delete", "delete PATH: delete a remote file (also: rm)"),
    ("rename", "rename FROM TO: rename a remote file or directory"),
    ("binary", "binary: transfer bytes unchanged (TYPE I, the default)"),
    (
        "ascii",
        "ascii: FTP text mode (TYPE A): CRLF on the wire, LF in local files",
    ),
    (
        "passive",
        "passive: toggle passive (the default) and active FTP data connections",
    ),
    ("hash", "hash: toggle printing # for every MiB transferred"),
    ("status", "status: show the session's state"),
    (
        "help",
        "help [COMMAND]: show the commands, or one command's usage",
    ),
    ("quit", "quit: end the session (also: bye, exit)"),
];

/// Commands whose arguments are local names (completion).
const LOCAL_ARGS: &[&str] = &["lcd", "put", "mput"];

/// Runs the shell; the exit code is that of the last failed command, or 0.
pub fn run(runtime: &tokio::runtime::Runtime, args: ShellArgs) -> Exit {
    let ctx = match Ctx::new(&args.opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ferry: error: {e}");
            return Exit::of(&e);
        }
    };
    let hashed = Arc::new(AtomicU64::new(0));
    let mut shell = Shell {
        ctx,
        url: None,
        remote: None,
        cwd: ".".into(),
        hash: false,
        hashed: hashed.clone(),
        names: Arc::new(Mutex::new(Vec::new())),
    };
    let mut failed: Option<Exit> = None;
    // Prints the reply line; false after `quit`.
    let note = |r: Result<Reply, Error>, failed: &mut Option<Exit>| -> bool {
        match r {
            Ok(Reply::Done(msg)) => {
                println!("ok: {msg}");
                true
            }
            Ok(Reply::Quit) => {
                println!("ok: bye");
                false
            }
            Err(e) => {
                println!("error: {e}");
                *failed = Some(Exit::of(&e));
                true
            }
        }
    };
    if let Some(u) = &args.url {
        let r = runtime.block_on(shell.open(u));
        note(r, &mut failed);
    }
    if std::io::stdin().is_terminal() {
        let config = rustyline::Config::builder()
            .auto_add_history(false)
            .max_history_size(super::history::MAX_ENTRIES)
            .map(|b| b.build())
            .unwrap_or_default();
        let mut history = rustyline::history::MemHistory::with_config(&config);
        let history_file = super::history::path();
        for line in history_file
            .as_deref()
            .map(super::history::load)
            .unwrap_or_default()
        {
            let _ = rustyline::history::History::add(&mut history, &line);
        }
        let mut editor = match rustyline::Editor::<ShellHelper, rustyline::history::MemHistory>::with_history(
            config, history,
        ) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("ferry: error: cannot read the terminal: {e}");
                return Exit::Fatal;
            }
        };
        editor.set_helper(Some(ShellHelper {
            names: shell.names.clone(),
            files: FilenameCompleter::new(),
        }));
        loop {
            match editor.readline("ferry> ") {
                Ok(line) => {
                    // A password typed after `user`, or in a URL, stays out of the history.
                    if super::history::keep(&line) {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    let Some(r) = shell.run_line(runtime, &line, &mut failed) else {
                        continue;
                    };
                    let _ = std::io::stdout().flush();
                    if !note(r, &mut failed) {
                        break;
                    }
                }
                Err(ReadlineError::Interrupted) => {}
                Err(ReadlineError::Eof) => break,
                Err(e) => {
                    eprintln!("ferry: error: reading the terminal: {e}");
                    failed = Some(Exit::Fatal);
                    break;
                }
            }
        }
        if let Some(path) = &history_file {
            if let Err(e) = super::history::save(path, editor.history()) {
                eprintln!(
                    "ferry: warning: cannot save the shell history to {}: {e}",
                    path.display()
                );
            }
        }
    } else {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        let mut line = String::new();
        loop {
            line.clear();
            match input.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("ferry: error: reading standard input: {e}");
                    failed = Some(Exit::Fatal);
                    break;
                }
            }
            let Some(r) = shell.run_line(runtime, &line, &mut failed) else {
                continue;
            };
            let keep_going = note(r, &mut failed);
            let _ = std::io::stdout().flush();
            if !keep_going {
                break;
            }
        }
    }
    runtime.block_on(shell.close());
    drop(hashed);
    failed.unwrap_or(Exit::Ok)
}

/// What a command answers.
enum Reply {
    /// Done; the text of the `ok:` line.
    Done(String),
    /// `quit`.
    Quit,
}

struct Shell {
    ctx: Ctx,
    /// The server of this session (kept after a lost connection, to reconnect).
    url: Option<RemoteUrl>,
    remote: Option<Remote>,
    /// The remote directory, tracked here and sent as part of every path.
    cwd: String,
    hash: bool,
    /// Bytes counted by the current transfer's `#` marks.
    hashed: Arc<AtomicU64>,
    /// Names in the remote directory, for completion.
    names: Arc<Mutex<Vec<String>>>,
}

fn usage(msg: &str) -> Error {
    Error::Usage(msg.to_owned())
}

impl Shell {
    /// Runs one input line until it is done or Ctrl-C interrupts it (then unfinished downloads are
    /// removed, the connection is dropped, and `None` is returned after printing the reply).
    fn run_line(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        line: &str,
        failed: &mut Option<Exit>,
    ) -> Option<Result<Reply, Error>> {
        let r = runtime.block_on(async {
            tokio::select! {
                r = self.line(line) => Ok(r),
                _ = tokio::signal::ctrl_c() => Err(()),
            }
        });
        match r {
            Ok(r) => r,
            Err(()) => {
                let n = super::commands::remove_parts();
                self.remote = None;
                println!("error: interrupted; {n} unfinished download(s) removed");
                *failed = Some(Exit::Interrupted);
                None
            }
        }
    }

    /// Runs one input line; `None` for a blank line or a comment.
    async fn line(&mut self, line: &str) -> Option<Result<Reply, Error>> {
        let words = match split_words(line) {
            Ok(w) => w,
            Err(e) => return Some(Err(e)),
        };
        let (cmd, args) = words.split_first()?;
        if cmd.starts_with('#') {
            return None;
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = self.command(cmd, &args).await;
        if let Err(e) = &r {
            // The connection is gone: reconnect on the next command that needs it.
            if e.is_retryable() {
                if let Some(r) = self.remote.take() {
                    drop(r);
                }
            }
        }
        Some(r)
    }

    async fn command(&mut self, cmd: &str, args: &[&str]) -> Result<Reply, Error> {
        let done = |s: String| Ok(Reply::Done(s));
        match (cmd, args) {
            ("quit" | "bye" | "exit", []) => Ok(Reply::Quit),
            ("help" | "?", []) => {
                for (name, _) in COMMANDS {
                    print!("{name} ");
                }
                println!();
                done("`help COMMAND` shows its usage".into())
            }
            ("help" | "?", [c]) => match COMMANDS.iter().find(|(n, _)| n == c) {
                Some((_, h)) => done((*h).to_owned()),
                None => Err(usage(&format!("no command `{c}`; `help` lists them"))),
            },
            ("open", [u]) => self.open(u).await,
            ("user", [name, rest @ ..]) if rest.len() <= 1 => {
                let mut url = self.url.clone().ok_or_else(not_connected)?;
                url.user = Some((*name).to_owned());
                url.password = rest.first().map(|p| Secret::new(*p));
                self.connect(url).await
            }
            ("ls" | "dir", [] | [_]) => {
                let path = self.path(args.first().copied().unwrap_or(""));
                let ctx = self.ctx.clone();
                let remote = self.remote().await?;
                let mut entries = match remote.stat(&path).await {
                    Ok(e) if e.kind != EntryKind::Dir => vec![e],
                    _ => remote.list(&path).await?,
                };
                entries.sort_by(|x, y| x.name.cmp(&y.name));
                for e in &entries {
                    print_entry(&ctx, e, cmd == "dir");
                }
                done(format!("{} entries", entries.len()))
            }
            ("cd", [p]) => {
                let path = self.path(p);
                let remote = self.remote().await?;
                let e = remote.stat(&path).await?;
                if e.kind != EntryKind::Dir {
                    return Err(usage(&format!("{} is not a directory", path.escape_debug())));
                }
                self.cwd = path;
                self.refresh_names().await;
                done(format!("remote directory is now {}", self.cwd.escape_debug()))
            }
            ("lcd", [] | [_]) => {
                let dir = match args.first() {
                    Some(d) => PathBuf::from(d),
                    None => super::creds::home().ok_or_else(|| usage("no home directory ($HOME)"))?,
                };
                std::env::set_current_dir(&dir)
                    .map_err(|e| Error::local(format!("changing to {}", dir.display()), e))?;
                let now = std::env::current_dir().unwrap_or(dir);
                done(format!("local directory is now {}", now.display()))
            }
            ("pwd", []) => {
                self.remote().await?;
                done(format!("remote directory is {}", self.cwd.escape_debug()))
            }
            ("get", [r] | [r, _]) => {
                let path = self.path(r);
                let name = remote_basename(&path)
                    .ok_or_else(|| usage(&format!("{} names a directory", path.escape_debug())))?;
                let local = match args.get(1) {
                    Some(l) if Path::new(l).is_dir() => Path::new(l).join(name),
                    Some(l) => PathBuf::from(l),
                    None => PathBuf::from(name),
                };
                let n = self.download(&path, &local, None).await?;
                done(format!("{} bytes received into {}", n, local.display()))
            }
            ("put", [l] | [l, _]) => {
                let local = PathBuf::from(l);
                let name = local
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| usage(&format!("{l} is not a file name")))?;
                let path = match args.get(1) {
                    Some(r) => self.path(r),
                    None => self.path(&name),
                };
                let n = self.upload(&local, &path).await?;
                self.refresh_names().await;
                done(format!("{n} bytes sent to {}", path.escape_debug()))
            }
            ("mget", [_, ..]) => self.mget(args).await,
            ("mput", [_, ..]) => self.mput(args).await,
            ("mkdir", [p]) => {
                let path = self.path(p);
                self.remote().await?.mkdir(&path).await?;
                self.refresh_names().await;
                done(format!("created {}", path.escape_debug()))
            }
            ("rmdir", [p]) => {
                let path = self.path(p);
                self.remote().await?.rmdir(&path).await?;
                self.refresh_names().await;
                done(format!("removed {}", path.escape_debug()))
            }
            ("delete" | "rm", [p]) => {
                let path = self.path(p);
                self.remote().await?.remove(&path).await?;
                self.refresh_names().await;
                done(format!("deleted {}", path.escape_debug()))
            }
            ("rename", [from, to]) => {
                let (from, to) = (self.path(from), self.path(to));
                self.remote().await?.rename(&from, &to).await?;
                self.refresh_names().await;
                done(format!(
                    "renamed {} to {}",
                    from.escape_debug(),
                    to.escape_debug()
                ))
            }
            ("binary" | "image", []) => {
                self.set_ascii(false).await?;
                done("binary mode: bytes are transferred unchanged".into())
            }
            ("ascii", []) => {
                self.set_ascii(true).await?;
                done("ascii mode: text with CRLF on the wire, LF in local files".into())
            }
            ("passive", []) => {
                let active = !self.ctx.opts.active;
                self.ctx.set_active(active);
                if let Some(r) = self.remote.as_mut() {
                    r.set_active(active);
                }
                done(if active {
                    "passive mode off: the server connects back for data (EPRT/PORT)".into()
                } else {
                    "passive mode on (EPSV, then PASV)".into()
                })
            }
            ("hash", []) => {
                self.hash = !self.hash;
                self.set_tick();
                done(format!(
                    "hash marks {} (# per MiB)",
                    if self.hash { "on" } else { "off" }
                ))
            }
            ("status", []) => {
                match &self.url {
                    Some(u) => println!(
                        "server: {} ({})",
                        u.authority(),
                        if self.remote.is_some() {
                            "connected"
                        } else {
                            "not connected"
                        }
                    ),
                    None => println!("server: none (use `open URL`)"),
                }
                println!("remote directory: {}", self.cwd.escape_debug());
                if let Ok(d) = std::env::current_dir() {
                    println!("local directory: {}", d.display());
                }
                println!(
                    "mode: {}; passive: {}; hash: {}",
                    if self.ctx.opts.ascii { "ascii" } else { "binary" },
                    if self.ctx.opts.active { "off" } else { "on" },
                    if self.hash { "on" } else { "off" }
                );
                done("status shown".into())
            }
            (c, _)
                if COMMANDS.iter().any(|(n, _)| *n == c)
                    || matches!(c, "bye" | "exit" | "rm" | "image" | "?") =>
            {
                let help = COMMANDS
                    .iter()
                    .find(|(n, _)| *n == c)
                    .map_or("see `help`", |(_, h)| h);
                Err(usage(&format!("usage: {help}")))
            }
            (c, _) => Err(usage(&format!(
                "unknown command `{}`; `help` lists the commands",
                c.escape_debug()
            ))),
        }
    }

    /// `ascii`/`binary`: the mode of this session (if any) and of sessions opened later.
    async fn set_ascii(&mut self, ascii: bool) -> Result<(), Error> {
        if let Some(r) = self.remote.as_mut() {
            r.set_ascii(ascii).await?;
        }
        self.ctx.opts.ascii = ascii;
        Ok(())
    }

    /// `open URL`.
    async fn open(&mut self, u: &str) -> Result<Reply, Error> {
        let url = Ctx::url(u)?;
        self.connect(url).await
    }

    /// Replaces the session with a new one to `url`.
    async fn connect(&mut self, url: RemoteUrl) -> Result<Reply, Error> {
        if let Some(r) = self.remote.take() {
            r.close().await;
        }
        self.url = None;
        let mut remote = self.ctx.connect(&url).await?;
        let start = if url.path.is_empty() {
            ".".to_owned()
        } else {
            url.path.clone()
        };
        // A URL naming a file starts in its directory.
        self.cwd = match remote.stat(&start).await {
            Ok(e) if e.kind != EntryKind::Dir => parent(&start),
            _ => start,
        };
        let who = super::creds::resolve(&url, &self.ctx.opts).user;
        let msg = format!("connected to {} as {who}", url.authority());
        self.remote = Some(remote);
        self.url = Some(url);
        self.refresh_names().await;
        Ok(Reply::Done(msg))
    }

    /// The session, reconnecting if the connection was lost.
    async fn remote(&mut self) -> Result<&mut Remote, Error> {
        if self.remote.is_none() {
            let url = self.url.clone().ok_or_else(not_connected)?;
            self.remote = Some(self.ctx.connect(&url).await?);
        }
        self.remote.as_mut().ok_or_else(not_connected)
    }

    async fn close(&mut self) {
        if let Some(r) = self.remote.take() {
            r.close().await;
        }
    }

    /// `arg` resolved against the remote directory.
    fn path(&self, arg: &str) -> String {
        if arg.is_empty() {
            return self.cwd.clone();
        }
        if arg.starts_with('/') {
            normalize(arg)
        } else {
            normalize(&join_remote(&self.cwd, arg))
        }
    }

    fn set_tick(&mut self) {
        self.ctx.tick = self.hash.then(|| {
            let hashed = self.hashed.clone();
            Tick(Arc::new(move |n: u64| {
                let before = hashed.fetch_add(n, Ordering::Relaxed);
                let marks = (before + n) / HASH_BYTES - before / HASH_BYTES;
                if marks > 0 {
                    let mut out = std::io::stdout();
                    let _ = out.write_all("#".repeat(usize::try_from(marks).unwrap_or(1)).as_bytes());
                    let _ = out.flush();
                }
            }))
        });
    }

    /// Ends the line of `#` marks of a finished transfer.
    fn end_hash(&self) {
        if self.hashed.swap(0, Ordering::Relaxed) >= HASH_BYTES {
            println!();
        }
    }

    async fn download(&mut self, path: &str, local: &Path, size: Option<u64>) -> Result<u64, Error> {
        let ctx = self.ctx.clone();
        self.hashed.store(0, Ordering::Relaxed);
        let r = download(&ctx, self.remote().await?, path, local, false, size).await;
        self.end_hash();
        r
    }

    async fn upload(&mut self, local: &Path, path: &str) -> Result<u64, Error> {
        let ctx = self.ctx.clone();
        self.hashed.store(0, Ordering::Relaxed);
        let r = upload(&ctx, self.remote().await?, local, path, false).await;
        self.end_hash();
        r
    }

    /// `mget GLOB…`: each pattern's directory part is listed; matching files land in the local
    /// directory under their listed names (which must be plain file names).
    async fn mget(&mut self, patterns: &[&str]) -> Result<Reply, Error> {
        let mut jobs = Vec::new();
        for pattern in patterns {
            let full = self.path(pattern);
            let (dir, glob) = match full.rfind('/') {
                Some(0) => ("/".to_owned(), full[1..].to_owned()),
                Some(i) => (full[..i].to_owned(), full[i + 1..].to_owned()),
                None => (".".to_owned(), full.clone()),
            };
            let entries = self.remote().await?.list(&dir).await?;
            let mut matched: Vec<_> = entries
                .into_iter()
                .filter(|e| e.kind == EntryKind::File)
                .filter(|e| ferry_proto::glob::matches(glob.as_bytes(), &e.raw_name))
                .collect();
            if matched.is_empty() {
                return Err(Error::NotFound(format!(
                    "no remote file matches {}",
                    pattern.escape_debug()
                )));
            }
            matched.sort_by(|a, b| a.name.cmp(&b.name));
            for e in matched {
                let name = local_component(&e.raw_name)?.to_owned();
                jobs.push((join_remote(&dir, &name), name, e.size));
            }
        }
        let size = jobs.iter().filter_map(|(_, _, s)| *s).sum();
        self.start_total(jobs.len(), size);
        let (mut files, mut bytes) = (0usize, 0u64);
        let mut result = Ok(());
        for (remote, name, size) in jobs {
            match self.download(&remote, Path::new(&name), size).await {
                Ok(n) => {
                    files += 1;
                    bytes += n;
                    self.ctx.file_done();
                }
                Err(err) => {
                    result = Err(with_name(err, &name));
                    break;
                }
            }
        }
        self.end_total();
        result.map(|()| Reply::Done(format!("{files} files received ({bytes} bytes)")))
    }

    /// `mput GLOB…`: matching local files go into the remote directory.
    async fn mput(&mut self, patterns: &[&str]) -> Result<Reply, Error> {
        let mut jobs = Vec::new();
        for pattern in patterns {
            let p = Path::new(pattern);
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let glob = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut matched = Vec::new();
            let read =
                std::fs::read_dir(&dir).map_err(|e| Error::local(format!("reading {}", dir.display()), e))?;
            for entry in read.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if entry.path().is_file() && ferry_proto::glob::matches(glob.as_bytes(), name.as_bytes()) {
                    matched.push(name);
                }
            }
            if matched.is_empty() {
                return Err(Error::NotFound(format!("no local file matches {pattern}")));
            }
            matched.sort();
            for name in matched {
                jobs.push((dir.join(&name), name));
            }
        }
        let size = jobs
            .iter()
            .filter_map(|(local, _)| std::fs::metadata(local).ok())
            .map(|m| m.len())
            .sum();
        self.start_total(jobs.len(), size);
        let (mut files, mut bytes) = (0usize, 0u64);
        let mut result = Ok(());
        for (local, name) in jobs {
            let path = self.path(&name);
            match self.upload(&local, &path).await {
                Ok(n) => {
                    files += 1;
                    bytes += n;
                    self.ctx.file_done();
                }
                Err(err) => {
                    result = Err(with_name(err, &name));
                    break;
                }
            }
        }
        self.end_total();
        self.refresh_names().await;
        result.map(|()| Reply::Done(format!("{files} files sent ({bytes} bytes)")))
    }

    /// Shows a total bar over the files of an `mget`/`mput` (on a terminal, for more than one file).
    fn start_total(&mut self, files: usize, bytes: u64) {
        let quiet = self.ctx.opts.quiet || self.ctx.opts.json;
        self.ctx.total = Some(super::output::Total::new(files, bytes, quiet));
    }

    fn end_total(&mut self) {
        if let Some(t) = self.ctx.total.take() {
            t.finish();
        }
    }

    /// Re-reads the remote directory's names for completion (best effort).
    async fn refresh_names(&mut self) {
        let cwd = self.cwd.clone();
        let names = match self.remote.as_mut() {
            Some(r) => r.list(&cwd).await.unwrap_or_default(),
            None => Vec::new(),
        };
        let names: Vec<String> = names
            .into_iter()
            .filter_map(|e| {
                let n = local_component(&e.raw_name).ok()?.to_owned();
                Some(if e.kind == EntryKind::Dir {
                    format!("{n}/")
                } else {
                    n
                })
            })
            .collect();
        if let Ok(mut cache) = self.names.lock() {
            *cache = names;
        }
    }
}

fn not_connected() -> Error {
    usage("not connected; use `open URL` first")
}

/// Puts the file name in front of a transfer error of `mget`/`mput`.
fn with_name(e: Error, name: &str) -> Error {
    match e {
        Error::Usage(m) => Error::Usage(format!("{name}: {m}")),
        Error::NotFound(m) => Error::NotFound(format!("{name}: {m}")),
        other => other,
    }
}

/// The directory part of a remote path.
fn parent(path: &str) -> String {
    match path.trim_end_matches('/').rfind('/') {
        Some(0) => "/".into(),
        Some(i) => path[..i].into(),
        None => ".".into(),
    }
}

/// Resolves `.` and `..` components lexically; keeps an absolute path absolute.
fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    match (absolute, parts.is_empty()) {
        (true, _) => format!("/{}", parts.join("/")),
        (false, true) => ".".into(),
        (false, false) => parts.join("/"),
    }
}

/// Splits a command line into words: whitespace separates; `'…'` and `"…"` quote; `\` escapes the
/// next character outside single quotes.
fn split_words(line: &str) -> Result<Vec<String>, Error> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.trim_end_matches(['\r', '\n']).chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(usage("unclosed ' quote")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => cur.push(chars.next().ok_or_else(|| usage("unclosed \" quote"))?),
                        Some(c) => cur.push(c),
                        None => return Err(usage("unclosed \" quote")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Completion for the terminal: command names first, then remote or local names.
struct ShellHelper {
    names: Arc<Mutex<Vec<String>>>,
    files: FilenameCompleter,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = line.get(..pos).unwrap_or(line);
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &before[start..];
        let pair = |s: &str| Pair {
            display: s.to_owned(),
            replacement: s.to_owned(),
        };
        if start == 0 {
            let found = COMMANDS
                .iter()
                .filter(|(n, _)| n.starts_with(word))
                .map(|(n, _)| pair(n))
                .collect();
            return Ok((0, found));
        }
        let cmd = before.split_whitespace().next().unwrap_or("");
        if LOCAL_ARGS.contains(&cmd) {
            return self.files.complete(line, pos, ctx);
        }
        let names = self.names.lock().map(|n| n.clone()).unwrap_or_default();
        let found = names
            .iter()
            .filter(|n| n.starts_with(word))
            .map(|n| pair(n))
            .collect();
        Ok((start, found))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_quotes() {
        assert_eq!(
            split_words("put 'a b.txt' \"c\\\"d\" e\\ f\n").expect("words"),
            ["put", "a b.txt", "c\"d", "e f"]
        );
        assert!(split_words("get 'open").is_err());
        assert!(split_words("   ").expect("words").is_empty());
    }

    #[test]
    fn paths_resolve_lexically() {
        assert_eq!(normalize("/a/./b/../c"), "/a/c");
        assert_eq!(normalize("/.."), "/");
        assert_eq!(normalize("./a/.."), ".");
        assert_eq!(normalize("../x"), "../x");
        assert_eq!(parent("/a/b.txt"), "/a");
        assert_eq!(parent("/b.txt"), "/");
        assert_eq!(parent("b.txt"), ".");
    }
}
