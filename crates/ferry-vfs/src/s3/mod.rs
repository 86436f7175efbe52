//! The S3 back-end: files as objects in an S3-compatible bucket, through OpenDAL's S3 service.
//!
//! What each operation does (docs/storage.md has the table for users):
//! - **Uploads** stream as multipart uploads with growing parts (5 MiB, growing by 5 MiB every 47
//!   parts, so 5 TiB fit in 10,000 parts); at most two parts are
//!   in memory per upload and nothing is spooled to disk. The object appears under its name only
//!   when the upload is committed; an abort or a dropped writer aborts the multipart upload. Parts
//!   left by a crash are removed by the bucket's lifecycle rule (AbortIncompleteMultipartUpload).
//! - **Resume and append** build a new object: the existing object's first bytes (up to the
//!   offset), copied with a ranged read, then the new bytes. The old object is replaced only when
//!   the upload completes; an aborted resume leaves it as it was.
//! - **Downloads** are one ranged GET from the offset.
//! - **Directories**: [`Storage::create_dir`] writes the usual marker object `dir/` and a hidden
//!   empty object `dir/.ferry-dir` (servers that keep objects as files, such as s3s-fs, do not list a
//!   bare marker; the hidden object keeps the directory visible there too). Prefixes of keys are
//!   listed as directories. Removing a directory that still has entries is refused.
//! - **Rename** of a file is a server-side copy then a delete: not atomic (for a moment both names
//!   exist). Renaming a non-empty directory is refused unless `danger_allow_dir_rename` (a copy and
//!   delete of every object below it, not atomic either).
//! - **Modification times** set by a client are kept as the `mtime` user metadata
//!   (`X-Amz-Meta-Mtime`, seconds since the epoch as rclone writes it). Setting one writes the
//!   object again: streamed from S3 into a new upload carrying the new metadata (OpenDAL's copy
//!   cannot replace metadata).

mod parts;
mod read;
mod write;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures_util::StreamExt;
use opendal::{EntryMode, Operator};

pub use read::{S3DirStream, S3Reader};
pub use write::S3Writer;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::{
    Capabilities, DirStream, FileReader, FileWriter, Metadata, OpenMode, PositionalFile, Space, Storage,
    WriteMode, WriteOptions,
};
use crate::{Digests, EntryKind, StoredDigests, VPath};

/// The hidden object that keeps an empty directory visible: never listed, and refused as a name.
const DIR_KEEP: &str = ".ferry-dir";

/// User metadata key of the modification time (`X-Amz-Meta-Mtime`).
const MTIME_KEY: &str = "mtime";

/// User metadata key of the checksums computed while the object was uploaded
/// (`X-Amz-Meta-Ferry-Digests`: `1 <size> <sha256> <md5> <crc32>`).
const DIGESTS_KEY: &str = "ferry-digests";

/// How to reach the bucket.
#[derive(Clone, Default)]
pub struct S3Config {
    /// Endpoint URL (`https://s3.eu-west-1.amazonaws.com`, `http://127.0.0.1:9000`); `None` for AWS.
    pub endpoint: Option<String>,
    /// Bucket name.
    pub bucket: String,
    /// Signing region (`us-east-1` when empty).
    pub region: String,
    /// Key prefix under which the files root lives (`""` for the whole bucket).
    pub prefix: String,
    /// Path-style requests (`endpoint/bucket/key`) instead of virtual-hosted ones.
    pub path_style: bool,
    /// Access key ID; with `secret_access_key`. Without both, the usual AWS environment and
    /// instance credentials are used.
    pub access_key_id: Option<String>,
    /// Secret access key (never shown by `Debug`).
    pub secret_access_key: Option<String>,
    /// Allow renaming non-empty directories by copying and deleting every object below them.
    pub danger_allow_dir_rename: bool,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("danger_allow_dir_rename", &self.danger_allow_dir_rename)
            .finish()
    }
}

/// Why the bucket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The settings are not usable (e.g. no bucket).
    #[error("invalid S3 settings: {0}")]
    Config(String),
    /// The bucket did not answer as expected.
    #[error("cannot reach S3 bucket {bucket:?}: {cause}")]
    Unreachable {
        /// The bucket.
        bucket: String,
        /// What went wrong.
        cause: String,
    },
}

