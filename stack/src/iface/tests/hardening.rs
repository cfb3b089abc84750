//! The interface against hostile peers: ARP learning and MAC lock time,
//! martian sources, ICMP "fragmentation needed" checked against TCP state
//! (RFC 5927), the orphan limit, and SYN floods from spoofed on-link
//! sources.

use std::net::SocketAddrV4;

use super::*;
use ::tcp::{Flags, SeqNum, TcpOptions, TcpRepr};

fn arp_frame(op: ArpRepr, src_mac: MacAddr, dst_mac: MacAddr) -> Vec<u8> {
    let mut frame = vec![0u8; 42];
    EthernetRepr {
        dst: dst_mac,
        src: src_mac,
        ethertype: EtherType::ARP,
    }
    .emit(&mut frame);
    op.emit(&mut frame[14..]);
    frame
}

/// A frame from B's MAC to A's with a TCP segment from `src` to `dst`.
fn tcp_frame(src: SocketAddrV4, dst: SocketAddrV4, seg: &TcpRepr) -> Vec<u8> {
    let mut tcp = vec![0u8; seg.header_len()];
    seg.emit_header(&mut tcp);
    ::tcp::fill_checksum(&mut tcp, *src.ip(), *dst.ip());
    let ip = Ipv4Repr::new(*src.ip(), *dst.ip(), IpProtocol::TCP, 64, tcp.len());
    let mut packet = vec![0u8; 20];
    ip.emit(&mut packet);
    packet.extend_from_slice(&tcp);
    ip_frame(&packet)
}

fn syn(src_port: u16, dst_port: u16, seq: u32) -> TcpRepr {
    TcpRepr {
        src_port,
        dst_port,
        seq: SeqNum(seq),
        ack: SeqNum(0),
        flags: Flags(Flags::SYN),
        window: 1024,
        options: TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        },
        urgent: 0,
    }
}

#[test]
fn an_arp_sender_off_our_prefix_is_answered_but_not_learned() {
    let mut p = Pair::new();
    let stranger = Ipv4Addr::new(192, 168, 9, 9);
    let mac = MacAddr([2, 9, 9, 9, 9, 9]);
    let req = ArpRepr::request(mac, stranger, A_IP);
    let mut out = FrameBatch::new();
    p.a.receive_frame(p.now, &arp_frame(req, mac, MacAddr::BROADCAST), &mut out);
    assert_eq!(
        out.iter().count(),
        1,
        "a request for our address is answered"
    );
    assert!(p.a.neighbors().state(stranger).is_none(), "not learned");
    assert_eq!(p.a.counters().defenses.arp_foreign_senders, 1);
}

#[test]
fn a_confirmed_mac_is_locked_for_a_second_then_changes_with_a_warning() {
    let mut p = Pair::new();
    let h = p.a.icmp_open(Some(7)).unwrap();
    p.a.icmp_send_echo(p.now, h, B_IP, 1, b"x", &mut p.da)
        .unwrap();
    p.settle();
    assert_eq!(p.a.neighbors().state(B_IP).and_then(|s| s.1), Some(B_MAC));
    let thief = MacAddr([2, 6, 6, 6, 6, 6]);
    let reply = ArpRepr {
        op: ArpOp::Reply,
        sender_mac: thief,
        sender_ip: B_IP,
        target_mac: A_MAC,
        target_ip: A_IP,
    };
    let mut out = FrameBatch::new();
    p.a.receive_frame(p.now, &arp_frame(reply, thief, A_MAC), &mut out);
    assert_eq!(
        p.a.neighbors().state(B_IP).and_then(|s| s.1),
        Some(B_MAC),
        "within the lock time the MAC stays"
    );
    assert_eq!(p.a.counters().defenses.arp_mac_changes_locked, 1);
    p.now += Duration::from_secs(2);
    p.a.receive_frame(p.now, &arp_frame(reply, thief, A_MAC), &mut out);
    assert_eq!(p.a.neighbors().state(B_IP).and_then(|s| s.1), Some(thief));
    assert_eq!(p.a.counters().defenses.arp_mac_changes, 1);
}

#[test]
fn martian_sources_are_dropped() {
    let mut out = FrameBatch::new();
    let mut p = Pair::new();
    for src in [
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(0, 1, 2, 3),
        Ipv4Addr::new(240, 0, 0, 1),
        Ipv4Addr::new(224, 0, 0, 5),
        Ipv4Addr::new(10, 0, 0, 255),
    ] {
        let s = syn(1000, 80, 1);
        let f = tcp_frame(
            SocketAddrV4::new(src, 1000),
            SocketAddrV4::new(A_IP, 80),
            &s,
        );
        p.a.receive_frame(p.now, &f, &mut out);
    }
    assert!(out.is_empty(), "no answer to a martian");
    assert_eq!(p.a.counters().drops(DropReason::Ipv4BadSource), 5);
}

