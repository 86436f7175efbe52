#!/usr/bin/env bash
# Storage benchmark: the same `ferry serve` (release build) serving FTP from the local back-end and
# from the S3 back-end (s3s-fs on loopback), side by side, with curl as the client:
#
#   - 1 GiB STOR and RETR (one file, EPSV, binary);
#   - 2,000 × 4 KiB STOR then RETR in one session (Python's ftplib);
#   - peak RSS of `ferry serve` with 1, 10 and 50 concurrent 32 MiB uploads (each its own session),
#     as growth over the server's RSS after one login, and that growth per upload.
#
# Rounds alternate the back-ends (local, S3, then S3, local, …) so a shared machine's noise hits both.
# Every transfer is checked: the stored or fetched bytes are compared with the source (cmp).
#
# Usage: bench/s3.sh [ROUNDS]          (default 3)
# Env:   FERRY_BIN (default: build it with cargo into $CARGO_TARGET_DIR or target/), BIG_MIB (1024),
#        FILES_N (2000), CONC ("1 10 50"), CONC_MIB (32), WORK (a directory on tmpfs, default /dev/shm),
#        ROWS (which rows: "big small rss", the default, or any of them)
# Needs: curl, python3, s3s-fs (scripts/install-test-deps.sh installs it).
# Output: a Markdown table (median and rounds per row) on stdout; progress on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-3}
BIG_MIB=${BIG_MIB:-1024}
FILES_N=${FILES_N:-2000}
CONC=${CONC:-1 10 50}
ROWS=${ROWS:-big small rss}
CONC_MIB=${CONC_MIB:-32}
TARGET=${CARGO_TARGET_DIR:-target}
FERRY=${FERRY_BIN:-$(realpath -m "$TARGET/release/ferry")}
[ -x "$FERRY" ] || cargo build --release -p ferry --bin ferry
for tool in curl python3 s3s-fs cmp; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (scripts/install-test-deps.sh)" >&2; exit 1; }
done

W=$(mktemp -d "${WORK:-/dev/shm}/ferry-s3-bench.XXXXXX")
SERVER_PID= S3_PID=
cleanup() {
    for pid in $SERVER_PID $S3_PID; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
hwm_kib() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

echo "bench: preparing files in $W" >&2
mkdir -p "$W/src/small" "$W/src/conc" "$W/out" "$W/s3" "$W/local"
head -c $((BIG_MIB << 20)) /dev/urandom > "$W/src/big.bin"
head -c $((CONC_MIB << 20)) /dev/urandom > "$W/src/conc.bin"
python3 - "$W/src/small" "$FILES_N" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"f{i:04d}.bin"), "wb") as f:
        f.write(os.urandom(4096))
PY
max_conc=0
for n in $CONC; do [ "$n" -gt "$max_conc" ] && max_conc=$n; done
for i in $(seq 1 "$max_conc"); do ln -s ../conc.bin "$W/src/conc/c$i.bin"; done

# One s3s-fs for the whole run; each server start gets a fresh bucket.
S3_KEY=ferry-bench-key S3_SECRET=ferry-bench-secret-not-secret
S3_PORT=$(free_port)
s3s-fs --host 127.0.0.1 --port "$S3_PORT" --access-key "$S3_KEY" --secret-key "$S3_SECRET" "$W/s3" \
    > "$W/s3s.log" 2>&1 &
S3_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/" && break; sleep 0.1; done

BUCKET_N=0
# start_server local|s3: a fresh ferry serve (fresh data dir, empty files root or bucket); sets
# FTP_PORT, PASSWORD, SERVER_PID and ROOT (where the stored files appear: the local root or the
# bucket's directory in s3s-fs).
start_server() {
    local backend=$1
    local -a storage
    rm -rf "$W/ferry" "$W/local"
    mkdir -p "$W/ferry" "$W/local"
    if [ "$backend" = local ]; then
        storage=(--files-root "$W/local")
        ROOT=$W/local
    else
        BUCKET_N=$((BUCKET_N + 1))
        local bucket=bench$BUCKET_N
        rm -rf "$W/s3/bench"*
        mkdir "$W/s3/$bucket" # s3s-fs's CreateBucket is this directory
        storage=(--storage-backend s3 --storage-endpoint "http://127.0.0.1:$S3_PORT" --storage-bucket "$bucket"
            --storage-path-style --storage-access-key-id "$S3_KEY" --storage-secret-access-key "$S3_SECRET")
        ROOT=$W/s3/$bucket
    fi
    FTP_PORT=$(free_port)
    "$FERRY" serve --data-dir "$W/ferry" "${storage[@]}" \
        --listen "127.0.0.1:$FTP_PORT" --sftp-listen 127.0.0.1:0 --passive-ports 43000-43999 \
        --ftps-policy off --max-connections 512 --max-connections-per-ip 256 \
        --max-commands-per-sec 100000 --log warn > "$W/server.out" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 300); do grep -q "FTP listening" "$W/server.out" && break; sleep 0.1; done
    grep -q "FTP listening" "$W/server.out" || { cat "$W/server.out" >&2; exit 1; }
    PASSWORD=$(sed -n 's/^ferry: password: //p' "$W/server.out")
    URL="ftp://ferry:$PASSWORD@127.0.0.1:$FTP_PORT"
    # One login first: the Argon2id verification's memory is then in the baseline.
    curl -sS --fail "$URL/" -o /dev/null
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }

