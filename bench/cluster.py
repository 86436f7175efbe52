#!/usr/bin/env python3
"""Scale figures for several ferry nodes (docs/scale-out.md, "Scale figures").

Measures, on this machine:
  1. logins/s of one node with its users in SQLite and in PostgreSQL (FTP USER/PASS/QUIT, many
     client addresses through PROXY protocol v1 headers, so the per-address login gate does not
     serialise them);
  2. aggregate download throughput through HAProxy (send-proxy-v2) with one node and with two;
  3. PostgreSQL statements per login and per transfer (pg_stat_statements).

Starts its own PostgreSQL (initdb in a temporary directory; as root it runs as the `postgres` user
through setpriv), HAProxy and ferry nodes on loopback, and removes everything at the end.

    python3 bench/cluster.py                        # builds nothing: uses target/release/ferry
    python3 bench/cluster.py --ferry-bin target/debug/ferry --seconds 5

Needs: PostgreSQL server binaries (Debian `postgresql`), haproxy, curl, python3.
"""

import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

PASSWORD = "correct horse battery staple"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {host}:{port}")


class Postgres:
    def __init__(self, work):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            sys.exit("PostgreSQL is not installed: run scripts/install-test-deps.sh")
        self.bin = bins[-1]
        self.dir = os.path.join(work, "pg")
        os.makedirs(self.dir)
        self.port = free_port()
        self.prefix = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self.prefix = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
        self.run([f"{self.bin}/initdb", "-D", self.dir + "/data", "-U", "postgres", "-A", "trust"])
        self.proc = subprocess.Popen(
            self.prefix + [f"{self.bin}/postgres", "-D", self.dir + "/data", "-p", str(self.port),
                           "-k", self.dir, "-c", "listen_addresses=127.0.0.1",
                           "-c", "fsync=off", "-c", "synchronous_commit=off",
                           "-c", "shared_preload_libraries=pg_stat_statements",
                           "-c", "pg_stat_statements.track=top"],
            stdout=subprocess.DEVNULL, stderr=open(self.dir + "/log", "w"))
        wait_port("127.0.0.1", self.port)
        time.sleep(0.5)

    def run(self, argv):
        subprocess.run(self.prefix + argv, check=True, stdout=subprocess.DEVNULL)

    def psql(self, db, sql):
        out = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db,
             "-At", "-F", "\t", "-c", sql], check=True, capture_output=True, text=True)
        return out.stdout

    def url(self, db):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Node:
    def __init__(self, ferry, work, name, users_db, files, passive, extra=()):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.passive = passive
        argv = [ferry, "serve", "--listen", f"127.0.0.1:{self.port}", "--sftp-enabled=false",
                "--users-db", users_db, "--files-root", files, "--admin-listen", "off",
                "--passive-ports", f"{passive[0]}-{passive[1]}", "--log", "warn",
                "--max-connections", "5000", "--max-connections-per-ip", "5000",
                "--max-pending-connections", "5000", *extra]
        self.proc = subprocess.Popen(argv, cwd=self.dir, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "log"), "w"))
        wait_port("127.0.0.1", self.port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def ferry_user_add(ferry, work, users_db):
    subprocess.run([ferry, "--users-db", users_db, "user", "add", "bench", "--password", PASSWORD],
                   cwd=work, check=True, stdout=subprocess.DEVNULL)


def login_once(port, client_ip):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"PROXY TCP4 {client_ip} 127.0.0.1 40000 {port}\r\n".encode())
    f = s.makefile("rb")

    def reply():
        line = f.readline()
        while len(line) >= 4 and line[3:4] == b"-":
            line = f.readline()
        return line[:3]

    ok = reply() == b"220"
    s.sendall(b"USER bench\r\n")
    ok = ok and reply() == b"331"
    s.sendall(f"PASS {PASSWORD}\r\n".encode())
    ok = ok and reply() == b"230"
    s.sendall(b"QUIT\r\n")
    reply()
    s.close()
    return ok


