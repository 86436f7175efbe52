#!/usr/bin/env bash
# Installs the real FTP clients the integration tests drive (curl, lftp, wget, the classic `ftp`,
# python3 for ftplib, rclone for its FTP/FTPS backend, and openssl for certificate checks in the FTPS
# tests, setpriv to run the error-message tests as an unprivileged user, script for the `ferry shell`
# terminal test, systemd-analyze to check the systemd unit, and s3s-fs, an S3 server, via cargo). Idempotent: only missing commands are
# installed, with one `apt-get update`.
# Debian/Ubuntu only; uses sudo when not run as root.
set -euo pipefail

# command:package
wanted=(curl:curl lftp:lftp wget:wget ftp:ftp python3:python3 rclone:rclone openssl:openssl setpriv:util-linux script:bsdutils)

# --- SFTP clients (ferry-sftpd tests): OpenSSH sftp/scp/ssh-keygen, sshpass, rclone; paramiko via pip ---
wanted+=(sftp:openssh-client scp:openssh-client ssh-keygen:openssh-client ssh-agent:openssh-client ssh-add:openssh-client sshpass:sshpass rclone:rclone)
# --- end SFTP clients ---

# --- servers for the client interop tests (crates/ferry/tests/client_interop.rs): vsftpd, OpenSSH sshd
# with sftp-server, pyftpdlib via pip ---
wanted+=(vsftpd:vsftpd sshd:openssh-server)
# HAProxy in front of ferry, sending PROXY protocol headers (crates/ferry/tests/proxy_protocol.rs).
wanted+=(haproxy:haproxy)
# The multi-node test (crates/ferry/tests/cluster.rs) puts its clients in a network namespace.
wanted+=(ip:iproute2 unshare:util-linux nsenter:util-linux)
# Instruction counts of the server per operation (bench/instructions.sh).
wanted+=(valgrind:valgrind callgrind_control:valgrind)
# --- end client interop servers ---

# Python modules, installed with pip: paramiko (SFTP tests), pyftpdlib and pyOpenSSL (client interop,
# FTPS with TLS 1.3 only), prometheus_client
# (admin tests: its strict OpenMetrics parser checks /metrics), moto (a second S3 server, `moto_server`,
# for the S3 back-end tests; pinned).
pip_modules=(paramiko pyftpdlib OpenSSL prometheus_client moto.server)
# The pip package of a module, where the names differ.
declare -A pip_packages=([moto.server]="moto[server]==5.2.5" [OpenSSL]=pyopenssl)
install_pip_modules() {
    command -v python3 >/dev/null 2>&1 || return 0
    local module
    for module in "${pip_modules[@]}"; do
        if ! python3 -c "import $module" >/dev/null 2>&1; then
            echo "install-test-deps: installing $module with pip"
            local package=${pip_packages[$module]:-$module}
            python3 -m pip install --quiet "$package" ||
                python3 -m pip install --quiet --break-system-packages "$package"
        fi
    done
}
install_pip_modules

# --- S3 back-end tests: s3s-fs, a real S3 server over a directory (crates.io, version pinned; the
# tests start one per test binary on loopback). Built once with cargo into ~/.cargo/bin (a few
# minutes on a fresh machine; CI caches ~/.cargo/bin like the other tools). ---
S3S_FS_VERSION=0.14.1
install_s3s_fs() {
    if command -v s3s-fs >/dev/null 2>&1 && s3s-fs --version 2>/dev/null | grep -q " $S3S_FS_VERSION"; then
        return 0
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "install-test-deps: cargo is needed to install s3s-fs $S3S_FS_VERSION" >&2
        return 1
    fi
    echo "install-test-deps: installing s3s-fs $S3S_FS_VERSION with cargo install (once)"
    cargo install --locked --quiet s3s-fs --version "$S3S_FS_VERSION" --features binary
}
install_s3s_fs
# --- end S3 ---

# --- packaging tests: `systemd-analyze verify` checks packaging/ferry.service ---
wanted+=(systemd-analyze:systemd)

# PostgreSQL for the user-database and multi-node tests (crates/ferry/tests/postgres.rs): the test kit
# runs initdb and the server from Debian's /usr/lib/postgresql/N/bin (not on PATH), psql on PATH.
wanted+=(psql:postgresql-client)

missing=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    missing+=(postgresql)
fi
for pair in "${wanted[@]}"; do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    if ! command -v "$cmd" >/dev/null 2>&1; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-test-deps: all clients present"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: missing ${missing[*]} and apt-get is not available; install them by hand" >&2
    exit 1
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install-test-deps: need root (or sudo) to install ${missing[*]}" >&2
        exit 1
    fi
    as_root=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
${as_root[@]+"${as_root[@]}"} apt-get update
# Newer releases may drop the transitional `ftp` package; tnftp provides the same `ftp` command.
for i in "${!missing[@]}"; do
    if [ "${missing[$i]}" = ftp ] && ! apt-cache show ftp >/dev/null 2>&1; then
        missing[i]=tnftp
    fi
done
echo "install-test-deps: installing ${missing[*]}"
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"

for pair in "${wanted[@]}"; do
    cmd=${pair%%:*}
    if ! command -v "$cmd" >/dev/null 2>&1; then
        echo "install-test-deps: $cmd still missing after installing ${pair#*:}" >&2
        exit 1
    fi
done

install_pip_modules  # python3 may only have been installed just now
