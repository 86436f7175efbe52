#!/usr/bin/env python3
"""Side-by-side FTP benchmark: ferry against vsftpd, Pure-FTPd and pyftpdlib, in interleaved rounds.

Builds ferry (release), starts a private instance of each server on loopback (own config, own port, own
passive range, files on tmpfs, same user and password), runs an ftpbench-compatible harness against each
in turn (A B C, B C A, C A B, ...), and prints medians per server and the ratio ferry / best peer per row.

  python3 bench/compare.py [--harness ../shared/bench/ftpbench.py] [--rounds 3] [--tls]

Needs root for vsftpd (it authenticates a system user through PAM; the script creates the user
`ftpbench` with password `ftpbench` when missing and `--create-user` is given) and for Pure-FTPd
(privilege separation; a virtual user in its own password database, files owned by `nobody`). Pure-FTPd
is unpacked from its Debian package into `--peers-dir` when it is not installed. See bench/README.md.
"""

import argparse
import grp
import json
import os
import pwd
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# Rows of the table: (label, test, metric key, better) where better is "high" or "low".
ROWS = [
    ("RETR 1 GiB, MB/s", "retr", "MBps", "high"),
    ("STOR 1 GiB, MB/s", "stor", "MBps", "high"),
    ("2000x4 KiB RETR, files/s", "small", "retr_files_per_s", "high"),
    ("2000x4 KiB STOR, files/s", "small", "stor_files_per_s", "high"),
    ("login storm 500: sessions/s", "conc", "n500.sessions_per_s", "high"),
    ("login storm 500: failed", "conc", "n500.errors", "low"),
    ("login storm 1000: wall s", "conc", "n1000.wall_s", "low"),
    ("login storm 1000: sessions/s", "conc", "n1000.sessions_per_s", "high"),
    ("login storm 1000: failed", "conc", "n1000.errors", "low"),
    ("100 x 10 MiB RETR at once, MB/s", "dl", "agg_MBps", "high"),
    ("100 x 10 MiB RETR at once: failed", "dl", "errors", "low"),
    ("ferry bench 4 KiB RETR, files/s", "fbget", "ops_per_sec", "high"),
    ("ferry bench 4 KiB STOR, files/s", "fbput", "ops_per_sec", "high"),
]

# Tests run by `ferry bench` (this repository's client, about half the harness's CPU per small file)
# instead of the harness: one session, BENCH_FILES files of 4 KiB; `--op` per test.
BENCH_TESTS = {"fbget": "get", "fbput": "put"}
BENCH_FILES = 3000


