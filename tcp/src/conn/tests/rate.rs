//! Delivery-rate estimation driven by the connection: what each ACK
//! samples after a loss.

use super::*;

/// A hole filled by a fast retransmission: the ACK that fills it samples
/// the retransmission's snapshot, not the SACKed run above the hole (nor
/// the hole's first transmission); the ring holds no snapshot once all is
/// acknowledged, and nothing was merged.
#[test]
fn the_hole_filling_ack_samples_the_retransmission() {
    let mut w = Wire::new(cfg(), cfg());
    // 14 full segments, the 5th dropped once.
    let mut count = 0;
    w.filter_a = Box::new(move |_, _, p| {
        if !p.is_empty() {
            count += 1;
            if count == 5 {
                return Fate::Drop;
            }
        }
        Fate::Deliver
    });
    w.established();
    let hole = SeqNum(1001 + 4 * 1448);
    transfer(&mut w, &pattern(14 * 1448), Duration::from_secs(5));
    let s = w.a.stats();
    assert_eq!(s.rto_count, 0, "{s}");
    assert!(s.bytes_retransmitted >= 1448, "{s}");
    let sampled = &w.a.rate.sampled;
    // Every ACK that delivered data sampled a snapshot.
    assert!(sampled.len() >= 10, "{sampled:?}");
    // The initial window left as one super segment, whose snapshot the
    // first ACKs (SACKing above the hole) sampled; the last ACK to
    // sample the hole's octets, the one filling it, sampled the
    // retransmission's own snapshot: the split left it alone in its
    // entry.
    let fill = sampled
        .iter()
        .rposition(|&(l, r, _)| l <= hole && hole < r)
        .expect("the hole's octets were sampled");
    assert_eq!(sampled[fill], (hole, hole + 1448, true), "{sampled:?}");
    assert_eq!(fill, sampled.len() - 1, "the hole is filled last");
    assert_eq!(s.rate_snapshot_merges, 0);
    assert_eq!(w.a.rate.snapshots(), 0);
}
