#!/usr/bin/env python3
"""A Linux (kernel sockets) echo server that holds many connections, for
comparing connection set-up rates with `ustack serve --echo`.

    kernel_echo.py ADDRESS PORT

One thread, epoll: echoes what it reads (what the socket does not take is
dropped: the clients send one byte), closes on end of stream or error.
The listener has SO_REUSEPORT, so several processes can share the port
when one process may not hold enough descriptors. Prints "listening" once
ready.
"""

import resource
import select
import socket
import sys

addr, port = sys.argv[1], int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
lsock_opts = [(socket.SOL_SOCKET, socket.SO_REUSEADDR), (socket.SOL_SOCKET, socket.SO_REUSEPORT)]

lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
for level, opt in lsock_opts:
    lsock.setsockopt(level, opt, 1)
lsock.bind((addr, port))
lsock.listen(4096)
lsock.setblocking(False)
ep = select.epoll()
ep.register(lsock.fileno(), select.EPOLLIN)
conns = {}
print("listening", flush=True)
while True:
    for fd, _ in ep.poll():
        if fd == lsock.fileno():
            while True:
                try:
                    c, _ = lsock.accept()
                except BlockingIOError:
                    break
                c.setblocking(False)
                conns[c.fileno()] = c
                ep.register(c.fileno(), select.EPOLLIN)
            continue
        c = conns.get(fd)
        if c is None:
            continue
        try:
            data = c.recv(65536)
            if data:
                c.send(data)
                continue
        except BlockingIOError:
            continue
        except OSError:
            pass
        ep.unregister(fd)
        del conns[fd]
        c.close()
