//! An in-memory back-end with object-store semantics only, for fast tests that keep the trait
//! honest: whole objects written once through a [`FileWriter`] and visible only on commit, ranged
//! reads, explicit directory markers; no rename, no append, no resume, no random writes, no
//! permission bits, no space figures ([`Capabilities`] says so and the operations answer
//! `Unsupported`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::{
    Capabilities, DirEntry, DirStream, FileReader, FileWriter, Metadata, OpenMode, PositionalFile, Space,
    Storage, WriteMode, WriteOptions,
};
use crate::{EntryKind, StoredDigests, VPath};

/// A store held in memory, shared by every clone and by [`Storage::scoped`] views of it.
#[derive(Debug, Clone)]
pub struct MemoryFs {
    tree: Arc<Mutex<Tree>>,
    /// Where this view's root lies in the tree.
    base: VPath,
}

#[derive(Debug)]
enum Node {
    Dir {
        modified: SystemTime,
    },
    File {
        data: Arc<Vec<u8>>,
        modified: SystemTime,
    },
}

/// Every object by its full path; the root directory always exists.
#[derive(Debug, Default)]
struct Tree {
    nodes: BTreeMap<VPath, Node>,
    /// Exclusive uploads in progress (the name is taken until they end).
    reserved: std::collections::HashSet<VPath>,
}

impl Default for MemoryFs {
    fn default() -> Self {
        MemoryFs::new()
    }
}

impl MemoryFs {
    /// An empty store.
    pub fn new() -> MemoryFs {
        let mut tree = Tree::default();
        tree.nodes.insert(
            VPath::root(),
            Node::Dir {
                modified: SystemTime::now(),
            },
        );
        MemoryFs {
            tree: Arc::new(Mutex::new(tree)),
            base: VPath::root(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The full path of `path` in the tree.
    fn full(&self, path: &VPath) -> Result<VPath> {
        self.base
            .join_name(path.relative())
            .map_err(|_| Error::new(ErrorKind::InvalidName))
    }
}

impl Tree {
    fn metadata(&self, path: &VPath) -> Result<Metadata> {
        match self.nodes.get(path) {
            Some(node) => Ok(meta(node)),
            None => Err(self.missing(path)),
        }
    }

    /// `NotFound`, or `NotADirectory` if a parent is a file.
    fn missing(&self, path: &VPath) -> Error {
        let mut p = path.parent();
        loop {
            if let Some(Node::File { .. }) = self.nodes.get(&p) {
                return ErrorKind::NotADirectory.into();
            }
            if p.is_root() {
                return ErrorKind::NotFound.into();
            }
            p = p.parent();
        }
    }

    /// Fails unless the parent of `path` is a directory.
    fn check_parent(&self, path: &VPath) -> Result<()> {
        match self.nodes.get(&path.parent()) {
            Some(Node::Dir { .. }) => Ok(()),
            Some(Node::File { .. }) => Err(ErrorKind::NotADirectory.into()),
            None => Err(self.missing(&path.parent())),
        }
    }

    fn children<'a>(&'a self, dir: &'a VPath) -> impl Iterator<Item = (&'a VPath, &'a Node)> + 'a {
        // A scan: `/d-x` sorts between `/d` and `/d/f`, so a range would need care; tests are small.
        self.nodes
            .iter()
            .filter(move |(p, _)| !p.is_root() && p.parent() == *dir)
    }
}

fn meta(node: &Node) -> Metadata {
    match node {
        Node::Dir { modified } => Metadata {
            kind: EntryKind::Dir,
            size: 0,
            modified: Some(*modified),
            mode: None,
            nlink: 1,
            unique: None,
        },
        Node::File { data, modified } => Metadata {
            kind: EntryKind::File,
            size: data.len() as u64,
            modified: Some(*modified),
            mode: None,
            nlink: 1,
            unique: None,
        },
    }
}

fn unsupported(what: &'static str) -> Error {
    Error::new(ErrorKind::Unsupported).detail(what)
}

#[async_trait]
impl Storage for MemoryFs {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            set_modified: true,
            ..Capabilities::default()
        }
    }

    fn backend_name(&self) -> &'static str {
        "memory"
    }

    async fn metadata(&self, path: &VPath) -> Result<Metadata> {
        let full = self.full(path)?;
        self.lock().metadata(&full)
    }

    async fn stored_digests(&self, _path: &VPath) -> Result<Option<StoredDigests>> {
        // Nothing is kept beside files here: checksums are computed on demand.
        Ok(None)
    }

