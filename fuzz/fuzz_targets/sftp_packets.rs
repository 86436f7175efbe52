//! SFTP packets (with their length fields, INIT first) through the server's framing, request
//! parser and operation layer, against a local back-end in a fresh temp dir holding one file and
//! one directory. Checks: no panic, every reply one well-formed packet within the client's limit,
//! nothing created outside the temp dir's `root/`.
#![no_main]

use std::sync::Arc;

use ferry_auth::Permissions;
use ferry_vfs::{LocalFs, Storage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let root = dir.path().join("root");
    let Ok(fs) = LocalFs::open(&root) else { return };
    let _ = std::fs::write(root.join("f"), b"0123456789");
    let _ = std::fs::create_dir(root.join("d"));
    let storage: Arc<dyn Storage> = Arc::new(fs);
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    runtime.block_on(ferry_sftpd::fuzzing::run_packets(storage, Permissions::all(), data));
    let outside: Vec<_> = std::fs::read_dir(dir.path())
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(outside, vec![std::ffi::OsString::from("root")], "something appeared outside the root");
});
