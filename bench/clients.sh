#!/usr/bin/env bash
# Client benchmark: `ferry get/put/mirror` against the clients people use (curl, lftp, rclone, OpenSSH
# sftp and scp), all talking to the same `ferry serve` (release build), in one run, side by side:
#   - loopback: a BIG_MIB (default 1024) MiB get and put, and a mirror of FILES_N (default 2000) files
#     of 4 KiB in both directions, over FTP and SFTP;
#   - latency: the same through `ferry-delay` (crates/ferry-delay), a relay that adds DELAY_MS (default
#     25) ms each way with a TCP-like window (WINDOW_KIB, default 4096 KiB, and slow start), with
#     LAT_MIB (default 1024) MiB files and LAT_FILES (default 2000) files, each bounded by LAT_TMO
#     (default 600) seconds. The relay listens on 127.0.0.2 and forwards the server's FTP port, its
#     passive ports (announced as 127.0.0.2) and its SFTP port to 127.0.0.1, so every client's control
#     and data connections take the delayed path. No root needed; this kernel has no sch_netem.
# Every measurement is bounded by TMO seconds (default 90) and checked (cmp, file counts). Prints a
# Markdown table of wall-clock seconds and, per row, the speed of ferry relative to the fastest other
# client (best other time / ferry time: above 1.00 means ferry was faster).
#
#   bench/clients.sh                 # loopback, then latency rows (the latency part takes about an hour)
#   BIG_MIB=256 FILES_N=500 LAT_MIB=256 LAT_FILES=200 bench/clients.sh   # shorter
#   PROTOS=sftp OPS="get put" LATENCY=0 bench/clients.sh   # some rows only, loopback only
#   LOOPBACK=0 bench/clients.sh      # latency rows only
#   SKIP="sftp/curl/put sftp/curl/get" bench/clients.sh  # leave cells out (PROTO/CLIENT/OP, as in cmd)
#
# FERRY_BIN is the client measured; FERRY_SERVER_BIN (default: the same binary) serves every client,
# so two client builds can be compared against one server. FERRY_BEFORE_BIN adds a column for a second
# ferry client build (measured right after FERRY_BIN, against the same server, left out of "best
# other"), for before/after figures from one run. OTHERS_PARALLEL (default 4, rclone's default; lftp's
# is 1) is the files at once of lftp's and rclone's mirrors; ferry's mirror runs with its own default. FERRY_ARGS adds arguments to every ferry client
# command (e.g. FERRY_ARGS="--no-checksum" is not valid for get/put; use with OPS="down up").
#
# Needs: curl, lftp, rclone, openssh-client (installed with apt-get when missing), python3, and the
# relay (DELAY_BIN, default target/release/ferry-delay, built when missing).
# Files live under /dev/shm. Servers and the relay are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIG_MIB=${BIG_MIB:-1024}
LAT_MIB=${LAT_MIB:-1024}
FILES_N=${FILES_N:-2000}
LAT_FILES=${LAT_FILES:-2000}
TMO=${TMO:-90}
LAT_TMO=${LAT_TMO:-600}
DELAY_MS=${DELAY_MS:-25}
WINDOW_KIB=${WINDOW_KIB:-4096}
TARGET=${CARGO_TARGET_DIR:-target}
FERRY=${FERRY_BIN:-$(realpath -m "$TARGET/release/ferry")}
[ -x "$FERRY" ] || cargo build --release -p ferry
SERVER=${FERRY_SERVER_BIN:-$FERRY}
PROTOS=${PROTOS:-ftp sftp}
OPS=${OPS:-get put down up}
LATENCY=${LATENCY:-1}
LOOPBACK=${LOOPBACK:-1}
OTHERS_PARALLEL=${OTHERS_PARALLEL:-4}
SKIP=${SKIP:-}
DELAY=${DELAY_BIN:-$(realpath -m "$TARGET/release/ferry-delay")}
if [ "$LATENCY" != 0 ] && [ ! -x "$DELAY" ]; then cargo build --release -p ferry-delay; fi
read -ra FERRY_EXTRA <<< "${FERRY_ARGS:-}"

