//! Storage metrics: [`Metered`] wraps the storage back-end `ferry serve` uses (and every store its
//! `scoped` returns) and counts each operation, and each failure by its [`ErrorKind`], under the
//! back-end's name.
//!
//! Counting a successful operation is one atomic add on a counter resolved when the store was
//! wrapped: no lock, no allocation of its own (the `async_trait` future of the wrapper is one box
//! per storage call, beside the back-end's own). Failures go through the metric family (a read
//! lock), which is fine off the hot path. A reader that offers a host file for zero-copy sending is
//! handed back untouched, so `sendfile` still works; other readers, writers, positional files and
//! listings are wrapped only to count their failures and commits.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use ferry_vfs::{
    Capabilities, DirEntry, DirStream, ErrorKind, FileReader, FileWriter, Metadata, OpenMode, PositionalFile,
    Result, Space, Storage, VPath, WriteOptions,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// A storage operation, as the `op` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `metadata` (stat).
    Metadata,
    /// Opening a directory listing (and, for failures, reading it).
    List,
    /// Opening a file for reading (and, for failures, reading it).
    Read,
    /// Opening a file for an upload (and, for failures, writing it).
    Write,
    /// Opening a file for reads and writes at any offset (SFTP; failures of its reads and writes too).
    Open,
    /// Making an upload visible under its name.
    Commit,
    /// Removing a file.
    Remove,
    /// Removing a directory.
    Rmdir,
    /// Creating a directory.
    Mkdir,
    /// Renaming.
    Rename,
    /// Setting a modification time or permission bits.
    SetAttr,
    /// Reading the free space.
    Space,
}

impl Op {
    /// Every operation, in documentation order.
    pub const ALL: [Op; 12] = [
        Op::Metadata,
        Op::List,
        Op::Read,
        Op::Write,
        Op::Open,
        Op::Commit,
        Op::Remove,
        Op::Rmdir,
        Op::Mkdir,
        Op::Rename,
        Op::SetAttr,
        Op::Space,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Metadata => "metadata",
            Op::List => "list",
            Op::Read => "read",
            Op::Write => "write",
            Op::Open => "open",
            Op::Commit => "commit",
            Op::Remove => "remove",
            Op::Rmdir => "rmdir",
            Op::Mkdir => "mkdir",
            Op::Rename => "rename",
            Op::SetAttr => "set_attr",
            Op::Space => "space",
        }
    }
}

/// An error kind as the `kind` label.
pub fn kind_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "not_found",
        ErrorKind::PermissionDenied => "permission_denied",
        ErrorKind::AlreadyExists => "already_exists",
        ErrorKind::NotADirectory => "not_a_directory",
        ErrorKind::IsADirectory => "is_a_directory",
        ErrorKind::DirectoryNotEmpty => "directory_not_empty",
        ErrorKind::InvalidName => "invalid_name",
        ErrorKind::QuotaExceeded => "quota_exceeded",
        ErrorKind::OffsetOutOfRange => "offset_out_of_range",
        ErrorKind::MoveIntoItself => "move_into_itself",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Transient => "transient",
        ErrorKind::TimedOut => "timed_out",
        ErrorKind::Io => "io",
    }
}

/// `backend` and `op` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByOp {
    backend: &'static str,
    op: &'static str,
}

/// `backend`, `op` and `kind` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ByError {
    backend: &'static str,
    op: &'static str,
    kind: &'static str,
}

/// The storage metric families.
#[derive(Debug, Clone)]
pub struct StorageMetrics {
    operations: Family<ByOp, Counter>,
    errors: Family<ByError, Counter>,
}

impl StorageMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let operations = Family::<ByOp, Counter>::default();
        let errors = Family::<ByError, Counter>::default();
        registry.register(
            "storage_operations",
            "Calls to the storage back-end, by back-end (local, memory, s3) and operation",
            operations.clone(),
        );
        registry.register(
            "storage_errors",
            "Storage operations that failed, by back-end, operation and error kind (a series appears \
             with its first error)",
            errors.clone(),
        );
        StorageMetrics { operations, errors }
    }
}

/// The counters of one back-end, resolved once.
#[derive(Debug)]
struct Meter {
    backend: &'static str,
    /// Indexed like [`Op::ALL`].
    ops: [Counter; Op::ALL.len()],
    errors: Family<ByError, Counter>,
}

impl Meter {
    fn count(&self, op: Op) {
        // `Op::ALL` lists every variant in declaration order, so the discriminant is the index.
        self.ops[op as usize].inc();
    }

    fn failed(&self, op: Op, kind: ErrorKind) {
        self.errors
            .get_or_create(&ByError {
                backend: self.backend,
                op: op.as_str(),
                kind: kind_label(kind),
            })
            .inc();
    }

    /// Counts the failure of `result`, if it is one.
    fn check<T>(&self, op: Op, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            self.failed(op, e.kind());
        }
        result
    }

    /// Counts `op` and its failure, if it fails.
    fn outcome<T>(&self, op: Op, result: Result<T>) -> Result<T> {
        self.count(op);
        self.check(op, result)
    }
}

