#!/usr/bin/env bash
# Installs the real FTP clients the integration tests drive (curl, lftp, wget, the classic `ftp`,
# python3 for ftplib, rclone for its FTP/FTPS backend, and openssl for certificate checks in the FTPS
# tests, setpriv to run the error-message tests as an unprivileged user, and script for the `ferry shell` terminal test). Idempotent: only missing commands are installed, with one `apt-get update`.
# Debian/Ubuntu only; uses sudo when not run as root.
set -euo pipefail

# command:package
wanted=(curl:curl lftp:lftp wget:wget ftp:ftp python3:python3 rclone:rclone openssl:openssl setpriv:util-linux script:bsdutils)

# --- SFTP clients (ferry-sftpd tests): OpenSSH sftp/scp/ssh-keygen, sshpass, rclone; paramiko via pip ---
wanted+=(sftp:openssh-client scp:openssh-client ssh-keygen:openssh-client sshpass:sshpass rclone:rclone)
install_paramiko() {
    if ! command -v python3 >/dev/null 2>&1 || python3 -c 'import paramiko' >/dev/null 2>&1; then
        return 0
    fi
    echo "install-test-deps: installing paramiko with pip"
    python3 -m pip install --quiet paramiko ||
        python3 -m pip install --quiet --break-system-packages paramiko
}
install_paramiko
# --- end SFTP clients ---

# --- servers for the client interop tests (crates/ferry/tests/client_interop.rs): vsftpd, OpenSSH sshd
# with sftp-server, pyftpdlib via pip ---
wanted+=(vsftpd:vsftpd sshd:openssh-server)
install_pyftpdlib() {
    if ! command -v python3 >/dev/null 2>&1 || python3 -c 'import pyftpdlib' >/dev/null 2>&1; then
        return 0
    fi
    echo "install-test-deps: installing pyftpdlib with pip"
    python3 -m pip install --quiet pyftpdlib ||
        python3 -m pip install --quiet --break-system-packages pyftpdlib
}
install_pyftpdlib
# --- end client interop servers ---

missing=()
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

install_paramiko  # SFTP tests: python3 may only have been installed just now
