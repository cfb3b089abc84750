//! RACK-TLP (RFC 8985) against the duplicate-ACK detector it replaces, on
//! the virtual-clock wire: a lost tail recovered by the probe, reordering
//! inside the window not taken for loss, lost retransmissions found.

use super::*;
use crate::LossDetection;

fn with(detector: LossDetection) -> TcpConfig {
    TcpConfig {
        loss_detection: detector,
        ..cfg()
    }
}

/// Drops A's data segments whose indices (counting segments with payload,
/// from 1) are in `drop`.
fn drop_data(w: &mut Wire, drop: &'static [usize]) {
    let mut count = 0;
    w.filter_a = Box::new(move |_, _, p| {
        if !p.is_empty() {
            count += 1;
            if drop.contains(&count) {
                return Fate::Drop;
            }
        }
        Fate::Deliver
    });
}

/// Drops B's pure ACKs of A's data below `end` (A's data starts at 1001).
fn drop_acks_before(w: &mut Wire, end: SeqNum) {
    w.filter_b = Box::new(move |_, r, p| {
        if p.is_empty() && !r.flags.syn() && r.ack > SeqNum(1001) && r.ack < end {
            return Fate::Drop;
        }
        Fate::Deliver
    });
}

/// RFC 8985 7: the last two segments of a write are lost. The probe sends
/// the last one again, its SACK lets RACK find the other lost, and fast
/// recovery repairs it: no retransmission timeout. Counting duplicate ACKs,
/// one SACKed segment is not enough, and the timer has to fire.
#[test]
fn tail_loss_is_recovered_by_the_probe_without_a_timeout() {
    // 14 full segments (none held back by Nagle), the 13th and 14th
    // dropped.
    for (detector, timeouts) in [(LossDetection::Rack, 0), (LossDetection::DupAck, 1)] {
        let mut w = Wire::new(with(detector), cfg());
        drop_data(&mut w, &[13, 14]);
        w.established();
        transfer(&mut w, &pattern(14 * 1448), Duration::from_secs(5));
        let s = w.a.stats();
        assert_eq!(s.rto_count, timeouts, "{detector:?}: {s}");
        if detector == LossDetection::Rack {
            assert_eq!(s.tail_loss_probes, 1, "{s}");
            assert_eq!(s.fast_recoveries, 1, "{s}");
            assert_eq!(s.bytes_retransmitted, 2 * 1448, "{s}");
        }
    }
}

/// Issue 21: the flight ends with the fast retransmission (PRR lets
/// nothing else go: here the rescue retransmission, RFC 6675's one extra
/// segment, is lost too), the peer acknowledges the whole flight with one
/// ACK, and that ACK is lost. Nothing else is coming back; the tail loss
/// probe, armed in fast recovery too, sends the last segment again and its
/// ACK ends the recovery, instead of a retransmission timeout 200 ms later.
#[test]
fn lost_ack_ending_fast_recovery_is_probed_without_a_timeout() {
    use std::cell::Cell;
    use std::rc::Rc;
    let mut w = Wire::new(with(LossDetection::Rack), cfg());
    // 20 full segments, the 15th dropped, then its retransmission (21st)
    // and the rescue retransmission of the last one (22nd, dropped); B's
    // ACK of all of them (once the retransmission filled the hole) is
    // dropped too.
    drop_data(&mut w, &[15, 22]);
    let end = SeqNum(1001 + 20 * 1448);
    let acks_dropped = Rc::new(Cell::new(0));
    let dropped = acks_dropped.clone();
    w.filter_b = Box::new(move |_, r, p| {
        if p.is_empty() && r.ack == end && dropped.get() == 0 {
            dropped.set(1);
            return Fate::Drop;
        }
        Fate::Deliver
    });
    w.established();
    // B's application does not read: no window update repeats the ACK.
    w.b_reads = false;
    assert_eq!(w.a.send(&pattern(20 * 1448)), Ok(20 * 1448));
    w.run(Duration::from_secs(1));
    assert_eq!(w.b().rcv.nxt, end, "B has it all");
    assert_eq!(acks_dropped.get(), 1, "the final ACK was dropped");
    let data: Vec<_> = w.sent_a.iter().filter(|(_, p)| !p.is_empty()).collect();
    assert_eq!(
        data[21].0.seq,
        end - 1448,
        "the rescue sent the last segment"
    );
    assert_eq!(w.a.snd.una, end, "all acknowledged");
    let s = w.a.stats();
    assert_eq!(s.fast_recoveries, 1, "{s}");
    assert_eq!(s.rto_count, 0, "{s}");
    assert_eq!(s.tail_loss_probes, 1, "{s}");
    // The hole, the rescue, then the last segment again as the probe.
    assert_eq!(s.bytes_retransmitted, 3 * 1448, "{s}");
}