missing=()
for tool in curl lftp rclone sftp scp python3; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: installing packages for: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        curl lftp rclone openssh-client python3 >/dev/null
fi

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
W=$(mktemp -d /dev/shm/ferry-clients-bench.XXXXXX)
SERVER_PID= RELAY_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "$RELAY_PID" ]; then kill "$RELAY_PID" 2>/dev/null || true; wait "$RELAY_PID" 2>/dev/null || true; fi
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FILES=$W/files
mkdir -p "$FILES/up" "$W/ferry" "$W/home/.ssh" "$W/out"
ssh-keygen -q -t ed25519 -N '' -f "$W/id_ed25519"
echo "bench: preparing files in $W" >&2
[ "$LOOPBACK" = 0 ] || head -c $((BIG_MIB << 20)) /dev/urandom > "$FILES/big.bin"
if [ "$LATENCY" != 0 ]; then
    if [ "$LOOPBACK" != 0 ] && [ "$LAT_MIB" = "$BIG_MIB" ]; then ln "$FILES/big.bin" "$FILES/lat.bin"
    else head -c $((LAT_MIB << 20)) /dev/urandom > "$FILES/lat.bin"; fi
fi
python3 - "$W" "$FILES_N" "$LAT_FILES" <<'PY'
import os, sys
w, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for name, count in (("small", n), ("latsmall", m)):
    d = os.path.join(w, name)
    os.makedirs(d)
    for i in range(count):
        with open(os.path.join(d, f"f{i:04d}.bin"), "wb") as f:
            f.write(os.urandom(4096))
PY
cp -r "$W/small" "$FILES/small"
cp -r "$W/latsmall" "$FILES/latsmall"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server PASSIVE-PORTS [ARG…]: ferry serve with FTP and SFTP on 127.0.0.1 (more serve arguments
# after the passive range); sets FTP_PORT, SFTP_PORT, SERVER_PID.
start_server() {
    local passive=$1; shift
    FTP_PORT=$(free_port) SFTP_PORT=$(free_port)
    "$SERVER" serve --data-dir "$W/ferry" --files-root "$FILES" \
        --listen "127.0.0.1:$FTP_PORT" --sftp-listen "127.0.0.1:$SFTP_PORT" --passive-ports "$passive" \
        --ftps-policy off --max-connections 512 --max-connections-per-ip 256 \
        --max-commands-per-sec 100000 --defender-allow-list 127.0.0.0/8 --log warn "$@" \
        > "$W/server.out" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 300); do grep -q "SFTP listening" "$W/server.out" && break; sleep 0.1; done
    grep -q "SFTP listening" "$W/server.out" || { cat "$W/server.out" >&2; exit 1; }
    if [ -z "${PASSWORD:-}" ]; then
        PASSWORD=$(sed -n 's/^ferry: password: //p' "$W/server.out")
        "$SERVER" user key add ferry --data-dir "$W/ferry" --file "$W/id_ed25519.pub" >/dev/null
    fi
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }

SSH_OPTS=(-q -F /dev/null -i "$W/id_ed25519" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no
    -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes)

