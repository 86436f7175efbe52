//! Plain binary STOR into the local back-end is received with `splice` (socket → pipe → file, the
//! bytes never in user space) and stays exactly as safe as the copying path: every byte arrives in
//! order, and an upload cut off by a reset or an ABOR leaves the old file and no temp file.
//!
//! FTPS uploads take the same route into the file without the pipe: the server decrypts into a
//! buffer and writes it into the writer's zero-copy file on its own thread, and the client's
//! close_notify is still what commits the upload.
//!
//! A spy around the local back-end counts the bytes that arrive through the writer's zero-copy file
//! and through ordinary writes, so these tests fail if the server quietly stops splicing as well as
//! if splicing loses or reorders bytes.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use common::{
    pseudo_random, python_ftps, read_file, require, reset, wait_until, write_file, Options, TestServer,
};
use ferry_vfs::{
    Capabilities, DirStream, FileReader, FileWriter, LocalFs, Metadata, OpenMode, PositionalFile, Result,
    Space, Storage, StoredDigests, VPath, WriteOptions,
};

/// Bytes that reached the back-end by each route.
#[derive(Debug, Default)]
struct Counts {
    spliced: AtomicU64,
    copied: AtomicU64,
}

impl Counts {
    fn take(&self) -> (u64, u64) {
        (
            self.spliced.swap(0, Ordering::SeqCst),
            self.copied.swap(0, Ordering::SeqCst),
        )
    }
}

/// The local back-end, counting what its writers receive.
#[derive(Debug)]
struct Spy {
    inner: Arc<dyn Storage>,
    counts: Arc<Counts>,
}

#[async_trait]
impl Storage for Spy {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }
    async fn metadata(&self, path: &VPath) -> Result<Metadata> {
        self.inner.metadata(path).await
    }
    async fn stored_digests(&self, path: &VPath) -> Result<Option<StoredDigests>> {
        self.inner.stored_digests(path).await
    }
    async fn list(&self, path: &VPath) -> Result<Box<dyn DirStream>> {
        self.inner.list(path).await
    }
    async fn open_read(&self, path: &VPath, offset: u64) -> Result<Box<dyn FileReader>> {
        self.inner.open_read(path, offset).await
    }
    async fn open_write(&self, path: &VPath, options: WriteOptions) -> Result<Box<dyn FileWriter>> {
        let inner = self.inner.open_write(path, options).await?;
        Ok(Box::new(SpyWriter {
            inner,
            counts: Arc::clone(&self.counts),
        }))
    }
    async fn create_dir(&self, path: &VPath) -> Result<()> {
        self.inner.create_dir(path).await
    }
    async fn remove_dir(&self, path: &VPath) -> Result<()> {
        self.inner.remove_dir(path).await
    }
    async fn remove_file(&self, path: &VPath) -> Result<()> {
        self.inner.remove_file(path).await
    }
    async fn rename(&self, from: &VPath, to: &VPath, replace: bool) -> Result<()> {
        self.inner.rename(from, to, replace).await
    }
    async fn set_modified(&self, path: &VPath, t: SystemTime) -> Result<()> {
        self.inner.set_modified(path, t).await
    }
    async fn set_mode(&self, path: &VPath, mode: u32) -> Result<()> {
        self.inner.set_mode(path, mode).await
    }
    async fn space(&self) -> Result<Space> {
        self.inner.space().await
    }
    async fn scoped(&self, home: &VPath, create: bool) -> Result<Arc<dyn Storage>> {
        Ok(Arc::new(Spy {
            inner: self.inner.scoped(home, create).await?,
            counts: Arc::clone(&self.counts),
        }))
    }
    async fn open_file(&self, path: &VPath, mode: OpenMode) -> Result<Box<dyn PositionalFile>> {
        self.inner.open_file(path, mode).await
    }
}

#[derive(Debug)]
struct SpyWriter {
    inner: Box<dyn FileWriter>,
    counts: Arc<Counts>,
}

