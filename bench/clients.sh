#!/usr/bin/env bash
# Client benchmark: `ferry get/put/mirror` against the clients people use (curl, lftp, rclone, OpenSSH
# sftp and scp), all talking to the same `ferry serve` (release build), in one run, side by side:
#   - loopback: a BIG_MIB (default 1024) MiB get and put, and a mirror of FILES_N (default 2000) files
#     of 4 KiB in both directions, over FTP and SFTP;
#   - latency: the same over a veth pair between two network namespaces created here, with
#     `tc netem delay 25ms` on both ends (50 ms round trip), with LAT_MIB (default 256) MiB files and
#     LAT_FILES (default 200) files to keep the run short.
# Every measurement is bounded by TMO seconds (default 90) and checked (cmp, file counts). Prints a
# Markdown table of wall-clock seconds and, per row, the speed of ferry relative to the fastest other
# client (best other time / ferry time: above 1.00 means ferry was faster).
#
#   sudo bench/clients.sh            # as root: network namespaces need it
#   BIG_MIB=256 FILES_N=500 bench/clients.sh
#   PROTOS=sftp OPS="get put" LATENCY=0 bench/clients.sh   # some rows only, loopback only
#
# FERRY_BIN is the client measured; FERRY_SERVER_BIN (default: the same binary) serves every client,
# so two client builds can be compared against one server. FERRY_BEFORE_BIN adds a column for a second
# ferry client build (measured right after FERRY_BIN, against the same server, left out of "best
# other"), for before/after figures from one run.
#
# Needs: curl, lftp, rclone, openssh-client, iproute2 (installed with apt-get when missing), python3.
# Files live under /dev/shm. Namespaces and servers are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIG_MIB=${BIG_MIB:-1024}
LAT_MIB=${LAT_MIB:-256}
FILES_N=${FILES_N:-2000}
LAT_FILES=${LAT_FILES:-200}
TMO=${TMO:-90}
TARGET=${CARGO_TARGET_DIR:-target}
FERRY=${FERRY_BIN:-$(realpath -m "$TARGET/release/ferry")}
[ -x "$FERRY" ] || cargo build --release -p ferry
SERVER=${FERRY_SERVER_BIN:-$FERRY}
PROTOS=${PROTOS:-ftp sftp}
OPS=${OPS:-get put down up}
LATENCY=${LATENCY:-1}

missing=()
for tool in curl lftp rclone sftp scp ip tc python3; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: installing packages for: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        curl lftp rclone openssh-client iproute2 python3 >/dev/null
fi

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
W=$(mktemp -d /dev/shm/ferry-clients-bench.XXXXXX)
NS_S=ferrybench-s$$ NS_C=ferrybench-c$$
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    ip netns del "$NS_S" 2>/dev/null || true
    ip netns del "$NS_C" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FILES=$W/files
mkdir -p "$FILES/up" "$W/ferry" "$W/home/.ssh" "$W/out"
ssh-keygen -q -t ed25519 -N '' -f "$W/id_ed25519"
echo "bench: preparing files in $W" >&2
head -c $((BIG_MIB << 20)) /dev/urandom > "$FILES/big.bin"
head -c $((LAT_MIB << 20)) "$FILES/big.bin" > "$FILES/lat.bin"
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

