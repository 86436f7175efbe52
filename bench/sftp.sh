#!/usr/bin/env bash
# SFTP benchmark: ferry against a private OpenSSH sshd (sftp-server subsystem), side by side on
# loopback, with the OpenSSH sftp client. 1 GiB get/put with aes128-gcm@openssh.com and
# chacha20-poly1305@openssh.com, and 2,000 files of 4 KiB (put -r / get -r); ROUNDS interleaved
# rounds (default 3), medians and the ratio ferry/OpenSSH per row, as a Markdown table.
#
#   bench/sftp.sh [ROUNDS]
#
# Needs: a release build (built here if missing), OpenSSH client, and openssh-server (installed
# with apt-get when missing; only its sshd binary is used, with its own config and host key on a
# loopback port). Files live under /dev/shm. Must run as root (sshd privilege separation).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
TARGET=${CARGO_TARGET_DIR:-target}
FERRY=$TARGET/release/ferry
[ -x "$FERRY" ] || cargo build --release -p ferry
if [ ! -x /usr/sbin/sshd ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
fi
SFTP_SERVER=
for candidate in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/libexec/sftp-server; do
    if [ -x "$candidate" ]; then SFTP_SERVER=$candidate; break; fi
done
[ -n "$SFTP_SERVER" ] || { echo "bench: sftp-server not found" >&2; exit 1; }

W=$(mktemp -d /dev/shm/ferry-sftp-bench.XXXXXX)
FERRY_PID= SSHD_PID=
cleanup() {
    [ -n "$FERRY_PID" ] && kill "$FERRY_PID" 2>/dev/null
    [ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/ferry" "$W/files/up" "$W/local" "$W/sshd"
FILES=$W/files            # served by both: ferry's files_root, and an absolute path for sshd

echo "bench: preparing 1 GiB and 2000 x 4 KiB files in $W" >&2
head -c $((1 << 30)) /dev/urandom > "$FILES/big.bin"
mkdir -p "$W/local/small"
python3 - "$W/local/small" <<'PY'
import os, sys
d = sys.argv[1]
for i in range(2000):
    with open(os.path.join(d, f"f{i:04d}.bin"), "wb") as f:
        f.write(os.urandom(4096))
PY
cp -r "$W/local/small" "$FILES/small"
ssh-keygen -q -t ed25519 -N '' -f "$W/id_ed25519"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ferry
FERRY_PORT=$(free_port)
"$FERRY" serve --data-dir "$W/ferry" --files-root "$FILES" --listen 127.0.0.1:0 \
    --sftp-listen "127.0.0.1:$FERRY_PORT" --log warn > "$W/ferry.out" 2>&1 &
FERRY_PID=$!
for _ in $(seq 100); do grep -q "SFTP listening" "$W/ferry.out" && break; sleep 0.1; done
"$FERRY" user key add ferry --data-dir "$W/ferry" --file "$W/id_ed25519.pub" >/dev/null

# OpenSSH
SSHD_PORT=$(free_port)
ssh-keygen -q -t ed25519 -N '' -f "$W/sshd/host_key"
cp "$W/id_ed25519.pub" "$W/sshd/authorized_keys"
cat > "$W/sshd/sshd_config" <<CFG
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $W/sshd/host_key
PidFile $W/sshd/sshd.pid
AuthorizedKeysFile $W/sshd/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp $SFTP_SERVER
CFG
mkdir -p /run/sshd
/usr/sbin/sshd -D -e -f "$W/sshd/sshd_config" 2> "$W/sshd/log" &
SSHD_PID=$!
sleep 0.5

# session SERVER CIPHER BATCH... → prints wall seconds
session() {
    local server=$1 cipher=$2; shift 2
    local port user base
    if [ "$server" = ferry ]; then port=$FERRY_PORT user=ferry base=""; else port=$SSHD_PORT user=$(id -un) base=$FILES; fi
    local script
    script=$(printf '%s\n' "$@" | sed "s#@R@#$base#g")
    local start end
    start=$(date +%s.%N)
    printf '%s\n' "$script" | sftp -q -b - -F /dev/null -i "$W/id_ed25519" -o IdentitiesOnly=yes \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
        -o Ciphers="$cipher" -P "$port" "$user@127.0.0.1" >/dev/null
    end=$(date +%s.%N)
    python3 -c "print($end - $start)"
}

declare -A RESULTS
record() { RESULTS["$1"]+="$2 "; }
MB=$(( (1 << 30) / 1000000 ))

for round in $(seq "$ROUNDS"); do
    for server in ferry openssh; do
        for cipher in aes128-gcm@openssh.com chacha20-poly1305@openssh.com; do
            t=$(session "$server" "$cipher" "get @R@/big.bin $W/local/dl.bin")
            cmp -s "$FILES/big.bin" "$W/local/dl.bin" || { echo "bench: $server get corrupted" >&2; exit 1; }
            rm -f "$W/local/dl.bin"
            record "$server get $cipher" "$(python3 -c "print(round($MB / $t))")"
            t=$(session "$server" "$cipher" "put $FILES/big.bin @R@/up/big.bin")
            cmp -s "$FILES/big.bin" "$FILES/up/big.bin" || { echo "bench: $server put corrupted" >&2; exit 1; }
            rm -f "$FILES/up/big.bin"
            record "$server put $cipher" "$(python3 -c "print(round($MB / $t))")"
            echo "bench: round $round $server $cipher done" >&2
        done
        t=$(session "$server" aes128-gcm@openssh.com "put -r $W/local/small @R@/up/small")
        [ "$(ls "$FILES/up/small" | wc -l)" = 2000 ] || { echo "bench: $server small put incomplete" >&2; exit 1; }
        rm -rf "$FILES/up/small"
        record "$server smallput" "$(python3 -c "print(round(2000 / $t))")"
        t=$(session "$server" aes128-gcm@openssh.com "get -r @R@/small $W/local/smalldl")
        [ "$(ls "$W/local/smalldl" | wc -l)" = 2000 ] || { echo "bench: $server small get incomplete" >&2; exit 1; }
        rm -rf "$W/local/smalldl"
        record "$server smallget" "$(python3 -c "print(round(2000 / $t))")"
    done
done

median() { python3 -c "import statistics,sys; print(round(statistics.median(map(float, sys.argv[1:]))))" $1; }
echo
echo "| test | ferry (median; rounds) | OpenSSH sftp-server (median; rounds) | ferry / OpenSSH |"
echo "|---|---|---|---|"
row() {
    local label=$1 key=$2 unit=$3
    local f o mf mo
    f=${RESULTS["ferry $key"]} o=${RESULTS["openssh $key"]}
    mf=$(median "$f") mo=$(median "$o")
    echo "| $label | $mf $unit (${f% }) | $mo $unit (${o% }) | $(python3 -c "print(f'{$mf / $mo:.2f}')")× |"
}
row "1 GiB get, aes128-gcm" "get aes128-gcm@openssh.com" MB/s
row "1 GiB put, aes128-gcm" "put aes128-gcm@openssh.com" MB/s
row "1 GiB get, chacha20-poly1305" "get chacha20-poly1305@openssh.com" MB/s
row "1 GiB put, chacha20-poly1305" "put chacha20-poly1305@openssh.com" MB/s
row "2000 × 4 KiB put -r (aes128-gcm)" smallput files/s
row "2000 × 4 KiB get -r (aes128-gcm)" smallget files/s