/// Reordering shorter than RACK's window (a quarter of the minimum RTT,
/// once reordering has been seen) is not taken for loss; three SACKed
/// segments above the hole are for the duplicate-ACK detector.
#[test]
fn reordering_inside_the_window_is_not_loss() {
    for detector in [LossDetection::Rack, LossDetection::DupAck] {
        let mut w = Wire::new(with(detector), cfg());
        w.established();
        // Ten segments in flight.
        w.a.send(&pattern(14_480)).unwrap();
        let t = w.now;
        let segs = poll_segments(&mut w.a, t);
        assert_eq!(segs.len(), 10);
        let una = w.a.snd.una;
        let end = |k: usize| segs[k].0 + segs[k].1;
        let min_rtt = w.a.stats().min_rtt.expect("handshake RTT");
        // First round: segment 0 arrives after segment 1 (the peer SACKs
        // 1, then acknowledges both): reordering seen.
        let mut now = t + min_rtt;
        let mut ack = from_peer(&w.a, 0, crate::Flags::ACK);
        ack.ack = una;
        ack.options.push_sack(segs[1].0, end(1));
        w.a.handle_segment(now, &ack, &[]);
        now += Duration::from_micros(100);
        ack.ack = end(1);
        ack.options = from_peer(&w.a, 0, crate::Flags::ACK).options;
        w.a.handle_segment(now, &ack, &[]);
        // Second: segment 2 arrives after 3, 4 and 5, a little later
        // (less than min_rtt / 4).
        ack.options.push_sack(segs[3].0, end(5));
        w.a.handle_segment(now, &ack, &[]);
        now += min_rtt / 8;
        w.a.poll_transmit(now, 1500, |_, _, _| true);
        let mut ack = from_peer(&w.a, 0, crate::Flags::ACK);
        ack.ack = end(9);
        w.a.handle_segment(now, &ack, &[]);
        w.a.poll_transmit(now, 1500, |_, _, _| true);
        let s = w.a.stats();
        match detector {
            LossDetection::Rack => {
                assert_eq!(s.fast_recoveries, 0, "{s}");
                assert_eq!(s.bytes_retransmitted, 0, "{s}");
            }
            LossDetection::DupAck => {
                assert_eq!(s.fast_recoveries, 1, "{s}");
                assert!(s.bytes_retransmitted > 0, "{s}");
            }
        }
    }
}

/// A retransmission is lost too: data sent after it is SACKed first, and
/// RACK sends it again without waiting for the timer.
#[test]
fn lost_retransmissions_are_detected() {
    let mut w = Wire::new(with(LossDetection::Rack), cfg());
    // The 10th data segment and its first retransmission are dropped.
    let mut count = 0;
    let mut victim = None;
    let mut dropped_again = false;
    w.filter_a = Box::new(move |_, r, p| {
        if p.is_empty() {
            return Fate::Deliver;
        }
        count += 1;
        if count == 10 {
            victim = Some(r.seq);
            return Fate::Drop;
        }
        if victim == Some(r.seq) && !dropped_again {
            dropped_again = true;
            return Fate::Drop;
        }
        Fate::Deliver
    });
    w.established();
    transfer(&mut w, &pattern(200_000), Duration::from_secs(10));
    let s = w.a.stats();
    assert_eq!(s.rto_count, 0, "{s}");
    assert_eq!(s.lost_retransmissions, 1, "{s}");
    assert_eq!(s.bytes_retransmitted, 2 * 1448, "{s}");
}

