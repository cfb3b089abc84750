//! Socket options on the interface: options before connect, IP_TOS,
//! TCP_MAXSEG, SO_REUSEPORT listeners, TCP_DEFER_ACCEPT, ports held by
//! TIME-WAIT, and SO_REUSEADDR for UDP.

use std::net::SocketAddrV4;

use super::*;

const B80: SocketAddrV4 = SocketAddrV4::new(B_IP, 80);

/// IPv4 frames carrying TCP in `frames`.
fn tcp_frames(frames: &[Vec<u8>]) -> Vec<&Vec<u8>> {
    frames
        .iter()
        .filter(|f| f.len() > 34 && f[12..14] == [0x08, 0x00] && f[23] == 6)
        .collect()
}

#[test]
fn options_set_before_connect_apply_from_the_syn() {
    let mut p = Pair::new();
    let lh = p.b.tcp_listen(B80, 8).unwrap();
    p.b.tcp_listener_mut(lh).unwrap().config_mut().tos = 0x28;
    let mut cfg = p.a.tcp_config().clone();
    cfg.mss = 1000;
    cfg.tos = 0xb8 | 0b01;
    cfg.nodelay = true;
    cfg.user_timeout = Duration::from_secs(7);
    let h = p.a.tcp_connect_with(p.now, B80, None, cfg).unwrap();
    assert_eq!(p.a.tcp(h).unwrap().mss(), 536, "before the handshake");
    p.advance(Duration::from_millis(10));
    let c = p.a.tcp(h).unwrap();
    assert!(c.is_established());
    assert_eq!(c.mss(), 1000 - 12, "TCP_MAXSEG bounds what we send");
    assert_eq!(c.user_timeout(), Duration::from_secs(7));
    assert!(c.config().nodelay);
    let bh = p.b.tcp_accept(lh).unwrap();
    assert_eq!(
        p.b.tcp(bh).unwrap().mss(),
        1000 - 12,
        "advertised in the SYN"
    );
    assert_eq!(
        p.b.tcp(bh).unwrap().tos(),
        0x28,
        "inherited from the listener"
    );
    p.a.tcp_send(h, &[7u8; 5000]).unwrap();
    p.advance(Duration::from_millis(10));
    let from_a = tcp_frames(&p.a_sent);
    assert!(from_a.len() >= 4);
    assert!(
        from_a.iter().all(|f| f[15] == 0xb8),
        "every segment carries the TOS, ECN bits clear"
    );
    assert!(from_a.iter().all(|f| f.len() <= 14 + 40 + 12 + 988));
    let from_b = tcp_frames(&p.b_sent);
    assert!(!from_b.is_empty());
    assert!(from_b.iter().all(|f| f[15] == 0x28), "SYN-ACK and ACKs");
    // Too small an MSS is refused, as Linux's setsockopt (EINVAL).
    let mut cfg = p.a.tcp_config().clone();
    cfg.mss = 50;
    assert_eq!(
        p.a.tcp_connect_with(p.now, B80, None, cfg),
        Err(SocketError::InvalidInput)
    );
}

#[test]
fn reuseport_listeners_share_the_connections_and_survive_each_other() {
    let mut p = Pair::new();
    let any80 = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80);
    let l1 = p.b.tcp_listen_with(any80, 128, true).unwrap();
    let l2 = p.b.tcp_listen_with(any80, 128, true).unwrap();
    assert_eq!(p.b.tcp_listen(any80, 8), Err(SocketError::AddrInUse));
    assert_eq!(p.b.tcp_listen(B80, 8), Err(SocketError::AddrInUse));
    let mut first = Vec::new();
    for _ in 0..64 {
        first.push(p.a.tcp_connect(p.now, B80, None).unwrap());
    }
    p.advance(Duration::from_millis(20));
    let (n1, n2) = (
        p.b.tcp_listener(l1).unwrap().pending(),
        p.b.tcp_listener(l2).unwrap().pending(),
    );
    assert_eq!(n1 + n2, 64);
    assert!(n1 > 0 && n2 > 0, "spread: {n1} and {n2}");
    // Closing one resets what waits in its queue; the other listens on.
    p.b.tcp_close_listener(p.now, l1);
    p.advance(Duration::from_millis(20));
    let reset = first
        .iter()
        .filter(|&&h| p.a.tcp(h).unwrap().error() == Some(::tcp::TcpError::Reset))
        .count();
    assert_eq!(reset, n1);
    for _ in 0..64 {
        p.a.tcp_connect(p.now, B80, None).unwrap();
    }
    p.advance(Duration::from_millis(20));
    assert_eq!(p.b.tcp_listener(l2).unwrap().pending(), n2 + 64);
    p.b.tcp_check_invariants().unwrap();
    // A listener without SO_REUSEPORT does not join, nor let others join.
    p.b.tcp_close_listener(p.now, l2);
    let solo = p.b.tcp_listen(any80, 8).unwrap();
    assert_eq!(
        p.b.tcp_listen_with(any80, 8, true),
        Err(SocketError::AddrInUse)
    );
    assert!(!p.b.tcp_listener(solo).unwrap().reuseport());
}

