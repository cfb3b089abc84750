//! The scenarios: small, deterministic sequences of calls whose every
//! outcome goes into the trace. Each runs once on Linux and once on ustack,
//! with the same peer actions.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use crate::api::{Api, Ioctl, Kind, Opt, OptName, R, errno_name};
use crate::peer::{self, PeerConn, PeerListener, PeerUdp, settle};
use crate::trace::{Bytes, BytesFrom, Ctx, Shown, Trace};

pub type Run = fn(&dyn Api, &Ctx, &mut Trace);

pub struct Scenario {
    pub name: &'static str,
    pub run: Run,
}

const IN: i16 = libc::POLLIN;
const OUT: i16 = libc::POLLOUT;
const RDHUP: i16 = libc::POLLRDHUP;
const ALL: i16 = IN | OUT | RDHUP;
const NOW: Duration = Duration::ZERO;
const WAIT: Duration = Duration::from_secs(2);

// --- small helpers, each one recorded step ---------------------------------

fn tcp(a: &dyn Api, t: &mut Trace) -> R<i32> {
    t.call("socket(STREAM)", || a.socket(Kind::Stream, false))
}

fn udp(a: &dyn Api, t: &mut Trace) -> R<i32> {
    t.call("socket(DGRAM)", || a.socket(Kind::Dgram, false))
}

fn name_of(t: &Trace, addr: SocketAddrV4) -> String {
    t.ctx.addr_name(addr)
}

fn bind(a: &dyn Api, t: &mut Trace, fd: i32, addr: SocketAddrV4) -> R<()> {
    let what = format!("bind({})", name_of(t, addr));
    t.call(what, || a.bind(fd, addr))
}

fn connect(a: &dyn Api, t: &mut Trace, fd: i32, addr: SocketAddrV4) -> R<()> {
    let what = format!("connect({})", name_of(t, addr));
    t.call(what, || a.connect(fd, addr))
}

fn listen(a: &dyn Api, t: &mut Trace, fd: i32) -> R<()> {
    t.call("listen(8)", || a.listen(fd, 8))
}

fn accept(a: &dyn Api, t: &mut Trace, fd: i32) -> R<(i32, SocketAddrV4)> {
    t.call("accept", || a.accept(fd))
}

fn send(a: &dyn Api, t: &mut Trace, fd: i32, data: &[u8]) -> R<usize> {
    let what = format!("send({:?})", String::from_utf8_lossy(data));
    t.call(what, || a.send(fd, data, 0))
}

fn flag_names(flags: i32) -> String {
    let mut v = Vec::new();
    for (f, n) in [
        (libc::MSG_TRUNC, "MSG_TRUNC"),
        (libc::MSG_PEEK, "MSG_PEEK"),
        (libc::MSG_DONTWAIT, "MSG_DONTWAIT"),
        (libc::MSG_WAITALL, "MSG_WAITALL"),
        (libc::MSG_OOB, "MSG_OOB"),
    ] {
        if flags & f != 0 {
            v.push(n);
        }
    }
    if v.is_empty() {
        "0".into()
    } else {
        v.join("|")
    }
}

fn recv(a: &dyn Api, t: &mut Trace, fd: i32, len: usize, flags: i32) -> R<Bytes> {
    let what = format!("recv({len}, {})", flag_names(flags));
    t.call(what, || {
        let mut buf = vec![0u8; len];
        a.recv(fd, &mut buf, flags)
            .map(|n| Bytes(n, buf[..n.min(len)].to_vec()))
    })
}

fn recvfrom(a: &dyn Api, t: &mut Trace, fd: i32, len: usize) -> R<BytesFrom> {
    t.call(format!("recvfrom({len})"), || {
        let mut buf = vec![0u8; len];
        a.recvfrom(fd, &mut buf, 0)
            .map(|(n, from)| BytesFrom(n, buf[..n.min(len)].to_vec(), from))
    })
}

fn sendto(a: &dyn Api, t: &mut Trace, fd: i32, data: &[u8], to: SocketAddrV4) -> R<usize> {
    let what = format!(
        "sendto({:?}, {})",
        String::from_utf8_lossy(data),
        name_of(t, to)
    );
    t.call(what, || a.sendto(fd, data, to))
}

fn poll(a: &dyn Api, t: &mut Trace, fd: i32, events: i16, timeout: Duration) -> R<i16> {
    let what = format!(
        "poll({}, {}ms)",
        crate::api::revents_name(events),
        timeout.as_millis()
    );
    t.call(what, || a.poll(fd, events, timeout))
}

fn setopt(a: &dyn Api, t: &mut Trace, fd: i32, opt: Opt) -> R<()> {
    t.call(format!("setsockopt({})", opt.show()), || {
        a.setsockopt(fd, opt)
    })
}

fn getopt(a: &dyn Api, t: &mut Trace, fd: i32, name: OptName) -> R<i64> {
    t.call(format!("getsockopt({})", name.c_name()), || {
        a.getsockopt(fd, name)
    })
}

fn so_error(a: &dyn Api, t: &mut Trace, fd: i32) -> R<Shown> {
    t.call("getsockopt(SO_ERROR)", || {
        a.getsockopt(fd, OptName::Error)
            .map(|v| Shown(errno_name(v as i32)))
    })
}