def idle_rows(counts):
    rows = []
    for n in counts:
        rows.append((f"idle session ({n} held), KB PSS each", f"idle{n}", "per_session_pss_KB", "low"))
        rows.append((f"idle session ({n} held), KB RSS each", f"idle{n}", "per_session_rss_KB", "low"))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--harness", default=os.path.join(REPO, "..", "shared", "bench", "ftpbench.py"),
                   help="path of ftpbench.py (default: ../shared/bench/ftpbench.py next to the repo)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--servers", default="ferry,vsftpd,pure-ftpd,pyftpdlib")
    p.add_argument("--peers-dir", default="/var/tmp/ferry-bench-peers",
                   help="where peers that are not installed (Pure-FTPd) are unpacked from their Debian packages")
    p.add_argument("--tests", default="retr,stor,small,conc,dl", help="per-round tests (idle runs separately); empty for none")
    p.add_argument("--idle-n", default="1000", help="comma list of idle session counts, e.g. 1000,10000")
    p.add_argument("--no-idle", action="store_true")
    p.add_argument("--tls", action="store_true",
                   help="FTPS rows: explicit TLS for every server (ferry needs --ferry-extra-config with its TLS keys)")
    p.add_argument("--ferry-bin", help="use this ferry binary instead of building one")
    p.add_argument("--ferry-extra-config", help="TOML lines appended to ferry's config (e.g. its TLS settings)")
    p.add_argument("--workdir", default="/dev/shm/ferry-bench", help="tmpfs directory for files and state")
    p.add_argument("--base-port", type=int, default=21300)
    p.add_argument("--user", default="ftpbench")
    p.add_argument("--password", default="ftpbench")
    p.add_argument("--create-user", action="store_true", help="create the system user for vsftpd if missing")
    p.add_argument("--json", help="write all raw results here")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--pin", metavar="SERVER_CPUS:CLIENT_CPUS",
                   help="run every server (all its threads and processes) on SERVER_CPUS and the clients on "
                        "CLIENT_CPUS (taskset lists, e.g. 0:0 to share one CPU, 1:0 to keep them apart)")
    p.add_argument("--warm-memory", type=float, default=2.0, metavar="GIB",
                   help="before each 1 GiB upload, write and remove this many GiB (at most a quarter of the "
                        "available memory) in --workdir so that the upload's pages were in use a moment ago "
                        "(see warm_memory); 0 to turn off")
    a = p.parse_args()
    a.server_cpus, a.client_cpus = parse_pin(a.pin)

    if not os.path.exists(a.harness):
        sys.exit(f"harness not found: {a.harness} (give --harness)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.makedirs(a.workdir, exist_ok=True)
    src = os.path.join(a.workdir, "src")
    servers = [s.strip() for s in a.servers.split(",") if s.strip()]
    ferry_bin = a.ferry_bin = a.ferry_bin or build_ferry()
    cert = make_cert(a.workdir) if a.tls else None

    machine = machine_info()
    print(json.dumps(machine, indent=1))
    specs = {}
    for i, name in enumerate(servers):
        port = a.base_port + i
        pasv = (40000 + PASV_PORTS * i, 40000 + PASV_PORTS * (i + 1) - 1)
        specs[name] = dict(name=name, port=port, pasv=pasv, root=os.path.join(a.workdir, name))

    results = {name: {} for name in servers}  # name -> test -> [flat run dicts]
    running = {}
    try:
        for name in servers if a.tests else []:
            running[name] = start(name, specs[name], a, ferry_bin, cert)
            if any(t not in BENCH_TESTS for t in a.tests.split(",") if t):
                harness(a, specs[name], "prepare", src)
        for r in range(a.rounds if a.tests else 0):
            # The order rotates each round, so no server always follows the same one (a login storm
            # against a forking server leaves load behind for a while).
            for name in servers[r % len(servers):] + servers[:r % len(servers)]:
                print(f"== round {r + 1}/{a.rounds}: {name}  load {os.getloadavg()[0]:.2f}", flush=True)
                out = harness(a, specs[name], a.tests, src)
                for t, runs in out.items():
                    results[name].setdefault(t, []).extend(runs)
                settle(running[name])
        for name in list(running):
            stop(running.pop(name))
        if not a.no_idle:
            for n in [int(x) for x in a.idle_n.split(",")]:
                for r in range(a.rounds):
                    for name in servers[r % len(servers):] + servers[:r % len(servers)]:
                        # A fresh server each time, so that memory left over from earlier tests is not counted.
                        proc = start(name, specs[name], a, ferry_bin, cert)
                        warm_up(a, specs[name])
                        print(f"== idle {n} round {r + 1}/{a.rounds}: {name}", flush=True)
                        out = harness(a, specs[name], "idle", src, ["--idle-n", str(n), "--server-pid", str(proc.pid)])
                        for t, runs in out.items():
                            results[name].setdefault(f"{t}{n}", []).extend(runs)
                        stop(proc)
    finally:
        for proc in running.values():
            stop(proc)
        if not a.keep:
            for name in servers:
                shutil.rmtree(specs[name]["root"], ignore_errors=True)

    idle_counts = [] if a.no_idle else [int(x) for x in a.idle_n.split(",")]
    table = summarise(results, servers, ROWS + idle_rows(idle_counts))
    print_table(table, servers, a)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"machine": machine, "results": results, "table": table}, fh, indent=1)


# ----------------------------------------------------------------------------- servers

