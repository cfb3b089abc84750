use super::*;

#[test]
fn ping_resolves_arp_and_gets_reply() {
    let mut p = Pair::new();
    let h = p.a.icmp_open(Some(7)).unwrap();
    p.a.icmp_send_echo(p.now, h, B_IP, 1, b"hello", &mut p.da)
        .unwrap();
    // Nothing resolved yet: the request waits in the ARP queue.
    assert_eq!(
        p.a.neighbors().state(B_IP).unwrap().0,
        arp::NeighborState::Incomplete
    );
    p.settle();
    let reply = p.a.icmp_socket(h).unwrap().recv().expect("echo reply");
    assert_eq!(reply.from, B_IP);
    assert_eq!(reply.ident, 7);
    assert_eq!(reply.seq, 1);
    assert_eq!(reply.data, b"hello");
    assert_eq!(reply.ttl, 64);
    assert_eq!(
        p.a.neighbors().state(B_IP),
        Some((arp::NeighborState::Reachable, Some(B_MAC)))
    );
    // B learned A from the request that targeted it (RFC 826 merge).
    assert_eq!(
        p.b.neighbors().state(A_IP),
        Some((arp::NeighborState::Reachable, Some(A_MAC)))
    );
    assert_eq!(p.b.counters().arp_replies_sent, 1);
    assert_eq!(p.b.counters().icmp_echo_replies_sent, 1);
    assert_eq!(p.a.counters().total_drops(), 0);
    assert_eq!(p.b.counters().total_drops(), 0);
}

#[test]
fn packets_queued_during_resolution_all_arrive_in_order() {
    let mut p = Pair::new();
    let h = p.a.icmp_open(None).unwrap();
    for seq in 0..10u16 {
        p.a.icmp_send_echo(p.now, h, B_IP, seq, &seq.to_be_bytes(), &mut p.da)
            .unwrap();
    }
    p.settle();
    let seqs: Vec<u16> = std::iter::from_fn(|| p.a.icmp_socket(h).unwrap().recv())
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    // One ARP request resolved them all.
    assert_eq!(p.a.counters().arp_requests_sent, 1);
}

#[test]
fn payload_sizes_up_to_the_mtu_echo_byte_exact() {
    let mut p = Pair::new();
    let h = p.a.icmp_open(None).unwrap();
    for (seq, size) in [0usize, 1, 56, 1000, 1472].into_iter().enumerate() {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + seq) as u8).collect();
        p.a.icmp_send_echo(p.now, h, B_IP, seq as u16, &data, &mut p.da)
            .unwrap();
        p.settle();
        let reply = p.a.icmp_socket(h).unwrap().recv().expect("reply");
        assert_eq!(reply.data, data, "size {size}");
    }
    // Larger requests are fragmented, and so are the replies.
    for (seq, size) in [1473usize, 8000, 65_000].into_iter().enumerate() {
        let data: Vec<u8> = (0..size).map(|i| (i * 13 + seq) as u8).collect();
        p.a.icmp_send_echo(p.now, h, B_IP, 100 + seq as u16, &data, &mut p.da)
            .unwrap();
        p.settle();
        let reply = p.a.icmp_socket(h).unwrap().recv().expect("reply");
        assert_eq!(reply.data, data, "size {size}");
    }
    assert!(p.a.counters().fragments_sent > 40);
    assert!(p.b.counters().reassembled >= 3);
}

#[test]
fn stale_entry_is_reconfirmed_by_unicast_probe() {
    let mut p = Pair::new();
    let h = p.a.icmp_open(None).unwrap();
    p.a.icmp_send_echo(p.now, h, B_IP, 1, b"x", &mut p.da)
        .unwrap();
    p.settle();
    assert!(p.a.icmp_socket(h).unwrap().recv().is_some());
    let reachable = p.a.neighbors().config().reachable_time;
    p.advance(reachable + Duration::from_secs(1));
    let requests_before = p.a.counters().arp_requests_sent;
    p.a_sent.clear();
    // The expired entry is still used, and a unicast probe re-confirms it.
    p.a.icmp_send_echo(p.now, h, B_IP, 2, b"y", &mut p.da)
        .unwrap();
    p.settle();
    assert_eq!(p.a.icmp_socket(h).unwrap().recv().unwrap().seq, 2);
    assert_eq!(p.a.counters().arp_requests_sent, requests_before + 1);
    let probe = p
        .a_sent
        .iter()
        .find(|f| f[12..14] == [0x08, 0x06])
        .expect("probe sent");
    assert_eq!(&probe[0..6], &B_MAC.0, "probe is unicast");
    assert_eq!(
        p.a.neighbors().state(B_IP).unwrap().0,
        arp::NeighborState::Reachable
    );
}

