//! The socket calls behave as Linux's do where programs can tell: pending
//! errors reported once, reconnecting after a failure, poll flags after a
//! reset or a half close, shutdown of listeners and datagram sockets,
//! EPIPE, dup, scatter/gather, MSG_TRUNC, ioctl and select. (The
//! differential test in scripts/itest/33-socket-diff.sh compares the same
//! against the Linux kernel itself.)

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::thread;
use std::time::{Duration, Instant};

use sockets_api::events::{POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP};
use sockets_api::{
    Domain, Fd, FdSet, Ioctl, PollFd, Protocol, Shutdown, SockOpt, SockOptName, SockOptValue,
    Stack, StackBuilder, Type,
};

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const ALL: i16 = POLLIN | POLLOUT | POLLRDHUP;

fn pair() -> (Stack, Stack) {
    StackBuilder::memory_pair(
        StackBuilder::memory()
            .addr("10.0.0.1/24".parse().unwrap())
            .seed(11),
        StackBuilder::memory()
            .addr("10.0.0.2/24".parse().unwrap())
            .seed(12),
    )
    .unwrap()
}

fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.unwrap_err().raw_os_error().expect("an errno")
}

fn tcp(s: &Stack) -> Fd {
    s.socket(Domain::Inet, Type::Stream, Protocol::Default)
        .unwrap()
}

fn udp(s: &Stack) -> Fd {
    s.socket(Domain::Inet, Type::Dgram, Protocol::Default)
        .unwrap()
}

fn revents(s: &Stack, fd: Fd, events: i16) -> i16 {
    let mut p = [PollFd::new(fd, events)];
    s.poll(&mut p, Some(Duration::ZERO)).unwrap();
    p[0].revents
}

fn so_error(s: &Stack, fd: Fd) -> Option<i32> {
    match s.getsockopt(fd, SockOptName::Error).unwrap() {
        SockOptValue::Error(e) => e,
        other => panic!("{other:?}"),
    }
}

/// Waits until `fd` reports one of `events`.
fn wait_for(s: &Stack, fd: Fd, events: i16) -> i16 {
    let mut p = [PollFd::new(fd, events)];
    assert_eq!(s.poll(&mut p, Some(Duration::from_secs(5))).unwrap(), 1);
    p[0].revents
}

