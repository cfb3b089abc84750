//! BBR's model and state machine, fed synthetic rate samples.

use super::*;

const MSS: usize = 1000;

/// A path of fixed bandwidth and RTT with a queue: one call is one round
/// trip. The sender puts data in flight at its pacing rate (within cwnd);
/// the path delivers at most its bandwidth; what is beyond the BDP waits in
/// the queue and lengthens the RTT.
struct Path {
    bbr: Bbr,
    now: Instant,
    delivered: u64,
    /// Bytes in flight.
    flight: f64,
    /// Bytes per second.
    bw: u64,
    rtt: Duration,
    /// Every mode the sender went through, in order.
    modes: Vec<BbrMode>,
    /// When each mode in `modes` began.
    since: Vec<Instant>,
    /// ProbeBW phases: (cycle index, start, pacing gain).
    phases: Vec<(usize, Instant, f64)>,
}

impl Path {
    fn new(bw: u64, rtt: Duration, seed: u64) -> Self {
        let mut bbr = Bbr::new(seed);
        bbr.init(MSS);
        bbr.on_ack(Instant::now(), 0, Some(rtt), true);
        let flight = bbr.cwnd() as f64;
        Path {
            bbr,
            now: Instant::now(),
            delivered: 0,
            flight,
            bw,
            rtt,
            modes: vec![BbrMode::Startup],
            since: vec![Instant::now()],
            phases: Vec::new(),
        }
    }

    /// One round trip, its deliveries reported in ACKs of 2 segments.
    /// `rate` overrides the delivery rate sampled (an application-limited
    /// sender).
    fn round(&mut self, app_limited: bool, rate: Option<u64>) {
        let base = self.rtt.as_secs_f64();
        let bdp = self.bw as f64 * base;
        let delivering = (self.flight / base).min(self.bw as f64);
        let queued = (self.flight - bdp).max(0.0);
        let rtt = self.rtt + Duration::from_secs_f64(queued / self.bw as f64);
        let rate = rate.unwrap_or(delivering as u64);
        let round_bytes = (delivering * rtt.as_secs_f64()) as usize;
        let acks = (round_bytes / (2 * MSS)).max(1);
        let prior = self.delivered;
        for _ in 0..acks {
            self.now += rtt / acks as u32;
            self.delivered += 2 * MSS as u64;
            let in_flight = (self.flight as u64).saturating_sub(2 * MSS as u64);
            let rs = RateSample {
                delivery_rate: Some(rate),
                interval: rtt,
                delivered: self.delivered - prior,
                prior_delivered: prior,
                total_delivered: self.delivered,
                rtt: Some(rtt),
                is_app_limited: app_limited,
                acked_sacked: 2 * MSS as u64,
                newly_lost: 0,
                prior_in_flight: in_flight + 2 * MSS as u64,
                in_flight,
            };
            self.bbr.on_rate_sample(self.now, &rs);
            if self.modes.last() != Some(&self.bbr.mode()) {
                self.modes.push(self.bbr.mode());
                self.since.push(self.now);
            }
            let idx = self.bbr.cycle_idx;
            if self.bbr.mode() == BbrMode::ProbeBw
                && self.phases.last().is_none_or(|&(i, _, _)| i != idx)
            {
                self.phases.push((idx, self.now, self.bbr.pacing_gain()));
            }
            // Sending follows pacing, within cwnd.
            let pacing = self.bbr.pacing_rate().unwrap() as f64;
            let sent = pacing * rtt.as_secs_f64() / acks as f64;
            self.flight = (self.flight - 2.0 * MSS as f64 + sent)
                .min(self.bbr.cwnd() as f64)
                .max(2.0 * MSS as f64);
        }
    }

    fn rounds(&mut self, n: usize) {
        for _ in 0..n {
            self.round(false, None);
        }
    }
}

#[test]
fn the_max_filter_keeps_ten_rounds() {
    let mut f = MaxFilter::default();
    f.update(1, 100);
    for r in 2..=10 {
        f.update(r, 10);
    }
    assert_eq!(f.get(), 100, "round 1 is within 10 rounds of round 10");
    f.update(11, 20);
    assert_eq!(f.get(), 20, "round 1 left the window");
    f.update(11, 30);
    f.update(11, 25);
    assert_eq!(f.get(), 30, "the maximum within a round");
}