/// Files in an S3 bucket (see the module documentation for the semantics).
#[derive(Clone)]
pub struct S3Fs {
    op: Operator,
    /// Key prefix of this store inside the operator's root: `""` or `"home/user/"`.
    base: String,
    danger_allow_dir_rename: bool,
}

impl fmt::Debug for S3Fs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Fs")
            .field("bucket", &self.op.info().name())
            .field("root", &self.op.info().root())
            .field("base", &self.base)
            .finish()
    }
}

impl S3Fs {
    /// Opens the bucket and checks that it answers (a one-key listing).
    pub async fn connect(config: &S3Config) -> std::result::Result<S3Fs, ConnectError> {
        let op = operator(config)?;
        let fs = S3Fs {
            op,
            base: String::new(),
            danger_allow_dir_rename: config.danger_allow_dir_rename,
        };
        fs.check().await.map_err(|cause| ConnectError::Unreachable {
            bucket: config.bucket.clone(),
            cause,
        })?;
        Ok(fs)
    }

    /// Whether the bucket answers now (for readiness checks); the error says why not.
    pub async fn check(&self) -> std::result::Result<(), String> {
        let mut lister = self
            .op
            .lister_with("/")
            .limit(1)
            .await
            .map_err(|e| describe(&e))?;
        match lister.next().await {
            Some(Err(e)) => Err(describe(&e)),
            _ => Ok(()),
        }
    }

    /// The key of `path` inside the operator (no leading `/`); `""` for this store's root.
    fn key(&self, path: &VPath) -> Result<String> {
        // Object keys are UTF-8; the path is already normalised (no `.`/`..`, NUL or empty names).
        let rel = std::str::from_utf8(path.relative()).map_err(|_| {
            Error::new(ErrorKind::InvalidName).detail("S3 storage takes only UTF-8 file names")
        })?;
        if rel.split('/').any(|name| name == DIR_KEEP) {
            return Err(
                Error::new(ErrorKind::InvalidName).detail("the name .ferry-dir is reserved on S3 storage")
            );
        }
        Ok(format!("{}{rel}", self.base).trim_end_matches('/').to_owned())
    }

    /// The directory path OpenDAL uses for `key` (`"a/b/"`, or `"/"` for the bucket root).
    fn dir_path(key: &str) -> String {
        if key.is_empty() {
            "/".to_owned()
        } else {
            format!("{key}/")
        }
    }

    /// Whether `key` is this store's root.
    fn is_root(&self, key: &str) -> bool {
        key.is_empty() || format!("{key}/") == self.base
    }

