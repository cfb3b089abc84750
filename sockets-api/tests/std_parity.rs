//! std/socket2 parity (issue 19): IP_TTL on TCP segments, SO_BROADCAST,
//! peeking, MSG_WAITALL, MSG_OOB and MSG_DONTWAIT on receive, keep-alive
//! tuning, the `TcpSocket` builder and descriptor hand-over, each checked
//! on the wire or through the calls, over the in-memory link.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use sockets_api::{
    Domain, Keepalive, Protocol, SockOpt, SockOptName, SockOptValue, Stack, StackBuilder,
    TcpListener, TcpSocket, TcpStream, Type, UdpSocket,
};

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn builders() -> (StackBuilder, StackBuilder) {
    (
        StackBuilder::memory()
            .addr("10.0.0.1/24".parse().unwrap())
            .seed(31),
        StackBuilder::memory()
            .addr("10.0.0.2/24".parse().unwrap())
            .seed(32),
    )
}

fn pair() -> (Stack, Stack) {
    let (a, b) = builders();
    StackBuilder::memory_pair(a, b).unwrap()
}

/// A capture file of this test's own, removed when dropped.
struct Capture(PathBuf);

impl Capture {
    fn new(name: &str) -> Capture {
        Capture(
            std::env::temp_dir().join(format!("ustack-parity-{name}-{}.pcap", std::process::id())),
        )
    }

    /// The IPv4 packets of the capture (classic pcap, Ethernet frames):
    /// (capture time in microseconds, packet bytes).
    fn ipv4_packets(&self) -> Vec<(u64, Vec<u8>)> {
        let data = std::fs::read(&self.0).unwrap();
        assert_eq!(&data[..4], &0xa1b2_c3d4u32.to_le_bytes(), "pcap magic");
        let mut out = Vec::new();
        let mut at = 24;
        while at + 16 <= data.len() {
            let word = |o: usize| u32::from_le_bytes(data[at + o..at + o + 4].try_into().unwrap());
            let micros = u64::from(word(0)) * 1_000_000 + u64::from(word(4));
            let len = word(8) as usize;
            let frame = &data[at + 16..at + 16 + len];
            at += 16 + len;
            if frame.len() > 34 && frame[12..14] == [0x08, 0x00] {
                out.push((micros, frame[14..].to_vec()));
            }
        }
        out
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn src(p: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(p[12], p[13], p[14], p[15])
}

/// The TCP flags byte of an IPv4/TCP packet.
fn tcp_flags(p: &[u8]) -> u8 {
    let ihl = usize::from(p[0] & 0x0f) * 4;
    p[ihl + 13]
}

fn tcp_payload_len(p: &[u8]) -> usize {
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    total - ihl - usize::from(p[ihl + 12] >> 4) * 4
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < give_up, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

#[test]
fn ip_ttl_is_in_the_header_of_every_tcp_segment() {
    let cap = Capture::new("ttl");
    let (a, b) = builders();
    let (server, client) = StackBuilder::memory_pair(a, b.pcap(&cap.0)).unwrap();

    let ls = TcpSocket::new_v4(&server).unwrap();
    ls.set_ttl(33).unwrap();
    ls.bind("0.0.0.0:7000".parse().unwrap()).unwrap();
    let listener = ls.listen(8).unwrap();
    assert_eq!(listener.ttl().unwrap(), 33);

    let cs = TcpSocket::new_v4(&client).unwrap();
    assert_eq!(cs.ttl().unwrap(), 64, "the stack's default until set");
    cs.set_ttl(17).unwrap();
    assert_eq!(
        cs.set_ttl(0).unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
    assert_eq!(
        cs.set_ttl(256).unwrap_err().raw_os_error(),
        Some(libc::EINVAL)
    );
    let mut stream = cs.connect("10.0.0.1:7000".parse().unwrap()).unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    assert_eq!(accepted.ttl().unwrap(), 33, "inherited from the listener");
    stream.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    accepted.read_exact(&mut buf).unwrap();
    // A running connection takes a new TTL at once.
    accepted.set_ttl(99).unwrap();
    accepted.write_all(b"pong").unwrap();
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
    drop((stream, accepted, listener));
    client.stop();
    server.stop();

    let tcp: Vec<Vec<u8>> = cap
        .ipv4_packets()
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| p[9] == 6)
        .collect();
    let from_client: Vec<&Vec<u8>> = tcp.iter().filter(|p| src(p) == B).collect();
    assert!(from_client.iter().any(|p| tcp_flags(p) == SYN), "the SYN");
    assert!(from_client.len() >= 3);
    for p in &from_client {
        assert_eq!(p[8], 17, "every client segment, the SYN included");
    }
    let from_server: Vec<&Vec<u8>> = tcp.iter().filter(|p| src(p) == A).collect();
    let synack = from_server
        .iter()
        .find(|p| tcp_flags(p) == SYN | ACK)
        .expect("a SYN-ACK");
    assert_eq!(synack[8], 33, "the listener's TTL on its SYN-ACK");
    let pong = from_server
        .iter()
        .find(|p| tcp_payload_len(p) == 4 && p[p.len() - 4..] == *b"pong")
        .expect("the reply");
    assert_eq!(pong[8], 99);
}

#[test]
fn broadcasts_need_so_broadcast_and_are_delivered() {
    let (server, client) = pair();
    let rx = UdpSocket::bind(&server, "0.0.0.0:5000").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(rx.read_timeout().unwrap(), Some(Duration::from_secs(30)));
    assert_eq!(rx.write_timeout().unwrap(), None);
    let tx = UdpSocket::bind(&client, "0.0.0.0:0").unwrap();
    assert!(!tx.broadcast().unwrap());
    for dst in ["10.0.0.255:5000", "255.255.255.255:5000"] {
        let e = tx.send_to(b"x", dst).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{dst}");
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    }
    tx.set_broadcast(true).unwrap();
    assert!(tx.broadcast().unwrap());
    let mut buf = [0u8; 32];
    for (i, dst) in ["10.0.0.255:5000", "255.255.255.255:5000"]
        .into_iter()
        .enumerate()
    {
        let msg = [b'a' + i as u8; 3];
        assert_eq!(tx.send_to(&msg, dst).unwrap(), 3);
        let (n, from) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &msg, "{dst}");
        assert_eq!(
            from,
            SocketAddr::new(B.into(), tx.local_addr().unwrap().port())
        );
    }
    // connect(2) checks it too (ip4_datagram_connect's route lookup).
    let off = UdpSocket::bind(&client, "0.0.0.0:0").unwrap();
    let e = off.connect("10.0.0.255:5000").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EACCES));
}

