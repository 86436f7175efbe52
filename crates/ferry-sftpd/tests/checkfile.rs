//! The SFTP `check-file` extension from paramiko: `SFTPFile.check()` (the `check-file` request on a
//! handle) and raw `check-file-name` / `check-file-handle` requests, compared with `sha256sum`,
//! `sha1sum`, `md5sum` and zlib's CRC-32 of the same files; per-block digests; the size limit.

mod common;

use std::process::Command;

use common::*;

fn paramiko(s: &TestServer, body: &str) -> Run {
    let script = format!(
        r#"
import os, subprocess, zlib, hashlib, paramiko
from paramiko.sftp import CMD_EXTENDED, int64
PORT = int(os.environ["PORT"]); ROOT = os.environ["ROOT"]
t = paramiko.Transport(("127.0.0.1", PORT))
t.connect(username=os.environ["USER_NAME"], password=os.environ["PASSWORD"])
sftp = paramiko.SFTPClient.from_transport(t)
def tool(prog, path):
    return subprocess.run([prog, path], check=True, capture_output=True, text=True).stdout.split()[0]
def by_name(path, algs, start=0, length=0, block=0):
    kind, msg = sftp._request(CMD_EXTENDED, "check-file-name", path, algs, int64(start), int64(length), block)
    assert msg.get_text() == "check-file"
    return msg.get_text(), msg.get_remainder()
def refused(fn, *args):
    try:
        fn(*args)
    except IOError as e:
        return str(e)
    raise AssertionError("expected a failure")
{body}
t.close()
print("OK")
"#
    );
    let mut cmd: Command = s.client("python3");
    cmd.arg("-c")
        .arg(script)
        .env("PORT", s.port().to_string())
        .env("USER_NAME", USER)
        .env("PASSWORD", PASSWORD)
        .env("ROOT", s.root());
    let r = run(&mut cmd, None);
    r.assert_success();
    assert!(
        r.out().lines().any(|l| l == "OK"),
        "script did not finish: {}",
        r.dump()
    );
    r
}

fn tools_present() -> bool {
    !skip_unless_paramiko() && !["sha256sum", "sha1sum", "md5sum"].iter().any(|t| skip_unless(t))
}

#[test]
fn check_file_matches_coreutils_and_zlib() {
    if !tools_present() {
        return;
    }
    let s = TestServer::start();
    write_random(&s.path("big.bin"), 3 * 1024 * 1024 + 5, 3);
    std::fs::write(s.path("empty"), b"").expect("write");
    paramiko(
        &s,
        r#"
import sys
for name in ["big.bin", "empty"]:
    path = os.path.join(ROOT, name)
    data = open(path, "rb").read()
    with sftp.open("/" + name, "rb") as f:
        assert f.check("sha256").hex() == tool("sha256sum", path)
        assert f.check("sha1").hex() == tool("sha1sum", path)
        assert f.check("md5").hex() == tool("md5sum", path)
        assert f.check("crc32").hex() == "%08x" % (zlib.crc32(data) & 0xffffffff)
        # A preference list: the first algorithm the server knows is used.
        assert f.check("sha512,md5").hex() == tool("md5sum", path)
    alg, digest = by_name("/" + name, "sha256")
    assert alg == "sha256" and digest.hex() == tool("sha256sum", path)
data = open(os.path.join(ROOT, "big.bin"), "rb").read()
# A range, and per-block digests of 1 MiB blocks.
with sftp.open("/big.bin", "rb") as f:
    assert f.check("sha256", 1000, 5000).hex() == hashlib.sha256(data[1000:6000]).hexdigest()
    blocks = f.check("md5", 0, 0, 1 << 20)
    want = b"".join(hashlib.md5(data[i:i + (1 << 20)]).digest() for i in range(0, len(data), 1 << 20))
    assert blocks == want, (len(blocks), len(want))
alg, digest = by_name("/big.bin", "sha1", 3 * 1024 * 1024, 0, 0)
assert digest.hex() == hashlib.sha1(data[3 * 1024 * 1024:]).hexdigest()
# Refusals: unknown algorithm, a directory, a missing file, a block size below 256, too many blocks.
sftp.mkdir("/d")
print(refused(by_name, "/big.bin", "sha512"))
print(refused(by_name, "/d", "sha256"))
print(refused(by_name, "/missing", "sha256"))
print(refused(by_name, "/big.bin", "sha256", 0, 0, 100))
print(refused(by_name, "/big.bin", "sha256", 0, 0, 256))
"#,
    );
}