    /// Whether a directory `key` exists: a marker object, or any key below it. One listing of at
    /// most one key (the marker `key/` is listed under its own prefix), never a HEAD of `key/`:
    /// some servers (s3s-fs) fail that for directories.
    async fn dir_exists(&self, key: &str) -> Result<bool> {
        if key.is_empty() {
            return Ok(true);
        }
        let dir = Self::dir_path(key);
        let mut lister = self
            .op
            .lister_with(&dir)
            .limit(1)
            .await
            .map_err(|e| map_err(&dir, e))?;
        match lister.next().await {
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) if e.kind() == opendal::ErrorKind::NotFound => Ok(false),
            Some(Err(e)) => Err(map_err(&dir, e)),
            None => Ok(false),
        }
    }

    /// The first entry below the directory path `dir` other than its marker.
    async fn first_child(&self, dir: &str) -> Result<Option<String>> {
        let mut lister = self
            .op
            .lister_with(dir)
            .limit(3)
            .await
            .map_err(|e| map_err(dir, e))?;
        while let Some(entry) = lister.next().await {
            let entry = entry.map_err(|e| map_err(dir, e))?;
            if entry.path() != dir && entry.name() != DIR_KEEP {
                return Ok(Some(entry.path().to_owned()));
            }
        }
        Ok(None)
    }

    /// Metadata of the object `key` if it is a file.
    async fn file_metadata(&self, key: &str) -> Result<Option<Metadata>> {
        if key.is_empty() {
            return Ok(None);
        }
        match self.op.stat(key).await {
            Ok(md) if md.mode() == EntryMode::FILE => Ok(Some(entry_metadata(&md, false))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
            // A directory made meanwhile (by another session) under this name: some servers
            // (s3s-fs) fail a HEAD of a directory instead of answering 404.
            Err(_) if self.dir_exists(key).await? => Ok(None),
            Err(e) => Err(map_err(key, e)),
        }
    }

    async fn stat(&self, key: &str) -> Result<Metadata> {
        // Directory first: some servers (s3s-fs) fail a HEAD of `a` when `a/` holds objects.
        if self.dir_exists(key).await? {
            return Ok(dir_metadata());
        }
        self.file_metadata(key)
            .await?
            .ok_or_else(|| ErrorKind::NotFound.into())
    }

    /// Fails unless the parent directory of `key` exists.
    async fn check_parent(&self, key: &str) -> Result<()> {
        let parent = key.rsplit_once('/').map_or("", |(p, _)| p);
        if parent.is_empty() || self.is_root(parent) || self.dir_exists(parent).await? {
            return Ok(());
        }
        if self.file_metadata(parent).await?.is_some() {
            return Err(ErrorKind::NotADirectory.into());
        }
        Err(ErrorKind::NotFound.into())
    }

    /// A writer for `key` that holds a copy of the first `len` bytes of `from`; with `exclusive` the
    /// upload completes only if `key` still does not exist then (S3's If-None-Match).
    async fn writer(
        &self,
        key: &str,
        from: Option<(&str, u64)>,
        mtime: Option<String>,
        exclusive: bool,
    ) -> Result<S3Writer> {
        let mut writer = S3Writer::open(self, key.to_owned(), mtime, exclusive).await?;
        if let Some((from, len)) = from {
            if let Err(e) = writer.copy_prefix(self, from, len).await {
                writer.cancel().await;
                return Err(e);
            }
        }
        Ok(writer)
    }

    async fn rename_dir(&self, from: &str, to: &str) -> Result<()> {
        let from_dir = Self::dir_path(from);
        let to_dir = Self::dir_path(to);
        if to_dir.starts_with(&from_dir) {
            return Err(ErrorKind::MoveIntoItself.into());
        }
        if self.dir_exists(to).await? || self.file_metadata(to).await?.is_some() {
            return Err(ErrorKind::AlreadyExists.into());
        }
        if self.first_child(&from_dir).await?.is_some() && !self.danger_allow_dir_rename {
            return Err(Error::new(ErrorKind::DirectoryNotEmpty)
                .detail("S3 storage renames only empty directories (a rename would copy every file)"));
        }
        // Create the new markers first, so the directory exists under one name at least.
        self.make_dir(&to_dir).await?;
        let mut lister = self
            .op
            .lister_with(&from_dir)
            .recursive(true)
            .await
            .map_err(|e| map_err(&from_dir, e))?;
        let mut moved = Vec::new();
        while let Some(entry) = lister.next().await {
            let entry = entry.map_err(|e| map_err(&from_dir, e))?;
            let Some(rest) = entry.path().strip_prefix(&from_dir) else {
                continue;
            };
            if rest.is_empty() {
                continue;
            }
            let target = format!("{to_dir}{rest}");
            if rest.ends_with('/') {
                self.op
                    .create_dir(&target)
                    .await
                    .map_err(|e| map_err(&target, e))?;
            } else if rest == DIR_KEEP {
                // Written by make_dir above; deleted with the old markers below.
                continue;
            } else {
                self.op
                    .copy(entry.path(), &target)
                    .await
                    .map_err(|e| map_err(&target, e))?;
            }
            moved.push(entry.path().to_owned());
        }
        for path in moved {
            self.op.delete(&path).await.map_err(|e| map_err(&path, e))?;
        }
        self.delete_marker(&from_dir).await
    }

    /// Deletes the markers of the directory path `dir` (the hidden one first).
    async fn delete_marker(&self, dir: &str) -> Result<()> {
        for key in [format!("{dir}{DIR_KEEP}"), dir.to_owned()] {
            match self.op.delete(&key).await {
                Ok(()) => {}
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
                Err(e) => return Err(map_err(&key, e)),
            }
        }
        Ok(())
    }

    /// Writes the markers of the directory path `dir`: `dir/` and the hidden `dir/.ferry-dir`.
    async fn make_dir(&self, dir: &str) -> Result<()> {
        self.op.create_dir(dir).await.map_err(|e| map_err(dir, e))?;
        let keep = format!("{dir}{DIR_KEEP}");
        self.op
            .write(&keep, Vec::<u8>::new())
            .await
            .map(|_| ())
            .map_err(|e| map_err(&keep, e))
    }
}