#[async_trait]
impl FileWriter for SpyWriter {
    async fn write_owned(&mut self, buf: Vec<u8>) -> Result<Vec<u8>> {
        self.counts.copied.fetch_add(buf.len() as u64, Ordering::SeqCst);
        self.inner.write_owned(buf).await
    }
    async fn commit(self: Box<Self>) -> Result<u64> {
        self.inner.commit().await
    }
    async fn commit_with(self: Box<Self>, last: Vec<u8>) -> Result<u64> {
        self.counts.copied.fetch_add(last.len() as u64, Ordering::SeqCst);
        self.inner.commit_with(last).await
    }
    async fn abort(self: Box<Self>) {
        self.inner.abort().await;
    }
    fn zero_copy(&mut self) -> Option<std::fs::File> {
        self.inner.zero_copy()
    }
    fn zero_copy_written(&mut self, n: u64) -> Result<()> {
        self.counts.spliced.fetch_add(n, Ordering::SeqCst);
        self.inner.zero_copy_written(n)
    }
}

/// A server over a spied local back-end in its own directory.
struct Spied {
    server: TestServer,
    root: tempfile::TempDir,
    counts: Arc<Counts>,
}

impl Spied {
    fn start() -> Spied {
        Spied::start_with(false)
    }

    /// With FTPS (explicit, TLS optional on loopback).
    fn start_ftps() -> Spied {
        Spied::start_with(true)
    }

