#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each for a bounded time (FUZZ_SECS, default 20 s).
# Installs cargo-fuzz when missing. Only stable Rust is needed: RUSTC_BOOTSTRAP=1 unlocks the nightly
# flags cargo-fuzz passes (sanitizer, coverage). Build artefacts go to their own target directory
# (FERRY_FUZZ_TARGET, default /var/tmp/ferry-fuzz-target) because the sanitizer flags differ from a
# normal build's. A crash fails the script and leaves the input under fuzz/artifacts/<target>/.
#
# No sanitizer by default (FUZZ_SANITIZER=none): every crate forbids unsafe code, so AddressSanitizer
# finds nothing the Rust checks do not, at several times the cost; panics, overflow checks and debug
# assertions stay on. FUZZ_SANITIZER=address brings it back.
#
# Usage: scripts/fuzz-smoke.sh [TARGET...]      (all targets when none is named)
#        FUZZ_SECS=600 FUZZ_RUNS=10000000 scripts/fuzz-smoke.sh session
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs="${FUZZ_SECS:-20}"
runs="${FUZZ_RUNS:--1}"   # -1: no run limit, only the time limit
max_len="${FUZZ_MAX_LEN:-4096}"
sanitizer="${FUZZ_SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FERRY_FUZZ_TARGET:-/var/tmp/ferry-fuzz-target}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build -O -s "$sanitizer"
log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "fuzz-smoke: $t for ${secs}s"
    # -rss_limit_mb bounds each target's memory; -max_len keeps inputs in the range the parsers see.
    status=0
    cargo fuzz run -O -s "$sanitizer" "$t" "corpus/$t" -- \
        -max_total_time="$secs" -runs="$runs" -rss_limit_mb=2048 -max_len="$max_len" -print_final_stats=1 \
        >"$log_dir/$t.log" 2>&1 || status=$?
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$log_dir/$t.log" | sed "s/^/fuzz-smoke: $t: /" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log_dir/$t.log" >&2
        echo "fuzz-smoke: $t FAILED (input saved under fuzz/artifacts/$t/)" >&2
        exit 1
    fi
done
echo "fuzz-smoke: all ${#targets[@]} targets ran for ${secs}s each without a crash"
