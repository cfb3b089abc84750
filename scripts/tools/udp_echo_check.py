#!/usr/bin/env python3
"""Sends UDP datagrams of the given sizes to an echo server and checks each
comes back byte-identical. Also checks that a UDP socket connected to a
closed port gets ECONNREFUSED.

usage: udp_echo_check.py HOST PORT CLOSED_PORT SIZE...
"""
import errno
import os
import socket
import sys


def main():
    host, port, closed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sizes = [int(s) for s in sys.argv[4:]]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.settimeout(3)
    for size in sizes:
        data = os.urandom(size)
        for attempt in range(3):
            s.sendto(data, (host, port))
            try:
                back, addr = s.recvfrom(70000)
                break
            except socket.timeout:
                continue
        else:
            sys.exit(f"no echo for {size} bytes")
        if back != data:
            sys.exit(f"echo of {size} bytes differs ({len(back)} bytes back)")
        print(f"ok {size} bytes echoed byte-identical")

    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(3)
    c.connect((host, closed))
    c.send(b"anyone there?")
    try:
        c.recv(100)
        sys.exit("closed port answered")
    except ConnectionRefusedError:
        print(f"ok connected socket to closed port {closed}: ECONNREFUSED")
    except socket.timeout:
        sys.exit("no ECONNREFUSED from closed port")


if __name__ == "__main__":
    main()