fn shutdown(a: &dyn Api, t: &mut Trace, fd: i32, how: i32) -> R<()> {
    let n = match how {
        libc::SHUT_RD => "SHUT_RD",
        libc::SHUT_WR => "SHUT_WR",
        _ => "SHUT_RDWR",
    };
    t.call(format!("shutdown({n})"), || a.shutdown(fd, how))
}

fn close(a: &dyn Api, t: &mut Trace, fd: i32) -> R<()> {
    t.call("close", || a.close(fd))
}

fn getsockname(a: &dyn Api, t: &mut Trace, fd: i32) -> R<SocketAddrV4> {
    t.call("getsockname", || a.getsockname(fd))
}

fn getpeername(a: &dyn Api, t: &mut Trace, fd: i32) -> R<SocketAddrV4> {
    t.call("getpeername", || a.getpeername(fd))
}

fn nonblock(a: &dyn Api, t: &mut Trace, fd: i32) -> R<()> {
    t.call("fcntl(O_NONBLOCK)", || a.set_nonblocking(fd, true))
}

/// A TCP connection from us to a peer listener on peer port `k`.
fn connected(a: &dyn Api, c: &Ctx, t: &mut Trace, k: u16) -> Option<(i32, PeerListener, PeerConn)> {
    let l = PeerListener::new(c.peer_port(k));
    let s = tcp(a, t).ok()?;
    connect(a, t, s, c.peer_at(k)).ok()?;
    let p = l.accept(t)?;
    Some((s, l, p))
}

/// A listener of ours on own port `k` and a peer connection to it,
/// accepted: (listener, accepted, peer).
fn accepted(a: &dyn Api, c: &Ctx, t: &mut Trace, k: u16) -> Option<(i32, i32, PeerConn)> {
    let l = tcp(a, t).ok()?;
    bind(a, t, l, c.any(k)).ok()?;
    listen(a, t, l).ok()?;
    let p = peer::connect(t, c.own_at(k))?;
    let (s, _) = accept(a, t, l).ok()?;
    Some((l, s, p))
}

// --- ordinary paths ----------------------------------------------------------

fn tcp_connect_send_recv_close(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Some((s, _l, mut p)) = connected(a, c, t, 0) else {
        return;
    };
    let _ = send(a, t, s, b"hello");
    p.read(t, 5);
    p.send(t, b"world");
    let _ = recv(a, t, s, 64, 0);
    let _ = close(a, t, s);
    p.read_to_eof(t);
}

fn tcp_accept_from_peer(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Some((l, s, mut p)) = accepted(a, c, t, 0) else {
        return;
    };
    p.send(t, b"ping");
    let _ = recv(a, t, s, 64, 0);
    let _ = send(a, t, s, b"pong");
    p.read(t, 4);
    let _ = getsockname(a, t, s);
    let _ = getpeername(a, t, s);
    let _ = close(a, t, s);
    let _ = close(a, t, l);
    p.read_to_eof(t);
}

fn tcp_nonblocking_connect(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let l = PeerListener::new(c.peer_port(0));
    let Ok(s) = tcp(a, t) else { return };
    let _ = nonblock(a, t, s);
    let _ = connect(a, t, s, c.peer_at(0));
    let _ = poll(a, t, s, OUT, WAIT);
    let _ = so_error(a, t, s);
    let _ = getpeername(a, t, s);
    let _p = l.accept(t);
    let _ = close(a, t, s);
}

fn tcp_rcvtimeo_expires(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Some((s, _l, mut p)) = connected(a, c, t, 0) else {
        return;
    };
    let _ = setopt(a, t, s, Opt::RcvTimeo(Duration::from_millis(700)));
    let _ = recv(a, t, s, 16, 0);
    p.send(t, b"late");
    let _ = recv(a, t, s, 16, 0);
    let _ = close(a, t, s);
}

fn udp_sendto_recvfrom(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let p = PeerUdp::new(c.peer_port(0));
    let Ok(u) = udp(a, t) else { return };
    let _ = bind(a, t, u, c.any(0));
    let _ = sendto(a, t, u, b"hi", c.peer_at(0));
    if let Some(from) = p.recv_from(t) {
        p.send_to(t, b"yo", from);
    }
    let _ = recvfrom(a, t, u, 64);
    let _ = close(a, t, u);
}

fn names_when_connected(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let l = PeerListener::new(c.peer_port(0));
    let Ok(s) = tcp(a, t) else { return };
    let _ = getsockname(a, t, s);
    let _ = getpeername(a, t, s);
    let _ = connect(a, t, s, c.peer_at(0));
    let _p = l.accept(t);
    let _ = getsockname(a, t, s);
    let _ = getpeername(a, t, s);
    let _ = close(a, t, s);
}

fn bind_twice_einval(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(s) = tcp(a, t) else { return };
    let _ = bind(a, t, s, c.any(0));
    let _ = bind(a, t, s, c.any(1));
    let _ = close(a, t, s);
    let Ok(u) = udp(a, t) else { return };
    let _ = bind(a, t, u, c.any(2));
    let _ = bind(a, t, u, c.any(3));
    let _ = close(a, t, u);
}

