//! SFTP requests: parsed (and queued on their handle) in arrival order by the session loop, then
//! run concurrently against the user's storage. Every path is normalised once into a [`VPath`]
//! (relative paths start at the root, `..` stops there), and every operation goes through the
//! policy layer ([`ferry_vfs::UserFs`]), which checks the user's permissions with the same rule as
//! FTP.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ferry_proto::listing::{write_list_line, Entry};
use ferry_vfs::{
    Capabilities, EntryKind, ErrorKind, Metadata, OpenMode, PathError, PositionalFile, Upload, VPath,
};

use super::handles::{DirHandle, FileHandle, Handle, ReplyOrder, Waiting};
use super::stream::{Start, StreamFile};
use super::wire::{self, kind, mode_bits, open_flags, Attrs, Malformed, Reader, Status, Writer};
use super::Ctx;
use crate::limits::{
    MAX_EXTENSION_NAME, MAX_HANDLES, MAX_PACKET_LEN, MAX_READ_LEN, MAX_WRITE_LEN, READDIR_BATCH,
};

/// Extensions announced in VERSION (name, version): only those the back-end can serve.
pub(crate) fn extensions(caps: Capabilities) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::with_capacity(4);
    if caps.rename {
        out.push(("posix-rename@openssh.com", "1"));
    }
    if caps.space {
        out.push(("statvfs@openssh.com", "2"));
    }
    // Handles of back-ends without random access store the file on CLOSE; nothing to flush before.
    if caps.random_write {
        out.push(("fsync@openssh.com", "1"));
    }
    out.push(("limits@openssh.com", "1"));
    out
}

/// `ST_NOSUID` in statvfs flags.
const ST_NOSUID: u64 = 2;
/// `ST_RDONLY` in statvfs flags.
const ST_RDONLY: u64 = 1;

/// One parsed request, ready to run.
#[derive(Debug)]
pub(crate) struct Request {
    id: u32,
    op: Op,
    /// For requests on a file handle: the place of the reply in the handle's reply order.
    pub(crate) order: Option<ReplyOrder>,
}

#[derive(Debug)]
enum Op {
    /// The reply is known without touching storage (bad handle, bad path, unsupported …).
    Reply(Bytes),
    Open {
        path: VPath,
        flags: u32,
        attrs: Attrs,
    },
    Close {
        handle: Arc<Handle>,
        turn: Option<Waiting>,
    },
    Read {
        handle: Arc<Handle>,
        offset: u64,
        len: usize,
        turn: Waiting,
        range: (u64, u64, bool),
    },
    Write {
        handle: Arc<Handle>,
        offset: u64,
        data: Bytes,
        turn: Waiting,
        range: (u64, u64, bool),
    },
    Stat {
        path: VPath,
    },
    Fstat {
        handle: Arc<Handle>,
        turn: Waiting,
    },
    SetStat {
        path: VPath,
        attrs: Attrs,
    },
    FSetStat {
        handle: Arc<Handle>,
        attrs: Attrs,
        turn: Waiting,
    },
    OpenDir {
        path: VPath,
    },
    ReadDir {
        handle: Arc<Handle>,
    },
    Remove {
        path: VPath,
    },
    Mkdir {
        path: VPath,
        attrs: Attrs,
    },
    Rmdir {
        path: VPath,
    },
    RealPath {
        path: VPath,
    },
    Rename {
        from: VPath,
        to: VPath,
        replace: bool,
    },
    StatVfs {
        path: VPath,
    },
    Fsync {
        handle: Arc<Handle>,
        turn: Waiting,
    },
    Limits,
    CheckFile(super::checkfile::CheckFile),
}

