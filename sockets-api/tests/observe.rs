//! `Stack::sockets()` and `Stack::counters()` over two in-memory stacks.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};

use sockets_api::{SocketKind, Stack, StackBuilder, TcpListener, TcpStream, UdpSocket};

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

#[test]
fn sockets_lists_listeners_connections_and_udp() {
    let (a, b) = pair();
    let listener = TcpListener::bind(&a, "0.0.0.0:5000").unwrap();
    let _udp = UdpSocket::bind(&a, "0.0.0.0:5353").unwrap();
    let mut client = TcpStream::connect(&b, "10.0.0.1:5000").unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(&[7u8; 10_000]).unwrap();
    let mut buf = vec![0u8; 10_000];
    server.read_exact(&mut buf[..100]).unwrap();

    let socks = a.sockets();
    let listen = socks
        .iter()
        .find(|s| s.state == "LISTEN")
        .expect("listener listed");
    assert_eq!(listen.kind, SocketKind::Tcp);
    assert_eq!(listen.local.port(), 5000);
    assert_eq!(listen.peer, None);

    let udp = socks
        .iter()
        .find(|s| s.kind == SocketKind::Udp)
        .expect("udp listed");
    assert_eq!(udp.state, "UNCONN");
    assert_eq!(udp.local.port(), 5353);

    let conn = socks
        .iter()
        .find(|s| s.state == "ESTAB" && s.kind == SocketKind::Tcp)
        .expect("connection listed");
    assert_eq!(
        conn.local,
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5000)
    );
    assert_eq!(conn.peer.map(|p| *p.ip()), Some(Ipv4Addr::new(10, 0, 0, 2)));
    // 10,000 bytes were sent, 100 read: the rest waits (or is still on its
    // way); the receive queue never holds more than what was sent.
    assert!(conn.recv_queue <= 9_900);
    let info = conn.tcp.as_ref().expect("tcp details");
    assert!(info.cwnd > 0);
    assert!(info.mss > 0);
    assert!(!info.congestion.is_empty());
    assert!(info.bytes_received >= 100);

    // The client side sees its own connection, with what it sent.
    server.read_exact(&mut buf[100..]).unwrap();
    let csocks = b.sockets();
    let c = csocks
        .iter()
        .find(|s| s.state == "ESTAB")
        .expect("client connection");
    assert_eq!(c.peer.map(|p| p.port()), Some(5000));
    assert!(c.tcp.as_ref().unwrap().bytes_sent >= 10_000);
    assert!(c.tcp.as_ref().unwrap().srtt.is_some());
}

#[test]
fn counters_grow_and_closed_sockets_leave_the_snapshot() {
    let (a, b) = pair();
    let before = a.counters();
    let listener = TcpListener::bind(&a, "0.0.0.0:5001").unwrap();
    let mut client = TcpStream::connect(&b, "10.0.0.1:5001").unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).unwrap();
    let after = a.counters();
    assert!(after.frames_in > before.frames_in);
    assert!(after.tcp_passive_opens > before.tcp_passive_opens);
    let entry = |c: &sockets_api::Counters, n: &str| {
        c.entries()
            .into_iter()
            .find(|e| e.name == n)
            .map(|e| e.value)
            .unwrap()
    };
    assert_eq!(entry(&after, "frames_in"), after.frames_in);
    assert_eq!(entry(&after, "tcp_passive_opens"), after.tcp_passive_opens);

    drop(listener);
    let listed = a.sockets();
    assert!(!listed.iter().any(|s| s.state == "LISTEN"));
    assert!(listed.iter().any(|s| s.state == "ESTAB"));
}

#[test]
fn observer_reads_without_keeping_the_stack_alive() {
    let (a, b) = pair();
    let obs = a.observer();
    let listener = TcpListener::bind(&a, "0.0.0.0:5002").unwrap();
    let _client = TcpStream::connect(&b, "10.0.0.1:5002").unwrap();
    let _server = listener.accept().unwrap();
    assert!(obs.sockets().iter().any(|s| s.state == "ESTAB"));
    assert_eq!(obs.counters().frames_in, a.counters().frames_in);
    assert!(
        obs.tcp_states()
            .iter()
            .any(|(s, n)| *s == tcp::State::Established && *n == 1)
    );
    drop(listener);
    drop(a);
    // The observer holds no Stack: dropping handles is not held up by it.
    let _ = obs.counters();
}
