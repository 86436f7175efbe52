#!/usr/bin/env python3
"""Bulk transfers side by side: 1 GiB STOR (plain and FTPS) and N concurrent clients x 10 MiB RETR and
STOR, with the per-client throughput of the slowest clients, not only the aggregate.

Every server gets its own control port, passive range and directory on tmpfs; rounds are interleaved
(the order rotates each round) and the table gives medians and the ratio of the first server to the best
other one. Clients are curl processes (one per transfer, EPSV; explicit TLS for the FTPS rows); with
`--client ferry` the 1 GiB uploads use `ferry put` instead (the binary of `--client-bin`, default the
first `--ferry`). The 1 GiB rows also give the CPU time of the client (user + system, as a share of one
core over the transfer) and of the server's processes (per GiB): on loopback the sender's CPU also
carries the receiving side's TCP processing, so a client at 100 % of a core is the limit of the row.

  python3 bench/uploads.py --ferry after=target/release/ferry --ferry before=/tmp/ferry-old \\
      [--peers pyftpdlib,pure-ftpd] [--rounds 3] [--tests stor,stor-tls,conc-retr,conc-stor] [--clients 100]

Peers: `pyftpdlib` (bench/pyftpd_server.py), `pure-ftpd` (`--pure-ftpd DIR`: an unpacked Debian package,
`apt-get download pure-ftpd` + `dpkg -x`; it runs as root with a virtual user mapped to `nobody`).
Bounded: every curl has a time-out, the concurrent rows start at most --clients processes.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
import compare  # noqa: E402  bench/compare.py: Pure-FTPd's user, passive ranges, stopping a server

HERE = os.path.dirname(os.path.abspath(__file__))
MB = 1e6
BIG = 1 << 30
F10M = 10 << 20
USER, PASSWORD = "ftpbench", "ftpbench-pass"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ferry", action="append", default=[], help="LABEL=PATH of a ferry binary (repeatable)")
    p.add_argument("--peers", default="", help="comma list: pyftpdlib, pure-ftpd")
    p.add_argument("--pure-ftpd", default="/tmp/pure-ftpd", help="root of the unpacked pure-ftpd package")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tests", default="stor,stor-tls,conc-retr,conc-stor")
    p.add_argument("--clients", type=int, default=100)
    p.add_argument("--workdir", default="/dev/shm/ferry-uploads-bench")
    p.add_argument("--base-port", type=int, default=23100)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per curl")
    p.add_argument("--client", choices=["curl", "ferry"], default="curl", help="client of the 1 GiB uploads")
    p.add_argument("--client-bin", help="ferry binary for --client ferry (default: the first --ferry)")
    p.add_argument("--warm-memory", type=float, default=2.0, metavar="GIB",
                   help="before each 1 GiB upload, write and remove this many GiB (at most a quarter of the "
                        "available memory) in --workdir (see compare.warm_memory); 0 to turn off")
    a = p.parse_args()
    if a.client == "ferry" and not a.client_bin:
        first = next((f.partition("=")[2] for f in a.ferry if f.partition("=")[2]), None)
        a.client_bin = first or sys.exit("--client ferry needs --client-bin or a --ferry LABEL=PATH")

    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    src = os.path.join(a.workdir, "src")
    os.makedirs(src)
    make_file(os.path.join(src, "big1g.bin"), BIG)
    make_file(os.path.join(src, "f10m.bin"), F10M)
    cert = make_cert(a.workdir)

    servers = []
    for i, spec in enumerate(a.ferry + [s for s in a.peers.split(",") if s]):
        label, _, path = spec.partition("=")
        kind = "ferry" if path else label
        root = os.path.join(a.workdir, label)
        os.makedirs(root)
        servers.append({"label": label, "kind": kind, "bin": path, "root": root, "port": a.base_port + i,
                        "pasv": (40000 + compare.PASV_PORTS * i, 40000 + compare.PASV_PORTS * (i + 1) - 1)})
    tests = [t for t in a.tests.split(",") if t]
    results = {s["label"]: {} for s in servers}
    for rnd in range(a.rounds):
        order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
        for s in order:
            proc = start(s, a, cert)
            s["pid"] = proc.pid
            try:
                put(s, os.path.join(src, "f10m.bin"), "f10m.bin", False, a.timeout)
                for t in tests:
                    r = RUN[t](s, a, src)
                    print(f"round {rnd + 1} {s['label']:>10} {t:<10} {r}", flush=True)
                    results[s["label"]].setdefault(t, []).append(r)
            finally:
                stop(proc)
    report(results, servers, tests)


def make_file(path, size):
    with open(path, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(size >> 20):
            f.write(block)


def make_cert(workdir):
    cert = os.path.join(workdir, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7", "-subj",
                    "/CN=127.0.0.1", "-keyout", cert, "-out", cert + ".crt"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(cert + ".crt") as c, open(cert, "a") as k:
        k.write(c.read())
    return cert


def start(s, a, cert):
    root, port, (lo, hi) = s["root"], s["port"], s["pasv"]
    files = os.path.join(root, "files")
    shutil.rmtree(files, ignore_errors=True)
    os.makedirs(files)
    if s["kind"] == "ferry":
        conf = os.path.join(root, "ferry.toml")
        with open(conf, "w") as fh:
            fh.write(f'data_dir = "{root}/data"\nlisten = ["127.0.0.1:{port}"]\n'
                     f'passive_ports = "{lo}-{hi}"\nmax_connections = 20000\n'
                     'max_connections_per_ip = 20000\nmax_pending_connections = 20000\n'
                     '[sftp]\nenabled = false\n')
        if not os.path.exists(os.path.join(root, "data", "users.db")):
            subprocess.run([s["bin"], "--config", conf, "user", "add", USER, "--password-stdin", "--home", "/"],
                           input=(PASSWORD + "\n").encode(), check=True, stdout=subprocess.DEVNULL)
        files = os.path.join(root, "data", "files")
        shutil.rmtree(files, ignore_errors=True)
        os.makedirs(files)
        cmd = [s["bin"], "--config", conf, "serve"]
    elif s["kind"] == "pyftpdlib":
        cmd = [sys.executable, os.path.join(HERE, "pyftpd_server.py"), "--port", str(port), "--root", files,
               "--user", USER, "--password", PASSWORD, "--passive", f"{lo}-{hi}", "--cert", cert]
    elif s["kind"] == "pure-ftpd":
        pure = a.pure_ftpd
        shutil.chown(files, "nobody", "nogroup")
        pw, db = os.path.join(root, "pureftpd.passwd"), os.path.join(root, "pureftpd.pdb")
        if not os.path.exists(db):
            # SHA-512-crypt, not pure-pw's Argon2id of ~6 s per login (see compare.pure_ftpd_user).
            compare.pure_ftpd_user(os.path.join(pure, "usr/bin/pure-pw"), USER, PASSWORD, files, pw, db)
        cmd = [os.path.join(pure, "usr/sbin/pure-ftpd"), "-S", f"127.0.0.1,{port}", "-l", f"puredb:{db}",
               "-E", "-p", f"{lo}:{hi}", "-c", "20000", "-C", "20000", "-Y", "1", "-2", cert, "-A"]
    else:
        sys.exit(f"unknown server {s['kind']}")
    s["files"] = files
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.path.join(root, "log"), "a"),
                            start_new_session=True)
    wait_ftp(port, proc)
    return proc


def wait_ftp(port, proc, timeout=30):
    import socket
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                if c.recv(100).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"server on port {port} did not answer within {timeout} s")


def stop(proc):
    compare.stop(proc)


def curl(s, tls, timeout):
    argv = ["curl", "-sS", "--max-time", str(int(timeout)), "-u", f"{USER}:{PASSWORD}"]
    if tls:
        argv += ["--ssl-reqd", "-k"]
    return argv


def url(s, name):
    return f"ftp://127.0.0.1:{s['port']}/{name}"


def put(s, local, name, tls, timeout):
    argv = curl(s, tls, timeout) + ["-T", local, "-w", "%{size_upload} %{time_total} %{time_pretransfer}",
                                    url(s, name)]
    out = subprocess.run(argv, capture_output=True, timeout=timeout + 10)
    if out.returncode != 0:
        raise RuntimeError(f"{s['label']}: curl -T failed: {out.stderr.decode(errors='replace')[-300:]}")
    size, total, pre = out.stdout.decode().split()
    return int(size), float(total) - float(pre)


def ferry_put(s, a, local, name, tls):
    """`ferry put` of `local`: (bytes sent, seconds from start to exit, login included)."""
    scheme = "ftpes" if tls else "ftp"
    argv = [a.client_bin, "put", "-q", "-k", local, f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{s['port']}/{name}"]
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, timeout=a.timeout + 10)
    secs = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{s['label']}: ferry put failed: {out.stderr.decode(errors='replace')[-300:]}")
    return os.path.getsize(local), secs


def cpu_seconds(pid):
    """User + system CPU of `pid` and its descendants, with the children it has reaped."""
    total = 0
    for p in [pid, *compare.descendants(pid)]:
        try:
            with open(f"/proc/{p}/stat") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in f[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def t_stor(s, a, src, tls=False):
    if a.warm_memory > 0:
        compare.warm_memory(a.workdir, a.warm_memory)
    server0 = cpu_seconds(s["pid"])
    client0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if a.client == "ferry":
        size, secs = ferry_put(s, a, os.path.join(src, "big1g.bin"), "big.bin", tls)
    else:
        size, secs = put(s, os.path.join(src, "big1g.bin"), "big.bin", tls, a.timeout)
    client1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = cpu_seconds(s["pid"]) - server0
    client = (client1.ru_utime + client1.ru_stime) - (client0.ru_utime + client0.ru_stime)
    stored = os.path.getsize(os.path.join(s["files"], "big.bin"))
    os.unlink(os.path.join(s["files"], "big.bin"))
    if stored != BIG or size != BIG:
        return {"ok": False, "error": f"sent {size}, stored {stored}"}
    gib = size / BIG
    return {"ok": True, "MBps": round(size / secs / MB), "client_pct": round(client / secs * 100),
            "client_s": round(client / gib, 2), "server_s": round(server / gib, 2)}


def t_stor_tls(s, a, src):
    return t_stor(s, a, src, tls=True)


def concurrent(s, a, src, upload):
    n = a.clients
    procs = []
    t0 = time.perf_counter()
    for i in range(n):
        fmt = "%{size_upload} %{time_total} %{time_pretransfer}" if upload else \
            "%{size_download} %{time_total} %{time_pretransfer}"
        argv = curl(s, False, a.timeout) + ["-w", fmt]
        argv += ["-T", os.path.join(src, "f10m.bin"), url(s, f"c{i}.bin")] if upload else \
            ["-o", "/dev/null", url(s, "f10m.bin")]
        procs.append((time.perf_counter(), subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    rates, starts, ends, errors, total = [], [], [], 0, 0
    for launched, proc in procs:
        out, err = proc.communicate(timeout=a.timeout + 10)
        try:
            size, tot, pre = out.decode().split()
            size, tot, pre = int(size), float(tot), float(pre)
        except ValueError:
            errors += 1
            continue
        if proc.returncode != 0 or size != F10M:
            errors += 1
            continue
        total += size
        rates.append(size / max(tot - pre, 1e-6) / MB)
        starts.append(launched + pre)
        ends.append(launched + tot)
    if upload:
        for i in range(n):
            path = os.path.join(s["files"], f"c{i}.bin")
            if os.path.exists(path):
                if os.path.getsize(path) != F10M:
                    errors += 1
                os.unlink(path)
    if not rates:
        return {"ok": False, "errors": errors}
    rates.sort()
    wall = max(ends) - min(starts)
    del t0
    # Transfers in flight on average: with the same aggregate, a server whose transfers overlap more
    # (e.g. because its logins finish sooner) shows a lower per-client rate; this says how much.
    busy = sum(e - s for s, e in zip(starts, ends))
    return {"ok": errors == 0, "agg_MBps": round(total / wall / MB), "p50_MBps": round(pct(rates, 50), 1),
            "p99_MBps": round(pct(rates, 1), 1), "min_MBps": round(rates[0], 1), "errors": errors,
            "in_flight": round(busy / wall, 1)}


def pct(sorted_rates, q):
    """The q-th percentile of ascending values (q = 1: what 99 % of clients reach or beat)."""
    k = max(0, min(len(sorted_rates) - 1, round(q / 100 * (len(sorted_rates) - 1))))
    return sorted_rates[k]


RUN = {
    "stor": t_stor,
    "stor-tls": t_stor_tls,
    "conc-retr": lambda s, a, src: concurrent(s, a, src, False),
    "conc-stor": lambda s, a, src: concurrent(s, a, src, True),
}

# Costs reported under each 1 GiB upload row: no ratio is given for them.
CPU_ROWS = [("  client CPU, % of a core", "client_pct"), ("  client CPU, s per GiB", "client_s"),
            ("  server CPU, s per GiB", "server_s")]

ROWS = {
    "stor": [("STOR 1 GiB plain, MB/s", "MBps"), *CPU_ROWS],
    "stor-tls": [("STOR 1 GiB FTPS, MB/s", "MBps"), *CPU_ROWS],
    "conc-retr": [("N x 10 MiB RETR aggregate, MB/s", "agg_MBps"), ("  per client p50, MB/s", "p50_MBps"),
                  ("  per client p99 (slowest 1 %), MB/s", "p99_MBps"),
                  ("  transfers in flight on average", "in_flight")],
    "conc-stor": [("N x 10 MiB STOR aggregate, MB/s", "agg_MBps"), ("  per client p50, MB/s", "p50_MBps"),
                  ("  per client p99 (slowest 1 %), MB/s", "p99_MBps"),
                  ("  transfers in flight on average", "in_flight")],
}


def report(results, servers, tests):
    labels = [s["label"] for s in servers]
    print(f"\nload average: {os.getloadavg()}")
    print("| row | " + " | ".join(labels) + f" | {labels[0]} / best other |")
    print("|---" * (len(labels) + 2) + "|")
    for t in tests:
        for title, key in ROWS[t]:
            med = {}
            for lab in labels:
                vals = [r[key] for r in results[lab].get(t, []) if r.get(key) is not None]
                med[lab] = statistics.median(vals) if vals else None
            others = [v for k, v in med.items() if k != labels[0] and v]
            ratio = f"{med[labels[0]] / max(others):.2f}" if others and med[labels[0]] else "-"
            if (title, key) in CPU_ROWS:
                ratio = "-"
            cells = " | ".join("-" if med[lab] is None else f"{med[lab]:g}" for lab in labels)
            print(f"| {title} | {cells} | {ratio} |")


if __name__ == "__main__":
    main()
