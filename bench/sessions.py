#!/usr/bin/env python3
"""Memory per idle session and many transfers at once, against a fresh `ferry serve`.

  python3 bench/sessions.py --ferry-bin target/release/ferry --idle 10000          # plain
  python3 bench/sessions.py --ferry-bin target/release/ferry --idle 10000 --tls    # explicit FTPS
  python3 bench/sessions.py --ferry-bin target/release/ferry --idle 0 --active 1000

Each round starts a new server (its own config, data and files under --workdir, loopback port,
passive range), logs in once (the first login's password check is a one-off, not per session),
waits, and reads the server's memory; then:

- idle: opens --idle logged-in sessions (greeting, [AUTH TLS, PBSZ 0, PROT P,] USER, PASS; 64
  logins in flight), waits, reads the memory again and reports (after - before) / sessions for PSS
  and RSS (from /proc/PID/smaps_rollup), plus the server's descriptors and threads;
- active (plain FTP only): --active clients each log in and start a RETR (then, separately, a STOR) of --size bytes;
  every client stops after its first chunk until all of them have one, so all transfers are in
  progress at the same moment, then they finish; every byte count is checked, and the 226 replies.

Bounded: every step has a time-out (--timeout), the server is killed at the end, its files removed.
Needs a high open-file limit (the script raises its soft limit to the hard one): 10,000 sessions
need about 10,100 descriptors here and as many in the server.
"""

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PARALLEL_LOGINS = 64


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ferry-bin", default=os.path.join(REPO, "target", "release", "ferry"))
    p.add_argument("--idle", type=int, default=10000, help="idle logged-in sessions to hold (0: none)")
    p.add_argument("--active", type=int, default=0, help="concurrent transfers, RETR then STOR (0: none)")
    p.add_argument("--size", type=int, default=256 * 1024, help="bytes per transfer (at least 64 KiB)")
    p.add_argument("--tls", action="store_true", help="explicit FTPS (AUTH TLS, PBSZ 0, PROT P)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--settle", type=float, default=2.0, help="seconds to wait before reading memory")
    p.add_argument("--timeout", type=float, default=300.0, help="bound on each phase, seconds")
    p.add_argument("--port", type=int, default=23210)
    p.add_argument("--passive", default="52000-53999", help="ferry's passive port range")
    p.add_argument("--workdir", default=f"/dev/shm/ferry-sessions-{os.getpid()}")
    p.add_argument("--json", help="write the results here")
    a = p.parse_args()
    if a.size < 65536:
        sys.exit("--size must be at least 64 KiB")
    if a.tls and a.active:
        # ferry's default asks TLS data connections to resume the control connection's TLS session, which
        # asyncio's start_tls cannot do.
        sys.exit("--active measures plain FTP only; run it without --tls")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    need = max(a.idle, 2 * a.active) + 200  # per process: this one and the server alike
    if hard < need:
        sys.exit(f"open-file limit {hard} is below the {need} this run needs (here and in the server): raise `ulimit -Hn`")
    results = []
    try:
        for r in range(a.rounds):
            results.append(one_round(a, r))
    finally:
        shutil.rmtree(a.workdir, ignore_errors=True)
    summary = summarise(a, results)
    print(json.dumps(summary, indent=1))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"rounds": results, "summary": summary}, fh, indent=1)
    ok = all(x.get("ok") for x in results)
    sys.exit(0 if ok else 1)


