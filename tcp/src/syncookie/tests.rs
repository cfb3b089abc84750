use super::*;
use std::net::Ipv4Addr;

const L: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
const R: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000);

#[test]
fn a_cookie_returns_the_mss_for_its_tuple_and_isn_only() {
    let t0 = Instant::now();
    let c = SynCookies::new((7, 9), t0);
    let isn = SeqNum(0xfff0_0000);
    for (mss, want) in [
        (1460, 1460),
        (1500, 1460),
        (9000, 8960),
        (100, 536),
        (536, 536),
    ] {
        let cookie = c.make(t0, L, R, isn, mss);
        assert_eq!(c.check(t0, L, R, isn, cookie), Some(want), "mss {mss}");
        assert_eq!(c.check(t0, L, R, isn + 1, cookie), None, "other ISN");
        let other = SocketAddrV4::new(*R.ip(), 40001);
        assert_eq!(c.check(t0, L, other, isn, cookie), None, "other port");
        assert_eq!(
            SynCookies::new((7, 10), t0).check(t0, L, R, isn, cookie),
            None,
            "other key"
        );
    }
}

#[test]
fn a_cookie_expires() {
    let t0 = Instant::now();
    let c = SynCookies::new((1, 2), t0);
    let made = t0 + PERIOD * 5 + Duration::from_secs(3);
    let cookie = c.make(made, L, R, SeqNum(1), 1460);
    for (later, ok) in [
        (Duration::ZERO, true),
        (PERIOD, true),
        (PERIOD * 2, true),
        (PERIOD * 3, false),
        (PERIOD * 256, false),
    ] {
        assert_eq!(
            c.check(made + later, L, R, SeqNum(1), cookie).is_some(),
            ok,
            "{later:?} later"
        );
    }
    assert_eq!(
        c.check(t0, L, R, SeqNum(1), cookie),
        None,
        "from the future"
    );
}

#[test]
fn random_acks_almost_never_pass() {
    let t0 = Instant::now();
    let c = SynCookies::new((0x1234, 0x5678), t0);
    let mut x = 0x9e37_79b9_u32;
    let mut passed = 0;
    for _ in 0..1_000_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if c.check(t0, L, R, SeqNum(x.rotate_left(7)), SeqNum(x))
            .is_some()
        {
            passed += 1;
        }
    }
    // Expected about 1e6 * 24 / 2^32 = 0.006.
    assert!(passed <= 1, "{passed} forged cookies accepted");
}

#[test]
fn options_ride_in_the_timestamp() {
    for now in [0u32, 63, 64, 1_000_000, u32::MAX] {
        for (w, s) in [
            (None, false),
            (Some(7), true),
            (Some(0), false),
            (Some(14), true),
        ] {
            let ts = encode_timestamp(now, w, s);
            assert!(
                (now.wrapping_sub(ts) as i32) >= 0,
                "never ahead of the clock"
            );
            assert!(now.wrapping_sub(ts) < 128);
            assert_eq!(decode_timestamp(ts, now.wrapping_add(50)), Some((w, s)));
        }
    }
    let ts = encode_timestamp(1_000_000, Some(7), true);
    assert_eq!(decode_timestamp(ts, 999_000), None, "echo from the future");
    assert_eq!(
        decode_timestamp(ts, 1_000_000 + 10_000_000),
        None,
        "too old"
    );
    assert_eq!(decode_timestamp(0x1f, 100), None, "no cookie mark");
}

#[test]
fn syn_ack_without_timestamps_carries_only_the_mss() {
    let cfg = TcpConfig::default();
    let syn = TcpRepr {
        src_port: R.port(),
        dst_port: L.port(),
        seq: SeqNum(100),
        ack: SeqNum(0),
        flags: Flags(Flags::SYN),
        window: 1000,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            ..TcpOptions::default()
        },
        urgent: 0,
    };
    let sa = cookie_syn_ack(&cfg, &syn, SeqNum(5), 1000);
    assert_eq!(sa.options.mss, Some(cfg.mss));
    assert_eq!(sa.options.window_scale, None);
    assert!(!sa.options.sack_permitted);
    assert_eq!(sa.ack, SeqNum(101));
    let mut with_ts = syn;
    with_ts.options.timestamps = Some((77, 0));
    let sa = cookie_syn_ack(&cfg, &with_ts, SeqNum(5), 1000);
    assert_eq!(sa.options.window_scale, Some(cfg.window_scale));
    assert!(sa.options.sack_permitted);
    let (val, ecr) = sa.options.timestamps.unwrap();
    assert_eq!(ecr, 77);
    assert_eq!(decode_timestamp(val, 1001), Some((Some(7), true)));
}
