#!/usr/bin/env python3
"""A pyftpdlib server for the side-by-side benchmark (bench/compare.py): one user, loopback, own ports."""

import argparse

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--passive", required=True, help="LOW-HIGH")
    p.add_argument("--cert", help="PEM with key and certificate: explicit FTPS")
    a = p.parse_args()
    auth = DummyAuthorizer()
    auth.add_user(a.user, a.password, a.root, perm="elradfmwMT")
    handler = FTPHandler
    if a.cert:
        from pyftpdlib.handlers import TLS_FTPHandler
        handler = TLS_FTPHandler
        handler.certfile = a.cert
    handler.authorizer = auth
    lo, hi = (int(x) for x in a.passive.split("-"))
    handler.passive_ports = range(lo, hi + 1)
    server = FTPServer(("127.0.0.1", a.port), handler)
    server.max_cons = 20000
    server.max_cons_per_ip = 20000
    server.serve_forever()


if __name__ == "__main__":
    main()
