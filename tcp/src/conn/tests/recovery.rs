//! Loss recovery and congestion control: SACK and NewReno fast recovery,
//! PRR, RTO, slow start, idle restart.

use super::*;

/// RFC 3465's per-ACK limit in slow start: L = 2 for single segments, the
/// size of a super segment with segmentation offload (whose receivers answer
/// each super segment with one stretch ACK).
#[test]
fn slow_start_counts_a_stretch_ack_for_a_super_segment_whole() {
    for (burst, growth_segments) in [(0, 2), (65_000, 10)] {
        let mut w = Wire::new(cfg(), cfg());
        w.established();
        w.a.send(&pattern(40_000)).unwrap();
        let smss = w.a.stats().mss;
        let cwnd = w.a.stats().cwnd;
        assert_eq!(cwnd, 10 * smss, "the initial window");
        let now = w.now;
        let mut sent = 0;
        w.a.poll_transmit_burst(now, 1500, burst, |_, a, b, _| {
            sent += a.len() + b.len();
            true
        });
        assert_eq!(sent, cwnd, "a whole window in flight");
        // One ACK for all of it.
        let ack = from_peer(&w.a, 0, crate::Flags::ACK);
        let later = now + Duration::from_millis(5);
        assert_eq!(w.a.handle_segment(later, &ack, &[]), Input::Done);
        assert_eq!(
            w.a.stats().cwnd,
            cwnd + growth_segments * smss,
            "burst {burst}: {}",
            w.a.stats()
        );
    }
}

#[test]
fn sack_recovery_retransmits_only_the_holes() {
    let mut w = Wire::new(cfg(), cfg());
    // Drop A's 10th and 14th data segments (first transmissions).
    let mut count = 0;
    w.filter_a = Box::new(move |_, _, p| {
        if !p.is_empty() {
            count += 1;
            if count == 10 || count == 14 {
                return Fate::Drop;
            }
        }
        Fate::Deliver
    });
    w.established();
    let data = pattern(60_000);
    transfer(&mut w, &data, Duration::from_secs(5));
    let s = w.a.stats();
    assert_eq!(s.rto_count, 0, "recovered without a timeout");
    assert!(s.fast_recoveries >= 1);
    assert!(s.retrans_fast >= 1);
    assert!(s.bytes_retransmitted <= 2 * 1448, "only holes: {}", s);
    // B sent SACK blocks.
    assert!(w.sent_b.iter().any(|(r, _)| r.options.sack_count > 0));
}

/// RFC 6937 PRR-SSRB: after heavy losses (the pipe far below ssthresh),
/// recovery grows the flight back by at most one segment more than each
/// ACK reports delivered, instead of sending the whole difference to
/// ssthresh in one burst.
#[test]
fn recovery_after_heavy_loss_sends_no_burst() {
    let newreno = TcpConfig {
        congestion: crate::cc::Algorithm::NewReno,
        ..cfg()
    };
    let mut w = Wire::new(newreno, cfg());
    w.established();
    w.a.send(&pattern(40_000)).unwrap();
    let mut t = w.now;
    let segs = poll_segments(&mut w.a, t);
    assert_eq!(segs.len(), 10, "the initial window");
    // The first six are lost; SACKs for the other four arrive one by one.
    let una = w.a.snd.una;
    let mut sent_per_ack = Vec::new();
    for k in 6..10 {
        let mut ack = from_peer(&w.a, 0, crate::Flags::ACK);
        ack.ack = una;
        ack.options.push_sack(segs[6].0, segs[k].0 + segs[k].1);
        t += Duration::from_millis(1);
        assert_eq!(w.a.handle_segment(t, &ack, &[]), Input::Done);
        let mut n = 0;
        w.a.poll_transmit(t, 1500, |_, x, y| {
            n += (x.len() + y.len() > 0) as usize;
            true
        });
        sent_per_ack.push(n);
    }
    let s = w.a.stats();
    assert_eq!(s.fast_recoveries, 1, "{s}");
    assert!(
        sent_per_ack.iter().all(|&n| n <= 2),
        "at most delivered + 1 segment per ACK: {sent_per_ack:?}"
    );
    assert!(
        sent_per_ack.iter().sum::<usize>() >= 3,
        "and recovery does send: {sent_per_ack:?}"
    );
}