/// A storage back-end whose operations are counted.
#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn Storage>,
    meter: Arc<Meter>,
}

impl Metered {
    /// Counts the operations of `inner` in `metrics`, under `inner.backend_name()`; its series
    /// appear at zero now.
    pub fn wrap(inner: Arc<dyn Storage>, metrics: &StorageMetrics) -> Arc<dyn Storage> {
        let backend = inner.backend_name();
        let ops = Op::ALL.map(|op| {
            metrics
                .operations
                .get_or_create(&ByOp {
                    backend,
                    op: op.as_str(),
                })
                .clone()
        });
        let meter = Arc::new(Meter {
            backend,
            ops,
            errors: metrics.errors.clone(),
        });
        Arc::new(Metered { inner, meter })
    }
}

#[async_trait]
impl Storage for Metered {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }

    async fn metadata(&self, path: &VPath) -> Result<Metadata> {
        let r = self.inner.metadata(path).await;
        self.meter.outcome(Op::Metadata, r)
    }

    async fn stored_digests(&self, path: &VPath) -> Result<Option<ferry_vfs::StoredDigests>> {
        let r = self.inner.stored_digests(path).await;
        self.meter.outcome(Op::Metadata, r)
    }

    async fn list(&self, path: &VPath) -> Result<Box<dyn DirStream>> {
        let r = self.inner.list(path).await;
        let inner = self.meter.outcome(Op::List, r)?;
        Ok(Box::new(MeteredList {
            inner,
            meter: Arc::clone(&self.meter),
        }))
    }

    async fn open_read(&self, path: &VPath, offset: u64) -> Result<Box<dyn FileReader>> {
        let r = self.inner.open_read(path, offset).await;
        let inner = self.meter.outcome(Op::Read, r)?;
        if inner.zero_copy().is_some() {
            // Sent with sendfile from the host file: handed over untouched.
            return Ok(inner);
        }
        Ok(Box::new(MeteredReader {
            inner,
            meter: Arc::clone(&self.meter),
        }))
    }

    async fn open_write(&self, path: &VPath, options: WriteOptions) -> Result<Box<dyn FileWriter>> {
        let r = self.inner.open_write(path, options).await;
        let inner = self.meter.outcome(Op::Write, r)?;
        Ok(Box::new(MeteredWriter {
            inner,
            meter: Arc::clone(&self.meter),
        }))
    }

    async fn create_dir(&self, path: &VPath) -> Result<()> {
        let r = self.inner.create_dir(path).await;
        self.meter.outcome(Op::Mkdir, r)
    }

    async fn remove_dir(&self, path: &VPath) -> Result<()> {
        let r = self.inner.remove_dir(path).await;
        self.meter.outcome(Op::Rmdir, r)
    }

    async fn remove_file(&self, path: &VPath) -> Result<()> {
        let r = self.inner.remove_file(path).await;
        self.meter.outcome(Op::Remove, r)
    }

    async fn rename(&self, from: &VPath, to: &VPath, replace: bool) -> Result<()> {
        let r = self.inner.rename(from, to, replace).await;
        self.meter.outcome(Op::Rename, r)
    }

    async fn set_modified(&self, path: &VPath, t: SystemTime) -> Result<()> {
        let r = self.inner.set_modified(path, t).await;
        self.meter.outcome(Op::SetAttr, r)
    }

    async fn set_mode(&self, path: &VPath, mode: u32) -> Result<()> {
        let r = self.inner.set_mode(path, mode).await;
        self.meter.outcome(Op::SetAttr, r)
    }

    async fn space(&self) -> Result<Space> {
        let r = self.inner.space().await;
        self.meter.outcome(Op::Space, r)
    }

    async fn scoped(&self, home: &VPath, create: bool) -> Result<Arc<dyn Storage>> {
        // Not an operation of its own (a login's home); the store it returns is counted too.
        let inner = self.inner.scoped(home, create).await?;
        Ok(Arc::new(Metered {
            inner,
            meter: Arc::clone(&self.meter),
        }))
    }

    async fn open_file(&self, path: &VPath, mode: OpenMode) -> Result<Box<dyn PositionalFile>> {
        let r = self.inner.open_file(path, mode).await;
        let inner = self.meter.outcome(Op::Open, r)?;
        Ok(Box::new(MeteredFile {
            inner,
            meter: Arc::clone(&self.meter),
            writes: !matches!(mode, OpenMode::Read),
        }))
    }
}

/// A listing whose failures count as `list` errors.
#[derive(Debug)]
struct MeteredList {
    inner: Box<dyn DirStream>,
    meter: Arc<Meter>,
}

#[async_trait]
impl DirStream for MeteredList {
    async fn next_batch(&mut self, max: usize) -> Result<Vec<DirEntry>> {
        let r = self.inner.next_batch(max).await;
        self.meter.check(Op::List, r)
    }
}

/// A reader whose failures count as `read` errors.
#[derive(Debug)]
struct MeteredReader {
    inner: Box<dyn FileReader>,
    meter: Arc<Meter>,
}