#[test]
fn peek_does_not_consume() {
    let (server, client) = pair();
    let listener = TcpListener::bind(&server, "0.0.0.0:7001").unwrap();
    let mut stream = TcpStream::connect(&client, "10.0.0.1:7001").unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    stream.write_all(b"hello world").unwrap();
    let mut buf = [0u8; 5];
    wait_until("11 bytes", || {
        server
            .ioctl(accepted.as_fd(), sockets_api::Ioctl::FionRead)
            .unwrap()
            == 11
    });
    assert_eq!(accepted.peek(&mut buf).unwrap(), 5);
    assert_eq!(&buf, b"hello");
    assert_eq!(accepted.peek(&mut buf).unwrap(), 5, "still there");
    let mut all = [0u8; 11];
    accepted.read_exact(&mut all).unwrap();
    assert_eq!(&all, b"hello world");

    // UDP: the same datagram twice, then it is gone.
    let rx = UdpSocket::bind(&server, "0.0.0.0:5001").unwrap();
    let tx = UdpSocket::bind(&client, "0.0.0.0:0").unwrap();
    tx.send_to(b"first", "10.0.0.1:5001").unwrap();
    tx.send_to(b"second", "10.0.0.1:5001").unwrap();
    let mut b = [0u8; 16];
    let (n, from) = rx.peek_from(&mut b).unwrap();
    let sender = SocketAddr::new(B.into(), tx.local_addr().unwrap().port());
    assert_eq!((&b[..n], from), (&b"first"[..], sender));
    let mut short = [0u8; 2];
    assert_eq!(rx.peek_from(&mut short).unwrap().0, 2, "truncated as recv");
    assert_eq!(&short, b"fi");
    assert_eq!(rx.recv_from(&mut b).unwrap().0, 5);
    assert_eq!(&b[..5], b"first");
    rx.connect(sender).unwrap();
    assert_eq!(rx.peek(&mut b).unwrap(), 6);
    assert_eq!(rx.recv(&mut b).unwrap(), 6);
    assert_eq!(&b[..6], b"second");
    rx.set_nonblocking(true).unwrap();
    assert_eq!(rx.peek(&mut b).unwrap_err().kind(), ErrorKind::WouldBlock);
}