fn bind_in_use(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(l) = tcp(a, t) else { return };
    let _ = bind(a, t, l, c.any(0));
    let _ = listen(a, t, l);
    let Ok(s2) = tcp(a, t) else { return };
    let _ = bind(a, t, s2, c.any(0));
    let _ = bind(a, t, s2, c.own_at(0));
    let Ok(s3) = tcp(a, t) else { return };
    let _ = setopt(a, t, s3, Opt::ReuseAddr(true));
    let _ = bind(a, t, s3, c.any(0));
    let Ok(u1) = udp(a, t) else { return };
    let _ = bind(a, t, u1, c.any(1));
    let Ok(u2) = udp(a, t) else { return };
    let _ = bind(a, t, u2, c.any(1));
    for fd in [l, s2, s3, u1, u2] {
        let _ = close(a, t, fd);
    }
}

fn listen_on_udp(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(u) = udp(a, t) else { return };
    let _ = listen(a, t, u);
    let _ = bind(a, t, u, c.any(0));
    let _ = listen(a, t, u);
    let _ = close(a, t, u);
}

// --- errors and their reporting ----------------------------------------------

/// Peer port 9 never has a socket: a TCP connect there is refused.
fn so_error_cleared_after_refused(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(s) = tcp(a, t) else { return };
    let _ = nonblock(a, t, s);
    let _ = connect(a, t, s, c.peer_at(9));
    let _ = poll(a, t, s, ALL, WAIT);
    let _ = so_error(a, t, s);
    let _ = so_error(a, t, s);
    let _ = poll(a, t, s, ALL, NOW);
    let _ = recv(a, t, s, 16, 0);
    let _ = getpeername(a, t, s);
    let _ = close(a, t, s);
}

fn reconnect_after_refused_blocking(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let l = PeerListener::new(c.peer_port(0));
    let Ok(s) = tcp(a, t) else { return };
    let _ = connect(a, t, s, c.peer_at(9));
    let _ = connect(a, t, s, c.peer_at(9));
    let _ = so_error(a, t, s);
    let _ = connect(a, t, s, c.peer_at(0));
    let _p = l.accept(t);
    let _ = getpeername(a, t, s);
    let _ = close(a, t, s);
}

fn reconnect_after_refused_nonblocking(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(s) = tcp(a, t) else { return };
    let _ = nonblock(a, t, s);
    let _ = connect(a, t, s, c.peer_at(9));
    settle();
    // Linux: the pending error is reported by this connect (and cleared)...
    let _ = connect(a, t, s, c.peer_at(9));
    // ...and the next one starts a fresh attempt.
    let _ = connect(a, t, s, c.peer_at(9));
    settle();
    let _ = so_error(a, t, s);
    let _ = close(a, t, s);
}

fn reconnect_after_refused_so_error_read(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(s) = tcp(a, t) else { return };
    let _ = nonblock(a, t, s);
    let _ = connect(a, t, s, c.peer_at(9));
    settle();
    let _ = so_error(a, t, s);
    let _ = connect(a, t, s, c.peer_at(9));
    let _ = connect(a, t, s, c.peer_at(9));
    settle();
    let _ = so_error(a, t, s);
    let _ = close(a, t, s);
}

/// The peer kernel answers a datagram to port 9 with ICMP port unreachable.
fn udp_connected_refused(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(u) = udp(a, t) else { return };
    let _ = nonblock(a, t, u);
    let _ = connect(a, t, u, c.peer_at(9));
    let _ = send(a, t, u, b"x");
    settle();
    let _ = poll(a, t, u, IN | OUT, NOW);
    let _ = recv(a, t, u, 16, 0);
    let _ = recv(a, t, u, 16, 0);
    let _ = poll(a, t, u, IN | OUT, NOW);
    let _ = close(a, t, u);
}

fn connect_to_own_address(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    connect_locally(a, c, t, c.own_at(0));
}

fn connect_to_loopback(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    connect_locally(
        a,
        c,
        t,
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, c.own_port(0)),
    );
}

fn connect_locally(a: &dyn Api, c: &Ctx, t: &mut Trace, to: SocketAddrV4) {
    let Ok(l) = tcp(a, t) else { return };
    let _ = bind(a, t, l, c.any(0));
    let _ = listen(a, t, l);
    let Ok(s) = tcp(a, t) else { return };
    let _ = setopt(a, t, s, Opt::RcvTimeo(WAIT));
    if connect(a, t, s, to).is_err() {
        return;
    }
    let Ok((d, _)) = accept(a, t, l) else { return };
    let _ = setopt(a, t, d, Opt::RcvTimeo(WAIT));
    let _ = send(a, t, s, b"abc");
    let _ = recv(a, t, d, 16, 0);
    let _ = send(a, t, d, b"xyz");
    let _ = recv(a, t, s, 16, 0);
    let _ = getsockname(a, t, s);
    let _ = getpeername(a, t, s);
    let _ = getsockname(a, t, d);
    let _ = close(a, t, s);
    let _ = recv(a, t, d, 16, 0);
    let _ = close(a, t, d);
    let _ = close(a, t, l);
}

/// Our active close leaves port o0 in TIME-WAIT.
fn timewait(a: &dyn Api, c: &Ctx, t: &mut Trace, reuse: bool) {
    let l = PeerListener::new(c.peer_port(0));
    let Ok(s) = tcp(a, t) else { return };
    if reuse {
        let _ = setopt(a, t, s, Opt::ReuseAddr(true));
    }
    let _ = bind(a, t, s, c.any(0));
    let _ = connect(a, t, s, c.peer_at(0));
    let Some(mut p) = l.accept(t) else { return };
    let _ = close(a, t, s);
    p.read_to_eof(t);
    p.close(t);
    settle();
    let Ok(s2) = tcp(a, t) else { return };
    let _ = bind(a, t, s2, c.any(0));
    let Ok(s3) = tcp(a, t) else { return };
    let _ = setopt(a, t, s3, Opt::ReuseAddr(true));
    let _ = bind(a, t, s3, c.any(0));
    let _ = close(a, t, s2);
    let _ = close(a, t, s3);
}

