//! ICMP errors reaching TCP (RFC 1122 4.2.3.9, RFC 5461, RFC 1191 6.5),
//! checked against the connection's state (RFC 5927).

use std::net::SocketAddrV4;

use super::*;

/// A pair whose ARP caches already know each other.
fn resolved_pair() -> Pair {
    let mut p = Pair::new();
    let h = p.a.icmp_open(Some(9)).unwrap();
    p.a.icmp_send_echo(p.now, h, B_IP, 1, b"x", &mut p.da)
        .unwrap();
    p.settle();
    p
}

/// Throws away what A sent (it never reaches B).
fn lose_a_frames(p: &mut Pair) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 70_000];
    let mut lost = Vec::new();
    while let Some(n) = p.db.recv(p.now, &mut buf).unwrap() {
        lost.push(buf[..n].to_vec());
    }
    lost
}

#[test]
fn port_and_protocol_unreachable_abort_a_connection_being_opened() {
    for (code, want) in [
        (3u8, SocketError::ConnectionRefused),
        (2, SocketError::ProtocolUnavailable),
        (13, SocketError::HostUnreachable),
    ] {
        let mut p = resolved_pair();
        let remote = SocketAddrV4::new(B_IP, 80);
        let h = p.a.tcp_connect(p.now, remote, None).unwrap();
        p.a.poll(p.now, &mut p.da);
        assert_eq!(lose_a_frames(&mut p).len(), 1, "the SYN");
        let (local, iss) = {
            let c = p.a.tcp(h).unwrap();
            (c.local(), c.snd_una())
        };
        let mut out = FrameBatch::new();
        // A guess at the sequence number is not believed (RFC 5927).
        p.a.receive_frame(
            p.now,
            &tcp_unreachable(code, 0, local, remote, iss + 7),
            &mut out,
        );
        assert_eq!(p.a.tcp(h).unwrap().state(), ::tcp::State::SynSent);
        p.a.receive_frame(
            p.now,
            &tcp_unreachable(code, 0, local, remote, iss),
            &mut out,
        );
        let c = p.a.tcp(h).unwrap();
        assert_eq!(c.state(), ::tcp::State::Closed, "code {code}");
        assert_eq!(c.error().map(SocketError::from), Some(want));
    }
}

#[test]
fn net_and_host_unreachable_are_soft_errors_reported_on_timeout() {
    let mut p = resolved_pair();
    let remote = SocketAddrV4::new(B_IP, 80);
    let h = p.a.tcp_connect(p.now, remote, None).unwrap();
    p.a.poll(p.now, &mut p.da);
    lose_a_frames(&mut p);
    let (local, iss) = {
        let c = p.a.tcp(h).unwrap();
        (c.local(), c.snd_una())
    };
    let mut out = FrameBatch::new();
    p.a.receive_frame(p.now, &tcp_unreachable(1, 0, local, remote, iss), &mut out);
    assert_eq!(
        p.a.tcp(h).unwrap().state(),
        ::tcp::State::SynSent,
        "RFC 1122 4.2.3.9: MUST NOT abort"
    );
    // Nothing answers: the connect times out and reports what ICMP said.
    for _ in 0..200 {
        p.now += Duration::from_secs(1);
        p.a.poll(p.now, &mut p.da);
        lose_a_frames(&mut p);
    }
    let c = p.a.tcp(h).unwrap();
    assert_eq!(c.state(), ::tcp::State::Closed);
    assert_eq!(
        c.error().map(SocketError::from),
        Some(SocketError::HostUnreachable)
    );
}

#[test]
fn fragmentation_needed_retransmits_at_the_new_size_at_once_without_reducing_the_window() {
    let mut p = resolved_pair();
    p.b.tcp_listen(SocketAddrV4::new(B_IP, 80), 4).unwrap();
    let remote = SocketAddrV4::new(B_IP, 80);
    let h = p.a.tcp_connect(p.now, remote, None).unwrap();
    p.advance(Duration::from_millis(10));
    let cwnd = p.a.tcp(h).unwrap().stats().cwnd;
    p.a.tcp_send(h, &[5u8; 8000]).unwrap();
    p.a.poll(p.now, &mut p.da);
    let lost = lose_a_frames(&mut p);
    assert!(lost.iter().any(|f| f.len() > 1300), "sent at MTU 1500");
    let (local, una) = {
        let c = p.a.tcp(h).unwrap();
        (c.local(), c.snd_una())
    };
    let mut out = FrameBatch::new();
    p.a.receive_frame(
        p.now,
        &tcp_unreachable(4, 1280, local, remote, una),
        &mut out,
    );
    // Same instant: no timer has run.
    p.a.poll(p.now, &mut p.da);
    let again = lose_a_frames(&mut p);
    assert!(!again.is_empty(), "retransmitted at once");
    assert!(
        again.iter().all(|f| f.len() <= 14 + 1280),
        "at the new size"
    );
    let s = p.a.tcp(h).unwrap().stats();
    assert_eq!(s.rto_count, 0);
    assert_eq!(s.pmtu_retransmissions, 1);
    assert_eq!(s.mss, 1228);
    assert_eq!(s.cwnd, cwnd / 1448 * 1228, "the same window in segments");
    // The retransmissions arrive; everything is acknowledged.
    for f in &again {
        p.b.receive_frame(p.now, f, &mut p.db);
    }
    p.advance(Duration::from_millis(50));
    assert_eq!(p.a.tcp(h).unwrap().send_queued(), 0);
}