/// A connected pair with a small receive buffer on the accepting side.
fn small_window(port: u16) -> (Stack, Stack, TcpStream, TcpStream) {
    let (server, client) = pair();
    let ls = TcpSocket::new_v4(&server).unwrap();
    ls.set_recv_buffer_size(4096).unwrap();
    assert_eq!(ls.recv_buffer_size().unwrap(), 4096);
    ls.bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port))
        .unwrap();
    let listener = ls.listen(4).unwrap();
    let stream = TcpStream::connect(&client, (A, port)).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    (server, client, stream, accepted)
}

#[test]
fn waitall_fills_a_buffer_larger_than_the_window() {
    let (server, _client, stream, accepted) = small_window(7002);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let sent = data.clone();
    let writer = thread::spawn(move || {
        let mut s = &stream;
        for chunk in sent.chunks(7000) {
            s.write_all(chunk).unwrap();
        }
        stream
    });
    let mut buf = vec![0u8; data.len()];
    let n = server
        .recv_flags(accepted.as_fd(), &mut buf, libc::MSG_WAITALL)
        .unwrap();
    assert_eq!(n, data.len(), "one call, the whole buffer");
    assert!(buf == data);
    let stream = writer.join().unwrap();

    // End of stream cuts it short, then reads see end of stream.
    (&stream).write_all(b"tail").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut big = [0u8; 64];
    let n = server
        .recv_flags(accepted.as_fd(), &mut big, libc::MSG_WAITALL)
        .unwrap();
    assert_eq!(&big[..n], b"tail");
    assert_eq!(
        server
            .recv_flags(accepted.as_fd(), &mut big, libc::MSG_WAITALL)
            .unwrap(),
        0
    );
}

#[test]
fn waitall_stops_at_a_timeout_or_dontwait_with_what_it_has() {
    let (server, _client, stream, accepted) = small_window(7003);
    (&stream).write_all(b"0123456789").unwrap();
    let fd = accepted.as_fd();
    wait_until("10 bytes", || {
        server.ioctl(fd, sockets_api::Ioctl::FionRead).unwrap() == 10
    });
    let mut buf = [0u8; 64];
    // MSG_DONTWAIT: what is queued, at once.
    let n = server
        .recv_flags(fd, &mut buf[..4], libc::MSG_WAITALL | libc::MSG_DONTWAIT)
        .unwrap();
    assert_eq!(&buf[..n], b"0123");
    let n = server
        .recv_flags(fd, &mut buf, libc::MSG_WAITALL | libc::MSG_DONTWAIT)
        .unwrap();
    assert_eq!(&buf[..n], b"456789");
    let e = server
        .recv_flags(fd, &mut buf, libc::MSG_WAITALL | libc::MSG_DONTWAIT)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    // SO_RCVTIMEO ends the wait with the bytes copied so far.
    accepted
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    (&stream).write_all(b"abc").unwrap();
    let n = server.recv_flags(fd, &mut buf, libc::MSG_WAITALL).unwrap();
    assert_eq!(&buf[..n], b"abc");
    // Peeking with MSG_WAITALL waits for the whole length too, consuming
    // nothing.
    accepted.set_read_timeout(None).unwrap();
    (&stream).write_all(b"xy").unwrap();
    let peeker = thread::spawn({
        let s = stream.try_clone().unwrap();
        move || {
            thread::sleep(Duration::from_millis(20));
            (&s).write_all(b"z").unwrap();
        }
    });
    let n = server
        .recv_flags(fd, &mut buf[..3], libc::MSG_WAITALL | libc::MSG_PEEK)
        .unwrap();
    assert_eq!(&buf[..n], b"xyz");
    peeker.join().unwrap();
    let mut three = [0u8; 3];
    (&accepted).read_exact(&mut three).unwrap();
    assert_eq!(&three, b"xyz");
}