#[test]
fn newreno_recovers_without_sack() {
    let no_sack = TcpConfig {
        sack: false,
        congestion: crate::cc::Algorithm::NewReno,
        ..cfg()
    };
    let mut w = Wire::new(no_sack, cfg());
    let mut dropped = 0;
    w.filter_a = Box::new(move |i, _, p| {
        if !p.is_empty() && (i == 12 || i == 15) && dropped < 2 {
            dropped += 1;
            return Fate::Drop;
        }
        Fate::Deliver
    });
    w.established();
    let data = pattern(80_000);
    transfer(&mut w, &data, Duration::from_secs(5));
    let s = w.a.stats();
    assert!(!s.sack);
    assert!(s.fast_recoveries >= 1, "{s}");
    assert!(s.retrans_fast >= 2, "partial ACK retransmission: {s}");
}

#[test]
fn rto_after_total_loss_does_not_resend_sacked_data() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    // Lose segment 0 and the last two segments of a 10-segment flight, and
    // all ACKs for a while, forcing a timeout with SACK information known.
    let data = pattern(1448 * 10);
    let mut count = 0;
    w.filter_a = Box::new(move |_, _, p| {
        if !p.is_empty() {
            count += 1;
            if count == 1 || count == 9 || count == 10 {
                return Fate::Drop;
            }
        }
        Fate::Deliver
    });
    transfer(&mut w, &data, Duration::from_secs(10));
    let s = w.a.stats();
    assert!(s.bytes_retransmitted <= 3 * 1448, "{s}");
}

#[test]
fn the_congestion_window_is_sized_from_the_path_not_the_peers_mss() {
    // B announces MSS 8960 over a path of MTU 1500: SMSS is 1448 (with
    // timestamps) before the window is sized (RFC 5681 3.1, RFC 6928).
    let jumbo = TcpConfig { mss: 8960, ..cfg() };
    let mut w = Wire::new(cfg(), jumbo);
    w.established();
    let s = w.a.stats();
    assert_eq!(s.mss, 1448);
    assert_eq!(s.cwnd, crate::cc::initial_window(1448), "{s}");
    // The path MTU falls: the window keeps its size in segments.
    let now = w.now;
    w.a.poll_transmit(now, 1280, |_, _, _| true);
    let s = w.a.stats();
    assert_eq!(s.mss, 1228);
    assert_eq!(s.cwnd, 10 * 1228);
}

#[test]
fn the_window_restarts_after_an_idle_period() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    transfer(&mut w, &pattern(300_000), Duration::from_secs(5));
    let grown = w.a.stats().cwnd;
    assert!(grown > crate::cc::initial_window(1448));
    w.run(Duration::from_secs(10));
    w.a.send(&[1u8; 100]).unwrap();
    let now = w.now;
    w.a.poll_transmit(now, 1500, |_, _, _| true);
    assert_eq!(
        w.a.stats().cwnd,
        crate::cc::initial_window(1448),
        "RFC 5681 4.1"
    );
}

/// A window-holding algorithm with a fixed window, which either leaves
/// fast recovery to PRR or sets the recovery window itself (as BBR does).
#[derive(Debug)]
struct FixedWindow {
    cwnd: usize,
    owns: bool,
}