#[test]
fn unanswered_resolution_gives_up_and_counts_drops() {
    let mut p = Pair::new();
    let h = p.a.icmp_open(None).unwrap();
    let ghost = Ipv4Addr::new(10, 0, 0, 99);
    for seq in 0..3 {
        p.a.icmp_send_echo(p.now, h, ghost, seq, b"?", &mut p.da)
            .unwrap();
    }
    p.advance(Duration::from_secs(10));
    let cfg = p.a.neighbors().config().clone();
    assert_eq!(p.a.counters().arp_requests_sent, cfg.max_attempts as u64);
    assert_eq!(p.a.counters().drops(DropReason::ArpUnresolved), 3);
    assert!(p.a.neighbors().state(ghost).is_none());
    assert_eq!(p.a.poll_at(), None, "no timers left");
}

#[test]
fn gratuitous_arp_announcements_at_start() {
    let mut ca = config(A_MAC, A_IP);
    ca.announce = true;
    let mut p = Pair::with(ca, config(B_MAC, B_IP));
    p.advance(Duration::from_secs(5));
    let announcements: Vec<_> = p
        .a_sent
        .iter()
        .filter(|f| f[12..14] == [0x08, 0x06])
        .map(|f| ArpRepr::parse(&f[14..]).unwrap())
        .collect();
    assert_eq!(announcements.len(), 2);
    for a in announcements {
        assert_eq!(a, ArpRepr::gratuitous(A_MAC, A_IP));
    }
    // B already had no entry for A: an announcement not targeted at B only
    // updates existing entries (RFC 826), so B's cache stays empty.
    assert!(p.b.neighbors().state(A_IP).is_none());
}

#[test]
fn arp_for_other_hosts_is_not_answered() {
    let mut p = Pair::new();
    let req = ArpRepr::request(B_MAC, B_IP, Ipv4Addr::new(10, 0, 0, 77));
    let mut frame = vec![0u8; 42];
    EthernetRepr {
        dst: MacAddr::BROADCAST,
        src: B_MAC,
        ethertype: EtherType::ARP,
    }
    .emit(&mut frame);
    req.emit(&mut frame[14..]);
    let mut out = crate::device::FrameBatch::new();
    p.a.receive_frame(p.now, &frame, &mut out);
    assert!(out.is_empty());
    assert_eq!(p.a.counters().drops(DropReason::ArpNotForUs), 1);
}

/// A valid echo request frame from B to A.
fn echo_frame(payload: &[u8]) -> Vec<u8> {
    let msg = IcmpRepr::EchoRequest {
        ident: 1,
        seq: 1,
        data: payload,
    };
    let ip = Ipv4Repr::new(B_IP, A_IP, IpProtocol::ICMP, 64, msg.buffer_len());
    let mut f = vec![0u8; 14 + 20 + msg.buffer_len()];
    EthernetRepr {
        dst: A_MAC,
        src: B_MAC,
        ethertype: EtherType::IPV4,
    }
    .emit(&mut f);
    ip.emit(&mut f[14..]);
    msg.emit(&mut f[34..]);
    f
}

