//! Pacing: data segments spaced by len/rate, the release time reported by
//! poll_at, ACKs never held, the initial quantum, super segments cut to
//! the rate, and the rate itself (cwnd/srtt, or the algorithm's).

use std::time::Instant;

use super::*;
use crate::cc::{Algorithm, CongestionControl, NewReno};

fn paced(cap: Option<u64>) -> TcpConfig {
    TcpConfig {
        pacing: true,
        max_pacing_rate: cap,
        send_buffer: 256 * 1024,
        ..cfg()
    }
}

/// The time `len` bytes take at `rate` bytes per second.
fn gap(len: usize, rate: u64) -> Duration {
    Duration::from_nanos((len as u128 * 1_000_000_000 / rate as u128) as u64)
}

/// Once the initial quantum is spent, consecutive data segments leave
/// len/rate apart (never closer by more than the granularity), and the
/// transfer takes about bytes/rate.
#[test]
fn data_segments_are_spaced_by_their_length_over_the_rate() {
    const RATE: u64 = 1_000_000;
    let mut w = Wire::new(paced(Some(RATE)), cfg());
    w.established();
    let data = pattern(200_000);
    let start = w.now;
    let first = w.sent_a.len();
    transfer(&mut w, &data, Duration::from_secs(5));
    let segs: Vec<(Instant, usize)> = w.sent_a[first..]
        .iter()
        .zip(&w.times_a[first..])
        .filter(|((_, p), _)| !p.is_empty())
        .map(|((_, p), t)| (*t, p.len()))
        .collect();
    let quantum = INITIAL_QUANTUM_SEGMENTS;
    let mut exact = 0;
    for pair in segs[quantum..].windows(2) {
        let ((t0, len0), (t1, _)) = (pair[0], pair[1]);
        // A segment may leave up to the granularity before its release
        // time (and the ones after it then keep their spacing).
        let want = gap(len0, RATE);
        assert!(
            t1 - t0 + PACING_GRANULARITY >= want,
            "{:?} apart, {want:?} due",
            t1 - t0
        );
        exact += (t1 - t0 == want) as usize;
    }
    assert!(
        exact * 10 >= segs.len() * 8,
        "most gaps are exactly len/rate: {exact} of {}",
        segs.len()
    );
    let elapsed = segs.last().unwrap().0 - start;
    let least = gap(data.len() - quantum * w.a.stats().mss, RATE);
    assert!(elapsed >= least, "{elapsed:?} < {least:?}");
    assert!(elapsed < least + Duration::from_millis(100), "{elapsed:?}");
    assert!(w.a.stats().pacing_waits > 0);
    assert_eq!(w.a.stats().pacing_rate, RATE);
}

/// While only paced data waits, poll_at is the release time (less the
/// granularity); nothing with data leaves before it, one segment leaves at
/// it.
#[test]
fn poll_at_reports_the_release_time() {
    let mut w = Wire::new(paced(Some(500_000)), cfg());
    w.established();
    let data = pattern(100_000);
    let mut off = w.a.send(&data).unwrap();
    let mut checked = 0;
    for _ in 0..2000 {
        w.run(Duration::from_micros(300));
        off += w.a.send(&data[off..]).unwrap_or(0);
        let Some(release) = w.a.pacing_wait() else {
            continue;
        };
        if release <= w.now {
            continue;
        }
        assert_eq!(w.a.poll_at(), Some(release));
        assert!(w.a.poll_timeout().is_none_or(|t| t >= release));
        let mut lens = Vec::new();
        let now = w.now;
        w.a.poll_transmit(now, 1500, |_, a, b| {
            lens.push(a.len() + b.len());
            true
        });
        assert!(
            lens.iter().all(|&l| l == 0),
            "data before release: {lens:?}"
        );
        lens.clear();
        w.a.poll_transmit(release, 1500, |_, a, b| {
            lens.push(a.len() + b.len());
            true
        });
        assert_eq!(lens.iter().filter(|&&l| l > 0).count(), 1, "{lens:?}");
        checked += 1;
        if checked == 5 {
            return;
        }
    }
    panic!("pacing never held data back ({checked} checks)");
}

/// Pacing holds data, never the ACKs of the data the peer sends.
#[test]
fn acks_are_not_held_by_pacing() {
    let mut w = Wire::new(paced(Some(100_000)), cfg());
    w.established();
    // A spends its quantum and then waits for its release time.
    let data = pattern(50_000);
    w.a.send(&data).unwrap();
    w.run(Duration::from_millis(30));
    let release = w.a.pacing_wait().expect("paced data waits");
    assert!(release > w.now);
    // Two full segments from B: an immediate ACK is due (RFC 5681 4.2).
    let mss = w.b().stats().mss;
    let now = w.now;
    let mut from_b = Vec::new();
    w.b().send(&pattern(2 * mss)).unwrap();
    w.b().poll_transmit(now, 1500, |r, x, y| {
        from_b.push((*r, [x, y].concat()));
        true
    });
    let end = from_b.last().map(|(r, p)| r.seq + p.len()).unwrap();
    for (r, p) in &from_b {
        w.a.handle_segment(now, r, p);
    }
    assert!(w.a.poll_at().is_some_and(|t| t <= now), "ACK due now");
    let mut out = Vec::new();
    w.a.poll_transmit(now, 1500, |r, x, y| {
        out.push((*r, x.len() + y.len()));
        true
    });
    assert_eq!(out.len(), 1, "one pure ACK: {out:?}");
    assert_eq!(out[0].1, 0);
    assert_eq!(out[0].0.ack, end);
    assert_eq!(w.a.pacing_wait(), Some(release), "data still waits");
}

