#!/usr/bin/env python3
"""TCP checks against a ustack host, run from the Linux side.

  tcp_check.py echo HOST PORT BYTES       send BYTES random bytes, expect them back
  tcp_check.py discard HOST PORT BYTES    write BYTES, report the rate
  tcp_check.py chargen HOST PORT BYTES    read BYTES, verify the pattern, report the rate
  tcp_check.py refused HOST PORT          expect ECONNREFUSED
  tcp_check.py halfclose HOST PORT        shut down writing, still receive the echo
  tcp_check.py many HOST PORT N           N concurrent connections, each echoes and closes
"""
import os
import selectors
import socket
import sys
import time


def rate(nbytes, secs):
    return f"{nbytes * 8 / secs / 1e9:.2f} Gbit/s ({nbytes / secs / 2**20:.0f} MiB/s)"


def connect(host, port, timeout=30):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def echo(host, port, total):
    s = connect(host, port)
    s.setblocking(False)
    data = os.urandom(1 << 20)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent = recvd = 0
    expect_off = 0
    start = time.time()
    deadline = start + 300
    while recvd < total:
        if time.time() > deadline:
            sys.exit(f"echo stalled: sent {sent}, received {recvd}")
        for key, ev in sel.select(timeout=5):
            if ev & selectors.EVENT_WRITE and sent < total:
                off = sent % len(data)
                n = min(len(data) - off, total - sent)
                try:
                    sent += s.send(data[off:off + n])
                except BlockingIOError:
                    pass
                if sent >= total:
                    sel.modify(s, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                try:
                    chunk = s.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not chunk:
                    sys.exit(f"echo closed early at {recvd}")
                off = recvd % len(data)
                k = 0
                while k < len(chunk):
                    m = min(len(chunk) - k, len(data) - off)
                    if chunk[k:k + m] != data[off:off + m]:
                        sys.exit(f"echo mismatch near byte {recvd + k}")
                    k += m
                    off = (off + m) % len(data)
                recvd += len(chunk)
    secs = time.time() - start
    s.close()
    print(f"ok echo: {total} bytes byte-exact, {rate(total, secs)}")


def discard(host, port, total):
    s = connect(host, port)
    buf = b"\x5a" * (1 << 20)
    start = time.time()
    sent = 0
    while sent < total:
        sent += s.send(buf[: min(len(buf), total - sent)])
    s.shutdown(socket.SHUT_WR)
    s.settimeout(60)
    if s.recv(1) != b"":
        sys.exit("discard sent data")
    secs = time.time() - start
    s.close()
    print(f"ok discard: {total} bytes written, {rate(total, secs)}")


def chargen(host, port, total):
    s = connect(host, port)
    period = bytes(32 + (i % 95) for i in range(95))
    pattern = period * (((1 << 20) // 95) + 2)
    got = 0
    start = time.time()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    while got < total:
        n = s.recv_into(view, min(len(buf), total - got))
        if n == 0:
            sys.exit(f"chargen closed early at {got}")
        phase = got % 95
        if view[:n] != pattern[phase:phase + n]:
            sys.exit(f"chargen pattern mismatch near byte {got}")
        got += n
    secs = time.time() - start
    s.close()
    print(f"ok chargen: {total} bytes, pattern verified, {rate(total, secs)}")


def refused(host, port):
    try:
        socket.create_connection((host, port), timeout=5)
    except ConnectionRefusedError:
        print(f"ok port {port}: ECONNREFUSED")
        return
    sys.exit("connection to a closed port succeeded")


def halfclose(host, port):
    s = connect(host, port)
    msg = os.urandom(100_000)
    s.sendall(msg)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    if got != msg:
        sys.exit(f"half-close: got {len(got)} bytes back, expected {len(msg)}")
    print("ok half-close: 100000 bytes echoed after SHUT_WR, then end of stream")


def many(host, port, n):
    socks = []
    for i in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        socks.append(s)
    sel = selectors.DefaultSelector()
    state = {}
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_WRITE, i)
        state[i] = [f"connection {i} says hello\n".encode() * 10, b"", False]
    done = 0
    deadline = time.time() + 120
    while done < n:
        if time.time() > deadline:
            sys.exit(f"many: only {done} of {n} finished")
        for key, ev in sel.select(timeout=5):
            i = key.data
            s = key.fileobj
            msg, got, sent = state[i]
            if ev & selectors.EVENT_WRITE and not sent:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    sys.exit(f"connection {i} failed: {os.strerror(err)}")
                s.sendall(msg)
                s.shutdown(socket.SHUT_WR)
                state[i][2] = True
                sel.modify(s, selectors.EVENT_READ, i)
            elif ev & selectors.EVENT_READ:
                chunk = s.recv(65536)
                if chunk:
                    state[i][1] = got + chunk
                else:
                    if state[i][1] != msg:
                        sys.exit(f"connection {i}: wrong echo")
                    sel.unregister(s)
                    s.close()
                    done += 1
    print(f"ok {n} concurrent connections echoed and closed cleanly")


def reset(host, port):
    """Opens a connection, sends a little, then aborts it with a RST."""
    s = connect(host, port)
    s.sendall(b"about to vanish")
    s.recv(100)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    print("ok connection aborted with RST")


def main():
    cmd, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    arg = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    {
        "echo": lambda: echo(host, port, arg),
        "discard": lambda: discard(host, port, arg),
        "chargen": lambda: chargen(host, port, arg),
        "refused": lambda: refused(host, port),
        "halfclose": lambda: halfclose(host, port),
        "many": lambda: many(host, port, arg),
        "reset": lambda: reset(host, port),
    }[cmd]()


if __name__ == "__main__":
    main()