/// A listener on `a` and a connected pair: (client fd on b, server fd on a).
fn connected(a: &Stack, b: &Stack, port: u16) -> (Fd, Fd, Fd) {
    let l = tcp(a);
    a.bind(l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
        .unwrap();
    a.listen(l, 8).unwrap();
    let c = tcp(b);
    b.connect(c, SocketAddrV4::new(A, port)).unwrap();
    let (s, _) = a.accept(l).unwrap();
    (c, s, l)
}

#[test]
fn refused_connect_reports_its_error_once_then_starts_afresh() {
    let (_a, b) = pair();
    let dst = SocketAddrV4::new(A, 4000); // nobody listens
    // Blocking: ECONNREFUSED, and again on the next attempt (a fresh one).
    let fd = tcp(&b);
    assert_eq!(errno(b.connect(fd, dst)), libc::ECONNREFUSED);
    assert_eq!(so_error(&b, fd), None);
    assert_eq!(errno(b.connect(fd, dst)), libc::ECONNREFUSED);

    // Non-blocking: EINPROGRESS, POLLERR until SO_ERROR is read once.
    let fd = tcp(&b);
    b.set_nonblocking(fd, true).unwrap();
    assert_eq!(errno(b.connect(fd, dst)), libc::EINPROGRESS);
    wait_for(&b, fd, POLLOUT);
    assert_eq!(
        revents(&b, fd, ALL),
        POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDHUP
    );
    assert_eq!(so_error(&b, fd), Some(libc::ECONNREFUSED));
    assert_eq!(so_error(&b, fd), None);
    assert_eq!(revents(&b, fd, ALL), POLLIN | POLLOUT | POLLHUP | POLLRDHUP);
    // The error was read: connect reports ECONNABORTED once, then a fresh
    // attempt starts (__inet_stream_connect).
    assert_eq!(errno(b.connect(fd, dst)), libc::ECONNABORTED);
    assert_eq!(errno(b.connect(fd, dst)), libc::EINPROGRESS);
    wait_for(&b, fd, POLLOUT);
    // Not read this time: the second connect reports it.
    assert_eq!(errno(b.connect(fd, dst)), libc::ECONNREFUSED);
    assert_eq!(so_error(&b, fd), None);
}

#[test]
fn after_a_reset_poll_error_once_then_end_of_stream() {
    let (a, b) = pair();
    let (c, s, _l) = connected(&a, &b, 4001);
    a.setsockopt(s, SockOpt::Linger(Some(Duration::ZERO)))
        .unwrap();
    a.close(s).unwrap(); // RST
    wait_for(&b, c, POLLIN);
    assert_eq!(
        revents(&b, c, ALL),
        POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDHUP
    );
    assert_eq!(errno(b.getpeername(c)), libc::ENOTCONN);
    assert_eq!(so_error(&b, c), Some(libc::ECONNRESET));
    assert_eq!(so_error(&b, c), None);
    assert_eq!(revents(&b, c, ALL), POLLIN | POLLOUT | POLLHUP | POLLRDHUP);
    assert_eq!(b.recv(c, &mut [0u8; 8]).unwrap(), 0);
    assert_eq!(errno(b.send(c, b"x")), libc::EPIPE);
    // Linux: a connected socket stays connected for connect().
    assert_eq!(
        errno(b.connect(c, SocketAddrV4::new(A, 4001))),
        libc::EISCONN
    );
}

#[test]
fn reset_reported_by_the_first_call_that_sees_it() {
    let (a, b) = pair();
    let (c, s, _l) = connected(&a, &b, 4002);
    a.setsockopt(s, SockOpt::Linger(Some(Duration::ZERO)))
        .unwrap();
    a.close(s).unwrap();
    wait_for(&b, c, POLLIN);
    assert_eq!(errno(b.recv(c, &mut [0u8; 8])), libc::ECONNRESET);
    assert_eq!(b.recv(c, &mut [0u8; 8]).unwrap(), 0);
    assert_eq!(so_error(&b, c), None);
    assert_eq!(errno(b.send(c, b"x")), libc::EPIPE);
}

#[test]
fn half_closes_show_as_rdhup() {
    let (a, b) = pair();
    let (c, s, _l) = connected(&a, &b, 4003);
    assert_eq!(revents(&b, c, ALL), POLLOUT);
    // Our own SHUT_RD.
    b.shutdown(c, Shutdown::Read).unwrap();
    assert_eq!(revents(&b, c, ALL), POLLIN | POLLOUT | POLLRDHUP);
    assert_eq!(b.recv(c, &mut [0u8; 8]).unwrap(), 0);
    // The peer's FIN.
    a.shutdown(s, Shutdown::Write).unwrap();
    let (c2, s2, _l2) = connected(&a, &b, 4004);
    a.shutdown(s2, Shutdown::Write).unwrap();
    wait_for(&b, c2, POLLRDHUP);
    assert_eq!(revents(&b, c2, ALL), POLLIN | POLLOUT | POLLRDHUP);
    // Both ways: hung up.
    b.shutdown(c2, Shutdown::Write).unwrap();
    assert_eq!(revents(&b, c2, ALL) & POLLHUP, POLLHUP);
    let _ = (s, c);
}

#[test]
fn shutdown_of_a_listener_wakes_accept_with_einval() {
    let (a, b) = pair();
    let l = tcp(&a);
    a.bind(l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 4010))
        .unwrap();
    a.listen(l, 8).unwrap();
    let a2 = a.clone();
    let waiter = thread::spawn(move || {
        let t = Instant::now();
        (a2.accept(l).map(|_| ()), t.elapsed())
    });
    thread::sleep(Duration::from_millis(100));
    a.shutdown(l, Shutdown::Write).unwrap(); // SHUT_WR alone: still listening
    assert!(!waiter.is_finished());
    a.shutdown(l, Shutdown::Both).unwrap();
    let (r, _) = waiter.join().unwrap();
    assert_eq!(errno(r), libc::EINVAL);
    assert_eq!(errno(a.accept(l)), libc::EINVAL);
    // Nobody listens any more; the bound socket may listen again.
    let c = tcp(&b);
    assert_eq!(
        errno(b.connect(c, SocketAddrV4::new(A, 4010))),
        libc::ECONNREFUSED
    );
    a.listen(l, 8).unwrap();
    b.connect(c, SocketAddrV4::new(A, 4010)).unwrap();
    a.accept(l).unwrap();
}