#[test]
fn defer_accept_waits_for_data() {
    let mut p = Pair::new();
    let lh = p.b.tcp_listen(B80, 8).unwrap();
    p.b.tcp_listener_mut(lh)
        .unwrap()
        .set_defer_accept(Some(Duration::from_secs(5)));
    let h = p.a.tcp_connect(p.now, B80, None).unwrap();
    p.advance(Duration::from_millis(500));
    assert!(p.a.tcp(h).unwrap().is_established());
    assert_eq!(p.b.tcp_accept(lh), Err(SocketError::WouldBlock));
    assert_eq!(p.b.tcp_listener(lh).unwrap().embryonic(), 1);
    p.a.tcp_send(h, b"GET /").unwrap();
    p.advance(Duration::from_millis(10));
    let bh = p.b.tcp_accept(lh).expect("handed over with its data");
    assert_eq!(p.b.tcp(bh).unwrap().recv_queued(), 5);
    assert_eq!(p.b.tcp_listener(lh).unwrap().embryonic(), 0);
    p.b.tcp_check_invariants().unwrap();
}

#[test]
fn defer_accept_hands_over_after_its_period_without_data() {
    let mut p = Pair::new();
    let lh = p.b.tcp_listen(B80, 8).unwrap();
    p.b.tcp_listener_mut(lh)
        .unwrap()
        .set_defer_accept(Some(Duration::from_secs(2)));
    p.a.tcp_connect(p.now, B80, None).unwrap();
    p.advance(Duration::from_millis(1900));
    assert_eq!(p.b.tcp_accept(lh), Err(SocketError::WouldBlock));
    p.advance(Duration::from_millis(200));
    let bh = p.b.tcp_accept(lh).expect("handed over after the period");
    assert_eq!(p.b.tcp(bh).unwrap().recv_queued(), 0);
    // Closing the listener resets one still deferred.
    let h = p.a.tcp_connect(p.now, B80, None).unwrap();
    p.advance(Duration::from_millis(100));
    p.b.tcp_close_listener(p.now, lh);
    p.advance(Duration::from_millis(100));
    assert_eq!(p.a.tcp(h).unwrap().error(), Some(::tcp::TcpError::Reset));
    p.b.tcp_check_invariants().unwrap();
}

#[test]
fn a_port_stays_in_use_until_time_wait_ends() {
    let mut p = Pair::new();
    p.b.tcp_listen(B80, 8).unwrap();
    let local = SocketAddrV4::new(A_IP, 40_000);
    assert!(!p.a.tcp_port_in_use(40_000, false));
    let h = p.a.tcp_connect(p.now, B80, Some(local)).unwrap();
    assert!(p.a.tcp_port_in_use(40_000, false), "while connecting");
    p.advance(Duration::from_millis(10));
    assert!(p.a.tcp_port_in_use(40_000, false));
    p.a.tcp_close(p.now, h);
    p.advance(Duration::from_millis(10));
    // Orphaned, in FIN-WAIT-2 or TIME-WAIT: still the port's.
    assert!(p.a.tcp_port_in_use(40_000, false));
    assert!(!p.a.tcp_port_in_use(40_001, false));
    p.a.tcp_check_invariants().unwrap();
    p.advance(Duration::from_secs(1));
    assert!(p.a.tcp_port_in_use(40_000, false));
    p.advance(Duration::from_secs(120));
    assert_eq!(p.a.tcp_time_wait_count(), 0);
    assert_eq!(p.a.tcp_connection_count(), 0);
    assert!(
        !p.a.tcp_port_in_use(40_000, false),
        "free once TIME-WAIT ends"
    );
    p.a.tcp_check_invariants().unwrap();
}

