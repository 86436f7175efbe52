#!/usr/bin/env bash
# Runs every test: unit, transcript and real-client integration tests. Installs the FTP clients the
# integration tests need first (a test whose client is missing fails, under a plain `cargo test` too).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
cargo test --workspace --all-targets "$@"