#[async_trait]
impl Storage for S3Fs {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // Files are renamed by a server-side copy and a delete: not atomic (docs/storage.md).
            rename: true,
            // Empty directories always; non-empty ones only with `danger_allow_dir_rename`.
            rename_dir: true,
            // Append and resume build a new object from the old bytes and the new ones.
            append: true,
            resume: true,
            set_modified: true,
            ..Capabilities::default()
        }
    }

    fn backend_name(&self) -> &'static str {
        "s3"
    }

    async fn metadata(&self, path: &VPath) -> Result<Metadata> {
        let key = self.key(path)?;
        if self.is_root(&key) {
            return Ok(dir_metadata());
        }
        self.stat(&key).await
    }

    async fn stored_digests(&self, path: &VPath) -> Result<Option<StoredDigests>> {
        let key = self.key(path)?;
        if self.is_root(&key) {
            return Ok(None);
        }
        match self.op.stat(&key).await {
            Ok(md) if md.mode() == EntryMode::FILE => Ok(md
                .user_metadata()
                .and_then(|m| m.get(DIGESTS_KEY))
                .and_then(|v| parse_digests(v, md.content_length(), md.etag()))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Err(ErrorKind::NotFound.into()),
            Err(e) => Err(map_err(&key, e)),
        }
    }

    async fn list(&self, path: &VPath) -> Result<Box<dyn DirStream>> {
        let key = self.key(path)?;
        if !self.is_root(&key) && !self.dir_exists(&key).await? {
            return Err(if self.file_metadata(&key).await?.is_some() {
                ErrorKind::NotADirectory.into()
            } else {
                ErrorKind::NotFound.into()
            });
        }
        let dir = Self::dir_path(&key);
        let lister = self.op.lister(&dir).await.map_err(|e| map_err(&dir, e))?;
        Ok(Box::new(S3DirStream {
            dir,
            lister,
            op: self.op.clone(),
            looked_up: 0,
        }))
    }

    async fn open_read(&self, path: &VPath, offset: u64) -> Result<Box<dyn FileReader>> {
        let key = self.key(path)?;
        if self.is_root(&key) || self.dir_exists(&key).await? {
            return Err(ErrorKind::IsADirectory.into());
        }
        let md = self.file_metadata(&key).await?.ok_or(ErrorKind::NotFound)?;
        let start = offset.min(md.size);
        let reader = self.op.reader(&key).await.map_err(|e| map_err(&key, e))?;
        let stream = reader
            .into_bytes_stream(start..md.size)
            .await
            .map_err(|e| map_err(&key, e))?;
        Ok(Box::new(S3Reader {
            key,
            size: md.size,
            stream,
            pending: bytes::Bytes::new(),
        }))
    }

    async fn open_write(&self, path: &VPath, options: WriteOptions) -> Result<Box<dyn FileWriter>> {
        let key = self.key(path)?;
        if self.is_root(&key) || self.dir_exists(&key).await? {
            return Err(ErrorKind::IsADirectory.into());
        }
        self.check_parent(&key).await?;
        let writer = match options.mode {
            WriteMode::New { exclusive } => {
                if exclusive && self.file_metadata(&key).await?.is_some() {
                    return Err(ErrorKind::AlreadyExists.into());
                }
                self.writer(&key, None, None, exclusive).await?
            }
            WriteMode::Append => {
                let size = self.file_metadata(&key).await?.map_or(0, |md| md.size);
                self.writer(&key, Some((&key, size)), None, false).await?
            }
            WriteMode::Resume { offset } => {
                let size = match self.file_metadata(&key).await? {
                    Some(md) => md.size,
                    None if offset == 0 => 0,
                    None => return Err(ErrorKind::NotFound.into()),
                };
                if offset > size {
                    return Err(ErrorKind::OffsetOutOfRange.into());
                }
                self.writer(&key, Some((&key, offset)), None, false).await?
            }
        };
        Ok(Box::new(writer))
    }

    async fn create_dir(&self, path: &VPath) -> Result<()> {
        let key = self.key(path)?;
        if self.is_root(&key) || self.dir_exists(&key).await? || self.file_metadata(&key).await?.is_some() {
            return Err(ErrorKind::AlreadyExists.into());
        }
        self.check_parent(&key).await?;
        self.make_dir(&Self::dir_path(&key)).await
    }

    async fn remove_dir(&self, path: &VPath) -> Result<()> {
        let key = self.key(path)?;
        if self.is_root(&key) {
            return Err(ErrorKind::PermissionDenied.into());
        }
        if !self.dir_exists(&key).await? {
            return Err(if self.file_metadata(&key).await?.is_some() {
                ErrorKind::NotADirectory.into()
            } else {
                ErrorKind::NotFound.into()
            });
        }
        let dir = Self::dir_path(&key);
        if self.first_child(&dir).await?.is_some() {
            return Err(ErrorKind::DirectoryNotEmpty.into());
        }
        self.delete_marker(&dir).await
    }

    async fn remove_file(&self, path: &VPath) -> Result<()> {
        let key = self.key(path)?;
        if self.is_root(&key) || self.dir_exists(&key).await? {
            return Err(ErrorKind::IsADirectory.into());
        }
        if self.file_metadata(&key).await?.is_none() {
            return Err(ErrorKind::NotFound.into());
        }
        self.op.delete(&key).await.map_err(|e| map_err(&key, e))
    }

    async fn rename(&self, from: &VPath, to: &VPath, replace: bool) -> Result<()> {
        let from = self.key(from)?;
        let to = self.key(to)?;
        if self.is_root(&from) || self.is_root(&to) {
            return Err(ErrorKind::PermissionDenied.into());
        }
        if from == to {
            return self.stat(&from).await.map(|_| ());
        }
        self.check_parent(&to).await?;
        if self.dir_exists(&from).await? {
            return self.rename_dir(&from, &to).await;
        }
        if self.file_metadata(&from).await?.is_none() {
            return Err(ErrorKind::NotFound.into());
        }
        if self.dir_exists(&to).await? {
            return Err(ErrorKind::IsADirectory.into());
        }
        if !replace && self.file_metadata(&to).await?.is_some() {
            return Err(ErrorKind::AlreadyExists.into());
        }
        // Not atomic: for a moment the object exists under both names.
        self.op.copy(&from, &to).await.map_err(|e| map_err(&to, e))?;
        self.op.delete(&from).await.map_err(|e| map_err(&from, e))
    }

    async fn set_modified(&self, path: &VPath, t: SystemTime) -> Result<()> {
        let key = self.key(path)?;
        if self.is_root(&key) || self.dir_exists(&key).await? {
            return Err(Error::new(ErrorKind::Unsupported)
                .detail("S3 storage keeps no modification time for directories"));
        }
        let md = self.file_metadata(&key).await?.ok_or(ErrorKind::NotFound)?;
        let writer = self
            .writer(&key, Some((&key, md.size)), Some(format_mtime(t)), false)
            .await?;
        Box::new(writer).commit().await.map(|_| ())
    }

    async fn set_mode(&self, _path: &VPath, _mode: u32) -> Result<()> {
        Err(Error::new(ErrorKind::Unsupported).detail("S3 storage has no permission bits"))
    }

    async fn space(&self) -> Result<Space> {
        Err(Error::new(ErrorKind::Unsupported).detail("S3 storage has no fixed size"))
    }

    async fn scoped(&self, home: &VPath, create: bool) -> Result<Arc<dyn Storage>> {
        let key = self.key(home)?;
        if !self.is_root(&key) && !self.dir_exists(&key).await? {
            if !create {
                return Err(ErrorKind::NotFound.into());
            }
            if self.file_metadata(&key).await?.is_some() {
                return Err(ErrorKind::NotADirectory.into());
            }
            // Like `mkdir -p`: a marker for every missing level.
            let mut level = self.base.trim_end_matches('/').to_owned();
            for part in key[self.base.len()..].split('/') {
                if !level.is_empty() {
                    level.push('/');
                }
                level.push_str(part);
                if !self.dir_exists(&level).await? {
                    self.make_dir(&Self::dir_path(&level)).await?;
                }
            }
        }
        Ok(Arc::new(S3Fs {
            op: self.op.clone(),
            base: if key.is_empty() {
                String::new()
            } else {
                format!("{key}/")
            },
            danger_allow_dir_rename: self.danger_allow_dir_rename,
        }))
    }

    async fn open_file(&self, _path: &VPath, _mode: OpenMode) -> Result<Box<dyn PositionalFile>> {
        Err(Error::new(ErrorKind::Unsupported).detail("S3 storage has no random-access writes"))
    }
}

