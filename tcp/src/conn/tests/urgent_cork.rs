//! Urgent data and TCP_CORK.

use super::*;

#[test]
fn urgent_data_is_delivered_in_line_and_a_read_stops_at_the_mark() {
    let mut w = Wire::new(cfg(), cfg());
    w.b_reads = false;
    w.established();
    w.a.send(b"abc").unwrap();
    w.a.send_urgent(b"XYZ").unwrap();
    w.run(Duration::from_millis(50));
    let (seg, payload) = w
        .sent_a
        .iter()
        .find(|(_, p)| !p.is_empty())
        .cloned()
        .unwrap();
    assert_eq!(payload, b"abcXYZ");
    assert!(seg.flags.has(crate::Flags::URG));
    assert_eq!(
        seg.urgent, 6,
        "RFC 9293 MUST-31: the octet after the urgent data"
    );
    let b = w.b();
    assert!(b.urgent_pending(), "MUST-32");
    assert_eq!(b.urgent_remaining(), 6, "MUST-33");
    assert!(!b.at_mark());
    let mut buf = [0u8; 64];
    assert_eq!(
        b.recv(&mut buf),
        Ok(5),
        "stops before the last urgent octet"
    );
    assert_eq!(&buf[..5], b"abcXY");
    assert!(b.at_mark());
    assert_eq!(b.urgent_remaining(), 1);
    assert_eq!(b.recv(&mut buf), Ok(1));
    assert_eq!(buf[0], b'Z');
    assert!(!b.urgent_pending() && !b.at_mark());
    // Acknowledged: A leaves urgent mode.
    w.run(Duration::from_millis(50));
    assert_eq!(w.a.snd.up, None);
    w.a.send(b"plain").unwrap();
    w.run(Duration::from_millis(50));
    let last = w.sent_a.iter().rev().find(|(_, p)| !p.is_empty()).unwrap();
    assert!(!last.0.flags.has(crate::Flags::URG));
    assert_eq!(w.b().recv(&mut buf), Ok(5));
}

#[test]
fn urgent_data_of_any_length() {
    // RFC 9293 MUST-30: "A TCP MUST support a sequence of urgent data of
    // any length", longer than the 16-bit pointer can reach.
    let big = TcpConfig {
        send_buffer: 1 << 20,
        recv_buffer: 1 << 20,
        ..cfg()
    };
    let mut w = Wire::new(big.clone(), big);
    w.b_reads = false;
    w.established();
    let data = pattern(200_000);
    assert_eq!(w.a.send_urgent(&data), Ok(200_000));
    w.run(Duration::from_millis(200));
    let urg: Vec<u16> = w
        .sent_a
        .iter()
        .filter(|(r, p)| !p.is_empty() && r.flags.has(crate::Flags::URG))
        .map(|(r, _)| r.urgent)
        .collect();
    assert_eq!(urg[0], 0xffff, "too far to say: 65,535");
    assert!(
        urg.iter().any(|&u| u < 0xffff),
        "later segments name the end"
    );
    let b = w.b();
    assert_eq!(b.urgent_remaining(), 200_000);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 70_000];
    while !b.at_mark() {
        let n = b.recv(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got.len(), 199_999, "the mark is the last urgent octet");
    let n = b.recv(&mut buf).unwrap();
    got.extend_from_slice(&buf[..n]);
    assert_eq!(got, data, "delivered in line, byte-exact");
}

#[test]
fn urgent_data_is_not_sent_in_super_segments() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    w.a.send_urgent(&pattern(30_000)).unwrap();
    let now = w.now;
    let mut sizes = Vec::new();
    w.a.poll_transmit_burst(now, 1500, 65_000, |r, x, y, mss| {
        assert!(r.flags.has(crate::Flags::URG));
        sizes.push((x.len() + y.len(), mss));
        true
    });
    assert!(!sizes.is_empty());
    assert!(
        sizes.iter().all(|&(len, mss)| len <= mss && len <= 1448),
        "{sizes:?}"
    );
}

#[test]
fn cork_sends_only_full_segments_until_uncorked() {
    let nodelay = TcpConfig {
        nodelay: true,
        ..cfg()
    };
    let mut w = Wire::new(nodelay, cfg());
    w.established();
    let mss = w.a.mss();
    assert_eq!(mss, 1448);
    let now = w.now;
    w.a.set_cork(now, true);
    assert!(w.a.cork());
    let before = w.sent_a.len();
    w.a.send(b"header").unwrap();
    w.run(Duration::from_millis(50));
    assert!(
        a_data_sizes(&w, before).is_empty(),
        "partial held, NODELAY or not"
    );
    w.a.send(&pattern(2 * mss)).unwrap();
    w.run(Duration::from_millis(50));
    assert_eq!(
        a_data_sizes(&w, before),
        vec![mss, mss],
        "only full segments"
    );
    let now = w.now;
    w.a.set_cork(now, false);
    w.run(Duration::from_millis(20));
    assert_eq!(
        a_data_sizes(&w, before),
        vec![mss, mss, 6],
        "uncorking flushes"
    );
    assert_eq!(w.b_rx.len(), 2 * mss + 6);
}

#[test]
fn a_corked_partial_segment_goes_after_200_ms() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let now = w.now;
    w.a.set_cork(now, true);
    let before = w.sent_a.len();
    let start = w.now;
    w.a.send(b"held").unwrap();
    w.run(Duration::from_millis(190));
    assert!(a_data_sizes(&w, before).is_empty());
    w.run(Duration::from_millis(20));
    assert_eq!(a_data_sizes(&w, before), vec![4], "the 200 ms ceiling");
    let sent_at = w.now;
    assert!(sent_at.duration_since(start) >= Duration::from_millis(200));
    // Still corked: the next partial is held again, for 200 ms.
    let before = w.sent_a.len();
    w.a.send(b"again").unwrap();
    w.run(Duration::from_millis(100));
    assert!(a_data_sizes(&w, before).is_empty());
    w.run(Duration::from_millis(150));
    assert_eq!(a_data_sizes(&w, before), vec![5]);
    // A FIN is not held: shutdown sends the partial at once.
    let before = w.sent_a.len();
    w.a.send(b"last").unwrap();
    w.a.shutdown_write();
    w.run(Duration::from_millis(20));
    assert_eq!(a_data_sizes(&w, before), vec![4]);
    assert!(w.sent_a[before..].iter().any(|(r, _)| r.flags.fin()));
}

#[test]
fn cork_from_the_config_applies_from_the_start() {
    let corked = TcpConfig {
        cork: true,
        nodelay: true,
        ..cfg()
    };
    let mut w = Wire::new(corked, cfg());
    w.a.send(b"early").unwrap();
    w.established();
    w.run(Duration::from_millis(100));
    assert!(a_data_sizes(&w, 0).is_empty());
}