    async fn list(&self, path: &VPath) -> Result<Box<dyn DirStream>> {
        let full = self.full(path)?;
        let tree = self.lock();
        match tree.nodes.get(&full) {
            Some(Node::Dir { .. }) => {}
            Some(Node::File { .. }) => return Err(ErrorKind::NotADirectory.into()),
            None => return Err(tree.missing(&full)),
        }
        let entries: Vec<DirEntry> = tree
            .children(&full)
            .map(|(p, node)| DirEntry {
                name: p.file_name().unwrap_or_default().to_vec(),
                metadata: meta(node),
            })
            .collect();
        Ok(Box::new(MemoryList { entries, next: 0 }))
    }

    async fn open_read(&self, path: &VPath, offset: u64) -> Result<Box<dyn FileReader>> {
        let full = self.full(path)?;
        let tree = self.lock();
        match tree.nodes.get(&full) {
            Some(Node::File { data, .. }) => Ok(Box::new(MemoryReader {
                data: Arc::clone(data),
                pos: usize::try_from(offset).unwrap_or(usize::MAX),
            })),
            Some(Node::Dir { .. }) => Err(ErrorKind::IsADirectory.into()),
            None => Err(tree.missing(&full)),
        }
    }

    async fn open_write(&self, path: &VPath, options: WriteOptions) -> Result<Box<dyn FileWriter>> {
        let exclusive = match options.mode {
            WriteMode::New { exclusive } => exclusive,
            WriteMode::Resume { .. } => return Err(unsupported("the memory back-end cannot resume uploads")),
            WriteMode::Append => return Err(unsupported("the memory back-end cannot append")),
        };
        if path.is_root() {
            return Err(ErrorKind::IsADirectory.into());
        }
        let full = self.full(path)?;
        let mut tree = self.lock();
        tree.check_parent(&full)?;
        match tree.nodes.get(&full) {
            Some(Node::Dir { .. }) => return Err(ErrorKind::IsADirectory.into()),
            Some(Node::File { .. }) if exclusive => return Err(ErrorKind::AlreadyExists.into()),
            _ => {}
        }
        if exclusive && !tree.reserved.insert(full.clone()) {
            return Err(ErrorKind::AlreadyExists.into());
        }
        Ok(Box::new(MemoryWriter {
            fs: self.clone(),
            path: full,
            data: Vec::new(),
            exclusive,
            done: false,
        }))
    }

    async fn create_dir(&self, path: &VPath) -> Result<()> {
        let full = self.full(path)?;
        let mut tree = self.lock();
        if tree.nodes.contains_key(&full) {
            return Err(ErrorKind::AlreadyExists.into());
        }
        tree.check_parent(&full)?;
        tree.nodes.insert(
            full,
            Node::Dir {
                modified: SystemTime::now(),
            },
        );
        Ok(())
    }

    async fn remove_dir(&self, path: &VPath) -> Result<()> {
        if path.is_root() {
            return Err(ErrorKind::PermissionDenied.into());
        }
        let full = self.full(path)?;
        let mut tree = self.lock();
        match tree.nodes.get(&full) {
            Some(Node::Dir { .. }) => {}
            Some(Node::File { .. }) => return Err(ErrorKind::NotADirectory.into()),
            None => return Err(tree.missing(&full)),
        }
        if tree.children(&full).next().is_some() {
            return Err(ErrorKind::DirectoryNotEmpty.into());
        }
        tree.nodes.remove(&full);
        Ok(())
    }

    async fn remove_file(&self, path: &VPath) -> Result<()> {
        let full = self.full(path)?;
        let mut tree = self.lock();
        match tree.nodes.get(&full) {
            Some(Node::File { .. }) => {
                tree.nodes.remove(&full);
                Ok(())
            }
            Some(Node::Dir { .. }) => Err(ErrorKind::IsADirectory.into()),
            None => Err(tree.missing(&full)),
        }
    }

    async fn rename(&self, _from: &VPath, _to: &VPath, _replace: bool) -> Result<()> {
        Err(unsupported("the memory back-end cannot rename"))
    }

    async fn set_modified(&self, path: &VPath, t: SystemTime) -> Result<()> {
        let full = self.full(path)?;
        let mut tree = self.lock();
        match tree.nodes.get_mut(&full) {
            Some(Node::File { modified, .. } | Node::Dir { modified }) => {
                *modified = t;
                Ok(())
            }
            None => Err(ErrorKind::NotFound.into()),
        }
    }