/// RFC 3522 / RFC 4015: a timeout that fires only because the path
/// suddenly got slow is noticed by the timestamp the first ACK echoes (the
/// original's, not the retransmission's), and undone (cwnd goes back to
/// what it was instead of one segment).
#[test]
fn a_spurious_timeout_is_undone() {
    let mut w = Wire::new(with(LossDetection::Rack), cfg());
    w.established();
    transfer(&mut w, &pattern(30_000), Duration::from_secs(5));
    // The path now takes 300 ms each way: longer than the 200 ms RTO.
    w.delay = Duration::from_millis(300);
    let now = w.now;
    w.a.send(&pattern(10 * 1448)).unwrap();
    w.a.poll_transmit(now, 1500, |_, _, _| true);
    w.run(Duration::from_secs(2));
    let s = w.a.stats();
    // Every timeout (the RTT grew past the RTO, once or twice before the
    // RTO caught up) is found spurious.
    assert!(s.rto_count >= 1, "{s}");
    assert_eq!(s.spurious_rtos, s.rto_count, "{s}");
}

/// RFC 8985 7.4: the last segment of a write is lost, and only it. The
/// probe sends it again and repairs it; no recovery starts (nothing was
/// SACKed). The ACK of the probe is ambiguous (it is also what the
/// original would have brought); the next ACK beyond it, with no D-SACK
/// for the probe, settles it: congestion control responds once, as for a
/// fast recovery, and the counter says so.
#[test]
fn a_tail_loss_repaired_by_the_probe_reduces_the_window_once() {
    let mut w = Wire::new(with(LossDetection::Rack), cfg());
    drop_data(&mut w, &[10]);
    w.established();
    let first = pattern(10 * 1448);
    transfer(&mut w, &first, Duration::from_secs(1));
    let s = w.a.stats();
    assert_eq!(s.tail_loss_probes, 1, "{s}");
    assert_eq!(s.bytes_retransmitted, 1448, "the probe repaired it: {s}");
    assert_eq!(
        s.tlp_repaired, 0,
        "not settled yet by the probe's own ACK: {s}"
    );
    assert_eq!(s.ssthresh, usize::MAX, "still in slow start: {s}");
    let cwnd_before = s.cwnd;
    // More data: its ACK goes beyond the probe, with no D-SACK for it.
    let mut all = first.clone();
    all.extend(pattern(2 * 1448));
    assert_eq!(w.a.send(&all[first.len()..]), Ok(2 * 1448));
    w.run(Duration::from_millis(200));
    assert_eq!(w.b_rx, all);
    let s = w.a.stats();
    assert_eq!(s.tlp_repaired, 1, "{s}");
    assert_eq!(s.tlp_unneeded, 0, "{s}");
    assert_eq!(s.fast_recoveries, 0, "{s}");
    assert_eq!(s.rto_count, 0, "{s}");
    // One multiplicative decrease from the window in use.
    assert!(
        s.ssthresh < cwnd_before && s.ssthresh >= cwnd_before / 2,
        "ssthresh {} from cwnd {cwnd_before}: {s}",
        s.ssthresh
    );
    assert!(s.cwnd <= s.ssthresh + 2 * 1448, "{s}");
}