fn timewait_bind(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    timewait(a, c, t, true);
}

/// Linux: SO_REUSEADDR on the new socket is not enough when the
/// TIME-WAIT connection's socket did not have it (inet_bind_conflict
/// needs sk_reuse on both).
fn timewait_bind_orig_without_reuseaddr(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    timewait(a, c, t, false);
}

fn shutdown_rd_listener_wakes_accept(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(l) = tcp(a, t) else { return };
    let _ = bind(a, t, l, c.any(0));
    let _ = listen(a, t, l);
    let (r, took) = std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            let t0 = Instant::now();
            let r = a.accept(l);
            (r, t0.elapsed())
        });
        std::thread::sleep(Duration::from_millis(700));
        let _ = shutdown(a, t, l, libc::SHUT_RD);
        h.join().expect("accept thread")
    });
    let timing = if took < crate::trace::BLOCKED_AFTER {
        "now"
    } else {
        "blocked"
    };
    t.record("accept (other thread)", &r, timing);
    let _ = accept(a, t, l);
    let _ = close(a, t, l);
}

fn after_peer_rst(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Some((s, _l, p)) = connected(a, c, t, 0) else {
        return;
    };
    p.reset(t);
    settle();
    let _ = poll(a, t, s, ALL, NOW);
    let _ = so_error(a, t, s);
    let _ = so_error(a, t, s);
    let _ = poll(a, t, s, ALL, NOW);
    let _ = recv(a, t, s, 16, 0);
    let _ = getpeername(a, t, s);
    let _ = send(a, t, s, b"x");
    let _ = close(a, t, s);
}

fn peer_fin_pollrdhup(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Some((s, _l, mut p)) = connected(a, c, t, 0) else {
        return;
    };
    p.shutdown_write(t);
    settle();
    let _ = poll(a, t, s, ALL, NOW);
    let _ = recv(a, t, s, 16, 0);
    let _ = send(a, t, s, b"x");
    p.read(t, 1);
    let _ = close(a, t, s);
}

fn our_shut_rd_pollrdhup(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Some((s, _l, _p)) = connected(a, c, t, 0) else {
        return;
    };
    let _ = shutdown(a, t, s, libc::SHUT_RD);
    let _ = poll(a, t, s, ALL, NOW);
    let _ = recv(a, t, s, 16, 0);
    let _ = close(a, t, s);
}

/// Linux: a RST in CLOSE-WAIT sets EPIPE (tcp_reset), not ECONNRESET.
fn send_after_rst_in_close_wait(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Some((s, _l, mut p)) = connected(a, c, t, 0) else {
        return;
    };
    p.shutdown_write(t);
    settle();
    p.reset(t);
    settle();
    let _ = poll(a, t, s, ALL, NOW);
    let _ = send(a, t, s, b"x");
    let _ = so_error(a, t, s);
    let _ = send(a, t, s, b"x");
    let _ = close(a, t, s);
}

fn send_recv_unconnected_and_listening(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(s) = tcp(a, t) else { return };
    let _ = send(a, t, s, b"x");
    let _ = recv(a, t, s, 16, 0);
    let Ok(l) = tcp(a, t) else { return };
    let _ = bind(a, t, l, c.any(0));
    let _ = listen(a, t, l);
    let _ = send(a, t, l, b"x");
    let _ = recv(a, t, l, 16, 0);
    let _ = close(a, t, s);
    let _ = close(a, t, l);
}

fn shutdown_unconnected_tcp(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(s) = tcp(a, t) else { return };
    let _ = shutdown(a, t, s, libc::SHUT_WR);
    let Ok(l) = tcp(a, t) else { return };
    let _ = bind(a, t, l, c.any(0));
    let _ = listen(a, t, l);
    // Linux: SHUT_WR on a listener does nothing and succeeds.
    let _ = shutdown(a, t, l, libc::SHUT_WR);
    let _ = getopt(a, t, l, OptName::AcceptConn);
    let _ = close(a, t, s);
    let _ = close(a, t, l);
}

fn getpeername_syn_sent(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(s) = tcp(a, t) else { return };
    let _ = nonblock(a, t, s);
    let _ = connect(a, t, s, SocketAddrV4::new(c.unreach, c.peer_port(0)));
    let _ = getpeername(a, t, s);
    let _ = getsockname(a, t, s);
    let _ = connect(a, t, s, SocketAddrV4::new(c.unreach, c.peer_port(0)));
    let _ = close(a, t, s);
}

/// Nobody answers ARP: after the neighbour probes (~3 s) the SYN's route
/// fails and connect reports EHOSTUNREACH.
fn connect_unreachable_blocking(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(s) = tcp(a, t) else { return };
    let _ = connect(a, t, s, SocketAddrV4::new(c.unreach, c.peer_port(0)));
    let _ = so_error(a, t, s);
    let _ = close(a, t, s);
}