#[test]
fn msg_oob_and_msg_dontwait_on_receive() {
    let (server, client) = pair();
    let listener = TcpListener::bind(&server, "0.0.0.0:7004").unwrap();
    let stream = TcpStream::connect(&client, "10.0.0.1:7004").unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let mut buf = [0u8; 8];
    let fd = accepted.as_fd();
    // MSG_DONTWAIT on a blocking socket: EAGAIN for this call only.
    let e = server
        .recv_flags(fd, &mut buf, libc::MSG_DONTWAIT)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
    // Urgent data stays in line (SO_OOBINLINE): MSG_OOB is EINVAL, as on
    // Linux with SO_OOBINLINE set, and the byte is read in line.
    client
        .send_flags(stream.as_fd(), b"!", libc::MSG_OOB)
        .unwrap();
    wait_until("the urgent byte", || {
        server.ioctl(fd, sockets_api::Ioctl::FionRead).unwrap() == 1
    });
    let e = server.recv_flags(fd, &mut buf, libc::MSG_OOB).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    assert_eq!(server.recv(fd, &mut buf).unwrap(), 1);
    assert_eq!(buf[0], b'!');
    // A listener is ENOTCONN first; an unconnected stream EINVAL.
    let e = server
        .recv_flags(listener.as_fd(), &mut buf, libc::MSG_OOB)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN));
    let fresh = server
        .socket(Domain::Inet, Type::Stream, Protocol::Default)
        .unwrap();
    let e = server
        .recv_flags(fresh, &mut buf, libc::MSG_OOB)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    // The blocking socket still blocks on a plain read.
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        (&stream).write_all(b"later").unwrap();
        stream
    });
    assert_eq!(server.recv(fd, &mut buf).unwrap(), 5);
    let _stream = writer.join().unwrap();
    // UDP ignores MSG_OOB and MSG_WAITALL on receive, as Linux does.
    let rx = UdpSocket::bind(&server, "0.0.0.0:5004").unwrap();
    let tx = UdpSocket::bind(&client, "0.0.0.0:0").unwrap();
    tx.send_to(b"d1", "10.0.0.1:5004").unwrap();
    tx.send_to(b"d2", "10.0.0.1:5004").unwrap();
    assert_eq!(
        server
            .recv_flags(rx.as_fd(), &mut buf, libc::MSG_OOB)
            .unwrap(),
        2
    );
    assert_eq!(
        server
            .recv_flags(rx.as_fd(), &mut buf, libc::MSG_WAITALL)
            .unwrap(),
        2
    );
}

#[test]
fn keepalive_tuning_is_checked_and_probes_follow_it() {
    let cap = Capture::new("keepalive");
    let (a, b) = builders();
    let (server, client) = StackBuilder::memory_pair(a, b.pcap(&cap.0)).unwrap();
    let listener = TcpListener::bind(&server, "0.0.0.0:7005").unwrap();
    let cs = TcpSocket::new_v4(&client).unwrap();
    let fd = cs.as_fd();
    let defaults = cs.tcp_keepalive().unwrap();
    assert_eq!(defaults, Keepalive::default());
    assert_eq!(defaults.idle, Duration::from_secs(7200));
    for bad in [
        SockOpt::KeepIdle(Duration::ZERO),
        SockOpt::KeepIdle(Duration::from_secs(32_768)),
        SockOpt::KeepIntvl(Duration::from_millis(999)),
        SockOpt::KeepCnt(0),
        SockOpt::KeepCnt(128),
    ] {
        let e = client.setsockopt(fd, bad.clone()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{bad:?}");
    }
    let udp = UdpSocket::bind(&client, "0.0.0.0:0").unwrap();
    let e = client
        .setsockopt(udp.as_fd(), SockOpt::KeepCnt(3))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOPROTOOPT));
    let e = client
        .getsockopt(udp.as_fd(), SockOptName::KeepCnt)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP), "as Linux");

    let tuned = Keepalive {
        idle: Duration::from_secs(1),
        interval: Duration::from_secs(1),
        probes: 3,
    };
    cs.set_tcp_keepalive(&tuned).unwrap();
    assert!(cs.keepalive().unwrap());
    assert_eq!(
        client.getsockopt(fd, SockOptName::KeepCnt).unwrap(),
        SockOptValue::Opt(SockOpt::KeepCnt(3))
    );
    let stream = cs.connect("10.0.0.1:7005".parse().unwrap()).unwrap();
    assert_eq!(stream.tcp_keepalive().unwrap(), tuned);
    let (_accepted, _) = listener.accept().unwrap();
    // The connection is idle: each probe the server answers is one more
    // segment in. Wait for three.
    let base = server.counters().tcp_segments_in;
    wait_until("three keep-alive probes", || {
        server.counters().tcp_segments_in >= base + 3
    });
    assert!(stream.take_error().unwrap().is_none(), "answered probes");
    drop(stream);
    client.stop();
    server.stop();

    // Probes: bare ACKs from the client carrying no new data (seq one
    // below what the peer expects, no payload or one garbage byte).
    let probes: Vec<u64> = cap
        .ipv4_packets()
        .into_iter()
        .filter(|(_, p)| p[9] == 6 && src(p) == B && tcp_flags(p) == ACK)
        .filter(|(_, p)| tcp_payload_len(p) <= 1)
        .map(|(t, _)| t)
        .collect();
    // The handshake's ACK, then the probes, each at least the tuned idle
    // time after the previous traffic (the answer to a probe counts as
    // traffic, so the next comes after `idle` again).
    assert!(probes.len() >= 4, "{probes:?}");
    for w in probes[1..].windows(2) {
        assert!(
            w[1] - w[0] >= 1_000_000 - 1_000,
            "probes at the tuned spacing: {probes:?}"
        );
    }
}