# The client commands: cmd PROTO OP CLIENT → sets CMD (array); returns 1 when CLIENT cannot do it.
# OP: get | put | down (mirror server → local) | up (mirror local → server). $SRC_FILE, $SRC_DIR and the
# local targets $OUT_FILE, $OUT_DIR are set by the caller.
cmd() {
    local proto=$1 op=$2 client=$3
    local FERRY=$FERRY
    if [ "$client" = ferry-before ]; then FERRY=$FERRY_BEFORE_BIN client=ferry; fi
    local ftp="ftp://ferry@$H:$FTP_PORT" sftp="sftp://ferry@$H:$SFTP_PORT"
    local rf=${SRC_FILE##*/} rd=${SRC_DIR##*/}
    CMD=()
    case "$proto/$client/$op" in
    ftp/ferry/get) CMD=(env FERRY_PASSWORD="$PASSWORD" HOME="$W/home" "$FERRY" get -q "${FERRY_EXTRA[@]}" "$ftp/$rf" "$OUT_FILE") ;;
    ftp/ferry/put) CMD=(env FERRY_PASSWORD="$PASSWORD" HOME="$W/home" "$FERRY" put -q "${FERRY_EXTRA[@]}" "$SRC_FILE" "$ftp/up/$rf") ;;
    ftp/ferry/down) CMD=(env FERRY_PASSWORD="$PASSWORD" HOME="$W/home" "$FERRY" mirror -q "${FERRY_EXTRA[@]}" "$ftp/$rd" "$OUT_DIR") ;;
    ftp/ferry/up) CMD=(env FERRY_PASSWORD="$PASSWORD" HOME="$W/home" "$FERRY" mirror -q "${FERRY_EXTRA[@]}" "$SRC_DIR" "$ftp/up/$rd") ;;
    sftp/ferry/get) CMD=(env HOME="$W/home" "$FERRY" get -q "${FERRY_EXTRA[@]}" --trust-on-first-use -i "$W/id_ed25519" "$sftp/$rf" "$OUT_FILE") ;;
    sftp/ferry/put) CMD=(env HOME="$W/home" "$FERRY" put -q "${FERRY_EXTRA[@]}" --trust-on-first-use -i "$W/id_ed25519" "$SRC_FILE" "$sftp/up/$rf") ;;
    sftp/ferry/down) CMD=(env HOME="$W/home" "$FERRY" mirror -q "${FERRY_EXTRA[@]}" --trust-on-first-use -i "$W/id_ed25519" "$sftp/$rd" "$OUT_DIR") ;;
    sftp/ferry/up) CMD=(env HOME="$W/home" "$FERRY" mirror -q "${FERRY_EXTRA[@]}" --trust-on-first-use -i "$W/id_ed25519" "$SRC_DIR" "$sftp/up/$rd") ;;
    ftp/curl/get) CMD=(curl -sS --user "ferry:$PASSWORD" -o "$OUT_FILE" "ftp://$H:$FTP_PORT/$rf") ;;
    ftp/curl/put) CMD=(curl -sS --user "ferry:$PASSWORD" -T "$SRC_FILE" "ftp://$H:$FTP_PORT/up/$rf") ;;
    sftp/curl/get) CMD=(curl -sS -k --user "ferry:" --key "$W/id_ed25519" --pubkey "$W/id_ed25519.pub" -o "$OUT_FILE" "sftp://$H:$SFTP_PORT/$rf") ;;
    sftp/curl/put) CMD=(curl -sS -k --user "ferry:" --key "$W/id_ed25519" --pubkey "$W/id_ed25519.pub" -T "$SRC_FILE" "sftp://$H:$SFTP_PORT/up/$rf") ;;
    ftp/lftp/*)
        local script
        case $op in
        get) script="get $rf -o $OUT_FILE" ;;
        put) script="put $SRC_FILE -o up/$rf" ;;
        down) script="mirror --parallel=$OTHERS_PARALLEL $rd $OUT_DIR" ;;
        up) script="mirror -R --parallel=$OTHERS_PARALLEL $SRC_DIR up/$rd" ;;
        esac
        CMD=(lftp -u "ferry,$PASSWORD" -p "$FTP_PORT" -e "set ftp:ssl-allow no; set net:max-retries 1; $script; bye" "$H") ;;
    */rclone/*)
        local remote
        if [ "$proto" = ftp ]; then
            remote=":ftp,host=$H,port=$FTP_PORT,user=ferry,pass=$(rclone obscure "$PASSWORD"):"
        else
            remote=":sftp,host=$H,port=$SFTP_PORT,user=ferry,key_file=$W/id_ed25519,shell_type=none:"
        fi
        case $op in
        get) CMD=(rclone copyto -q "$remote$rf" "$OUT_FILE") ;;
        put) CMD=(rclone copyto -q "$SRC_FILE" "${remote}up/$rf") ;;
        down) CMD=(rclone copy -q --transfers "$OTHERS_PARALLEL" "$remote$rd" "$OUT_DIR") ;;
        up) CMD=(rclone copy -q --transfers "$OTHERS_PARALLEL" "$SRC_DIR" "${remote}up/$rd") ;;
        esac ;;
    sftp/sftp/*)
        local script
        case $op in
        get) script="get /$rf $OUT_FILE" ;;
        put) script="put $SRC_FILE /up/$rf" ;;
        down) script="get -r /$rd $OUT_DIR" ;;
        up) script="put -r $SRC_DIR /up/$rd" ;;
        esac
        CMD=(sh -c 'printf "%s\n" "$0" | sftp -b - "$@"' "$script" \
            "${SSH_OPTS[@]}" -P "$SFTP_PORT" "ferry@$H") ;;
    sftp/scp/*)
        local -a base=(scp "${SSH_OPTS[@]}" -P "$SFTP_PORT")
        case $op in
        get) CMD=("${base[@]}" "ferry@$H:/$rf" "$OUT_FILE") ;;
        put) CMD=("${base[@]}" "$SRC_FILE" "ferry@$H:/up/$rf") ;;
        down) CMD=("${base[@]}" -r "ferry@$H:/$rd" "$OUT_DIR") ;;
        up) CMD=("${base[@]}" -r "$SRC_DIR" "ferry@$H:/up/$rd") ;;
        esac ;;
    *) return 1 ;;
    esac
}

# measure PREFIX... -- runs CMD under `timeout`, checks the result, prints seconds or fail/timeout.
measure() {
    local op=$1; shift
    rm -rf "$OUT_FILE" "$OUT_DIR" "$FILES/up"/*
    local t0 t1 rc=0
    t0=$(date +%s.%N)
    timeout "$TMO" "$@" "${CMD[@]}" > "$W/client.out" 2>&1 < /dev/null || rc=$?
    t1=$(date +%s.%N)
    if [ "$rc" = 124 ]; then echo "timeout"; return; fi
    local ok=1
    case $op in
    get) cmp -s "$SRC_FILE" "$OUT_FILE" || ok=0 ;;
    put) cmp -s "$SRC_FILE" "$FILES/up/${SRC_FILE##*/}" || ok=0 ;;
    down) [ "$(find "$OUT_DIR" -type f 2>/dev/null | wc -l)" = "$NFILES" ] || ok=0 ;;
    up) [ "$(find "$FILES/up/${SRC_DIR##*/}" -type f 2>/dev/null | wc -l)" = "$NFILES" ] || ok=0 ;;
    esac
    if [ "$rc" != 0 ] || [ "$ok" = 0 ]; then
        echo "bench: ${CMD[0]} $op failed (exit $rc): $(head -c 300 "$W/client.out")" >&2
        echo "fail"
        return
    fi
    python3 -c "print(f'{$t1 - $t0:.2f}')"
}

CLIENTS=(ferry curl lftp rclone sftp scp)
BEFORE_HEAD=
if [ -n "${FERRY_BEFORE_BIN:-}" ]; then
    CLIENTS=(ferry ferry-before curl lftp rclone sftp scp)
    BEFORE_HEAD=" ferry before |"
fi
ROWS=()
# run_rows NET PREFIX...: every protocol × operation × client.
run_rows() {
    local net=$1; shift
    local proto op client
    for proto in $PROTOS; do
        for op in $OPS; do
            local line="| $net | $proto | "
            case $op in
            get | put) line+="$op $SIZE_LABEL |" ;;
            down) line+="mirror $NFILES files, server → local |" ;;
            up) line+="mirror $NFILES files, local → server |" ;;
            esac
            local ferry_t="" best=""
            for client in "${CLIENTS[@]}"; do
                if ! cmd "$proto" "$op" "$client"; then line+=" — |"; continue; fi
                if [[ " $SKIP " == *" $proto/$client/$op "* ]]; then line+=" skipped |"; continue; fi
                local t
                t=$(measure "$op" "$@")
                line+=" $t |"
                echo "bench: $net $proto $op $client: $t" >&2
                [[ $t =~ ^[0-9.]+$ ]] || continue
                if [ "$client" = ferry ]; then ferry_t=$t
                elif [ "$client" = ferry-before ]; then :
                elif [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $t < $best else 1)"; then best=$t; fi
            done
            if [ -n "$ferry_t" ] && [ -n "$best" ]; then
                line+=" $(python3 -c "print(f'{$best / $ferry_t:.2f}')") |"
            else
                line+=" — |"
            fi
            ROWS+=("$line")
        done
    done
}

