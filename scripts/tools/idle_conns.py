#!/usr/bin/env python3
"""Holds many idle TCP connections to an echo server, for memory figures.

    idle_conns.py HOST PORT N UNTIL_FILE [SOURCE_ADDRESS]

Opens N connections (from SOURCE_ADDRESS if given: one address has fewer
than 30,000 ephemeral ports, so 100,000 connections take several processes
with several addresses), checks each with a one-byte echo, prints
"open N (S s, R/s)" and holds them (idle) until UNTIL_FILE exists; then
closes them all and prints "closed". Exits 1 if a connection fails.
"""

import os
import resource
import socket
import sys
import time

host, port, n, until = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
source = (sys.argv[5], 0) if len(sys.argv) > 5 else None
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = n + 100
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))

socks = []
start = time.monotonic()
for i in range(n):
    try:
        s = socket.create_connection((host, port), timeout=10, source_address=source)
        s.sendall(b"x")
        if s.recv(1) != b"x":
            raise ConnectionError("no echo")
    except OSError as e:
        print(f"connection {i} failed: {e}", flush=True)
        sys.exit(1)
    socks.append(s)
took = time.monotonic() - start
print(f"open {n} ({took:.1f} s, {n / took:.0f}/s)", flush=True)
while not os.path.exists(until):
    time.sleep(0.2)
for s in socks:
    s.close()
print("closed", flush=True)
