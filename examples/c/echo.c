/*
 * A C program on libustack: starts a stack on a TAP device, then
 *   1. connects to the Linux host (TCP), sends a line, reads the reply
 *      to end of stream and prints it on stdout;
 *   2. echoes one UDP datagram;
 *   3. serves one TCP echo connection, non-blocking, driven by
 *      ustack_poll, until the peer's end of stream.
 *
 *   echo TAP ADDR/PREFIX HOST-ADDR/PREFIX PORT HOST-PORT
 *
 * Built by scripts/itest/47-capi.sh:
 *   cc examples/c/echo.c -Icapi/include -Ltarget/release -lustack
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "ustack.h"

static void die(const char *what) {
    fprintf(stderr, "echo: %s: %s\n", what, strerror(errno));
    exit(1);
}

static struct sockaddr_in sin_of(const char *ip, int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

/* Waits until fd has one of events (ustack_poll, no time limit). */
static void wait_for(ustack *s, int fd, short events) {
    struct pollfd p = {.fd = fd, .events = events};
    if (ustack_poll(s, &p, 1, -1) != 1) die("poll");
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: echo TAP ADDR/PREFIX HOST-ADDR/PREFIX PORT HOST-PORT\n");
        return 2;
    }
    int port = atoi(argv[4]), host_port = atoi(argv[5]);
    char host_ip[32];
    snprintf(host_ip, sizeof host_ip, "%s", argv[3]);
    *strchr(host_ip, '/') = 0;

    ustack_config cfg = {.device = argv[1], .addr = argv[2], .host_addr = argv[3]};
    ustack *s = ustack_start(&cfg);
    if (!s) die("ustack_start");
    unsigned char mac[6];
    ustack_mac(s, mac);
    fprintf(stderr, "echo: stack up, MAC %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1],
            mac[2], mac[3], mac[4], mac[5]);

    /* Linux's errno values: a foreign address cannot be bound. */
    int t = ustack_socket(s, AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in foreign = sin_of("192.0.2.1", port);
    if (ustack_bind(s, t, (struct sockaddr *)&foreign, sizeof foreign) != -1 ||
        errno != EADDRNOTAVAIL)
        die("bind to a foreign address should fail with EADDRNOTAVAIL");
    ustack_close(s, t);
    if (ustack_close(s, t) != -1 || errno != EBADF) die("second close should be EBADF");

    /* 1. TCP client. */
    int c = ustack_socket(s, AF_INET, SOCK_STREAM, 0);
    if (c < 0) die("socket");
    int one = 1;
    if (ustack_setsockopt(s, c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one)) die("setsockopt");
    struct sockaddr_in host = sin_of(host_ip, host_port);
    if (ustack_connect(s, c, (struct sockaddr *)&host, sizeof host)) die("connect");
    struct sockaddr_in me;
    socklen_t len = sizeof me;
    if (ustack_getsockname(s, c, (struct sockaddr *)&me, &len)) die("getsockname");
    const char *hello = "hello from C over ustack\n";
    if (ustack_send(s, c, hello, strlen(hello), 0) != (ssize_t)strlen(hello)) die("send");
    if (ustack_shutdown(s, c, SHUT_WR)) die("shutdown");
    char buf[65536];
    ssize_t n;
    while ((n = ustack_recv(s, c, buf, sizeof buf, 0)) > 0) fwrite(buf, 1, n, stdout);
    if (n < 0) die("recv");
    fflush(stdout);
    ustack_close(s, c);
    fprintf(stderr, "echo: client done from port %d\n", ntohs(me.sin_port));

    /* 2. One UDP datagram echoed. */
    int u = ustack_socket(s, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = sin_of("0.0.0.0", port);
    if (ustack_bind(s, u, (struct sockaddr *)&any, sizeof any)) die("bind udp");
    fprintf(stderr, "echo: udp ready\n");
    wait_for(s, u, POLLIN);
    struct sockaddr_in from;
    len = sizeof from;
    n = ustack_recvfrom(s, u, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
    if (n < 0) die("recvfrom");
    if (ustack_sendto(s, u, buf, n, 0, (struct sockaddr *)&from, len) != n) die("sendto");
    ustack_close(s, u);
    fprintf(stderr, "echo: udp echoed %zd bytes\n", n);

    /* 3. A non-blocking TCP echo server for one connection. */
    int l = ustack_socket(s, AF_INET, SOCK_STREAM, 0);
    if (ustack_setsockopt(s, l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)) die("reuseaddr");
    if (ustack_bind(s, l, (struct sockaddr *)&any, sizeof any)) die("bind");
    if (ustack_listen(s, l, 16)) die("listen");
    if (ustack_fcntl(s, l, F_SETFL, ustack_fcntl(s, l, F_GETFL, 0) | O_NONBLOCK)) die("fcntl");
    fprintf(stderr, "echo: tcp listening\n");
    int a;
    while ((a = ustack_accept(s, l, NULL, NULL)) < 0) {
        if (errno != EAGAIN) die("accept");
        wait_for(s, l, POLLIN);
    }
    if (ustack_fcntl(s, a, F_SETFL, O_NONBLOCK)) die("fcntl");
    struct sockaddr_in peer;
    len = sizeof peer;
    if (ustack_getpeername(s, a, (struct sockaddr *)&peer, &len)) die("getpeername");
    long total = 0;
    for (;;) {
        n = ustack_recv(s, a, buf, sizeof buf, 0);
        if (n == 0) break;
        if (n < 0) {
            if (errno != EAGAIN) die("recv");
            wait_for(s, a, POLLIN);
            continue;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = ustack_send(s, a, buf + off, n - off, 0);
            if (w < 0) {
                if (errno != EAGAIN) die("send");
                wait_for(s, a, POLLOUT);
                continue;
            }
            off += w;
        }
        total += n;
    }
    int soerr = -1;
    len = sizeof soerr;
    if (ustack_getsockopt(s, a, SOL_SOCKET, SO_ERROR, &soerr, &len) || soerr != 0) die("SO_ERROR");
    ustack_close(s, a);
    ustack_close(s, l);
    fprintf(stderr, "echo: echoed %ld bytes to %s\n", total, inet_ntoa(peer.sin_addr));
    ustack_stop(s);
    return 0;
}