/// A refusal known while parsing.
pub(super) struct Refused(pub(super) Status, pub(super) Cow<'static, str>);

impl From<PathError> for Refused {
    fn from(e: PathError) -> Self {
        match e {
            PathError::TooLong => Refused(Status::BadMessage, Cow::Borrowed("path too long")),
            PathError::Nul => Refused(Status::BadMessage, Cow::Borrowed("NUL byte in path")),
            PathError::NameTooLong => Refused(Status::Failure, Cow::Borrowed("file name too long")),
        }
    }
}

impl Request {
    /// Parses a request packet (type byte first). `Ok(None)` for a second INIT.
    pub(crate) fn parse(packet: Bytes, ctx: &Ctx) -> Result<Option<Request>, Malformed> {
        let mut r = Reader::new(&packet);
        let kind = r.u8()?;
        if kind == kind::INIT {
            return Ok(None);
        }
        let id = r.u32()?;
        let op = match parse_op(kind, &mut r, &packet, ctx)? {
            Ok(op) => op,
            Err(Refused(status, message)) => Op::Reply(wire::status_with(id, status, &message)),
        };
        let order = op.file().map(FileHandle::reply_order);
        Ok(Some(Request { id, op, order }))
    }

    /// Runs the request and returns its reply (and its place in the reply order).
    pub(crate) async fn run(self, ctx: &Ctx) -> (Bytes, Option<ReplyOrder>) {
        let id = self.id;
        let reply = match run_op(id, self.op, ctx).await {
            Ok(reply) => reply,
            Err(Refused(status, message)) => wire::status_with(id, status, &message),
        };
        (reply, self.order)
    }
}

impl Op {
    /// The file handle the request works on, if any.
    fn file(&self) -> Option<&FileHandle> {
        let handle = match self {
            Op::Close { handle, .. }
            | Op::Read { handle, .. }
            | Op::Write { handle, .. }
            | Op::Fstat { handle, .. }
            | Op::FSetStat { handle, .. }
            | Op::Fsync { handle, .. } => handle,
            _ => return None,
        };
        match &**handle {
            Handle::File(file) => Some(file),
            Handle::Dir(_) => None,
        }
    }
}

/// A client path normalised from the root (the working directory of an SFTP session).
fn resolved(r: &mut Reader<'_>) -> Result<Result<VPath, Refused>, Malformed> {
    Ok(VPath::parse(r.string()?).map_err(Refused::from))
}

fn handle_of(r: &mut Reader<'_>, ctx: &Ctx) -> Result<Result<Arc<Handle>, Refused>, Malformed> {
    let name = r.string()?;
    Ok(ctx
        .table()
        .get(name)
        .ok_or(Refused(Status::Failure, Cow::Borrowed("invalid handle"))))
}

/// Parses the body of a request of type `kind`. The outer `Result` is a malformed packet (the
/// session ends), the inner one a request refused at once.
fn parse_op(
    kind: u8,
    r: &mut Reader<'_>,
    packet: &Bytes,
    ctx: &Ctx,
) -> Result<Result<Op, Refused>, Malformed> {
    Ok(Ok(match kind {
        kind::OPEN => {
            let path = resolved(r)?;
            let flags = r.u32()?;
            let attrs = r.attrs()?;
            match path {
                Ok(path) => Op::Open { path, flags, attrs },
                Err(e) => return Ok(Err(e)),
            }
        }
        kind::CLOSE => {
            let name = r.string()?;
            let Some(handle) = ctx.table().remove(name) else {
                return Ok(Err(Refused(Status::Failure, Cow::Borrowed("invalid handle"))));
            };
            let turn = match &*handle {
                Handle::File(f) => Some(f.exclusive()),
                Handle::Dir(_) => None,
            };
            Op::Close { handle, turn }
        }
        kind::READ | kind::WRITE => {
            let handle = handle_of(r, ctx)?;
            let offset = r.u64()?;
            let (len, data) = if kind == kind::READ {
                let len = (r.u32()? as usize).min(MAX_READ_LEN);
                (len, None)
            } else {
                let data = r.string()?;
                if data.len() > MAX_WRITE_LEN {
                    return Ok(Err(Refused(Status::BadMessage, Cow::Borrowed("write too long"))));
                }
                // Zero-copy view of the data inside the packet.
                let start = packet.len() - r.rest().len() - data.len();
                (data.len(), Some(packet.slice(start..start + data.len())))
            };
            let handle = match handle {
                Ok(h) => h,
                Err(e) => return Ok(Err(e)),
            };
            let Handle::File(file) = &*handle else {
                return Ok(Err(Refused(Status::Failure, Cow::Borrowed("not a file handle"))));
            };
            let (turn, range) = file.io(offset, len as u64, data.is_some());
            match data {
                None => Op::Read {
                    handle,
                    offset,
                    len,
                    turn,
                    range,
                },
                Some(data) => Op::Write {
                    handle,
                    offset,
                    data,
                    turn,
                    range,
                },
            }
        }
        kind::LSTAT | kind::STAT => match resolved(r)? {
            Ok(path) => Op::Stat { path },
            Err(e) => return Ok(Err(e)),
        },
        kind::FSTAT | kind::FSETSTAT => {
            let handle = handle_of(r, ctx)?;
            let attrs = if kind == kind::FSETSTAT {
                Some(r.attrs()?)
            } else {
                None
            };
            let handle = match handle {
                Ok(h) => h,
                Err(e) => return Ok(Err(e)),
            };
            let Handle::File(file) = &*handle else {
                return Ok(Err(Refused(Status::Failure, Cow::Borrowed("not a file handle"))));
            };
            let turn = file.exclusive();
            match attrs {
                None => Op::Fstat { handle, turn },
                Some(attrs) => Op::FSetStat { handle, attrs, turn },
            }
        }
        kind::SETSTAT | kind::MKDIR => {
            let path = resolved(r)?;
            let attrs = r.attrs()?;
            match (path, kind) {
                (Ok(path), kind::SETSTAT) => Op::SetStat { path, attrs },
                (Ok(path), _) => Op::Mkdir { path, attrs },
                (Err(e), _) => return Ok(Err(e)),
            }
        }
        kind::OPENDIR | kind::REMOVE | kind::RMDIR | kind::REALPATH => match resolved(r)? {
            Ok(path) => match kind {
                kind::OPENDIR => Op::OpenDir { path },
                kind::REMOVE => Op::Remove { path },
                kind::RMDIR => Op::Rmdir { path },
                _ => Op::RealPath { path },
            },
            Err(e) => return Ok(Err(e)),
        },
        kind::READDIR => match handle_of(r, ctx)? {
            Ok(handle) => Op::ReadDir { handle },
            Err(e) => return Ok(Err(e)),
        },
        kind::RENAME => {
            let (from, to) = (resolved(r)?, resolved(r)?);
            match (from, to) {
                (Ok(from), Ok(to)) => Op::Rename {
                    from,
                    to,
                    replace: false,
                },
                (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
            }
        }
        kind::READLINK => {
            let _ = resolved(r)?;
            return Ok(Err(Refused(
                Status::OpUnsupported,
                Cow::Borrowed("symbolic links are not supported"),
            )));
        }
        kind::SYMLINK => {
            return Ok(Err(Refused(
                Status::PermissionDenied,
                Cow::Borrowed("symbolic link creation is disabled"),
            )));
        }
        kind::EXTENDED => return parse_extended(r, ctx),
        _ => {
            return Ok(Err(Refused(
                Status::OpUnsupported,
                Cow::Borrowed("unknown request type"),
            )))
        }
    }))
}

fn parse_extended(r: &mut Reader<'_>, ctx: &Ctx) -> Result<Result<Op, Refused>, Malformed> {
    let name = r.string()?;
    if name.len() > MAX_EXTENSION_NAME {
        return Ok(Err(Refused(
            Status::OpUnsupported,
            Cow::Borrowed("unknown extension"),
        )));
    }
    Ok(Ok(match name {
        b"posix-rename@openssh.com" => {
            let (from, to) = (resolved(r)?, resolved(r)?);
            match (from, to) {
                (Ok(from), Ok(to)) => Op::Rename {
                    from,
                    to,
                    replace: true,
                },
                (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
            }
        }
        b"statvfs@openssh.com" => match resolved(r)? {
            Ok(path) => Op::StatVfs { path },
            Err(e) => return Ok(Err(e)),
        },
        b"fsync@openssh.com" => {
            let handle = match handle_of(r, ctx)? {
                Ok(h) => h,
                Err(e) => return Ok(Err(e)),
            };
            let Handle::File(file) = &*handle else {
                return Ok(Err(Refused(Status::Failure, Cow::Borrowed("not a file handle"))));
            };
            let turn = file.exclusive();
            Op::Fsync { handle, turn }
        }
        b"limits@openssh.com" => Op::Limits,
        name if super::checkfile::is_check_file(name) => match super::checkfile::parse(name, r, ctx)? {
            Ok(c) => Op::CheckFile(c),
            Err(e) => return Ok(Err(e)),
        },
        b"hardlink@openssh.com" => {
            return Ok(Err(Refused(
                Status::OpUnsupported,
                Cow::Borrowed("hard links are not supported"),
            )));
        }
        _ => {
            return Ok(Err(Refused(
                Status::OpUnsupported,
                Cow::Borrowed("unknown extension"),
            )))
        }
    }))
}

/// The largest reply the request `packet` (type byte first) can produce, for the session's
/// in-progress budget: READ data, a READDIR batch, a REALPATH name; a status or attributes else.
pub(crate) fn reply_bound(packet: &[u8]) -> usize {
    /// Length, type, id, string length: the DATA header.
    const DATA_HEADER: usize = 13;
    /// A status with its message, attributes, a handle, statvfs or limits.
    const SMALL: usize = 1024;
    let mut r = Reader::new(packet);
    match r.u8() {
        Ok(kind::READ) => {
            let len = (|| {
                r.u32()?;
                r.string()?;
                r.u64()?;
                r.u32()
            })();
            len.map_or(SMALL, |len| (len as usize).min(MAX_READ_LEN) + DATA_HEADER)
        }
        // Names of at most 255 bytes, their `ls -l` lines and attributes.
        Ok(kind::READDIR) => READDIR_BATCH * 1024,
        Ok(kind::REALPATH) => 2 * crate::limits::MAX_PATH_LEN + SMALL,
        Ok(kind::EXTENDED) => {
            let name = (|| {
                r.u32()?;
                r.string()
            })();
            match name {
                Ok(name) if super::checkfile::is_check_file(name) => {
                    super::checkfile::MAX_DIGEST_BYTES + SMALL
                }
                _ => SMALL,
            }
        }
        _ => SMALL,
    }
}

/// Maps a storage error to a status and its message (the back-end's detail if it gave one).
pub(super) fn fs_error(e: ferry_vfs::Error) -> Refused {
    let kind = e.kind();
    let status = match kind {
        ErrorKind::NotFound | ErrorKind::NotADirectory => Status::NoSuchFile,
        ErrorKind::PermissionDenied => Status::PermissionDenied,
        ErrorKind::Unsupported => Status::OpUnsupported,
        ErrorKind::AlreadyExists
        | ErrorKind::IsADirectory
        | ErrorKind::DirectoryNotEmpty
        | ErrorKind::InvalidName
        | ErrorKind::QuotaExceeded
        | ErrorKind::OffsetOutOfRange
        | ErrorKind::MoveIntoItself
        | ErrorKind::Transient
        | ErrorKind::TimedOut
        | ErrorKind::Io => Status::Failure,
    };
    match e.detail_text() {
        Some(detail) => Refused(status, Cow::Owned(detail.to_owned())),
        None => Refused(status, Cow::Borrowed(kind.describe())),
    }
}

async fn run_op(id: u32, op: Op, ctx: &Ctx) -> Result<Bytes, Refused> {
    let fs = &ctx.fs;
    let ok = || wire::status(id, Status::Ok);
    match op {
        Op::Reply(reply) => Ok(reply),
        Op::Open { path, flags, attrs } => open(id, ctx, path, flags, attrs).await,
        Op::Close { handle, turn } => {
            if let Some(turn) = turn {
                let _turn = turn.turn().await;
                if let Handle::File(f) = &*handle {
                    f.file.commit().await.map_err(fs_error)?;
                }
            }
            Ok(ok())
        }
        Op::Read {
            handle,
            offset,
            len,
            turn,
            range,
        } => {
            let Handle::File(file) = &*handle else {
                return Err(Refused(Status::Failure, Cow::Borrowed("not a file handle")));
            };
            let _turn = turn.turn().await;
            let result = if file.readable {
                file.file.read_at(offset, len).await.map_err(fs_error)
            } else {
                Err(Refused(
                    Status::PermissionDenied,
                    Cow::Borrowed("handle not open for reading"),
                ))
            };
            file.done(range);
            let data = result?;
            if data.is_empty() && len > 0 {
                return Ok(wire::status(id, Status::Eof));
            }
            let mut w = Writer::new(kind::DATA, Some(id), data.len() + 4);
            w.string(&data);
            Ok(w.finish())
        }
        Op::Write {
            handle,
            offset,
            data,
            turn,
            range,
        } => {
            let Handle::File(file) = &*handle else {
                return Err(Refused(Status::Failure, Cow::Borrowed("not a file handle")));
            };
            let _turn = turn.turn().await;
            let result = if file.writable {
                file.file.write_at(offset, data.to_vec()).await.map_err(fs_error)
            } else {
                Err(Refused(
                    Status::PermissionDenied,
                    Cow::Borrowed("handle not open for writing"),
                ))
            };
            file.done(range);
            result.map(|()| ok())
        }
        Op::Stat { path } => {
            // The metadata of a named path needs no permission (as FTP SIZE, MDTM, MLST).
            let md = fs.stat(&path).await.map_err(fs_error)?;
            Ok(attrs_reply(id, &md))
        }
        Op::Fstat { handle, turn } => {
            let Handle::File(file) = &*handle else {
                return Err(Refused(Status::Failure, Cow::Borrowed("not a file handle")));
            };
            let _turn = turn.turn().await;
            let md = file.file.metadata().await.map_err(fs_error)?;
            Ok(attrs_reply(id, &md))
        }
        Op::SetStat { path, attrs } => {
            fs.may_write().map_err(fs_error)?;
            check_settable(&attrs)?;
            if let Some(size) = attrs.size {
                let mode = OpenMode::InPlace {
                    read: false,
                    append: false,
                };
                let file = fs.open_file(&path, mode).await.map_err(fs_error)?;
                file.set_len(size).await.map_err(fs_error)?;
            }
            if let Some(mode) = attrs.permissions {
                fs.set_mode(&path, mode).await.map_err(fs_error)?;
            }
            if let Some((_, mtime)) = attrs.times {
                fs.set_modified(&path, unix_time(mtime)).await.map_err(fs_error)?;
            }
            Ok(ok())
        }
        Op::FSetStat { handle, attrs, turn } => {
            let Handle::File(file) = &*handle else {
                return Err(Refused(Status::Failure, Cow::Borrowed("not a file handle")));
            };
            let _turn = turn.turn().await;
            fs.may_write().map_err(fs_error)?;
            check_settable(&attrs)?;
            if let Some(size) = attrs.size {
                if !file.writable {
                    return Err(Refused(
                        Status::PermissionDenied,
                        Cow::Borrowed("handle not open for writing"),
                    ));
                }
                file.file.set_len(size).await.map_err(fs_error)?;
            }
            if let Some(mode) = attrs.permissions {
                file.file.set_mode(mode).await.map_err(fs_error)?;
            }
            if let Some((_, mtime)) = attrs.times {
                file.file.set_modified(unix_time(mtime)).await.map_err(fs_error)?;
            }
            Ok(ok())
        }
        Op::OpenDir { path } => {
            let stream = fs.list(&path).await.map_err(fs_error)?;
            let dir = DirHandle { stream: Some(stream) };
            handle_reply(id, ctx, Handle::Dir(tokio::sync::Mutex::new(dir)))
        }
        Op::ReadDir { handle } => {
            let Handle::Dir(dir) = &*handle else {
                return Err(Refused(Status::Failure, Cow::Borrowed("not a directory handle")));
            };
            let mut dir = dir.lock().await;
            let Some(stream) = dir.stream.as_mut() else {
                return Ok(wire::status(id, Status::Eof));
            };
            let batch = stream.next_batch(READDIR_BATCH).await.map_err(fs_error)?;
            if batch.is_empty() {
                dir.stream = None;
                return Ok(wire::status(id, Status::Eof));
            }
            let now = SystemTime::now();
            let mut w = Writer::new(kind::NAME, Some(id), batch.len() * 160);
            w.u32(u32::try_from(batch.len()).unwrap_or(0));
            for entry in &batch {
                w.string(&entry.name)
                    .string(&longname(&entry.name, &entry.metadata, now))
                    .attrs(&attrs_of(&entry.metadata));
            }
            debug_assert!(w.len() < MAX_PACKET_LEN);
            Ok(w.finish())
        }
        Op::Remove { path } => {
            fs.remove_file(&path).await.map_err(fs_error)?;
            Ok(ok())
        }
        Op::Mkdir { path, attrs } => {
            // The permission bits are part of creating it (`mkdir` suffices), where the back-end
            // has them; elsewhere the directory is still made.
            fs.create_dir(&path, attrs.permissions).await.map_err(fs_error)?;
            Ok(ok())
        }
        Op::Rmdir { path } => {
            fs.remove_dir(&path).await.map_err(fs_error)?;
            Ok(ok())
        }
        Op::RealPath { path } => {
            let path = path.as_bytes();
            let mut w = Writer::new(kind::NAME, Some(id), 2 * path.len() + 16);
            w.u32(1).string(path).string(path).attrs(&Attrs::default());
            Ok(w.finish())
        }
        Op::Rename { from, to, replace } => {
            // SSH_FXP_RENAME must not replace an existing target (draft-02 §6.5);
            // posix-rename@openssh.com does. Both are decided by the back-end in one step.
            match fs.rename(&from, &to, replace).await {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    return Err(Refused(Status::Failure, Cow::Borrowed("target already exists")));
                }
                r => r.map_err(fs_error)?,
            }
            Ok(ok())
        }
        Op::StatVfs { path } => {
            // The space of the file system holding `path`: a path that is not there has none.
            fs.stat(&path).await.map_err(fs_error)?;
            let s = fs.space().await.map_err(fs_error)?;
            let mut flags = ST_NOSUID;
            if !fs.permissions().write {
                flags |= ST_RDONLY;
            }
            let mut w = Writer::new(kind::EXTENDED_REPLY, Some(id), 88);
            for v in [
                s.block_size,
                s.fragment_size,
                s.blocks,
                s.blocks_free,
                s.blocks_available,
                s.files,
                s.files_free,
                s.files_available,
                0,
                flags,
                s.name_max,
            ] {
                w.u64(v);
            }
            Ok(w.finish())
        }
        Op::Fsync { handle, turn } => {
            let Handle::File(file) = &*handle else {
                return Err(Refused(Status::Failure, Cow::Borrowed("not a file handle")));
            };
            let _turn = turn.turn().await;
            file.file.sync().await.map_err(fs_error)?;
            Ok(ok())
        }
        Op::CheckFile(c) => super::checkfile::run(id, c, ctx).await,
        Op::Limits => {
            let mut w = Writer::new(kind::EXTENDED_REPLY, Some(id), 32);
            w.u64(MAX_PACKET_LEN as u64)
                .u64(MAX_READ_LEN as u64)
                .u64(MAX_WRITE_LEN as u64)
                .u64(MAX_HANDLES as u64);
            Ok(w.finish())
        }
    }
}

/// OPEN: maps the SFTP flags onto the storage's open modes.
///
/// - no WRITE/APPEND: read an existing file;
/// - TRUNC or EXCL, or CREAT of a file that does not exist: new content that replaces the target on
///   CLOSE (an upload is complete under its final name or not there);
/// - otherwise (an existing file without TRUNC): writes at the client's offsets, as a resumed upload
///   (`reput`) needs: in place where the back-end has random access, else a resume at the first
///   write's offset (see [`StreamFile`]).
async fn open(id: u32, ctx: &Ctx, path: VPath, flags: u32, attrs: Attrs) -> Result<Bytes, Refused> {
    let read = flags & open_flags::READ != 0;
    let append = flags & open_flags::APPEND != 0;
    let write = flags & open_flags::WRITE != 0 || append;
    let (create, trunc, excl) = (
        flags & open_flags::CREAT != 0,
        flags & open_flags::TRUNC != 0,
        flags & open_flags::EXCL != 0,
    );
    let fs = &ctx.fs;
    let random = fs.capabilities().random_write;
    if !write {
        let file: Box<dyn PositionalFile> = if random {
            fs.open_file(&path, OpenMode::Read).await.map_err(fs_error)?
        } else {
            let reader = fs.open_read(&path, 0).await.map_err(fs_error)?;
            Box::new(StreamFile::reading(fs.clone(), path, reader))
        };
        return handle_reply(id, ctx, Handle::File(FileHandle::new(file, true, false)));
    }
    fs.may_write().map_err(fs_error)?;
    if read {
        fs.may_read().map_err(fs_error)?;
    }
    ctx.tap.check_upload(&path.display()).await.map_err(|_| {
        Refused(
            Status::PermissionDenied,
            Cow::Borrowed("upload refused by the server's pre-upload check"),
        )
    })?;
    // Permission bits for a new file, applied when it is created.
    let new_mode = attrs.permissions;
    let target = if create && (excl || trunc) {
        // The common new upload (CREAT|TRUNC, CREAT|EXCL): no need to look at the target first.
        Target::New { exclusive: excl }
    } else {
        let exists = match fs.stat(&path).await {
            Ok(md) if md.kind == EntryKind::Dir => return Err(fs_error(ErrorKind::IsADirectory.into())),
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) => return Err(fs_error(e)),
        };
        match (exists, create, trunc) {
            (true, _, true) | (false, true, _) => Target::New { exclusive: false },
            (true, _, false) => Target::Existing,
            (false, false, _) => return Err(Refused(Status::NoSuchFile, Cow::Borrowed("no such file"))),
        }
    };
    let file: Box<dyn PositionalFile> = if random {
        let mode = match target {
            Target::New { exclusive } => OpenMode::Replace {
                read,
                exclusive,
                mode: new_mode,
            },
            Target::Existing => OpenMode::InPlace { read, append },
        };
        fs.open_file(&path, mode).await.map_err(fs_error)?
    } else {
        let (how, start) = match target {
            Target::New { exclusive: true } => (Some(Upload::Exclusive), Start::Open),
            Target::New { exclusive: false } => (Some(Upload::Replace), Start::Open),
            Target::Existing if append => (Some(Upload::Append), Start::Open),
            Target::Existing => (None, Start::ResumeAtFirstWrite),
        };
        let (writer, offset) = match how {
            Some(how) => {
                let offset = match how {
                    Upload::Append => fs.stat(&path).await.map_or(0, |m| m.size),
                    _ => 0,
                };
                (
                    Some(fs.upload(&path, how, new_mode).await.map_err(fs_error)?),
                    offset,
                )
            }
            None => (None, 0),
        };
        Box::new(StreamFile::new(fs.clone(), path, start, writer, offset))
    };
    handle_reply(id, ctx, Handle::File(FileHandle::new(file, read, true)))
}

/// What an OPEN for writing does to its target.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// New content replacing the target on CLOSE.
    New { exclusive: bool },
    /// Writes into the existing file.
    Existing,
}

