//! Test data: hashes, pseudo-random content, and trees of files to compare.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lower-case hex SHA-256 of the file at `path`.
pub fn sha256_file(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).expect("read within buffer"));
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything `file` holds, read from its start (the file's position is moved).
pub fn read_back(mut file: &std::fs::File) -> Vec<u8> {
    use std::io::Seek;
    let mut out = Vec::new();
    file.rewind().expect("rewind");
    file.read_to_end(&mut out).expect("read back");
    out
}

/// `len` pseudo-random bytes, the same for the same `seed` (cheap; for small and medium files).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `len` random bytes from /dev/urandom to `path` (fast, for large files); returns the SHA-256.
pub fn write_random_file(path: &Path, len: u64) -> String {
    let mut src = std::fs::File::open("/dev/urandom")
        .expect("open /dev/urandom")
        .take(len);
    let mut dst = std::fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let copied = std::io::copy(&mut src, &mut dst).expect("copy random bytes");
    assert_eq!(copied, len);
    drop(dst);
    sha256_file(path)
}

/// Writes `data` to `path`, creating parent directories.
pub fn write_file(path: &Path, data: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    }
    std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The bytes of the file at `path`.
/// Sets a file's modification time to `unix_secs` after the epoch.
pub fn set_mtime(path: &Path, unix_secs: u64) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_secs)))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

pub fn read_file(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every file and directory under `root` (relative paths, sorted), with each file's content; `skip`
/// names (e.g. wget's `.listing`) are left out.
pub fn tree(root: &Path, skip: &[&str]) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    walk(root, root, skip, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, skip: &[&str], out: &mut Vec<(PathBuf, Option<Vec<u8>>)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("dir entry");
        // `.ferry-dir` is the S3 back-end's hidden directory marker (FERRY_TEST_STORAGE=s3 serves
        // the files dir from a bucket): storage bookkeeping that no client sees.
        if skip.iter().any(|s| OsStr::new(s) == entry.file_name()) || entry.file_name() == ".ferry-dir" {
            continue;
        }
        let path = entry.path();
        let rel = path.strip_prefix(root).expect("under root").to_path_buf();
        let ft = entry.file_type().expect("file type");
        if ft.is_dir() {
            out.push((rel, None));
            walk(root, &path, skip, out);
        } else {
            out.push((rel, Some(read_file(&path))));
        }
    }
}

/// Asserts that two trees have the same entries and bytes, naming the first difference.
pub fn assert_same_tree(expected: &Path, actual: &Path, skip: &[&str]) {
    let a = tree(expected, skip);
    let b = tree(actual, skip);
    let names = |t: &[(PathBuf, Option<Vec<u8>>)]| t.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&a),
        names(&b),
        "trees differ in entries: {} vs {}",
        expected.display(),
        actual.display()
    );
    for ((p, x), (_, y)) in a.iter().zip(&b) {
        assert!(
            x == y,
            "content of {} differs ({} vs {})",
            p.display(),
            expected.display(),
            actual.display()
        );
    }
}

/// A nested tree for mirror tests: 3 levels, 30 files with spaces and UTF-8 names, an empty file, and
/// binary content. Returns the number of files written.
pub fn make_tree(root: &Path) -> usize {
    let mut n = 0;
    let dirs = [
        "",
        "docs",
        "docs/with space",
        "docs/with space/ünïcödé",
        "bin",
        "bin/deep",
        "bin/deep/er",
    ];
    for (d, dir) in dirs.iter().enumerate() {
        std::fs::create_dir_all(root.join(dir)).expect("mkdir tree");
        for i in 0..4 {
            let name = match i {
                0 => format!("file {i}.txt"),
                1 => format!("résumé ü {d}.txt"),
                2 => format!("data-{d}.bin"),
                _ => format!("plain{d}"),
            };
            let len = (d * 7919 + i * 104_729) % 70_000;
            write_file(
                &root.join(dir).join(name),
                pseudo_random(len, (d * 10 + i) as u64),
            );
            n += 1;
        }
    }
    write_file(&root.join("docs/empty"), b"");
    write_file(&root.join("bin/deep/er/last line.txt"), b"line one\nline two\n");
    n + 2
}

/// Writes `len` pseudo-random bytes (deterministic for a seed) to `path`.
pub fn write_random(path: &Path, len: usize, seed: u64) {
    let mut state = seed | 1;
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        data.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    data.truncate(len);
    std::fs::write(path, data).expect("write random file");
}

/// Makes the directory `path` (and its parents) in a test server's files dir as the server's storage
/// would hold one: on the S3 back-end (`FERRY_TEST_STORAGE=s3`) with the hidden empty marker
/// `.ferry-dir` that MKD writes, because an object store has no empty directories (s3s-fs, whose
/// objects are the files of the bucket directory, lists a directory only through the keys below it,
/// and answers a HEAD of one with an error).
pub fn make_dir(path: &Path) {
    std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    if crate::on_s3() {
        std::fs::write(path.join(".ferry-dir"), b"")
            .unwrap_or_else(|e| panic!("directory marker in {}: {e}", path.display()));
    }
}

/// Names in a host directory (sorted), hiding nothing but the S3 back-end's directory marker
/// `.ferry-dir`: upload temp files would show up here.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".ferry-dir")
        .collect();
    v.sort();
    v
}

/// The whole content of the file `path` (a virtual path such as `/dir/file`) in `storage`, or
/// `None` if it cannot be opened: what a back-end holds, read through the storage trait.
pub fn stored(storage: &dyn ferry_vfs::Storage, path: &str) -> Option<Vec<u8>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let path = ferry_vfs::VPath::parse(path.as_bytes()).expect("path");
        let mut reader = storage.open_read(&path, 0).await.ok()?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buf).await.expect("read");
            if n == 0 {
                return Some(out);
            }
            out.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
    })
}
