//! Hostile paths against the local jail: encodings that other layers might decode, backslashes, NUL,
//! very long paths, symlink loops, and a directory swapped for an escaping symlink while it is being used.
//! Nothing outside the root may be read, written, listed or stat'ed.

mod common;

use std::os::unix::fs::symlink;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{list_names, read_all, upload, Jail, WriteMode};
use ferry_vfs::ErrorKind;

const SECRET: &[u8] = b"top secret";

/// Every read-like operation on `path` either fails or does not yield the secret.
async fn nothing_outside(jail: &Jail, path: &[u8]) {
    if let Ok(data) = read_all(&jail.fs, path, 0).await {
        assert_ne!(data, SECRET, "read the secret through {path:?}");
    }
    if let Ok(names) = list_names(&jail.fs, path).await {
        assert!(
            !names.contains(&b"secret.txt".to_vec()),
            "listed outside through {path:?}"
        );
    }
    if let Ok(m) = jail.fs.metadata(path).await {
        assert_ne!(m.size, SECRET.len() as u64, "stat'ed the secret through {path:?}");
    }
}

#[tokio::test]
async fn encoded_dots_backslashes_and_overlong_utf8_are_plain_names() {
    let jail = Jail::new();
    // None of these is decoded: each is one literal component inside the root.
    let tricky: [&[u8]; 8] = [
        b"/%2e%2e/outside/secret.txt",
        b"/%2e%2e%2foutside%2fsecret.txt",
        b"/..%2f..%2foutside/secret.txt",
        b"/..\\outside\\secret.txt",
        b"/\\..\\..\\outside\\secret.txt",
        b"/\xc0\xae\xc0\xae/outside/secret.txt", // overlong UTF-8 for ".."
        b"/\xe0\x80\xae\xe0\x80\xae/outside/secret.txt",
        b"/\xc0\xaf..\xc0\xafoutside/secret.txt", // overlong UTF-8 for "/"
    ];
    for path in tricky {
        nothing_outside(&jail, path).await;
        let err = read_all(&jail.fs, path, 0).await.expect_err("no such file");
        assert_eq!(err.kind(), ErrorKind::NotFound, "{path:?}");
    }
    // Writing under such a name creates that literal name inside the root, nothing outside.
    upload(&jail.fs, b"/..\\evil", WriteMode::Create, b"x")
        .await
        .expect("literal backslash name");
    assert!(jail.host("..\\evil").exists());
    upload(&jail.fs, b"/%2e%2e", WriteMode::Create, b"y")
        .await
        .expect("literal percent name");
    assert!(jail.host("%2e%2e").exists());
    assert_eq!(
        std::fs::read(jail.outside().join("secret.txt")).expect("read"),
        SECRET
    );
    let outside: Vec<_> = std::fs::read_dir(jail.outside()).expect("ls").collect();
    assert_eq!(outside.len(), 1, "something was created outside the root");
}

#[tokio::test]
async fn nul_bytes_are_invalid_and_dot_components_stay_inside() {
    let jail = Jail::new();
    for path in [&b"/secret.txt\0.jpg"[..], b"/\0"] {
        let err = jail.fs.metadata(path).await.expect_err("invalid");
        assert_eq!(err.kind(), ErrorKind::InvalidName, "{path:?}");
        let err = upload(&jail.fs, path, WriteMode::Create, b"x")
            .await
            .expect_err("invalid");
        assert_eq!(err.kind(), ErrorKind::InvalidName, "{path:?}");
    }
    // Relative paths start at the root and `..` stops there: all of these name something inside.
    for path in [
        &b"outside/secret.txt"[..],
        b"../outside/secret.txt",
        b"/./outside/secret.txt",
        b"/a/../../outside/secret.txt",
    ] {
        let err = jail.fs.metadata(path).await.expect_err("inside, missing");
        assert_eq!(err.kind(), ErrorKind::NotFound, "{path:?}");
    }
    jail.fs
        .create_dir(b"../../made")
        .await
        .expect("mkdir at the root");
    assert!(jail.host("made").is_dir());
    assert!(!jail.outside().join("made").exists());
}

#[tokio::test]
async fn very_long_paths_are_refused_without_panic() {
    let jail = Jail::new();
    let mut long = b"/".to_vec();
    long.extend(std::iter::repeat_n(b'a', 100_000));
    let err = jail.fs.metadata(&long).await.expect_err("too long");
    assert_eq!(err.kind(), ErrorKind::InvalidName);
    // Many short components, deeper than the OS allows.
    let deep: Vec<u8> = b"/d".repeat(2000);
    assert!(jail.fs.metadata(&deep).await.is_err());
    assert!(upload(&jail.fs, &deep, WriteMode::Create, b"x").await.is_err());
    // One component longer than NAME_MAX.
    let mut name = b"/".to_vec();
    name.extend(std::iter::repeat_n(b'n', 300));
    assert!(upload(&jail.fs, &name, WriteMode::Create, b"x").await.is_err());
    assert!(jail.fs.create_dir(&name).await.is_err());
}

