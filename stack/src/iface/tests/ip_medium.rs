//! Two interfaces on an IP link (bare IPv4 packets, as over TUN): no
//! Ethernet header, no ARP; ICMP, fragments, UDP and TCP as on Ethernet.

use std::net::SocketAddrV4;

use super::*;

fn ip_config(ip: Ipv4Addr, mtu: usize) -> InterfaceConfig {
    let mut c = config(MacAddr([0; 6]), ip);
    c.medium = Medium::Ip;
    c.announce = true; // ignored on an IP link
    c.mtu = mtu;
    c
}

fn ip_pair(mtu: usize) -> Pair {
    Pair::with(ip_config(A_IP, mtu), ip_config(B_IP, mtu))
}

/// Every frame on the link is a bare IPv4 packet whose total length is the
/// frame's, within the MTU.
fn assert_bare_ipv4(frames: &[Vec<u8>], mtu: usize) {
    assert!(!frames.is_empty());
    for f in frames {
        assert_eq!(f[0] >> 4, 4, "an IPv4 packet, no link header");
        assert_eq!(usize::from(u16::from_be_bytes([f[2], f[3]])), f.len());
        assert!(f.len() <= mtu, "{} > {mtu}", f.len());
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13) ^ seed ^ (i >> 9) as u8)
        .collect()
}

#[test]
fn ping_needs_no_arp() {
    let mut p = ip_pair(1500);
    assert_eq!(p.a.medium(), Medium::Ip);
    let h = p.a.icmp_open(Some(7)).unwrap();
    p.a.icmp_send_echo(p.now, h, B_IP, 1, b"hello", &mut p.da)
        .unwrap();
    // Sent at once: nothing waits for resolution.
    assert!(!p.a.needs_poll());
    p.advance(Duration::from_secs(5));
    let reply = p.a.icmp_socket(h).unwrap().recv().expect("echo reply");
    assert_eq!(
        (reply.from, reply.seq, &reply.data[..]),
        (B_IP, 1, &b"hello"[..])
    );
    // Two packets crossed the link, and no ARP or announcement ever did.
    assert_eq!(p.a_sent.len() + p.b_sent.len(), 2);
    assert_bare_ipv4(&p.a_sent, 1500);
    assert_bare_ipv4(&p.b_sent, 1500);
    for c in [p.a.counters(), p.b.counters()] {
        assert_eq!(c.arp_requests_sent + c.arp_replies_sent, 0);
        assert_eq!(c.total_drops(), 0);
    }
    assert!(p.a.neighbors().state(B_IP).is_none());
}

#[test]
fn large_pings_and_datagrams_are_fragmented_and_reassembled() {
    let mut p = ip_pair(576);
    let h = p.a.icmp_open(Some(9)).unwrap();
    let data = pattern(65_000, 1);
    p.a.icmp_send_echo(p.now, h, B_IP, 1, &data, &mut p.da)
        .unwrap();
    p.settle();
    let reply = p.a.icmp_socket(h).unwrap().recv().expect("echo reply");
    assert_eq!(reply.data, data);
    let server = p.a.udp_bind(SocketAddrV4::new(A_IP, 9000)).unwrap();
    let client =
        p.b.udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
            .unwrap();
    let mut buf = vec![0u8; 70_000];
    for (i, size) in [0usize, 548, 549, 8000, 65_507].into_iter().enumerate() {
        let data = pattern(size, i as u8);
        p.b.udp_send_to(
            p.now,
            client,
            &data,
            Some(SocketAddrV4::new(A_IP, 9000)),
            &mut p.db,
        )
        .unwrap();
        p.settle();
        let (n, _) = p.a.udp_recv_from(server, &mut buf).unwrap();
        assert_eq!(&buf[..n], &data[..], "size {size}");
    }
    assert_bare_ipv4(&p.a_sent, 576);
    assert_bare_ipv4(&p.b_sent, 576);
    assert!(p.a.counters().reassembled >= 4);
    assert_eq!(p.a.counters().total_drops(), 0);
    assert_eq!(p.b.counters().total_drops(), 0);
}

#[test]
fn tcp_transfer_is_byte_exact() {
    let mut p = ip_pair(1500);
    let l = p.b.tcp_listen(SocketAddrV4::new(B_IP, 80), 4).unwrap();
    let h =
        p.a.tcp_connect(p.now, SocketAddrV4::new(B_IP, 80), None)
            .unwrap();
    p.advance(Duration::from_millis(10));
    let server = p.b.tcp_accept(l).expect("accepted");
    let data = pattern(300_000, 5);
    let (mut sent, mut got) = (0, Vec::new());
    let mut buf = vec![0u8; 65_536];
    for _ in 0..10_000 {
        if sent < data.len()
            && let Ok(n) = p.a.tcp_send(h, &data[sent..])
        {
            sent += n;
        }
        p.advance(Duration::from_millis(1));
        while let Ok(n) = p.b.tcp_recv(server, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if got.len() == data.len() {
            break;
        }
    }
    assert!(
        got == data,
        "{} of {} bytes, byte-exact",
        got.len(),
        data.len()
    );
    assert_bare_ipv4(&p.a_sent, 1500);
    assert_bare_ipv4(&p.b_sent, 1500);
    assert_eq!(p.a.counters().total_drops(), 0);
}

#[test]
fn other_versions_and_garbage_are_counted_and_dropped() {
    let mut p = ip_pair(1500);
    let mut out = FrameBatch::new();
    // An IPv6 header (version 6), as the kernel may send on a TUN link.
    let mut v6 = vec![0u8; 40];
    v6[0] = 0x60;
    p.a.receive_frame(p.now, &v6, &mut out);
    assert_eq!(p.a.counters().drops(DropReason::IpNotIpv4), 1);
    p.a.receive_frame(p.now, &[], &mut out);
    assert_eq!(p.a.counters().drops(DropReason::Ipv4Truncated), 1);
    p.a.receive_frame(p.now, &[0x45, 0, 0], &mut out);
    assert_eq!(p.a.counters().drops(DropReason::Ipv4Truncated), 2);
    p.a.receive_frame(p.now, &[0x15; 60], &mut out);
    assert_eq!(p.a.counters().drops(DropReason::Ipv4BadVersion), 1);
    // An Ethernet frame carrying IPv4 is not a packet on this link.
    let ping = ip_frame(&[0x45; 40]);
    p.a.receive_frame(p.now, &ping, &mut out);
    assert_eq!(p.a.counters().total_drops(), 5);
    assert!(out.is_empty(), "nothing answered");
    // Every prefix of a real packet is dropped without a panic.
    let h = p.b.icmp_open(Some(1)).unwrap();
    let mut frames = FrameBatch::new();
    p.b.icmp_send_echo(p.now, h, A_IP, 1, b"x", &mut frames)
        .unwrap();
    let packet = frames.iter().next().unwrap().to_vec();
    for len in 0..packet.len() {
        p.a.receive_frame(p.now, &packet[..len], &mut out);
    }
    assert!(out.is_empty());
    p.a.receive_frame(p.now, &packet, &mut out);
    assert_eq!(out.len(), 1, "the whole packet is answered");
    assert_eq!(out.iter().next().unwrap()[0], 0x45);
}
