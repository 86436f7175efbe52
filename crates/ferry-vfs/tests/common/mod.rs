//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use ferry_vfs::{
    DirStream, ErrorKind, FileReader, FileWriter, LocalFs, Metadata, OpenMode, Permissions, PositionalFile,
    Protocol, Result, Space, Storage, Upload, UploadWriter, UserFs, VPath,
};
use tempfile::TempDir;

/// The upload modes these tests use, named as the trait's were before paths became typed.
#[derive(Debug, Clone, Copy)]
pub enum WriteMode {
    Create,
    Append,
    At(u64),
    Unique,
}

impl WriteMode {
    fn upload(self) -> Upload {
        match self {
            WriteMode::Create => Upload::Replace,
            WriteMode::Append => Upload::Append,
            WriteMode::At(offset) => Upload::Resume(offset),
            WriteMode::Unique => Upload::Unique,
        }
    }
}

/// Normalises a test path (a NUL byte or an overlong path is an invalid name, as front ends answer).
pub fn vp(path: &[u8]) -> Result<VPath> {
    VPath::parse(path).map_err(|_| ErrorKind::InvalidName.into())
}

/// A storage addressed with byte paths, so the tests read as the client's requests would.
#[derive(Debug, Clone)]
pub struct ByteFs(pub Arc<dyn Storage>);

impl ByteFs {
    pub async fn metadata(&self, p: &[u8]) -> Result<Metadata> {
        self.0.metadata(&vp(p)?).await
    }
    pub async fn list(&self, p: &[u8]) -> Result<Box<dyn DirStream>> {
        self.0.list(&vp(p)?).await
    }
    pub async fn open_read(&self, p: &[u8], offset: u64) -> Result<Box<dyn FileReader>> {
        self.0.open_read(&vp(p)?, offset).await
    }
    /// Opens an upload through the policy layer (a user with every permission), which is how
    /// front ends upload.
    pub async fn open_write(&self, p: &[u8], mode: WriteMode) -> Result<Box<UploadWriter>> {
        let fs = UserFs::new(Arc::clone(&self.0), Protocol::Ftp, "test", Permissions::all());
        Ok(Box::new(fs.upload(&vp(p)?, mode.upload(), None).await?))
    }
    pub async fn create_dir(&self, p: &[u8]) -> Result<()> {
        self.0.create_dir(&vp(p)?).await
    }
    pub async fn remove_dir(&self, p: &[u8]) -> Result<()> {
        self.0.remove_dir(&vp(p)?).await
    }
    pub async fn remove_file(&self, p: &[u8]) -> Result<()> {
        self.0.remove_file(&vp(p)?).await
    }
    pub async fn rename(&self, from: &[u8], to: &[u8]) -> Result<()> {
        self.0.rename(&vp(from)?, &vp(to)?, true).await
    }
    pub async fn rename_noreplace(&self, from: &[u8], to: &[u8]) -> Result<()> {
        self.0.rename(&vp(from)?, &vp(to)?, false).await
    }
    pub async fn set_modified(&self, p: &[u8], t: SystemTime) -> Result<()> {
        self.0.set_modified(&vp(p)?, t).await
    }
    pub async fn set_mode(&self, p: &[u8], mode: u32) -> Result<()> {
        self.0.set_mode(&vp(p)?, mode).await
    }
    pub async fn space(&self) -> Result<Space> {
        self.0.space().await
    }
    pub async fn scoped(&self, p: &[u8], create: bool) -> Result<ByteFs> {
        Ok(ByteFs(self.0.scoped(&vp(p)?, create).await?))
    }
    pub async fn open_file(&self, p: &[u8], mode: OpenMode) -> Result<Box<dyn PositionalFile>> {
        self.0.open_file(&vp(p)?, mode).await
    }
}

/// A temp dir holding `root/` (the jail) and `outside/secret.txt` (must stay unreachable).
pub struct Jail {
    pub tmp: TempDir,
    pub fs: ByteFs,
}

impl Jail {
    pub fn new() -> Jail {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(tmp.path().join("outside")).expect("outside dir");
        std::fs::write(tmp.path().join("outside/secret.txt"), b"top secret").expect("secret");
        let fs = LocalFs::open(&tmp.path().join("root")).expect("open jail");
        Jail {
            tmp,
            fs: ByteFs(Arc::new(fs)),
        }
    }

    /// The host path of something inside the jail.
    pub fn host(&self, rel: &str) -> PathBuf {
        self.tmp.path().join("root").join(rel)
    }

    /// The host path of the directory next to the jail.
    pub fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }
}

pub async fn read_all(fs: &ByteFs, path: &[u8], offset: u64) -> Result<Vec<u8>> {
    let mut reader = fs.open_read(path, offset).await?;
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

pub async fn upload(fs: &ByteFs, path: &[u8], mode: WriteMode, data: &[u8]) -> Result<u64> {
    let mut writer = fs.open_write(path, mode).await?;
    writer.write_owned(data.to_vec()).await?;
    writer.commit().await
}

pub async fn list_names(fs: &ByteFs, path: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut stream = fs.list(path).await?;
    let mut names = Vec::new();
    loop {
        let batch = stream.next_batch(100).await?;
        if batch.is_empty() {
            break;
        }
        names.extend(batch.into_iter().map(|e| e.name));
    }
    names.sort();
    Ok(names)
}

/// Names of all entries in a host directory, including hidden temp files.
pub fn host_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