/// SO_SNDTIMEO bounds a blocking connect: EINPROGRESS when it expires.
fn connect_sndtimeo_expires(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(s) = tcp(a, t) else { return };
    let _ = setopt(a, t, s, Opt::SndTimeo(Duration::from_millis(700)));
    let _ = connect(a, t, s, SocketAddrV4::new(c.unreach, c.peer_port(0)));
    let _ = getpeername(a, t, s);
    let _ = close(a, t, s);
}

fn udp_broadcast(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(u) = udp(a, t) else { return };
    let lbcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, c.peer_port(0));
    let bcast = SocketAddrV4::new(c.bcast, c.peer_port(0));
    let _ = sendto(a, t, u, b"b", bcast);
    let _ = sendto(a, t, u, b"b", lbcast);
    let _ = setopt(a, t, u, Opt::Broadcast(true));
    let _ = sendto(a, t, u, b"b", bcast);
    let _ = sendto(a, t, u, b"b", lbcast);
    let _ = close(a, t, u);
}

fn udp_reuseaddr_same_port(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(u1) = udp(a, t) else { return };
    let _ = setopt(a, t, u1, Opt::ReuseAddr(true));
    let _ = bind(a, t, u1, c.any(0));
    let Ok(u2) = udp(a, t) else { return };
    let _ = setopt(a, t, u2, Opt::ReuseAddr(true));
    let _ = bind(a, t, u2, c.any(0));
    let Ok(u3) = udp(a, t) else { return };
    let _ = bind(a, t, u3, c.any(0));
    for fd in [u1, u2, u3] {
        let _ = close(a, t, fd);
    }
}

fn udp_shutdown(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(u) = udp(a, t) else { return };
    let _ = connect(a, t, u, c.peer_at(0));
    let _ = shutdown(a, t, u, libc::SHUT_RDWR);
    let Ok(v) = udp(a, t) else { return };
    let _ = bind(a, t, v, c.any(1));
    let _ = shutdown(a, t, v, libc::SHUT_RDWR);
    let Ok(w) = udp(a, t) else { return };
    let _ = shutdown(a, t, w, libc::SHUT_WR);
    for fd in [u, v, w] {
        let _ = close(a, t, fd);
    }
}

fn accept_on_udp(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(u) = udp(a, t) else { return };
    let _ = accept(a, t, u);
    let _ = bind(a, t, u, c.any(0));
    let _ = accept(a, t, u);
    let _ = close(a, t, u);
}

fn udp_disconnect_af_unspec(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let p = PeerUdp::new(c.peer_port(0));
    let Ok(u) = udp(a, t) else { return };
    let _ = bind(a, t, u, c.any(0));
    let _ = connect(a, t, u, c.peer_at(0));
    let _ = getpeername(a, t, u);
    let _ = getsockname(a, t, u);
    let _ = t.call("connect(AF_UNSPEC)", || a.disconnect(u));
    let _ = getpeername(a, t, u);
    let _ = getsockname(a, t, u);
    let _ = sendto(a, t, u, b"after", c.peer_at(0));
    let _ = p.recv_from(t);
    let _ = close(a, t, u);
}

// --- options -----------------------------------------------------------------

fn udp_msg_trunc(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let p = PeerUdp::new(c.peer_port(0));
    let Ok(u) = udp(a, t) else { return };
    let _ = bind(a, t, u, c.any(0));
    p.send_to(t, b"0123456789", c.own_at(0));
    p.send_to(t, b"abcdefgh", c.own_at(0));
    settle();
    let _ = recv(a, t, u, 4, 0);
    let _ = recv(a, t, u, 4, libc::MSG_TRUNC);
    let _ = recv(a, t, u, 4, libc::MSG_DONTWAIT);
    let _ = close(a, t, u);
}

/// MSG_WAITALL, MSG_OOB (urgent data in line: EINVAL) and MSG_DONTWAIT on
/// a stream's receive.
fn tcp_recv_flags(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Some((s, _l, mut p)) = connected(a, c, t, 0) else {
        return;
    };
    let _ = recv(a, t, s, 8, libc::MSG_DONTWAIT);
    let _ = recv(a, t, s, 8, libc::MSG_WAITALL | libc::MSG_DONTWAIT);
    p.send(t, b"abc");
    settle();
    let _ = recv(a, t, s, 8, libc::MSG_OOB);
    let _ = recv(a, t, s, 8, libc::MSG_WAITALL | libc::MSG_DONTWAIT);
    p.send(t, b"0123456789");
    settle();
    let _ = recv(a, t, s, 4, libc::MSG_WAITALL | libc::MSG_PEEK);
    let _ = recv(a, t, s, 4, libc::MSG_WAITALL);
    p.shutdown_write(t);
    settle();
    // Six bytes and the FIN: the wait for 64 ends at end of stream.
    let _ = recv(a, t, s, 64, libc::MSG_WAITALL);
    let _ = recv(a, t, s, 64, libc::MSG_WAITALL);
    let _ = close(a, t, s);
}

/// MSG_PEEK on datagrams, and MSG_OOB/MSG_WAITALL, which UDP ignores.
fn udp_recv_flags(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let p = PeerUdp::new(c.peer_port(0));
    let Ok(u) = udp(a, t) else { return };
    let _ = bind(a, t, u, c.any(0));
    p.send_to(t, b"0123456789", c.own_at(0));
    p.send_to(t, b"abcdefgh", c.own_at(0));
    settle();
    let _ = recv(a, t, u, 4, libc::MSG_PEEK);
    let _ = recv(a, t, u, 64, libc::MSG_PEEK);
    let _ = recv(a, t, u, 64, libc::MSG_OOB);
    let _ = recv(a, t, u, 64, libc::MSG_WAITALL);
    let _ = recv(a, t, u, 64, libc::MSG_PEEK | libc::MSG_DONTWAIT);
    let _ = close(a, t, u);
}

