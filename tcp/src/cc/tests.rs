use std::time::{Duration, Instant};

use super::*;

const MSS: usize = 1000;

#[test]
fn initial_window_rfc6928() {
    assert_eq!(initial_window(1460), 14_600);
    assert_eq!(initial_window(536), 5_360);
    assert_eq!(initial_window(9000), 18_000);
}

#[test]
fn newreno_slow_start_then_linear_growth() {
    let now = Instant::now();
    let mut cc = NewReno::new();
    cc.init(MSS);
    assert_eq!(cc.cwnd(), 10 * MSS);
    // One RTT of ACKs (one per segment) doubles the window.
    for _ in 0..10 {
        cc.on_ack(now, MSS, None, true);
    }
    assert_eq!(cc.cwnd(), 20 * MSS);
    cc.on_loss(now, 20 * MSS);
    assert_eq!(cc.ssthresh(), 10 * MSS);
    assert_eq!(cc.cwnd(), 10 * MSS);
    cc.on_recovery_end(now);
    // Congestion avoidance: +1 MSS per cwnd of acknowledged bytes.
    for _ in 0..10 {
        cc.on_ack(now, MSS, None, true);
    }
    assert_eq!(cc.cwnd(), 11 * MSS);
    // A window that is not used does not grow.
    for _ in 0..100 {
        cc.on_ack(now, MSS, None, false);
    }
    assert_eq!(cc.cwnd(), 11 * MSS);
    cc.on_rto(now, 8 * MSS);
    assert_eq!(cc.cwnd(), MSS);
    assert_eq!(cc.ssthresh(), 4 * MSS);
    cc.on_loss(now, MSS);
    assert_eq!(cc.ssthresh(), 2 * MSS, "never below 2 segments");
}

#[test]
fn cubic_reduces_by_beta_and_regrows_to_w_max_after_k() {
    let t0 = Instant::now();
    let mut cc = Cubic::new();
    cc.init(MSS);
    for _ in 0..90 {
        cc.on_ack(t0, MSS, None, true);
    }
    assert_eq!(cc.cwnd(), 100 * MSS);
    cc.on_loss(t0, 100 * MSS);
    assert_eq!(cc.cwnd(), 70 * MSS, "beta_cubic = 0.7");
    cc.on_recovery_end(t0);
    // K = cbrt((100 - 70) / 0.4) = 4.217 s. Feed ACKs for 4.3 s of 100 ms
    // RTT (long enough for the cubic curve, not the Reno-friendly one, to
    // lead: 42 RTTs of Reno growth reach only ~92 segments).
    let rtt = Duration::from_millis(100);
    let mut now = t0;
    let mut at_k = 0;
    for step in 0..43 {
        now += rtt;
        let segments = cc.cwnd() / MSS;
        for _ in 0..segments {
            cc.on_ack(now, MSS, Some(rtt), true);
        }
        if step == 41 {
            at_k = cc.cwnd() / MSS;
        }
    }
    assert!(
        (97..=103).contains(&at_k),
        "cwnd near W_max at t = K: {at_k}"
    );
}

#[test]
fn cubic_fast_convergence_lowers_w_max() {
    let now = Instant::now();
    let mut cc = Cubic::new();
    cc.init(MSS);
    for _ in 0..90 {
        cc.on_ack(now, MSS, None, true);
    }
    cc.on_loss(now, 100 * MSS); // W_max = 100, cwnd = 70
    cc.on_loss(now, 70 * MSS); // cwnd < W_max: W_max = 70 * 0.85 = 59.5
    assert!((cc.w_max - 59.5).abs() < 1e-9);
    assert_eq!(cc.cwnd(), 49 * MSS);
}

#[test]
fn cubic_reno_friendly_region_at_small_windows_and_short_rtt() {
    // With a tiny RTT and small window, CUBIC's cubic growth is slower than
    // Reno's; the W_est term must keep it at least as fast as Reno's
    // alpha_cubic per RTT.
    let t0 = Instant::now();
    let mut cc = Cubic::new();
    cc.init(MSS);
    cc.on_loss(t0, 10 * MSS); // cwnd 7
    cc.on_recovery_end(t0);
    let rtt = Duration::from_micros(100);
    let mut now = t0;
    for _ in 0..100 {
        now += rtt;
        for _ in 0..cc.cwnd() / MSS {
            cc.on_ack(now, MSS, Some(rtt), true);
        }
    }
    // 100 RTTs at ~0.53 segments per RTT: about +50 segments.
    assert!(
        cc.cwnd() >= 40 * MSS,
        "reno-friendly growth, cwnd {}",
        cc.cwnd() / MSS
    );
}

#[test]
fn parse_algorithm_names() {
    assert_eq!("cubic".parse::<Algorithm>(), Ok(Algorithm::Cubic));
    assert_eq!("NewReno".parse::<Algorithm>(), Ok(Algorithm::NewReno));
    assert_eq!("bbr".parse::<Algorithm>(), Ok(Algorithm::Bbr));
    assert_eq!(Algorithm::Bbr.build().name(), "bbr");
    assert!(
        "vegas"
            .parse::<Algorithm>()
            .unwrap_err()
            .contains("newreno, cubic or bbr")
    );
    assert_eq!(Algorithm::default(), Algorithm::Cubic);
}
