#!/usr/bin/env python3
"""Linux's side of an urgent-data exchange (scripts/itest/32-tcp-conformance.sh):
accepts one connection, reads up to the urgent mark (SIOCATMARK), takes the
urgent byte out of band (recv MSG_OOB, SO_OOBINLINE off as by default),
reads the rest, prints what it saw, then sends `abc`, `Z` as urgent data
and `def`, and closes.

usage: urgent_peer.py ADDR PORT
"""
import fcntl
import socket
import struct
import sys
import time

SIOCATMARK = 0x8905


def at_mark(sock):
    return struct.unpack("i", fcntl.ioctl(sock, SIOCATMARK, b"\0" * 4))[0] == 1


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # The address appears when ustack brings its TAP device up.
    for _ in range(100):
        try:
            listener.bind((addr, port))
            break
        except OSError:
            time.sleep(0.1)
    listener.listen(1)
    print("listening", flush=True)
    conn, _ = listener.accept()
    conn.settimeout(10)
    time.sleep(0.5)  # everything sent has arrived
    before = b""
    while not at_mark(conn):
        before += conn.recv(100)
    oob = conn.recv(1, socket.MSG_OOB)
    after = b""
    while len(after) < 5:
        after += conn.recv(100)
    print(f"before mark: {before.decode()} oob: {oob.decode()} after: {after.decode()}", flush=True)
    conn.send(b"abc")
    conn.send(b"Z", socket.MSG_OOB)
    conn.send(b"def")
    time.sleep(0.2)
    conn.close()


if __name__ == "__main__":
    main()
