//! UDP, fragmentation, reassembly and ICMP errors between two interfaces.

use std::net::SocketAddrV4;

use super::*;

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

fn pair_with_mtu(mtu: usize) -> Pair {
    let mut ca = config(A_MAC, A_IP);
    let mut cb = config(B_MAC, B_IP);
    ca.mtu = mtu;
    cb.mtu = mtu;
    Pair::with(ca, cb)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7) ^ seed ^ (i >> 8) as u8)
        .collect()
}

#[test]
fn udp_round_trip_with_addresses() {
    let mut p = Pair::new();
    let server = p.a.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 7)).unwrap();
    let client = p.b.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let client_port = p.b.udp_socket(client).unwrap().local_addr().port();
    assert!(::udp::EPHEMERAL_PORTS.contains(&client_port));
    p.b.udp_send_to(p.now, client, b"ping", Some(sa(A_IP, 7)), &mut p.db)
        .unwrap();
    p.settle();
    let mut buf = [0u8; 64];
    let (n, from) = p.a.udp_recv_from(server, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    assert_eq!(from, sa(B_IP, client_port));
    assert_eq!(
        p.a.udp_recv_from(server, &mut buf),
        Err(SocketError::WouldBlock)
    );
    p.a.udp_send_to(p.now, server, b"pong", Some(from), &mut p.da)
        .unwrap();
    p.settle();
    let (n, from) = p.b.udp_recv_from(client, &mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"pong"[..], sa(A_IP, 7)));
}

#[test]
fn large_datagrams_cross_a_576_byte_mtu_byte_exact() {
    let mut p = pair_with_mtu(576);
    let server = p.a.udp_bind(sa(A_IP, 9000)).unwrap();
    let client = p.b.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let mut buf = vec![0u8; 70_000];
    for (i, size) in [0usize, 1, 548, 549, 1472, 1473, 8000, 65_507]
        .into_iter()
        .enumerate()
    {
        let data = pattern(size, i as u8);
        p.b.udp_send_to(p.now, client, &data, Some(sa(A_IP, 9000)), &mut p.db)
            .unwrap();
        p.settle();
        let (n, _) = p.a.udp_recv_from(server, &mut buf).unwrap();
        assert_eq!(&buf[..n], &data[..], "size {size}");
    }
    // Every frame that crossed the link fits the MTU.
    assert!(
        p.a_sent
            .iter()
            .chain(&p.b_sent)
            .all(|f| f.len() <= 14 + 576)
    );
    assert_eq!(p.a.reassembler().held_bytes(), 0);
    assert_eq!(p.a.counters().total_drops(), 0);
    assert!(p.b.counters().fragments_sent > 120);
}

#[test]
fn oversized_and_df_datagrams_are_refused() {
    let mut p = Pair::new();
    let s = p.b.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let dst = Some(sa(A_IP, 9));
    assert_eq!(
        p.b.udp_send_to(p.now, s, &vec![0; 65_508], dst, &mut p.db),
        Err(SocketError::MessageTooBig(65_507))
    );
    p.b.udp_socket_mut(s).unwrap().set_dont_fragment(true);
    assert_eq!(
        p.b.udp_send_to(p.now, s, &[0; 1473], dst, &mut p.db),
        Err(SocketError::MessageTooBig(1500))
    );
    assert_eq!(
        p.b.udp_send_to(p.now, s, &[0; 1472], dst, &mut p.db),
        Ok(1472)
    );
}

#[test]
fn port_unreachable_reaches_the_connected_socket_only() {
    let mut p = Pair::new();
    let connected = p.b.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    p.b.udp_connect(connected, sa(A_IP, 4444)).unwrap();
    p.b.udp_send_to(p.now, connected, b"anyone?", None, &mut p.db)
        .unwrap();
    let loose = p.b.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    p.b.udp_send_to(p.now, loose, b"anyone?", Some(sa(A_IP, 4445)), &mut p.db)
        .unwrap();
    p.settle();
    assert_eq!(
        icmp_of_type(&p.a_sent, 3),
        vec![3, 3],
        "two port unreachables"
    );
    assert_eq!(p.a.counters().drops(DropReason::UdpNoSocket), 2);
    let mut buf = [0u8; 16];
    assert_eq!(
        p.b.udp_recv_from(connected, &mut buf),
        Err(SocketError::ConnectionRefused)
    );
    // Reported once.
    assert_eq!(
        p.b.udp_recv_from(connected, &mut buf),
        Err(SocketError::WouldBlock)
    );
    assert_eq!(
        p.b.udp_recv_from(loose, &mut buf),
        Err(SocketError::WouldBlock)
    );
}

#[test]
fn icmp_errors_are_rate_limited() {
    let mut p = Pair::new();
    let s = p.b.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    for _ in 0..200 {
        p.b.udp_send_to(p.now, s, b"x", Some(sa(A_IP, 1)), &mut p.db)
            .unwrap();
    }
    p.settle();
    let sent = p.a.counters().icmp_errors_sent;
    assert_eq!(sent, 50, "the burst, no more");
    assert_eq!(p.a.counters().drops(DropReason::IcmpErrorRateLimited), 150);
    // A second later the bucket has refilled (1000/s, capped at the burst).
    p.advance(Duration::from_secs(1));
    p.b.udp_send_to(p.now, s, b"x", Some(sa(A_IP, 1)), &mut p.db)
        .unwrap();
    p.settle();
    assert_eq!(p.a.counters().icmp_errors_sent, 51);
}

