//! The SFTP front end over the in-memory back-end, which has object-store semantics only (no
//! rename, no append, no resume, no random writes): paramiko's pipelined put and prefetching get go
//! through the in-order write window and the sequential reader; what the back-end cannot do is
//! refused with a message, never stored wrongly.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use ferry_testkit::files::sha256;
use ferry_vfs::MemoryFs;

/// Runs a paramiko script with `sftp` connected as alice.
fn paramiko(s: &TestServer, body: &str) -> Run {
    let script = format!(
        r#"
import os, sys, paramiko
LOCAL = os.environ["LOCAL"]
t = paramiko.Transport(("127.0.0.1", int(os.environ["PORT"])))
t.connect(username=os.environ["USER_NAME"], password=os.environ["PASSWORD"])
sftp = paramiko.SFTPClient.from_transport(t)
{body}
t.close()
"#
    );
    let mut cmd: Command = s.client("python3");
    cmd.arg("-c")
        .arg(script)
        .env("PORT", s.port().to_string())
        .env("USER_NAME", USER)
        .env("PASSWORD", PASSWORD)
        .env("LOCAL", s.local(""));
    run(&mut cmd, None)
}

/// The whole content of `path` in `memory`, or `None` if it is not there.
fn content(memory: &MemoryFs, path: &str) -> Option<Vec<u8>> {
    ferry_testkit::files::stored(memory, path)
}

#[test]
fn paramiko_pipelined_put_and_prefetching_get_on_the_memory_back_end() {
    if skip_unless_paramiko() {
        return;
    }
    let memory = MemoryFs::new();
    let s = TestServer::start_on(Arc::new(memory.clone()), ferry_auth::Permissions::all());
    write_random(&s.local("big.bin"), 20_000_000, 5);
    let r = paramiko(
        &s,
        r#"
# put() pipelines 32 KiB writes (many in flight); get() prefetches reads at increasing offsets.
sftp.put(os.path.join(LOCAL, "big.bin"), "/big.bin")
sftp.get("/big.bin", os.path.join(LOCAL, "back.bin"), prefetch=True)
print("size", sftp.stat("/big.bin").st_size)
"#,
    );
    r.assert_success();
    assert!(r.out().contains("size 20000000"), "{}", r.dump());
    let stored = content(&memory, "/big.bin").expect("stored");
    assert_eq!(sha256(&stored), sha256_file(&s.local("big.bin")));
    assert_eq!(
        sha256_file(&s.local("back.bin")),
        sha256_file(&s.local("big.bin"))
    );
}

#[test]
fn what_the_memory_back_end_cannot_do_is_refused_with_a_message_and_nothing_is_stored() {
    if skip_unless_paramiko() {
        return;
    }
    let memory = MemoryFs::new();
    let s = TestServer::start_on(Arc::new(memory.clone()), ferry_auth::Permissions::all());
    let r = paramiko(
        &s,
        r#"
def attempt(name, f):
    try:
        f()
        print(name, "OK")
    except IOError as e:
        print(name, "REFUSED", e)
with sftp.open("/keep.txt", "wb") as f:
    f.write(b"0123456789")
def far():
    f = sftp.open("/far.bin", "wb")
    f.seek(64 * 1024 * 1024)
    f.write(b"x")
    f.close()
attempt("far", far)
def resume():
    f = sftp.open("/keep.txt", "r+")
    f.seek(5)
    f.write(b"XY")
    f.close()
attempt("resume", resume)
attempt("rename", lambda: sftp.rename("/keep.txt", "/moved.txt"))
attempt("posix_rename", lambda: sftp.posix_rename("/keep.txt", "/moved.txt"))
attempt("mkdir", lambda: sftp.mkdir("/d"))
attempt("rmdir", lambda: sftp.rmdir("/d"))
"#,
    );
    r.assert_success();
    let out = r.out();
    assert!(
        out.contains("far REFUSED") && out.contains("ahead"),
        "{}",
        r.dump()
    );
    assert!(
        out.contains("resume REFUSED") && out.contains("memory storage back-end"),
        "{}",
        r.dump()
    );
    assert!(out.contains("rename REFUSED"), "{}", r.dump());
    assert!(out.contains("posix_rename REFUSED"), "{}", r.dump());
    assert!(
        out.contains("mkdir OK") && out.contains("rmdir OK"),
        "{}",
        r.dump()
    );
    assert_eq!(content(&memory, "/keep.txt").as_deref(), Some(&b"0123456789"[..]));
    assert_eq!(content(&memory, "/far.bin"), None);
    assert_eq!(content(&memory, "/moved.txt"), None);
}