#[test]
fn epipe_and_enotconn_where_linux_gives_them() {
    let (a, b) = pair();
    let fd = tcp(&b);
    assert_eq!(errno(b.send(fd, b"x")), libc::EPIPE);
    assert_eq!(errno(b.recv(fd, &mut [0u8; 4])), libc::ENOTCONN);
    assert_eq!(errno(b.shutdown(fd, Shutdown::Both)), libc::ENOTCONN);
    let u = udp(&b);
    assert_eq!(errno(b.accept(u)), libc::EOPNOTSUPP);
    assert_eq!(errno(b.listen(u, 1)), libc::EOPNOTSUPP);
    assert_eq!(errno(b.shutdown(u, Shutdown::Both)), libc::ENOTCONN);
    // SYN-SENT has no peer yet.
    let (c, _s, _l) = connected(&a, &b, 4020);
    assert!(b.getpeername(c).is_ok());
}

#[test]
fn dup_shares_one_socket() {
    let (a, b) = pair();
    let (c, s, _l) = connected(&a, &b, 4030);
    let d = b.dup(c).unwrap();
    assert_ne!(c, d);
    b.set_nonblocking(d, true).unwrap();
    // O_NONBLOCK is shared, as file status flags are.
    assert_eq!(errno(b.recv(c, &mut [0u8; 4])), libc::EAGAIN);
    b.close(c).unwrap();
    assert_eq!(errno(b.send(c, b"x")), libc::EBADF);
    assert_eq!(b.send(d, b"ping").unwrap(), 4);
    let mut buf = [0u8; 8];
    assert_eq!(a.recv(s, &mut buf).unwrap(), 4);
    // Closing the last descriptor closes the connection: the peer sees FIN.
    b.close(d).unwrap();
    assert_eq!(a.recv(s, &mut buf).unwrap(), 0);
    assert_eq!(errno(b.dup(d)), libc::EBADF);
}

#[test]
fn udp_broadcast_needs_so_broadcast() {
    let (_a, b) = pair();
    let u = udp(&b);
    for dst in [Ipv4Addr::BROADCAST, Ipv4Addr::new(10, 0, 0, 255)] {
        let to = SocketAddrV4::new(dst, 9);
        assert_eq!(errno(b.sendto(u, b"x", to)), libc::EACCES);
        assert_eq!(errno(b.connect(u, to)), libc::EACCES);
    }
    b.setsockopt(u, SockOpt::Broadcast(true)).unwrap();
    assert_eq!(
        b.getsockopt(u, SockOptName::Broadcast).unwrap(),
        SockOptValue::Opt(SockOpt::Broadcast(true))
    );
    b.sendto(u, b"x", SocketAddrV4::new(Ipv4Addr::BROADCAST, 9))
        .unwrap();
}

#[test]
fn connected_udp_shutdown_disconnect_and_truncation() {
    let (a, b) = pair();
    let server = udp(&a);
    a.bind(server, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5300))
        .unwrap();
    let u = udp(&b);
    b.connect(u, SocketAddrV4::new(A, 5300)).unwrap();
    // Gathered into one datagram.
    let n = b
        .writev(u, &[IoSlice::new(b"hello, "), IoSlice::new(b"world")])
        .unwrap();
    assert_eq!(n, 12);
    let mut small = [0u8; 5];
    let (n, from) = a
        .recvfrom_flags(server, &mut small, libc::MSG_TRUNC)
        .unwrap();
    assert_eq!((n, &small[..]), (12, &b"hello"[..]));
    // recvmsg scatters and reports truncation.
    a.sendto(server, b"0123456789", from).unwrap();
    let (mut x, mut y) = ([0u8; 4], [0u8; 4]);
    let m = b
        .recvmsg(
            u,
            &mut [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)],
            0,
        )
        .unwrap();
    assert_eq!((m.len, m.truncated), (8, true));
    assert_eq!((&x, &y), (b"0123", b"4567"));
    // FIONREAD is the next datagram's length.
    a.sendto(server, b"abc", from).unwrap();
    b.set_nonblocking(u, true).unwrap();
    let t = Instant::now();
    while b.ioctl(u, Ioctl::FionRead).unwrap() == 0 {
        assert!(t.elapsed() < Duration::from_secs(5));
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(b.ioctl(u, Ioctl::FionRead).unwrap(), 3);
    assert_eq!(b.recv(u, &mut [0u8; 8]).unwrap(), 3);
    // Shutdown of a connected datagram socket: reads end once empty.
    b.shutdown(u, Shutdown::Read).unwrap();
    assert_eq!(b.recv(u, &mut [0u8; 8]).unwrap(), 0);
    assert_eq!(revents(&b, u, ALL), POLLIN | POLLOUT | POLLRDHUP);
    // AF_UNSPEC dissolves the association.
    b.disconnect(u).unwrap();
    assert_eq!(errno(b.getpeername(u)), libc::ENOTCONN);
    assert_eq!(errno(b.send(u, b"x")), libc::EDESTADDRREQ);
}