/// RFC 8985 7.4: the data all arrived, only the peer's ACK of the tail was
/// lost. The probe repeats the last segment, the peer reports it as a
/// duplicate (D-SACK), and the window stays as it was: nothing was lost.
#[test]
fn a_probe_answered_by_a_dsack_leaves_the_window_alone() {
    use std::cell::Cell;
    use std::rc::Rc;
    let mut w = Wire::new(with(LossDetection::Rack), cfg());
    let end = SeqNum(1001 + 10 * 1448);
    let dropped = Rc::new(Cell::new(0));
    let d = dropped.clone();
    w.filter_b = Box::new(move |_, r, p| {
        if p.is_empty() && r.ack == end && d.get() == 0 {
            d.set(1);
            return Fate::Drop;
        }
        Fate::Deliver
    });
    w.established();
    // B's application does not read yet: no window update repeats the ACK.
    w.b_reads = false;
    let data = pattern(10 * 1448);
    assert_eq!(w.a.send(&data), Ok(data.len()));
    w.run(Duration::from_millis(500));
    assert_eq!(dropped.get(), 1, "the ACK of the tail was dropped");
    assert_eq!(w.b().rcv.nxt, end, "B has it all");
    assert_eq!(w.a.snd.una, end);
    let s = w.a.stats();
    assert_eq!(s.tail_loss_probes, 1, "{s}");
    assert_eq!(s.dsacks_received, 1, "{s}");
    assert_eq!(s.tlp_unneeded, 1, "{s}");
    assert_eq!(s.tlp_repaired, 0, "{s}");
    assert_eq!(s.rto_count, 0, "{s}");
    assert_eq!(s.ssthresh, usize::MAX, "no reduction: {s}");
    assert!(w.a.recovery.tlp_end.is_none(), "the episode is over");
    // Later data is not taken for a repair either.
    w.b_reads = true;
    let mut all = data.clone();
    all.extend(pattern(2 * 1448));
    assert_eq!(w.a.send(&all[data.len()..]), Ok(2 * 1448));
    w.run(Duration::from_millis(200));
    assert_eq!(w.b_rx, all);
    let s = w.a.stats();
    assert_eq!((s.tlp_repaired, s.ssthresh), (0, usize::MAX), "{s}");
}

/// A probe of new data (RFC 8985 7.3 prefers it) that is acknowledged ends
/// its episode without any response: it repaired nothing.
#[test]
fn a_probe_of_new_data_is_no_repair() {
    let mut w = Wire::new(with(LossDetection::Rack), cfg());
    // B's ACKs of the first flight (the initial window, 10 segments) are
    // all lost: at the probe timeout cwnd is full and 3 segments wait, so
    // the probe sends the 11th and 12th, whose ACK brings everything.
    let probe_end = SeqNum(1001 + 11 * 1448);
    drop_acks_before(&mut w, probe_end);
    w.established();
    let data = pattern(13 * 1448);
    transfer(&mut w, &data, Duration::from_secs(1));
    let s = w.a.stats();
    assert!(s.tail_loss_probes >= 1, "{s}");
    assert_eq!(s.bytes_retransmitted, 0, "the probes were new data: {s}");
    assert_eq!(s.rto_count, 0, "{s}");
    assert_eq!((s.tlp_repaired, s.tlp_unneeded), (0, 0), "{s}");
    assert_eq!(s.ssthresh, usize::MAX, "no reduction: {s}");
    assert!(w.a.recovery.tlp_end.is_none(), "the episode is over");
}

/// Issue 21: the peer's ACK of a whole flight is lost. The probe carries
/// two new segments, which the peer acknowledges at once (RFC 5681 4.2:
/// every second full-sized segment); one segment alone would wait for its
/// delayed ACK (40 ms here, as on Linux) with the sender idle meanwhile.
#[test]
fn a_probe_of_two_new_segments_is_acknowledged_at_once() {
    let mut w = Wire::new(with(LossDetection::Rack), cfg());
    w.delay = Duration::from_micros(50);
    // B's ACKs of the initial window (10 segments) are all lost: at the
    // probe timeout cwnd is full and 4 segments wait.
    let probe_end = SeqNum(1001 + 12 * 1448);
    drop_acks_before(&mut w, probe_end);
    w.established();
    let data = pattern(14 * 1448);
    transfer(&mut w, &data, Duration::from_secs(1));
    let s = w.a.stats();
    assert_eq!(s.tail_loss_probes, 1, "{s}");
    assert_eq!((s.bytes_retransmitted, s.rto_count), (0, 0), "{s}");
    // When the segment (or super segment) holding `seq` left.
    let at = |seq: SeqNum| {
        w.sent_a
            .iter()
            .zip(&w.times_a)
            .find(|((r, p), _)| r.seq <= seq && seq < r.seq + p.len())
            .expect("sent")
            .1
    };
    let probe = at(SeqNum(1001 + 10 * 1448));
    assert_eq!(at(SeqNum(1001 + 11 * 1448)), probe, "both in the probe");
    // Without segmentation offload, one at a time.
    assert!(w.sent_a.iter().all(|(_, p)| p.len() <= 1448));
    // The rest goes as soon as the probe's ACK is back: a round trip, not
    // a delayed ACK.
    let rest = *at(probe_end) - *probe;
    assert!(rest < w.cfg_b.delayed_ack / 4, "{rest:?}");
}