fn operator(config: &S3Config) -> std::result::Result<Operator, ConnectError> {
    if config.bucket.is_empty() {
        return Err(ConnectError::Config("no bucket given".into()));
    }
    let prefix = config.prefix.trim_matches('/');
    let root = if prefix.is_empty() {
        "/".to_owned()
    } else {
        format!("/{prefix}/")
    };
    let region = if config.region.is_empty() {
        "us-east-1"
    } else {
        &config.region
    };
    let mut builder = opendal::services::S3::default()
        .bucket(&config.bucket)
        .region(region)
        .root(&root);
    if let Some(endpoint) = &config.endpoint {
        builder = builder.endpoint(endpoint);
    }
    if !config.path_style {
        builder = builder.enable_virtual_host_style();
    }
    match (&config.access_key_id, &config.secret_access_key) {
        (Some(id), Some(secret)) => {
            builder = builder
                .access_key_id(id)
                .secret_access_key(secret)
                .disable_config_load()
                .disable_ec2_metadata();
        }
        (None, None) => {}
        _ => {
            return Err(ConnectError::Config(
                "give both access_key_id and secret_access_key, or neither".into(),
            ))
        }
    }
    // OpenDAL builds a default reqwest client before the layer below replaces it; reqwest (built
    // without a provider of its own) needs a process-wide rustls provider for that: ferry's, aws-lc-rs.
    // An error means one is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = http_client().map_err(ConnectError::Config)?;
    let op = Operator::new(builder)
        .map_err(|e| ConnectError::Config(describe(&e)))?
        .layer(opendal::layers::HttpClientLayer::new(
            opendal::raw::HttpClient::with(client),
        ))
        // Retries of failed requests (5xx, throttling, resets) stay short: a client waits for the
        // reply, and a transient failure is better reported (FTP 451) than hidden for a minute.
        .layer(
            opendal::layers::RetryLayer::new()
                .with_max_times(3)
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(1))
                .with_jitter(),
        )
        .finish();
    Ok(op)
}