def login_storm(port, seconds, workers):
    """Logins/s: `workers` threads, each its own client address, for `seconds`."""
    counts = [0] * workers
    failures = [0] * workers
    stop = time.time() + seconds

    def work(i):
        ip = f"10.77.{i // 250}.{i % 250 + 1}"
        while time.time() < stop:
            try:
                if login_once(port, ip):
                    counts[i] += 1
                else:
                    failures[i] += 1
            except OSError:
                failures[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / seconds, sum(failures)


def haproxy(work, front, nodes):
    cfg = os.path.join(work, f"haproxy-{len(nodes)}.cfg")
    lines = ["global", "    maxconn 4000", "defaults", "    mode tcp", "    timeout connect 5s",
             "    timeout client 600s", "    timeout server 600s",
             "frontend ftp", f"    bind 127.0.0.2:{front}", "    default_backend nodes",
             "backend nodes", "    balance leastconn"]
    lines += [f"    server n{i} 127.0.0.1:{n.port} send-proxy-v2" for i, n in enumerate(nodes)]
    for i, n in enumerate(nodes):
        lines += [f"frontend passive{i}", f"    bind 127.0.0.2:{n.passive[0]}-{n.passive[1]}",
                  f"    default_backend passive{i}", f"backend passive{i}",
                  f"    server n{i} 127.0.0.1 send-proxy-v2"]
    with open(cfg, "w") as f:
        f.write("\n".join(lines) + "\n")
    proc = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_port("127.0.0.2", front)
    return proc


def throughput(front, streams, size_mib):
    """Aggregate MiB/s of `streams` parallel curl downloads of the test file through the balancer."""
    start = time.time()
    procs = [subprocess.Popen(["curl", "-sS", "--user", f"bench:{PASSWORD}", "-o", "/dev/null",
                               f"ftp://127.0.0.2:{front}/big.bin"]) for _ in range(streams)]
    ok = all(p.wait() == 0 for p in procs)
    elapsed = time.time() - start
    return streams * size_mib / elapsed, ok


def count_statements(pg, db, action, n):
    """Every statement run while `action` ran `n` times, with its calls divided by `n` (statements below
    1 per action are batched ones, such as lease releases, or background ones: the 2 s heartbeat)."""
    pg.psql(db, "SELECT pg_stat_statements_reset()")
    action()
    time.sleep(1)  # the quota update after an upload runs in the background
    rows = pg.psql(db, "SELECT calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) "
                       "FROM pg_stat_statements JOIN pg_database d ON d.oid = dbid "
                       f"WHERE d.datname = '{db}' ORDER BY calls DESC")
    per = []
    for line in rows.splitlines():
        calls, query = line.split("\t", 1)
        per.append((int(calls) / n, query))
    return per


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ferry-bin", default="target/release/ferry")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--size-mib", type=int, default=256)
    args = ap.parse_args()
    ferry = os.path.abspath(args.ferry_bin)
    if not os.path.isfile(ferry):
        sys.exit(f"{ferry} not found: cargo build --release -p ferry --bin ferry")
    for tool in ("haproxy", "curl", "psql"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed: run scripts/install-test-deps.sh")
    work = tempfile.mkdtemp(prefix="ferry-cluster-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.chmod(work, 0o755)
    procs = []
    pg = None
    try:
        pg = Postgres(work)
        pg.run([f"{pg.bin}/createdb", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "ferry"])
        pg.psql("ferry", "CREATE EXTENSION pg_stat_statements")
        files = os.path.join(work, "files")
        os.makedirs(files)
        with open(os.path.join(files, "big.bin"), "wb") as f:
            f.write(os.urandom(1 << 20) * args.size_mib)
        proxy = ["--proxy-protocol-mode", "optional", "--proxy-protocol-allowed", "127.0.0.1",
                 "--ftps-policy", "off", "--failed-login-delay-ms", "100"]
        print(f"ferry: {ferry}; {os.cpu_count()} CPUs")

        # 1. logins/s
        sqlite = os.path.join(work, "users.db")
        ferry_user_add(ferry, work, sqlite)
        ferry_user_add(ferry, work, pg.url("ferry"))
        for label, db in (("SQLite", sqlite), ("PostgreSQL", pg.url("ferry"))):
            node = Node(ferry, work, "login-" + label, db, files, (41000, 41099), proxy)
            login_storm(node.port, 1, args.workers)  # warm the verification cache
            rate, failed = login_storm(node.port, args.seconds, args.workers)
            print(f"logins/s, users in {label}: {rate:.0f} ({args.workers} clients, {failed} failed)")
            node.stop()

        # 3. statements per login and per transfer (one PostgreSQL node)
        node = Node(ferry, work, "count", pg.url("ferry"), files, (41100, 41199), proxy)
        n = 50
        for calls, q in count_statements(pg, "ferry", lambda: [login_once(node.port, "10.78.0.1") for _ in range(n)], n):
            print(f"per login: {calls:.2f} x {q}")
        import ftplib
        import io

        def uploads():
            f = ftplib.FTP()
            f.connect("127.0.0.1", node.port)
            f.login("bench", PASSWORD)
            for i in range(n):
                f.storbinary(f"STOR small-{i}.bin", io.BytesIO(b"x" * 1000))
            for i in range(n):
                f.retrbinary(f"RETR small-{i}.bin", lambda _b: None)
            f.quit()
        rows = count_statements(pg, "ferry", uploads, n)
        for calls, q in rows:
            print(f"per transfer (50 STOR + 50 RETR, one session): {calls:.2f} x {q}")
        node.stop()

        # 2. throughput through HAProxy, one node vs two
        nodes = [Node(ferry, work, f"node{i}", pg.url("ferry"), files, (42000 + 100 * i, 42099 + 100 * i),
                      ["--proxy-protocol-mode", "required", "--proxy-protocol-allowed", "127.0.0.1",
                       "--proxy-protocol-data", "header", "--ftps-policy", "off"]) for i in range(2)]
        procs += nodes
        for count in (1, 2):
            front = free_port()
            hp = haproxy(work, front, nodes[:count])
            rates = []
            for _ in range(3):
                rate, ok = throughput(front, args.streams, args.size_mib)
                if not ok:
                    print("a download failed")
                rates.append(rate)
            rates.sort()
            print(f"through HAProxy, {count} node(s): {rates[1]:.0f} MiB/s aggregate "
                  f"({args.streams} downloads of {args.size_mib} MiB; min {rates[0]:.0f}, max {rates[2]:.0f})")
            hp.terminate()
            hp.wait()
    finally:
        for p in procs:
            p.stop()
        if pg:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