/// Stores a handle and replies with its name.
fn handle_reply(id: u32, ctx: &Ctx, handle: Handle) -> Result<Bytes, Refused> {
    let name = ctx
        .table()
        .insert(handle)
        .ok_or(Refused(Status::Failure, Cow::Borrowed("too many open handles")))?;
    let mut w = Writer::new(kind::HANDLE, Some(id), 8);
    w.string(&name);
    Ok(w.finish())
}

/// Refuses attribute changes we cannot make (owner and group).
fn check_settable(attrs: &Attrs) -> Result<(), Refused> {
    if attrs.uid_gid.is_some() {
        return Err(Refused(
            Status::OpUnsupported,
            Cow::Borrowed("changing owner or group is not supported"),
        ));
    }
    Ok(())
}

fn unix_time(secs: u32) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::from(secs))
}

fn attrs_reply(id: u32, md: &Metadata) -> Bytes {
    let mut w = Writer::new(kind::ATTRS, Some(id), 40);
    w.attrs(&attrs_of(md));
    w.finish()
}

/// SFTP attributes of storage metadata: size, type and permission bits, times (atime = mtime).
fn attrs_of(md: &Metadata) -> Attrs {
    let type_bits = match md.kind {
        EntryKind::Dir => mode_bits::S_IFDIR,
        EntryKind::Symlink => mode_bits::S_IFLNK,
        EntryKind::File | EntryKind::Other => mode_bits::S_IFREG,
    };
    let default_mode = if md.kind == EntryKind::Dir { 0o755 } else { 0o644 };
    let mtime = md
        .modified
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
    Attrs {
        size: Some(md.size),
        uid_gid: None,
        permissions: Some(type_bits | md.mode.unwrap_or(default_mode)),
        times: mtime.map(|m| (m, m)),
    }
}

