//! `ferry user quota` and `ferry user limit`: setting limits, the defaults from the settings, and
//! recounting usage from the files in storage.

use std::path::Path;
use std::process::{Output, Stdio};

mod common;

use common::{ferry, tempdir};

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    ferry(dir)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run ferry")
}

#[track_caller]
fn ok(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run(dir, args, env);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ferry {args:?} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn quota_and_limit_commands_set_show_and_recount() {
    let dir = tempdir();
    let d = dir.path();
    ok(
        d,
        &[
            "user",
            "add",
            "alice",
            "--password",
            "x-long-password",
            "--home",
            "/alice",
        ],
        &[],
    );
    // Files put there outside ferry: 100 + 250 bytes, and 50 in a subdirectory.
    let home = d.join("ferry-data/files/alice");
    std::fs::create_dir_all(home.join("sub")).expect("mkdir");
    std::fs::write(home.join("a"), vec![0u8; 100]).expect("write");
    std::fs::write(home.join("b"), vec![0u8; 250]).expect("write");
    std::fs::write(home.join("sub/c"), vec![0u8; 50]).expect("write");

    let out = ok(d, &["user", "quota", "alice"], &[]);
    assert!(
        out.contains("quota bytes: 0 used of unlimited (default)"),
        "{out}"
    );

    let out = ok(
        d,
        &[
            "user",
            "quota",
            "alice",
            "--bytes",
            "1M",
            "--files",
            "10",
            "--recount",
        ],
        &[],
    );
    assert!(out.contains("quota bytes: 400 used of 1048576\n"), "{out}");
    assert!(out.contains("quota files: 3 used of 10\n"), "{out}");

    let out = ok(d, &["user", "limit", "alice", "--upload-kib", "512"], &[]);
    assert!(out.contains("upload:      512 KiB/s\n"), "{out}");
    assert!(out.contains("download:    unlimited (default)"), "{out}");

    // Back to the default, which comes from the settings.
    let env = [
        ("FERRY_QUOTA_DEFAULT_BYTES", "2048"),
        ("FERRY_BANDWIDTH_DEFAULT_DOWNLOAD_KIB", "64"),
    ];
    ok(d, &["user", "quota", "alice", "--bytes", "default"], &[]);
    let out = ok(d, &["user", "show", "alice"], &env);
    assert!(out.contains("quota bytes: 400 used of 2048 (default)"), "{out}");
    assert!(out.contains("download:    64 KiB/s (default)"), "{out}");

    let bad = run(d, &["user", "quota", "alice", "--bytes", "10X"], &[]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("expected a size such as 500M"), "{err}");
}