    async fn set_mode(&self, _path: &VPath, _mode: u32) -> Result<()> {
        Err(unsupported("the memory back-end has no permission bits"))
    }

    async fn space(&self) -> Result<Space> {
        Err(unsupported("the memory back-end has no space figures"))
    }

    async fn scoped(&self, home: &VPath, create: bool) -> Result<Arc<dyn Storage>> {
        let full = self.full(home)?;
        let mut tree = self.lock();
        if create {
            let mut chain = vec![full.clone()];
            let mut p = full.clone();
            while !p.is_root() {
                p = p.parent();
                chain.push(p.clone());
            }
            for dir in chain.into_iter().rev() {
                match tree.nodes.get(&dir) {
                    Some(Node::Dir { .. }) => {}
                    Some(Node::File { .. }) => return Err(ErrorKind::NotADirectory.into()),
                    None => {
                        tree.nodes.insert(
                            dir,
                            Node::Dir {
                                modified: SystemTime::now(),
                            },
                        );
                    }
                }
            }
        }
        match tree.nodes.get(&full) {
            Some(Node::Dir { .. }) => Ok(Arc::new(MemoryFs {
                tree: Arc::clone(&self.tree),
                base: full,
            })),
            Some(Node::File { .. }) => Err(ErrorKind::NotADirectory.into()),
            None => Err(ErrorKind::NotFound.into()),
        }
    }

    async fn open_file(&self, _path: &VPath, _mode: OpenMode) -> Result<Box<dyn PositionalFile>> {
        Err(unsupported("the memory back-end has no random access"))
    }
}

#[derive(Debug)]
struct MemoryList {
    entries: Vec<DirEntry>,
    next: usize,
}

#[async_trait]
impl DirStream for MemoryList {
    async fn next_batch(&mut self, max: usize) -> Result<Vec<DirEntry>> {
        let end = self.entries.len().min(self.next + max.max(1));
        let batch = self.entries.get(self.next..end).unwrap_or_default().to_vec();
        self.next = end;
        Ok(batch)
    }
}

#[derive(Debug)]
struct MemoryReader {
    data: Arc<Vec<u8>>,
    pos: usize,
}

#[async_trait]
impl FileReader for MemoryReader {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos += n;
        Ok(n)
    }

    fn size(&self) -> Option<u64> {
        Some(self.data.len() as u64)
    }
}

/// An upload held in memory until committed (a single PUT).
#[derive(Debug)]
struct MemoryWriter {
    fs: MemoryFs,
    path: VPath,
    data: Vec<u8>,
    exclusive: bool,
    done: bool,
}

impl MemoryWriter {
    fn release(&mut self) {
        if self.exclusive && !self.done {
            self.fs.lock().reserved.remove(&self.path);
        }
        self.done = true;
    }
}

#[async_trait]
impl FileWriter for MemoryWriter {
    async fn write_owned(&mut self, buf: Vec<u8>) -> Result<Vec<u8>> {
        if self.data.is_empty() {
            // Take the buffer itself: no copy for a single-buffer upload.
            self.data = buf;
            return Ok(Vec::new());
        }
        self.data.extend_from_slice(&buf);
        Ok(buf)
    }

    async fn commit(mut self: Box<Self>) -> Result<u64> {
        let data = std::mem::take(&mut self.data);
        let len = data.len() as u64;
        let result = {
            let mut tree = self.fs.lock();
            if let Err(e) = tree.check_parent(&self.path) {
                Err(e)
            } else {
                match tree.nodes.get(&self.path) {
                    Some(Node::Dir { .. }) => Err(ErrorKind::IsADirectory.into()),
                    Some(Node::File { .. }) if self.exclusive => Err(ErrorKind::AlreadyExists.into()),
                    _ => {
                        tree.nodes.insert(
                            self.path.clone(),
                            Node::File {
                                data: Arc::new(data),
                                modified: SystemTime::now(),
                            },
                        );
                        Ok(len)
                    }
                }
            }
        };
        self.release();
        result
    }

    async fn abort(mut self: Box<Self>) {
        self.release();
    }
}

impl Drop for MemoryWriter {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(p: &str) -> VPath {
        VPath::parse(p.as_bytes()).expect("path")
    }

    async fn put(fs: &MemoryFs, p: &str, data: &[u8]) -> Result<u64> {
        let mut w = fs.open_write(&v(p), WriteOptions::replace()).await?;
        w.write_owned(data.to_vec()).await?;
        w.commit().await
    }