/// With segmentation offload the probe's two segments leave as one super
/// segment; with a single segment of new data left, the probe is that one.
#[test]
fn a_probe_of_new_data_is_one_super_segment_with_offload() {
    for (segments, probe) in [(14, 2 * 1448), (11, 1448)] {
        let mut w = Wire::new(with(LossDetection::Rack), cfg());
        w.established();
        w.a.send(&pattern(segments * 1448)).unwrap();
        let mut lens = Vec::new();
        let now = w.now;
        w.a.poll_transmit_burst(now, 1500, 65_000, |_, a, b, _| {
            lens.push(a.len() + b.len());
            true
        });
        assert_eq!(lens, vec![10 * 1448], "the initial window");
        // No ACK comes back: the probe timer fires.
        let at = w.a.poll_at().expect("the probe timer");
        w.a.handle_timeout(at);
        lens.clear();
        w.a.poll_transmit_burst(at, 1500, 65_000, |_, a, b, _| {
            lens.push(a.len() + b.len());
            true
        });
        assert_eq!(lens, vec![probe], "{segments} segments written");
        assert_eq!(w.a.stats().tail_loss_probes, 1);
        assert!(!w.a.recovery.tlp_follow);
    }
}

/// Issue 21: the peer's ACK of the tail is lost, and so is its answer to
/// the probe. RFC 8985 would wait for the 200 ms RTO; a second probe,
/// 40 ms (a delayed ACK) after the first, brings the ACK instead. Its
/// D-SACK says nothing was lost: the window stays.
#[test]
fn a_second_probe_follows_when_the_first_is_unanswered() {
    use std::cell::Cell;
    use std::rc::Rc;
    let mut w = Wire::new(with(LossDetection::Rack), cfg());
    let end = SeqNum(1001 + 10 * 1448);
    let dropped = Rc::new(Cell::new(0));
    let d = dropped.clone();
    w.filter_b = Box::new(move |_, r, p| {
        if p.is_empty() && r.ack == end && d.get() < 2 {
            d.set(d.get() + 1);
            return Fate::Drop;
        }
        Fate::Deliver
    });
    w.established();
    w.b_reads = false;
    assert_eq!(w.a.send(&pattern(10 * 1448)), Ok(10 * 1448));
    w.run(Duration::from_millis(150));
    assert_eq!(dropped.get(), 2, "the tail's ACK and the first probe's");
    assert_eq!(w.a.snd.una, end, "acknowledged before the RTO");
    let s = w.a.stats();
    assert_eq!(s.tail_loss_probes, 2, "{s}");
    assert_eq!(s.rto_count, 0, "{s}");
    assert_eq!(s.bytes_retransmitted, 2 * 1448, "{s}");
    assert_eq!((s.tlp_unneeded, s.tlp_repaired), (1, 0), "{s}");
    assert_eq!(s.ssthresh, usize::MAX, "{s}");
    // Both probes repeated the last segment.
    let data: Vec<_> = w.sent_a.iter().filter(|(_, p)| !p.is_empty()).collect();
    assert_eq!(data.len(), 12);
    assert_eq!((data[10].0.seq, data[11].0.seq), (end - 1448, end - 1448));
    let ms = |i: usize| data[i].0.options.timestamps.unwrap().0;
    assert!(ms(11) - ms(10) >= 40, "a delayed ACK's wait between them");
}