fn so_type(a: &dyn Api, _c: &Ctx, t: &mut Trace) {
    let Ok(s) = tcp(a, t) else { return };
    let _ = getopt(a, t, s, OptName::Type);
    let Ok(u) = udp(a, t) else { return };
    let _ = getopt(a, t, u, OptName::Type);
    let _ = close(a, t, s);
    let _ = close(a, t, u);
}

fn so_acceptconn(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(s) = tcp(a, t) else { return };
    let _ = getopt(a, t, s, OptName::AcceptConn);
    let _ = bind(a, t, s, c.any(0));
    let _ = listen(a, t, s);
    let _ = getopt(a, t, s, OptName::AcceptConn);
    let Ok(u) = udp(a, t) else { return };
    let _ = getopt(a, t, u, OptName::AcceptConn);
    let _ = close(a, t, s);
    let _ = close(a, t, u);
}

fn so_rcvlowat(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Some((s, _l, mut p)) = connected(a, c, t, 0) else {
        return;
    };
    let _ = setopt(a, t, s, Opt::RcvLowat(10));
    let _ = getopt(a, t, s, OptName::RcvLowat);
    p.send(t, b"1234");
    settle();
    let _ = poll(a, t, s, IN, NOW);
    p.send(t, b"567890");
    settle();
    let _ = poll(a, t, s, IN, NOW);
    let _ = recv(a, t, s, 64, 0);
    let _ = close(a, t, s);
}

fn so_reuseport_listeners(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let mut fds = Vec::new();
    for reuse in [true, true, false] {
        let Ok(s) = tcp(a, t) else { return };
        fds.push(s);
        if reuse {
            let _ = setopt(a, t, s, Opt::ReusePort(true));
        }
        if bind(a, t, s, c.any(0)).is_ok() {
            let _ = listen(a, t, s);
        }
    }
    let _ = peer::connect(t, c.own_at(0));
    for fd in fds {
        let _ = close(a, t, fd);
    }
}

fn tcp_maxseg(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let l = PeerListener::new(c.peer_port(0));
    let Ok(s) = tcp(a, t) else { return };
    let _ = setopt(a, t, s, Opt::MaxSeg(1000));
    let _ = getopt(a, t, s, OptName::MaxSeg);
    let _ = connect(a, t, s, c.peer_at(0));
    let _p = l.accept(t);
    // The effective MSS: at most what was set (Linux also takes the
    // timestamp option off it).
    let _ = t.call("getsockopt(TCP_MAXSEG) after connect", || {
        a.getsockopt(s, OptName::MaxSeg).map(|v| {
            Shown(if (500..=1000).contains(&v) {
                "500..=1000".into()
            } else {
                v.to_string()
            })
        })
    });
    let _ = close(a, t, s);
}

/// Reads the default, sets each value, reads it back.
fn opt_readback(a: &dyn Api, t: &mut Trace, kind: Kind, name: OptName, sets: &[Opt]) {
    let Ok(s) = t.call(format!("socket({kind:?})"), || a.socket(kind, false)) else {
        return;
    };
    let _ = getopt(a, t, s, name);
    for &o in sets {
        let _ = setopt(a, t, s, o);
        let _ = getopt(a, t, s, name);
    }
    let _ = close(a, t, s);
}