#[test]
fn startup_finds_the_bandwidth_then_drains_into_probe_bw() {
    // 12.5 MB/s (100 Mbit/s), 20 ms: a BDP of 250 kB.
    let mut p = Path::new(12_500_000, Duration::from_millis(20), 1);
    assert_eq!(p.bbr.mode(), BbrMode::Startup);
    assert!((p.bbr.pacing_gain() - HIGH_GAIN).abs() < 1e-9);
    p.rounds(40);
    assert_eq!(
        p.modes,
        [BbrMode::Startup, BbrMode::Drain, BbrMode::ProbeBw],
        "no ProbeRTT within 10 s"
    );
    assert!(p.bbr.full_bw_reached);
    assert_eq!(p.bbr.max_bw(), 12_500_000);
    assert_eq!(p.bbr.min_rtt(), Some(Duration::from_millis(20)));
    // cwnd = 2 BDP plus the quanta; pacing at the gain of the phase.
    let bdp = 250_000;
    assert!(p.bbr.cwnd() >= 2 * bdp && p.bbr.cwnd() < 2 * bdp + 4 * 65_536);
    let rate = p.bbr.pacing_rate().unwrap() as f64;
    let expect = p.bbr.pacing_gain() * 12_500_000.0 * PACING_MARGIN;
    assert!((rate - expect).abs() < 2.0, "{rate} vs {expect}");
}

#[test]
fn the_gain_cycle_probes_drains_and_cruises() {
    let mut p = Path::new(12_500_000, Duration::from_millis(20), 7);
    p.rounds(30);
    assert_eq!(p.bbr.mode(), BbrMode::ProbeBw);
    p.phases.clear();
    p.rounds(40);
    // The phases follow the cycle in order, each with its gain...
    assert!(p.phases.len() >= 24, "{:?}", p.phases);
    for w in p.phases.windows(2) {
        assert_eq!(w[1].0, (w[0].0 + 1) % PACING_GAINS.len(), "{:?}", p.phases);
    }
    // ... and each lasts at least RTprop, except the drain phase (0.75),
    // which ends as soon as the queue the probe built is gone. (The first
    // phase seen began before the observation.)
    for w in p.phases.windows(2).skip(1) {
        let (idx, start, gain) = w[0];
        assert_eq!(gain, PACING_GAINS[idx]);
        if idx != 1 {
            assert!(w[1].1 - start > Duration::from_millis(20), "{:?}", p.phases);
        }
    }
}

#[test]
fn probe_bw_starts_at_a_seeded_random_phase_never_the_drain() {
    let mut starts = std::collections::BTreeSet::new();
    for seed in 0..64 {
        let mut b = Bbr::new(seed);
        b.init(MSS);
        b.enter_probe_bw(Instant::now());
        assert_ne!(b.cycle_idx, 1, "seed {seed}");
        starts.insert(b.cycle_idx);
        let mut again = Bbr::new(seed);
        again.init(MSS);
        again.enter_probe_bw(Instant::now());
        assert_eq!(again.cycle_idx, b.cycle_idx, "the seed decides");
    }
    assert_eq!(starts.len(), 7, "{starts:?}");
}