#[test]
fn no_icmp_error_about_broadcasts() {
    let mut p = Pair::new();
    let s = p.b.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    p.b.udp_send_to(
        p.now,
        s,
        b"hello all",
        Some(sa(Ipv4Addr::new(10, 0, 0, 255), 1)),
        &mut p.db,
    )
    .unwrap();
    p.b.udp_send_to(
        p.now,
        s,
        b"hello all",
        Some(sa(Ipv4Addr::BROADCAST, 1)),
        &mut p.db,
    )
    .unwrap();
    p.settle();
    assert_eq!(p.a.counters().drops(DropReason::UdpNoSocket), 2);
    assert_eq!(p.a.counters().icmp_errors_sent, 0);
}

#[test]
fn broadcast_datagrams_reach_wildcard_sockets() {
    let mut p = Pair::new();
    let server = p.a.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 67)).unwrap();
    let s = p.b.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 68)).unwrap();
    p.b.udp_send_to(
        p.now,
        s,
        b"discover",
        Some(sa(Ipv4Addr::BROADCAST, 67)),
        &mut p.db,
    )
    .unwrap();
    p.settle();
    let mut buf = [0u8; 16];
    assert_eq!(p.a.udp_recv_from(server, &mut buf).unwrap().0, 8);
}

#[test]
fn unknown_protocol_gets_protocol_unreachable() {
    let mut p = Pair::new();
    let mut pkt = vec![0u8; 28];
    let repr = Ipv4Repr::new(B_IP, A_IP, IpProtocol(99), 64, 8);
    repr.emit(&mut pkt);
    p.a.receive_frame(p.now, &ip_frame(&pkt), &mut p.da);
    p.settle();
    assert_eq!(icmp_of_type(&p.a_sent, 3), vec![2]);
    assert_eq!(p.a.counters().drops(DropReason::Ipv4UnknownProtocol), 1);
}

#[test]
fn path_mtu_learned_from_fragmentation_needed() {
    let mut p = Pair::new();
    let s = p.a.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let sport = p.a.udp_socket(s).unwrap().local_addr().port();
    // B claims a router on the way needs 1000 bytes for A's 1400-byte datagram.
    let mut orig = Ipv4Repr::new(A_IP, B_IP, IpProtocol::UDP, 64, 1380);
    orig.dont_fragment = true;
    let mut quote = vec![0u8; 28];
    orig.emit(&mut quote);
    quote[20..22].copy_from_slice(&sport.to_be_bytes());
    quote[22..24].copy_from_slice(&53u16.to_be_bytes());
    let msg = IcmpRepr::DestUnreachable {
        code: ip::icmp::dest_unreachable::FRAG_NEEDED,
        next_hop_mtu: 1000,
        original: &quote,
    };
    let mut pkt = vec![0u8; 20 + msg.buffer_len()];
    Ipv4Repr::new(B_IP, A_IP, IpProtocol::ICMP, 64, msg.buffer_len()).emit(&mut pkt);
    msg.emit(&mut pkt[20..]);
    p.a.receive_frame(p.now, &ip_frame(&pkt), &mut p.da);
    assert_eq!(p.a.path_mtu(p.now, B_IP), 1000);
    assert_eq!(p.a.counters().icmp_errors_received, 1);
    let before = p.a.counters().fragments_sent;
    p.a.udp_send_to(p.now, s, &[7; 1400], Some(sa(B_IP, 9)), &mut p.da)
        .unwrap();
    p.settle();
    assert_eq!(p.a.counters().fragments_sent, before + 2);
    // A forged tiny MTU is clamped to 576.
    let msg = IcmpRepr::DestUnreachable {
        code: ip::icmp::dest_unreachable::FRAG_NEEDED,
        next_hop_mtu: 100,
        original: &quote,
    };
    msg.emit(&mut pkt[20..]);
    p.a.receive_frame(p.now, &ip_frame(&pkt), &mut p.da);
    assert_eq!(p.a.path_mtu(p.now, B_IP), 576);
}

/// The first fragment (of two) of a datagram from B to A, carrying `proto`
/// with `body` as the start of its payload.
fn first_fragment(proto: IpProtocol, body: &[u8]) -> Vec<u8> {
    let mut repr = Ipv4Repr::new(B_IP, A_IP, proto, 64, 64);
    repr.more_fragments = true;
    repr.ident = 0x4242;
    let mut pkt = vec![0u8; 20 + 64];
    repr.emit(&mut pkt);
    pkt[20..20 + body.len()].copy_from_slice(body);
    pkt
}