fn opt_nodelay(a: &dyn Api, _c: &Ctx, t: &mut Trace) {
    opt_readback(
        a,
        t,
        Kind::Stream,
        OptName::NoDelay,
        &[Opt::NoDelay(true), Opt::NoDelay(false)],
    );
}
fn opt_cork(a: &dyn Api, _c: &Ctx, t: &mut Trace) {
    opt_readback(
        a,
        t,
        Kind::Stream,
        OptName::Cork,
        &[Opt::Cork(true), Opt::Cork(false)],
    );
}
fn opt_quickack(a: &dyn Api, _c: &Ctx, t: &mut Trace) {
    opt_readback(
        a,
        t,
        Kind::Stream,
        OptName::QuickAck,
        &[Opt::QuickAck(false), Opt::QuickAck(true)],
    );
}
fn opt_user_timeout(a: &dyn Api, _c: &Ctx, t: &mut Trace) {
    opt_readback(
        a,
        t,
        Kind::Stream,
        OptName::UserTimeout,
        &[Opt::UserTimeout(5000), Opt::UserTimeout(0)],
    );
}
/// Linux rounds the seconds to a number of SYN-ACK retransmissions and
/// reports their total time: only zero / non-zero is compared.
fn opt_defer_accept(a: &dyn Api, _c: &Ctx, t: &mut Trace) {
    let Ok(s) = tcp(a, t) else { return };
    let get = |t: &mut Trace| {
        let _ = t.call("getsockopt(TCP_DEFER_ACCEPT)", || {
            a.getsockopt(s, OptName::DeferAccept).map(|v| {
                Shown(if v == 0 {
                    "0".into()
                } else {
                    "non-zero".into()
                })
            })
        });
    };
    get(t);
    let _ = setopt(a, t, s, Opt::DeferAccept(5));
    get(t);
    let _ = setopt(a, t, s, Opt::DeferAccept(0));
    get(t);
    let _ = close(a, t, s);
}
fn opt_ip_tos(a: &dyn Api, _c: &Ctx, t: &mut Trace) {
    opt_readback(
        a,
        t,
        Kind::Stream,
        OptName::Tos,
        &[Opt::Tos(0x10), Opt::Tos(0)],
    );
}
fn opt_ip_ttl(a: &dyn Api, _c: &Ctx, t: &mut Trace) {
    opt_readback(a, t, Kind::Stream, OptName::Ttl, &[Opt::Ttl(33)]);
    opt_readback(a, t, Kind::Dgram, OptName::Ttl, &[Opt::Ttl(7)]);
}
fn opt_keepalive_tuning(a: &dyn Api, _c: &Ctx, t: &mut Trace) {
    opt_readback(
        a,
        t,
        Kind::Stream,
        OptName::KeepIdle,
        &[Opt::KeepIdle(30), Opt::KeepIdle(0), Opt::KeepIdle(32_768)],
    );
    opt_readback(
        a,
        t,
        Kind::Stream,
        OptName::KeepIntvl,
        &[
            Opt::KeepIntvl(5),
            Opt::KeepIntvl(-1),
            Opt::KeepIntvl(32_767),
        ],
    );
    opt_readback(
        a,
        t,
        Kind::Stream,
        OptName::KeepCnt,
        &[Opt::KeepCnt(3), Opt::KeepCnt(0), Opt::KeepCnt(128)],
    );
    opt_readback(a, t, Kind::Dgram, OptName::KeepCnt, &[Opt::KeepCnt(3)]);
}
fn opt_linger(a: &dyn Api, _c: &Ctx, t: &mut Trace) {
    opt_readback(
        a,
        t,
        Kind::Stream,
        OptName::Linger,
        &[Opt::Linger(Some(3)), Opt::Linger(None)],
    );
}
fn opt_reuseaddr(a: &dyn Api, _c: &Ctx, t: &mut Trace) {
    opt_readback(
        a,
        t,
        Kind::Stream,
        OptName::ReuseAddr,
        &[Opt::ReuseAddr(true)],
    );
}
fn opt_reuseport(a: &dyn Api, _c: &Ctx, t: &mut Trace) {
    opt_readback(
        a,
        t,
        Kind::Stream,
        OptName::ReusePort,
        &[Opt::ReusePort(true)],
    );
}
fn opt_broadcast(a: &dyn Api, _c: &Ctx, t: &mut Trace) {
    opt_readback(
        a,
        t,
        Kind::Dgram,
        OptName::Broadcast,
        &[Opt::Broadcast(true), Opt::Broadcast(false)],
    );
}

fn readv_writev(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Some((s, _l, mut p)) = connected(a, c, t, 0) else {
        return;
    };
    let _ = t.call("writev(\"ab\", \"cde\")", || a.writev(s, &[b"ab", b"cde"]));
    p.read(t, 5);
    p.send(t, b"123456");
    settle();
    let _ = t.call("readv(2, 10)", || {
        let (mut x, mut y) = ([0u8; 2], [0u8; 10]);
        let n = a.readv(s, &mut [&mut x, &mut y])?;
        let second = n.saturating_sub(2).min(10);
        Ok(Shown(format!(
            "{n} {:?}+{:?}",
            String::from_utf8_lossy(&x[..n.min(2)]),
            String::from_utf8_lossy(&y[..second])
        )))
    });
    let _ = close(a, t, s);
}

fn dup_survives_close(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Some((s, _l, mut p)) = connected(a, c, t, 0) else {
        return;
    };
    let Ok(d) = t.call("dup", || a.dup(s)) else {
        return;
    };
    let _ = close(a, t, s);
    let _ = send(a, t, d, b"x");
    p.read(t, 1);
    let _ = getpeername(a, t, d);
    let _ = close(a, t, d);
    p.read_to_eof(t);
}

fn fionread_tcp(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Some((s, _l, mut p)) = connected(a, c, t, 0) else {
        return;
    };
    let _ = t.call("ioctl(FIONREAD)", || a.ioctl(s, Ioctl::FionRead));
    p.send(t, b"seven!!");
    settle();
    let _ = t.call("ioctl(FIONREAD)", || a.ioctl(s, Ioctl::FionRead));
    let _ = recv(a, t, s, 3, 0);
    let _ = t.call("ioctl(FIONREAD)", || a.ioctl(s, Ioctl::FionRead));
    let _ = close(a, t, s);
}

fn fionread_udp(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let p = PeerUdp::new(c.peer_port(0));
    let Ok(u) = udp(a, t) else { return };
    let _ = bind(a, t, u, c.any(0));
    let _ = t.call("ioctl(FIONREAD)", || a.ioctl(u, Ioctl::FionRead));
    p.send_to(t, b"12345", c.own_at(0));
    p.send_to(t, b"123456789", c.own_at(0));
    settle();
    // Linux: the size of the next datagram, not the total.
    let _ = t.call("ioctl(FIONREAD)", || a.ioctl(u, Ioctl::FionRead));
    let _ = close(a, t, u);
}

