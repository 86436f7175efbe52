//! The `check-file` extension (draft-ietf-secsh-filexfer-extensions-00 §3; `check-file-handle` and
//! `check-file-name`, and the plain `check-file` on a handle that paramiko's `SFTPFile.check()` sends):
//! checksums of a file or of its blocks, computed on demand by reading it through the storage, bounded
//! by `hash_max_size`. The digests are computed off the async threads, chunk by chunk.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use ferry_proto::hash::{Algorithm, BlockHasher};
use ferry_vfs::{EntryKind, FileReader, PositionalFile, VPath};

use super::handles::Handle;
use super::ops::{fs_error, Refused};
use super::wire::{kind, Malformed, Reader, Status, Writer};
use super::Ctx;

/// Extensions announced in VERSION when checksums are on.
pub(crate) const EXTENSIONS: [(&str, &str); 2] = [("check-file-handle", "1"), ("check-file-name", "1")];

/// Most digest bytes in one reply (e.g. 1,024 SHA-256 block digests): bounds the reply like a READ's.
pub(crate) const MAX_DIGEST_BYTES: usize = 32 * 1024;

/// Bytes read and hashed per step.
const CHUNK: usize = 256 * 1024;

/// Chunks up to this size are hashed on the async thread; larger ones on the blocking pool.
const INLINE: usize = 64 * 1024;

/// The smallest block size the draft allows (0 means the whole range).
const MIN_BLOCK_SIZE: u32 = 256;

/// Whether `name` is one of the check-file extension requests.
pub(crate) fn is_check_file(name: &[u8]) -> bool {
    matches!(name, b"check-file" | b"check-file-handle" | b"check-file-name")
}

/// What to hash.
#[derive(Debug)]
pub(crate) enum Target {
    Handle(Arc<Handle>),
    Path(VPath),
}

/// A parsed check-file request.
#[derive(Debug)]
pub(crate) struct CheckFile {
    target: Target,
    algorithm: Algorithm,
    start: u64,
    /// 0: to the end of the file.
    length: u64,
    block_size: u32,
}

/// Parses the body after the extension name. The outer `Result` is a malformed packet.
pub(crate) fn parse(
    name: &[u8],
    r: &mut Reader<'_>,
    ctx: &Ctx,
) -> Result<Result<CheckFile, Refused>, Malformed> {
    let target = if name == b"check-file-name" {
        match VPath::parse(r.string()?) {
            Ok(path) => Target::Path(path),
            Err(e) => return Ok(Err(e.into())),
        }
    } else {
        match ctx.table().get(r.string()?) {
            Some(h) => Target::Handle(h),
            None => return Ok(Err(Refused(Status::Failure, Cow::Borrowed("invalid handle")))),
        }
    };
    let list = r.string()?;
    let (start, length, block_size) = (r.u64()?, r.u64()?, r.u32()?);
    if ctx.hash_max_size == 0 {
        return Ok(Err(Refused(
            Status::OpUnsupported,
            Cow::Borrowed("checksums are disabled on this server (hash_max_size = 0)"),
        )));
    }
    let Some(algorithm) = Algorithm::first_supported_sftp(list) else {
        return Ok(Err(Refused(
            Status::OpUnsupported,
            Cow::Borrowed("no supported hash algorithm: ferry offers sha256, sha1, md5 and crc32"),
        )));
    };
    if block_size != 0 && block_size < MIN_BLOCK_SIZE {
        return Ok(Err(Refused(
            Status::Failure,
            Cow::Borrowed("block size must be 0 or at least 256"),
        )));
    }
    Ok(Ok(CheckFile {
        target,
        algorithm,
        start,
        length,
        block_size,
    }))
}

/// Where the bytes come from.
enum Source<'a> {
    Handle(&'a dyn PositionalFile),
    Stream(Box<dyn FileReader>),
}