#[test]
fn tcp_socket_builder_and_descriptor_hand_over() {
    let (server, client) = pair();
    let ls = TcpSocket::new_v4(&server).unwrap();
    ls.set_reuseaddr(true).unwrap();
    assert!(ls.reuseaddr().unwrap());
    ls.set_reuseport(true).unwrap();
    assert!(ls.reuseport().unwrap());
    ls.bind("0.0.0.0:7006".parse().unwrap()).unwrap();
    assert_eq!(ls.local_addr().unwrap().port(), 7006);
    let listener = ls.listen(16).unwrap();

    let cs = TcpSocket::new_v4(&client).unwrap();
    cs.set_send_buffer_size(32 * 1024).unwrap();
    cs.set_recv_buffer_size(16 * 1024).unwrap();
    cs.set_nodelay(true).unwrap();
    cs.set_keepalive(true).unwrap();
    cs.set_linger(Some(Duration::from_secs(1))).unwrap();
    assert_eq!(cs.send_buffer_size().unwrap(), 32 * 1024);
    assert!(cs.nodelay().unwrap());
    cs.bind("10.0.0.2:40000".parse().unwrap()).unwrap();
    let stream = cs.connect("10.0.0.1:7006".parse().unwrap()).unwrap();
    assert_eq!(stream.local_addr().unwrap().port(), 40000);
    assert!(stream.nodelay().unwrap());
    assert!(stream.keepalive().unwrap());
    // The sizes reached the connection itself.
    let (accepted, peer) = listener.accept().unwrap();
    assert_eq!(peer.port(), 40000);
    match client
        .getsockopt(stream.as_fd(), SockOptName::SndBuf)
        .unwrap()
    {
        SockOptValue::Opt(SockOpt::SndBuf(n)) => assert_eq!(n, 32 * 1024),
        other => panic!("{other:?}"),
    }

    // into_fd hands the descriptor over open; from_fd takes it back.
    let fd = stream.into_fd().unwrap();
    let mut again = TcpStream::from_fd(&client, fd).unwrap();
    again.write_all(b"still open").unwrap();
    let mut buf = [0u8; 10];
    (&accepted).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still open");
    // Shared handles keep theirs; the caller gets a duplicate.
    let other = again.try_clone().unwrap();
    let dup = again.into_fd().unwrap();
    assert_ne!(dup, other.as_fd());
    assert!(client.close(dup).is_ok());
    (&other).write_all(b"x").unwrap();
    // The wrong kind of descriptor is refused.
    let e = TcpStream::from_fd(&server, listener.as_fd()).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    let lfd = listener.try_clone().unwrap().into_fd().unwrap();
    let l2 = TcpListener::from_fd(&server, lfd).unwrap();
    assert_eq!(l2.local_addr().unwrap().port(), 7006);
    let u = UdpSocket::bind(&client, "0.0.0.0:0").unwrap();
    assert_eq!(
        TcpStream::from_fd(&client, u.as_fd())
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EINVAL)
    );
    let ufd = u.into_fd().unwrap();
    let u2 = UdpSocket::from_fd(&client, ufd).unwrap();
    assert!(u2.local_addr().unwrap().port() != 0);
    assert_eq!(
        TcpStream::from_fd(&client, 9999)
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EBADF)
    );
}

#[test]
fn new_descriptors_take_the_lowest_free_number() {
    // POSIX: socket(2), accept(2) and dup(2) return the lowest free
    // descriptor (ustack finds it without scanning the table).
    let (stack, _other) = pair();
    let fds: Vec<i32> = (0..5)
        .map(|_| {
            stack
                .socket(Domain::Inet, Type::Dgram, Protocol::Default)
                .unwrap()
        })
        .collect();
    stack.close(fds[3]).unwrap();
    stack.close(fds[1]).unwrap();
    let a = stack
        .socket(Domain::Inet, Type::Stream, Protocol::Default)
        .unwrap();
    assert_eq!(a, fds[1]);
    assert_eq!(stack.dup(fds[0]).unwrap(), fds[3]);
    let next = stack
        .socket(Domain::Inet, Type::Dgram, Protocol::Default)
        .unwrap();
    assert_eq!(next, fds[4] + 1, "none free below: a new number");
}