/// Starting from idle, ten segments leave at once whatever the rate; the
/// next one waits for its turn.
#[test]
fn an_initial_quantum_leaves_unpaced() {
    let mut w = Wire::new(paced(Some(1_000)), cfg());
    w.established();
    let mss = w.a.stats().mss;
    w.a.send(&pattern(30 * mss)).unwrap();
    let first = w.sent_a.len();
    w.flush_a();
    assert_eq!(a_data_sizes(&w, first), vec![mss; INITIAL_QUANTUM_SEGMENTS]);
    // Once acknowledged (cwnd grew), one more segment, then a wait of
    // mss/rate (over a second at 1,000 bytes/s).
    w.run(Duration::from_millis(50));
    let sizes = a_data_sizes(&w, first);
    assert_eq!(sizes.len(), INITIAL_QUANTUM_SEGMENTS + 1, "{sizes:?}");
    let release = w.a.pacing_wait().expect("waiting");
    assert_eq!(
        release,
        *w.times_a.last().unwrap() + gap(mss, 1_000) - PACING_GRANULARITY
    );
    // Idle again after everything is acknowledged: a fresh quantum.
    let mut w = Wire::new(paced(Some(1_000)), cfg());
    w.established();
    w.a.send(&pattern(3 * mss)).unwrap();
    w.run(Duration::from_millis(50));
    let first = w.sent_a.len();
    w.a.send(&pattern(10 * mss)).unwrap();
    w.flush_a();
    assert_eq!(a_data_sizes(&w, first), vec![mss; 10]);
}

/// With segmentation offload, a paced flow's super segments hold about a
/// millisecond of data at its rate (at least two segments); fast flows
/// keep the device's whole burst.
#[test]
fn super_segments_are_cut_to_the_rate() {
    let sizes = |cap: u64, delay: Duration| {
        let mut w = Wire::new(paced(Some(cap)), cfg());
        w.delay = delay;
        w.established();
        w.a.send(&pattern(40_000)).unwrap();
        let now = w.now;
        let mut lens = Vec::new();
        w.a.poll_transmit_burst(now, 1500, 65_000, |_, a, b, _| {
            lens.push(a.len() + b.len());
            true
        });
        (lens, w.a.stats().mss, w.a.stats().pacing_rate)
    };
    // 2 MB/s: 1953 bytes a millisecond, so the two-segment floor.
    let (lens, mss, rate) = sizes(2_000_000, Duration::from_millis(1));
    assert_eq!(rate, 2_000_000);
    assert_eq!(lens[0], 2 * mss, "{lens:?}");
    assert!(lens.iter().all(|&l| l <= 2 * mss), "{lens:?}");
    // 10 MB/s: 9765 bytes a millisecond, 6 segments.
    let (lens, mss, rate) = sizes(10_000_000, Duration::from_micros(100));
    assert_eq!(rate, 10_000_000);
    assert_eq!(lens[0], 9_765 / mss * mss, "{lens:?}");
    // Over 1 GB/s (a 20 us round trip): the device's burst bounds it,
    // cwnd the total.
    let (lens, mss, rate) = sizes(u64::MAX, Duration::from_micros(10));
    assert!(rate > 1_000_000_000, "{rate}");
    assert_eq!(lens[0], 10 * mss, "the initial window in one: {lens:?}");
}

