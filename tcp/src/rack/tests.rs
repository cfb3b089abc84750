use std::time::{Duration, Instant};

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn segments_sent_in_one_instant_share_a_record() {
    let t0 = Instant::now();
    let mut r = Rack::new(t0, SeqNum(0));
    r.on_send(t0, SeqNum(0), SeqNum(1000));
    r.on_send(t0, SeqNum(1000), SeqNum(2000));
    r.on_send(t0 + ms(1), SeqNum(2000), SeqNum(3000));
    assert_eq!(r.records(), 2);
}

#[test]
fn loss_needs_a_later_delivery_and_the_window() {
    let t0 = Instant::now();
    let mut r = Rack::new(t0, SeqNum(0));
    for i in 0..4u32 {
        r.on_send(
            t0 + ms(u64::from(i)),
            SeqNum(i * 1000),
            SeqNum((i + 1) * 1000),
        );
    }
    // Nothing delivered: nothing lost.
    assert_eq!(r.detect(t0 + ms(100), ms(5)), (None, None));
    // The third segment is SACKed 10 ms after it left: RACK.rtt 10 ms.
    let now = t0 + ms(12);
    r.on_sacked(
        now,
        SeqNum(2000),
        SeqNum(3000),
        true,
        SeqNum(0),
        Some(ms(10)),
    );
    // Segments 0 and 1 left at 0 and 1 ms: lost at 0+10+5 and 1+10+5.
    // (The delivered record itself counts up to RACK.end_seq; the
    // scoreboard ignores its SACKed octets.)
    let (lost, timer) = r.detect(now, ms(5));
    assert_eq!(lost, None);
    assert_eq!(timer, Some(t0 + ms(17)));
    let (lost, timer) = r.detect(t0 + ms(15), ms(5));
    assert_eq!(lost, Some(SeqNum(1000)));
    assert_eq!(timer, Some(t0 + ms(17)));
    let (lost, _) = r.detect(t0 + ms(16), ms(5));
    assert_eq!(lost, Some(SeqNum(2000)));
    let (lost, timer) = r.detect(t0 + ms(17), ms(5));
    assert_eq!(lost, Some(SeqNum(3000)));
    assert_eq!(timer, None);
    // The fourth segment, sent after, is never lost by this delivery.
    assert_eq!(r.detect(t0 + ms(500), ms(5)).0, Some(SeqNum(3000)));
}

#[test]
fn late_original_is_reordering_and_widens_nothing_until_seen() {
    let t0 = Instant::now();
    let mut r = Rack::new(t0, SeqNum(0));
    r.on_send(t0, SeqNum(0), SeqNum(1000));
    r.on_send(t0 + ms(1), SeqNum(1000), SeqNum(2000));
    assert_eq!(
        r.reo_wnd(true, false, Some(ms(8)), Some(ms(10))),
        Duration::ZERO
    );
    r.on_sacked(
        t0 + ms(11),
        SeqNum(1000),
        SeqNum(2000),
        true,
        SeqNum(0),
        Some(ms(8)),
    );
    assert!(!r.reordering_seen());
    // The first segment arrives after the second: reordering.
    r.on_cumulative_ack(t0 + ms(12), SeqNum(0), SeqNum(2000), SeqNum(0), Some(ms(8)));
    assert!(r.reordering_seen());
    assert_eq!(r.reo_wnd(true, true, Some(ms(8)), Some(ms(10))), ms(2));
    // A D-SACK widens it by a quarter of min_rtt per round, up to SRTT.
    r.on_dsack(SeqNum(2000));
    assert_eq!(r.reo_wnd(true, true, Some(ms(8)), Some(ms(10))), ms(4));
    r.on_dsack(SeqNum(2000));
    assert_eq!(r.reo_wnd(true, true, Some(ms(8)), Some(ms(10))), ms(4));
    for _ in 0..REO_WND_PERSIST {
        r.on_recovery_end();
    }
    assert_eq!(r.reo_wnd(true, true, Some(ms(8)), Some(ms(10))), ms(2));
}

#[test]
fn ambiguous_retransmission_delivery_is_ignored() {
    let t0 = Instant::now();
    let mut r = Rack::new(t0, SeqNum(0));
    r.on_send(t0, SeqNum(0), SeqNum(1000));
    let at = r.micros(t0 + ms(50));
    // Acknowledged 1 ms after the retransmission, min_rtt 10 ms: the ACK is
    // for the original.
    r.on_retransmission_delivered(t0 + ms(51), at, SeqNum(1000), true, Some(ms(10)));
    assert!(r.xmit.is_none());
    r.on_retransmission_delivered(t0 + ms(61), at, SeqNum(1000), true, Some(ms(10)));
    assert_eq!(r.xmit, Some((at, SeqNum(1000))));
}

#[test]
fn the_ring_is_bounded() {
    let t0 = Instant::now();
    let mut r = Rack::new(t0, SeqNum(0));
    for i in 0..(MAX_RECORDS as u32 + 100) {
        r.on_send(
            t0 + Duration::from_micros(u64::from(i)),
            SeqNum(i),
            SeqNum(i + 1),
        );
    }
    assert_eq!(r.records(), MAX_RECORDS);
    r.on_cumulative_ack(
        t0 + ms(1000),
        SeqNum(0),
        SeqNum(MAX_RECORDS as u32 + 100),
        SeqNum(0),
        None,
    );
    assert_eq!(r.records(), 0);
}

#[test]
fn a_grown_sack_range_is_not_reordering() {
    let t0 = Instant::now();
    let mut r = Rack::new(t0, SeqNum(0));
    for i in 0..4u32 {
        r.on_send(
            t0 + ms(u64::from(i)),
            SeqNum(i * 1000),
            SeqNum((i + 1) * 1000),
        );
    }
    r.on_sacked(
        t0 + ms(12),
        SeqNum(1000),
        SeqNum(2000),
        true,
        SeqNum(0),
        Some(ms(10)),
    );
    r.on_sacked(
        t0 + ms(13),
        SeqNum(3000),
        SeqNum(4000),
        true,
        SeqNum(0),
        Some(ms(10)),
    );
    // The hole [2000, 3000) fills: the peer reports [1000, 4000), which
    // ends at RACK.fack; not a late segment above a hole.
    r.on_sacked(
        t0 + ms(14),
        SeqNum(1000),
        SeqNum(4000),
        false,
        SeqNum(0),
        Some(ms(10)),
    );
    assert!(!r.reordering_seen());
    // A wholly new range below RACK.fack is.
    r.on_sacked(
        t0 + ms(15),
        SeqNum(0),
        SeqNum(500),
        true,
        SeqNum(0),
        Some(ms(10)),
    );
    assert!(r.reordering_seen());
}
