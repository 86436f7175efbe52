//! Checksums over FTP (`HASH`, `OPTS HASH`, `RANG`, `XSHA256`/`XSHA1`/`XMD5`/`XCRC`) from Python's ftplib,
//! compared with what `sha256sum`, `sha1sum`, `md5sum` and zlib's CRC-32 compute for the same files.

mod common;

use common::{make_dir, require, run, write_file, Options, TestServer};

const PRELUDE: &str = r#"
import ftplib, io, os, subprocess, zlib, hashlib
PORT = int(os.environ['FERRY_PORT'])
ROOT = os.environ['FERRY_ROOT']
S3 = os.environ.get('FERRY_TEST_STORAGE') == 's3'

def connect():
    f = ftplib.FTP(timeout=60)
    f.connect('127.0.0.1', PORT)
    f.login(os.environ['FERRY_USER'], os.environ['FERRY_PASSWORD'])
    return f

def tool(prog, path):
    return subprocess.run([prog, path], check=True, capture_output=True, text=True).stdout.split()[0]

def crc(data):
    return '%08x' % (zlib.crc32(data) & 0xffffffff)

def expect_error(code, cmd):
    try:
        r = f.sendcmd(cmd)
    except ftplib.all_errors as e:
        assert str(e)[:3] == code, f'{cmd}: expected {code}, got {e!r}'
        return str(e)
    raise AssertionError(f'{cmd}: expected {code}, got {r!r}')

def pattern(n, seed):
    return bytes(((i * 2654435761 + seed) >> 13) & 0xff for i in range(n))
"#;

fn python(server: &TestServer, script: &str) {
    let mut cmd = server.client("python3");
    cmd.arg("-c")
        .arg(format!("{PRELUDE}\n{script}\nprint('OK')\n"))
        .env("FERRY_PORT", server.port().to_string())
        .env("FERRY_USER", common::USER)
        .env("FERRY_PASSWORD", common::PASSWORD)
        .env("FERRY_ROOT", server.root())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let r = run(&mut cmd, None);
    r.assert_success();
    assert!(
        r.out().lines().any(|l| l == "OK"),
        "script did not finish: {}",
        r.dump()
    );
}

/// Fails the test, with the install hint, unless the programs it compares with are installed.
fn require_tools() {
    for tool in ["python3", "sha256sum", "sha1sum", "md5sum"] {
        require(tool);
    }
}

#[test]
fn hash_matches_coreutils_and_zlib_for_every_algorithm() {
    require_tools();
    let server = TestServer::start();
    // 3 MiB and a bit: more than one read chunk; an empty file; a name with a space.
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 17u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    write_file(&server.root().join("big.bin"), &big);
    write_file(&server.root().join("empty"), b"");
    write_file(&server.root().join("sub dir/a file.txt"), b"hello, checksums\n");
    python(
        &server,
        r#"
f = connect()
feat = f.sendcmd('FEAT')
assert ' HASH SHA-256*;SHA-1;MD5;CRC32' in feat, feat
for name in ['big.bin', 'empty', 'sub dir/a file.txt']:
    path = os.path.join(ROOT, name)
    size = os.path.getsize(path)
    data = open(path, 'rb').read()
    r = f.sendcmd('HASH ' + name)
    assert r == f'213 SHA-256 0-{size} {tool("sha256sum", path)} {name}', r
    for alg, expected in [('SHA-1', tool('sha1sum', path)), ('MD5', tool('md5sum', path)), ('CRC32', crc(data))]:
        assert f.sendcmd('OPTS HASH ' + alg) == '200 ' + alg
        r = f.sendcmd('HASH ' + name)
        assert r == f'213 {alg} 0-{size} {expected} {name}', r
    f.sendcmd('OPTS HASH SHA-256')
    assert f.sendcmd('XSHA256 ' + name) == '250 ' + tool('sha256sum', path)
    assert f.sendcmd('XSHA1 ' + name) == '250 ' + tool('sha1sum', path)
    assert f.sendcmd('XMD5 ' + name) == '250 ' + tool('md5sum', path)
    assert f.sendcmd('XCRC ' + name) == '250 ' + crc(data)
# The algorithm chosen shows in FEAT and OPTS HASH without an argument.
f.sendcmd('OPTS HASH md5')
assert ' HASH SHA-256;SHA-1;MD5*;CRC32' in f.sendcmd('FEAT')
assert f.sendcmd('OPTS HASH') == '200 MD5'
f.quit()
"#,
    );
}