# start_server NETNS-or-empty ADDR: ferry serve with FTP and SFTP on ADDR; sets H, FTP_PORT, SFTP_PORT.
start_server() {
    local ns=$1 addr=$2
    local -a pre=()
    [ -n "$ns" ] && pre=(ip netns exec "$ns")
    FTP_PORT=$(free_port) SFTP_PORT=$(free_port) H=$addr
    "${pre[@]}" "$SERVER" serve --data-dir "$W/ferry" --files-root "$FILES" \
        --listen "$addr:$FTP_PORT" --sftp-listen "$addr:$SFTP_PORT" --passive-ports 42000-42999 \
        --ftps-policy off --max-connections 512 --max-connections-per-ip 256 \
        --max-commands-per-sec 100000 --defender-allow-list 10.77.0.0/24 --log warn \
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
    ftp/ferry/get) CMD=(env FERRY_PASSWORD="$PASSWORD" HOME="$W/home" "$FERRY" get -q "$ftp/$rf" "$OUT_FILE") ;;
    ftp/ferry/put) CMD=(env FERRY_PASSWORD="$PASSWORD" HOME="$W/home" "$FERRY" put -q "$SRC_FILE" "$ftp/up/$rf") ;;
    ftp/ferry/down) CMD=(env FERRY_PASSWORD="$PASSWORD" HOME="$W/home" "$FERRY" mirror -q "$ftp/$rd" "$OUT_DIR") ;;
    ftp/ferry/up) CMD=(env FERRY_PASSWORD="$PASSWORD" HOME="$W/home" "$FERRY" mirror -q "$SRC_DIR" "$ftp/up/$rd") ;;
    sftp/ferry/get) CMD=(env HOME="$W/home" "$FERRY" get -q --trust-on-first-use -i "$W/id_ed25519" "$sftp/$rf" "$OUT_FILE") ;;
    sftp/ferry/put) CMD=(env HOME="$W/home" "$FERRY" put -q --trust-on-first-use -i "$W/id_ed25519" "$SRC_FILE" "$sftp/up/$rf") ;;
    sftp/ferry/down) CMD=(env HOME="$W/home" "$FERRY" mirror -q --trust-on-first-use -i "$W/id_ed25519" "$sftp/$rd" "$OUT_DIR") ;;
    sftp/ferry/up) CMD=(env HOME="$W/home" "$FERRY" mirror -q --trust-on-first-use -i "$W/id_ed25519" "$SRC_DIR" "$sftp/up/$rd") ;;
    ftp/curl/get) CMD=(curl -sS --user "ferry:$PASSWORD" -o "$OUT_FILE" "ftp://$H:$FTP_PORT/$rf") ;;
    ftp/curl/put) CMD=(curl -sS --user "ferry:$PASSWORD" -T "$SRC_FILE" "ftp://$H:$FTP_PORT/up/$rf") ;;
    sftp/curl/get) CMD=(curl -sS -k --user "ferry:" --key "$W/id_ed25519" --pubkey "$W/id_ed25519.pub" -o "$OUT_FILE" "sftp://$H:$SFTP_PORT/$rf") ;;
    sftp/curl/put) CMD=(curl -sS -k --user "ferry:" --key "$W/id_ed25519" --pubkey "$W/id_ed25519.pub" -T "$SRC_FILE" "sftp://$H:$SFTP_PORT/up/$rf") ;;
    ftp/lftp/*)
        local script
        case $op in
        get) script="get $rf -o $OUT_FILE" ;;
        put) script="put $SRC_FILE -o up/$rf" ;;
        down) script="mirror --parallel=4 $rd $OUT_DIR" ;;
        up) script="mirror -R --parallel=4 $SRC_DIR up/$rd" ;;
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
        down) CMD=(rclone copy -q --transfers 4 "$remote$rd" "$OUT_DIR") ;;
        up) CMD=(rclone copy -q --transfers 4 "$SRC_DIR" "${remote}up/$rd") ;;
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
OUT_FILE=$W/out/file.bin OUT_DIR=$W/out/dir
start_server "" 127.0.0.1
# One untimed download with curl first: the first transfer after writing the files (and starting the
# server) was up to 3× slower than the same transfer a minute later, and ferry's cell is always first.
curl -sS --user "ferry:$PASSWORD" -o /dev/null "ftp://127.0.0.1:$FTP_PORT/big.bin" || true
SRC_FILE=$FILES/big.bin SRC_DIR=$W/small NFILES=$FILES_N SIZE_LABEL="$BIG_MIB MiB"
run_rows loopback
stop_server

# Latency: two namespaces joined by a veth pair, 25 ms each way. Needs the kernel's netem qdisc
# (sch_netem); without it the latency rows are skipped with a note.
LATENCY_NOTE=
if [ "$LATENCY" = 0 ]; then
    LATENCY_NOTE="Latency rows not run: LATENCY=0."
else
    ip netns add "$NS_S"
    ip netns add "$NS_C"
    ip link add "fbs$$" type veth peer name "fbc$$"
    ip link set "fbs$$" netns "$NS_S"
    ip link set "fbc$$" netns "$NS_C"
    ip -n "$NS_S" addr add 10.77.0.1/24 dev "fbs$$"
    ip -n "$NS_C" addr add 10.77.0.2/24 dev "fbc$$"
    for ns in "$NS_S" "$NS_C"; do ip -n "$ns" link set lo up; done
    ip -n "$NS_S" link set "fbs$$" up
    ip -n "$NS_C" link set "fbc$$" up
    if ip netns exec "$NS_S" tc qdisc add dev "fbs$$" root netem delay 25ms limit 100000 2> "$W/tc.err" &&
        ip netns exec "$NS_C" tc qdisc add dev "fbc$$" root netem delay 25ms limit 100000 2>> "$W/tc.err"; then
        start_server "$NS_S" 10.77.0.1
        SRC_FILE=$FILES/lat.bin SRC_DIR=$W/latsmall NFILES=$LAT_FILES SIZE_LABEL="$LAT_MIB MiB"
        run_rows "25 ms each way" ip netns exec "$NS_C"
        stop_server
    else
        LATENCY_NOTE="Latency rows not run: \`tc qdisc add … netem\` failed ($(tr -d '\n' < "$W/tc.err")); this kernel has no sch_netem."
        echo "bench: $LATENCY_NOTE" >&2
    fi
fi

echo
echo "Wall-clock seconds (lower is better); last column: best other client's time / ferry's time (above 1.00: ferry faster)."
echo
echo "| network | protocol | operation | ferry |$BEFORE_HEAD curl | lftp | rclone | OpenSSH sftp | OpenSSH scp | ferry vs best other |"
echo "|---|---|---|---|---|---|---|---|---|---|${BEFORE_HEAD:+---|}"
printf '%s\n' "${ROWS[@]}"
echo
echo "Load average before the run: $LOAD_START; after: $(cut -d' ' -f1-3 /proc/loadavg)."
[ -z "$LATENCY_NOTE" ] || { echo; echo "$LATENCY_NOTE"; }
