#!/usr/bin/env python3
"""A slowloris against an HTTP server, and a check that it gets nowhere.

    http_slowloris.py HOST PORT PID SLOW SECONDS

Opens SLOW connections, each sending a request head one byte a second
(a request line, then an endless header line), and keeps trickling for
at most SECONDS. Prints one `ok` line per check and exits 1 at the first
failure: the thread count of process PID (/proc/PID/task) never changes,
and the server cuts every slow connection (end of stream or a reset)
within SECONDS although each keeps sending.
"""

import os
import select
import socket
import sys
import time

HOST, PORT, PID = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
SLOW, SECONDS = int(sys.argv[4]), float(sys.argv[5])
HEAD = f"GET /slow HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: ".encode()


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def threads():
    return len(os.listdir(f"/proc/{PID}/task"))


def main():
    before = threads()
    alive = {}
    for i in range(SLOW):
        s = socket.create_connection((HOST, PORT), timeout=5)
        s.setblocking(False)
        alive[s] = 0
    opened = time.monotonic()
    print(f"ok {SLOW} slow connections open, {before} threads", flush=True)
    cut = 0
    while alive:
        if time.monotonic() - opened > SECONDS:
            fail(f"{len(alive)} slow connections still open after {SECONDS} s")
        if threads() != before:
            fail(f"thread count changed: {before} -> {threads()}")
        for s, sent in list(alive.items()):
            byte = HEAD[sent:sent + 1] if sent < len(HEAD) else b"a"
            try:
                s.send(byte)
                alive[s] = sent + 1
            except BlockingIOError:
                pass
            except OSError:
                # Reset by the server.
                del alive[s]
                s.close()
                cut += 1
        readable, _, _ = select.select(list(alive), [], [], 1.0)
        for s in readable:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                del alive[s]
                s.close()
                cut += 1
            else:
                fail(f"the server answered a request never completed: {data[:40]!r}")
    print(f"ok all {cut} cut in {time.monotonic() - opened:.1f} s while sending, "
          f"{threads()} threads", flush=True)


main()