    async fn get(fs: &dyn Storage, p: &str, offset: u64) -> Vec<u8> {
        let mut r = fs.open_read(&v(p), offset).await.expect("open");
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            let n = r.read(&mut buf).await.expect("read");
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[tokio::test]
    async fn objects_appear_only_on_commit_and_read_by_range() {
        let fs = MemoryFs::new();
        let mut w = fs
            .open_write(&v("/a"), WriteOptions::replace())
            .await
            .expect("open");
        w.write_owned(b"hello ".to_vec()).await.expect("write");
        w.write_owned(b"world".to_vec()).await.expect("write");
        assert_eq!(
            fs.metadata(&v("/a")).await.err().map(|e| e.kind()),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(w.commit().await.expect("commit"), 11);
        assert_eq!(get(&fs, "/a", 0).await, b"hello world");
        assert_eq!(get(&fs, "/a", 6).await, b"world");
        // An aborted (or dropped) upload leaves the old object.
        let mut w = fs
            .open_write(&v("/a"), WriteOptions::replace())
            .await
            .expect("open");
        w.write_owned(b"x".to_vec()).await.expect("write");
        drop(w);
        assert_eq!(get(&fs, "/a", 0).await, b"hello world");
    }

    #[tokio::test]
    async fn capabilities_are_honest() {
        let fs = MemoryFs::new();
        let caps = fs.capabilities();
        assert!(!caps.rename && !caps.append && !caps.random_write && !caps.resume);
        put(&fs, "/a", b"x").await.expect("put");
        let kind = |r: Result<()>| r.err().map(|e| e.kind());
        assert_eq!(
            kind(fs.rename(&v("/a"), &v("/b"), true).await),
            Some(ErrorKind::Unsupported)
        );
        for mode in [WriteMode::Append, WriteMode::Resume { offset: 1 }] {
            let r = fs.open_write(&v("/a"), WriteOptions::with_mode(mode)).await;
            assert_eq!(r.err().map(|e| e.kind()), Some(ErrorKind::Unsupported));
        }
        let r = fs.open_file(&v("/a"), OpenMode::Read).await;
        assert_eq!(r.err().map(|e| e.kind()), Some(ErrorKind::Unsupported));
    }

    #[tokio::test]
    async fn exclusive_uploads_take_the_name_until_they_end() {
        let fs = MemoryFs::new();
        let new = WriteOptions::with_mode(WriteMode::New { exclusive: true });
        let first = fs.open_write(&v("/x"), new).await.expect("first");
        let second = fs.open_write(&v("/x"), new).await;
        assert_eq!(second.err().map(|e| e.kind()), Some(ErrorKind::AlreadyExists));
        first.commit().await.expect("commit");
        let third = fs.open_write(&v("/x"), new).await;
        assert_eq!(third.err().map(|e| e.kind()), Some(ErrorKind::AlreadyExists));
    }

    #[tokio::test]
    async fn directories_list_scope_and_refuse_removal_when_not_empty() {
        let fs = MemoryFs::new();
        fs.create_dir(&v("/d")).await.expect("mkdir");
        put(&fs, "/d/f", b"1").await.expect("put");
        put(&fs, "/d/g", b"22").await.expect("put");
        let kind = |r: Result<()>| r.err().map(|e| e.kind());
        assert_eq!(
            kind(fs.remove_dir(&v("/d")).await),
            Some(ErrorKind::DirectoryNotEmpty)
        );
        assert_eq!(
            kind(put(&fs, "/nodir/f", b"").await.map(drop)),
            Some(ErrorKind::NotFound)
        );
        let mut list = fs.list(&v("/d")).await.expect("list");
        let mut names = Vec::new();
        loop {
            let batch = list.next_batch(1).await.expect("batch");
            if batch.is_empty() {
                break;
            }
            names.extend(batch.into_iter().map(|e| e.name));
        }
        assert_eq!(names, vec![b"f".to_vec(), b"g".to_vec()]);
        let home = fs.scoped(&v("/d"), false).await.expect("scoped");
        assert_eq!(get(home.as_ref(), "/g", 0).await, b"22");
        let made = fs.scoped(&v("/h/i"), true).await.expect("created");
        assert!(made.metadata(&VPath::root()).await.is_ok());
        fs.remove_file(&v("/d/f")).await.expect("rm");
        fs.remove_file(&v("/d/g")).await.expect("rm");
        fs.remove_dir(&v("/d")).await.expect("rmdir");
    }
}