    fn start_with(ftps: bool) -> Spied {
        let root = tempfile::tempdir().expect("temp dir");
        let counts = Arc::new(Counts::default());
        // The server's default: no checksums kept at upload (they would need the bytes).
        let local = LocalFs::open(root.path())
            .expect("open local back-end")
            .keep_checksums(false);
        let storage = Arc::new(Spy {
            inner: Arc::new(local),
            counts: Arc::clone(&counts),
        });
        let server = TestServer::start_with(Options {
            storage: Some(storage),
            ftps,
            ..Options::default()
        });
        Spied { server, root, counts }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Sends `payload` in pieces of changing sizes (1 byte to ~200 KiB), some with pauses, so that the
/// server's splice calls see short and long socket reads.
fn send_unevenly(data: &mut std::net::TcpStream, payload: &[u8]) {
    let mut sizes = [1usize, 7, 4096, 65_536, 200_003, 13, 131_072, 999]
        .iter()
        .cycle();
    let mut rest = payload;
    let mut pieces = 0;
    while !rest.is_empty() {
        let n = (*sizes.next().expect("cycle")).min(rest.len());
        data.write_all(&rest[..n]).expect("send");
        rest = &rest[n..];
        pieces += 1;
        if pieces % 5 == 0 {
            data.flush().expect("flush");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

#[test]
fn binary_stor_is_spliced_into_the_file_byte_exact() {
    let s = Spied::start();
    let mut c = s.server.login();
    c.expect("TYPE I", 200);
    for (i, len) in [
        1usize,
        4096,
        65_535,
        65_536,
        65_537,
        (1 << 20) + 1,
        9 * (1 << 20) + 12_345,
    ]
    .into_iter()
    .enumerate()
    {
        let content = pseudo_random(len, 100 + i as u64);
        let mut data = c.data();
        c.expect("STOR up.bin", 150);
        send_unevenly(&mut data, &content);
        drop(data);
        let r = c.reply();
        assert_eq!(r.code, 226, "{len} bytes: {}", r.text());
        let (spliced, copied) = s.counts.take();
        // A file smaller than the server's 64 KiB head arrives whole in memory and is written with
        // the commit; a larger one is spliced (its head written first, then accounted the same way).
        let want = if len < 65_536 {
            (0, len as u64)
        } else {
            (len as u64, 0)
        };
        assert_eq!((spliced, copied), want, "{len} bytes: spliced, copied");
        let stored = read_file(&s.path("up.bin"));
        assert!(
            stored == content,
            "{len} bytes: stored {} bytes that differ",
            stored.len()
        );
        assert_eq!(names_in(s.root.path()), ["up.bin"]);
    }
    // An empty upload replaces the file with an empty one.
    let r = c.upload("STOR up.bin", b"");
    assert_eq!(r.code, 226, "{}", r.text());
    assert!(read_file(&s.path("up.bin")).is_empty());
}

/// A server whose `keep.bin` holds "the old content", and a binary STOR of it under way: `len` bytes
/// sent and splicing seen. Returns the server, the control connection and the open data connection.
fn stor_under_way(len: usize, seed: u64) -> (Spied, common::Control, std::net::TcpStream) {
    let s = Spied::start();
    write_file(&s.path("keep.bin"), b"the old content\n");
    let mut c = s.server.login();
    c.expect("TYPE I", 200);
    let mut data = c.data();
    c.expect("STOR keep.bin", 150);
    data.write_all(&pseudo_random(len, seed)).expect("send part");
    assert!(
        wait_until(Duration::from_secs(10), || s
            .counts
            .spliced
            .load(Ordering::SeqCst)
            > 0),
        "nothing spliced"
    );
    (s, c, data)
}

#[test]
fn spliced_upload_cut_by_a_reset_keeps_the_old_file_and_leaves_no_temp() {
    let (s, mut c, data) = stor_under_way(3 << 20, 7);
    reset(data);
    let r = c.reply();
    assert!(matches!(r.code, 426 | 451), "reset upload got {}", r.text());
    assert!(
        wait_until(Duration::from_secs(5), || names_in(s.root.path()) == ["keep.bin"]),
        "left behind: {:?}",
        names_in(s.root.path())
    );
    assert_eq!(read_file(&s.path("keep.bin")), b"the old content\n");
    assert_eq!(s.counts.copied.load(Ordering::SeqCst), 0);
    c.expect("NOOP", 200);
}

#[test]
fn spliced_upload_aborted_with_abor_keeps_the_old_file_and_leaves_no_temp() {
    let (s, mut c, mut data) = stor_under_way(2 << 20, 8);
    c.send("ABOR");
    let r1 = c.reply();
    if r1.code == 426 {
        c.expect_reply(226);
    } else {
        assert_eq!(r1.code, 226, "{}", r1.text());
    }
    // The rest of the stream and its clean end must not commit the aborted upload.
    let _ = data.write_all(b"tail");
    drop(data);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(names_in(s.root.path()), ["keep.bin"]);
    assert_eq!(read_file(&s.path("keep.bin")), b"the old content\n");
    c.expect("NOOP", 200);
}

#[test]
fn ascii_and_resumed_uploads_are_copied_not_spliced() {
    let s = Spied::start();
    let mut c = s.server.login();
    c.expect("TYPE A", 200);
    let r = c.upload("STOR text.txt", b"one\r\ntwo\r\n");
    assert_eq!(r.code, 226, "{}", r.text());
    assert_eq!(read_file(&s.path("text.txt")), b"one\ntwo\n");
    assert_eq!(s.counts.take(), (0, 8));
    // REST + STOR writes in place: through the writer, keeping the bytes before the offset.
    c.expect("TYPE I", 200);
    c.expect("REST 4", 350);
    let r = c.upload("STOR text.txt", b"2\n");
    assert_eq!(r.code, 226, "{}", r.text());
    assert_eq!(read_file(&s.path("text.txt")), b"one\n2\n");
    assert_eq!(s.counts.take(), (0, 2));
}

#[test]
fn spliced_upload_over_the_quota_is_refused_and_leaves_nothing() {
    let s = Spied::start();
    s.server.set_limits(
        common::USER,
        ferry_auth::UserLimits {
            quota_bytes: Some(1_000_000),
            ..ferry_auth::UserLimits::default()
        },
    );
    let mut c = s.server.login();
    c.expect("TYPE I", 200);
    let mut data = c.data();
    c.expect("STOR big.bin", 150);
    // The server may stop reading and close once the quota is crossed.
    let _ = data.write_all(&pseudo_random(3 << 20, 9));
    drop(data);
    let r = c.reply();
    assert_eq!(r.code, 552, "{}", r.text());
    assert!(s.counts.spliced.load(Ordering::SeqCst) > 0, "nothing spliced");
    assert!(
        wait_until(Duration::from_secs(5), || names_in(s.root.path()).is_empty()),
        "left behind: {:?}",
        names_in(s.root.path())
    );
    // Within the quota the next upload is stored.
    let content = pseudo_random(500_000, 10);
    let r = c.upload("STOR small.bin", &content);
    assert_eq!(r.code, 226, "{}", r.text());
    assert!(read_file(&s.path("small.bin")) == content);
}

/// Sizes around the server's decryption buffer (256 KiB) and the 16 KiB TLS record.
const TLS_SIZES: [usize; 8] = [
    1,
    16_384,
    65_537,
    262_143,
    262_144,
    262_145,
    (1 << 20) + 16_383,
    5 * (1 << 20) + 12_345,
];

#[test]
fn tls_upload_is_decrypted_into_the_file_byte_exact() {
    require("python3");
    let s = Spied::start_ftps();
    python_ftps(
        &s.server,
        &format!(
            r#"
f = login()
f.voidcmd('TYPE I')
for i, n in enumerate({TLS_SIZES:?}):
    # Uneven client writes, so the server's records and reads do not line up with its buffer.
    put_blocks = [1, 7, 4096, 65536, 200003, 13, 131072, 999]
    data = bytes((i * 7 + k * 31) % 251 for k in range(n))
    conn = f.transfercmd('STOR up%d.bin' % i)
    rest, k = memoryview(data), 0
    while rest:
        m = put_blocks[k % len(put_blocks)]
        conn.sendall(rest[:m])
        rest, k = rest[m:], k + 1
    conn.unwrap()
    conn.close()
    assert f.voidresp().startswith('226')
f.quit()
"#
        ),
    );
    let mut total = 0u64;
    for (i, n) in TLS_SIZES.into_iter().enumerate() {
        let want: Vec<u8> = (0..n).map(|k| ((i * 7 + k * 31) % 251) as u8).collect();
        let got = read_file(&s.path(&format!("up{i}.bin")));
        assert!(got == want, "{n} bytes: stored {} bytes that differ", got.len());
        total += n as u64;
    }
    let (direct, copied) = s.counts.take();
    assert_eq!(direct + copied, total, "direct {direct}, copied {copied}");
    // Everything but each file's last buffer goes straight into the file; the copied part is what
    // was left for the commit.
    let largest = TLS_SIZES.iter().max().copied().unwrap_or_default() as u64;
    assert!(
        direct >= largest - 262_144,
        "only {direct} bytes went into the file directly"
    );
    let names = names_in(s.root.path());
    assert_eq!(names.len(), TLS_SIZES.len(), "{names:?}");
}

#[test]
fn tls_upload_cut_without_close_notify_keeps_the_old_file_and_leaves_no_temp() {
    require("python3");
    let s = Spied::start_ftps();
    write_file(&s.path("keep.bin"), b"the old content\n");
    python_ftps(
        &s.server,
        r#"
f = login()
f.voidcmd('TYPE I')
conn = f.transfercmd('STOR keep.bin')
conn.sendall(os.urandom(3 << 20))
# A TCP FIN without close_notify: a truncation, never a clean end.
raw = socket.socket(fileno=os.dup(conn.fileno()))
raw.shutdown(socket.SHUT_WR)
try:
    resp = f.voidresp()
except ftplib.all_errors as e:
    resp = str(e)
assert resp.startswith('426'), resp
raw.close()
conn.close()
f.quit()
"#,
    );
    assert!(
        s.counts.spliced.load(Ordering::SeqCst) > 0,
        "nothing went into the file directly"
    );
    assert!(
        wait_until(Duration::from_secs(5), || names_in(s.root.path()) == ["keep.bin"]),
        "left behind: {:?}",
        names_in(s.root.path())
    );
    assert_eq!(read_file(&s.path("keep.bin")), b"the old content\n");
}

#[test]
fn tls_upload_over_the_quota_is_refused_and_leaves_nothing() {
    require("python3");
    let s = Spied::start_ftps();
    s.server.set_limits(
        common::USER,
        ferry_auth::UserLimits {
            quota_bytes: Some(1_000_000),
            ..ferry_auth::UserLimits::default()
        },
    );
    python_ftps(
        &s.server,
        r#"
f = login()
f.voidcmd('TYPE I')
conn = f.transfercmd('STOR big.bin')
try:
    conn.sendall(os.urandom(3 << 20))
    conn.unwrap()
except (ssl.SSLError, OSError):
    pass  # the server may stop reading and close once the quota is crossed
conn.close()
try:
    resp = f.voidresp()
except ftplib.all_errors as e:
    resp = str(e)
assert resp.startswith('552'), resp
# Within the quota the next upload is stored.
put(f, 'STOR small.bin', b'x' * 500000)
f.quit()
"#,
    );
    assert!(
        s.counts.spliced.load(Ordering::SeqCst) > 0,
        "nothing went into the file directly"
    );
    assert_eq!(names_in(s.root.path()), ["small.bin"]);
}