/// HTTPS with rustls and the aws-lc-rs provider ferry uses everywhere, trusting the system's roots.
fn http_client() -> std::result::Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// One line naming the kind and the cause of an OpenDAL error (never credentials: OpenDAL does
/// not put them in errors).
fn describe(e: &opendal::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

/// Maps an OpenDAL error to a neutral kind; the details go to the log.
fn map_err(key: &str, e: opendal::Error) -> Error {
    use opendal::ErrorKind as O;
    let kind = match e.kind() {
        O::NotFound => ErrorKind::NotFound,
        O::PermissionDenied => ErrorKind::PermissionDenied,
        O::AlreadyExists | O::ConditionNotMatch => ErrorKind::AlreadyExists,
        O::IsADirectory => ErrorKind::IsADirectory,
        O::NotADirectory => ErrorKind::NotADirectory,
        O::RangeNotSatisfied => ErrorKind::OffsetOutOfRange,
        O::Unsupported => ErrorKind::Unsupported,
        O::RateLimited => ErrorKind::Transient,
        _ if e.is_temporary() => ErrorKind::Transient,
        _ => ErrorKind::Io,
    };
    if matches!(kind, ErrorKind::Io | ErrorKind::Transient) {
        tracing::warn!(%key, error = %e, "S3 request failed");
    } else {
        tracing::debug!(%key, error = %e, "S3 request refused");
    }
    Error::with_source(kind, e)
}

/// Maps a read error of a download stream (OpenDAL's errors arrive wrapped in `io::Error`).
fn map_io(key: &str, e: std::io::Error) -> Error {
    match e.downcast::<opendal::Error>() {
        Ok(e) => map_err(key, e),
        Err(e) => {
            tracing::warn!(%key, error = %e, "S3 download failed");
            Error::with_source(ErrorKind::Io, e)
        }
    }
}

fn dir_metadata() -> Metadata {
    Metadata {
        kind: EntryKind::Dir,
        size: 0,
        modified: None,
        mode: None,
        nlink: 1,
        unique: None,
    }
}

/// Metadata of a listed or stat'ed object: the `mtime` user metadata if a client set one, else the
/// object's Last-Modified.
fn entry_metadata(md: &opendal::Metadata, is_dir: bool) -> Metadata {
    if is_dir || md.mode() == EntryMode::DIR {
        return dir_metadata();
    }
    let modified = md
        .user_metadata()
        .and_then(|m| m.get(MTIME_KEY))
        .and_then(|v| parse_mtime(v))
        .or_else(|| md.last_modified().map(SystemTime::from));
    Metadata {
        kind: EntryKind::File,
        size: md.content_length(),
        modified,
        mode: None,
        nlink: 1,
        unique: md.etag().map(|e| e.trim_matches('"').to_owned()),
    }
}

/// The checksums of an object's metadata value, if it is ours and describes the object: the same
/// size, and an ETag that is the MD5 kept (a one-part upload's ETag is its MD5). The value travels
/// with the object, so a replaced object has the new writer's metadata; one written with our value
/// copied onto other content is caught by the ETag. Where the ETag is not the MD5 (SSE-KMS or
/// SSE-C encryption) nothing can be checked and the value is not used.
fn parse_digests(value: &str, size: u64, etag: Option<&str>) -> Option<StoredDigests> {
    let mut words = value.trim().splitn(3, ' ');
    if words.next()? != "1" {
        return None;
    }
    let stored: u64 = words.next()?.parse().ok()?;
    let digests = Digests::decode(words.next()?)?;
    let etag = etag?.trim().trim_start_matches("W/").trim_matches('"');
    let md5: String = digests.md5.iter().map(|b| format!("{b:02x}")).collect();
    (stored == size && etag.eq_ignore_ascii_case(&md5)).then_some(StoredDigests { size, digests })
}

/// `1700000000.123456789`: seconds since the epoch with an optional fraction (rclone's format).
fn format_mtime(t: SystemTime) -> String {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => format!("{}.{:09}", d.as_secs(), d.subsec_nanos()),
        Err(_) => "0".into(),
    }
}