#[test]
fn hash_ranges_from_rang_and_legacy_offsets() {
    require_tools();
    let server = TestServer::start();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    write_file(&server.root().join("r.bin"), &data);
    python(
        &server,
        r#"
import hashlib
f = connect()
data = open(os.path.join(ROOT, 'r.bin'), 'rb').read()
# RANG's end is the last byte (inclusive); the reply shows start-end with end exclusive.
assert f.sendcmd('RANG 10 4095').startswith('350 ')
r = f.sendcmd('HASH r.bin')
assert r == f'213 SHA-256 10-4096 {hashlib.sha256(data[10:4096]).hexdigest()} r.bin', r
# The range applied once: the next HASH is of the whole file.
r = f.sendcmd('HASH r.bin')
assert r.split()[2] == f'0-{len(data)}', r
# A range running past the end stops at the end.
f.sendcmd('RANG 99000 200000')
r = f.sendcmd('HASH r.bin')
assert r.split()[2:4] == ['99000-100000', hashlib.sha256(data[99000:]).hexdigest()], r
assert f.sendcmd('XCRC "r.bin" 5 1000') == '250 ' + crc(data[5:1000])
assert f.sendcmd('XMD5 "r.bin" 50000') == '250 ' + hashlib.md5(data[50000:]).hexdigest()
f.sendcmd('RANG 200000 300000')
expect_error('550', 'HASH r.bin')
expect_error('501', 'RANG 9 2')
expect_error('501', 'XSHA1 "r.bin" 9 2')
f.quit()
"#,
    );
}

#[test]
fn hash_errors_are_clear() {
    require_tools();
    let server = TestServer::start_tweaked(|c| c.session.hash_max_size = 1000);
    write_file(&server.root().join("small"), vec![7u8; 1000]);
    write_file(&server.root().join("large"), vec![7u8; 1001]);
    make_dir(&server.root().join("dir"));
    python(
        &server,
        r#"
f = connect()
assert f.sendcmd('HASH small').startswith('213 SHA-256 0-1000 ')
e = expect_error('550', 'HASH large')
assert 'hash_max_size' in e and '1001' in e, e
# A range of the large file within the limit is fine.
assert f.sendcmd('XSHA256 "large" 1 1001').startswith('250 ')
expect_error('550', 'HASH dir')
expect_error('550', 'HASH missing')
expect_error('504', 'OPTS HASH SHA-512')
expect_error('501', 'HASH')
f.quit()
"#,
    );
    let off = TestServer::start_tweaked(|c| c.session.hash_max_size = 0);
    write_file(&off.root().join("small"), b"x");
    python(
        &off,
        r#"
f = connect()
assert 'HASH' not in f.sendcmd('FEAT')
e = expect_error('502', 'HASH small')
assert 'hash_max_size' in e, e
expect_error('502', 'XCRC small')
f.quit()
"#,
    );
}

// Checksums kept while files are stored: `HASH` and the `X…` verbs answer for a file uploaded through
// ferry from the value kept beside it, even when the file is over `hash_max_size` (nothing is read);
// a file changed outside ferry, or rewritten in place by a resumed upload, never gets the old value.
// On S3 (`FERRY_TEST_STORAGE=s3`) the expectations that differ are chosen from the variable.

/// A server whose on-demand hashing stops at 1,000 bytes.
fn server() -> TestServer {
    TestServer::start_with(Options {
        tweak: Some(Box::new(|c| c.session.hash_max_size = 1000)),
        ..Options::default()
    })
}

