//! Handshakes completed from SYN cookies.

use super::*;

#[test]
fn syn_cookie_handshake_keeps_scale_and_sack_beside_timestamps() {
    let big = TcpConfig {
        send_buffer: 1 << 20,
        recv_buffer: 1 << 20,
        ..cfg()
    };
    let mut w = cookie_wire(big.clone(), big);
    w.established();
    let synack = &w.sent_b[0].0;
    assert!(synack.flags.syn() && synack.flags.ack());
    let s = w.b().stats();
    assert!(s.sack && s.timestamps, "{s:?}");
    assert_eq!(s.window_scale, Some((7, 7)));
    assert_eq!(s.mss, 1448, "the cookie carried the MSS");
    let data = pattern(2 << 20);
    transfer(&mut w, &data, Duration::from_secs(10));
    assert!(
        w.a.snd.max_wnd > 65_535,
        "scaled window: {}",
        w.a.snd.max_wnd
    );
    // And the other way.
    let back = pattern(300_000);
    let mut off = 0;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while got.len() < back.len() {
        off += w.b().send(&back[off..]).unwrap_or(0);
        w.run(Duration::from_millis(10));
        while let Ok(n) = w.a.recv(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        assert!(w.now < w.a.ts.epoch + Duration::from_secs(20), "stalled");
    }
    assert_eq!(got, back);
}

#[test]
fn syn_cookie_without_timestamps_gives_up_scale_and_sack() {
    let no_ts = TcpConfig {
        timestamps: false,
        ..cfg()
    };
    let mut w = cookie_wire(no_ts, cfg());
    w.established();
    let synack = &w.sent_b[0].0;
    assert_eq!(synack.options.window_scale, None);
    assert!(!synack.options.sack_permitted);
    let s = w.b().stats();
    assert!(!s.sack && !s.timestamps);
    assert_eq!(s.window_scale, None);
    let data = pattern(200_000);
    transfer(&mut w, &data, Duration::from_secs(10));
}

#[test]
fn a_cookie_handshake_ack_may_carry_data() {
    let mut w = cookie_wire(cfg(), cfg());
    // A writes before the handshake completes: its first data segment may
    // arrive with (or be) the final ACK.
    w.a.send(b"hello").unwrap();
    w.run(Duration::from_millis(100));
    assert_eq!(w.b_rx, b"hello");
}

#[test]
fn forged_and_stale_cookie_acks_are_refused() {
    let t0 = Instant::now();
    let cookies = crate::syncookie::SynCookies::new((5, 6), t0);
    let mut ack = TcpRepr {
        src_port: A.port(),
        dst_port: B.port(),
        seq: SeqNum(777),
        ack: SeqNum(0),
        flags: crate::Flags(crate::Flags::ACK),
        window: 100,
        options: crate::TcpOptions::default(),
        urgent: 0,
    };
    let mut x = 12345u32;
    for _ in 0..100_000 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        ack.ack = SeqNum(x);
        assert!(crate::syncookie::check_ack(&cookies, t0, B, A, &ack, 0).is_none());
    }
    let good = cookies.make(t0, B, A, SeqNum(776), 1460);
    ack.ack = good + 1;
    assert!(crate::syncookie::check_ack(&cookies, t0, B, A, &ack, 0).is_some());
    let later = t0 + crate::syncookie::PERIOD * (crate::syncookie::MAX_AGE + 1);
    assert!(
        crate::syncookie::check_ack(&cookies, later, B, A, &ack, 0).is_none(),
        "stale"
    );
    let mut rst = ack;
    rst.flags = crate::Flags(crate::Flags::ACK | crate::Flags::RST);
    assert!(crate::syncookie::check_ack(&cookies, t0, B, A, &rst, 0).is_none());
}