#[test]
fn connected_udp_port_unreachable_is_reported_once() {
    let (_a, b) = pair();
    let u = udp(&b);
    b.connect(u, SocketAddrV4::new(A, 5399)).unwrap(); // closed port
    b.send(u, b"x").unwrap();
    let r = wait_for(&b, u, POLLIN);
    assert_eq!(r & POLLERR, POLLERR);
    b.set_nonblocking(u, true).unwrap();
    assert_eq!(errno(b.recv(u, &mut [0u8; 8])), libc::ECONNREFUSED);
    assert_eq!(errno(b.recv(u, &mut [0u8; 8])), libc::EAGAIN);
    assert_eq!(revents(&b, u, POLLIN) & POLLERR, 0);
}

#[test]
fn scatter_gather_rcvlowat_fionread_and_outq_on_streams() {
    let (a, b) = pair();
    let (c, s, _l) = connected(&a, &b, 4040);
    b.writev(
        c,
        &[
            IoSlice::new(b"abc"),
            IoSlice::new(b""),
            IoSlice::new(b"defgh"),
        ],
    )
    .unwrap();
    let t = Instant::now();
    while a.ioctl(s, Ioctl::FionRead).unwrap() < 8 {
        assert!(t.elapsed() < Duration::from_secs(5));
        thread::sleep(Duration::from_millis(5));
    }
    // SO_RCVLOWAT: not readable below the mark.
    a.setsockopt(s, SockOpt::RcvLowat(10)).unwrap();
    assert_eq!(revents(&a, s, POLLIN), 0);
    // A read that may not wait still returns what is there (tcp_recvmsg).
    let mut peek = [0u8; 16];
    let n = a
        .recv_flags(s, &mut peek, libc::MSG_PEEK | libc::MSG_DONTWAIT)
        .unwrap();
    assert_eq!(&peek[..n], b"abcdefgh");
    b.send(c, b"ij").unwrap();
    wait_for(&a, s, POLLIN);
    let (mut x, mut y) = ([0u8; 4], [0u8; 16]);
    let n = a
        .readv(s, &mut [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)])
        .unwrap();
    assert_eq!(n, 10);
    assert_eq!((&x, &y[..6]), (b"abcd", &b"efghij"[..]));
    // Listening sockets have no queues to ask about.
    let l = tcp(&a);
    a.listen(l, 1).unwrap();
    assert_eq!(errno(a.ioctl(l, Ioctl::FionRead)), libc::EINVAL);
    // SIOCOUTQ drains to 0 once acknowledged.
    let t = Instant::now();
    while b.ioctl(c, Ioctl::SiocOutQ).unwrap() != 0 {
        assert!(t.elapsed() < Duration::from_secs(5));
        thread::sleep(Duration::from_millis(5));
    }
    // MSG_TRUNC on a stream discards without copying.
    b.send(c, b"0123456789").unwrap();
    a.setsockopt(s, SockOpt::RcvLowat(1)).unwrap();
    wait_for(&a, s, POLLIN);
    thread::sleep(Duration::from_millis(20));
    let n = a.recv_flags(s, &mut [0u8; 4], libc::MSG_TRUNC).unwrap();
    assert_eq!(n, 4);
    let mut rest = [0u8; 16];
    let n = a.recv(s, &mut rest).unwrap();
    assert_eq!(&rest[..n], &b"456789"[..n]);
}

