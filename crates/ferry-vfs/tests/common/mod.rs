//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use ferry_vfs::{LocalFs, Result, Storage, WriteMode};
use tempfile::TempDir;

/// A temp dir holding `root/` (the jail) and `outside/secret.txt` (must stay unreachable).
pub struct Jail {
    pub tmp: TempDir,
    pub fs: LocalFs,
}

impl Jail {
    pub fn new() -> Jail {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(tmp.path().join("outside")).expect("outside dir");
        std::fs::write(tmp.path().join("outside/secret.txt"), b"top secret").expect("secret");
        let fs = LocalFs::open(&tmp.path().join("root")).expect("open jail");
        Jail { tmp, fs }
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

pub async fn read_all(fs: &dyn Storage, path: &[u8], offset: u64) -> Result<Vec<u8>> {
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

pub async fn upload(fs: &dyn Storage, path: &[u8], mode: WriteMode, data: &[u8]) -> Result<u64> {
    let mut writer = fs.open_write(path, mode).await?;
    writer.write_all(data).await?;
    writer.commit().await
}

pub async fn list_names(fs: &dyn Storage, path: &[u8]) -> Result<Vec<Vec<u8>>> {
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
