//! The socket facade over two in-memory stacks: every call, its errors (with
//! the errno Linux gives), poll, timeouts, non-blocking mode, threads.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::thread;
use std::time::{Duration, Instant};

use sockets_api::events::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, POLLRDHUP};
use sockets_api::{
    Algorithm, Domain, PingSocket, PollFd, Protocol, SockOpt, SockOptName, SockOptValue, Stack,
    StackBuilder, TcpListener, TcpStream, Type, UdpSocket,
};

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn pair() -> (Stack, Stack) {
    StackBuilder::memory_pair(
        StackBuilder::memory()
            .addr("10.0.0.1/24".parse().unwrap())
            .seed(1),
        StackBuilder::memory()
            .addr("10.0.0.2/24".parse().unwrap())
            .seed(2),
    )
    .unwrap()
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error()
        .unwrap_or_else(|| panic!("no errno in {e:?}"))
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// A connected pair of streams: (server side on A, client side on B).
fn connected(a: &Stack, b: &Stack, port: u16) -> (TcpStream, TcpStream) {
    let l = TcpListener::bind(a, ("0.0.0.0", port)).unwrap();
    let c = TcpStream::connect(b, (A, port)).unwrap();
    let (s, peer) = l.accept().unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    (s, c)
}

#[test]
fn echo_over_std_shaped_types() {
    let (a, b) = pair();
    let l = TcpListener::bind(&a, "0.0.0.0:7").unwrap();
    assert_eq!(
        l.local_addr().unwrap(),
        "0.0.0.0:7".parse::<SocketAddr>().unwrap()
    );
    let server = thread::spawn(move || {
        for conn in l.incoming().take(3) {
            let mut conn = conn.unwrap();
            let mut buf = vec![0u8; 4096];
            loop {
                let n = conn.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                conn.write_all(&buf[..n]).unwrap();
            }
        }
    });
    for round in 0..3 {
        let mut c = TcpStream::connect(&b, "10.0.0.1:7").unwrap();
        assert_eq!(
            c.peer_addr().unwrap(),
            SocketAddr::V4(SocketAddrV4::new(A, 7))
        );
        assert_eq!(c.local_addr().unwrap().ip(), std::net::IpAddr::V4(B));
        let msg: Vec<u8> = (0..100_000).map(|i| pattern(i + round)).collect();
        let writer = c.try_clone().unwrap();
        let m2 = msg.clone();
        let w = thread::spawn(move || {
            (&writer).write_all(&m2).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        w.join().unwrap();
        assert_eq!(back, msg);
    }
    server.join().unwrap();
}

#[test]
fn connection_refused_and_errno_values() {
    let (_a, b) = pair();
    let e = TcpStream::connect(&b, "10.0.0.1:9").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(errno(&e), libc::ECONNREFUSED);
}

#[test]
fn addresses_in_use_and_not_available() {
    let (a, _b) = pair();
    let _l = TcpListener::bind(&a, "0.0.0.0:80").unwrap();
    let e = TcpListener::bind(&a, "10.0.0.1:80").unwrap_err();
    assert_eq!(errno(&e), libc::EADDRINUSE);
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    let e = TcpListener::bind(&a, "10.9.9.9:81").unwrap_err();
    assert_eq!(errno(&e), libc::EADDRNOTAVAIL);
    let _u = UdpSocket::bind(&a, "0.0.0.0:53").unwrap();
    let e = UdpSocket::bind(&a, "0.0.0.0:53").unwrap_err();
    assert_eq!(errno(&e), libc::EADDRINUSE);
    // Port 0 picks an ephemeral port.
    let l = TcpListener::bind(&a, "0.0.0.0:0").unwrap();
    assert!(l.local_addr().unwrap().port() >= 49152);
}

#[test]
fn descriptor_calls_and_their_errors() {
    let (a, b) = pair();
    let fd = b
        .socket(Domain::Inet, Type::Stream, Protocol::Default)
        .unwrap();
    // Not connected yet: sending is EPIPE, receiving ENOTCONN (Linux).
    assert_eq!(errno(&b.send(fd, b"x").unwrap_err()), libc::EPIPE);
    assert_eq!(
        errno(&b.recv(fd, &mut [0u8; 4]).unwrap_err()),
        libc::ENOTCONN
    );
    assert_eq!(errno(&b.getpeername(fd).unwrap_err()), libc::ENOTCONN);
    assert_eq!(
        errno(&b.shutdown(fd, sockets_api::Shutdown::Write).unwrap_err()),
        libc::ENOTCONN
    );
    assert_eq!(errno(&b.accept(fd).unwrap_err()), libc::EINVAL);
    // An ICMP stream is not a thing.
    assert_eq!(
        errno(
            &b.socket(Domain::Inet, Type::Stream, Protocol::Icmp)
                .unwrap_err()
        ),
        libc::EPROTONOSUPPORT
    );

    let lfd = a
        .socket(Domain::Inet, Type::Stream, Protocol::Default)
        .unwrap();
    a.bind(lfd, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5000))
        .unwrap();
    assert_eq!(
        errno(
            &a.bind(lfd, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5001))
                .unwrap_err()
        ),
        libc::EINVAL
    );
    a.listen(lfd, 4).unwrap();
    a.listen(lfd, 8).unwrap(); // again: allowed, as on Linux
    assert_eq!(a.getsockname(lfd).unwrap().port(), 5000);
    assert_eq!(errno(&a.send(lfd, b"x").unwrap_err()), libc::EPIPE); // Linux: EPIPE on a listener

    b.connect(fd, SocketAddrV4::new(A, 5000)).unwrap();
    assert_eq!(
        errno(&b.connect(fd, SocketAddrV4::new(A, 5000)).unwrap_err()),
        libc::EISCONN
    );
    let (sfd, peer) = a.accept(lfd).unwrap();
    assert_eq!(peer, b.getsockname(fd).unwrap());
    assert_eq!(a.getpeername(sfd).unwrap(), peer);
    assert_eq!(b.send(fd, b"hello").unwrap(), 5);
    let mut buf = [0u8; 16];
    assert_eq!(a.recv(sfd, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");

    // A closed descriptor is EBADF for every call, close included.
    b.close(fd).unwrap();
    assert_eq!(errno(&b.send(fd, b"x").unwrap_err()), libc::EBADF);
    assert_eq!(errno(&b.recv(fd, &mut buf).unwrap_err()), libc::EBADF);
    assert_eq!(errno(&b.close(fd).unwrap_err()), libc::EBADF);
    assert_eq!(errno(&b.getsockname(fd).unwrap_err()), libc::EBADF);
    assert_eq!(
        errno(&b.setsockopt(fd, SockOpt::NoDelay(true)).unwrap_err()),
        libc::EBADF
    );
    assert_eq!(errno(&b.close(12_345).unwrap_err()), libc::EBADF);
    // The peer sees the orderly close.
    assert_eq!(a.recv(sfd, &mut buf).unwrap(), 0);
    a.close(sfd).unwrap();
    a.close(lfd).unwrap();
}

#[test]
fn nonblocking_mode() {
    let (a, b) = pair();
    let l = TcpListener::bind(&a, "0.0.0.0:6000").unwrap();
    l.set_nonblocking(true).unwrap();
    let e = l.accept().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert_eq!(errno(&e), libc::EAGAIN);

    // Non-blocking connect: EINPROGRESS, then POLLOUT and SO_ERROR clear.
    let fd = b
        .socket(Domain::Inet, Type::Stream, Protocol::Default)
        .unwrap();
    b.set_nonblocking(fd, true).unwrap();
    let e = b.connect(fd, SocketAddrV4::new(A, 6000)).unwrap_err();
    assert_eq!(errno(&e), libc::EINPROGRESS);
    let mut p = [PollFd::new(fd, POLLOUT)];
    assert_eq!(b.poll(&mut p, Some(Duration::from_secs(5))).unwrap(), 1);
    assert_eq!(p[0].revents, POLLOUT);
    assert_eq!(
        b.getsockopt(fd, SockOptName::Error).unwrap(),
        SockOptValue::Error(None)
    );
    // Linux: connect again reports the completed attempt once (0), then
    // EISCONN.
    b.connect(fd, SocketAddrV4::new(A, 6000)).unwrap();
    assert_eq!(
        errno(&b.connect(fd, SocketAddrV4::new(A, 6000)).unwrap_err()),
        libc::EISCONN
    );

    let mut lp = [PollFd::new(l.as_fd(), POLLIN)];
    assert_eq!(a.poll(&mut lp, Some(Duration::from_secs(5))).unwrap(), 1);
    let (s, _) = l.accept().unwrap();
    // Accepted sockets do not inherit O_NONBLOCK (Linux).
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    assert_eq!(
        (&s).read(&mut [0u8; 8]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    s.set_nonblocking(true).unwrap();
    let e = (&s).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(errno(&e), libc::EAGAIN);

    // Fill the peer's window and our send buffer: a non-blocking send
    // eventually queues nothing and says EAGAIN, having queued what fit.
    let chunk = vec![7u8; 64 * 1024];
    let mut total = 0usize;
    let mut saw_partial_or_eagain = false;
    for _ in 0..10_000 {
        match b.send(fd, &chunk) {
            Ok(n) => {
                total += n;
                if n < chunk.len() {
                    saw_partial_or_eagain = true;
                }
            }
            Err(e) => {
                assert_eq!(errno(&e), libc::EAGAIN);
                saw_partial_or_eagain = true;
                break;
            }
        }
    }
    assert!(
        saw_partial_or_eagain,
        "send never blocked after {total} bytes"
    );
    // POLLOUT is off while full; draining the peer turns it back on.
    let mut p = [PollFd::new(fd, POLLOUT)];
    assert_eq!(b.poll(&mut p, Some(Duration::ZERO)).unwrap(), 0);
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0usize;
    while got < total {
        match (&s).read(&mut buf) {
            Ok(n) => {
                assert!(n > 0);
                assert!(buf[..n].iter().all(|&x| x == 7));
                got += n;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let mut sp = [PollFd::new(s.as_fd(), POLLIN)];
                a.poll(&mut sp, Some(Duration::from_secs(5))).unwrap();
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(b.poll(&mut p, Some(Duration::from_secs(5))).unwrap(), 1);
    b.close(fd).unwrap();
}

#[test]
fn timeouts() {
    let (a, b) = pair();
    let (s, c) = connected(&a, &b, 6100);
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(100)));
    let t0 = Instant::now();
    let e = (&c).read(&mut [0u8; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert!(t0.elapsed() >= Duration::from_millis(100));
    // A zero timeout is refused, as std does.
    assert_eq!(
        c.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    c.set_read_timeout(None).unwrap();
    assert_eq!(c.read_timeout().unwrap(), None);

    // A write timeout returns what was queued when the peer does not read.
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let big = vec![1u8; 64 << 20];
    let n = (&s).write(&big).unwrap();
    assert!(n > 0 && n < big.len(), "queued {n}");
    let e = (&s).write(&big).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);

    // accept with SO_RCVTIMEO.
    let l = TcpListener::bind(&a, "0.0.0.0:6101").unwrap();
    a.setsockopt(
        l.as_fd(),
        SockOpt::RcvTimeo(Some(Duration::from_millis(50))),
    )
    .unwrap();
    assert_eq!(errno(&l.accept().unwrap_err()), libc::EAGAIN);

    // connect_timeout to a host that never answers: ETIMEDOUT.
    let t0 = Instant::now();
    let e = TcpStream::connect_timeout(
        &b,
        &"10.0.0.77:80".parse().unwrap(),
        Duration::from_millis(300),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert_eq!(errno(&e), libc::ETIMEDOUT);
    assert!(t0.elapsed() >= Duration::from_millis(300));
}

#[test]
fn reset_then_broken_pipe() {
    let (a, b) = pair();
    let (s, c) = connected(&a, &b, 6200);
    s.set_linger(Some(Duration::ZERO)).unwrap();
    drop(s); // close with SO_LINGER 0: RST
    let mut buf = [0u8; 8];
    let e = match (&c).read(&mut buf) {
        Err(e) => e,
        Ok(n) => panic!("read {n} after reset"),
    };
    assert_eq!(e.kind(), ErrorKind::ConnectionReset);
    assert_eq!(errno(&e), libc::ECONNRESET);
    let e = (&c).write(b"more").unwrap_err();
    assert_eq!(errno(&e), libc::EPIPE);
    assert_eq!(e.kind(), ErrorKind::BrokenPipe);
    let mut p = [PollFd::new(c.as_fd(), POLLIN | POLLOUT)];
    b.poll(&mut p, Some(Duration::ZERO)).unwrap();
    assert_ne!(p[0].revents & POLLHUP, 0, "revents {:#x}", p[0].revents);
}

#[test]
fn half_close() {
    let (a, b) = pair();
    let (mut s, mut c) = connected(&a, &b, 6300);
    c.write_all(b"request").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut req = Vec::new();
    s.read_to_end(&mut req).unwrap();
    assert_eq!(req, b"request");
    // The server still writes after the client's FIN.
    let mut p = [PollFd::new(s.as_fd(), POLLIN | POLLRDHUP)];
    a.poll(&mut p, Some(Duration::ZERO)).unwrap();
    assert_eq!(p[0].revents & (POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
    s.write_all(b"response").unwrap();
    drop(s);
    let mut resp = Vec::new();
    c.read_to_end(&mut resp).unwrap();
    assert_eq!(resp, b"response");
    let e = c.write(b"x").unwrap_err();
    assert_eq!(errno(&e), libc::EPIPE);
}

#[test]
fn poll_across_many_sockets() {
    let (a, b) = pair();
    let l = TcpListener::bind(&a, "0.0.0.0:6400").unwrap();
    const N: usize = 64;
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..N {
        clients.push(TcpStream::connect(&b, (A, 6400)).unwrap());
        servers.push(l.accept().unwrap().0);
    }
    // Nothing readable yet; everything writable.
    let mut set: Vec<PollFd> = servers
        .iter()
        .map(|s| PollFd::new(s.as_fd(), POLLIN))
        .collect();
    assert_eq!(a.poll(&mut set, Some(Duration::ZERO)).unwrap(), 0);
    let mut wset: Vec<PollFd> = servers
        .iter()
        .map(|s| PollFd::new(s.as_fd(), POLLOUT))
        .collect();
    assert_eq!(a.poll(&mut wset, Some(Duration::ZERO)).unwrap(), N);

    // A timeout with nothing ready.
    let t0 = Instant::now();
    assert_eq!(
        a.poll(&mut set, Some(Duration::from_millis(50))).unwrap(),
        0
    );
    assert!(t0.elapsed() >= Duration::from_millis(50));

    // A writer in another thread wakes a blocked poll.
    let chosen = [3usize, 17, 40, 63];
    let writers: Vec<TcpStream> = chosen.iter().map(|&i| clients[i].clone()).collect();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        for mut w in writers {
            w.write_all(b"ping").unwrap();
        }
    });
    let mut ready = std::collections::BTreeSet::new();
    while ready.len() < chosen.len() {
        let n = a.poll(&mut set, Some(Duration::from_secs(5))).unwrap();
        assert!(n > 0, "poll timed out");
        for (i, p) in set.iter().enumerate() {
            if p.revents != 0 {
                assert_eq!(p.revents, POLLIN);
                ready.insert(i);
            }
        }
        for &i in &ready {
            set[i].events = 0;
        }
    }
    t.join().unwrap();
    assert_eq!(ready.into_iter().collect::<Vec<_>>(), chosen.to_vec());

    // A closed peer: POLLIN (end of stream) and POLLRDHUP; a closed fd: POLLNVAL.
    let fd5 = servers[5].as_fd();
    drop(clients.remove(5));
    let mut p = [PollFd::new(fd5, POLLIN | POLLRDHUP)];
    assert_eq!(a.poll(&mut p, Some(Duration::from_secs(5))).unwrap(), 1);
    assert_eq!(p[0].revents & (POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
    let mut p = [PollFd::new(99_999, POLLIN)];
    assert_eq!(a.poll(&mut p, Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(p[0].revents, POLLNVAL);
    // A listener is readable when a connection waits.
    let mut lp = [PollFd::new(l.as_fd(), POLLIN)];
    assert_eq!(a.poll(&mut lp, Some(Duration::ZERO)).unwrap(), 0);
    let _c = TcpStream::connect(&b, (A, 6400)).unwrap();
    assert_eq!(a.poll(&mut lp, Some(Duration::from_secs(5))).unwrap(), 1);
    // A refused non-blocking connect: POLLERR|POLLHUP and SO_ERROR.
    let fd = b
        .socket(Domain::Inet, Type::Stream, Protocol::Default)
        .unwrap();
    b.set_nonblocking(fd, true).unwrap();
    let _ = b.connect(fd, SocketAddrV4::new(A, 1));
    let mut p = [PollFd::new(fd, POLLOUT)];
    assert_eq!(b.poll(&mut p, Some(Duration::from_secs(5))).unwrap(), 1);
    assert_ne!(p[0].revents & POLLERR, 0, "revents {:#x}", p[0].revents);
    assert_eq!(
        b.getsockopt(fd, SockOptName::Error).unwrap(),
        SockOptValue::Error(Some(libc::ECONNREFUSED))
    );
}

#[test]
fn reader_and_writer_threads_on_one_stream() {
    let (a, b) = pair();
    let (s, c) = connected(&a, &b, 6500);
    // The server echoes with two threads of its own.
    let s2 = s.try_clone().unwrap();
    let echo = thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = (&s).read(&mut buf).unwrap();
            if n == 0 {
                s.shutdown(Shutdown::Write).unwrap();
                break;
            }
            (&s2).write_all(&buf[..n]).unwrap();
        }
    });
    const LEN: usize = 8 << 20;
    let writer = c.clone();
    let w = thread::spawn(move || {
        let data: Vec<u8> = (0..LEN).map(pattern).collect();
        for chunk in data.chunks(10_007) {
            (&writer).write_all(chunk).unwrap();
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = 0usize;
    let mut buf = vec![0u8; 50_000];
    loop {
        let n = (&c).read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        for (k, &x) in buf[..n].iter().enumerate() {
            assert_eq!(x, pattern(got + k), "byte {}", got + k);
        }
        got += n;
    }
    assert_eq!(got, LEN);
    w.join().unwrap();
    echo.join().unwrap();
    let st = c.stats().unwrap();
    assert!(st.bytes_acked >= LEN as u64, "{st:?}");
}

#[test]
fn graceful_close_then_stop_delivers_everything() {
    let (a, b) = pair();
    let l = TcpListener::bind(&a, "0.0.0.0:6600").unwrap();
    const LEN: usize = 4 << 20;
    let reader = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all
    });
    let mut c = TcpStream::connect(&b, (A, 6600)).unwrap();
    let data: Vec<u8> = (0..LEN).map(pattern).collect();
    c.write_all(&data).unwrap();
    drop(c);
    // Stopping the stack right after a graceful close still delivers.
    b.stop();
    let all = reader.join().unwrap();
    assert_eq!(all.len(), LEN);
    assert!(all == data);
    // Later calls on a stopped stack: ENETDOWN.
    let e = b
        .socket(Domain::Inet, Type::Stream, Protocol::Default)
        .unwrap_err();
    assert_eq!(errno(&e), libc::ENETDOWN);
}

#[test]
fn linger_close_waits_for_delivery() {
    let (a, b) = pair();
    let (mut s, c) = connected(&a, &b, 6650);
    c.set_linger(Some(Duration::from_secs(5))).unwrap();
    let data = vec![9u8; 1 << 20];
    (&c).write_all(&data).unwrap();
    let reader = thread::spawn(move || {
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        all.len()
    });
    let fd = c.as_fd();
    let st = c.stack().clone();
    drop(c); // close() lingers until acknowledged
    assert_eq!(errno(&st.send(fd, b"x").unwrap_err()), libc::EBADF);
    assert_eq!(reader.join().unwrap(), data.len());
}

#[test]
fn socket_options() {
    let (a, b) = pair();
    let (_s, c) = connected(&a, &b, 6700);
    let fd = c.as_fd();
    for opt in [
        SockOpt::ReuseAddr(true),
        SockOpt::RcvTimeo(Some(Duration::from_millis(1500))),
        SockOpt::SndTimeo(Some(Duration::from_millis(2500))),
        SockOpt::KeepAlive(true),
        SockOpt::Linger(Some(Duration::from_secs(3))),
        SockOpt::NoDelay(true),
        SockOpt::NonBlocking(true),
        SockOpt::Congestion(Algorithm::NewReno),
        SockOpt::RcvBuf(512 * 1024),
        SockOpt::SndBuf(300_000),
        SockOpt::OobInline(true),
        SockOpt::Tos(0x10),
        SockOpt::RcvLowat(10),
        SockOpt::UserTimeout(Duration::from_secs(5)),
        SockOpt::Cork(true),
        SockOpt::Cork(false),
        SockOpt::QuickAck(false),
        SockOpt::QuickAck(true),
        SockOpt::ReusePort(true),
    ] {
        b.setsockopt(fd, opt.clone()).unwrap();
        let name = opt.name();
        assert_eq!(b.getsockopt(fd, name).unwrap(), SockOptValue::Opt(opt));
    }
    assert!(c.nodelay().unwrap());
    match b.getsockopt(fd, SockOptName::TcpInfo).unwrap() {
        SockOptValue::TcpInfo(info) => assert!(info.cwnd > 0),
        other => panic!("{other:?}"),
    }
    // SO_MAX_PACING_RATE: no cap (~0) by default; a cap turns pacing on,
    // and TCP_INFO shows the rate bounded by it.
    assert_eq!(
        b.getsockopt(fd, SockOptName::MaxPacingRate).unwrap(),
        SockOptValue::Opt(SockOpt::MaxPacingRate(u64::MAX))
    );
    b.setsockopt(fd, SockOpt::MaxPacingRate(1_000)).unwrap();
    assert_eq!(
        b.getsockopt(fd, SockOptName::MaxPacingRate).unwrap(),
        SockOptValue::Opt(SockOpt::MaxPacingRate(1_000))
    );
    match b.getsockopt(fd, SockOptName::TcpInfo).unwrap() {
        SockOptValue::TcpInfo(info) => assert_eq!(info.pacing_rate, 1_000),
        other => panic!("{other:?}"),
    }
    b.setsockopt(fd, SockOpt::MaxPacingRate(u64::MAX)).unwrap();
    match b.getsockopt(fd, SockOptName::TcpInfo).unwrap() {
        SockOptValue::TcpInfo(info) => assert_eq!(info.pacing_rate, 0, "pacing off again"),
        other => panic!("{other:?}"),
    }
    // Per-socket congestion control switches the live connection.
    c.set_congestion_control(Algorithm::Cubic).unwrap();
    assert_eq!(
        b.getsockopt(fd, SockOptName::Congestion).unwrap(),
        SockOptValue::Opt(SockOpt::Congestion(Algorithm::Cubic))
    );
    c.set_congestion_control("bbr".parse().unwrap()).unwrap();
    assert_eq!(
        b.getsockopt(fd, SockOptName::Congestion).unwrap(),
        SockOptValue::Opt(SockOpt::Congestion(Algorithm::Bbr))
    );
    // TCP_INFO on a UDP socket is not a thing (EOPNOTSUPP, as Linux's
    // do_ip_getsockopt answers); TTL 0 is invalid.
    let u = UdpSocket::bind(&b, "0.0.0.0:0").unwrap();
    assert_eq!(
        errno(&b.getsockopt(u.as_fd(), SockOptName::TcpInfo).unwrap_err()),
        libc::EOPNOTSUPP
    );
    assert_eq!(
        errno(&b.setsockopt(u.as_fd(), SockOpt::Ttl(0)).unwrap_err()),
        libc::EINVAL
    );
}

#[test]
fn udp_sockets() {
    let (a, b) = pair();
    let server = UdpSocket::bind(&a, "0.0.0.0:5353").unwrap();
    let client = UdpSocket::bind(&b, "0.0.0.0:0").unwrap();
    let caddr = client.local_addr().unwrap();
    assert_eq!(client.send_to(b"query", "10.0.0.1:5353").unwrap(), 5);
    let mut buf = [0u8; 64];
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"query");
    assert_eq!(from.port(), caddr.port());
    server.send_to(b"answer", from).unwrap();
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"answer"[..], "10.0.0.1:5353".parse().unwrap())
    );

    // Truncation to the buffer, as Linux.
    server.send_to(&[5u8; 100], (B, caddr.port())).unwrap();
    let mut small = [0u8; 10];
    assert_eq!(client.recv_from(&mut small).unwrap().0, 10);

    // A datagram larger than IPv4 allows: EMSGSIZE. One bigger than the
    // MTU is fragmented and reassembled.
    let e = client
        .send_to(&vec![0u8; 70_000], "10.0.0.1:5353")
        .unwrap_err();
    assert_eq!(errno(&e), libc::EMSGSIZE);
    let big: Vec<u8> = (0..20_000).map(pattern).collect();
    client.send_to(&big, "10.0.0.1:5353").unwrap();
    let mut bigbuf = vec![0u8; 65_536];
    let (n, _) = server.recv_from(&mut bigbuf).unwrap();
    assert_eq!(&bigbuf[..n], &big[..]);

    // Connected: send/recv, and ECONNREFUSED after an ICMP port unreachable.
    let conn = UdpSocket::bind(&b, "0.0.0.0:0").unwrap();
    assert_eq!(errno(&conn.send(b"x").unwrap_err()), libc::EDESTADDRREQ);
    conn.connect("10.0.0.1:5353").unwrap();
    assert_eq!(conn.peer_addr().unwrap(), "10.0.0.1:5353".parse().unwrap());
    conn.send(b"hi").unwrap();
    let (n, from) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hi");
    server.send_to(b"yo", from).unwrap();
    assert_eq!(conn.recv(&mut buf).unwrap(), 2);
    let closed = UdpSocket::bind(&b, "0.0.0.0:0").unwrap();
    closed.connect("10.0.0.1:9999").unwrap();
    closed.send(b"anyone?").unwrap();
    closed
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let e = closed.recv(&mut buf).unwrap_err();
    assert_eq!(errno(&e), libc::ECONNREFUSED);

    // Timeouts and non-blocking receive.
    client
        .set_read_timeout(Some(Duration::from_millis(30)))
        .unwrap();
    assert_eq!(
        client.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    client.set_nonblocking(true).unwrap();
    assert_eq!(
        errno(&client.recv_from(&mut buf).unwrap_err()),
        libc::EAGAIN
    );
    let mut p = [PollFd::new(client.as_fd(), POLLIN | POLLOUT)];
    assert_eq!(b.poll(&mut p, Some(Duration::ZERO)).unwrap(), 1);
    assert_eq!(p[0].revents, POLLOUT);
}

#[test]
fn ping_socket() {
    let (a, b) = pair();
    let p = PingSocket::open(&b).unwrap();
    p.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for seq in 1..=3u16 {
        p.send(A, seq, &[seq as u8; 56]).unwrap();
        let r = p.recv().unwrap();
        assert_eq!((r.from, r.seq, r.data.len()), (A, seq, 56));
        assert!(r.data.iter().all(|&x| x == seq as u8));
    }
    drop(a);
}

#[test]
fn types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Stack>();
    check::<TcpStream>();
    check::<TcpListener>();
    check::<UdpSocket>();
    check::<PingSocket>();
}

#[test]
fn reused_tuples_reopen_time_wait_without_syn_retransmission() {
    // The server closes first, so its side of every 4-tuple sits in
    // TIME-WAIT; with 1,500 connections from random ephemeral ports about
    // 65 ports repeat, and the new SYN must reopen the pair
    // at once (RFC 6191: its timestamp is newer) instead of being ignored
    // until the client retransmits it a second later.
    let (a, b) = pair();
    let l = TcpListener::bind(&a, "0.0.0.0:6800").unwrap();
    const N: usize = 1500;
    let server = thread::spawn(move || {
        for _ in 0..N {
            let (mut s, _) = l.accept().unwrap();
            let mut x = [0u8; 1];
            s.read_exact(&mut x).unwrap();
            s.write_all(&x).unwrap();
        }
    });
    let mut ports = std::collections::HashSet::new();
    let mut reused = 0;
    for _ in 0..N {
        let mut c = TcpStream::connect(&b, (A, 6800)).unwrap();
        if !ports.insert(c.local_addr().unwrap().port()) {
            reused += 1;
        }
        c.write_all(b"q").unwrap();
        let mut x = [0u8; 1];
        c.read_exact(&mut x).unwrap();
        let st = c.stats().unwrap();
        assert_eq!(
            st.rto_count, 0,
            "a SYN or request was retransmitted: {st:?}"
        );
    }
    server.join().unwrap();
    assert!(
        reused > 0,
        "no port was reused; the test did not exercise TIME-WAIT"
    );
}

#[test]
fn urgent_data_pollpri_and_the_mark() {
    let (a, b) = pair();
    let lfd = a
        .socket(Domain::Inet, Type::Stream, Protocol::Default)
        .unwrap();
    a.bind(lfd, "0.0.0.0:6900".parse().unwrap()).unwrap();
    a.listen(lfd, 4).unwrap();
    let cfd = b
        .socket(Domain::Inet, Type::Stream, Protocol::Default)
        .unwrap();
    b.connect(cfd, SocketAddrV4::new(A, 6900)).unwrap();
    let (sfd, _) = a.accept(lfd).unwrap();
    // SO_OOBINLINE: always on.
    assert_eq!(
        a.getsockopt(sfd, SockOptName::OobInline).unwrap(),
        SockOptValue::Opt(SockOpt::OobInline(true))
    );
    a.setsockopt(sfd, SockOpt::OobInline(true)).unwrap();
    let e = a.setsockopt(sfd, SockOpt::OobInline(false)).unwrap_err();
    assert_eq!(errno(&e), libc::EINVAL);
    assert_eq!(
        errno(&b.send_flags(cfd, b"x", libc::MSG_CONFIRM).unwrap_err()),
        libc::EOPNOTSUPP
    );
    b.send(cfd, b"hello").unwrap();
    b.send_flags(cfd, b"!", libc::MSG_OOB).unwrap();
    let mut set = [PollFd::new(sfd, POLLIN | POLLPRI)];
    assert_eq!(a.poll(&mut set, Some(Duration::from_secs(5))).unwrap(), 1);
    // The urgent byte may arrive in its own segment: wait for POLLPRI.
    let deadline = Instant::now() + Duration::from_secs(5);
    while set[0].revents & POLLPRI == 0 {
        assert!(Instant::now() < deadline, "no POLLPRI");
        a.poll(&mut set, Some(Duration::from_millis(100))).unwrap();
    }
    assert!(!a.sockatmark(sfd).unwrap());
    let mut buf = [0u8; 64];
    let n = a.recv(sfd, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello", "a read stops at the mark");
    assert!(a.sockatmark(sfd).unwrap());
    assert_eq!(a.recv(sfd, &mut buf).unwrap(), 1);
    assert_eq!(buf[0], b'!', "in line");
    assert!(!a.sockatmark(sfd).unwrap());
    let mut set = [PollFd::new(sfd, POLLIN | POLLPRI)];
    a.poll(&mut set, Some(Duration::ZERO)).unwrap();
    assert_eq!(set[0].revents & POLLPRI, 0, "nothing urgent left");
}