#[test]
fn udp_reuseaddr_unicast_to_the_newest_broadcast_to_all() {
    let mut p = Pair::new();
    let port = 5353;
    let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
    let s1 = p.a.udp_bind_with(any, true).unwrap();
    let s2 = p.a.udp_bind_with(any, true).unwrap();
    assert_eq!(p.a.udp_bind(any), Err(SocketError::AddrInUse));
    assert!(p.a.udp_socket(s2).unwrap().reuseaddr());
    let tx = p.b.udp_bind(SocketAddrV4::new(B_IP, 9000)).unwrap();
    p.b.udp_socket_mut(tx).unwrap().set_tos(0x48);
    p.b.udp_send_to(
        p.now,
        tx,
        b"uni",
        Some(SocketAddrV4::new(A_IP, port)),
        &mut p.db,
    )
    .unwrap();
    p.settle();
    assert_eq!(p.a.udp_socket(s2).unwrap().queued(), 1, "the newest");
    assert_eq!(p.a.udp_socket(s1).unwrap().queued(), 0);
    let udp_from_b: Vec<_> = p
        .b_sent
        .iter()
        .filter(|f| f.len() > 34 && f[12..14] == [0x08, 0x00] && f[23] == 17)
        .collect();
    assert!(udp_from_b.iter().all(|f| f[15] == 0x48), "IP_TOS on UDP");
    let bcast = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 255), port);
    p.b.udp_send_to(p.now, tx, b"all", Some(bcast), &mut p.db)
        .unwrap();
    p.settle();
    assert_eq!(p.a.udp_socket(s2).unwrap().queued(), 2);
    assert_eq!(p.a.udp_socket(s1).unwrap().queued(), 1, "broadcast to all");
    // The newest closes: the older one takes unicast again.
    p.a.udp_close(s2);
    p.b.udp_send_to(
        p.now,
        tx,
        b"uni",
        Some(SocketAddrV4::new(A_IP, port)),
        &mut p.db,
    )
    .unwrap();
    p.settle();
    assert_eq!(p.a.udp_socket(s1).unwrap().queued(), 2);
    // A third joins (as newest), then the middle of three closes.
    let s3 = p.a.udp_bind_with(any, true).unwrap();
    let s4 = p.a.udp_bind_with(any, true).unwrap();
    p.a.udp_close(s3);
    p.b.udp_send_to(p.now, tx, b"all", Some(bcast), &mut p.db)
        .unwrap();
    p.settle();
    assert_eq!(p.a.udp_socket(s4).unwrap().queued(), 1);
    assert_eq!(p.a.udp_socket(s1).unwrap().queued(), 3);
    p.a.udp_close(s1);
    p.a.udp_close(s4);
    assert!(p.a.udp_bind(any).is_ok(), "free once all closed");
}

#[test]
fn tcp_with_reschedules_the_connection_itself() {
    let mut p = Pair::new();
    let lh = p.b.tcp_listen(B80, 8).unwrap();
    let h = p.a.tcp_connect(p.now, B80, None).unwrap();
    p.advance(Duration::from_millis(10));
    let bh = p.b.tcp_accept(lh).unwrap();
    assert!(!p.a.needs_poll());
    // A change made through the closure is scheduled without anything
    // else to call: the FIN goes out on the next poll.
    assert_eq!(p.a.tcp_with(h, |c| c.shutdown_write()), Some(()));
    assert!(p.a.needs_poll());
    p.advance(Duration::from_millis(10));
    assert_eq!(p.b.tcp(bh).unwrap().state(), ::tcp::State::CloseWait);
    // A stale handle: the closure does not run.
    p.a.tcp_abort(p.now, h);
    p.a.tcp_close(p.now, h);
    p.advance(Duration::from_millis(10));
    let mut ran = false;
    assert_eq!(p.a.tcp_with(h, |_| ran = true), None);
    assert!(!ran);
    p.a.tcp_check_invariants().unwrap();
}