/// The `ls -l` style line OpenSSH's `ls -l` shows.
fn longname(name: &[u8], md: &Metadata, now: SystemTime) -> Vec<u8> {
    let entry = Entry {
        name: name.to_vec(),
        kind: md.kind,
        size: md.size,
        modified: md.modified,
        mode: md.mode,
        nlink: md.nlink,
        unique: None,
    };
    let mut line = Vec::with_capacity(96 + name.len());
    write_list_line(&mut line, &entry, now);
    if line.ends_with(b"\r\n") {
        line.truncate(line.len() - 2);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_carry_type_bits_and_mtime() {
        let md = Metadata {
            kind: EntryKind::Dir,
            size: 4096,
            modified: Some(unix_time(1_700_000_000)),
            mode: Some(0o750),
            nlink: 2,
            unique: None,
        };
        let a = attrs_of(&md);
        assert_eq!(a.permissions, Some(0o040_750));
        assert_eq!(a.times, Some((1_700_000_000, 1_700_000_000)));
        assert_eq!(a.size, Some(4096));
    }

    #[test]
    fn longname_is_one_ls_line_without_line_end() {
        let md = Metadata {
            kind: EntryKind::File,
            size: 12,
            modified: Some(unix_time(0)),
            mode: Some(0o644),
            nlink: 1,
            unique: None,
        };
        let line = String::from_utf8(longname(b"a.txt", &md, SystemTime::now())).expect("utf8");
        assert!(line.starts_with("-rw-r--r-- 1 "), "{line}");
        assert!(line.ends_with(" a.txt"), "{line}");
    }

    /// Random and truncated packets never panic the parser; they give a request or `Malformed`.
    #[test]
    fn random_packets_never_panic_the_parser() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = std::sync::Arc::new(ferry_vfs::LocalFs::open(dir.path()).expect("storage"));
        let fs = ferry_vfs::UserFs::new(
            storage,
            ferry_vfs::Protocol::Sftp,
            "u",
            ferry_vfs::Permissions::all(),
        );
        let ctx = Ctx::new(fs);
        // One open file handle, so that handle-bearing requests reach their deeper parsing.
        let file = ferry_vfs::LocalFs::open(dir.path()).expect("storage");
        std::fs::write(dir.path().join("f"), b"x").expect("write");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let handle = runtime
            .block_on(ferry_vfs::Storage::open_file(
                &file,
                &VPath::parse(b"/f").expect("path"),
                OpenMode::Read,
            ))
            .expect("open");
        let name = ctx
            .table()
            .insert(Handle::File(FileHandle::new(handle, true, false)))
            .expect("handle");
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parsed = 0;
        for _ in 0..20_000 {
            let kind = [
                1u8, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 200, 99,
            ][(next() % 21) as usize];
            let mut packet = vec![kind];
            packet.extend_from_slice(&(next() as u32).to_be_bytes());
            let len = (next() % 64) as usize;
            for _ in 0..len {
                // Mostly small numbers so that string lengths are sometimes plausible.
                let b = if next() % 3 == 0 {
                    (next() % 256) as u8
                } else {
                    (next() % 8) as u8
                };
                packet.push(b);
            }
            if next() % 4 == 0 {
                packet.extend_from_slice(&4u32.to_be_bytes());
                packet.extend_from_slice(&name);
                packet.extend_from_slice(&(next() % 100).to_be_bytes());
                packet.extend_from_slice(&((next() % 300_000) as u32).to_be_bytes());
            }
            if let Ok(Some(_)) = Request::parse(Bytes::from(packet), &ctx) {
                parsed += 1;
            }
        }
        assert!(
            parsed > 1000,
            "the generator reaches the parsers ({parsed} parsed)"
        );
    }

    #[test]
    fn only_extensions_the_back_end_supports_are_advertised() {
        use ferry_vfs::Storage;
        let names = |caps| extensions(caps).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        let dir = tempfile::tempdir().expect("tempdir");
        let local = ferry_vfs::LocalFs::open(dir.path()).expect("storage");
        assert_eq!(
            names(local.capabilities()),
            [
                "posix-rename@openssh.com",
                "statvfs@openssh.com",
                "fsync@openssh.com",
                "limits@openssh.com"
            ]
        );
        assert_eq!(
            names(ferry_vfs::MemoryFs::new().capabilities()),
            ["limits@openssh.com"]
        );
    }

    #[test]
    fn uid_gid_changes_are_refused() {
        let attrs = Attrs {
            uid_gid: Some((0, 0)),
            ..Attrs::default()
        };
        assert!(check_settable(&attrs).is_err());
        assert!(check_settable(&Attrs::default()).is_ok());
    }
}