# Loopback.
if [ "$LOOPBACK" != 0 ]; then
    OUT_FILE=$W/out/file.bin OUT_DIR=$W/out/dir H=127.0.0.1
    start_server 42000-42999
    # One untimed download with curl first: the first transfer after writing the files (and starting the
    # server) was up to 3× slower than the same transfer a minute later, and ferry's cell is always first.
    curl -sS --user "ferry:$PASSWORD" -o /dev/null "ftp://127.0.0.1:$FTP_PORT/big.bin" || true
    SRC_FILE=$FILES/big.bin SRC_DIR=$W/small NFILES=$FILES_N SIZE_LABEL="$BIG_MIB MiB"
    run_rows loopback
    stop_server
fi

# Latency: every connection through ferry-delay on 127.0.0.2, DELAY_MS each way. The server announces
# 127.0.0.2 in PASV replies (clients that follow the PASV address, like lftp, take the relay too; the
# others use the control connection's address, which is the relay's), and every relayed connection
# reaches the server from 127.0.0.1, so its data-connection address check holds.
LATENCY_NOTE=
if [ "$LATENCY" = 0 ]; then
    LATENCY_NOTE="Latency rows not run: LATENCY=0."
else
    OUT_FILE=$W/out/file.bin OUT_DIR=$W/out/dir
    start_server 43000-43199 --masquerade-address 127.0.0.2
    "$DELAY" --delay-ms "$DELAY_MS" --window-kib "$WINDOW_KIB" --listen 127.0.0.2 --upstream 127.0.0.1 \
        --ports "$FTP_PORT,$SFTP_PORT,43000-43199" > "$W/relay.out" 2>&1 &
    RELAY_PID=$!
    for _ in $(seq 100); do grep -q "ready" "$W/relay.out" && break; sleep 0.1; done
    grep -q "ready" "$W/relay.out" || { cat "$W/relay.out" >&2; exit 1; }
    H=127.0.0.2 TMO=$LAT_TMO
    SRC_FILE=$FILES/lat.bin SRC_DIR=$W/latsmall NFILES=$LAT_FILES SIZE_LABEL="$LAT_MIB MiB"
    run_rows "$DELAY_MS ms each way"
    kill "$RELAY_PID"; wait "$RELAY_PID" 2>/dev/null || true; RELAY_PID=
    stop_server
fi

echo
echo "Wall-clock seconds (lower is better); last column: best other client's time / ferry's time (above 1.00: ferry faster)."
echo
echo "| network | protocol | operation | ferry |$BEFORE_HEAD curl | lftp | rclone | OpenSSH sftp | OpenSSH scp | ferry vs best other |"
echo "|---|---|---|---|---|---|---|---|---|---|${BEFORE_HEAD:+---|}"
printf '%s\n' "${ROWS[@]}"
echo
echo "Load average before the run: $LOAD_START; after: $(cut -d' ' -f1-3 /proc/loadavg)."
[ "$LATENCY" = 0 ] || echo "Latency rows: ferry-delay, $DELAY_MS ms each way, window $WINDOW_KIB KiB per connection and direction (slow start from 10 segments)."
[ -z "$LATENCY_NOTE" ] || { echo; echo "$LATENCY_NOTE"; }
