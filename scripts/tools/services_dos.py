#!/usr/bin/env python3
"""Hostile and vanished clients against `ustack serve --echo`, with a live
client that must keep being served throughout.

    services_dos.py HOST PORT PID IDLE_SECS MAX_CONNS [SLOW]

Opens SLOW connections (default 300): half trickle one byte a second (and
read its echo), half send one byte and then vanish (never send or read
again). Meanwhile one live client does an echo round trip every 0.1 s.
Checks, printing one `ok` line each and exiting 1 at the first failure:
the thread count of process PID (/proc/PID/task) never changes; every
vanished connection is closed by the server after IDLE_SECS while every
trickling one is still served; once only the trickling and live ones are
open, filling up to MAX_CONNS works and each connection beyond is reset.
"""

import errno
import os
import socket
import sys
import time

HOST, PORT, PID = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
IDLE, MAX_CONNS = float(sys.argv[4]), int(sys.argv[5])
SLOW = int(sys.argv[6]) if len(sys.argv) > 6 else 300


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def threads():
    return len(os.listdir(f"/proc/{PID}/task"))


def connect():
    s = socket.create_connection((HOST, PORT), timeout=5)
    s.settimeout(5)
    return s


def roundtrip(s, msg):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(len(msg) - len(got))
        if not chunk:
            raise ConnectionError("end of stream")
        got += chunk
    if got != msg:
        raise ConnectionError(f"echo differs: {got!r}")


def closed_by_server(s):
    """True when the server closed s: end of stream or a reset."""
    s.settimeout(3)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    except OSError as e:
        return e.errno in (errno.ECONNRESET, errno.EPIPE)


base = threads()
print(f"threads of ustack before: {base}", flush=True)
live = connect()
roundtrip(live, b"hello")

slow = [connect() for _ in range(SLOW)]
trickle, vanish = slow[: SLOW // 2], slow[SLOW // 2 :]
for s in slow:
    roundtrip(s, b"!")
if threads() != base:
    fail(f"{threads()} threads with {SLOW + 1} connections, {base} before")
print(f"ok {SLOW + 1} connections open, still {base} threads", flush=True)

# Trickle for twice the idle timeout (and then some): the live client gets
# a round trip every 0.1 s, the trickling connections one byte a second.
live_trips = 0
start = time.monotonic()
next_trickle = start
while time.monotonic() - start < 2 * IDLE + 2:
    try:
        roundtrip(live, b"live %d" % live_trips)
    except OSError as e:
        fail(f"live client not served after {live_trips} round trips: {e}")
    live_trips += 1
    if time.monotonic() >= next_trickle:
        for i, s in enumerate(trickle):
            try:
                roundtrip(s, b".")
            except OSError as e:
                fail(f"trickling connection {i} not served: {e}")
        next_trickle += 1.0
    if threads() != base:
        fail(f"{threads()} threads while trickling, {base} before")
    time.sleep(0.1)
print(f"ok live client served throughout ({live_trips} round trips), "
      f"{len(trickle)} trickling connections served, {base} threads", flush=True)

closed = sum(closed_by_server(s) for s in vanish)
if closed != len(vanish):
    fail(f"only {closed} of {len(vanish)} vanished connections closed after the idle timeout")
for s in vanish:
    s.close()
print(f"ok {closed} vanished connections closed by the server after the idle timeout", flush=True)

# The cap: the trickling and live ones are open; fill up to MAX_CONNS, then
# every further connection is reset right after the handshake.
open_now = len(trickle) + 1
fill, refused = [], []
for i in range(MAX_CONNS - open_now + 10):
    try:
        s = connect()
    except ConnectionResetError:
        # The RST can beat connect() back to the caller (the kernel then
        # reports it from connect).
        refused.append(i)
        continue
    try:
        roundtrip(s, b"?")
        fill.append(s)
    except (ConnectionResetError, ConnectionError) as e:
        refused.append(i)
        s.close()
want = MAX_CONNS - open_now
if len(fill) != want or refused != list(range(want, want + 10)):
    fail(f"{len(fill)} admitted and {len(refused)} refused ({refused}); expected "
         f"{want} and 10 (cap {MAX_CONNS})")
roundtrip(live, b"still live")
if threads() != base:
    fail(f"{threads()} threads at the cap, {base} before")
print(f"ok cap: {len(fill)} more admitted up to {MAX_CONNS}, the 10 beyond it reset, "
      f"live client served, {base} threads", flush=True)

for s in fill + trickle + [live]:
    s.close()
time.sleep(1)
if threads() != base:
    fail(f"{threads()} threads after closing, {base} before")
print(f"ok all closed, {base} threads", flush=True)
