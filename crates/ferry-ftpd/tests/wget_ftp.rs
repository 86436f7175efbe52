//! GNU wget against ferry: a single download with credentials in the URL, and a recursive download
//! (wget parses `LIST` output to find files and directories).

mod common;

use common::{assert_same_tree, pseudo_random, read_file, run, skip_unless, write_file, TestServer};

fn wget(server: &TestServer) -> std::process::Command {
    let mut cmd = server.client("wget");
    cmd.args(["--no-verbose", "--tries=1", "--timeout=10", "--no-config"]);
    cmd
}

#[test]
fn download_with_credentials_in_the_url() {
    if skip_unless("wget") {
        return;
    }
    let server = TestServer::start();
    let content = pseudo_random(750_001, 31);
    write_file(&server.path("file.bin"), &content);
    let out = server.local("file.bin");
    let r = run(
        wget(&server)
            .arg("-O")
            .arg(&out)
            .arg(server.url_with_login("file.bin")),
        None,
    );
    r.assert_success();
    assert_eq!(read_file(&out), content);

    // A missing file is an error, not an empty download.
    let missing = server.local("missing.bin");
    let r = run(
        wget(&server)
            .arg("-O")
            .arg(&missing)
            .arg(server.url_with_login("missing.bin")),
        None,
    );
    assert!(
        !r.status.success(),
        "wget succeeded on a missing file: {}",
        r.dump()
    );
}

#[test]
fn recursive_download_of_a_small_tree() {
    if skip_unless("wget") {
        return;
    }
    let server = TestServer::start();
    write_file(&server.path("site/index.txt"), b"top\n");
    write_file(&server.path("site/a/one.bin"), pseudo_random(10_000, 32));
    write_file(&server.path("site/a/b/two words.txt"), b"deep\n");
    write_file(&server.path("site/a/b/empty"), b"");
    write_file(&server.path("site/c/three.txt"), b"three\n");
    let out = server.local("mirror");
    let r = run(
        wget(&server)
            .args(["-r", "-l", "5", "-nH", "--cut-dirs=1", "-P"])
            .arg(&out)
            .arg(server.url_with_login("site/")),
        None,
    );
    r.assert_success();
    assert_same_tree(&server.path("site"), &out, &[".listing"]);
}