impl crate::cc::CongestionControl for FixedWindow {
    fn name(&self) -> &'static str {
        "fixed"
    }
    fn init(&mut self, _mss: usize) {}
    fn cwnd(&self) -> usize {
        self.cwnd
    }
    fn ssthresh(&self) -> usize {
        self.cwnd
    }
    fn on_ack(&mut self, _: Instant, _: usize, _: Option<Duration>, _: bool) {}
    fn on_loss(&mut self, _: Instant, _: usize) {}
    fn on_recovery_end(&mut self, _: Instant) {}
    fn on_rto(&mut self, _: Instant, _: usize) {}
    fn on_idle_restart(&mut self) {}
    fn set_loss_window(&mut self) {}
    fn set_mss(&mut self, _: usize) {}
    fn exit_slow_start(&mut self, _: Instant) {}
    fn owns_recovery_window(&self) -> bool {
        self.owns
    }
}

/// An algorithm that sets its own recovery window (BBR; Linux's
/// `cong_control`) is not held to PRR's one segment more than delivered
/// per ACK: with room in its window, the first ACK of recovery sends the
/// lost segments and new data at once. Left to PRR, the same window
/// sends at most two segments per ACK.
#[test]
fn an_algorithm_that_owns_the_recovery_window_is_not_held_by_prr() {
    for owns in [false, true] {
        let mut w = Wire::new(cfg(), cfg());
        w.established();
        let mss = w.a.stats().mss;
        w.a.cc.ctrl = Box::new(FixedWindow {
            cwnd: 10 * mss,
            owns,
        });
        w.a.send(&pattern(40_000)).unwrap();
        let mut t = w.now;
        let segs = poll_segments(&mut w.a, t);
        assert_eq!(segs.len(), 10);
        // The first six segments are lost and the last four are SACKed,
        // one ACK each; once recovery has begun, the window opens wide.
        let una = w.a.snd.una;
        let mut sent_per_ack = Vec::new();
        for k in 6..10 {
            let mut ack = from_peer(&w.a, 0, crate::Flags::ACK);
            ack.ack = una;
            ack.options.push_sack(segs[6].0, segs[k].0 + segs[k].1);
            t += Duration::from_millis(1);
            w.a.handle_segment(t, &ack, &[]);
            if w.a.stats().fast_recoveries == 0 {
                continue;
            }
            w.a.cc.ctrl = Box::new(FixedWindow {
                cwnd: 30 * mss,
                owns,
            });
            let n = poll_segments(&mut w.a, t)
                .iter()
                .filter(|&&(_, len)| len > 0)
                .count();
            sent_per_ack.push(n);
        }
        assert_eq!(w.a.stats().fast_recoveries, 1);
        assert!(!sent_per_ack.is_empty());
        if owns {
            assert!(
                sent_per_ack.iter().any(|&n| n >= 6),
                "the window's room at once: {sent_per_ack:?}"
            );
        } else {
            assert!(
                sent_per_ack.iter().all(|&n| n <= 2),
                "PRR: {sent_per_ack:?}"
            );
        }
    }
}