fn parse_mtime(v: &str) -> Option<SystemTime> {
    let (secs, frac) = v.trim().split_once('.').unwrap_or((v.trim(), ""));
    let secs: u64 = secs.parse().ok()?;
    let nanos = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(9).collect();
        let padded = format!("{digits:0<9}");
        padded.parse::<u32>().ok()?
    };
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtime_round_trips_in_rclone_format() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(format_mtime(t), "1700000000.123456789");
        assert_eq!(parse_mtime("1700000000.123456789"), Some(t));
        assert_eq!(
            parse_mtime("1700000000.5"),
            Some(UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000))
        );
        assert_eq!(
            parse_mtime("1700000000"),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(parse_mtime("garbage"), None);
        assert_eq!(parse_mtime("-5"), None);
    }

    #[test]
    fn kept_digests_must_match_size_and_etag() {
        let d = Digests::of(b"hello");
        let value = format!("1 5 {}", d.encode());
        let md5 = "5d41402abc4b2a76b9719d911017c592";
        let etag = format!("\"{md5}\"");
        assert_eq!(
            parse_digests(&value, 5, Some(&etag)),
            Some(StoredDigests { size: 5, digests: d })
        );
        assert_eq!(parse_digests(&value, 6, Some(&etag)), None, "other size");
        assert_eq!(
            parse_digests(&value, 5, Some("\"0123456789abcdef0123456789abcdef\"")),
            None,
            "other content"
        );
        assert_eq!(
            parse_digests(&value, 5, Some("\"abc-2\"")),
            None,
            "multipart ETag"
        );
        assert_eq!(parse_digests(&value, 5, None), None);
        assert_eq!(parse_digests("2 5 x", 5, Some(md5)), None);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let config = S3Config {
            bucket: "b".into(),
            access_key_id: Some("AKID".into()),
            secret_access_key: Some("very-secret".into()),
            ..S3Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("redacted"));
    }
}