#[test]
fn an_uploaded_file_over_hash_max_size_is_answered_from_the_kept_value() {
    require_tools();
    let server = server();
    python(
        &server,
        r#"
f = connect()
data = pattern(300_000, 1)
f.storbinary('STOR up.bin', io.BytesIO(data))
path = os.path.join(ROOT, 'up.bin')
assert open(path, 'rb').read() == data
n = len(data)
r = f.sendcmd('HASH up.bin')
assert r == f'213 SHA-256 0-{n} {tool("sha256sum", path)} up.bin', r
assert f.sendcmd('OPTS HASH MD5') == '200 MD5'
assert f.sendcmd('HASH up.bin') == f'213 MD5 0-{n} {tool("md5sum", path)} up.bin'
f.sendcmd('OPTS HASH CRC32')
assert f.sendcmd('HASH up.bin') == f'213 CRC32 0-{n} {crc(data)} up.bin'
assert f.sendcmd('XSHA256 up.bin') == '250 ' + tool('sha256sum', path)
assert f.sendcmd('XMD5 up.bin') == '250 ' + tool('md5sum', path)
assert f.sendcmd('XCRC up.bin') == '250 ' + crc(data)
# SHA-1 is not kept, and a range is not the whole file: both are computed on demand, so refused here.
f.sendcmd('OPTS HASH SHA-1')
assert 'hash_max_size' in expect_error('550', 'HASH up.bin')
f.sendcmd('OPTS HASH SHA-256')
expect_error('550', 'XSHA256 "up.bin" 0 5000')
# A range within the limit still works.
assert f.sendcmd('XMD5 "up.bin" 10 500') == '250 ' + hashlib.md5(data[10:500]).hexdigest()
# A new modification time (MFMT) keeps the value valid.
assert f.sendcmd('MFMT 20200102030405 up.bin').startswith('213 ')
assert f.sendcmd('HASH up.bin').split()[3] == tool('sha256sum', path)
# An empty file is kept too.
f.storbinary('STOR empty', io.BytesIO(b''))
assert f.sendcmd('HASH empty') == f'213 SHA-256 0-0 {hashlib.sha256(b"").hexdigest()} empty'
f.quit()
"#,
    );
}

#[test]
fn a_file_changed_outside_ferry_never_gets_the_kept_value() {
    require_tools();
    let server = server();
    python(
        &server,
        r#"
f = connect()
data = pattern(5000, 2)
f.storbinary('STOR a.bin', io.BytesIO(data))
f.storbinary('STOR b.bin', io.BytesIO(data))
assert f.sendcmd('HASH a.bin').split()[3] == hashlib.sha256(data).hexdigest()
# Grown on disk: its new content is over the limit and the old value is not used.
with open(os.path.join(ROOT, 'a.bin'), 'ab') as w:
    w.write(b'more')
assert 'hash_max_size' in expect_error('550', 'HASH a.bin')
if not S3:
    # Same size, other bytes (a new modification time on disk): refused, not the old value...
    with open(os.path.join(ROOT, 'b.bin'), 'r+b') as w:
        w.write(b'X')
    expect_error('550', 'HASH b.bin')
    # ...and setting a time cannot revive it.
    f.sendcmd('MFMT 20200102030405 b.bin')
    expect_error('550', 'HASH b.bin')
# Written on disk, never uploaded through ferry: nothing kept.
open(os.path.join(ROOT, 'c.bin'), 'wb').write(data)
expect_error('550', 'HASH c.bin')
f.quit()
"#,
    );
}

#[test]
fn resumed_and_appended_uploads_never_keep_a_value_of_only_the_new_bytes() {
    require_tools();
    let server = server();
    python(
        &server,
        r#"
f = connect()
data = pattern(200_000, 3)
f.storbinary('STOR r.bin', io.BytesIO(data[:120_000]))
f.storbinary('STOR r.bin', io.BytesIO(data[120_000:]), rest=120_000)
assert open(os.path.join(ROOT, 'r.bin'), 'rb').read() == data
f.storbinary('STOR a.bin', io.BytesIO(data[:50_000]))
f.storbinary('APPE a.bin', io.BytesIO(data[50_000:]))
if S3:
    # S3 builds a new object from the old bytes and the new ones, all hashed on the way.
    assert f.sendcmd('HASH r.bin').split()[3] == hashlib.sha256(data).hexdigest()
    assert f.sendcmd('HASH a.bin').split()[3] == hashlib.sha256(data).hexdigest()
else:
    # Local writes in place: nothing is kept, so over the limit the answer is a refusal.
    expect_error('550', 'HASH r.bin')
    expect_error('550', 'HASH a.bin')
# Small enough to compute: always the hash of the whole file.
f.storbinary('STOR s.bin', io.BytesIO(data[:600]))
f.storbinary('APPE s.bin', io.BytesIO(data[600:900]))
assert f.sendcmd('HASH s.bin').split()[3] == hashlib.sha256(data[:900]).hexdigest()
f.quit()
"#,
    );
}
