#!/usr/bin/env python3
"""Connections per second against an HTTP server: for SECONDS, one
connection at a time opens, sends `GET PATH` with `Connection: close`,
reads the whole response (checking its status is 200) and closes.

usage: http_cps.py HOST PORT PATH SECONDS
"""
import socket
import sys
import time


def main():
    host, port, path, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").encode()
    done = 0
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(request)
        response = b""
        while True:
            data = s.recv(65536)
            if not data:
                break
            response += data
        s.close()
        if not response.startswith(b"HTTP/1.1 200"):
            sys.exit(f"connection {done}: bad response {response[:40]!r}")
        done += 1
    secs = time.monotonic() - start
    print(f"{done / secs:.0f} connections/s ({done} sequential GET {path} in {secs:.1f} s)")


if __name__ == "__main__":
    main()
