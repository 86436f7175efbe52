#!/usr/bin/env bash
# Runs every test: unit, transcript and real-client integration tests. Installs the FTP clients the
# integration tests need first, and makes a missing client a failure rather than a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
export FERRY_REQUIRE_CLIENTS=1
cargo test --workspace --all-targets "$@"