#[test]
fn fragmentation_needed_must_quote_a_sequence_number_in_flight() {
    let mut p = Pair::new();
    p.b.tcp_listen(SocketAddrV4::new(B_IP, 80), 4).unwrap();
    let remote = SocketAddrV4::new(B_IP, 80);
    let h = p.a.tcp_connect(p.now, remote, None).unwrap();
    p.advance(Duration::from_millis(10));
    let local = p.a.tcp(h).unwrap().local();
    // Data in flight: sent, not delivered yet.
    p.a.tcp_send(h, &[1u8; 3000]).unwrap();
    p.a.poll(p.now, &mut p.da);
    let (una, nxt) = {
        let c = p.a.tcp(h).unwrap();
        (c.snd_una(), c.snd_nxt())
    };
    assert!(nxt > una, "data in flight");
    let mut out = FrameBatch::new();
    // A blind guess: right ports, sequence number outside the flight.
    p.a.receive_frame(
        p.now,
        &tcp_unreachable(4, 1280, local, remote, nxt + 100_000),
        &mut out,
    );
    assert_eq!(p.a.path_mtu(p.now, B_IP), 1500, "not believed");
    assert_eq!(p.a.counters().drops(DropReason::IcmpFragNeededStale), 1);
    // Wrong ports.
    let other = SocketAddrV4::new(B_IP, 81);
    p.a.receive_frame(
        p.now,
        &tcp_unreachable(4, 1280, local, other, una + 1),
        &mut out,
    );
    assert_eq!(p.a.path_mtu(p.now, B_IP), 1500);
    // Genuine: it quotes a segment in flight.
    p.a.receive_frame(
        p.now,
        &tcp_unreachable(4, 1280, local, remote, una + 1),
        &mut out,
    );
    assert_eq!(p.a.path_mtu(p.now, B_IP), 1280);
}

#[test]
fn connections_closed_beyond_the_orphan_limit_are_reset() {
    let mut cb = config(B_MAC, B_IP);
    cb.tcp_limits.max_orphans = 3;
    let mut p = Pair::with(config(A_MAC, A_IP), cb);
    let l = p.b.tcp_listen(SocketAddrV4::new(B_IP, 80), 16).unwrap();
    let remote = SocketAddrV4::new(B_IP, 80);
    let clients: Vec<_> = (0..6)
        .map(|_| p.a.tcp_connect(p.now, remote, None).unwrap())
        .collect();
    p.advance(Duration::from_millis(10));
    // B closes every connection; A never closes its side, so B's side
    // waits in FIN-WAIT-2 as an orphan.
    let mut accepted = 0;
    while let Ok(h) = p.b.tcp_accept(l) {
        p.b.tcp_close(p.now, h);
        accepted += 1;
    }
    assert_eq!(accepted, 6);
    p.advance(Duration::from_millis(10));
    assert_eq!(p.b.tcp_orphan_count(), 3);
    let d = p.b.counters().defenses;
    assert_eq!((d.orphans_over_limit, d.orphans_now), (3, 3));
    let reset = clients
        .iter()
        .filter(|&&h| p.a.tcp(h).unwrap().error() == Some(::tcp::TcpError::Reset))
        .count();
    assert_eq!(
        reset, 3,
        "the peers of the connections over the limit are told"
    );
    p.b.tcp_check_invariants().unwrap();
}

#[test]
fn a_syn_flood_from_spoofed_on_link_sources_keeps_arp_and_memory_bounded() {
    // A /16: 65,534 possible on-link sources, each SYN-ACK (a cookie) needs
    // an ARP resolution that never completes.
    let wide = |mac, ip| {
        let mut c = InterfaceConfig::new(mac, Ipv4Cidr::new(ip, 16).unwrap());
        c.announce = false;
        c
    };
    let mut p = Pair::with(wide(A_MAC, A_IP), wide(B_MAC, B_IP));
    let l = p.a.tcp_listen(SocketAddrV4::new(A_IP, 80), 128).unwrap();
    let mut out = FrameBatch::new();
    let mut x = 0x1234_5678u32;
    for i in 0..50_000u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let src = Ipv4Addr::new(10, 0, (x >> 8) as u8, (x as u8).max(3));
        let s = syn(1024 + (i % 60_000) as u16, 80, x);
        let f = tcp_frame(
            SocketAddrV4::new(src, s.src_port),
            SocketAddrV4::new(A_IP, 80),
            &s,
        );
        p.a.receive_frame(p.now, &f, &mut out);
        out.clear();
        if i % 1000 == 0 {
            p.now += Duration::from_millis(10);
            p.a.poll(p.now, &mut out);
            out.clear();
        }
    }
    let max_entries = p.a.neighbors().config().max_entries;
    assert!(p.a.neighbors().len() <= max_entries);
    let c = p.a.counters();
    assert!(c.memory.arp <= 2 << 20, "ARP holds {} bytes", c.memory.arp);
    assert!(c.defenses.syncookies_sent > 40_000);
    assert!(p.a.tcp_connection_count() <= 128);
    // A genuine neighbor still gets in at once.
    let h =
        p.b.tcp_connect(p.now, SocketAddrV4::new(A_IP, 80), None)
            .unwrap();
    p.advance(Duration::from_millis(10));
    assert!(p.b.tcp(h).unwrap().is_established());
    assert!(p.a.tcp_accept(l).is_ok());
    p.a.tcp_check_invariants().unwrap();
}
