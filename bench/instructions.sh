#!/usr/bin/env bash
# Instructions the ferry server executes per operation, counted by valgrind's callgrind: a figure that does
# not move with the machine's load, so a regression shows from one run to the next (docs/benchmarks.md).
#
#   bench/instructions.sh [FERRY_BIN]        # default target/release/ferry
#
# The server runs under callgrind on loopback with a fresh data directory; `ferry bench` (not under
# valgrind) drives it. Each figure is measured twice, with N1 and N2 operations, counters zeroed before
# and dumped after each run, and reported as (I(N2) - I(N1)) / (N2 - N1): logins, set-up and clean-up
# cancel out, what is left is the cost of one more operation. Rows:
#   RETR 4 KiB (plain), STOR 4 KiB (plain), RETR 1 MiB over FTPS (per MiB).
# Environment: N1, N2 (small files, default 20 and 220), M1, M2 (MiB over FTPS, default 2 and 12).
set -euo pipefail

bin=${1:-target/release/ferry}
n1=${N1:-20} n2=${N2:-220} m1=${M1:-2} m2=${M2:-12}
for tool in valgrind callgrind_control; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: scripts/install-test-deps.sh installs it (apt-get install valgrind)" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "no ferry binary at $bin: cargo build --release -p ferry --bin ferry" >&2; exit 1; }
bin=$(realpath "$bin")

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-instructions.XXXXXX")
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
mkdir -p ferry-data/files/bench home

valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" --dump-instr=no \
    "$bin" serve --listen 127.0.0.1:0 --sftp-listen 127.0.0.1:0 --admin-listen off \
    >serve.out 2>serve.err &
server=$!
for _ in $(seq 1 600); do
    grep -q '^ferry: FTP listening on ' serve.out 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat serve.err >&2; exit 1; }
    sleep 0.2
done
addr=$(sed -n 's/^ferry: FTP listening on //p' serve.out | head -1)
[ -n "$addr" ] || { echo "the server did not start under valgrind:" >&2; cat serve.err >&2; exit 1; }
password=$(sed -n 's/^ferry: password: //p' serve.out | head -1)
pin=$(sed -n 's/^ferry: FTPS certificate .*(SHA-256 \(.*\))$/\1/p' serve.out | head -1)

# Instructions since the last zeroing: dump, then read the newest dump's total.
dump_total() {
    callgrind_control -d "$server" >/dev/null 2>&1
    local f
    f=$(ls -t "$work"/cg.out.* | head -1)
    sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$f" | head -1
}

# measure LABEL URL OP SIZE COUNT [SESSIONS]: the server's instructions for one `ferry bench` run.
measure() {
    callgrind_control -z "$server" >/dev/null 2>&1
    HOME="$work/home" FERRY_PASSWORD="$password" "$bin" bench "$2" --op "$3" --size "$4" -n "$5" -s "${6:-1}" \
        --keep --timeout 300 --pin "$pin" -q --json >"$work/last.json" \
        || { echo "ferry bench failed:" >&2; cat "$work/last.json" >&2; exit 1; }
    dump_total
}

row() { # LABEL URL OP SIZE A B UNIT [SESSIONS]
    local a b
    a=$(measure "$1" "$2" "$3" "$4" "$5" "${8:-1}")
    b=$(measure "$1" "$2" "$3" "$4" "$6" "${8:-1}")
    printf '%-28s %12d instructions %s   (I(%d) = %d, I(%d) = %d)\n' \
        "$1" $(((b - a) / ($6 - $5))) "$7" "$5" "$a" "$6" "$b"
}

# A first login outside the figures (Argon2 and lazy set-up happen once per process).
measure warm-up "ftp://ferry@$addr/bench/" login 0 1 >/dev/null
echo "ferry $("$bin" --version | awk '{print $2}'), server under callgrind, load $(cut -d' ' -f1 /proc/loadavg)"
row "RETR 4 KiB, plain" "ftp://ferry@$addr/bench/" get 4KiB "$n1" "$n2" "per file"
row "STOR 4 KiB, plain" "ftp://ferry@$addr/bench/" put 4KiB "$n1" "$n2" "per file"
row "RETR 1 MiB, FTPS" "ftpes://ferry@$addr/bench/" get 1MiB "$m1" "$m2" "per MiB"
# No FTPS STOR row yet: after some uploads in one session, ferry-client's TLS data connections stop
# resuming the control connection's session and the server refuses them (522; docs/benchmarks.md).