#[test]
fn probe_rtt_after_ten_seconds_without_a_new_minimum() {
    let mut p = Path::new(1_250_000, Duration::from_millis(50), 3);
    p.rounds(30);
    assert_eq!(p.bbr.mode(), BbrMode::ProbeBw);
    let stamp = p.bbr.min_rtt_stamp.unwrap();
    // The RTT rises a little (no new minimum) for 10 s.
    let mut entered = None;
    while entered.is_none() {
        p.rtt = Duration::from_millis(55);
        p.round(false, None);
        if p.bbr.mode() == BbrMode::ProbeRtt {
            entered = Some(p.now);
        }
        assert!(p.now < stamp + Duration::from_secs(12), "no ProbeRTT");
    }
    assert!(entered.unwrap() > stamp + MIN_RTT_WINDOW);
    assert!(p.bbr.cwnd() <= MIN_CWND_SEGMENTS * MSS, "{}", p.bbr.cwnd());
    // 200 ms and a round at 4 segments, then back to ProbeBW with the
    // window restored.
    let mut left = None;
    for _ in 0..20 {
        p.round(false, None);
        if p.bbr.mode() != BbrMode::ProbeRtt {
            left = Some(p.now);
            break;
        }
    }
    let left = left.expect("ProbeRTT ends");
    let n = p.modes.len();
    assert_eq!(p.modes[n - 2], BbrMode::ProbeRtt);
    assert!(p.since[n - 1] >= p.since[n - 2] + PROBE_RTT_DURATION);
    assert_eq!(p.bbr.mode(), BbrMode::ProbeBw);
    assert!(p.bbr.cwnd() > 10 * MSS);
    // The filter was refreshed: no ProbeRTT again for 10 s.
    let until = left + Duration::from_secs(9);
    while p.now < until {
        p.round(false, None);
        assert_ne!(p.bbr.mode(), BbrMode::ProbeRtt);
    }
}

#[test]
fn app_limited_samples_do_not_lower_the_bandwidth() {
    let mut p = Path::new(12_500_000, Duration::from_millis(20), 5);
    p.rounds(30);
    let bw = p.bbr.max_bw();
    assert_eq!(bw, 12_500_000);
    // 20 rounds of an application sending at a tenth of the path.
    for _ in 0..20 {
        p.round(true, Some(1_250_000));
    }
    assert_eq!(p.bbr.max_bw(), bw);
    // A higher app-limited sample still counts.
    p.round(true, Some(13_000_000));
    assert_eq!(p.bbr.max_bw(), 13_000_000);
    // Samples that are not app-limited replace the estimate within 10
    // rounds.
    for _ in 0..11 {
        p.round(false, Some(5_000_000));
    }
    assert_eq!(p.bbr.max_bw(), 5_000_000);
}

#[test]
fn loss_conserves_packets_and_recovery_restores_the_window() {
    let mut p = Path::new(12_500_000, Duration::from_millis(20), 9);
    p.rounds(30);
    let before = p.bbr.cwnd();
    assert_eq!(p.bbr.ssthresh(), usize::MAX);
    p.bbr.on_loss(p.now, before);
    // The next sample: cwnd = in flight + delivered (no halving).
    let rs = RateSample {
        delivery_rate: Some(12_500_000),
        interval: Duration::from_millis(20),
        delivered: 250_000,
        prior_delivered: p.delivered,
        total_delivered: p.delivered + 2000,
        rtt: Some(Duration::from_millis(20)),
        acked_sacked: 2000,
        newly_lost: 1000,
        prior_in_flight: before as u64,
        in_flight: (before - 3000) as u64,
        ..RateSample::default()
    };
    p.bbr.on_rate_sample(p.now, &rs);
    assert_eq!(p.bbr.cwnd(), before - 3000 + 2000);
    assert_eq!(p.bbr.ssthresh(), p.bbr.cwnd(), "PRR's target is BBR's cwnd");
    p.bbr.on_recovery_end(p.now);
    assert_eq!(p.bbr.cwnd(), before);
    assert_eq!(p.bbr.ssthresh(), usize::MAX);
}

#[test]
fn a_timeout_sets_one_segment_and_the_model_regrows_it() {
    let mut p = Path::new(12_500_000, Duration::from_millis(20), 11);
    p.rounds(30);
    let saved = p.bbr.clone_box().expect("clonable for RFC 4015 undo");
    let before = p.bbr.cwnd();
    p.bbr.on_rto(p.now, before);
    assert_eq!(p.bbr.cwnd(), MSS);
    p.rounds(12);
    assert!(p.bbr.cwnd() >= before / 2, "{} vs {before}", p.bbr.cwnd());
    assert_eq!(saved.cwnd(), before);
    assert_eq!(saved.bbr_state().unwrap().bw, 12_500_000);
}