def one_round(a, r):
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    proc, user, password = start_ferry(a)
    out = {"round": r + 1, "tls": a.tls, "ok": True}
    try:
        login_once(a, user, password)
        time.sleep(a.settle)
        out["base"] = memory(proc.pid)
        if a.idle:
            out["idle"] = asyncio.run(asyncio.wait_for(idle(a, user, password, proc.pid), a.timeout * 2))
            out["ok"] &= out["idle"]["held"] == a.idle
        if a.active:
            for op in ("RETR", "STOR"):
                res = asyncio.run(asyncio.wait_for(active(a, user, password, op, proc.pid), a.timeout))
                out[op.lower()] = res
                out["ok"] &= res["done"] == a.active and res["errors"] == 0
        out["load_average"] = os.getloadavg()[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print(json.dumps(out), flush=True)
    return out


def start_ferry(a):
    root = a.workdir
    user, password = "bench", "bench-password-1"
    conf = os.path.join(root, "ferry.toml")
    os.makedirs(os.path.join(root, "files"))
    lo, hi = a.passive.split("-")
    with open(conf, "w") as fh:
        fh.write(f'data_dir = "{root}/data"\nfiles_root = "{root}/files"\nlisten = ["127.0.0.1:{a.port}"]\n'
                 f'passive_ports = "{lo}-{hi}"\nmax_connections = 20000\nmax_connections_per_ip = 20000\n'
                 'max_pending_connections = 20000\nidle_timeout_secs = 3600\n'
                 '[defender]\nallow_list = ["127.0.0.0/8"]\n[sftp]\nenabled = false\n[admin]\nlisten = []\n')
    subprocess.run([a.ferry_bin, "--config", conf, "user", "add", user, "--password-stdin", "--home", "/"],
                   input=(password + "\n").encode(), check=True, stdout=subprocess.DEVNULL)
    log = open(os.path.join(root, "server.log"), "w")
    proc = subprocess.Popen([a.ferry_bin, "--config", conf, "serve"], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    end = time.time() + 30
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"ferry exited with {proc.returncode}; see {root}/server.log")
        try:
            socket.create_connection(("127.0.0.1", a.port), timeout=1).close()
            return proc, user, password
        except OSError:
            time.sleep(0.2)
    proc.kill()
    sys.exit("ferry did not come up within 30 s")


def login_once(a, user, password):
    import ftplib
    f = ftplib.FTP_TLS() if a.tls else ftplib.FTP()
    if a.tls:
        f.context = client_tls()
    f.connect("127.0.0.1", a.port, timeout=30)
    f.login(user, password)
    f.quit()


_TLS = None


def client_tls():
    """One client context for every session (a context per session costs the client ~1 MB)."""
    global _TLS
    if _TLS is None:
        _TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _TLS.check_hostname = False
        _TLS.verify_mode = ssl.CERT_NONE
    return _TLS


def memory(pid):
    m = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss", "Anonymous"):
                m[k.lower() + "_kb"] = int(v.split()[0])
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                m["threads"] = int(line.split()[1])
    m["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return m


# ----------------------------------------------------------------------------- FTP client

class Ftp:
    """A minimal asyncio FTP control connection."""

    def __init__(self, r, w):
        self.r, self.w = r, w

    @classmethod
    async def login(cls, a, user, password):
        r, w = await asyncio.open_connection("127.0.0.1", a.port)
        c = cls(r, w)
        await c.expect(220)
        if a.tls:
            await c.cmd("AUTH TLS", 234)
            await w.start_tls(client_tls())
            await c.cmd("PBSZ 0", 200)
            await c.cmd("PROT P", 200)
        await c.cmd(f"USER {user}", 331)
        await c.cmd(f"PASS {password}", 230)
        return c

    async def reply(self):
        line = await self.r.readline()
        if len(line) < 4:
            raise IOError(f"connection closed (got {line!r})")
        code = line[:3]
        if line[3:4] == b"-":
            while True:
                more = await self.r.readline()
                if not more:
                    raise IOError("connection closed in a multi-line reply")
                if more[:3] == code and more[3:4] == b" ":
                    break
        return int(code), line.decode(errors="replace").strip()

    async def expect(self, code):
        got, text = await self.reply()
        if got != code:
            raise IOError(f"expected {code}, got {text}")
        return text

    async def cmd(self, line, code):
        self.w.write(line.encode() + b"\r\n")
        await self.w.drain()
        return await self.expect(code)

    async def close(self):
        try:
            self.w.write(b"QUIT\r\n")
            await asyncio.wait_for(self.w.drain(), 5)
            await asyncio.wait_for(self.reply(), 5)
        except Exception:
            pass
        self.w.close()


async def idle(a, user, password, pid):
    sem = asyncio.Semaphore(PARALLEL_LOGINS)
    held, errors = [], {}

    async def one():
        async with sem:
            try:
                held.append(await asyncio.wait_for(Ftp.login(a, user, password), 60))
            except Exception as e:
                k = f"{type(e).__name__}: {e}"[:120]
                errors[k] = errors.get(k, 0) + 1

    t0 = time.time()
    await asyncio.gather(*(one() for _ in range(a.idle)))
    opened = time.time() - t0
    await asyncio.sleep(a.settle)
    m = memory(pid)
    # Every session still answers.
    answered = sum(await asyncio.gather(*(noop(c) for c in held)))
    await asyncio.gather(*(c.close() for c in held))
    return {"sessions": a.idle, "held": len(held), "answered": answered, "errors": errors,
            "open_secs": round(opened, 2), "mem": m}


async def noop(c):
    try:
        await asyncio.wait_for(c.cmd("NOOP", 200), 30)
        return 1
    except Exception:
        return 0


async def active(a, user, password, op, pid):
    """`a.active` clients each run one transfer of `a.size` bytes; all of them are in progress at once."""
    n = a.active
    name = "src.bin"
    if op == "RETR":
        with open(os.path.join(a.workdir, "files", name), "wb") as fh:
            fh.write(os.urandom(a.size))
    sem = asyncio.Semaphore(PARALLEL_LOGINS)
    everyone = Barrier(n)
    errors, done, peak = {}, [0], [0]
    in_progress = [0]
    mem = {}

    async def one(i):
        c = None
        try:
            async with sem:
                c = await asyncio.wait_for(Ftp.login(a, user, password), 60)
            await c.cmd("TYPE I", 200)
            text = await c.cmd("EPSV", 229)
            port = int(text.split("|||")[1].split("|")[0])
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # A small receive buffer, so that the server cannot hand a whole download to the kernel's
            # buffers and finish before this client reads it: the transfer stays in progress on the
            # server's side too.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            dr, dw = await asyncio.open_connection(sock=sock)
            target = name if op == "RETR" else f"up-{i}.bin"
            c.w.write(f"{op} {target}\r\n".encode())
            await c.w.drain()
            code, text = await c.reply()
            if code not in (125, 150):
                raise IOError(f"{op}: {text}")
            first = 65536
            if op == "RETR":
                got = len(await dr.readexactly(first))
            else:
                dw.write(b"x" * first)
                await dw.drain()
                got = first
            in_progress[0] += 1
            peak[0] = max(peak[0], in_progress[0])
            await everyone.wait()
            if i == 0:
                mem.update(memory(pid))
            if op == "RETR":
                while True:
                    chunk = await dr.read(262144)
                    if not chunk:
                        break
                    got += len(chunk)
            else:
                block = b"x" * 262144
                while got < a.size:
                    k = min(len(block), a.size - got)
                    dw.write(block[:k])
                    await dw.drain()
                    got += k
            dw.close()
            in_progress[0] -= 1
            await c.expect(226)
            if got != a.size:
                raise IOError(f"{op}: {got} bytes instead of {a.size}")
            if op == "STOR":
                size = await c.cmd(f"SIZE {target}", 213)
                if int(size.split()[1]) != a.size:
                    raise IOError(f"stored {size} instead of {a.size}")
            done[0] += 1
        except Exception as e:
            everyone.leave()
            k = f"{type(e).__name__}: {e}"[:120]
            errors[k] = errors.get(k, 0) + 1
        finally:
            if c:
                await c.close()

    t0 = time.time()
    await asyncio.gather(*(one(i) for i in range(n)))
    return {"op": op, "clients": n, "size": a.size, "done": done[0], "errors": sum(errors.values()),
            "error_kinds": errors, "in_progress_at_once": peak[0], "wall_secs": round(time.time() - t0, 2),
            "mem_at_peak": mem}


class Barrier:
    """Waits until `n` parties arrived; a party that fails leaves, so the others are not held."""

    def __init__(self, n):
        self.n, self.event = n, asyncio.Event()

    async def wait(self):
        self.n -= 1
        if self.n <= 0:
            self.event.set()
        await self.event.wait()

    def leave(self):
        self.n -= 1
        if self.n <= 0:
            self.event.set()


def summarise(a, results):
    def med(xs):
        xs = sorted(x for x in xs if x is not None)
        return xs[len(xs) // 2] if xs else None

    s = {"ferry_bin": a.ferry_bin, "tls": a.tls, "rounds": len(results)}
    if a.idle:
        per_pss, per_rss = [], []
        for x in results:
            held = x["idle"]["held"]
            if held:
                per_pss.append((x["idle"]["mem"]["pss_kb"] - x["base"]["pss_kb"]) / held)
                per_rss.append((x["idle"]["mem"]["rss_kb"] - x["base"]["rss_kb"]) / held)
        s["idle_sessions"] = a.idle
        s["held"] = [x["idle"]["held"] for x in results]
        s["per_session_pss_kib"] = [round(v, 2) for v in per_pss]
        s["per_session_pss_kib_median"] = round(med(per_pss), 2) if per_pss else None
        s["per_session_rss_kib"] = [round(v, 2) for v in per_rss]
        s["server_fds_held"] = [x["idle"]["mem"]["fds"] for x in results]
    if a.active:
        for op in ("retr", "stor"):
            s[op] = [{**{k: x[op][k] for k in ("done", "errors", "in_progress_at_once", "wall_secs")},
                      "server_fds_at_peak": x[op]["mem_at_peak"].get("fds"),
                      "server_pss_kib_at_peak": x[op]["mem_at_peak"].get("pss_kb")}
                     for x in results if op in x]
    return s


if __name__ == "__main__":
    main()