/// Without an algorithm's rate: cwnd/srtt times 2 while cwnd is below
/// ssthresh/2, times 1.2 after; a cap bounds it; off means no rate.
#[test]
fn the_rate_follows_cwnd_and_srtt() {
    let mut w = Wire::new(paced(None), cfg());
    w.established();
    let expect = |c: &Connection, percent: u128| {
        let s = c.stats();
        let us = s.srtt.unwrap().min(s.min_rtt.unwrap() * 2).as_micros();
        (s.cwnd.max(s.in_flight) as u128 * percent * 10_000 / us) as u64
    };
    assert_eq!(w.a.stats().pacing_rate, expect(&w.a, 200));
    // Grow the window: the rate follows it.
    transfer(&mut w, &pattern(100_000), Duration::from_secs(2));
    let before = w.a.stats().pacing_rate;
    assert_eq!(before, expect(&w.a, 200));
    // After a loss: congestion avoidance, 120%.
    let now = w.now;
    let flight = w.a.stats().cwnd;
    w.a.cc.ctrl.on_loss(now, flight);
    assert!(w.a.stats().cwnd >= w.a.stats().ssthresh / 2);
    assert_eq!(w.a.stats().pacing_rate, expect(&w.a, 120));
    // An srtt inflated beyond twice the minimum RTT (by millisecond
    // timestamp samples) does not slow the rate below cwnd / (2 min RTT).
    let min = w.a.rtt.min_rtt().unwrap();
    for _ in 0..50 {
        w.a.rtt.sample(min * 10);
    }
    assert!(w.a.stats().srtt.unwrap() > min * 2);
    let s = w.a.stats();
    assert_eq!(
        s.pacing_rate,
        (s.cwnd.max(s.in_flight) as u128 * 120 * 10_000 / (min * 2).as_micros()) as u64
    );
    // A cap.
    w.a.cfg.max_pacing_rate = Some(12_345);
    assert_eq!(w.a.stats().pacing_rate, 12_345);
    // Off: no rate, nothing held.
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    assert_eq!(w.a.stats().pacing_rate, 0);
    assert_eq!(w.a.pacing_wait(), None);
}

/// An algorithm that sets its own pacing rate (as BBR does).
#[derive(Debug)]
struct FixedRate(NewReno, u64);

impl CongestionControl for FixedRate {
    fn name(&self) -> &'static str {
        "fixed"
    }
    fn init(&mut self, mss: usize) {
        self.0.init(mss)
    }
    fn cwnd(&self) -> usize {
        self.0.cwnd()
    }
    fn ssthresh(&self) -> usize {
        self.0.ssthresh()
    }
    fn on_ack(&mut self, now: Instant, acked: usize, rtt: Option<Duration>, limited: bool) {
        self.0.on_ack(now, acked, rtt, limited)
    }
    fn on_loss(&mut self, now: Instant, flight: usize) {
        self.0.on_loss(now, flight)
    }
    fn on_recovery_end(&mut self, now: Instant) {
        self.0.on_recovery_end(now)
    }
    fn on_rto(&mut self, now: Instant, flight: usize) {
        self.0.on_rto(now, flight)
    }
    fn on_idle_restart(&mut self) {
        self.0.on_idle_restart()
    }
    fn set_loss_window(&mut self) {
        self.0.set_loss_window()
    }
    fn set_mss(&mut self, mss: usize) {
        self.0.set_mss(mss)
    }
    fn exit_slow_start(&mut self, now: Instant) {
        self.0.exit_slow_start(now)
    }
    fn pacing_rate(&self) -> Option<u64> {
        Some(self.1)
    }
}

/// The algorithm's rate is used as it is (a cap still bounds it), and
/// segments are spaced by it.
#[test]
fn an_algorithms_own_rate_is_used() {
    let mut w = Wire::new(paced(None), cfg());
    w.established();
    let mut fixed = FixedRate(NewReno::new(), 700_000);
    fixed.init(w.a.stats().mss);
    w.a.cc.ctrl = Box::new(fixed);
    assert_eq!(w.a.stats().pacing_rate, 700_000);
    let first = w.sent_a.len();
    transfer(&mut w, &pattern(60_000), Duration::from_secs(2));
    let times: Vec<(Instant, usize)> = w.sent_a[first..]
        .iter()
        .zip(&w.times_a[first..])
        .filter(|((_, p), _)| !p.is_empty())
        .map(|((_, p), t)| (*t, p.len()))
        .collect();
    for pair in times[INITIAL_QUANTUM_SEGMENTS..].windows(2) {
        assert!(pair[1].0 - pair[0].0 + PACING_GRANULARITY >= gap(pair[0].1, 700_000));
    }
    w.a.cfg.max_pacing_rate = Some(300_000);
    assert_eq!(w.a.stats().pacing_rate, 300_000);
}

/// BBR needs pacing (its model sends at a rate): a BBR connection paces
/// at BBR's rate with `TcpConfig::pacing` off, as Linux's BBR turns on
/// internal pacing; CUBIC with the same configuration does not pace.
#[test]
fn bbr_paces_without_being_asked() {
    for (algorithm, paces) in [(Algorithm::Bbr, true), (Algorithm::Cubic, false)] {
        let config = TcpConfig {
            congestion: algorithm,
            send_buffer: 256 * 1024,
            ..cfg()
        };
        assert!(!config.pacing);
        let mut w = Wire::new(config, cfg());
        w.established();
        transfer(&mut w, &pattern(200_000), Duration::from_secs(5));
        let s = w.a.stats();
        assert_eq!(s.pacing_rate > 0, paces, "{algorithm:?}: {s:?}");
        if paces {
            assert_eq!(Some(s.pacing_rate), w.a.cc.ctrl.pacing_rate());
        }
    }
}