def build_ferry():
    subprocess.run(["cargo", "build", "--release", "-p", "ferry", "--bin", "ferry"], cwd=REPO, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    return os.path.join(target, "release", "ferry")


def start(name, spec, a, ferry_bin, cert):
    root = spec["root"]
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    log = open(os.path.join(root, "server.log"), "w")
    if name == "ferry":
        cmd = start_ferry(spec, a, ferry_bin)
    elif name == "vsftpd":
        cmd = start_vsftpd(spec, a, cert)
    elif name == "pure-ftpd":
        cmd = start_pure_ftpd(spec, a, cert)
    elif name == "pyftpdlib":
        cmd = [sys.executable, os.path.join(HERE, "pyftpd_server.py"), "--port", str(spec["port"]),
               "--root", os.path.join(root, "files"), "--user", a.user, "--password", a.password,
               "--passive", f"{spec['pasv'][0]}-{spec['pasv'][1]}"] + (["--cert", cert] if cert else [])
        os.makedirs(os.path.join(root, "files"))
    else:
        sys.exit(f"unknown server {name}")
    if a.server_cpus:
        # Before it starts: every thread and forked session process inherits the placement.
        cmd = ["taskset", "-c", a.server_cpus] + cmd
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_port(spec["port"], proc)
    return proc


def parse_pin(pin):
    """`--pin SERVER:CLIENT` as two taskset CPU lists (None, None without it)."""
    if not pin:
        return None, None
    server, sep, client = pin.partition(":")
    if not sep or not server or not client:
        sys.exit(f"--pin {pin!r}: give SERVER_CPUS:CLIENT_CPUS, e.g. 0:0 or 1:0")
    if shutil.which("taskset") is None:
        sys.exit("--pin needs taskset (apt-get install util-linux)")
    return server, client


def client_cmd(a, cmd):
    return (["taskset", "-c", a.client_cpus] if a.client_cpus else []) + cmd


def start_ferry(spec, a, ferry_bin):
    root = spec["root"]
    conf = os.path.join(root, "ferry.toml")
    with open(conf, "w") as fh:
        fh.write(f'data_dir = "{root}/data"\nlisten = ["127.0.0.1:{spec["port"]}"]\n'
                 f'passive_ports = "{spec["pasv"][0]}-{spec["pasv"][1]}"\n'
                 'max_connections = 20000\nmax_connections_per_ip = 20000\n'
                 # ferry also limits connections that have not logged in yet (200 by default).
                 'max_pending_connections = 20000\n'
                 # The shared benchmark password is shorter than ferry's default minimum (12).
                 f'min_password_length = {max(8, min(12, len(a.password)))}\n')
        if a.ferry_extra_config:
            with open(a.ferry_extra_config) as extra:
                fh.write(extra.read())
    subprocess.run([ferry_bin, "--config", conf, "user", "add", a.user, "--password-stdin", "--home", "/"],
                   input=(a.password + "\n").encode(), check=True, stdout=subprocess.DEVNULL)
    return [ferry_bin, "--config", conf, "serve"]


def start_vsftpd(spec, a, cert):
    root = spec["root"]
    files = os.path.join(root, "files")
    os.makedirs(files)
    ensure_system_user(a)
    # vsftpd changes into the user's home directory before it applies local_root.
    subprocess.run(["usermod", "--home", a.workdir, a.user], check=True)
    shutil.chown(files, a.user, a.user)
    os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
    conf = os.path.join(root, "vsftpd.conf")
    lines = [
        "listen=YES", "listen_ipv6=NO", "listen_address=127.0.0.1", f"listen_port={spec['port']}",
        "background=NO", "anonymous_enable=NO", "local_enable=YES", "write_enable=YES",
        f"local_root={files}", "pasv_enable=YES", f"pasv_min_port={spec['pasv'][0]}",
        f"pasv_max_port={spec['pasv'][1]}", "max_clients=20000", "max_per_ip=20000",
        "pam_service_name=vsftpd", "secure_chroot_dir=/var/run/vsftpd/empty", "seccomp_sandbox=NO",
        "xferlog_enable=NO", "use_localtime=NO", "dirmessage_enable=NO", "connect_from_port_20=NO",
    ]
    if cert:
        lines += ["ssl_enable=YES", f"rsa_cert_file={cert}", f"rsa_private_key_file={cert}",
                  "force_local_logins_ssl=NO", "force_local_data_ssl=NO", "require_ssl_reuse=NO"]
    with open(conf, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return [shutil.which("vsftpd") or "/usr/sbin/vsftpd", conf]


def start_pure_ftpd(spec, a, cert):
    """Pure-FTPd in the foreground on loopback, one virtual user (PureDB) chrooted to its files, which
    belong to `nobody` (a virtual user needs a system uid that is not root)."""
    server, pure_pw = pure_ftpd_binaries(a)
    root = spec["root"]
    files = os.path.join(root, "files")
    os.makedirs(files)
    shutil.chown(files, "nobody", NOBODY_GROUP)
    passwd, pdb = os.path.join(root, "pureftpd.passwd"), os.path.join(root, "pureftpd.pdb")
    pure_ftpd_user(pure_pw, a.user, a.password, files, passwd, pdb)
    cmd = [server, "-S", f"127.0.0.1,{spec['port']}", "-l", f"puredb:{pdb}",
           "-p", f"{spec['pasv'][0]}:{spec['pasv'][1]}", "-c", "20000", "-C", "20000",
           "-E",  # no anonymous logins
           "-H",  # no reverse DNS look-ups
           "-A",  # chroot every user into its home
           "-4"]
    if cert:
        # TLS accepted (explicit AUTH TLS), not required; key and certificate in one PEM file.
        cmd += ["-Y", "1", "-2", cert]
    return cmd


# Debian's group of the `nobody` user.
NOBODY_GROUP = "nogroup"

# Passive ports per server. Pure-FTPd caps its client limit at half its passive ports (and its listen
# backlog at 3 + limit / 8): with 1,000 ports it would take at most 500 sessions, too few for the
# 1,000-client login storm.
PASV_PORTS = 2500


def pure_ftpd_user(pure_pw, user, password, home, passwd, pdb):
    """Adds `user` (files owned by `nobody`) to a PureDB password database with a SHA-512-crypt hash.

    Not `pure-pw useradd`: it hashes with Argon2id at a cost that took about 6 s of CPU per login on this
    machine (`m=8192,t=511..1023`), run by every session process at once and without a bound. A login
    storm then left hundreds of session processes hashing for minutes after the harness had given up
    (947 processes, load average 500), and 100 concurrent downloads each spent 6 s logging in. The
    benchmark measures the FTP server, not its choice of password hash: SHA-512-crypt costs a few
    milliseconds, like the system password that vsftpd checks through PAM."""
    hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode(), check=True,
                            capture_output=True).stdout.decode().strip()
    uid, gid = pwd.getpwnam("nobody").pw_uid, grp.getgrnam(NOBODY_GROUP).gr_gid
    with open(passwd, "w") as fh:
        fh.write(f"{user}:{hashed}:{uid}:{gid}::{home}/./::::::::::::\n")
    subprocess.run([pure_pw, "mkdb", pdb, "-f", passwd], check=True, stdout=subprocess.DEVNULL)


def pure_ftpd_binaries(a):
    """`pure-ftpd` and `pure-pw`: installed ones, else unpacked (once) from the Debian package into
    --peers-dir with `apt-get download` + `dpkg -x` (the package conflicts with vsftpd as an installed
    package, and its service scripts are not wanted)."""
    server, pure_pw = shutil.which("pure-ftpd"), shutil.which("pure-pw")
    if server and pure_pw:
        return server, pure_pw
    dest = os.path.join(a.peers_dir, "pure-ftpd")
    server, pure_pw = os.path.join(dest, "usr/sbin/pure-ftpd"), os.path.join(dest, "usr/bin/pure-pw")
    if not (os.path.exists(server) and os.path.exists(pure_pw)):
        os.makedirs(dest, exist_ok=True)
        print(f"unpacking Pure-FTPd from its Debian package into {dest}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", "pure-ftpd"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
            for deb in os.listdir(tmp):
                if deb.endswith(".deb"):
                    subprocess.run(["dpkg", "-x", os.path.join(tmp, deb), dest], check=True)
        if not os.path.exists(server):
            sys.exit("Pure-FTPd: `apt-get download pure-ftpd` gave no usr/sbin/pure-ftpd; install it by hand "
                     "or leave it out with --servers")
    return server, pure_pw


def ensure_system_user(a):
    if subprocess.run(["id", a.user], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
        return
    if not a.create_user:
        sys.exit(f"vsftpd needs a system user {a.user!r} with password {a.password!r}; "
                 "create it or pass --create-user")
    subprocess.run(["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh", a.user],
                   check=True)
    subprocess.run(["chpasswd"], input=f"{a.user}:{a.password}\n".encode(), check=True)


def make_cert(workdir):
    cert = os.path.join(workdir, "cert.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7", "-subj",
                        "/CN=127.0.0.1", "-keyout", cert, "-out", cert + ".crt"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(cert + ".crt") as c, open(cert, "a") as k:
            k.write(c.read())
    return cert


def wait_port(port, proc, timeout=30):
    import socket
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"server on port {port} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"server on port {port} did not come up")


def warm_up(a, spec):
    """One login before the idle baseline is taken, for every server alike: ferry's first login runs
    Argon2id (19 MiB of working memory, which the allocator keeps), later ones hit its verification
    cache; that one-off is not per-session memory."""
    import ftplib
    try:
        f = ftplib.FTP_TLS() if a.tls else ftplib.FTP()
        f.connect("127.0.0.1", spec["port"], timeout=30)
        f.login(a.user, a.password)  # FTP_TLS.login sends AUTH TLS first
        f.quit()
    except ftplib.all_errors as e:
        print(f"warm-up login to {spec['name']} failed: {e}", file=sys.stderr)


def settle(proc, timeout=60):
    """Waits until a forking server's session processes have gone (at most `timeout` s), so that the
    next server does not run while they still load the machine."""
    end = time.time() + timeout
    while time.time() < end and len(descendants(proc.pid)) > 2:
        time.sleep(1)


def descendants(root):
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    parent[int(d)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, todo = set(), [root]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p and c not in found:
                found.add(c)
                todo.append(c)
    return found


def stop(proc):
    """Stops a server and every process of its group: a forking server's session processes can outlive
    their parent (Pure-FTPd's did, still hashing passwords)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc.poll() is None:
        proc.wait()


# ----------------------------------------------------------------------------- harness and results

def harness(a, spec, tests, src, extra=()):
    """Runs `tests` (comma list) against one server: `ferry bench` for those in BENCH_TESTS, the harness
    for the rest. Returns {test: [flat result dicts]}."""
    names = [t for t in tests.split(",") if t]
    results = {t: [ferry_bench(a, spec, t)] for t in names if t in BENCH_TESTS}
    rest = [t for t in names if t not in BENCH_TESTS]
    # The 1 GiB upload runs on its own, right after the memory is warmed; the others keep their order.
    warm = a.warm_memory > 0
    groups = [[]]
    for t in rest:
        if warm and t == "stor":
            groups += [["stor"], []]
        else:
            groups[-1].append(t)
    for group in filter(None, groups):
        if warm and group == ["stor"]:
            warm_memory(a.workdir, a.warm_memory)
        results.update(run_harness(a, spec, ",".join(group), src, extra))
    return {t: [r for r in runs if r] for t, runs in results.items()}


def warm_memory(where, gib):
    """Writes `gib` GiB to a file in `where` (tmpfs) and removes it.

    This virtual machine hands memory that has been free for a few seconds back to its host (free page
    reporting), and the first write into such a page costs a fault on the host: a 1 GiB tmpfs-to-tmpfs
    copy takes 1.0-1.9 s instead of 0.46 s. Whichever process writes into the new pages first pays,
    the server (its tmpfs file) or the client (its socket buffers), so 1 GiB uploads swung by 3-6x
    between rounds for reasons that had nothing to do with the server. Pages freed a moment ago are
    handed out first, so writing and freeing some memory just before the upload gives every server the
    same, warm start."""
    path = os.path.join(where, "warm-memory.bin")
    block = b"\xa5" * (1 << 20)
    # Never more than a quarter of the memory available: on a small machine this must not crowd out
    # the servers (tmpfs pages count as memory).
    mib = min(int(gib * 1024), available_mib() // 4)
    try:
        with open(path, "wb") as fh:
            for _ in range(mib):
                fh.write(block)
    finally:
        os.unlink(path)


def available_mib():
    """MemAvailable from /proc/meminfo, in MiB (0 where it cannot be read)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def ferry_bench(a, spec, test):
    """One `ferry bench` run of BENCH_FILES files of 4 KiB in one session (with the ferry binary being
    measured: the client is the same for every server). Returns its JSON report, flattened, or {}."""
    scheme = "ftpes" if a.tls else "ftp"
    # vsftpd does not chroot here: its files are under their absolute path. The others show their files
    # directory as /.
    where = os.path.join(spec["root"], "files").lstrip("/") + "/" if spec["name"] == "vsftpd" else ""
    url = f"{scheme}://{a.user}:{a.password}@127.0.0.1:{spec['port']}/{where}"
    cmd = [a.ferry_bin, "bench", url, "--op", BENCH_TESTS[test], "-n", str(BENCH_FILES), "--size", "4KiB",
           "--json"] + (["-k"] if a.tls else [])
    run = subprocess.run(client_cmd(a, cmd), capture_output=True, text=True)
    try:
        report = json.loads(run.stdout)
    except ValueError:
        print(f"ferry bench against {spec['name']} failed: {run.stderr.strip()[-500:]}", file=sys.stderr)
        return {}
    if report.get("errors"):
        print(f"ferry bench against {spec['name']}: {report['errors']} errors: {report.get('error_messages')}",
              file=sys.stderr)
    return flatten("", report, {})


def run_harness(a, spec, tests, src, extra=()):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = tmp.name
    cmd = [sys.executable, a.harness, "--host", "127.0.0.1", "--port", str(spec["port"]), "--user", a.user,
           "--password", a.password, "--tests", tests, "--runs", "1", "--src", src, "--label", spec["name"],
           "--json", out, "--quiet", *extra] + (["--tls"] if a.tls else [])
    subprocess.run(client_cmd(a, cmd), stdout=subprocess.DEVNULL)
    try:
        with open(out) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    finally:
        os.unlink(out)
    return {t: [flatten("", r, {}) for r in runs] for t, runs in data.get("results", {}).items()}


def flatten(prefix, d, out):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flatten(key + ".", v, out)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = v
    return out


def summarise(results, servers, rows):
    table = []
    for label, test, key, better in rows:
        row = {"row": label, "better": better, "servers": {}}
        for name in servers:
            vals = [r[key] for r in results[name].get(test, []) if r.get(key) is not None]
            if vals:
                row["servers"][name] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
                                        "n": len(vals)}
        peers = [v["median"] for n, v in row["servers"].items() if n != "ferry"]
        f = row["servers"].get("ferry", {}).get("median")
        if f is not None and peers:
            best = max(peers) if better == "high" else min(peers)
            row["best_peer"] = best
            row["ratio"] = (f / best) if best else None
        table.append(row)
    return table


def print_table(table, servers, a):
    print(f"\n{'FTPS' if a.tls else 'FTP'} medians over {a.rounds} interleaved rounds (min-max); "
          "ratio = ferry / best peer")
    head = "| row | " + " | ".join(servers) + " | ferry / best peer |"
    print(head)
    print("|" + "---|" * (len(servers) + 2))
    for row in table:
        cells = []
        for name in servers:
            v = row["servers"].get(name)
            cells.append(f"{v['median']:.4g} ({v['min']:.4g}-{v['max']:.4g})" if v else "-")
        ratio = row.get("ratio")
        rtxt = f"{ratio:.2f}" if ratio is not None else "-"
        if row["better"] == "low":
            rtxt += " (lower is better)"
        print(f"| {row['row']} | " + " | ".join(cells) + f" | {rtxt} |")


def machine_info():
    info = {"nproc": os.cpu_count(), "kernel": os.uname().release, "loadavg_start": os.getloadavg()}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


if __name__ == "__main__":
    main()
