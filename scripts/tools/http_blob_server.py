#!/usr/bin/env python3
"""A minimal HTTP/1.1 server for benchmarks: every GET gets SIZE bytes
from memory (Content-Length, then close), so the server costs little
more than the kernel's send path (python's http.server reads files and
is slow at this).

usage: http_blob_server.py PORT SIZE
"""
import socket
import sys
import threading

CHUNK = 4 << 20


def serve(conn, size, block):
    with conn:
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(65536)
            if not data:
                return
            request += data
        if not request.startswith(b"GET "):
            conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n"
                         b"Connection: close\r\n\r\n")
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % size)
        view = memoryview(block)
        left = size
        while left > 0:
            n = min(left, len(block))
            conn.sendall(view[:n])
            left -= n
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(65536):
            pass


def main():
    port, size = int(sys.argv[1]), int(sys.argv[2])
    block = bytes(range(256)) * (min(size, CHUNK) // 256 + 1)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("0.0.0.0", port))
    lsock.listen(128)
    print(f"serving {size} bytes on port {port}", flush=True)
    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=serve, args=(conn, size, block), daemon=True).start()


if __name__ == "__main__":
    main()
