"""Runs under libustack_preload.so (scripts/itest/46-preload.sh): the calls
real event loops make, on ustack sockets mixed with kernel descriptors.

    preload_probe.py HOST PORT PATH EXPECTED-FILE

Fetches PATH from the HTTP server at HOST:PORT twice (epoll, then select
with a pipe beside the socket) and compares the bodies with EXPECTED-FILE;
then checks dup, FIONREAD, an unsupported option, IPv6 going to the
kernel, and fork (the child has no stack: ENETDOWN). Prints one line per
check; exits non-zero on the first failure.
"""

import errno
import fcntl
import os
import select
import socket
import struct
import sys
import termios

host, port, path, expected_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
expected = open(expected_file, "rb").read()
request = f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode()


def body(raw):
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head[:40]
    return rest


def check(cond, what):
    if not cond:
        print(f"FAIL {what}", flush=True)
        sys.exit(1)
    print(f"ok {what}", flush=True)


# getaddrinfo on a literal address (libc's own, no socket needed).
infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
addr = infos[0][4]
check(addr == (host, port), "getaddrinfo of a literal address")

# 1. epoll: non-blocking connect, EPOLLOUT, send, EPOLLIN until EOF.
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setblocking(False)
rc = s.connect_ex(addr)
check(rc in (0, errno.EINPROGRESS), f"non-blocking connect ({rc})")
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLOUT)
events = ep.poll(5)
check(events and events[0][1] & select.EPOLLOUT, "epoll reports the connection writable")
check(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0, "SO_ERROR is 0 after connect")
s.send(request)
ep.modify(s.fileno(), select.EPOLLIN | select.EPOLLET)
raw = b""
while True:
    events = ep.poll(5)
    check(events, "epoll (edge-triggered) reports data") if not raw else None
    if not events:
        break
    done = False
    while True:
        try:
            chunk = s.recv(65536)
        except BlockingIOError:
            break
        if not chunk:
            done = True
            break
        raw += chunk
    if done:
        break
check(body(raw) == expected, f"epoll fetch byte-exact ({len(raw)} bytes)")
ep.unregister(s.fileno())
ep.close()
s.close()

# 1b. EPOLLONESHOT: reported once, again only after EPOLL_CTL_MOD; level
# triggered: reported at every wait while data is queued.
s = socket.create_connection(addr, timeout=10)
s.sendall(request)
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLIN | select.EPOLLONESHOT)
first = ep.poll(5)
check(len(first) == 1 and first[0][0] == s.fileno(), "EPOLLONESHOT: the first event")
check(ep.poll(0.2) == [], "EPOLLONESHOT: nothing more before EPOLL_CTL_MOD")
ep.modify(s.fileno(), select.EPOLLIN)
check(len(ep.poll(5)) == 1 and len(ep.poll(5)) == 1, "level-triggered after EPOLL_CTL_MOD: reported at each wait")
ep.close()
s.close()

# 2. select over a ustack socket and a pipe.
r, w = os.pipe()
s = socket.create_connection(addr, timeout=10)
os.write(w, b"x")
rd, _, _ = select.select([s, r], [], [], 5)
check(r in rd and s not in rd, "select: the pipe is readable, the idle socket is not")
os.read(r, 1)
s.sendall(request)
raw = b""
while True:
    rd, _, _ = select.select([s, r], [], [], 5)
    check(s in rd, "select reports the socket readable") if not raw else None
    if s not in rd:
        break
    chunk = s.recv(65536)
    if not chunk:
        break
    raw += chunk
check(body(raw) == expected, "select fetch byte-exact")
s.close()

# 3. dup, FIONREAD, an unsupported option.
s = socket.create_connection(addr, timeout=10)
fd2 = os.dup(s.fileno())
s2 = socket.socket(fileno=fd2)
s.close()
s2.sendall(request)
select.select([s2], [], [], 5)
n = struct.unpack("i", fcntl.ioctl(s2.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
check(n > 0, f"FIONREAD on the dup ({n} bytes queued)")
s2.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10)
check(s2.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 10, "TCP_KEEPIDLE set and read back")
try:
    s2.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 5)
    check(False, "TCP_FASTOPEN should be refused")
except OSError as e:
    check(e.errno == errno.ENOPROTOOPT, "unsupported option: ENOPROTOOPT")
s2.close()

# 3b. sendfile: the request goes out of a file.
import tempfile
with tempfile.TemporaryFile() as f:
    f.write(request)
    f.flush()
    f.seek(0)
    s = socket.create_connection(addr, timeout=10)
    sent = s.sendfile(f)
    check(sent == len(request), f"sendfile sent the request ({sent} bytes)")
    raw = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        raw += chunk
    check(body(raw) == expected, "sendfile: response byte-exact")
    s.close()

# 4. IPv6 sockets are the kernel's.
s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s6.bind(("::1", 0))
check(s6.getsockname()[1] > 0, "AF_INET6 goes to the kernel")
s6.close()

# 5. fork: the child has no stack.
s = socket.create_connection(addr, timeout=10)
pid = os.fork()
if pid == 0:
    try:
        s.send(b"x")
        os._exit(1)
    except OSError as e:
        os._exit(0 if e.errno == errno.ENETDOWN else 2)
_, status = os.waitpid(pid, 0)
check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "fork: the child's send fails with ENETDOWN")
s.sendall(request)
raw = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    raw += chunk
check(body(raw) == expected, "fork: the parent's socket still works")
s.close()
print("all ok", flush=True)