#[test]
fn check_file_advertised_and_bounded_by_hash_max_size() {
    if !tools_present() {
        return;
    }
    let s = TestServer::start_with(ferry_auth::Permissions::all(), |c| c.hash_max_size = 1000);
    std::fs::write(s.path("small"), vec![1u8; 1000]).expect("write");
    std::fs::write(s.path("large"), vec![1u8; 1001]).expect("write");
    let r = paramiko(
        &s,
        r#"
alg, digest = by_name("/small", "sha256")
assert digest.hex() == tool("sha256sum", os.path.join(ROOT, "small"))
print("LARGE:", refused(by_name, "/large", "sha256"))
alg, digest = by_name("/large", "sha256", 1, 0)
assert digest == hashlib.sha256(b"\x01" * 1000).digest()
"#,
    );
    assert!(
        r.out().contains("LARGE:") && r.out().contains("hash_max_size"),
        "{}",
        r.dump()
    );

    let off = TestServer::start_with(ferry_auth::Permissions::all(), |c| c.hash_max_size = 0);
    std::fs::write(off.path("small"), b"x").expect("write");
    let r = paramiko(
        &off,
        r#"
print("OFF:", refused(by_name, "/small", "sha256"))
"#,
    );
    assert!(
        r.out().contains("OFF:") && r.out().contains("hash_max_size = 0"),
        "{}",
        r.dump()
    );
}

#[test]
fn uploaded_files_are_answered_from_the_checksums_kept_at_upload() {
    if !tools_present() {
        return;
    }
    // On demand only up to 1,000 bytes: anything larger answered comes from the kept value.
    let s = TestServer::start_with(ferry_auth::Permissions::all(), |c| c.hash_max_size = 1000);
    paramiko(
        &s,
        r#"
import io
S3 = os.environ.get("FERRY_TEST_STORAGE") == "s3"
data = bytes(((i * 2654435761) >> 13) & 0xff for i in range(700_000))
# paramiko pipelines its writes: they reach the server's storage slightly out of order.
sftp.putfo(io.BytesIO(data), "/up.bin")
path = os.path.join(ROOT, "up.bin")
assert open(path, "rb").read() == data
assert by_name("/up.bin", "sha256")[1].hex() == tool("sha256sum", path)
assert by_name("/up.bin", "md5")[1].hex() == tool("md5sum", path)
assert by_name("/up.bin", "crc32")[1].hex() == "%08x" % (zlib.crc32(data) & 0xffffffff)
# Not kept: SHA-1, a range, blocks. Computed on demand, so refused over the limit.
print("SHA1:", refused(by_name, "/up.bin", "sha1"))
print("RANGE:", refused(by_name, "/up.bin", "sha256", 5, 0))
# A new modification time (setstat) keeps the value.
sftp.utime("/up.bin", (1_600_000_000, 1_600_000_000))
assert by_name("/up.bin", "sha256")[1].hex() == tool("sha256sum", path)
# Grown outside ferry: the old value is never used.
with open(path, "ab") as w:
    w.write(b"x")
print("GROWN:", refused(by_name, "/up.bin", "sha256"))
if not S3:
    sftp.putfo(io.BytesIO(data), "/same.bin")
    with open(os.path.join(ROOT, "same.bin"), "r+b") as w:
        w.write(b"X")
    print("EDITED:", refused(by_name, "/same.bin", "sha256"))
    # Written in place over SFTP (no truncation): nothing kept either.
    sftp.putfo(io.BytesIO(data), "/inplace.bin")
    with sftp.open("/inplace.bin", "r+") as f:
        f.write(b"Y")
    print("INPLACE:", refused(by_name, "/inplace.bin", "sha256"))
"#,
    );
}