#[test]
fn socket_and_accept4_flags_type_and_acceptconn() {
    let (a, b) = pair();
    let l = a
        .socket_flags(
            Domain::Inet,
            Type::Stream,
            Protocol::Default,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
        .unwrap();
    assert_eq!(errno(a.accept(l)), libc::EINVAL);
    assert_eq!(
        a.getsockopt(l, SockOptName::AcceptConn).unwrap(),
        SockOptValue::AcceptConn(false)
    );
    a.bind(l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 4050))
        .unwrap();
    a.listen(l, 4).unwrap();
    assert_eq!(
        a.getsockopt(l, SockOptName::AcceptConn).unwrap(),
        SockOptValue::AcceptConn(true)
    );
    assert_eq!(
        a.getsockopt(l, SockOptName::Type).unwrap(),
        SockOptValue::Type(Type::Stream)
    );
    assert_eq!(
        b.getsockopt(udp(&b), SockOptName::Type).unwrap(),
        SockOptValue::Type(Type::Dgram)
    );
    assert_eq!(errno(a.accept(l)), libc::EAGAIN); // SOCK_NONBLOCK
    let c = tcp(&b);
    b.connect(c, SocketAddrV4::new(A, 4050)).unwrap();
    wait_for(&a, l, POLLIN);
    let (s, peer) = a.accept4(l, libc::SOCK_NONBLOCK).unwrap();
    assert_eq!(*peer.ip(), B);
    assert_eq!(errno(a.recv(s, &mut [0u8; 4])), libc::EAGAIN);
    assert_eq!(
        errno(a.socket_flags(Domain::Inet, Type::Stream, Protocol::Default, 0x4000_0000)),
        libc::EINVAL
    );
}

#[test]
fn select_reports_ready_descriptors() {
    let (a, b) = pair();
    let (c, s, _l) = connected(&a, &b, 4060);
    let mut r: FdSet = [s].into_iter().collect();
    let mut w: FdSet = [c].into_iter().collect();
    let mut e = FdSet::new();
    // c is writable, s has nothing to read.
    assert_eq!(
        a.select(&mut r, &mut FdSet::new(), &mut e, Some(Duration::ZERO))
            .unwrap(),
        0
    );
    assert!(r.is_empty());
    assert_eq!(
        b.select(&mut FdSet::new(), &mut w, &mut e, None).unwrap(),
        1
    );
    assert!(w.contains(c));
    b.send(c, b"x").unwrap();
    let mut r: FdSet = [s].into_iter().collect();
    assert_eq!(
        a.select(
            &mut r,
            &mut FdSet::new(),
            &mut e,
            Some(Duration::from_secs(5))
        )
        .unwrap(),
        1
    );
    assert!(r.contains(s));
    let mut bad: FdSet = [999].into_iter().collect();
    assert_eq!(
        errno(a.select(&mut bad, &mut FdSet::new(), &mut e, None)),
        libc::EBADF
    );
}

#[test]
fn new_options_read_back() {
    let (a, b) = pair();
    let fd = tcp(&b);
    // Before connect: the user's TCP_MAXSEG; below 88 is EINVAL.
    assert_eq!(
        b.getsockopt(fd, SockOptName::MaxSeg).unwrap(),
        SockOptValue::Opt(SockOpt::MaxSeg(536))
    );
    assert_eq!(errno(b.setsockopt(fd, SockOpt::MaxSeg(40))), libc::EINVAL);
    b.setsockopt(fd, SockOpt::MaxSeg(1000)).unwrap();
    // A stream's IP_TOS keeps TCP's ECN bits clear.
    b.setsockopt(fd, SockOpt::Tos(0x13)).unwrap();
    assert_eq!(
        b.getsockopt(fd, SockOptName::Tos).unwrap(),
        SockOptValue::Opt(SockOpt::Tos(0x10))
    );
    let l = tcp(&a);
    a.setsockopt(l, SockOpt::DeferAccept(Duration::from_secs(3)))
        .unwrap();
    assert_eq!(
        a.getsockopt(l, SockOptName::DeferAccept).unwrap(),
        SockOptValue::Opt(SockOpt::DeferAccept(Duration::from_secs(3)))
    );
    // TCP options on a datagram socket: ENOPROTOOPT.
    assert_eq!(
        errno(b.setsockopt(udp(&b), SockOpt::Cork(true))),
        libc::ENOPROTOOPT
    );
}