#[tokio::test]
async fn symlink_loops_and_chains_that_leave_the_root_are_refused() {
    let jail = Jail::new();
    symlink("loop2", jail.host("loop1")).expect("symlink");
    symlink("loop1", jail.host("loop2")).expect("symlink");
    symlink("self", jail.host("self")).expect("symlink");
    // A chain that stays inside for a while, then escapes.
    std::fs::create_dir(jail.host("d")).expect("mkdir");
    symlink("../hop2", jail.host("d/hop1")).expect("symlink");
    symlink("hop3", jail.host("hop2")).expect("symlink");
    symlink("../outside", jail.host("hop3")).expect("symlink");
    for path in [&b"/loop1"[..], b"/loop1/x", b"/self", b"/self/self"] {
        assert!(jail.fs.metadata(path).await.is_err(), "{path:?}");
        assert!(read_all(&jail.fs, path, 0).await.is_err(), "{path:?}");
        assert!(jail.fs.list(path).await.is_err(), "{path:?}");
    }
    for path in [&b"/d/hop1/secret.txt"[..], b"/d/hop1", b"/hop2/secret.txt"] {
        nothing_outside(&jail, path).await;
        assert!(read_all(&jail.fs, path, 0).await.is_err(), "{path:?}");
    }
    assert!(upload(&jail.fs, b"/d/hop1/new", WriteMode::Create, b"x")
        .await
        .is_err());
    assert!(jail.fs.create_dir(b"/hop2/newdir").await.is_err());
    assert!(!jail.outside().join("new").exists() && !jail.outside().join("newdir").exists());
}

/// A directory is replaced by a symlink to the outside and back, over and over, while the server reads,
/// lists, stats and writes through it. The jail resolves every component by handle, so no operation may
/// ever reach the outside, whichever state it catches.
#[test]
fn a_directory_swapped_for_an_escaping_symlink_during_use_never_leaks() {
    let jail = Jail::new();
    let dir = jail.host("d");
    let parked = jail.host("d.real");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("inner.txt"), b"inside").expect("write");
    let link = jail.host("d.link");
    symlink("../outside", &link).expect("symlink");

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = Arc::clone(&stop);
        let (dir, parked, link) = (dir.clone(), parked.clone(), link.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u32;
            // Bounded: at most 200,000 swaps even if the readers are slow.
            while !stop.load(Ordering::Relaxed) && swaps < 200_000 {
                // d (dir) -> d.real; d.link -> d; then back.
                let _ = std::fs::rename(&dir, &parked);
                let _ = std::fs::rename(&link, &dir);
                let _ = std::fs::rename(&dir, &link);
                let _ = std::fs::rename(&parked, &dir);
                swaps += 1;
            }
            swaps
        })
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut inside_reads = 0;
    runtime.block_on(async {
        for i in 0..3_000u32 {
            // The outside directory holds secret.txt; the inside one inner.txt (and uploads).
            if let Ok(data) = read_all(&jail.fs, b"/d/inner.txt", 0).await {
                assert_eq!(data, b"inside", "iteration {i}");
                inside_reads += 1;
            }
            if let Ok(data) = read_all(&jail.fs, b"/d/secret.txt", 0).await {
                panic!("iteration {i}: read {data:?} outside the root");
            }
            if let Ok(names) = list_names(&jail.fs, b"/d").await {
                assert!(
                    !names.contains(&b"secret.txt".to_vec()),
                    "iteration {i}: listed the outside directory"
                );
            }
            if let Ok(m) = jail.fs.metadata(b"/d/secret.txt").await {
                panic!("iteration {i}: stat'ed outside the root: {m:?}");
            }
            if i % 10 == 0 {
                let name = format!("/d/new{i}");
                let _ = upload(&jail.fs, name.as_bytes(), WriteMode::Create, b"w").await;
            }
        }
    });
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().expect("swapper");
    assert!(swaps > 100, "the race never ran ({swaps} swaps)");
    assert!(
        inside_reads > 0,
        "never caught the directory in place; the test proves nothing"
    );
    // Nothing was written outside, and the secret is untouched.
    let outside: Vec<_> = std::fs::read_dir(jail.outside())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("secret.txt")]);
    assert_eq!(
        std::fs::read(jail.outside().join("secret.txt")).expect("read"),
        SECRET
    );
}

#[tokio::test]
async fn hard_links_to_files_outside_the_root_are_never_opened() {
    let jail = Jail::new();
    let secret = jail.outside().join("secret.txt");
    std::fs::hard_link(&secret, jail.host("linked")).expect("hard link");
    let err = read_all(&jail.fs, b"/linked", 0).await.expect_err("read");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    let err = upload(&jail.fs, b"/linked", WriteMode::Append, b"appended")
        .await
        .expect_err("append");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    let err = upload(&jail.fs, b"/linked", WriteMode::At(3), b"overwrite")
        .await
        .expect_err("write at offset");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        std::fs::read(&secret).expect("read"),
        SECRET,
        "the outside file is unchanged"
    );
    // A new upload under the name replaces the link, not the file behind it.
    upload(&jail.fs, b"/linked", WriteMode::Create, b"new")
        .await
        .expect("replace");
    assert_eq!(read_all(&jail.fs, b"/linked", 0).await.expect("read"), b"new");
    assert_eq!(std::fs::read(&secret).expect("read"), SECRET);
    // Deleting a link removes only the name inside the root.
    std::fs::hard_link(&secret, jail.host("linked2")).expect("hard link");
    jail.fs.remove_file(b"/linked2").await.expect("delete link");
    assert_eq!(std::fs::read(&secret).expect("read"), SECRET);
}