/// Computes the digests and builds the EXTENDED_REPLY.
pub(crate) async fn run(id: u32, req: CheckFile, ctx: &Ctx) -> Result<Bytes, Refused> {
    let fs = &ctx.fs;
    let (size, mut source) = match &req.target {
        Target::Handle(handle) => {
            let Handle::File(file) = &**handle else {
                return Err(Refused(Status::Failure, Cow::Borrowed("not a file handle")));
            };
            if !file.readable {
                return Err(Refused(
                    Status::PermissionDenied,
                    Cow::Borrowed("handle not open for reading"),
                ));
            }
            let md = file.file.metadata().await.map_err(fs_error)?;
            (md.size, Some(Source::Handle(file.file.as_ref())))
        }
        Target::Path(path) => {
            fs.may_read().map_err(fs_error)?;
            let md = fs.stat(path).await.map_err(fs_error)?;
            if md.kind != EntryKind::File {
                return Err(Refused(Status::Failure, Cow::Borrowed("not a regular file")));
            }
            (md.size, None)
        }
    };
    if req.start > size {
        return Err(Refused(
            Status::Failure,
            Cow::Borrowed("start offset beyond the end of the file"),
        ));
    }
    let available = size - req.start;
    let len = if req.length == 0 {
        available
    } else {
        req.length.min(available)
    };
    if let Some(digest) = stored(&req, ctx, size, len).await {
        return Ok(reply(id, req.algorithm, &digest));
    }
    if len > ctx.hash_max_size {
        return Err(Refused(
            Status::Failure,
            Cow::Borrowed("range too large to hash: over the server's hash_max_size"),
        ));
    }
    let block_size = u64::from(req.block_size);
    if BlockHasher::output_len(req.algorithm, block_size, len) > MAX_DIGEST_BYTES as u64 {
        return Err(Refused(
            Status::Failure,
            Cow::Borrowed("too many blocks for one reply: use a larger block size"),
        ));
    }
    if let Target::Path(path) = &req.target {
        let reader = fs.open_read(path, req.start).await.map_err(fs_error)?;
        source = Some(Source::Stream(reader));
    }
    let Some(mut source) = source else {
        return Err(Refused(Status::Failure, Cow::Borrowed("no file to read")));
    };
    let digests = hash_range(&mut source, req.algorithm, block_size, req.start, len).await?;
    Ok(reply(id, req.algorithm, &digests))
}

fn reply(id: u32, algorithm: Algorithm, digests: &[u8]) -> Bytes {
    let name = algorithm.sftp_name().as_bytes();
    let mut w = Writer::new(kind::EXTENDED_REPLY, Some(id), 32 + name.len() + digests.len());
    w.string(b"check-file").string(name).raw(digests);
    w.finish()
}

/// The digest kept when the file was stored, for a by-name request over the whole file in one
/// block (whatever its size: nothing is read). Any failure to look it up means computing it.
async fn stored(req: &CheckFile, ctx: &Ctx, size: u64, len: u64) -> Option<Vec<u8>> {
    let Target::Path(path) = &req.target else {
        return None;
    };
    if req.start != 0 || len != size || (req.block_size != 0 && u64::from(req.block_size) < size) {
        return None;
    }
    let kept = ctx.fs.stored_digests(path).await.ok().flatten()?;
    if kept.size != size {
        return None;
    }
    kept.digests.by_name(req.algorithm.sftp_name())
}

async fn hash_range(
    source: &mut Source<'_>,
    algorithm: Algorithm,
    block_size: u64,
    start: u64,
    len: u64,
) -> Result<Vec<u8>, Refused> {
    let mut hasher = BlockHasher::new(algorithm, block_size);
    let mut done = 0u64;
    let mut buf = Vec::new();
    while done < len {
        let want = usize::try_from(len - done).unwrap_or(CHUNK).min(CHUNK);
        let chunk = match source {
            Source::Handle(file) => file.read_at(start + done, want).await.map_err(fs_error)?,
            Source::Stream(reader) => {
                buf.resize(want, 0);
                let n = reader.read(&mut buf).await.map_err(fs_error)?;
                buf.truncate(n);
                std::mem::take(&mut buf)
            }
        };
        if chunk.is_empty() {
            return Err(Refused(
                Status::Failure,
                Cow::Borrowed("the file shrank while it was hashed"),
            ));
        }
        done += chunk.len() as u64;
        if chunk.len() <= INLINE {
            hasher.update(&chunk);
            buf = chunk;
            continue;
        }
        let (h, chunk) = tokio::task::spawn_blocking(move || {
            hasher.update(&chunk);
            (hasher, chunk)
        })
        .await
        .map_err(|_| Refused(Status::Failure, Cow::Borrowed("hashing failed")))?;
        hasher = h;
        buf = chunk;
    }
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::super::{init, Ctx};
    use super::*;

    fn version_packet(max: u64) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = ferry_vfs::LocalFs::open(dir.path()).expect("storage");
        let fs = ferry_vfs::UserFs::new(
            Arc::new(storage),
            ferry_vfs::Protocol::Sftp,
            "u",
            ferry_vfs::Permissions::all(),
        );
        let ctx = Ctx::new(fs).with_hash_max_size(max);
        // INIT, version 3.
        init(&[1, 0, 0, 0, 3], &ctx)
            .map(|b| b.to_vec())
            .unwrap_or_default()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn version_advertises_check_file_only_when_hashing_is_on() {
        let on = version_packet(1 << 20);
        assert!(contains(&on, b"check-file-handle") && contains(&on, b"check-file-name"));
        let off = version_packet(0);
        assert!(!off.is_empty() && !contains(&off, b"check-file"));
    }
}