fn siocoutq(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Some((s, _l, mut p)) = connected(a, c, t, 0) else {
        return;
    };
    let _ = t.call("ioctl(SIOCOUTQ)", || a.ioctl(s, Ioctl::SiocOutq));
    let _ = send(a, t, s, b"data");
    p.read(t, 4);
    settle();
    let _ = t.call("ioctl(SIOCOUTQ)", || a.ioctl(s, Ioctl::SiocOutq));
    let _ = close(a, t, s);
    let Ok(l) = tcp(a, t) else { return };
    let _ = bind(a, t, l, c.any(0));
    let _ = listen(a, t, l);
    let _ = t.call("ioctl(FIONREAD) on listener", || {
        a.ioctl(l, Ioctl::FionRead)
    });
    let _ = t.call("ioctl(SIOCOUTQ) on listener", || {
        a.ioctl(l, Ioctl::SiocOutq)
    });
    let _ = close(a, t, l);
}

fn nonblocking_socket_flag(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let l = PeerListener::new(c.peer_port(0));
    let Ok(s) = t.call("socket(STREAM|SOCK_NONBLOCK)", || {
        a.socket(Kind::Stream, true)
    }) else {
        return;
    };
    let _ = t.call("fcntl(F_GETFL) & O_NONBLOCK", || a.nonblocking(s));
    let _ = connect(a, t, s, c.peer_at(0));
    let _ = poll(a, t, s, OUT, WAIT);
    let _ = so_error(a, t, s);
    let _p = l.accept(t);
    let _ = recv(a, t, s, 16, 0);
    let _ = close(a, t, s);
    let Ok(u) = t.call("socket(DGRAM|SOCK_NONBLOCK)", || {
        a.socket(Kind::Dgram, true)
    }) else {
        return;
    };
    let _ = bind(a, t, u, c.any(1));
    let _ = recv(a, t, u, 16, 0);
    let _ = close(a, t, u);
}

fn accept4_nonblock(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(l) = tcp(a, t) else { return };
    let _ = bind(a, t, l, c.any(0));
    let _ = listen(a, t, l);
    let Some(_p) = peer::connect(t, c.own_at(0)) else {
        return;
    };
    let Ok((s, _)) = t.call("accept4(SOCK_NONBLOCK)", || a.accept4(l, true)) else {
        return;
    };
    let _ = t.call("fcntl(F_GETFL) & O_NONBLOCK", || a.nonblocking(s));
    let _ = recv(a, t, s, 16, 0);
    let _ = close(a, t, s);
    let _ = close(a, t, l);
}

/// O_NONBLOCK of a listener is not inherited by accept().
fn accept_nonblocking_listener(a: &dyn Api, c: &Ctx, t: &mut Trace) {
    let Ok(l) = tcp(a, t) else { return };
    let _ = bind(a, t, l, c.any(0));
    let _ = listen(a, t, l);
    let _ = nonblock(a, t, l);
    let _ = accept(a, t, l);
    let _ = poll(a, t, l, IN, NOW);
    let Some(_p) = peer::connect(t, c.own_at(0)) else {
        return;
    };
    let _ = poll(a, t, l, IN, WAIT);
    let Ok((s, _)) = accept(a, t, l) else { return };
    let _ = t.call("fcntl(F_GETFL) & O_NONBLOCK", || a.nonblocking(s));
    let _ = close(a, t, s);
    let _ = close(a, t, l);
}

macro_rules! scenarios {
    ($($f:ident),* $(,)?) => {
        vec![$(Scenario { name: stringify!($f), run: $f }),*]
    };
}

/// Every scenario, in run order.
pub fn all() -> Vec<Scenario> {
    scenarios![
        tcp_connect_send_recv_close,
        tcp_accept_from_peer,
        tcp_nonblocking_connect,
        getpeername_syn_sent,
        tcp_rcvtimeo_expires,
        udp_sendto_recvfrom,
        names_when_connected,
        bind_twice_einval,
        bind_in_use,
        listen_on_udp,
        so_error_cleared_after_refused,
        reconnect_after_refused_blocking,
        reconnect_after_refused_nonblocking,
        reconnect_after_refused_so_error_read,
        udp_connected_refused,
        connect_to_own_address,
        connect_to_loopback,
        timewait_bind,
        timewait_bind_orig_without_reuseaddr,
        shutdown_rd_listener_wakes_accept,
        after_peer_rst,
        peer_fin_pollrdhup,
        our_shut_rd_pollrdhup,
        send_after_rst_in_close_wait,
        send_recv_unconnected_and_listening,
        shutdown_unconnected_tcp,
        connect_unreachable_blocking,
        connect_sndtimeo_expires,
        udp_broadcast,
        udp_reuseaddr_same_port,
        udp_shutdown,
        accept_on_udp,
        udp_disconnect_af_unspec,
        udp_msg_trunc,
        tcp_recv_flags,
        udp_recv_flags,
        so_type,
        so_acceptconn,
        so_rcvlowat,
        so_reuseport_listeners,
        tcp_maxseg,
        opt_nodelay,
        opt_cork,
        opt_quickack,
        opt_user_timeout,
        opt_defer_accept,
        opt_ip_tos,
        opt_ip_ttl,
        opt_keepalive_tuning,
        opt_linger,
        opt_reuseaddr,
        opt_reuseport,
        opt_broadcast,
        readv_writev,
        dup_survives_close,
        fionread_tcp,
        fionread_udp,
        siocoutq,
        nonblocking_socket_flag,
        accept4_nonblock,
        accept_nonblocking_listener,
    ]
}