#[test]
fn malformed_frames_are_counted_by_reason_and_never_answered() {
    let good = echo_frame(b"abcd");
    let mut cases: Vec<(Vec<u8>, DropReason)> = Vec::new();
    cases.push((good[..10].to_vec(), DropReason::EthTruncated));
    let mut f = good.clone();
    f[12..14].copy_from_slice(&[0x00, 0x40]);
    cases.push((f, DropReason::EthIeee8023));
    let mut f = good.clone();
    f[0..6].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
    cases.push((f, DropReason::EthNotForUs));
    let mut f = good.clone();
    f[6] = 0x01;
    cases.push((f, DropReason::EthBadSource));
    let mut f = good.clone();
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    cases.push((f, DropReason::EthUnsupportedType));
    cases.push((good[..14 + 12].to_vec(), DropReason::Ipv4Truncated));
    let mut f = good.clone();
    f[14] = 0x65;
    cases.push((f, DropReason::Ipv4BadVersion));
    let mut f = good.clone();
    f[14] = 0x43;
    cases.push((f, DropReason::Ipv4BadHeaderLength));
    let mut f = good.clone();
    f[14 + 8] = 63;
    cases.push((f, DropReason::Ipv4BadChecksum));
    let mut f = good.clone();
    f[14 + 3] = 200;
    cases.push((f, DropReason::Ipv4Truncated));
    let mut f = good.clone();
    f[14 + 16..14 + 20].copy_from_slice(&[10, 0, 0, 3]);
    refresh_ip_checksum(&mut f);
    cases.push((f, DropReason::Ipv4NotForUs));
    let mut f = good.clone();
    f[14 + 12..14 + 16].copy_from_slice(&[224, 0, 0, 1]);
    refresh_ip_checksum(&mut f);
    cases.push((f, DropReason::Ipv4BadSource));
    let mut f = good.clone();
    f[14 + 8] = 0;
    refresh_ip_checksum(&mut f);
    cases.push((f, DropReason::Ipv4TtlZero));
    let mut f = good.clone();
    f[14 + 6] = 0x20; // MF with a length that is not a multiple of 8
    refresh_ip_checksum(&mut f);
    cases.push((f, DropReason::FragBadLength));
    let mut f = good.clone();
    f[14 + 9] = 99;
    refresh_ip_checksum(&mut f);
    cases.push((f, DropReason::Ipv4UnknownProtocol));
    let mut f = good.clone();
    f[14 + 20 + 9] ^= 0xff;
    cases.push((f, DropReason::IcmpBadChecksum));
    let mut f = good.clone();
    f.truncate(14 + 20 + 4);
    f[14 + 3] = 24;
    refresh_ip_checksum(&mut f);
    cases.push((f, DropReason::IcmpMalformed));
    let mut f = good[..14].to_vec();
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    cases.push((f, DropReason::ArpMalformed));

    for (frame, reason) in cases {
        let mut p = Pair::new();
        let mut out = crate::device::FrameBatch::new();
        p.a.receive_frame(p.now, &frame, &mut out);
        assert_eq!(p.a.counters().drops(reason), 1, "{reason:?}");
        assert_eq!(p.a.counters().total_drops(), 1, "{reason:?} counted once");
        assert!(out.is_empty(), "{reason:?} got an answer");
    }

    // And the unmodified frame is answered (after ARP for B resolves).
    let mut p = Pair::new();
    p.a.receive_frame(p.now, &good, &mut p.da);
    p.settle();
    assert_eq!(p.a.counters().icmp_echo_replies_sent, 1);
    assert_eq!(p.a.counters().total_drops(), 0);
}

fn refresh_ip_checksum(frame: &mut [u8]) {
    let ihl = (frame[14] & 0x0f) as usize * 4;
    frame[14 + 10] = 0;
    frame[14 + 11] = 0;
    let sum = ip::checksum::checksum(&frame[14..14 + ihl]);
    frame[14 + 10..14 + 12].copy_from_slice(&sum.to_be_bytes());
}

#[test]
fn echo_to_broadcast_is_ignored() {
    let mut p = Pair::new();
    let mut f = echo_frame(b"x");
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[14 + 16..14 + 20].copy_from_slice(&[10, 0, 0, 255]);
    refresh_ip_checksum(&mut f);
    let mut out = crate::device::FrameBatch::new();
    p.a.receive_frame(p.now, &f, &mut out);
    assert!(out.is_empty());
    assert_eq!(p.a.counters().drops(DropReason::IcmpBroadcastEcho), 1);
}

#[test]
fn gateway_routes_off_link_traffic() {
    let gw = Ipv4Addr::new(10, 0, 0, 2);
    let mut ca = config(A_MAC, A_IP);
    ca.gateway = Some(gw);
    let mut p = Pair::with(ca, config(B_MAC, B_IP));
    let h = p.a.icmp_open(None).unwrap();
    p.a.icmp_send_echo(p.now, h, Ipv4Addr::new(192, 0, 2, 1), 1, b"x", &mut p.da)
        .unwrap();
    // A resolves the gateway, not the remote address.
    assert!(p.a.neighbors().state(gw).is_some());
    assert!(p.a.neighbors().state(Ipv4Addr::new(192, 0, 2, 1)).is_none());
    p.settle();
    // B is not a router: it drops the datagram as not addressed to it.
    assert_eq!(p.b.counters().drops(DropReason::Ipv4NotForUs), 1);
    // Without a gateway, off-link destinations have no route.
    let mut p = Pair::new();
    let h = p.a.icmp_open(None).unwrap();
    assert_eq!(
        p.a.icmp_send_echo(p.now, h, Ipv4Addr::new(192, 0, 2, 1), 1, b"x", &mut p.da),
        Err(SocketError::NetUnreachable)
    );
}
