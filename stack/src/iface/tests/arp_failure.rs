//! Address resolution that gives up is reported to the sockets whose
//! packets it dropped, as a local ICMP host unreachable (Linux
//! `arp_error_report`).

use super::*;

/// On our link, never answering ARP.
const GHOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 77);

#[test]
fn tcp_connect_to_a_silent_neighbor_fails_with_host_unreachable_at_three_seconds() {
    let mut p = Pair::new();
    let start = p.now;
    let h =
        p.a.tcp_connect(p.now, SocketAddrV4::new(GHOST, 80), None)
            .unwrap();
    let mut failed_at = None;
    for _ in 0..100 {
        p.advance(Duration::from_millis(100));
        let conn = p.a.tcp(h).unwrap();
        if conn.is_closed() {
            assert_eq!(conn.error(), Some(::tcp::TcpError::HostUnreachable));
            failed_at = Some(p.now - start);
            break;
        }
    }
    let failed_at = failed_at.expect("the connect failed");
    assert!(
        failed_at >= Duration::from_secs(2) && failed_at <= Duration::from_secs(4),
        "failed after {failed_at:?}"
    );
    assert_eq!(
        SocketError::from(::tcp::TcpError::HostUnreachable),
        SocketError::HostUnreachable
    );
    let c = p.a.counters();
    assert!(c.arp_failures_reported >= 1);
    assert_eq!(c.arp_requests_sent, 3, "three requests, 1 s apart");
    assert!(c.drops(DropReason::ArpUnresolved) >= 1);
    assert_eq!(c.icmp_errors_received, 0, "nothing arrived from the wire");
    assert!(p.a.neighbors().is_empty());
}

#[test]
fn connected_udp_socket_gets_host_unreachable() {
    let mut p = Pair::new();
    let u =
        p.a.udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
            .unwrap();
    p.a.udp_connect(u, SocketAddrV4::new(GHOST, 53)).unwrap();
    assert_eq!(p.a.udp_send_to(p.now, u, b"query", None, &mut p.da), Ok(5));
    p.advance(Duration::from_millis(2900));
    assert_eq!(
        p.a.udp_send_to(p.now, u, b"again", None, &mut p.da),
        Ok(5),
        "nothing known before ARP gives up"
    );
    p.advance(Duration::from_millis(200));
    // The next send reports the pending error, once.
    assert_eq!(
        p.a.udp_send_to(p.now, u, b"third", None, &mut p.da),
        Err(SocketError::HostUnreachable)
    );
    let mut buf = [0u8; 16];
    assert_eq!(p.a.udp_recv_from(u, &mut buf), Err(SocketError::WouldBlock));
    assert_eq!(p.a.counters().arp_failures_reported, 2);
}

#[test]
fn unconnected_udp_socket_hears_nothing() {
    // Like Linux without IP_RECVERR.
    let mut p = Pair::new();
    let u =
        p.a.udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
            .unwrap();
    let to = Some(SocketAddrV4::new(GHOST, 53));
    p.a.udp_send_to(p.now, u, b"query", to, &mut p.da).unwrap();
    p.advance(Duration::from_secs(4));
    assert_eq!(p.a.counters().arp_failures_reported, 1);
    assert_eq!(p.a.udp_send_to(p.now, u, b"query", to, &mut p.da), Ok(5));
}

#[test]
fn established_connection_only_notes_a_soft_error() {
    // The neighbor answered once, then went silent: its entry goes stale,
    // probes fail, later packets are queued and dropped. An established
    // connection is not aborted by it (RFC 1122 4.2.3.9), it keeps
    // retransmitting.
    let mut p = Pair::new();
    p.b.tcp_listen(SocketAddrV4::new(B_IP, 80), 4).unwrap();
    let h =
        p.a.tcp_connect(p.now, SocketAddrV4::new(B_IP, 80), None)
            .unwrap();
    p.advance(Duration::from_millis(10));
    assert!(p.a.tcp(h).unwrap().is_established());
    // B disappears; A's entry is forgotten, so the next data needs ARP.
    p.a.ip.neighbors.remove(B_IP);
    p.a.tcp_send(h, b"hello?").unwrap();
    p.a.poll(p.now, &mut p.da);
    let mut sink = FrameBatch::new();
    let mut now = p.now;
    for _ in 0..50 {
        now += Duration::from_millis(100);
        p.a.poll(now, &mut sink);
    }
    assert!(p.a.counters().arp_failures_reported >= 1);
    let conn = p.a.tcp(h).unwrap();
    assert!(!conn.is_closed(), "established connections survive");
}

/// A datagram sent from an application thread to a neighbour not yet
/// resolved is queued and its ARP request leaves from `poll`: the
/// interface must say it needs that poll now, or a sleeping event loop
/// would send the request only at its next deadline (seconds later).
#[test]
fn a_packet_waiting_for_arp_asks_for_a_poll() {
    let mut p = Pair::new();
    let u =
        p.a.udp_bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
            .unwrap();
    assert!(!p.a.needs_poll());
    let mut out = FrameBatch::new();
    p.a.udp_send_to(p.now, u, b"x", Some(SocketAddrV4::new(GHOST, 9)), &mut out)
        .unwrap();
    assert!(out.is_empty(), "the request is not sent by the send call");
    assert!(p.a.needs_poll());
    p.a.poll(p.now, &mut out);
    assert_eq!(out.len(), 1, "the ARP request");
    assert!(!p.a.needs_poll());
}
