#!/usr/bin/env bash
# Runs every test: unit, transcript and real-client integration tests. Installs the FTP clients the
# integration tests need first (a test whose client is missing fails, under a plain `cargo test` too).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
cargo test --workspace --all-targets "$@"

# The real-client suites again on the S3 back-end: the same tests, the in-process servers serving the
# files from a bucket of s3s-fs (FERRY_TEST_STORAGE=s3, see crates/ferry-testkit). Skipped here, and
# why: truncating through SFTP is random access, which S3 storage refuses by design (the refusal is
# tested on the in-memory back-end); the traversal test plants symlinks in the files directory, which
# is about the local back-end's jail (and s3s-fs would follow a symlink loop forever).
# `--workspace` keeps the dependencies' features as in the run above, so nothing is built again.
FERRY_TEST_STORAGE=s3 cargo test --workspace --test curl --test lftp --test ftps_rclone "$@"
FERRY_TEST_STORAGE=s3 cargo test --workspace --test clients --test openssh "$@" -- \
    --skip out_of_order_writes_concurrent_handles_attributes_and_extensions \
    --skip traversal_stays_inside_the_root