/// RFC 6675 4: after a rescue retransmission (rule 4) "HighRxt MUST NOT
/// be updated". A hole below it that RACK finds lost later must still be
/// retransmitted by rule 1 ("S2 is greater than HighRxt"), not left to the
/// retransmission timer. Ten segments go out; the 3rd and 7th are lost.
/// SACKs for the 4th-6th start recovery (the 3rd is retransmitted), the
/// rescue resends the 10th, then SACKs for the 8th-9th reveal the 7th.
#[test]
fn a_rescue_retransmission_leaves_later_holes_reachable() {
    let mut w = Wire::new(cfg(), cfg());
    w.established();
    let mss = w.a.stats().mss;
    w.a.cc.ctrl = Box::new(FixedWindow {
        cwnd: 10 * mss,
        owns: true,
    });
    w.a.send(&pattern(10 * mss)).unwrap();
    let mut t = w.now;
    let segs = poll_segments(&mut w.a, t);
    assert_eq!(segs.len(), 10);
    w.a.cc.ctrl = Box::new(FixedWindow {
        cwnd: 30 * mss,
        owns: true,
    });
    let una = w.a.snd.una;
    let end = |k: usize| segs[k].0 + segs[k].1;
    let ack_with = |w: &mut Wire, t: Instant, blocks: &[(SeqNum, SeqNum)]| {
        let mut ack = from_peer(&w.a, 0, crate::Flags::ACK);
        ack.ack = una;
        for &(l, r) in blocks {
            ack.options.push_sack(l, r);
        }
        w.a.handle_segment(t, &ack, &[]);
        let sent: Vec<SeqNum> = poll_segments(&mut w.a, t)
            .into_iter()
            .filter(|&(_, len)| len > 0)
            .map(|(seq, _)| seq)
            .collect();
        sent
    };
    t += Duration::from_millis(10);
    let sent = ack_with(&mut w, t, &[(segs[3].0, end(5))]);
    assert_eq!(w.a.stats().fast_recoveries, 1);
    assert!(sent.contains(&segs[2].0), "the 3rd again: {sent:?}");
    assert!(sent.contains(&segs[9].0), "the rescue: {sent:?}");
    assert!(!sent.contains(&segs[6].0), "the 7th is not known lost yet");
    t += Duration::from_millis(1);
    let sent = ack_with(&mut w, t, &[(segs[7].0, end(8)), (segs[3].0, end(5))]);
    assert!(
        sent.contains(&segs[6].0),
        "the 7th, found lost below the rescue, goes again at once: {sent:?}"
    );
    assert_eq!(w.a.stats().rto_count, 0);
}

/// Issue 21: a receiver that acknowledges a whole burst at once (Linux
/// coalescing a super segment) answers a loss with one ACK that moves
/// SND.UNA up to the hole and SACKs everything above it. The window is cut
/// from what was in use, not from the hole and the little above it that
/// FlightSize counts once that ACK is taken: CUBIC from cwnd (as Linux),
/// NewReno (RFC 5681 eq. (4)) and PRR's RecoverFS from the flight the ACK
/// found; and that ACK does not grow the window before the cut.
#[test]
fn a_loss_in_a_stretch_ack_cuts_the_window_in_use() {
    use crate::cc::Algorithm;
    // CUBIC: beta_cubic times cwnd, ten segments (the ACK that reveals the
    // loss does not first grow it, as in Linux; slow start would have made
    // it 12). NewReno: half the ten segments in flight. (From the five
    // left after the ACK: 3.5 and 2.5.)
    for (algorithm, ssthresh_segments) in [(Algorithm::Cubic, 7.0), (Algorithm::NewReno, 5.0)] {
        let mut w = Wire::new(
            TcpConfig {
                congestion: algorithm,
                ..cfg()
            },
            cfg(),
        );
        w.established();
        // The initial window: ten segments.
        w.a.send(&pattern(20 * 1448)).unwrap();
        let t = w.now;
        let segs = poll_segments(&mut w.a, t);
        assert_eq!(segs.len(), 10);
        let mss = w.a.stats().mss;
        let cwnd = w.a.stats().cwnd;
        assert_eq!(cwnd, 10 * mss);
        // The 6th is lost; one ACK takes the first five and SACKs the rest.
        let now = t + Duration::from_millis(10);
        let mut ack = from_peer(&w.a, 0, crate::Flags::ACK);
        ack.ack = segs[5].0;
        ack.window = 65_535;
        ack.options.push_sack(segs[6].0, segs[9].0 + segs[9].1);
        w.a.handle_segment(now, &ack, &[]);
        let s = w.a.stats();
        assert_eq!(s.fast_recoveries, 1, "{algorithm:?}: {s}");
        let expected = (ssthresh_segments * mss as f64) as usize;
        assert!(
            s.ssthresh.abs_diff(expected) <= 1,
            "{algorithm:?}: ssthresh {} (expected {expected})",
            s.ssthresh
        );
        assert_eq!(w.a.recovery.prr.recover_fs, 10 * mss, "{algorithm:?}");
    }
}
