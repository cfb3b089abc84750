use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Feeds the ACKs of one round, `start..end`, each with RTT `rtt`. The
/// ACK of `start` ends the previous round and begins this one (whose
/// last segment is `end`), as RFC 9406 orders it.
fn round(h: &mut HyStart, start: u32, end: u32, rtt: Duration) -> Vec<Verdict> {
    (start..end)
        .map(|i| h.on_ack(SeqNum(i), Some(rtt), SeqNum(end)))
        .collect()
}

#[test]
fn rtt_rise_enters_css_then_avoidance() {
    let mut h = HyStart::default();
    assert!(
        round(&mut h, 0, 10, ms(20))
            .iter()
            .all(|v| *v == Verdict::Normal)
    );
    // The next round sees 25 ms: 20 + max(20/8, 4) = 24 -> CSS.
    let v = round(&mut h, 10, 30, ms(25));
    assert!(v.contains(&Verdict::Conservative));
    assert_eq!(h.phase(), Phase::Conservative);
    // Five rounds in CSS, then congestion avoidance.
    let mut seq = 30;
    let mut exited = false;
    for _ in 0..6 {
        let n = seq * 2;
        for v in round(&mut h, seq, n, ms(25)) {
            exited |= v == Verdict::ExitSlowStart;
        }
        seq = n;
    }
    assert!(exited);
    assert_eq!(h.phase(), Phase::Done);
}

#[test]
fn spurious_exit_resumes_slow_start() {
    let mut h = HyStart::default();
    round(&mut h, 0, 10, ms(20));
    round(&mut h, 10, 30, ms(30));
    assert_eq!(h.phase(), Phase::Conservative);
    round(&mut h, 30, 90, ms(20));
    assert_eq!(h.phase(), Phase::SlowStart);
}

#[test]
fn few_samples_do_not_decide() {
    let mut h = HyStart::default();
    round(&mut h, 0, 3, ms(20));
    round(&mut h, 3, 6, ms(40));
    assert_eq!(h.phase(), Phase::SlowStart, "fewer than 8 samples");
}