has() { [[ " $ROWS " == *" $1 "* ]]; }
declare -A RESULT
record() { RESULT[$1]="${RESULT[$1]:-} $2"; echo "bench: $1: $2" >&2; }

# run_round BACKEND: every row once on BACKEND.
run_round() {
    local b=$1 t0 t1 mib=$BIG_MIB
    if has big || has small; then start_server "$b"; fi
    if has big; then
    t0=$(now)
    curl -sS --fail -T "$W/src/big.bin" "$URL/big.bin"
    t1=$(now)
    cmp "$W/src/big.bin" "$ROOT/big.bin"
    record "$b/stor1g" "$(python3 -c "print(round($mib*1.048576/($t1-$t0)))")"
    t0=$(now)
    curl -sS --fail "$URL/big.bin" -o "$W/out/big.bin"
    t1=$(now)
    cmp "$W/src/big.bin" "$W/out/big.bin"
    rm -f "$W/out/big.bin"
    record "$b/retr1g" "$(python3 -c "print(round($mib*1.048576/($t1-$t0)))")"
    fi

    if has small; then
    # The small files go through Python's ftplib in one session (STOR each, then RETR each), as the
    # team harness does: curl's URL globbing waits about a second before each passive data
    # connection after the first (curl 7.88, any server), so it would measure curl.
    python3 - "$URL" "$W/src/small" "$W/out/small" "$FILES_N" > "$W/small.txt" <<'PY'
import ftplib, os, sys, time, urllib.parse
url, src, out, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
u = urllib.parse.urlsplit(url)
f = ftplib.FTP()
f.connect(u.hostname, u.port)
f.login(urllib.parse.unquote(u.username), urllib.parse.unquote(u.password))
f.mkd("small")
f.cwd("small")
names = [f"f{i:04d}.bin" for i in range(n)]
t0 = time.monotonic()
for name in names:
    with open(os.path.join(src, name), "rb") as fh:
        f.storbinary("STOR " + name, fh)
t1 = time.monotonic()
os.makedirs(out, exist_ok=True)
for name in names:
    with open(os.path.join(out, name), "wb") as fh:
        f.retrbinary("RETR " + name, fh.write)
t2 = time.monotonic()
f.quit()
print(round(n / (t1 - t0)), round(n / (t2 - t1)))
PY
    diff -r -x .ferry-dir "$W/src/small" "$ROOT/small" # the S3 back-end marks a directory made by MKD with this object
    diff -r "$W/src/small" "$W/out/small"
    rm -rf "$W/out/small"
    record "$b/stor4k" "$(cut -d' ' -f1 "$W/small.txt")"
    record "$b/retr4k" "$(cut -d' ' -f2 "$W/small.txt")"
    fi
    if has big || has small; then stop_server; fi

    local n base hwm
    has rss || return 0
    for n in $CONC; do
        start_server "$b"
        base=$(rss_kib "$SERVER_PID")
        (cd "$W/src/conc" && curl -sS --fail -Z --parallel-immediate --parallel-max "$n" \
            -T "c[1-$n].bin" "$URL/conc/" --ftp-create-dirs)
        hwm=$(hwm_kib "$SERVER_PID")
        for i in $(seq 1 "$n"); do cmp "$W/src/conc.bin" "$ROOT/conc/c$i.bin"; done
        record "$b/rss$n" "$(( (hwm - base) / 1024 ))"
        stop_server
    done
}

for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) -eq 1 ]; then order="local s3"; else order="s3 local"; fi
    for b in $order; do
        echo "bench: round $r, $b" >&2
        run_round "$b"
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
row() { # label key unit
    local l m s
    l=$(median <<< "${RESULT[local/$2]}") s=$(median <<< "${RESULT[s3/$2]}")
    echo "| $1 | $l $3 (${RESULT[local/$2]# }) | $s $3 (${RESULT[s3/$2]# }) | $(python3 -c "print(f'{$s/$l:.2f}')") |"
}
echo
echo "| row | local back-end (median; rounds) | S3 back-end, s3s-fs (median; rounds) | S3 / local |"
echo "|---|---|---|---|"
if has big; then
    row "STOR ${BIG_MIB} MiB" stor1g MB/s
    row "RETR ${BIG_MIB} MiB" retr1g MB/s
fi
if has small; then
    row "STOR $FILES_N × 4 KiB (one session)" stor4k files/s
    row "RETR $FILES_N × 4 KiB (one session)" retr4k files/s
fi
has rss || exit 0
for n in $CONC; do
    l=$(median <<< "${RESULT[local/rss$n]}") s=$(median <<< "${RESULT[s3/rss$n]}")
    echo "| peak RSS growth, $n concurrent ${CONC_MIB} MiB STORs (per upload) | +$l MiB (+$(python3 -c "print(round($l/$n,1))") MiB) (${RESULT[local/rss$n]# }) | +$s MiB (+$(python3 -c "print(round($s/$n,1))") MiB) (${RESULT[s3/rss$n]# }) | |"
done