#[async_trait]
impl FileReader for MeteredReader {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let r = self.inner.read(buf).await;
        self.meter.check(Op::Read, r)
    }

    fn size(&self) -> Option<u64> {
        self.inner.size()
    }

    fn zero_copy(&self) -> Option<&std::fs::File> {
        self.inner.zero_copy()
    }
}

/// A writer whose failures count as `write` errors and whose commit is a `commit`.
#[derive(Debug)]
struct MeteredWriter {
    inner: Box<dyn FileWriter>,
    meter: Arc<Meter>,
}

#[async_trait]
impl FileWriter for MeteredWriter {
    async fn write_owned(&mut self, buf: Vec<u8>) -> Result<Vec<u8>> {
        let r = self.inner.write_owned(buf).await;
        self.meter.check(Op::Write, r)
    }

    async fn commit(self: Box<Self>) -> Result<u64> {
        let r = self.inner.commit().await;
        self.meter.outcome(Op::Commit, r)
    }

    async fn commit_with(self: Box<Self>, last: Vec<u8>) -> Result<u64> {
        // The back-end's own commit_with (one trip where it has one).
        let r = self.inner.commit_with(last).await;
        self.meter.outcome(Op::Commit, r)
    }

    async fn abort(self: Box<Self>) {
        self.inner.abort().await;
    }

    fn zero_copy(&mut self) -> Option<std::fs::File> {
        self.inner.zero_copy()
    }

    fn zero_copy_written(&mut self, n: u64) -> Result<()> {
        let r = self.inner.zero_copy_written(n);
        self.meter.check(Op::Write, r)
    }
}

/// A positional file whose failures count as `open` errors and whose commit is a `commit` (when
/// it was opened for writing: closing a file opened to read it commits nothing).
#[derive(Debug)]
struct MeteredFile {
    inner: Box<dyn PositionalFile>,
    meter: Arc<Meter>,
    writes: bool,
}

#[async_trait]
impl PositionalFile for MeteredFile {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let r = self.inner.read_at(offset, len).await;
        self.meter.check(Op::Open, r)
    }

    async fn write_at(&self, offset: u64, data: Vec<u8>) -> Result<()> {
        let r = self.inner.write_at(offset, data).await;
        self.meter.check(Op::Open, r)
    }

    async fn metadata(&self) -> Result<Metadata> {
        let r = self.inner.metadata().await;
        self.meter.check(Op::Open, r)
    }

    async fn set_len(&self, len: u64) -> Result<()> {
        let r = self.inner.set_len(len).await;
        self.meter.check(Op::Open, r)
    }

    async fn set_modified(&self, t: SystemTime) -> Result<()> {
        let r = self.inner.set_modified(t).await;
        self.meter.outcome(Op::SetAttr, r)
    }

    async fn set_mode(&self, mode: u32) -> Result<()> {
        let r = self.inner.set_mode(mode).await;
        self.meter.outcome(Op::SetAttr, r)
    }

    async fn sync(&self) -> Result<()> {
        let r = self.inner.sync().await;
        self.meter.check(Op::Open, r)
    }

    async fn commit(&self) -> Result<()> {
        let r = self.inner.commit().await;
        if self.writes {
            self.meter.count(Op::Commit);
        }
        self.meter.check(Op::Commit, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_vfs::MemoryFs;

    fn sample(text: &str, name: &str, labels: &[&str]) -> Option<String> {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    }

    #[tokio::test]
    async fn operations_and_errors_are_counted_by_backend_op_and_kind() {
        let mut registry = Registry::default();
        let metrics = StorageMetrics::register(&mut registry);
        let fs = Metered::wrap(Arc::new(MemoryFs::new()), &metrics);
        let home = VPath::parse(b"/home").expect("path");
        fs.create_dir(&home).await.expect("mkdir");
        let scoped = fs.scoped(&home, false).await.expect("scoped");
        let file = VPath::parse(b"/f").expect("path");
        let mut w = scoped
            .open_write(&file, WriteOptions::replace())
            .await
            .expect("open_write");
        w.write_owned(b"hello".to_vec()).await.expect("write");
        assert_eq!(w.commit().await.expect("commit"), 5);
        assert!(scoped
            .metadata(&VPath::parse(b"/nope").expect("path"))
            .await
            .is_err());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        let op = |op: &str| {
            sample(
                &text,
                "storage_operations_total",
                &["backend=\"memory\"", &format!("op=\"{op}\"")],
            )
        };
        assert_eq!(op("mkdir").as_deref(), Some("1"), "{text}");
        assert_eq!(op("write").as_deref(), Some("1"), "{text}");
        assert_eq!(op("commit").as_deref(), Some("1"), "{text}");
        assert_eq!(op("metadata").as_deref(), Some("1"), "{text}");
        assert_eq!(op("rename").as_deref(), Some("0"), "{text}");
        assert_eq!(
            sample(
                &text,
                "storage_errors_total",
                &["op=\"metadata\"", "kind=\"not_found\""]
            )
            .as_deref(),
            Some("1"),
            "{text}"
        );
    }
}