#[test]
fn reassembly_timeout_sends_time_exceeded_and_frees_memory() {
    let mut p = Pair::new();
    // Resolve ARP first so only the error is in flight later.
    let s = p.b.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    p.b.udp_send_to(p.now, s, b"hi", Some(sa(A_IP, 1)), &mut p.db)
        .unwrap();
    p.settle();
    p.a_sent.clear();
    let echo = [8u8, 0, 0, 0, 0, 1, 0, 1];
    p.a.receive_frame(
        p.now,
        &ip_frame(&first_fragment(IpProtocol::ICMP, &echo)),
        &mut p.da,
    );
    assert!(p.a.reassembler().held_bytes() > 0);
    p.advance(Duration::from_secs(29));
    assert!(icmp_of_type(&p.a_sent, 11).is_empty(), "not before 30 s");
    p.advance(Duration::from_secs(2));
    assert_eq!(
        icmp_of_type(&p.a_sent, 11),
        vec![1],
        "Time Exceeded, reassembly"
    );
    assert_eq!(p.a.reassembler().held_bytes(), 0);
    assert_eq!(p.a.counters().drops(DropReason::FragTimeout), 1);
    // B recognises the quote as its own datagram.
    assert!(p.b.counters().icmp_errors_received >= 1);
}

#[test]
fn no_time_exceeded_about_an_icmp_error_or_without_the_first_fragment() {
    let mut p = Pair::new();
    let unreachable = [3u8, 3, 0, 0, 0, 0, 0, 0];
    p.a.receive_frame(
        p.now,
        &ip_frame(&first_fragment(IpProtocol::ICMP, &unreachable)),
        &mut p.da,
    );
    // A second datagram whose first fragment never arrives.
    let mut repr = Ipv4Repr::new(B_IP, A_IP, IpProtocol::UDP, 64, 16);
    repr.frag_offset = 64;
    repr.ident = 7;
    let mut pkt = vec![0u8; 36];
    repr.emit(&mut pkt);
    p.a.receive_frame(p.now, &ip_frame(&pkt), &mut p.da);
    p.advance(Duration::from_secs(31));
    assert!(icmp_of_type(&p.a_sent, 11).is_empty());
    assert_eq!(p.a.counters().drops(DropReason::FragTimeout), 2);
    assert_eq!(p.a.counters().icmp_errors_sent, 0);
}

#[test]
fn bind_errors() {
    let mut p = Pair::new();
    p.a.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 53)).unwrap();
    assert_eq!(p.a.udp_bind(sa(A_IP, 53)), Err(SocketError::AddrInUse));
    assert_eq!(
        p.a.udp_bind(sa(Ipv4Addr::new(10, 0, 0, 9), 54)),
        Err(SocketError::AddrNotAvailable)
    );
    let h = p.a.udp_bind(sa(A_IP, 55)).unwrap();
    p.a.udp_close(h);
    p.a.udp_bind(sa(A_IP, 55))
        .expect("port free again after close");
    let h = p.a.udp_bind(sa(A_IP, 0)).unwrap();
    assert_eq!(
        p.a.udp_send_to(p.now, h, b"x", None, &mut p.da),
        Err(SocketError::DestAddrRequired)
    );
}

#[test]
fn full_receive_queue_drops_and_counts() {
    let mut ca = config(A_MAC, A_IP);
    ca.udp_rcvbuf = 3 * (1000 + ::udp::DATAGRAM_OVERHEAD);
    let mut p = Pair::with(ca, config(B_MAC, B_IP));
    let server = p.a.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 7)).unwrap();
    let client = p.b.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    for _ in 0..5 {
        p.b.udp_send_to(p.now, client, &[1; 1000], Some(sa(A_IP, 7)), &mut p.db)
            .unwrap();
    }
    p.settle();
    assert_eq!(p.a.udp_socket(server).unwrap().queued(), 3);
    assert_eq!(p.a.counters().drops(DropReason::UdpQueueFull), 2);
}

#[test]
fn fragments_in_reverse_order_with_duplicates_are_reassembled() {
    let mut p = Pair::new();
    let server = p.a.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 7)).unwrap();
    let client = p.b.udp_bind(sa(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let data = pattern(5000, 3);
    let mut out = FrameBatch::new();
    // Resolve ARP first, so the fragments come out as frames.
    p.b.udp_send_to(p.now, client, b"warm-up", Some(sa(A_IP, 7)), &mut p.db)
        .unwrap();
    p.settle();
    let mut buf = vec![0u8; 6000];
    p.a.udp_recv_from(server, &mut buf).unwrap();
    p.b.udp_send_to(p.now, client, &data, Some(sa(A_IP, 7)), &mut out)
        .unwrap();
    let frames: Vec<Vec<u8>> = out.iter().map(|f| f.to_vec()).collect();
    assert_eq!(frames.len(), 4);
    for f in frames.iter().rev().chain(frames.iter().take(2)) {
        p.a.receive_frame(p.now, f, &mut p.da);
    }
    let (n, _) = p.a.udp_recv_from(server, &mut buf).unwrap();
    assert_eq!(&buf[..n], &data[..]);
    assert_eq!(
        p.a.udp_recv_from(server, &mut buf),
        Err(SocketError::WouldBlock)
    );
}
